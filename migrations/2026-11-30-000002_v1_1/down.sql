ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_type_check,
    ADD CONSTRAINT audit_events_type_check CHECK (type IN (
        'login.started','login.succeeded','totp.enrollment_started','totp.enrolled',
        'totp.verify_failed','totp.code_reused','recovery_code.used',
        'recovery_code.failed','recovery_codes.regenerated','user.locked',
        'user.unlocked','totp.removed','totp.reset_by_admin','policy.updated',
        'user.deleted'));
DROP TABLE remembered_devices;
ALTER TABLE users DROP COLUMN grace_started_at;
ALTER TABLE tenants
    DROP COLUMN max_factors_per_user,
    DROP COLUMN remember_device_days,
    DROP COLUMN enrollment_grace_days;
ALTER TABLE totp_factors DROP COLUMN name, DROP COLUMN drift_steps;
