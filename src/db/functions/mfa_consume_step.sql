-- The previous build's replay guard, kept for one release: its instances call it during a
-- rolling deploy (then clear the lockout with mfa_reset_lockout). Nothing in this build calls
-- it; the rule is mfa_accept_step's now. The next release's migration drops it.
--
-- History: 2026-11-30-000001_data_layer, per factor with drift since 2026-11-30-000004_factors.

CREATE OR REPLACE FUNCTION public.mfa_consume_step(p_tenant text, p_user text, p_factor uuid, p_step bigint, p_drift integer, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
BEGIN
    UPDATE totp_factors
       SET last_used_step = p_step, drift_steps = p_drift, last_used_at = p_now
     WHERE tenant_id = p_tenant AND user_id = p_user AND factor_id = p_factor
       AND status = 'active' AND (last_used_step IS NULL OR last_used_step < p_step);
    RETURN FOUND;
END $function$;
