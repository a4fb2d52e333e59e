//! EdDSA (Ed25519) access tokens: loading signing keys, signing and verifying
//! JWTs, and publishing the public keys as a JWKS. The first key signs; all
//! keys verify, so a new key can be rolled in ahead of retiring the old one.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context;
use data_encoding::{BASE64, BASE64URL_NOPAD};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, Header};
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CryptoError;
use crate::domain::ids::{TenantId, UserId};

/// Claims of an access token issued after a successful second factor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub tid: TenantId,
    pub email: String,
    pub roles: Vec<String>,
    pub idp: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Why a token was rejected. Callers answer all of these with 401; the
/// variants exist for logs and metrics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("token has no kid")]
    MissingKid,
    #[error("unknown kid")]
    UnknownKid,
    #[error("bad signature")]
    BadSignature,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("token expired")]
    Expired,
    #[error("token issued in the future")]
    IssuedInFuture,
}

/// A key parsed once: signing and verifying need no per-token parsing or point arithmetic
/// beyond the signature itself (`jsonwebtoken` re-derives the public key from the PKCS#8
/// DER on every `encode` and decompresses it on every `decode`).
struct KeyEntry {
    kid: String,
    public: [u8; 32],
    signing: SigningKey,
    verifying: VerifyingKey,
}

/// Parsed Ed25519 keys, ready to sign and verify without per-request parsing.
pub struct SigningKeys {
    keys: Vec<KeyEntry>,
    jwks: serde_json::Value,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SigningKeys").field("kids", &kids).finish()
    }
}

/// The only header fields we look at before the signature is checked.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// RFC 8410 PKCS#8 v1 prefix for an Ed25519 private key (seed follows).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new Ed25519 private key as PKCS#8 PEM (same layout as
/// `openssl genpkey -algorithm ed25519`). Built by hand so it cannot fail.
pub fn generate_pem() -> String {
    let mut der = Zeroizing::new([0u8; 48]);
    der[..16].copy_from_slice(&PKCS8_ED25519_PREFIX);
    rand::fill(&mut der[16..]);
    let b64 = Zeroizing::new(BASE64.encode(&der[..]));
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        *b64
    )
}

/// `kid` = first 16 chars of base64url(SHA-256(raw public key)): stable,
/// derived from the key itself, so no separate id needs configuring.
fn kid_for(public: &[u8; 32]) -> String {
    let mut kid = BASE64URL_NOPAD.encode(&Sha256::digest(public));
    kid.truncate(16);
    kid
}

fn load_key(pem: &str) -> Result<KeyEntry, CryptoError> {
    let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        CryptoError::InvalidSigningKey(format!("not an Ed25519 PKCS#8 private key PEM ({e})"))
    })?;
    let verifying = sk.verifying_key();
    let public = verifying.to_bytes();
    Ok(KeyEntry {
        kid: kid_for(&public),
        public,
        signing: sk,
        verifying,
    })
}

impl SigningKeys {
    /// Loads PKCS#8 PEM keys; the first one signs. Done once at start-up.
    pub fn from_pems(pems: &[String]) -> Result<SigningKeys, CryptoError> {
        let keys = pems
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                load_key(pem)
                    .map_err(|e| CryptoError::InvalidSigningKey(format!("key #{}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_entries(keys)
    }

    /// Like [`SigningKeys::from_pems`], reading each key from a file.
    pub fn from_pem_files(paths: &[PathBuf]) -> anyhow::Result<SigningKeys> {
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            let pem = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading JWT signing key {}", path.display()))?,
            );
            let key = load_key(&pem)
                .with_context(|| format!("loading JWT signing key {}", path.display()))?;
            keys.push(key);
        }
        Ok(Self::from_entries(keys)?)
    }

    fn from_entries(keys: Vec<KeyEntry>) -> Result<SigningKeys, CryptoError> {
        if keys.is_empty() {
            return Err(CryptoError::InvalidSigningKey("no signing keys".into()));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(CryptoError::InvalidSigningKey(format!(
                    "key {} is configured twice",
                    k.kid
                )));
            }
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": BASE64URL_NOPAD.encode(&k.public),
                "kid": k.kid,
                "alg": "EdDSA",
                "use": "sig",
            })).collect::<Vec<_>>()
        });
        Ok(SigningKeys { keys, jwks })
    }

    /// Kid of the key that signs new tokens.
    pub fn active_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// The public JWKS document (precomputed).
    pub fn jwks(&self) -> serde_json::Value {
        self.jwks.clone()
    }

    /// Signs with the active key; header is `{"alg":"EdDSA","typ":"JWT","kid":..}`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, CryptoError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| CryptoError::Signing("no signing key".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        // JWS compact serialization (RFC 7515 §7.1), as `jsonwebtoken::encode` writes it.
        let header =
            serde_json::to_vec(&header).map_err(|e| CryptoError::Signing(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| CryptoError::Signing(e.to_string()))?;
        let mut token = BASE64URL_NOPAD.encode(&header);
        token.push('.');
        token.push_str(&BASE64URL_NOPAD.encode(&claims));
        let signature = key.signing.sign(token.as_bytes());
        token.push('.');
        token.push_str(&BASE64URL_NOPAD.encode(&signature.to_bytes()));
        Ok(token)
    }

    /// Verifies signature, issuer, audience and times against `now_unix`
    /// (injected so tests control the clock). Only EdDSA with a known kid is
    /// accepted, which shuts out `none` and HMAC-with-public-key forgeries.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[String],
        now_unix: i64,
        leeway_secs: u64,
    ) -> Result<AccessClaims, JwtError> {
        let mut parts = token.split('.');
        let header_b64 = parts.next().ok_or(JwtError::Malformed)?;
        if parts.count() != 2 {
            return Err(JwtError::Malformed);
        }
        let header_json = BASE64URL_NOPAD
            .decode(header_b64.as_bytes())
            .map_err(|_| JwtError::Malformed)?;
        let header: RawHeader =
            serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(JwtError::UnsupportedAlgorithm(header.alg));
        }
        if header.crit.is_some() {
            // RFC 7515: extensions we do not understand must be rejected.
            return Err(JwtError::Malformed);
        }
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::UnknownKid)?;

        // The signature over `header.payload` (RFC 7515 §5.2), then the payload's claims.
        let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let payload = signed.split_once('.').map_or("", |(_, p)| p);
        let signature: [u8; 64] = BASE64URL_NOPAD
            .decode(signature.as_bytes())
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(JwtError::Malformed)?;
        key.verifying
            .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| JwtError::BadSignature)?;
        let payload = BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .map_err(|_| JwtError::Malformed)?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)?;

        if claims.iss != issuer {
            return Err(JwtError::WrongIssuer);
        }
        if !audiences.contains(&claims.aud) {
            return Err(JwtError::WrongAudience);
        }
        let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
        if claims.exp <= now_unix.saturating_sub(leeway) {
            return Err(JwtError::Expired);
        }
        if claims.iat > now_unix.saturating_add(leeway) {
            return Err(JwtError::IssuedInFuture);
        }
        Ok(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
#[path = "jwt_tests.rs"]
mod tests;
