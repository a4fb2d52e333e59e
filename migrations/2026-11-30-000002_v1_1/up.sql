-- v1.1 (API.md §10-§13), the additive part every v1.1 feature builds on: factor names and
-- drift, the tenant policy's new fields, each user's enrollment grace, remembered devices and
-- the audit types v1.1 adds. Existing rows keep working unchanged (a factor is named
-- "Authenticator" with no drift; the new policy fields take their documented defaults).

ALTER TABLE totp_factors
    ADD COLUMN name text NOT NULL DEFAULT 'Authenticator'
        CONSTRAINT totp_factors_name_length CHECK (char_length(name) BETWEEN 1 AND 64),
    -- §11: offset, in 30-s steps, between the server's step and the last accepted code's.
    -- MFA_TOTP_MAX_DRIFT bounds it further; this bound is the largest that setting allows.
    ADD COLUMN drift_steps integer NOT NULL DEFAULT 0
        CONSTRAINT totp_factors_drift_bounds CHECK (drift_steps BETWEEN -100 AND 100);

ALTER TABLE tenants
    ADD COLUMN max_factors_per_user integer NOT NULL DEFAULT 5
        CHECK (max_factors_per_user BETWEEN 1 AND 10),
    ADD COLUMN remember_device_days integer NOT NULL DEFAULT 0
        CHECK (remember_device_days BETWEEN 0 AND 90),
    ADD COLUMN enrollment_grace_days integer NOT NULL DEFAULT 0
        CHECK (enrollment_grace_days BETWEEN 0 AND 90);

-- §13: when the user was first asked to enroll (the start of their grace); cleared when an
-- admin removes all their factors, so it starts afresh.
ALTER TABLE users ADD COLUMN grace_started_at timestamptz;

-- §12: a browser the user asked us to remember. The token is stored only as a keyed hash;
-- expiry is absolute (never extended by use) and revocation is final.
CREATE TABLE remembered_devices (
    tenant_id    text        NOT NULL,
    device_id    uuid        NOT NULL,
    user_id      text        NOT NULL,
    surface      text        NOT NULL CHECK (surface IN ('app','portal')),
    token_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    -- When the code was typed on this device: the auth_time of its remembered sign-ins.
    auth_time    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL CHECK (expires_at > created_at),
    last_used_at timestamptz,
    last_ip      text,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX remembered_devices_by_user
    ON remembered_devices (tenant_id, user_id, created_at, device_id);

ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_type_check,
    ADD CONSTRAINT audit_events_type_check CHECK (type IN (
        'login.started','login.succeeded','totp.enrollment_started','totp.enrolled',
        'totp.verify_failed','totp.code_reused','recovery_code.used',
        'recovery_code.failed','recovery_codes.regenerated','user.locked',
        'user.unlocked','totp.removed','totp.reset_by_admin','policy.updated',
        'user.deleted',
        'factor.renamed','device.remembered','device.revoked','totp.enrollment_skipped',
        'webhook.created','webhook.updated','webhook.deleted','webhook.secret_rotated',
        'webhook.disabled'));
