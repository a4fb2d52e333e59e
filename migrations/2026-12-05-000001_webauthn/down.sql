ALTER DOMAIN mfa_audit_type DROP CONSTRAINT mfa_audit_type_known;
DELETE FROM audit_events WHERE type LIKE 'webauthn.%';
ALTER DOMAIN mfa_audit_type ADD CONSTRAINT mfa_audit_type_known CHECK (VALUE IN (
    'login.started', 'login.succeeded', 'totp.enrollment_started', 'totp.enrolled',
    'totp.verify_failed', 'totp.code_reused', 'recovery_code.used', 'recovery_code.failed',
    'recovery_codes.regenerated', 'user.locked', 'user.unlocked', 'totp.removed',
    'totp.reset_by_admin', 'policy.updated', 'user.deleted', 'factor.renamed',
    'device.remembered', 'device.revoked', 'totp.enrollment_skipped', 'webhook.created',
    'webhook.updated', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled'
));
ALTER TABLE tenants DROP COLUMN webauthn_user_verification, DROP COLUMN allowed_factor_types;
ALTER TABLE users DROP COLUMN webauthn_user_handle;
DROP DOMAIN mfa_user_handle;
DROP TABLE webauthn_challenges;
DROP TABLE webauthn_credentials;
DELETE FROM totp_factors WHERE type = 'webauthn';
ALTER TABLE totp_factors
    ALTER COLUMN key_id SET NOT NULL,
    ALTER COLUMN nonce SET NOT NULL,
    ALTER COLUMN ciphertext SET NOT NULL;
ALTER TABLE totp_factors DROP COLUMN type;
DROP DOMAIN mfa_factor_type;
