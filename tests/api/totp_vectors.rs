//! The tests' own TOTP (helpers.rs) against the published vectors, so the codes every
//! other test sends are known right independently of the service.

use crate::helpers::{base32_decode, totp_sha1};

#[test]
fn the_tests_totp_matches_the_rfc_6238_sha1_vectors() {
    // RFC 6238 appendix B: SHA1 key "12345678901234567890", 8 digits.
    let key = b"12345678901234567890";
    for (t, code) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(totp_sha1(key, t, 8), code, "T = {t}");
    }
    // Six digits are the last six of the same value (RFC 4226 truncation).
    assert_eq!(totp_sha1(key, 59, 6), "287082");
}

#[test]
fn the_tests_base32_matches_rfc_4648() {
    assert_eq!(
        base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        b"12345678901234567890"
    );
    // RFC 4648 §10 vectors without padding.
    for (b32, raw) in [
        ("MY", "f"),
        ("MZXQ", "fo"),
        ("MZXW6", "foo"),
        ("MZXW6YQ", "foob"),
        ("MZXW6YTB", "fooba"),
        ("MZXW6YTBOI", "foobar"),
    ] {
        assert_eq!(base32_decode(b32), raw.as_bytes(), "{b32}");
    }
}
