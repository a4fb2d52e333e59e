-- v1.1 §10-§11: several named authenticators per user, and clock drift.
--
-- Kept: at most one pending enrollment per user (totp_factors_one_pending) and "an active
-- factor has activated_at" (the table's CHECK). Dropped: one active factor per user. Added:
-- names unique per user ignoring case, trimmed and free of control characters (the length
-- and drift bounds came with 2026-11-30-000002_v1_1); the service always supplies a name.

DROP INDEX totp_factors_one_active;
ALTER TABLE totp_factors ALTER COLUMN name DROP DEFAULT;
ALTER TABLE totp_factors ADD CONSTRAINT totp_factors_name_clean
    CHECK (name = btrim(name) AND name !~ '[[:cntrl:]]');
CREATE UNIQUE INDEX totp_factors_name_unique ON totp_factors (tenant_id, user_id, lower(name));

-- Recovery codes belong to the user, not to one factor: they survive the removal of the
-- factor they were issued with, and are deleted explicitly with the user's last active
-- factor (or replaced by a v1 re-enrollment).
ALTER TABLE recovery_codes ADD COLUMN user_id text;
UPDATE recovery_codes r SET user_id = f.user_id
  FROM totp_factors f WHERE f.tenant_id = r.tenant_id AND f.factor_id = r.factor_id;
DELETE FROM recovery_codes WHERE user_id IS NULL;
ALTER TABLE recovery_codes ALTER COLUMN user_id SET NOT NULL;
-- Drops the primary key and the foreign key to totp_factors with it.
ALTER TABLE recovery_codes DROP COLUMN factor_id;
ALTER TABLE recovery_codes ADD PRIMARY KEY (tenant_id, user_id, code_hash);
ALTER TABLE recovery_codes ADD FOREIGN KEY (tenant_id, user_id)
    REFERENCES users (tenant_id, user_id) ON DELETE CASCADE;

-- The replay guard (API.md §6, §11), per factor: a code is accepted only for a step later
-- than the factor's last accepted one, and the drift it shows is learned in the same
-- statement. The only copy of the rule. (New arguments, so the v1 function is replaced.)
DROP FUNCTION mfa_complete_login_totp(text, text, uuid, uuid, bigint, timestamptz, text, text, text);
DROP FUNCTION mfa_consume_step(text, text, uuid, bigint, timestamptz);

CREATE FUNCTION mfa_consume_step(p_tenant text, p_user text, p_factor uuid, p_step bigint,
                                 p_drift integer, p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totp_factors
       SET last_used_step = p_step, drift_steps = p_drift, last_used_at = p_now
     WHERE tenant_id = p_tenant AND user_id = p_user AND factor_id = p_factor
       AND status = 'active' AND (last_used_step IS NULL OR last_used_step < p_step);
    RETURN FOUND;
END $$;

-- The verify hot path in one round trip: the replay guard of the factor that matched and,
-- only if it passes, the lockout reset, the user's last sign-in, the login's completion and
-- `login.succeeded`; otherwise `totp.code_reused`. Both events name the factor. Returns
-- whether the code was accepted. The caller holds the login and user rows locked.
CREATE FUNCTION mfa_complete_login_totp(p_tenant text, p_user text, p_login uuid,
                                        p_factor uuid, p_step bigint, p_drift integer,
                                        p_now timestamptz, p_surface text, p_ip text,
                                        p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE accepted boolean;
BEGIN
    accepted := mfa_consume_step(p_tenant, p_user, p_factor, p_step, p_drift, p_now);
    IF accepted THEN
        PERFORM mfa_reset_lockout(p_tenant, p_user, p_now);
        UPDATE users SET last_login_at = p_now WHERE tenant_id = p_tenant AND user_id = p_user;
        UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = p_now
         WHERE tenant_id = p_tenant AND login_id = p_login;
    END IF;
    INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details)
    VALUES (p_tenant, CASE WHEN accepted THEN 'login.succeeded' ELSE 'totp.code_reused' END,
            p_now, p_user, p_user, p_surface, p_ip, p_user_agent,
            jsonb_build_object('login_id', p_login, 'method', 'totp', 'factor_id', p_factor));
    RETURN accepted;
END $$;
