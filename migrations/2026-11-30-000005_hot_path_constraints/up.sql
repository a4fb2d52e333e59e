-- Constraints of the tables every sign-in writes, made cheap (issue 8); the rules they keep
-- are unchanged.
--
-- Single-column CHECK constraints become domains.
-- Postgres re-reads a table's CHECK constraints from their stored text and plans them again at
-- the start of every INSERT or UPDATE of that table, whichever columns it sets (ExecRelCheck:
-- stringToNode + expression_planner, per statement, prepared or not): on the verify path that
-- was 13.6 % of all CPU in a perf profile of bench/run.sh. A domain's constraints are parsed
-- once per backend (typcache) and checked only where a value of the domain is stored. The
-- rules are unchanged, word for word; the multi-column CHECKs stay table constraints.
--
-- Each column moves to a domain created without its constraint first (text -> a domain over
-- text is binary-compatible: no table rewrite, indexes kept), then the constraint is added NOT
-- VALID and validated: a scan of each table, not a rewrite. The ALTER TABLEs hold their
-- exclusive locks until the migration commits, so the four tables are closed for that scan.

CREATE DOMAIN mfa_audit_type AS text;
CREATE DOMAIN mfa_surface AS text;
CREATE DOMAIN mfa_json_object AS jsonb;
CREATE DOMAIN mfa_login_status AS text;
CREATE DOMAIN mfa_login_failures AS integer;
CREATE DOMAIN mfa_hash32 AS bytea;
CREATE DOMAIN mfa_factor_status AS text;
CREATE DOMAIN mfa_factor_name AS text;
CREATE DOMAIN mfa_drift_steps AS integer;
CREATE DOMAIN mfa_nonce AS bytea;
CREATE DOMAIN mfa_sealed_secret AS bytea;
CREATE DOMAIN mfa_email AS text;
CREATE DOMAIN mfa_identity_provider AS text;
CREATE DOMAIN mfa_display_name AS text;
CREATE DOMAIN mfa_count AS integer;

ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_type_check,
    DROP CONSTRAINT audit_events_surface_check,
    DROP CONSTRAINT audit_events_details_check,
    ALTER COLUMN type TYPE mfa_audit_type,
    ALTER COLUMN surface TYPE mfa_surface,
    ALTER COLUMN details TYPE mfa_json_object;

ALTER TABLE logins
    DROP CONSTRAINT logins_status_check,
    DROP CONSTRAINT logins_surface_check,
    DROP CONSTRAINT logins_failed_attempts_check,
    DROP CONSTRAINT logins_token_hash_check,
    ALTER COLUMN status TYPE mfa_login_status,
    ALTER COLUMN surface TYPE mfa_surface,
    ALTER COLUMN failed_attempts TYPE mfa_login_failures,
    ALTER COLUMN token_hash TYPE mfa_hash32;

ALTER TABLE totp_factors
    DROP CONSTRAINT totp_factors_status_check,
    DROP CONSTRAINT totp_factors_name_length,
    DROP CONSTRAINT totp_factors_name_clean,
    DROP CONSTRAINT totp_factors_drift_bounds,
    DROP CONSTRAINT totp_factors_nonce_check,
    DROP CONSTRAINT totp_factors_ciphertext_check,
    ALTER COLUMN status TYPE mfa_factor_status,
    ALTER COLUMN name TYPE mfa_factor_name,
    ALTER COLUMN drift_steps TYPE mfa_drift_steps,
    ALTER COLUMN nonce TYPE mfa_nonce,
    ALTER COLUMN ciphertext TYPE mfa_sealed_secret;

ALTER TABLE users
    DROP CONSTRAINT users_email_check,
    DROP CONSTRAINT users_identity_provider_check,
    DROP CONSTRAINT users_display_name_check,
    DROP CONSTRAINT users_failed_attempts_check,
    DROP CONSTRAINT users_lockout_count_check,
    ALTER COLUMN email TYPE mfa_email,
    ALTER COLUMN identity_provider TYPE mfa_identity_provider,
    ALTER COLUMN display_name TYPE mfa_display_name,
    ALTER COLUMN failed_attempts TYPE mfa_count,
    ALTER COLUMN lockout_count TYPE mfa_count;

ALTER DOMAIN mfa_audit_type ADD CONSTRAINT mfa_audit_type_known CHECK (VALUE IN (
    'login.started', 'login.succeeded', 'totp.enrollment_started', 'totp.enrolled',
    'totp.verify_failed', 'totp.code_reused', 'recovery_code.used', 'recovery_code.failed',
    'recovery_codes.regenerated', 'user.locked', 'user.unlocked', 'totp.removed',
    'totp.reset_by_admin', 'policy.updated', 'user.deleted', 'factor.renamed',
    'device.remembered', 'device.revoked', 'totp.enrollment_skipped', 'webhook.created',
    'webhook.updated', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled'
)) NOT VALID;
ALTER DOMAIN mfa_surface ADD CONSTRAINT mfa_surface_known
    CHECK (VALUE IN ('app', 'portal')) NOT VALID;
ALTER DOMAIN mfa_json_object ADD CONSTRAINT mfa_json_object_is_object
    CHECK (jsonb_typeof(VALUE) = 'object') NOT VALID;
ALTER DOMAIN mfa_login_status ADD CONSTRAINT mfa_login_status_known
    CHECK (VALUE IN ('authenticated', 'enrollment_required', 'verification_required', 'failed')) NOT VALID;
ALTER DOMAIN mfa_login_failures ADD CONSTRAINT mfa_login_failures_range
    CHECK (VALUE BETWEEN 0 AND 5) NOT VALID;
ALTER DOMAIN mfa_hash32 ADD CONSTRAINT mfa_hash32_length
    CHECK (octet_length(VALUE) = 32) NOT VALID;
ALTER DOMAIN mfa_factor_status ADD CONSTRAINT mfa_factor_status_known
    CHECK (VALUE IN ('pending', 'active')) NOT VALID;
ALTER DOMAIN mfa_factor_name ADD CONSTRAINT mfa_factor_name_length
    CHECK (char_length(VALUE) BETWEEN 1 AND 64) NOT VALID;
ALTER DOMAIN mfa_factor_name ADD CONSTRAINT mfa_factor_name_clean
    CHECK (VALUE = btrim(VALUE) AND VALUE !~ '[[:cntrl:]]') NOT VALID;
ALTER DOMAIN mfa_drift_steps ADD CONSTRAINT mfa_drift_steps_bounds
    CHECK (VALUE BETWEEN -100 AND 100) NOT VALID;
ALTER DOMAIN mfa_nonce ADD CONSTRAINT mfa_nonce_length
    CHECK (octet_length(VALUE) = 12) NOT VALID;
ALTER DOMAIN mfa_sealed_secret ADD CONSTRAINT mfa_sealed_secret_length
    CHECK (octet_length(VALUE) = 36) NOT VALID;
ALTER DOMAIN mfa_email ADD CONSTRAINT mfa_email_length
    CHECK (char_length(VALUE) BETWEEN 3 AND 254) NOT VALID;
ALTER DOMAIN mfa_identity_provider ADD CONSTRAINT mfa_identity_provider_known
    CHECK (VALUE IN ('local', 'microsoft')) NOT VALID;
ALTER DOMAIN mfa_display_name ADD CONSTRAINT mfa_display_name_length
    CHECK (char_length(VALUE) <= 200) NOT VALID;
ALTER DOMAIN mfa_count ADD CONSTRAINT mfa_count_not_negative
    CHECK (VALUE >= 0) NOT VALID;

ALTER DOMAIN mfa_audit_type VALIDATE CONSTRAINT mfa_audit_type_known;
ALTER DOMAIN mfa_surface VALIDATE CONSTRAINT mfa_surface_known;
ALTER DOMAIN mfa_json_object VALIDATE CONSTRAINT mfa_json_object_is_object;
ALTER DOMAIN mfa_login_status VALIDATE CONSTRAINT mfa_login_status_known;
ALTER DOMAIN mfa_login_failures VALIDATE CONSTRAINT mfa_login_failures_range;
ALTER DOMAIN mfa_hash32 VALIDATE CONSTRAINT mfa_hash32_length;
ALTER DOMAIN mfa_factor_status VALIDATE CONSTRAINT mfa_factor_status_known;
ALTER DOMAIN mfa_factor_name VALIDATE CONSTRAINT mfa_factor_name_length;
ALTER DOMAIN mfa_factor_name VALIDATE CONSTRAINT mfa_factor_name_clean;
ALTER DOMAIN mfa_drift_steps VALIDATE CONSTRAINT mfa_drift_steps_bounds;
ALTER DOMAIN mfa_nonce VALIDATE CONSTRAINT mfa_nonce_length;
ALTER DOMAIN mfa_sealed_secret VALIDATE CONSTRAINT mfa_sealed_secret_length;
ALTER DOMAIN mfa_email VALIDATE CONSTRAINT mfa_email_length;
ALTER DOMAIN mfa_identity_provider VALIDATE CONSTRAINT mfa_identity_provider_known;
ALTER DOMAIN mfa_display_name VALIDATE CONSTRAINT mfa_display_name_length;
ALTER DOMAIN mfa_count VALIDATE CONSTRAINT mfa_count_not_negative;

-- The audit trail's foreign key to tenants goes. Checking it locked the tenant's row (FOR KEY
-- SHARE: a WAL record and, with other events in flight, a new multixact) for every audit
-- event, so every sign-in of a tenant locked the one row all its users share. Audit events
-- are written only by the service, for a tenant it created first; tenants are never deleted.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_fkey;
