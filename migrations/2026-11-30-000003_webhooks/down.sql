DROP TRIGGER audit_events_webhook_outbox ON audit_events;
DROP FUNCTION mfa_webhook_outbox();
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
DELETE FROM audit_events WHERE type IN ('webhook.created','webhook.updated','webhook.deleted',
    'webhook.secret_rotated','webhook.disabled');
ALTER TABLE audit_events DROP CONSTRAINT audit_events_type_check,
    ADD CONSTRAINT audit_events_type_check CHECK (type IN (
        'login.started','login.succeeded','totp.enrollment_started','totp.enrolled',
        'totp.verify_failed','totp.code_reused','recovery_code.used',
        'recovery_code.failed','recovery_codes.regenerated','user.locked',
        'user.unlocked','totp.removed','totp.reset_by_admin','policy.updated',
        'user.deleted',
        'factor.renamed','device.remembered','device.revoked','totp.enrollment_skipped'));
