//! Cryptographic building blocks: encryption of TOTP secrets at rest, keyed
//! hashes for stored credentials, random credential generation, EdDSA access
//! tokens and QR rendering. Nothing in here touches the database or HTTP.

pub mod hashing;
pub mod jwt;
pub mod keyring;
pub mod keys;
pub mod qr;
pub mod tokens;
pub mod webauthn;
pub mod webhook;

/// Failures of cryptographic operations. Messages never contain key material,
/// plaintext or ciphertext, so they are safe to log.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The operating system RNG failed; nothing can be generated safely.
    #[error("random number generator failure")]
    Rng,
    /// AEAD encryption failed (only possible for absurdly large inputs).
    #[error("encryption failed")]
    Encrypt,
    /// Authentication tag mismatch: wrong key, wrong AAD or tampered data.
    #[error("decryption failed")]
    Decrypt,
    /// The ciphertext names a key id that is not in the key ring.
    #[error("unknown encryption key id {0:?}")]
    UnknownKeyId(String),
    /// A stored nonce does not have the AES-GCM length of 12 bytes.
    #[error("invalid nonce length {0}")]
    InvalidNonce(usize),
    /// A JWT signing key could not be loaded.
    #[error("invalid signing key: {0}")]
    InvalidSigningKey(String),
    /// Producing a JWT failed.
    #[error("token signing failed: {0}")]
    Signing(String),
    /// The text does not fit in a QR code.
    #[error("text too long for a QR code")]
    QrTooLong,
    /// PNG encoding failed.
    #[error("png encoding failed: {0}")]
    Png(String),
}
