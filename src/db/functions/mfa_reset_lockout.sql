-- A success or an admin unlock (API.md §6): clears the count of wrong codes, the doubling and
-- any lock, and writes the row only when there is something to clear. Returns whether the user
-- was locked at p_now (NULL: no such user). With p_signed_in, a sign-in also stores its time
-- in the same UPDATE and does not ask whether the user was locked (the caller holds the row
-- and read it); the DEFAULT keeps a three-argument call valid. The only copy of the rule;
-- called by db::users.
--
-- History: 2026-11-30-000001_data_layer, p_signed_in since 2026-11-30-000006_one_user_write.

CREATE OR REPLACE FUNCTION public.mfa_reset_lockout(p_tenant text, p_user text, p_now timestamp with time zone, p_signed_in boolean DEFAULT false)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE was_locked boolean;
BEGIN
    IF NOT p_signed_in THEN
        SELECT COALESCE(locked_until > p_now, false) INTO was_locked
          FROM users WHERE tenant_id = p_tenant AND user_id = p_user;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    UPDATE users SET failed_attempts = 0, lockout_count = 0, locked_until = NULL,
                     last_login_at = CASE WHEN p_signed_in THEN p_now ELSE last_login_at END
     WHERE tenant_id = p_tenant AND user_id = p_user
       AND (p_signed_in OR failed_attempts <> 0 OR lockout_count <> 0 OR locked_until IS NOT NULL);
    RETURN was_locked;
END $function$;
