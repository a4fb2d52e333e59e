//! What a webhook subscribes to: every audit type (now and future) or a list of them.

use crate::domain::audit::AuditType;
use crate::domain::ids::ParseError;

/// What a webhook subscribes to: every type (now and future), or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    All,
    Only(Vec<AuditType>),
}

impl EventTypes {
    /// The stored and shown form: `["*"]` or the type names.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            EventTypes::All => vec!["*".to_owned()],
            EventTypes::Only(v) => v.iter().map(|t| t.as_str().to_owned()).collect(),
        }
    }

    /// `["*"]` is every type (a `"*"` beside anything else, itself included, is refused, §20:
    /// the schema says `maxItems: 1`); otherwise 1–50 known audit types, duplicates dropped.
    pub fn parse(items: &[String]) -> Result<Self, ParseError> {
        if items.iter().any(|s| s == "*") {
            return match items.len() == 1 {
                true => Ok(EventTypes::All),
                false => Err(ParseError("\"*\" must be the only entry")),
            };
        }
        if items.is_empty() || items.len() > 50 {
            return Err(ParseError("must hold 1-50 audit event types, or [\"*\"]"));
        }
        let mut out: Vec<AuditType> = Vec::new();
        for s in items {
            let t = AuditType::parse(s).ok_or(ParseError("holds an unknown event type"))?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(EventTypes::Only(out))
    }

    pub fn matches(&self, t: AuditType) -> bool {
        match self {
            EventTypes::All => true,
            EventTypes::Only(v) => v.contains(&t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_all_or_known_types() {
        assert_eq!(EventTypes::parse(&["*".into()]), Ok(EventTypes::All));
        let one = EventTypes::parse(&["login.succeeded".into(), "login.succeeded".into()]).unwrap();
        assert_eq!(one, EventTypes::Only(vec![AuditType::LoginSucceeded]));
        assert!(one.matches(AuditType::LoginSucceeded) && !one.matches(AuditType::UserLocked));
        assert!(EventTypes::All.matches(AuditType::WebhookDisabled));
        assert!(EventTypes::parse(&["login.nope".into()]).is_err());
        assert!(EventTypes::parse(&[]).is_err());
        assert!(EventTypes::parse(&["*".into(), "user.locked".into()]).is_err());
        assert!(EventTypes::parse(&["user.locked".into(), "*".into()]).is_err());
        // Conformance found `["*", "*"]` accepted while the schema says one item.
        assert!(EventTypes::parse(&["*".into(), "*".into()]).is_err());
        // Every current audit type may be subscribed to.
        let all: Vec<String> = AuditType::ALL
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        assert_eq!(
            EventTypes::parse(&all),
            Ok(EventTypes::Only(AuditType::ALL.to_vec()))
        );
        assert_eq!(EventTypes::All.to_strings(), vec!["*"]);
        // §21: the v1.2 types among them.
        let reauth = EventTypes::parse(&["user.reauthenticated".into()]).unwrap();
        assert!(reauth.matches(AuditType::UserReauthenticated));
    }
}
