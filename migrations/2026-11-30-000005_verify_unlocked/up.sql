-- The verify hot path in one statement outside any explicit transaction (issue 8: two round
-- trips instead of four). The caller read the login without a lock and matched the code in
-- memory; this function takes the login's and then the user's row lock (the order of the
-- locking read, so the two never deadlock), re-checks under them what that read decided on
-- (the token still names this waiting login and it has not expired; the user is not locked
-- out; the factor whose code matched is still active) and only then runs
-- `mfa_complete_login_totp`. So attempts of one user are still
-- evaluated one at a time: whatever committed between the read and this call is seen here.
-- Returns 'accepted', 'reused' (`totp.code_reused` written) or 'stale' (nothing written: the
-- caller redoes the attempt under the locks, where the right answer is decided).
CREATE FUNCTION mfa_verify_totp(p_tenant text, p_user text, p_login uuid, p_token_hash bytea,
                                p_factor uuid, p_step bigint, p_drift integer,
                                p_now timestamptz, p_surface text, p_ip text,
                                p_user_agent text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM logins
      WHERE tenant_id = p_tenant AND login_id = p_login AND user_id = p_user
        AND token_hash = p_token_hash AND expires_at > p_now
      FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN 'stale';
    END IF;
    PERFORM 1 FROM users u
      JOIN totp_factors f ON f.tenant_id = u.tenant_id AND f.user_id = u.user_id
                         AND f.factor_id = p_factor AND f.status = 'active'
      WHERE u.tenant_id = p_tenant AND u.user_id = p_user
        AND (u.locked_until IS NULL OR u.locked_until <= p_now)
      FOR NO KEY UPDATE OF u;
    IF NOT FOUND THEN
        RETURN 'stale';
    END IF;
    IF mfa_complete_login_totp(p_tenant, p_user, p_login, p_factor, p_step, p_drift, p_now,
                               p_surface, p_ip, p_user_agent) THEN
        RETURN 'accepted';
    END IF;
    RETURN 'reused';
END $$;
