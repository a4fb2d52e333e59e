//! A tenant's 2FA policy (the "2-factor Authentication" switch) and the sign-in decision
//! it implies for one user on one surface.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::factor_types::AllowedFactorTypes;
use super::ids::{IdentityProvider, ParseError, Surface, UserVerification};
use super::text::trimmed_label;

/// The name shown above the code in the authenticator app: 1-64 characters without `:`,
/// control or format (Unicode Cf) characters, once surrounding whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
// The pattern is `Issuer::parse` (trim, then 1-64 characters, no `:`, control or format
// character; it lists the BMP format characters only); `maxLength` would count the
// whitespace that is trimmed.
#[schema(value_type = String, example = "MSPbots",
    pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^:\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb](?:[^:\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]{0,62}[^:\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb])?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        // `:` separates issuer from account in the otpauth label, so apps would mis-split it.
        trimmed_label(s, 64, |c| c == ':')
            .map(Self)
            .ok_or(ParseError(
                "must be 1-64 characters without ':', control or invisible formatting characters",
            ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Issuer {
    fn default() -> Self {
        Self("MSPbots".to_owned())
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `max_factors_per_user` (§10): how many active authenticators a user may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = i32, minimum = 1, maximum = 10, default = 5)]
pub struct FactorLimit(i32);

/// A number of days for `remember_device_days` (§12) or `enrollment_grace_days` (§13);
/// 0 turns the feature off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = i32, minimum = 0, maximum = 90, default = 0)]
pub struct Days(i32);

/// An integer policy setting parses only inside its documented range, so a value out of
/// range cannot exist past the request body.
macro_rules! bounded {
    ($name:ident, $min:literal ..= $max:literal, default $default:literal, $msg:literal) => {
        impl $name {
            pub const MIN: i32 = $min;
            pub const MAX: i32 = $max;
            pub fn parse(n: i64) -> Result<Self, ParseError> {
                match i32::try_from(n) {
                    Ok(n) if (Self::MIN..=Self::MAX).contains(&n) => Ok(Self(n)),
                    _ => Err(ParseError($msg)),
                }
            }
            pub fn get(self) -> i32 {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self($default)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // JSON Schema counts `30.0` as the integer 30, so it is accepted; `30.5` is not.
                let n = f64::deserialize(d)?;
                let whole = n.is_finite() && n.fract() == 0.0;
                // `as` saturates, and a saturated value is out of range anyway.
                let parsed = if whole {
                    Self::parse(n as i64)
                } else {
                    Err(ParseError($msg))
                };
                parsed.map_err(serde::de::Error::custom)
            }
        }
    };
}

bounded!(FactorLimit, 1..=10, default 5, "must be an integer from 1 to 10");
bounded!(Days, 0..=90, default 0, "must be an integer from 0 to 90");

/// The tenant's policy, without bookkeeping (version, timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPolicy {
    pub enforce_mfa: bool,
    pub surfaces: Vec<Surface>,
    pub exempt_identity_providers: Vec<IdentityProvider>,
    pub issuer: Issuer,
    pub max_factors_per_user: FactorLimit,
    pub remember_device_days: Days,
    pub enrollment_grace_days: Days,
    /// Which factor types may be enrolled (§16).
    pub allowed_factor_types: AllowedFactorTypes,
    pub webauthn_user_verification: UserVerification,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            enforce_mfa: false,
            surfaces: vec![Surface::App, Surface::Portal],
            exempt_identity_providers: vec![IdentityProvider::Microsoft],
            issuer: Issuer::default(),
            max_factors_per_user: FactorLimit::default(),
            remember_device_days: Days::default(),
            enrollment_grace_days: Days::default(),
            allowed_factor_types: AllowedFactorTypes::default(),
            webauthn_user_verification: UserVerification::Preferred,
        }
    }
}

/// Why a user passes without a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaRequirement {
    /// The tenant does not enforce 2FA on this surface.
    NotRequired,
    /// The tenant enforces 2FA here, but the user's identity provider is exempt.
    Exempt,
    /// A remembered browser stood in for the code (§12); `amr: ["pwd","mfa"]`.
    Remembered,
    /// The user postponed enrollment inside their grace (§13); `amr: ["pwd"]`.
    Grace,
}

/// What the sign-in needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInDecision {
    Authenticated(MfaRequirement),
    EnrollmentRequired,
    VerificationRequired,
}

impl TenantPolicy {
    /// Whether 2FA is enforced on `surface`.
    pub fn enforces_on(&self, surface: Surface) -> bool {
        self.enforced_on(surface)
    }

    fn enforced_on(&self, surface: Surface) -> bool {
        self.enforce_mfa && self.surfaces.contains(&surface)
    }

    fn is_exempt(&self, idp: IdentityProvider) -> bool {
        self.exempt_identity_providers.contains(&idp)
    }

    /// The sign-in decision. An active factor always wins: an enrolled user is challenged
    /// even when the policy is off or their provider is exempt (exemption only waives
    /// enrollment).
    pub fn decide(
        &self,
        surface: Surface,
        idp: IdentityProvider,
        has_active_factor: bool,
    ) -> SignInDecision {
        if has_active_factor {
            SignInDecision::VerificationRequired
        } else if !self.enforced_on(surface) {
            SignInDecision::Authenticated(MfaRequirement::NotRequired)
        } else if self.is_exempt(idp) {
            SignInDecision::Authenticated(MfaRequirement::Exempt)
        } else {
            SignInDecision::EnrollmentRequired
        }
    }

    /// Whether the policy requires this user to keep a factor (on any surface), which
    /// forbids removing it.
    pub fn requires_factor(&self, idp: IdentityProvider) -> bool {
        self.enforce_mfa && !self.surfaces.is_empty() && !self.is_exempt(idp)
    }
}

/// Sorts and de-duplicates a list so stored policies compare and read predictably.
pub fn normalized<T: Copy + Eq + Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentityProvider::*;
    use MfaRequirement::{Exempt, NotRequired};
    use SignInDecision::*;
    use Surface::*;

    fn enforcing(surfaces: Vec<Surface>, exempt: Vec<IdentityProvider>) -> TenantPolicy {
        TenantPolicy {
            enforce_mfa: true,
            surfaces,
            exempt_identity_providers: exempt,
            ..TenantPolicy::default()
        }
    }

    #[test]
    fn bounded_settings_parse_only_their_range() {
        assert_eq!(FactorLimit::default().get(), 5);
        assert!(FactorLimit::parse(0).is_err());
        assert_eq!(FactorLimit::parse(10).unwrap().get(), 10);
        assert!(FactorLimit::parse(11).is_err());
        assert_eq!(Days::default().get(), 0);
        assert_eq!(Days::parse(90).unwrap().get(), 90);
        assert!(Days::parse(-1).is_err());
        assert!(Days::parse(91).is_err());
        assert!(Days::parse(i64::MAX).is_err());
        assert!(serde_json::from_str::<Days>("7").is_ok());
        assert!(serde_json::from_str::<Days>("7.5").is_err());
        assert_eq!(serde_json::from_str::<Days>("45.0").unwrap().get(), 45);
        assert!(serde_json::from_str::<Days>("1e300").is_err());
        assert!(serde_json::from_str::<Days>("-0.0").is_ok_and(|d| d.get() == 0));
        assert!(serde_json::from_str::<FactorLimit>("\"3\"").is_err());
    }

    #[test]
    fn policy_off_lets_everyone_in_without_a_factor() {
        let p = TenantPolicy::default();
        for s in [App, Portal] {
            for idp in [Local, Microsoft] {
                assert_eq!(p.decide(s, idp, false), Authenticated(NotRequired));
            }
        }
    }

    #[test]
    fn enforced_policy_makes_local_users_enroll_and_exempts_microsoft_by_default() {
        let p = enforcing(vec![App, Portal], vec![Microsoft]);
        assert_eq!(p.decide(App, Local, false), EnrollmentRequired);
        assert_eq!(p.decide(Portal, Microsoft, false), Authenticated(Exempt));
    }

    #[test]
    fn emptied_exemptions_require_microsoft_users_too() {
        let p = enforcing(vec![App], vec![]);
        assert_eq!(p.decide(App, Microsoft, false), EnrollmentRequired);
        assert_eq!(
            p.decide(Portal, Microsoft, false),
            Authenticated(NotRequired)
        );
    }

    #[test]
    fn an_active_factor_always_wins() {
        for p in [
            TenantPolicy::default(),
            enforcing(vec![App], vec![Local, Microsoft]),
        ] {
            for s in [App, Portal] {
                for idp in [Local, Microsoft] {
                    assert_eq!(p.decide(s, idp, true), VerificationRequired);
                }
            }
        }
    }

    #[test]
    fn requires_factor_only_when_enforced_somewhere_and_not_exempt() {
        assert!(!TenantPolicy::default().requires_factor(Local));
        assert!(enforcing(vec![Portal], vec![Microsoft]).requires_factor(Local));
        assert!(!enforcing(vec![Portal], vec![Microsoft]).requires_factor(Microsoft));
        assert!(!enforcing(vec![], vec![]).requires_factor(Local));
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(Issuer::parse(" Acme MSP ").unwrap().as_str(), "Acme MSP");
        assert!(Issuer::parse("Ächt & Co").is_ok());
        assert!(Issuer::parse("a:b").is_err());
        assert!(Issuer::parse("").is_err());
        assert!(Issuer::parse(&"x".repeat(65)).is_err());
        for hidden in [
            "\u{202e}SMPbots",
            "MSP\u{feff}bots",
            "MSP\u{200b}bots",
            "MSPbots\u{e0041}",
        ] {
            assert!(Issuer::parse(hidden).is_err(), "{hidden:?}");
        }
    }

    #[test]
    fn normalized_sorts_and_dedups() {
        assert_eq!(normalized(vec![Portal, App, Portal]), vec![App, Portal]);
    }
}
