-- Every sign-in completes in Rust now, through the one attempt gate (src/services/attempt):
-- the verify's completion function was a second copy of the replay guard's caller, the
-- lockout reset and the `login.succeeded` event. The rules it called stay
-- (mfa_consume_step, mfa_reset_lockout).
DROP FUNCTION mfa_complete_login_totp(text, text, uuid, uuid, bigint, integer, timestamptz, text, text, text);
