//! A synced passkey (backup-eligible and backed up, as a password manager's), in a few lines
//! of P-256 and CBOR: SoftPasskey never sets the backup flags. Attestation `none`, the
//! counter always 0 (as synced passkeys report), user verification claimed. Its credential id
//! is fixed, so one credential can be offered to two registrations.

use crypto_glue::ecdsa_p256::{self, EcdsaP256PublicSec1Point, EcdsaP256Signature};
use crypto_glue::ecdsa_p256::{EcdsaP256PrivateKey, EcdsaP256SigningKey};
use crypto_glue::traits::Signer;
use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// User present, user verified, backup eligible, backed up.
const FLAGS: u8 = 0x01 | 0x04 | 0x08 | 0x10;
/// Attested credential data included.
const AT: u8 = 0x40;

pub struct SyncedKey {
    id: Vec<u8>,
    key: EcdsaP256PrivateKey,
    origin: String,
}

impl SyncedKey {
    pub fn new(origin: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            key: ecdsa_p256::new_key(),
            origin: origin.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        json!({"type": kind, "challenge": options["challenge"], "origin": self.origin,
               "crossOrigin": false})
        .to_string()
        .into_bytes()
    }

    fn auth_data(rp_id: &Value, flags: u8) -> Vec<u8> {
        let mut a = Sha256::digest(rp_id.as_str().unwrap().as_bytes()).to_vec();
        a.push(flags);
        a.extend([0u8; 4]);
        a
    }

    /// `navigator.credentials.create()` then `toJSON()`.
    pub fn create(&self, options: &Value) -> Value {
        let point = EcdsaP256PublicSec1Point::from(self.key.public_key());
        // COSE_Key {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        cose.extend(point.x().unwrap().to_vec());
        cose.extend([0x22, 0x58, 0x20]);
        cose.extend(point.y().unwrap().to_vec());
        let mut auth = Self::auth_data(&options["rp"]["id"], FLAGS | AT);
        auth.extend([0u8; 16]);
        auth.extend((self.id.len() as u16).to_be_bytes());
        auth.extend(&self.id);
        auth.extend(cose);
        // {"fmt": "none", "attStmt": {}, "authData": auth}
        let mut ao = vec![0xa3, 0x63];
        ao.extend(b"fmt");
        ao.push(0x64);
        ao.extend(b"none");
        ao.push(0x67);
        ao.extend(b"attStmt");
        ao.extend([0xa0, 0x68]);
        ao.extend(b"authData");
        ao.extend([0x58, u8::try_from(auth.len()).unwrap()]);
        ao.extend(auth);
        let cd = self.client_data("webauthn.create", options);
        json!({"id": B64.encode(&self.id), "rawId": B64.encode(&self.id), "type": "public-key",
               "response": {"clientDataJSON": B64.encode(&cd), "attestationObject": B64.encode(&ao),
                            "transports": ["internal", "hybrid"]},
               "clientExtensionResults": {}})
    }

    /// `navigator.credentials.get()` then `toJSON()`.
    pub fn get(&self, options: &Value) -> Value {
        let auth = Self::auth_data(&options["rpId"], FLAGS);
        let cd = self.client_data("webauthn.get", options);
        let mut signed = auth.clone();
        signed.extend(Sha256::digest(&cd));
        let signer = EcdsaP256SigningKey::from(&self.key);
        let sig: EcdsaP256Signature = signer.try_sign(&signed).unwrap();
        json!({"id": B64.encode(&self.id), "rawId": B64.encode(&self.id), "type": "public-key",
               "response": {"clientDataJSON": B64.encode(&cd), "authenticatorData": B64.encode(&auth),
                            "signature": B64.encode(&sig.to_der().to_bytes()), "userHandle": null},
               "clientExtensionResults": {}})
    }
}
