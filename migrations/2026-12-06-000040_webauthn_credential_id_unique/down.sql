DROP INDEX webauthn_credentials_credential_id_key;
CREATE INDEX webauthn_credentials_by_credential_id
    ON webauthn_credentials (rp_id, credential_id) WHERE credential_id IS NOT NULL;
