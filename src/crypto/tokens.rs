//! Generation of random credentials (MFA tokens, service keys, TOTP secrets,
//! recovery codes) and the canonical form recovery codes are hashed in.

use data_encoding::BASE64URL_NOPAD;
use rand::TryRng;

use super::hashing::{ct_eq, HashKey, HashPurpose};

/// Crockford base32 alphabet, lowercase: no `i`, `l`, `o`, `u` so codes read
/// aloud or retyped from paper are hard to get wrong.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const RECOVERY_CODE_CHARS: usize = 10;

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    bytes
}

/// Short-lived bearer token for the second step of a login:
/// `mfa_<nonce>.<owner>.<expires>.<tag>` — 128 random bits, the owner (its user's turn key,
/// `HashKey::user_turn`), when it expires (Unix seconds), and a keyed tag of the three. A step
/// of the sign-in finds its user's turn in the token, without a read, and only with a token
/// the service issued that has not expired ([`mfa_token_owner`]). The stored hash covers
/// the whole token.
pub fn new_mfa_token(key: &HashKey, owner: &[u8; 16], expires: i64) -> String {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce[..]);
    let (nonce, owner) = (
        BASE64URL_NOPAD.encode(&nonce),
        BASE64URL_NOPAD.encode(owner),
    );
    let signed = format!("{nonce}.{owner}.{expires}");
    let tag = key.hash(HashPurpose::MfaTokenTag, signed.as_bytes());
    format!("mfa_{signed}.{}", BASE64URL_NOPAD.encode(&tag[..16]))
}

/// The owner an mfa token names, if the service issued it (its tag checks out) and it has
/// not expired at `now`. Whether its sign-in is alive only its stored hash says, looked up
/// under the turn.
pub fn mfa_token_owner(key: &HashKey, token: &str, now: i64) -> Option<[u8; 16]> {
    let (signed, tag) = token.strip_prefix("mfa_")?.rsplit_once('.')?;
    let expected = key.hash(HashPurpose::MfaTokenTag, signed.as_bytes());
    let tag = BASE64URL_NOPAD.decode(tag.as_bytes()).ok()?;
    if !ct_eq(&tag, &expected[..16]) {
        return None;
    }
    let mut parts = signed.split('.');
    let (_nonce, owner, expires) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || expires.parse::<i64>().ok()? <= now {
        return None;
    }
    BASE64URL_NOPAD
        .decode(owner.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

/// A remembered device's token (256 bits), kept by the login backend in a cookie of its own.
pub fn new_device_token() -> String {
    format!("dv_{}", BASE64URL_NOPAD.encode(&random_32()))
}

/// Long-lived API key for calling services (256 bits).
pub fn new_service_key() -> String {
    format!("sk_{}", BASE64URL_NOPAD.encode(&random_32()))
}

/// 160-bit TOTP secret, the length RFC 4226 recommends for HMAC-SHA1. Read
/// straight from the OS RNG; the thread RNG (itself OS-seeded) is only a
/// fallback so this never panics or fails.
pub fn new_totp_secret() -> [u8; 20] {
    let mut secret = [0u8; 20];
    if rand::rngs::SysRng.try_fill_bytes(&mut secret).is_err() {
        rand::fill(&mut secret[..]);
    }
    secret
}

/// A fresh recovery code `xxxxx-xxxxx`: 10 Crockford base32 chars, 50 bits.
/// Each char takes exactly 5 random bits, so the distribution is uniform.
pub fn new_recovery_code() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes[..7]);
    let bits = u64::from_be_bytes(bytes) >> 14; // top 56 bits -> low 50 bits kept
    let mut out = String::with_capacity(RECOVERY_CODE_CHARS + 1);
    for i in 0..RECOVERY_CODE_CHARS {
        if i == 5 {
            out.push('-');
        }
        let shift = 5 * (RECOVERY_CODE_CHARS - 1 - i);
        let idx = ((bits >> shift) & 0x1f) as usize;
        out.push(char::from(CROCKFORD[idx]));
    }
    out
}

/// Canonical 10-char form of user-typed recovery code, or `None` if it
/// cannot be one. Forgiving of case, spaces, hyphens and the look-alikes
/// `i`/`l` (→ `1`) and `o` (→ `0`), as Crockford base32 prescribes.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let mut out = String::with_capacity(RECOVERY_CODE_CHARS);
    for c in input.trim().chars() {
        let c = match c.to_ascii_lowercase() {
            c if c.is_whitespace() || c == '-' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c if c.is_ascii() && CROCKFORD.contains(&(c as u8)) => c,
            _ => return None,
        };
        if out.len() == RECOVERY_CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == RECOVERY_CODE_CHARS).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash_key() -> HashKey {
        HashKey::parse(&HashKey::generate_b64()).unwrap()
    }

    #[test]
    fn an_mfa_token_names_its_owner_until_it_expires_and_only_as_issued() {
        let (key, owner) = (hash_key(), [7u8; 16]);
        let t = new_mfa_token(&key, &owner, 1_000);
        assert_eq!(mfa_token_owner(&key, &t, 999), Some(owner));
        assert_eq!(mfa_token_owner(&key, &t, 1_000), None, "expired");
        assert_eq!(mfa_token_owner(&hash_key(), &t, 999), None, "another key");
        let parts: Vec<&str> = t.strip_prefix("mfa_").unwrap().split('.').collect();
        let other = BASE64URL_NOPAD.encode(&[8u8; 16]);
        let edited = [
            format!("mfa_{}.{other}.{}.{}", parts[0], parts[2], parts[3]),
            format!("mfa_{}.{}.9999.{}", parts[0], parts[1], parts[3]),
            format!(
                "mfa_AAAAAAAAAAAAAAAAAAAAAA.{}.{}.{}",
                parts[1], parts[2], parts[3]
            ),
            format!("mfa_{}.{}.{}", parts[0], parts[1], parts[2]),
            format!("mfa_{}.{}", parts[0], parts[1]),
            "mfa_abc".to_owned(),
            t.replacen("mfa_", "sk_", 1),
        ];
        for e in edited {
            assert_eq!(mfa_token_owner(&key, &e, 999), None, "{e}");
        }
    }

    #[test]
    fn token_formats() {
        let (key, owner) = (hash_key(), [7u8; 16]);
        let t = new_mfa_token(&key, &owner, 1_000);
        let parts: Vec<&str> = t.strip_prefix("mfa_").unwrap().split('.').collect();
        assert_eq!(
            BASE64URL_NOPAD.decode(parts[0].as_bytes()).unwrap().len(),
            16
        );
        assert_eq!(parts[2], "1000");
        assert_eq!(t.len(), 4 + 22 + 1 + 22 + 1 + 4 + 1 + 22);
        let k = new_service_key();
        assert!(k.starts_with("sk_"));
        assert_eq!(k.len(), 3 + 43);
        assert_eq!(
            BASE64URL_NOPAD.decode(&k.as_bytes()[3..]).unwrap().len(),
            32
        );
        assert_ne!(new_mfa_token(&key, &owner, 1_000), t);
        let d = new_device_token();
        assert!(d.starts_with("dv_"));
        assert_eq!(
            BASE64URL_NOPAD.decode(&d.as_bytes()[3..]).unwrap().len(),
            32
        );
        assert_ne!(new_totp_secret(), new_totp_secret());
    }

    #[test]
    fn recovery_code_format() {
        for _ in 0..200 {
            let c = new_recovery_code();
            assert_eq!(c.len(), 11, "{c}");
            assert_eq!(c.as_bytes()[5], b'-');
            assert!(c
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 5 || CROCKFORD.contains(&b)));
            assert_eq!(normalize_recovery_code(&c).unwrap(), c.replace('-', ""));
        }
    }

    #[test]
    fn recovery_codes_unique_and_cover_alphabet() {
        let batch: Vec<String> = (0..1000).map(|_| new_recovery_code()).collect();
        let set: HashSet<&String> = batch.iter().collect();
        assert_eq!(set.len(), batch.len());
        // 10,000 chars over 32 symbols: every symbol appears in every position
        // class with overwhelming probability if bits are extracted correctly.
        for pos in [0usize, 4, 6, 10] {
            let seen: HashSet<u8> = batch.iter().map(|c| c.as_bytes()[pos]).collect();
            assert_eq!(seen.len(), 32, "position {pos}");
        }
    }

    #[test]
    fn normalization() {
        let n = normalize_recovery_code;
        assert_eq!(n("ABCDE-FGHJK").as_deref(), Some("abcdefghjk"));
        assert_eq!(n(" abcde fghjk ").as_deref(), Some("abcdefghjk"));
        assert_eq!(n("abcdefghjk").as_deref(), Some("abcdefghjk"));
        assert_eq!(n("ol1i0-OLIxz").as_deref(), Some("01110011xz"));
        assert_eq!(n("a-b-c-d-e-f-g-h-j-k").as_deref(), Some("abcdefghjk"));
    }

    #[test]
    fn normalization_rejects() {
        let n = normalize_recovery_code;
        assert_eq!(n(""), None);
        assert_eq!(n("abcde-fghj"), None); // 9 chars
        assert_eq!(n("abcde-fghjkm"), None); // 11 chars
        assert_eq!(n("abcde-fghju"), None); // u is not in the alphabet
        assert_eq!(n("abcde_fghjk"), None);
        assert_eq!(n("abcde-fghj\u{e9}"), None);
        assert_eq!(n("abcde-fghjk-abcde-fghjk"), None);
    }
}
