-- Back to one factor per user: only each user's oldest active factor survives.
DROP FUNCTION mfa_complete_login_totp(text, text, uuid, uuid, bigint, integer, timestamptz, text, text, text);
DROP FUNCTION mfa_consume_step(text, text, uuid, bigint, integer, timestamptz);
CREATE FUNCTION mfa_consume_step(p_tenant text, p_user text, p_factor uuid, p_step bigint,
                                 p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totp_factors SET last_used_step = p_step, last_used_at = p_now
     WHERE tenant_id = p_tenant AND user_id = p_user AND factor_id = p_factor
       AND status = 'active' AND (last_used_step IS NULL OR last_used_step < p_step);
    RETURN FOUND;
END $$;
CREATE FUNCTION mfa_complete_login_totp(p_tenant text, p_user text, p_login uuid,
                                        p_factor uuid, p_step bigint, p_now timestamptz,
                                        p_surface text, p_ip text, p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE accepted boolean;
BEGIN
    accepted := mfa_consume_step(p_tenant, p_user, p_factor, p_step, p_now);
    IF accepted THEN
        PERFORM mfa_reset_lockout(p_tenant, p_user, p_now);
        UPDATE users SET last_login_at = p_now WHERE tenant_id = p_tenant AND user_id = p_user;
        UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = p_now
         WHERE tenant_id = p_tenant AND login_id = p_login;
    END IF;
    INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details)
    VALUES (p_tenant, CASE WHEN accepted THEN 'login.succeeded' ELSE 'totp.code_reused' END,
            p_now, p_user, p_user, p_surface, p_ip, p_user_agent,
            jsonb_build_object('login_id', p_login, 'method', 'totp'));
    RETURN accepted;
END $$;

DELETE FROM totp_factors f WHERE status = 'active' AND EXISTS (
    SELECT 1 FROM totp_factors o WHERE o.tenant_id = f.tenant_id AND o.user_id = f.user_id
       AND o.status = 'active' AND (o.activated_at, o.factor_id) < (f.activated_at, f.factor_id));
ALTER TABLE recovery_codes ADD COLUMN factor_id uuid;
UPDATE recovery_codes r SET factor_id = f.factor_id FROM totp_factors f
 WHERE f.tenant_id = r.tenant_id AND f.user_id = r.user_id AND f.status = 'active';
DELETE FROM recovery_codes WHERE factor_id IS NULL;
ALTER TABLE recovery_codes ALTER COLUMN factor_id SET NOT NULL;
ALTER TABLE recovery_codes DROP CONSTRAINT recovery_codes_pkey;
ALTER TABLE recovery_codes DROP COLUMN user_id;
ALTER TABLE recovery_codes ADD PRIMARY KEY (tenant_id, factor_id, code_hash);
ALTER TABLE recovery_codes ADD FOREIGN KEY (tenant_id, factor_id)
    REFERENCES totp_factors (tenant_id, factor_id) ON DELETE CASCADE;

DROP INDEX totp_factors_name_unique;
ALTER TABLE totp_factors DROP CONSTRAINT totp_factors_name_clean;
ALTER TABLE totp_factors ALTER COLUMN name SET DEFAULT 'Authenticator';
CREATE UNIQUE INDEX totp_factors_one_active ON totp_factors (tenant_id, user_id) WHERE status = 'active';
