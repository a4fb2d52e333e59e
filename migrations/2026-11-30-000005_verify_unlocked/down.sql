DROP FUNCTION mfa_verify_totp(text, text, uuid, bytea, uuid, bigint, integer, timestamptz, text, text, text);
