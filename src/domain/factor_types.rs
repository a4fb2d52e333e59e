//! `allowed_factor_types` (docs/API.md §16, §21): which types of factor a tenant lets its
//! users enroll — a non-empty set of known types without duplicates, always in the order
//! `["totp","webauthn"]`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{FactorType, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = std::collections::BTreeSet<FactorType>, min_items = 1, max_items = 2,
    example = json!(["totp", "webauthn"]))]
pub struct AllowedFactorTypes(Vec<FactorType>);

impl AllowedFactorTypes {
    pub fn parse(mut types: Vec<FactorType>) -> Result<Self, ParseError> {
        let n = types.len();
        types.sort();
        types.dedup();
        if types.is_empty() || types.len() != n {
            return Err(ParseError(
                "must list \"totp\" and/or \"webauthn\", at least one, each once",
            ));
        }
        Ok(Self(types))
    }

    /// The stored form (the schema constrains it); `None` if it does not parse.
    pub fn from_db(stored: &[String]) -> Option<Self> {
        let types = stored
            .iter()
            .map(|s| FactorType::from_db(s))
            .collect::<Option<Vec<_>>>()?;
        Self::parse(types).ok()
    }

    pub fn to_db(&self) -> Vec<String> {
        self.0.iter().map(|t| t.as_str().to_owned()).collect()
    }

    pub fn allows(&self, t: FactorType) -> bool {
        self.0.contains(&t)
    }

    pub fn as_slice(&self) -> &[FactorType] {
        &self.0
    }
}

impl Default for AllowedFactorTypes {
    fn default() -> Self {
        Self(vec![FactorType::Totp, FactorType::Webauthn])
    }
}

impl<'de> Deserialize<'de> for AllowedFactorTypes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let types = Vec::<FactorType>::deserialize(d)?;
        Self::parse(types).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FactorType::*;

    #[test]
    fn non_empty_known_and_unique_in_a_fixed_order() {
        assert_eq!(
            AllowedFactorTypes::parse(vec![Webauthn, Totp])
                .unwrap()
                .as_slice(),
            &[Totp, Webauthn]
        );
        assert!(AllowedFactorTypes::parse(vec![]).is_err());
        assert!(AllowedFactorTypes::parse(vec![Totp, Totp]).is_err());
        let bad: Result<AllowedFactorTypes, _> = serde_json::from_str(r#"["totp","sms"]"#);
        assert!(bad.is_err());
        let only: AllowedFactorTypes = serde_json::from_str(r#"["webauthn"]"#).unwrap();
        assert!(!only.allows(Totp) && only.allows(Webauthn));
        assert_eq!(
            AllowedFactorTypes::from_db(&["totp".into(), "webauthn".into()]),
            Some(AllowedFactorTypes::default())
        );
    }
}
