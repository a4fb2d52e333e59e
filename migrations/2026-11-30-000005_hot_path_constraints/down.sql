-- Back to table CHECK constraints (the same rules, their original names) and the audit
-- trail's foreign key to tenants.
ALTER TABLE audit_events ADD CONSTRAINT audit_events_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (tenant_id);

ALTER TABLE audit_events
    ALTER COLUMN type TYPE text,
    ALTER COLUMN surface TYPE text,
    ALTER COLUMN details TYPE jsonb,
    ADD CONSTRAINT audit_events_type_check CHECK (type IN (
        'login.started', 'login.succeeded', 'totp.enrollment_started', 'totp.enrolled',
        'totp.verify_failed', 'totp.code_reused', 'recovery_code.used', 'recovery_code.failed',
        'recovery_codes.regenerated', 'user.locked', 'user.unlocked', 'totp.removed',
        'totp.reset_by_admin', 'policy.updated', 'user.deleted', 'factor.renamed',
        'device.remembered', 'device.revoked', 'totp.enrollment_skipped', 'webhook.created',
        'webhook.updated', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled')),
    ADD CONSTRAINT audit_events_surface_check CHECK (surface IN ('app', 'portal')),
    ADD CONSTRAINT audit_events_details_check CHECK (jsonb_typeof(details) = 'object');

ALTER TABLE logins
    ALTER COLUMN status TYPE text,
    ALTER COLUMN surface TYPE text,
    ALTER COLUMN failed_attempts TYPE integer,
    ALTER COLUMN token_hash TYPE bytea,
    ADD CONSTRAINT logins_status_check
        CHECK (status IN ('authenticated', 'enrollment_required', 'verification_required', 'failed')),
    ADD CONSTRAINT logins_surface_check CHECK (surface IN ('app', 'portal')),
    ADD CONSTRAINT logins_failed_attempts_check CHECK (failed_attempts BETWEEN 0 AND 5),
    ADD CONSTRAINT logins_token_hash_check CHECK (octet_length(token_hash) = 32);

ALTER TABLE totp_factors
    ALTER COLUMN status TYPE text,
    ALTER COLUMN name TYPE text,
    ALTER COLUMN drift_steps TYPE integer,
    ALTER COLUMN nonce TYPE bytea,
    ALTER COLUMN ciphertext TYPE bytea,
    ADD CONSTRAINT totp_factors_status_check CHECK (status IN ('pending', 'active')),
    ADD CONSTRAINT totp_factors_name_length CHECK (char_length(name) BETWEEN 1 AND 64),
    ADD CONSTRAINT totp_factors_name_clean CHECK (name = btrim(name) AND name !~ '[[:cntrl:]]'),
    ADD CONSTRAINT totp_factors_drift_bounds CHECK (drift_steps BETWEEN -100 AND 100),
    ADD CONSTRAINT totp_factors_nonce_check CHECK (octet_length(nonce) = 12),
    ADD CONSTRAINT totp_factors_ciphertext_check CHECK (octet_length(ciphertext) = 36);

ALTER TABLE users
    ALTER COLUMN email TYPE text,
    ALTER COLUMN identity_provider TYPE text,
    ALTER COLUMN display_name TYPE text,
    ALTER COLUMN failed_attempts TYPE integer,
    ALTER COLUMN lockout_count TYPE integer,
    ADD CONSTRAINT users_email_check CHECK (char_length(email) BETWEEN 3 AND 254),
    ADD CONSTRAINT users_identity_provider_check CHECK (identity_provider IN ('local', 'microsoft')),
    ADD CONSTRAINT users_display_name_check CHECK (char_length(display_name) <= 200),
    ADD CONSTRAINT users_failed_attempts_check CHECK (failed_attempts >= 0),
    ADD CONSTRAINT users_lockout_count_check CHECK (lockout_count >= 0);

DROP DOMAIN mfa_audit_type, mfa_surface, mfa_json_object, mfa_login_status, mfa_login_failures,
    mfa_hash32, mfa_factor_status, mfa_factor_name, mfa_drift_steps, mfa_nonce,
    mfa_sealed_secret, mfa_email, mfa_identity_provider, mfa_display_name, mfa_count;
