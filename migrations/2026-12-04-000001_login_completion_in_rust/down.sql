-- Restores the completion function as migration 2026-12-01-000001 left it.
CREATE OR REPLACE FUNCTION mfa_complete_login_totp(p_tenant text, p_user text, p_login uuid,
                                                   p_factor uuid, p_step bigint, p_drift integer,
                                                   p_now timestamptz, p_surface text, p_ip text,
                                                   p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE accepted boolean;
        was_locked boolean;  -- not needed: assigning the call is what keeps it an expression
BEGIN
    IF txid_current_if_assigned() IS NULL THEN
        RAISE EXCEPTION 'mfa_complete_login_totp: not in the transaction that locked the login'
              USING ERRCODE = 'MFA01';
    END IF;
    accepted := mfa_consume_step(p_tenant, p_user, p_factor, p_step, p_drift, p_now);
    IF accepted THEN
        was_locked := mfa_reset_lockout(p_tenant, p_user, p_now, true);
        UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = p_now
         WHERE tenant_id = p_tenant AND login_id = p_login;
    END IF;
    INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details)
    VALUES (p_tenant, CASE WHEN accepted THEN 'login.succeeded' ELSE 'totp.code_reused' END,
            p_now, p_user, p_user, p_surface, p_ip, p_user_agent,
            jsonb_build_object('login_id', p_login, 'method', 'totp', 'factor_id', p_factor));
    RETURN accepted;
END $$;
