-- §17: `user.reauthenticated`, written by POST /v1/me/reauthenticate. The known audit types
-- are one domain constraint (hot_path_constraints): replaced by the same list plus the new
-- type. (A later migration that adds types must start from this list.)
ALTER DOMAIN mfa_audit_type DROP CONSTRAINT mfa_audit_type_known;
ALTER DOMAIN mfa_audit_type ADD CONSTRAINT mfa_audit_type_known CHECK (VALUE IN (
    'login.started', 'login.succeeded', 'totp.enrollment_started', 'totp.enrolled',
    'totp.verify_failed', 'totp.code_reused', 'recovery_code.used', 'recovery_code.failed',
    'recovery_codes.regenerated', 'user.locked', 'user.unlocked', 'totp.removed',
    'totp.reset_by_admin', 'policy.updated', 'user.deleted', 'factor.renamed',
    'device.remembered', 'device.revoked', 'totp.enrollment_skipped', 'webhook.created',
    'webhook.updated', 'webhook.deleted', 'webhook.secret_rotated', 'webhook.disabled',
    'webauthn.enrollment_started', 'webauthn.enrolled', 'webauthn.verify_failed',
    'webauthn.counter_regressed', 'webauthn.removed', 'user.reauthenticated'
));
