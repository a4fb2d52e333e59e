-- totp_factors' two rules across columns, once CHECK constraints with these names and
-- SQLSTATE: an active factor has activated_at (and only an active one), and a factor that is
-- not active expires. The trigger fires only on an INSERT or on an UPDATE that sets one of
-- their columns (enrollment, confirmation), so the replay guard's UPDATE does not pay for them.
-- AFTER, not BEFORE: a BEFORE ROW UPDATE trigger makes every UPDATE of the table lock the row
-- first, whether or not it then fires. The error still aborts the statement, as a CHECK does.
-- Unlike a CHECK it is skipped under session_replication_role = replica or DISABLE TRIGGER
-- (the service uses neither), and a unique violation of the same row may be reported first.
--
-- Since v1.2 (§16) also: a TOTP factor has its sealed secret (key id, nonce, ciphertext) and
-- a WebAuthn one none.
--
-- History: 2026-12-01-000001_cheaper_sign_in_writes, 2026-12-05-000001_webauthn.

CREATE OR REPLACE FUNCTION public.mfa_totp_factor_rules()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- A CHECK passes when its expression is NULL; IF NOT NULL does not raise either.
    IF NOT ((NEW.status = 'active') = (NEW.activated_at IS NOT NULL)) THEN
        RAISE EXCEPTION 'new row for relation "totp_factors" violates check constraint "totp_factors_check"'
              USING ERRCODE = 'check_violation', TABLE = 'totp_factors',
                    CONSTRAINT = 'totp_factors_check';
    END IF;
    IF NOT (NEW.status = 'active' OR NEW.expires_at IS NOT NULL) THEN
        RAISE EXCEPTION 'new row for relation "totp_factors" violates check constraint "totp_factors_check1"'
              USING ERRCODE = 'check_violation', TABLE = 'totp_factors',
                    CONSTRAINT = 'totp_factors_check1';
    END IF;
    IF NOT ((NEW.type = 'totp') = (NEW.ciphertext IS NOT NULL AND NEW.nonce IS NOT NULL AND NEW.key_id IS NOT NULL)) THEN
        RAISE EXCEPTION 'new row for relation "totp_factors" violates check constraint "totp_factors_secret_of_type"'
              USING ERRCODE = 'check_violation', TABLE = 'totp_factors',
                    CONSTRAINT = 'totp_factors_secret_of_type';
    END IF;
    RETURN NULL;
END $function$;

CREATE TRIGGER totp_factors_rules AFTER INSERT OR UPDATE OF status, activated_at, expires_at ON public.totp_factors FOR EACH ROW EXECUTE FUNCTION mfa_totp_factor_rules();
