-- §21: a credential id already registered under an RP ID by anyone, in any tenant, is refused
-- at registration. The lookup names no tenant, so it gets an index of its own (not unique:
-- the table keeps tenant_id first in its keys, to distribute by tenant). Pending rows (NULL
-- credential id) are left out.
CREATE INDEX webauthn_credentials_by_credential_id
    ON webauthn_credentials (rp_id, credential_id) WHERE credential_id IS NOT NULL;
