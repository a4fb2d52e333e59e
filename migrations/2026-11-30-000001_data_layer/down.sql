DROP FUNCTION mfa_complete_login_totp(text, text, uuid, uuid, bigint, timestamptz, text, text, text);
DROP FUNCTION mfa_reset_lockout(text, text, timestamptz);
DROP FUNCTION mfa_consume_step(text, text, uuid, bigint, timestamptz);
DROP INDEX audit_events_by_type;
DROP INDEX totp_factors_by_user;
