-- A verify writes the user's row once (issue 8). It used to run the lockout reset (a SELECT
-- and an UPDATE that writes only when there is something to clear) and then its own UPDATE of
-- `last_login_at`: three statements for the one row. `mfa_reset_lockout` stays the only copy
-- of the rule and learns `p_signed_in`: a sign-in stores its time in the same UPDATE that
-- clears the lockout, and does not ask whether the user was locked (the caller holds the row
-- and read it). Without the argument it behaves as before (admin unlock, recovery codes,
-- step-up): the DEFAULT keeps a three-argument call valid, including the prepared statements
-- of an instance still running the previous release during a rolling deploy.
DROP FUNCTION mfa_reset_lockout(text, text, timestamptz);

CREATE FUNCTION mfa_reset_lockout(p_tenant text, p_user text, p_now timestamptz,
                                  p_signed_in boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE was_locked boolean;
BEGIN
    IF NOT p_signed_in THEN
        SELECT COALESCE(locked_until > p_now, false) INTO was_locked
          FROM users WHERE tenant_id = p_tenant AND user_id = p_user;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    UPDATE users SET failed_attempts = 0, lockout_count = 0, locked_until = NULL,
                     last_login_at = CASE WHEN p_signed_in THEN p_now ELSE last_login_at END
     WHERE tenant_id = p_tenant AND user_id = p_user
       AND (p_signed_in OR failed_attempts <> 0 OR lockout_count <> 0 OR locked_until IS NOT NULL);
    RETURN was_locked;
END $$;

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
