-- Back to the completion without the check that it runs in the locking transaction.
CREATE OR REPLACE FUNCTION mfa_complete_login_totp(p_tenant text, p_user text, p_login uuid,
                                                   p_factor uuid, p_step bigint, p_drift integer,
                                                   p_now timestamptz, p_surface text, p_ip text,
                                                   p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE accepted boolean;
BEGIN
    accepted := mfa_consume_step(p_tenant, p_user, p_factor, p_step, p_drift, p_now);
    IF accepted THEN
        PERFORM mfa_reset_lockout(p_tenant, p_user, p_now, true);
        UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = p_now
         WHERE tenant_id = p_tenant AND login_id = p_login;
    END IF;
    INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details)
    VALUES (p_tenant, CASE WHEN accepted THEN 'login.succeeded' ELSE 'totp.code_reused' END,
            p_now, p_user, p_user, p_surface, p_ip, p_user_agent,
            jsonb_build_object('login_id', p_login, 'method', 'totp', 'factor_id', p_factor));
    RETURN accepted;
END $$;
