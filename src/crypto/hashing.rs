//! Keyed hashes (HMAC-SHA256) of high-entropy credentials: recovery codes,
//! MFA tokens and service keys. A server-side key means a leaked database
//! alone does not allow offline guessing of the 50-bit recovery codes.

use std::fmt;

use data_encoding::{BASE64, BASE64_NOPAD};
use hmac::{Hmac, Mac};
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const KEY_LEN: usize = 32;

/// Why a hash key could not be loaded (never echoes the key).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashKeyError {
    #[error("hash key is not valid base64")]
    InvalidBase64,
    #[error("hash key must decode to 32 bytes, got {0}")]
    InvalidLength(usize),
}

/// What a hashed value is; mixed into the MAC so a hash of one kind of
/// credential can never be accepted as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashPurpose {
    RecoveryCode,
    MfaToken,
    ServiceKey,
    /// A remembered device's token (docs/API.md §12).
    DeviceToken,
    /// The key of a user's turns ([`HashKey::user_turn`]).
    UserTurn,
    /// The tag that makes an mfa token's turn key its own (`tokens::new_mfa_token`).
    MfaTokenTag,
}

impl HashPurpose {
    /// Domain-separation label. NUL-terminated so no label is a prefix of
    /// another label followed by value bytes. Changing these invalidates
    /// every stored hash.
    fn label(self) -> &'static [u8] {
        match self {
            HashPurpose::RecoveryCode => b"mspbots-mfa/recovery-code/v1\0",
            HashPurpose::MfaToken => b"mspbots-mfa/mfa-token/v1\0",
            HashPurpose::ServiceKey => b"mspbots-mfa/service-key/v1\0",
            HashPurpose::DeviceToken => b"mspbots-mfa/device-token/v1\0",
            HashPurpose::UserTurn => b"mspbots-mfa/user-turn/v1\0",
            HashPurpose::MfaTokenTag => b"mspbots-mfa/mfa-token-tag/v1\0",
        }
    }
}

/// 256-bit HMAC key; the keyed state is prepared once and cloned per hash.
#[derive(Clone)]
pub struct HashKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

impl HashKey {
    /// Parses a base64 (padded or not) encoding of exactly 32 bytes.
    pub fn parse(b64: &str) -> Result<HashKey, HashKeyError> {
        let b64 = b64.trim().as_bytes();
        let raw = Zeroizing::new(
            BASE64
                .decode(b64)
                .or_else(|_| BASE64_NOPAD.decode(b64))
                .map_err(|_| HashKeyError::InvalidBase64)?,
        );
        if raw.len() != KEY_LEN {
            return Err(HashKeyError::InvalidLength(raw.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&raw)
            .map_err(|_| HashKeyError::InvalidLength(raw.len()))?;
        Ok(HashKey { mac })
    }

    /// A fresh random key in the format [`HashKey::parse`] accepts.
    pub fn generate_b64() -> String {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::fill(&mut key[..]);
        BASE64.encode(&key[..])
    }

    /// HMAC-SHA256(key, label(purpose) || value).
    pub fn hash(&self, purpose: HashPurpose, value: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(purpose.label());
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// The key of one user's turns (`rate_limit::UserGate`): 128 bits of the keyed hash of
    /// tenant and user. Every route that names the user computes the same key, and the user's
    /// mfa tokens carry it (`tokens::new_mfa_token`), so a step of a sign-in finds its turn
    /// without reading the database. Keyed, so it names the user to no one without the key.
    pub fn user_turn(&self, tenant_id: &str, user_id: &str) -> [u8; 16] {
        // The tenant's length first: no two pairs share an encoding, whatever they hold.
        let len = (tenant_id.len() as u64).to_be_bytes();
        let value = [&len, tenant_id.as_bytes(), user_id.as_bytes()].concat();
        let h = self.hash(HashPurpose::UserTurn, &value);
        let mut key = [0u8; 16];
        key.copy_from_slice(&h[..16]);
        key
    }
}

/// Constant-time equality for secrets and their hashes (length is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
mod tests {
    use super::*;

    #[test]
    fn hash_is_deterministic_and_keyed() {
        let k1 = HashKey::parse(&HashKey::generate_b64()).unwrap();
        let k2 = HashKey::parse(&HashKey::generate_b64()).unwrap();
        let h = k1.hash(HashPurpose::MfaToken, b"mfa_abc");
        assert_eq!(h, k1.hash(HashPurpose::MfaToken, b"mfa_abc"));
        assert_ne!(h, k1.hash(HashPurpose::MfaToken, b"mfa_abd"));
        assert_ne!(h, k2.hash(HashPurpose::MfaToken, b"mfa_abc"));
    }

    #[test]
    fn purposes_are_separated() {
        let k = HashKey::parse(&HashKey::generate_b64()).unwrap();
        let v = b"same value";
        let a = k.hash(HashPurpose::RecoveryCode, v);
        let b = k.hash(HashPurpose::MfaToken, v);
        let c = k.hash(HashPurpose::ServiceKey, v);
        let d = k.hash(HashPurpose::DeviceToken, v);
        assert!(a != b && b != c && a != c && d != a && d != b && d != c);
        let (e, f) = (
            k.hash(HashPurpose::UserTurn, v),
            k.hash(HashPurpose::MfaTokenTag, v),
        );
        assert!(![a, b, c, d].contains(&e) && ![a, b, c, d, e].contains(&f));
    }

    #[test]
    fn a_turn_key_names_one_user_of_one_tenant_under_one_key() {
        let k = HashKey::parse(&HashKey::generate_b64()).unwrap();
        let jane = k.user_turn("acme", "jane");
        assert_eq!(jane, k.user_turn("acme", "jane"));
        assert_ne!(jane, k.user_turn("globex", "jane"));
        assert_ne!(jane, k.user_turn("acme", "joe"));
        assert_ne!(k.user_turn("ab", "c"), k.user_turn("a", "bc"));
        let other = HashKey::parse(&HashKey::generate_b64()).unwrap();
        assert_ne!(jane, other.user_turn("acme", "jane"));
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = 32 zero bytes, "mspbots-mfa/mfa-token/v1\0" || "x"),
        // computed independently with Python's hmac module.
        let k = HashKey::parse(&BASE64.encode(&[0u8; 32])).unwrap();
        let want = data_encoding::HEXLOWER
            .decode(b"73a82c5bfcb47dd334cac5c30a1bafccd824dcd655754da801eb4d6c4606467c")
            .unwrap();
        assert_eq!(k.hash(HashPurpose::MfaToken, b"x").as_slice(), want);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            HashKey::parse("not base64!").unwrap_err(),
            HashKeyError::InvalidBase64
        );
        assert_eq!(
            HashKey::parse(&BASE64.encode(&[1u8; 31])).unwrap_err(),
            HashKeyError::InvalidLength(31)
        );
        assert!(HashKey::parse(&BASE64_NOPAD.encode(&[1u8; 32])).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let b64 = HashKey::generate_b64();
        let k = HashKey::parse(&b64).unwrap();
        assert_eq!(format!("{k:?}"), "HashKey(<redacted>)");
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }
}
