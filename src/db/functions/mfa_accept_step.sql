-- The replay guard (API.md §6, §11), per factor: a code is accepted only for a step later than
-- the factor's last accepted one, and the drift it shows is learned in the same statement. The
-- check and the set are this one UPDATE, so the same code sent twice, even to two instances at
-- once, succeeds exactly once. An accepted step is an accepted proof: the lockout is cleared
-- (mfa_reset_lockout, with p_signed_in as its caller gives it) in the same call, so a code's
-- acceptance is one round trip. The only copy of the rule; called by db::factors.
--
-- History: mfa_consume_step until 2026-12-06 (which left the lockout to its caller).

CREATE OR REPLACE FUNCTION public.mfa_accept_step(p_tenant text, p_user text, p_factor uuid, p_step bigint, p_drift integer, p_now timestamp with time zone, p_signed_in boolean)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
    UPDATE totp_factors
       SET last_used_step = p_step, drift_steps = p_drift, last_used_at = p_now
     WHERE tenant_id = p_tenant AND user_id = p_user AND factor_id = p_factor
       AND status = 'active' AND (last_used_step IS NULL OR last_used_step < p_step);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mfa_reset_lockout(p_tenant, p_user, p_now, p_signed_in);
    RETURN true;
END $function$;
