-- Back to the table CHECK constraints, the outbox that always inserts and the PERFORM.
CREATE OR REPLACE FUNCTION mfa_complete_login_totp(p_tenant text, p_user text, p_login uuid,
                                                   p_factor uuid, p_step bigint, p_drift integer,
                                                   p_now timestamptz, p_surface text, p_ip text,
                                                   p_user_agent text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE accepted boolean;
BEGIN
    IF txid_current_if_assigned() IS NULL THEN
        RAISE EXCEPTION 'mfa_complete_login_totp: not in the transaction that locked the login'
              USING ERRCODE = 'MFA01';
    END IF;
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

CREATE OR REPLACE FUNCTION mfa_webhook_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, event_id, event_type,
                                    state, next_attempt_at, created_at)
    SELECT NEW.tenant_id, gen_random_uuid(), w.webhook_id, NEW.id, NEW.type,
           'pending', NEW.at, NEW.at
      FROM webhooks w
     WHERE w.tenant_id = NEW.tenant_id AND w.status = 'active'
       AND (w.event_types = '{*}' OR NEW.type = ANY (w.event_types));
    RETURN NULL;
END $$;

DROP INDEX logins_token_hash_key;
ALTER TABLE logins ADD CONSTRAINT logins_token_hash_key UNIQUE (token_hash);

DROP TRIGGER totp_factors_rules ON totp_factors;
DROP FUNCTION mfa_totp_factor_rules();
ALTER TABLE totp_factors
    ADD CONSTRAINT totp_factors_check CHECK ((status = 'active') = (activated_at IS NOT NULL)),
    ADD CONSTRAINT totp_factors_check1 CHECK (status = 'active' OR expires_at IS NOT NULL);

ALTER TABLE users
    ALTER COLUMN user_id TYPE text,
    ADD CONSTRAINT users_user_id_check CHECK (user_id ~ '^[A-Za-z0-9._:@-]{1,128}$');
DROP DOMAIN mfa_user_id;
