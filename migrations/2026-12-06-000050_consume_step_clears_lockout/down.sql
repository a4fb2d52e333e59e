-- Restores the replay guard as migration 2026-11-30-000004 left it (it did not clear the lockout).
DROP FUNCTION IF EXISTS mfa_consume_step(text, text, uuid, bigint, integer, timestamptz, boolean);
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
