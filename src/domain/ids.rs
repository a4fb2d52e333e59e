//! Identifiers and small value types, parsed once at the edge so the rest of the code never
//! handles a raw, unchecked string. They travel typed all the way into SQL: each derives
//! Diesel's `AsExpression`/`FromSqlRow` (attributes only; the `ToSql`/`FromSql` impls live in
//! `db::types`, so this module does no I/O).

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::text::is_hidden;

/// Why a value was rejected; the message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub &'static str);

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-')
}

fn parse_opaque_id(s: &str) -> Result<String, ParseError> {
    if s.is_empty() || s.len() > 128 || !s.chars().all(is_id_char) {
        return Err(ParseError("must be 1-128 characters of [A-Za-z0-9._:@-]"));
    }
    // `.` and `..` are path segments a client's URL normalisation would remove or resolve.
    if s.chars().all(|c| c == '.') {
        return Err(ParseError("must not be made of dots only"));
    }
    Ok(s.to_owned())
}

macro_rules! opaque_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(transparent)]
        #[schema(value_type = String, min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9._:@-]*[A-Za-z0-9_:@-][A-Za-z0-9._:@-]*$")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                parse_opaque_id(s).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// A value the database or a token this service signed already holds: those
            /// were parsed on the way in (and the database constrains them).
            pub(crate) fn from_stored(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A uuid-keyed identifier this service mints.
macro_rules! opaque_uuid {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        #[serde(transparent)]
        #[schema(value_type = uuid::Uuid)]
        pub struct $name(pub uuid::Uuid);

        #[allow(clippy::new_without_default)] // a fresh id is never a default
        impl $name {
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
            /// Anything that is not a uuid names nothing.
            pub fn parse(s: &str) -> Option<Self> {
                uuid::Uuid::parse_str(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

opaque_id!(
    /// A tenant of the primary MSPbots account system.
    TenantId
);
opaque_id!(
    /// A user of the primary MSPbots account system, unique within a tenant.
    UserId
);

/// An e-mail address as the primary account system knows it. Only lightly checked: this
/// service does not send mail, it shows the address as the authenticator account name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = "email", max_length = 254, example = "jane@acme.example")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 254
            && !t.chars().any(|c| is_hidden(c) || c.is_whitespace())
            && t.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
        if ok {
            Ok(Self(t.to_owned()))
        } else {
            Err(ParseError("must be an e-mail address"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

opaque_uuid!(
    /// One sign-in (a row of `logins`).
    LoginId
);
opaque_uuid!(
    /// One TOTP factor of a user.
    FactorId
);
opaque_uuid!(
    /// One webhook endpoint of a tenant.
    WebhookId
);
opaque_uuid!(
    /// One delivery of one event to one webhook (a row of `webhook_deliveries`).
    DeliveryId
);

macro_rules! string_enum {
    ($($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? })+) => {
        $(string_enum!(@one $(#[$meta])* $name { $($variant => $text),+ });)+
    };
    (@one $(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parses the stored form; `None` for anything else.
            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where the user signs in: the MSPbots app or the Client Portal.
    Surface { App => "app", Portal => "portal" }
    /// How the primary login proved the password factor.
    IdentityProvider { Local => "local", Microsoft => "microsoft" }
    /// A TOTP factor's life: pending between enrollment and its confirming code, then active.
    FactorStatus { Pending => "pending", Active => "active" }
    /// What kind of second factor a factor is (§16).
    FactorType { Totp => "totp", Webauthn => "webauthn" }
    /// A tenant's WebAuthn user-verification policy (§16, §21).
    UserVerification { Preferred => "preferred", Required => "required" }
    /// Whether a webhook receives deliveries.
    WebhookStatus { Active => "active", Disabled => "disabled" }
    /// Where a delivery stands: waiting for (another) attempt, delivered, or given up.
    DeliveryState { Pending => "pending", Succeeded => "succeeded", Failed => "failed" }
    /// Where a sign-in stands.
    LoginStatus {
        Authenticated => "authenticated",
        EnrollmentRequired => "enrollment_required",
        VerificationRequired => "verification_required",
        Failed => "failed",
    }
);

/// Parses a list of stored enum values, dropping none silently: unknown values are an error
/// because the database constrains them.
pub fn parse_db_list<T>(items: &[String], parse: fn(&str) -> Option<T>) -> Option<Vec<T>> {
    items.iter().map(|s| parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_ids_accept_the_documented_alphabet_only() {
        assert!(TenantId::parse("acme-01.eu:x@y_z").is_ok());
        assert!(TenantId::parse(&"a".repeat(128)).is_ok());
        assert!(TenantId::parse(&"a".repeat(129)).is_err());
        assert!(TenantId::parse("").is_err());
        assert!(UserId::parse("has space").is_err());
        assert!(UserId::parse("ä").is_err());
        assert!(UserId::parse("a/b").is_err());
    }

    #[test]
    fn ids_of_dots_only_are_rejected() {
        for bad in [".", "..", "...", &".".repeat(128)] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
        assert!(TenantId::parse(".a").is_ok());
        assert!(UserId::parse("a..").is_ok());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let ok: Result<UserId, _> = serde_json::from_str("\"u-1\"");
        assert!(ok.is_ok());
        let bad: Result<UserId, _> = serde_json::from_str("\"u 1\"");
        assert!(bad.is_err());
    }

    #[test]
    fn emails_are_lightly_checked() {
        assert_eq!(
            Email::parse(" jane@acme.example ").unwrap().as_str(),
            "jane@acme.example"
        );
        assert!(Email::parse("jäne+x@acme.example").is_ok());
        for bad in [
            "",
            "jane",
            "@acme",
            "jane@",
            "a b@c",
            "a@b@c",
            "ja\u{202e}ne@acme.example",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_round_trip_their_stored_form() {
        for s in Surface::ALL {
            assert_eq!(Surface::from_db(s.as_str()), Some(*s));
        }
        assert_eq!(
            IdentityProvider::from_db("microsoft"),
            Some(IdentityProvider::Microsoft)
        );
        assert_eq!(IdentityProvider::from_db("google"), None);
        let s: Surface = serde_json::from_str("\"portal\"").unwrap();
        assert_eq!(s, Surface::Portal);
    }
}
