-- The data layer as the sign-in path needs it: every hot query reaches its rows through a
-- unique index by its whole key (so its cost never depends on the planner's statistics or
-- on the tenant's size), each security rule is written once, as a function the service
-- calls, and the listings have an index per documented filter.

-- A factor is always reached by tenant, user and factor id. The primary key (tenant_id,
-- factor_id) stays for the recovery codes' foreign key; this one serves every lookup of a
-- user's factors, with or without a status (a status bound as a parameter cannot use the
-- partial indexes in a generic plan).
CREATE UNIQUE INDEX totp_factors_by_user ON totp_factors (tenant_id, user_id, factor_id);

-- The audit listing filtered by type, newest first (user_id and the unfiltered listing
-- already have theirs).
CREATE INDEX audit_events_by_type ON audit_events (tenant_id, type, at DESC, id DESC);

-- Replay guard (API.md §6): a code is accepted only for a step later than the last one
-- accepted for that factor. The check and the set are this one UPDATE, so the same code sent
-- twice, even to two instances at once, succeeds exactly once. The only copy of the rule.
CREATE FUNCTION mfa_consume_step(p_tenant text, p_user text, p_factor uuid, p_step bigint,
                                 p_now timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE totp_factors SET last_used_step = p_step, last_used_at = p_now
     WHERE tenant_id = p_tenant AND user_id = p_user AND factor_id = p_factor
       AND status = 'active' AND (last_used_step IS NULL OR last_used_step < p_step);
    RETURN FOUND;
END $$;

-- A success or an admin unlock (API.md §6): clears the count, the doubling and any lock,
-- and writes the row only when there is something to clear. Returns whether the user was
-- locked at p_now (NULL: no such user). The only copy of the rule.
CREATE FUNCTION mfa_reset_lockout(p_tenant text, p_user text, p_now timestamptz)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE was_locked boolean;
BEGIN
    SELECT COALESCE(locked_until > p_now, false) INTO was_locked
      FROM users WHERE tenant_id = p_tenant AND user_id = p_user;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE users SET failed_attempts = 0, lockout_count = 0, locked_until = NULL
     WHERE tenant_id = p_tenant AND user_id = p_user
       AND (failed_attempts <> 0 OR lockout_count <> 0 OR locked_until IS NOT NULL);
    RETURN was_locked;
END $$;

-- The verify hot path in one round trip, with plans cached per connection (PL/pgSQL
-- prepares its statements): the replay guard and, only if it passes, the lockout reset, the
-- user's last sign-in, the login's completion and `login.succeeded`; otherwise
-- `totp.code_reused`. Returns whether the code was accepted. The caller holds the login and
-- user rows locked.
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
