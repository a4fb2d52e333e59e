-- §21: a credential id registers once per RP ID, by anyone, in any tenant. The index of
-- 2026-12-06-000030 only served a SELECT before the write, which two confirms at once could
-- both pass; unique, it decides the race: the second write waits for the first transaction
-- and fails (23505), which the confirm turns into `invalid_credential`. It has no tenant_id,
-- so Citus could not enforce it on a table distributed by tenant (docs/scaling.md). Pending
-- rows (NULL credential id) are left out. Fails if duplicates were registered already.
DROP INDEX webauthn_credentials_by_credential_id;
CREATE UNIQUE INDEX webauthn_credentials_credential_id_key
    ON webauthn_credentials (rp_id, credential_id) WHERE credential_id IS NOT NULL;
