//! A factor's name (§10): trimmed, 1-64 characters, no control or format character, unique
//! per user ignoring case; and the default name a new factor gets.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::ParseError;
use super::text::trimmed_label;

/// The longest name, in Unicode characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The first default name; later ones are "Authenticator 2", "Authenticator 3"…
pub const DEFAULT_NAME: &str = "Authenticator";

/// A factor name as the user gave it, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
// The pattern is `FactorName::parse` (trim, then 1-64 characters, no control or format
// character; it lists the BMP format characters only), as `Issuer`'s without its `:` rule;
// `maxLength` would count the whitespace that is trimmed.
#[schema(value_type = String, example = "Work phone",
    pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb](?:[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]{0,62}[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
pub struct FactorName(String);

impl FactorName {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        trimmed_label(s, MAX_NAME_CHARS, |_| false)
            .map(Self)
            .ok_or(ParseError(
                "must be 1-64 characters without control or invisible formatting characters",
            ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A name the database already holds (it was parsed on the way in).
    pub(crate) fn from_stored(s: String) -> Self {
        Self(s)
    }
    /// Whether two names clash (the database's rule: equal ignoring case).
    pub fn clashes(&self, other: &str) -> bool {
        self.0.to_lowercase() == other.to_lowercase()
    }
}

impl<'de> Deserialize<'de> for FactorName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The first default name of a WebAuthn factor (§21): "Passkey", "Passkey 2"…
pub const DEFAULT_WEBAUTHN_NAME: &str = "Passkey";

/// The lowest free of "Authenticator", "Authenticator 2", "Authenticator 3"… among `taken`.
pub fn default_name<'a>(taken: impl IntoIterator<Item = &'a str> + Clone) -> FactorName {
    default_name_from(DEFAULT_NAME, taken)
}

/// The lowest free of `base`, "`base` 2", "`base` 3"… among `taken`.
pub fn default_name_from<'a>(
    base: &str,
    taken: impl IntoIterator<Item = &'a str> + Clone,
) -> FactorName {
    (1..)
        .map(|n| {
            FactorName(if n == 1 {
                base.to_owned()
            } else {
                format!("{base} {n}")
            })
        })
        .find(|candidate| !taken.clone().into_iter().any(|t| candidate.clashes(t)))
        .unwrap_or_else(|| FactorName(base.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            FactorName::parse("  Work phone ").unwrap().as_str(),
            "Work phone"
        );
        assert!(FactorName::parse(&"é".repeat(64)).is_ok());
        assert!(FactorName::parse(&"é".repeat(65)).is_err());
        for bad in ["", "   ", "a\u{0007}b", "ab\u{202e}", "a\nb", "\u{200b}"] {
            assert!(FactorName::parse(bad).is_err(), "{bad:?}");
        }
        let n: Result<FactorName, _> = serde_json::from_str("\"x\\u0000\"");
        assert!(n.is_err());
    }

    #[test]
    fn the_default_name_is_the_lowest_free_one() {
        assert_eq!(default_name([]).as_str(), "Authenticator");
        assert_eq!(default_name(["authenticator"]).as_str(), "Authenticator 2");
        assert_eq!(
            default_name(["Authenticator", "Authenticator 3"]).as_str(),
            "Authenticator 2"
        );
        assert_eq!(
            default_name(["Authenticator 2", "AUTHENTICATOR"]).as_str(),
            "Authenticator 3"
        );
        assert!(FactorName::parse("Phone").unwrap().clashes("pHONE"));
        let taken = ["Passkey", "Authenticator"];
        assert_eq!(
            default_name_from(DEFAULT_WEBAUTHN_NAME, taken).as_str(),
            "Passkey 2"
        );
        assert_eq!(
            default_name_from(DEFAULT_WEBAUTHN_NAME, []).as_str(),
            "Passkey"
        );
    }
}
