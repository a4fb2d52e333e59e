//! Tests for [`super`] (kept apart so `keyring.rs` stays readable).

use super::*;
use secrecy::ExposeSecret;
use uuid::Uuid;

fn aad() -> Vec<u8> {
    totp_secret_aad("tenant", "user", Uuid::nil())
}

#[test]
fn round_trip() {
    let ring = KeyRing::parse(&KeyRing::generate_spec("k1")).unwrap();
    let sealed = ring.seal(b"secret bytes", &aad()).unwrap();
    assert_eq!(sealed.key_id, "k1");
    assert_eq!(sealed.nonce.len(), NONCE_LEN);
    assert_ne!(&sealed.ciphertext[..12], b"secret bytes");
    let pt = ring
        .open(&sealed.key_id, &sealed.nonce, &sealed.ciphertext, &aad())
        .unwrap();
    assert_eq!(pt.expose_secret().as_slice(), b"secret bytes");
    // Fresh nonce every time.
    assert_ne!(ring.seal(b"x", &aad()).unwrap().nonce, sealed.nonce);
}

#[test]
fn wrong_aad_or_tampering_fails() {
    let ring = KeyRing::parse(&KeyRing::generate_spec("k1")).unwrap();
    let s = ring.seal(b"secret", &aad()).unwrap();
    let other = totp_secret_aad("tenant", "user2", Uuid::nil());
    assert!(matches!(
        ring.open("k1", &s.nonce, &s.ciphertext, &other),
        Err(CryptoError::Decrypt)
    ));
    let mut ct = s.ciphertext.clone();
    ct[0] ^= 1;
    assert!(ring.open("k1", &s.nonce, &ct, &aad()).is_err());
    assert!(matches!(
        ring.open("k1", &s.nonce[..8], &s.ciphertext, &aad()),
        Err(CryptoError::InvalidNonce(8))
    ));
}

#[test]
fn unknown_key_fails() {
    let ring = KeyRing::parse(&KeyRing::generate_spec("k1")).unwrap();
    let s = ring.seal(b"secret", &aad()).unwrap();
    assert!(matches!(
        ring.open("k2", &s.nonce, &s.ciphertext, &aad()),
        Err(CryptoError::UnknownKeyId(id)) if id == "k2"
    ));
    // Same id but different key material also fails.
    let other = KeyRing::parse(&KeyRing::generate_spec("k1")).unwrap();
    assert!(other.open("k1", &s.nonce, &s.ciphertext, &aad()).is_err());
}

#[test]
fn rotation_keeps_old_ciphertexts_readable() {
    let old_spec = KeyRing::generate_spec("old");
    let old = KeyRing::parse(&old_spec).unwrap();
    let s = old.seal(b"secret", &aad()).unwrap();
    let new_spec = KeyRing::generate_spec("new");
    let ring = KeyRing::parse(&format!("{new_spec}, {old_spec}")).unwrap();
    assert_eq!(ring.active_key_id(), "new");
    assert_eq!(ring.key_ids(), vec!["new", "old"]);
    let pt = ring.open("old", &s.nonce, &s.ciphertext, &aad()).unwrap();
    assert_eq!(pt.expose_secret().as_slice(), b"secret");
    assert_eq!(ring.seal(b"x", &aad()).unwrap().key_id, "new");
}

#[test]
fn parse_accepts_unpadded_base64() {
    let unpadded = format!("k1:{}", BASE64_NOPAD.encode(&[7u8; 32]));
    assert!(KeyRing::parse(&unpadded).is_ok());
}

#[test]
fn parse_errors() {
    let good = BASE64.encode(&[1u8; 32]);
    let short = BASE64.encode(&[1u8; 16]);
    let cases = [
        ("".to_owned(), KeyRingError::Empty),
        ("  ".to_owned(), KeyRingError::Empty),
        ("nocolon".to_owned(), KeyRingError::MissingSeparator(1)),
        (format!("k1:{good},"), KeyRingError::MissingSeparator(2)),
        (format!(":{good}"), KeyRingError::InvalidId(1)),
        (format!("bad id:{good}"), KeyRingError::InvalidId(1)),
        (
            format!("{}:{good}", "a".repeat(33)),
            KeyRingError::InvalidId(1),
        ),
        (
            format!("k1:{good},k1:{good}"),
            KeyRingError::DuplicateId("k1".into()),
        ),
        (
            "k1:!!!".to_owned(),
            KeyRingError::InvalidBase64("k1".into()),
        ),
        (
            format!("k1:{short}"),
            KeyRingError::InvalidLength("k1".into(), 16),
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(KeyRing::parse(&spec).unwrap_err(), want, "spec {spec:?}");
    }
}

#[test]
fn debug_and_errors_hide_key_material() {
    let spec = KeyRing::generate_spec("k1");
    let b64 = spec.split_once(':').unwrap().1;
    let ring = KeyRing::parse(&spec).unwrap();
    let dbg = format!("{ring:?}");
    assert!(dbg.contains("k1") && !dbg.contains(b64));
    let err = KeyRing::parse(&format!("k1:{}", &b64[..20])).unwrap_err();
    assert!(!err.to_string().contains(&b64[..20]));
}

#[test]
fn aad_is_unambiguous() {
    let id = Uuid::new_v4();
    assert_ne!(
        totp_secret_aad("ab", "c", id),
        totp_secret_aad("a", "bc", id)
    );
    assert!(totp_secret_aad("t", "u", id).starts_with(&[0, 0, 0, 19]));
}
