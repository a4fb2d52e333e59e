-- The replay guard clears the lockout in the same statement when it accepts a step (a TOTP
-- proof's acceptance is one round trip, not two). A new argument (p_signed_in), so the old
-- signature goes; src/db/functions/mfa_consume_step.sql creates the new one.
DROP FUNCTION mfa_consume_step(text, text, uuid, bigint, integer, timestamptz);
