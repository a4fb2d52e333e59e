//! AES-256-GCM key ring that encrypts TOTP secrets at rest. Several keys can
//! be configured so that old ciphertexts stay readable after a key rotation;
//! only the first (active) key encrypts.

use std::fmt;

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::{BASE64, BASE64_NOPAD};
use secrecy::zeroize::Zeroizing;
use secrecy::SecretBox;

use super::CryptoError;

/// AES-GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;
const MAX_ID_LEN: usize = 32;
const TOTP_AAD_PREFIX: &[u8] = b"mspbots-mfa/totp/v1";

/// Reasons a key ring specification is rejected. Messages name the entry and
/// key id but never echo key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("key ring is empty")]
    Empty,
    #[error("key ring entry {0} is not of the form id:base64key")]
    MissingSeparator(usize),
    #[error("key ring entry {0} has an invalid key id (1-32 chars of A-Z a-z 0-9 _ -)")]
    InvalidId(usize),
    #[error("key id {0:?} appears more than once in the key ring")]
    DuplicateId(String),
    #[error("key {0:?} is not valid base64")]
    InvalidBase64(String),
    #[error("key {0:?} must decode to 32 bytes, got {1}")]
    InvalidLength(String, usize),
}

struct RingKey {
    id: String,
    cipher: Aes256Gcm,
}

/// Ordered set of AES-256-GCM keys; index 0 is the active key.
pub struct KeyRing {
    keys: Vec<RingKey>,
}

/// Output of [`KeyRing::seal`]: everything needed (besides the AAD) to decrypt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// 12-byte random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext with the 16-byte GCM tag appended.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for KeyRing {
    // Key material must never reach logs; ids are enough to diagnose config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl KeyRing {
    /// Parses `id:base64key[,id:base64key...]`; the first entry is active.
    /// Whitespace around entries is ignored so specs can be wrapped in config.
    pub fn parse(spec: &str) -> Result<KeyRing, KeyRingError> {
        let mut keys: Vec<RingKey> = Vec::new();
        for (idx, entry) in spec.split(',').map(str::trim).enumerate() {
            let n = idx + 1;
            if entry.is_empty() {
                if spec.trim().is_empty() {
                    return Err(KeyRingError::Empty);
                }
                return Err(KeyRingError::MissingSeparator(n));
            }
            let (id, b64) = entry
                .split_once(':')
                .ok_or(KeyRingError::MissingSeparator(n))?;
            let (id, b64) = (id.trim(), b64.trim());
            if !valid_id(id) {
                return Err(KeyRingError::InvalidId(n));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateId(id.to_owned()));
            }
            let raw = Zeroizing::new(
                decode_b64(b64).ok_or_else(|| KeyRingError::InvalidBase64(id.to_owned()))?,
            );
            let cipher = Aes256Gcm::new_from_slice(&raw)
                .map_err(|_| KeyRingError::InvalidLength(id.to_owned(), raw.len()))?;
            keys.push(RingKey {
                id: id.to_owned(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(KeyRing { keys })
    }

    /// A fresh single-key spec, for `generate-keys` style tooling and tests.
    pub fn generate_spec(id: &str) -> String {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        format!("{id}:{}", BASE64.encode(&key[..]))
    }

    /// Id of the key that [`KeyRing::seal`] uses.
    pub fn active_key_id(&self) -> &str {
        // `parse` guarantees at least one key.
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// All key ids, active first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Encrypts with the active key under a fresh random nonce. Random 96-bit
    /// nonces are safe here because the number of secrets per key is tiny
    /// compared with the 2^32 message bound.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, CryptoError> {
        let key = self.keys.first().ok_or(CryptoError::Encrypt)?;
        let nonce = Nonce::try_generate().map_err(|_| CryptoError::Rng)?;
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(Sealed {
            key_id: key.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts with the named key; fails on unknown key ids, a wrong AAD or
    /// any tampering. The plaintext is wrapped so it is zeroized on drop.
    pub fn open(
        &self,
        key_id: &str,
        nonce: &[u8],
        ciphertext: &[u8],
        aad: &[u8],
    ) -> Result<SecretBox<Vec<u8>>, CryptoError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(key_id.to_owned()))?;
        let nonce: &Nonce<_> = nonce
            .try_into()
            .map_err(|_| CryptoError::InvalidNonce(nonce.len()))?;
        let plaintext = key
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(SecretBox::new(Box::new(plaintext)))
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(s.as_bytes())
        .or_else(|_| BASE64_NOPAD.decode(s.as_bytes()))
        .ok()
}

/// Additional authenticated data made of `fields`, each length-prefixed (u32 big-endian) so
/// that no two distinct tuples encode the same bytes. Every sealed value's AAD is built here.
pub fn aad(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for field in fields {
        // Inputs are ids far below 4 GiB; saturate rather than panic.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// AAD binding a sealed TOTP secret to its owner and factor, so a ciphertext
/// copied to another row fails to decrypt.
pub fn totp_secret_aad(tenant_id: &str, user_id: &str, factor_id: uuid::Uuid) -> Vec<u8> {
    aad(&[
        TOTP_AAD_PREFIX,
        tenant_id.as_bytes(),
        user_id.as_bytes(),
        factor_id.as_bytes(),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#[path = "keyring_tests.rs"]
mod tests;
