//! RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s): what Microsoft, Google and LastPass
//! Authenticator all accept. Pure functions that take the time as an argument.

use data_encoding::BASE32_NOPAD;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use subtle::ConstantTimeEq;
use totp_lite::Sha1;

pub const DIGITS: u32 = 6;
pub const PERIOD_SECS: u64 = 30;
pub const ALGORITHM: &str = "SHA1";
/// Largest configurable skew (time steps accepted either side of now).
pub const MAX_SKEW: u8 = 3;

/// A time step: `floor(unix_seconds / 30)`.
pub type TimeStep = i64;

/// A code as typed by the user: exactly six ASCII digits, nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpCode([u8; 6]);

impl TotpCode {
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; 6] = s.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_digit).then_some(Self(bytes))
    }
    /// The six ASCII digits, for constant-time comparison.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpCode(******)")
    }
}

pub fn time_step(unix_secs: i64) -> TimeStep {
    unix_secs.div_euclid(PERIOD_SECS as i64)
}

/// The code of one time step.
pub fn code_at_step(secret: &[u8], step: TimeStep) -> String {
    let t = u64::try_from(step).unwrap_or(0) * PERIOD_SECS;
    totp_lite::totp_custom::<Sha1>(PERIOD_SECS, DIGITS, secret, t)
}

/// The code an authenticator app shows at `unix_secs`.
pub fn generate(secret: &[u8], unix_secs: i64) -> String {
    code_at_step(secret, time_step(unix_secs))
}

/// Checks `code` against the steps `now ± skew` and returns the latest step it matches.
/// Every candidate is computed and compared in constant time, so timing does not reveal
/// which step (if any) matched.
pub fn verify(secret: &[u8], code: &TotpCode, unix_secs: i64, skew: u8) -> Option<TimeStep> {
    let now = time_step(unix_secs);
    let skew = i64::from(skew.min(MAX_SKEW));
    let mut matched = None;
    for step in (now - skew)..=(now + skew) {
        let candidate = code_at_step(secret, step);
        if bool::from(candidate.as_bytes().ct_eq(&code.0)) {
            matched = Some(step);
        }
    }
    matched
}

/// Base32 without padding, as authenticator apps expect for manual entry.
pub fn encode_secret(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

// Everything but RFC 3986 unreserved characters is escaped: issuer and account name may hold
// `:` `&` `+` `@`, spaces and non-ASCII text, and apps disagree on lenient parsing.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
pub fn otpauth_uri(issuer: &str, account_name: &str, secret: &[u8]) -> String {
    let issuer = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account = utf8_percent_encode(account_name, COMPONENT);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm={ALGORITHM}&digits={DIGITS}&period={PERIOD_SECS}",
        encode_secret(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 Appendix B secret for SHA1 ("12345678901234567890").
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_appendix_b_vectors_sha1_last_six_digits() {
        // The RFC lists 8-digit codes; a 6-digit code is the same value modulo 10^6.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, eight) in vectors {
            assert_eq!(generate(RFC_SECRET, t), eight[2..], "t={t}");
        }
    }

    fn code(s: &str) -> TotpCode {
        TotpCode::parse(s).unwrap()
    }

    #[test]
    fn accepts_exactly_the_window_and_returns_the_matched_step() {
        let now = 1_700_000_000_i64; // 3 s into its step (1_700_000_000 = 56_666_666*30 + 20)
        let step = time_step(now);
        for skew in 0..=MAX_SKEW {
            let s = i64::from(skew);
            for offset in -(s + 1)..=(s + 1) {
                let c = code(&code_at_step(RFC_SECRET, step + offset));
                let got = verify(RFC_SECRET, &c, now, skew);
                if offset.abs() <= s {
                    assert_eq!(got, Some(step + offset), "skew {skew} offset {offset}");
                } else {
                    assert_eq!(got, None, "skew {skew} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn window_edges_follow_step_boundaries_not_seconds() {
        // Last second of a step and first second of the next are different steps.
        let boundary = 1_800_000_000_i64; // divisible by 30
        assert_eq!(time_step(boundary - 1) + 1, time_step(boundary));
        let c = code(&generate(RFC_SECRET, boundary - 1));
        assert!(verify(RFC_SECRET, &c, boundary, 0).is_none());
        assert_eq!(
            verify(RFC_SECRET, &c, boundary, 1),
            Some(time_step(boundary - 1))
        );
        assert_eq!(
            verify(RFC_SECRET, &c, boundary + 29, 1),
            Some(time_step(boundary - 1))
        );
        assert!(verify(RFC_SECRET, &c, boundary + 30, 1).is_none());
    }

    #[test]
    fn skew_is_capped() {
        let now = 1_700_000_010;
        let c = code(&code_at_step(RFC_SECRET, time_step(now) - 4));
        assert!(verify(RFC_SECRET, &c, now, 200).is_none());
    }

    #[test]
    fn code_must_be_six_ascii_digits() {
        assert!(TotpCode::parse("123456").is_some());
        for bad in [
            "12345",
            "1234567",
            "12345a",
            " 23456",
            "١٢٣٤٥٦",
            "",
            "12 456",
        ] {
            assert!(TotpCode::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(format!("{:?}", code("123456")), "TotpCode(******)");
    }

    #[test]
    fn otpauth_uri_percent_encodes_issuer_and_account() {
        let uri = otpauth_uri("Acme & Co: ä+", "jä ne+x@a.b", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20%26%20Co%3A%20%C3%A4%2B:j%C3%A4%20ne%2Bx%40a.b\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20%26%20Co%3A%20%C3%A4%2B\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn secret_is_base32_without_padding() {
        assert_eq!(encode_secret(&[0u8; 20]).len(), 32);
        assert!(!encode_secret(b"abc").contains('='));
    }
}
