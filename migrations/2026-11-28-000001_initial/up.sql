-- The whole schema of mspbots-mfa. Every tenant-owned table has tenant_id first in its
-- primary key and every query filters on it, so the schema can be distributed by tenant.
-- Security rules that can live in the database do: one active factor per user, counters
-- that cannot go negative, enum columns that cannot hold anything else.

CREATE TABLE tenants (
    tenant_id                 text PRIMARY KEY
                              CHECK (tenant_id ~ '^[A-Za-z0-9._:@-]{1,128}$'),
    enforce_mfa               boolean     NOT NULL DEFAULT false,
    surfaces                  text[]      NOT NULL DEFAULT '{app,portal}'
                              CHECK (surfaces <@ ARRAY['app','portal']::text[]),
    exempt_identity_providers text[]      NOT NULL DEFAULT '{microsoft}'
                              CHECK (exempt_identity_providers <@ ARRAY['local','microsoft']::text[]),
    issuer                    text        NOT NULL DEFAULT 'MSPbots'
                              CHECK (char_length(issuer) BETWEEN 1 AND 64 AND position(':' in issuer) = 0),
    version                   bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    updated_by                text
);

CREATE TABLE users (
    tenant_id         text        NOT NULL REFERENCES tenants (tenant_id),
    user_id           text        NOT NULL CHECK (user_id ~ '^[A-Za-z0-9._:@-]{1,128}$'),
    email             text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    display_name      text        CHECK (char_length(display_name) <= 200),
    identity_provider text        NOT NULL CHECK (identity_provider IN ('local','microsoft')),
    roles             text[]      NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL,
    last_login_at     timestamptz,
    -- Lockout state (domain::lockout): consecutive wrong codes, lockouts since the last
    -- success (drives the doubling), and the end of the current lockout.
    failed_attempts   integer     NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    lockout_count     integer     NOT NULL DEFAULT 0 CHECK (lockout_count >= 0),
    locked_until      timestamptz,
    PRIMARY KEY (tenant_id, user_id)
);

-- A TOTP factor: 'pending' between enrollment and its confirming code, then 'active'.
CREATE TABLE totp_factors (
    tenant_id         text        NOT NULL,
    factor_id         uuid        NOT NULL,
    user_id           text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('pending','active')),
    -- AES-256-GCM of the 20-byte secret; AAD binds tenant, user and factor id.
    key_id            text        NOT NULL,
    nonce             bytea       NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext        bytea       NOT NULL CHECK (octet_length(ciphertext) = 36),
    -- Replay guard: a code is accepted only for a step greater than this, and that
    -- check-and-set is one UPDATE.
    last_used_step    bigint,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz,
    activated_at      timestamptz,
    last_used_at      timestamptz,
    PRIMARY KEY (tenant_id, factor_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE,
    CHECK ((status = 'active') = (activated_at IS NOT NULL)),
    CHECK (status = 'active' OR expires_at IS NOT NULL)
);
-- At most one active and one pending factor per user: a second device cannot be added
-- beside the first, and a new enrollment replaces the pending one.
CREATE UNIQUE INDEX totp_factors_one_active ON totp_factors (tenant_id, user_id) WHERE status = 'active';
CREATE UNIQUE INDEX totp_factors_one_pending ON totp_factors (tenant_id, user_id) WHERE status = 'pending';

CREATE TABLE recovery_codes (
    tenant_id  text        NOT NULL,
    factor_id  uuid        NOT NULL,
    code_hash  bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    created_at timestamptz NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (tenant_id, factor_id, code_hash),
    FOREIGN KEY (tenant_id, factor_id) REFERENCES totp_factors (tenant_id, factor_id) ON DELETE CASCADE
);

-- One sign-in in progress (or finished). The mfa token is stored only as a keyed hash and
-- cleared when the login ends (success, too many wrong codes): a cleared token is dead.
CREATE TABLE logins (
    tenant_id       text        NOT NULL,
    login_id        uuid        NOT NULL,
    user_id         text        NOT NULL,
    surface         text        NOT NULL CHECK (surface IN ('app','portal')),
    status          text        NOT NULL
                    CHECK (status IN ('authenticated','enrollment_required','verification_required','failed')),
    token_hash      bytea       UNIQUE CHECK (octet_length(token_hash) = 32),
    failed_attempts integer     NOT NULL DEFAULT 0 CHECK (failed_attempts BETWEEN 0 AND 5),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    ip              text,
    user_agent      text,
    PRIMARY KEY (tenant_id, login_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE,
    CHECK (token_hash IS NULL OR status IN ('enrollment_required','verification_required'))
);
CREATE INDEX logins_by_user ON logins (tenant_id, user_id);

-- Credentials of trusted backends. Global (not tenant-owned); scope NULL = every tenant.
CREATE TABLE service_keys (
    key_id       uuid        PRIMARY KEY,
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    key_hash     bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    tenant_scope text[],
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);

-- Append-only; no foreign key to users so the trail outlives an offboarded user.
CREATE TABLE audit_events (
    tenant_id  text        NOT NULL REFERENCES tenants (tenant_id),
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    type       text        NOT NULL CHECK (type IN (
                   'login.started','login.succeeded','totp.enrollment_started','totp.enrolled',
                   'totp.verify_failed','totp.code_reused','recovery_code.used',
                   'recovery_code.failed','recovery_codes.regenerated','user.locked',
                   'user.unlocked','totp.removed','totp.reset_by_admin','policy.updated',
                   'user.deleted')),
    at         timestamptz NOT NULL,
    user_id    text,
    actor_id   text,
    surface    text        CHECK (surface IN ('app','portal')),
    ip         text,
    user_agent text,
    details    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_newest ON audit_events (tenant_id, at DESC, id DESC);
CREATE INDEX audit_events_by_user ON audit_events (tenant_id, user_id, at DESC, id DESC);
