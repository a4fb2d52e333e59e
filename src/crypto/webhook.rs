//! Standard Webhooks signing: `whsec_` secrets (32 random bytes), and
//! `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` signatures.

use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use secrecy::zeroize::Zeroizing;
use sha2::Sha256;

/// Raw key length of a webhook secret.
pub const KEY_LEN: usize = 32;
const PREFIX: &str = "whsec_";
const AAD_PREFIX: &[u8] = b"mspbots-mfa/webhook/v1";

/// A fresh raw key (zeroized on drop).
pub fn generate_key() -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    rand::fill(&mut key[..]);
    key
}

/// The secret as shown once to the admin: `whsec_` + base64 of the key.
pub fn secret_text(key: &[u8]) -> String {
    format!("{PREFIX}{}", BASE64.encode(key))
}

/// The key of a `whsec_` secret (what a receiver does with it).
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.strip_prefix(PREFIX)?.as_bytes()).ok()
}

/// One signature, `v1,<base64>`.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(&mac.finalize().into_bytes()))
}

/// AAD binding a sealed webhook secret to its tenant and webhook (length-prefixed fields).
pub fn secret_aad(tenant_id: &str, webhook_id: uuid::Uuid) -> Vec<u8> {
    super::keyring::aad(&[AAD_PREFIX, tenant_id.as_bytes(), webhook_id.as_bytes()])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_test_vector() {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_and_are_random() {
        let k = generate_key();
        let s = secret_text(&k);
        assert!(s.starts_with("whsec_"));
        assert_eq!(key_of(&s).unwrap(), *k);
        assert_ne!(*generate_key(), *k);
        assert_ne!(
            secret_aad("t", uuid::Uuid::nil()),
            secret_aad("t2", uuid::Uuid::nil())
        );
    }
}
