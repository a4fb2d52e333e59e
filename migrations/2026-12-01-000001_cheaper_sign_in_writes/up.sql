-- Less work per sign-in for Postgres (issue 8); every rule is kept, word for word.
--
-- Postgres re-reads each CHECK constraint of a table from its stored text and plans it again
-- at every INSERT and UPDATE of the table, whichever columns the statement sets (ExecRelCheck;
-- migration 000005 moved the single-column ones to domains for that reason). A perf profile of
-- bench/run.sh's verify phase still put 8 % of Postgres's CPU there: the users.user_id regex,
-- checked by the UPDATE that clears the lockout, and the two rules of totp_factors, checked by
-- the replay guard's UPDATE, though neither statement touches those columns.

-- users.user_id: a domain like the other columns, checked only where a user id is stored.
-- (text -> a domain over text is binary-compatible: no rewrite; the primary key index and the
-- foreign keys that reference it keep their text equality.)
CREATE DOMAIN mfa_user_id AS text;
ALTER TABLE users
    DROP CONSTRAINT users_user_id_check,
    ALTER COLUMN user_id TYPE mfa_user_id;
ALTER DOMAIN mfa_user_id ADD CONSTRAINT users_user_id_check
    CHECK (VALUE ~ '^[A-Za-z0-9._:@-]{1,128}$') NOT VALID;
ALTER DOMAIN mfa_user_id VALIDATE CONSTRAINT users_user_id_check;

-- totp_factors' two rules across columns: checked by a trigger that fires only on an INSERT
-- or on an UPDATE that sets one of their columns (enrollment, confirmation), with the same
-- names and SQLSTATE as the CHECKs had. The replay guard's UPDATE sets none of them. AFTER,
-- not BEFORE: a BEFORE ROW UPDATE trigger makes every UPDATE of the table lock the row first
-- (GetTupleForTrigger), whether or not the trigger then fires; an AFTER one costs an UPDATE
-- that does not fire it nothing the foreign key's AFTER trigger did not already cost. The
-- error still aborts the statement, as a CHECK does. What a trigger does not do as a CHECK
-- would: it is skipped under session_replication_role = replica or DISABLE TRIGGER (neither
-- is used by the service), a pg_dump restore creates it after loading the rows (they were
-- checked when written), and a unique violation of the same row may be reported first.
CREATE FUNCTION mfa_totp_factor_rules() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A CHECK passes when its expression is NULL; IF NOT NULL does not raise either.
    IF NOT ((NEW.status = 'active') = (NEW.activated_at IS NOT NULL)) THEN
        RAISE EXCEPTION 'new row for relation "totp_factors" violates check constraint "totp_factors_check"'
              USING ERRCODE = 'check_violation', TABLE = 'totp_factors',
                    CONSTRAINT = 'totp_factors_check';
    END IF;
    IF NOT (NEW.status = 'active' OR NEW.expires_at IS NOT NULL) THEN
        RAISE EXCEPTION 'new row for relation "totp_factors" violates check constraint "totp_factors_check1"'
              USING ERRCODE = 'check_violation', TABLE = 'totp_factors',
                    CONSTRAINT = 'totp_factors_check1';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER totp_factors_rules
    AFTER INSERT OR UPDATE OF status, activated_at, expires_at ON totp_factors
    FOR EACH ROW EXECUTE FUNCTION mfa_totp_factor_rules();
ALTER TABLE totp_factors
    DROP CONSTRAINT totp_factors_check,
    DROP CONSTRAINT totp_factors_check1;

-- The mfa token's unique index holds live tokens only. The verify's UPDATE of the login is not
-- HOT (it clears the token hash, an indexed column), so it added an entry to every index of
-- logins, a NULL one to this: every finished sign-in left one. Lookups are by a hash, never by
-- NULL, and `token_hash = $1` implies the predicate, so the same plans use it (a generic plan
-- without statistics too: tests/api/schema.rs). The build blocks writes to logins while it
-- runs; housekeeping keeps that table to 30 days of sign-ins.
ALTER TABLE logins DROP CONSTRAINT logins_token_hash_key;
CREATE UNIQUE INDEX logins_token_hash_key ON logins (token_hash) WHERE token_hash IS NOT NULL;

-- The webhook outbox asks first whether the tenant has a subscribed webhook: without one, an
-- audit event no longer starts an INSERT (which opened webhook_deliveries and its four
-- indexes to insert nothing). Same rows as before when there is one.
CREATE OR REPLACE FUNCTION mfa_webhook_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM webhooks w
                WHERE w.tenant_id = NEW.tenant_id AND w.status = 'active'
                  AND (w.event_types = '{*}' OR NEW.type = ANY (w.event_types))) THEN
        INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, event_id, event_type,
                                        state, next_attempt_at, created_at)
        SELECT NEW.tenant_id, gen_random_uuid(), w.webhook_id, NEW.id, NEW.type,
               'pending', NEW.at, NEW.at
          FROM webhooks w
         WHERE w.tenant_id = NEW.tenant_id AND w.status = 'active'
           AND (w.event_types = '{*}' OR NEW.type = ANY (w.event_types));
    END IF;
    RETURN NULL;
END $$;

-- The verify's completion calls the lockout reset as an expression (PL/pgSQL evaluates a
-- plain function call without starting the executor) instead of a PERFORM (a whole query).
-- Otherwise unchanged, including the refusal outside the locking transaction (000007).
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
