-- v1.2 §16: passkeys and security keys (WebAuthn) as a second factor.
--
-- A WebAuthn factor is a row of totp_factors like any factor (name, status, pending expiry,
-- activation, last use), with type 'webauthn' and no sealed secret, so names, the one pending
-- enrollment per user, max_factors_per_user, listings, removals and "has an active factor" hold
-- across types with the indexes and rules already there. (The table keeps its v1 name.) Its
-- credential lives in webauthn_credentials, keyed like the factor, tenant first.

CREATE DOMAIN mfa_factor_type AS text CONSTRAINT mfa_factor_type_known
    CHECK (VALUE IN ('totp', 'webauthn'));
ALTER TABLE totp_factors ADD COLUMN type mfa_factor_type NOT NULL DEFAULT 'totp';
-- A TOTP factor has its sealed secret, a WebAuthn one none: checked by mfa_totp_factor_rules
-- at INSERT (src/db/functions), as the table's other rules.
ALTER TABLE totp_factors
    ALTER COLUMN key_id DROP NOT NULL,
    ALTER COLUMN nonce DROP NOT NULL,
    ALTER COLUMN ciphertext DROP NOT NULL;

-- The credential of a WebAuthn factor, created with the pending factor (its RP ID known from
-- the start, the rest NULL or false) and filled in by the confirmation. `credential` is the
-- credential as webauthn-rs-core serialises it (public key, no secret); the counter, the
-- backup flags and the transports are kept current in their own columns and override it.
CREATE TABLE webauthn_credentials (
    tenant_id       text        NOT NULL,
    factor_id       uuid        NOT NULL,
    user_id         text        NOT NULL,
    rp_id           text        NOT NULL,
    credential_id   bytea,
    credential      jsonb,
    counter         bigint      NOT NULL DEFAULT 0 CHECK (counter BETWEEN 0 AND 4294967295),
    backup_eligible boolean     NOT NULL DEFAULT false,
    backed_up       boolean     NOT NULL DEFAULT false,
    transports      text[]      NOT NULL DEFAULT '{}',
    -- Whether the registration carried the UV flag: such a credential must keep doing UV.
    user_verified   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, factor_id),
    FOREIGN KEY (tenant_id, factor_id) REFERENCES totp_factors (tenant_id, factor_id)
        ON DELETE CASCADE,
    CHECK ((credential_id IS NULL) = (credential IS NULL))
);
-- A credential id registers once per RP ID in a tenant (a registration of one already there,
-- by anyone, is refused); NULLs (pending) do not clash.
CREATE UNIQUE INDEX webauthn_credentials_id
    ON webauthn_credentials (tenant_id, rp_id, credential_id);
-- The user's credentials (exclude and allow lists), tenant first.
CREATE INDEX webauthn_credentials_by_user ON webauthn_credentials (tenant_id, user_id);

-- A live challenge: one per user and purpose, replaced by each new one, deleted by the
-- transaction that checks its answer (verified or not). The expiry is ours (5 min, and never
-- past the sign-in), not the library's.
CREATE TABLE webauthn_challenges (
    tenant_id  text        NOT NULL,
    user_id    text        NOT NULL,
    purpose    text        NOT NULL CHECK (purpose IN ('registration', 'sign_in', 'reauthentication')),
    rp_id      text        NOT NULL,
    login_id   uuid,
    factor_id  uuid,
    state      jsonb       NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id, purpose),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);

-- The WebAuthn user handle: 16 random bytes per user, made at the first registration and
-- kept; no personal data. A domain, not a CHECK on users (which every sign-in updates).
CREATE DOMAIN mfa_user_handle AS bytea
    CONSTRAINT mfa_user_handle_length CHECK (octet_length(VALUE) = 16);
ALTER TABLE users ADD COLUMN webauthn_user_handle mfa_user_handle;

-- Tenant policy (§16): which factor types may be enrolled, and the user-verification policy.
ALTER TABLE tenants
    ADD COLUMN allowed_factor_types text[] NOT NULL DEFAULT '{totp,webauthn}'
        CHECK (cardinality(allowed_factor_types) BETWEEN 1 AND 2
               AND allowed_factor_types <@ '{totp,webauthn}'),
    ADD COLUMN webauthn_user_verification text NOT NULL DEFAULT 'preferred'
        CHECK (webauthn_user_verification IN ('preferred', 'required'));

ALTER DOMAIN mfa_audit_type DROP CONSTRAINT mfa_audit_type_known;
ALTER DOMAIN mfa_audit_type ADD CONSTRAINT mfa_audit_type_known CHECK (VALUE IN (
    'login.started', 'login.succeeded', 'totp.enrollment_started', 'totp.enrolled',
    'totp.verify_failed', 'totp.code_reused', 'recovery_code.used', 'recovery_code.failed',
    'recovery_codes.regenerated', 'user.locked', 'user.unlocked', 'totp.removed',
    'totp.reset_by_admin', 'policy.updated', 'user.deleted', 'factor.renamed',
    'device.remembered', 'device.revoked', 'totp.enrollment_skipped', 'webhook.created',
    'webhook.updated', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled',
    'webauthn.enrollment_started', 'webauthn.enrolled', 'webauthn.verify_failed',
    'webauthn.counter_regressed', 'webauthn.removed'
));
