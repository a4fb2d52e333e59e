-- Signed webhooks (API.md §14): the tenant's endpoints, and a transactional outbox of
-- deliveries written by a trigger on audit_events, so a delivery row commits with the audit
-- event it carries, in the same statement, with no extra round trip.

-- The v1.1 audit types (§6, §10, §12, §13, §14).
ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check,
    ADD CONSTRAINT audit_events_type_check CHECK (type IN (
        'login.started','login.succeeded','totp.enrollment_started','totp.enrolled',
        'totp.verify_failed','totp.code_reused','recovery_code.used',
        'recovery_code.failed','recovery_codes.regenerated','user.locked',
        'user.unlocked','totp.removed','totp.reset_by_admin','policy.updated',
        'user.deleted',
        'factor.renamed','device.remembered','device.revoked','totp.enrollment_skipped',
        'webhook.created','webhook.updated','webhook.deleted','webhook.secret_rotated',
        'webhook.disabled'));

-- The secret is sealed (AES-256-GCM under the key ring, AAD = tenant + webhook id): it must
-- be readable to sign. After a rotation the previous one stays, sealed, until
-- previous_expires_at, and both sign.
CREATE TABLE webhooks (
    tenant_id           text        NOT NULL REFERENCES tenants (tenant_id),
    webhook_id          uuid        NOT NULL,
    url                 text        NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2100),
    -- '{*}': every type, now and future.
    event_types         text[]      NOT NULL CHECK (cardinality(event_types) >= 1),
    description         text        CHECK (char_length(description) <= 500),
    status              text        NOT NULL CHECK (status IN ('active','disabled')),
    key_id              text        NOT NULL,
    nonce               bytea       NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext          bytea       NOT NULL CHECK (octet_length(ciphertext) = 48),
    previous_key_id     text,
    previous_nonce      bytea       CHECK (octet_length(previous_nonce) = 12),
    previous_ciphertext bytea       CHECK (octet_length(previous_ciphertext) = 48),
    previous_expires_at timestamptz,
    -- Start of the current run of failed attempts (NULL after any success): 3 days of it
    -- disable the webhook.
    failing_since       timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, webhook_id),
    CHECK ((previous_key_id IS NULL) = (previous_ciphertext IS NULL)
       AND (previous_key_id IS NULL) = (previous_nonce IS NULL)
       AND (previous_key_id IS NULL) = (previous_expires_at IS NULL))
);

-- One row per (event, subscribed webhook). `event_id` NULL: a `webhook.test` delivery (no
-- audit event). A claimed row's next_attempt_at is moved to the end of its lease and
-- `claim_id` names the claim, so a delivery whose instance died is due again when the lease
-- runs out, and a late outcome of a superseded claim is not recorded.
CREATE TABLE webhook_deliveries (
    tenant_id       text        NOT NULL,
    delivery_id     uuid        NOT NULL,
    webhook_id      uuid        NOT NULL,
    event_id        bigint,
    event_type      text        NOT NULL,
    actor_id        text,
    state           text        NOT NULL CHECK (state IN ('pending','succeeded','failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_status     integer,
    last_error      text        CHECK (char_length(last_error) <= 500),
    next_attempt_at timestamptz,
    -- Held while the webhook is disabled: pending, but not claimed until it is re-enabled.
    held            boolean     NOT NULL DEFAULT false,
    claim_id        uuid,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    PRIMARY KEY (tenant_id, delivery_id),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, webhook_id) ON DELETE CASCADE,
    CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL)),
    CHECK ((state = 'succeeded') = (delivered_at IS NOT NULL))
);
-- The worker's claim (state = 'pending' AND NOT held AND next_attempt_at <= now, in that
-- order, LIMIT n) walks this index from its start, whatever the statistics say; not partial,
-- so values bound as parameters in a generic plan still use it. Also the queue depth.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, held, next_attempt_at);
-- The deliveries listing of one webhook, newest first, with and without a state filter.
CREATE INDEX webhook_deliveries_newest
    ON webhook_deliveries (tenant_id, webhook_id, created_at DESC, delivery_id DESC);
CREATE INDEX webhook_deliveries_by_state
    ON webhook_deliveries (tenant_id, webhook_id, state, created_at DESC, delivery_id DESC);

-- The outbox: one pending delivery per active webhook of the tenant subscribed to the type.
-- A tenant without webhooks costs one probe of the webhooks primary key.
CREATE FUNCTION mfa_webhook_outbox() RETURNS trigger
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

CREATE TRIGGER audit_events_webhook_outbox AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION mfa_webhook_outbox();
