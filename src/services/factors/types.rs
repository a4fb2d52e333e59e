//! What the factor endpoints take and return (docs/API.md §10).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::factors::FactorRow;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus};
use crate::domain::totp::PERIOD_SECS;
use crate::services::logins::TokenType;

/// The only factor type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactorType {
    Totp,
}

/// One authenticator of a user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"factor_id": "0b7f3c7e-8a4b-4c1e-9d55-3f1f0b2f9a10", "type": "totp",
    "name": "Work phone", "status": "active", "created_at": "2026-11-28T09:00:00Z",
    "activated_at": "2026-11-28T09:01:00Z", "last_used_at": "2026-11-28T09:30:00Z",
    "drift_seconds": 0}))]
pub struct FactorView {
    pub factor_id: FactorId,
    #[serde(rename = "type")]
    pub kind: FactorType,
    pub name: FactorName,
    pub status: FactorStatus,
    pub created_at: DateTime<Utc>,
    /// `null` while pending.
    #[schema(required = true)]
    pub activated_at: Option<DateTime<Utc>>,
    /// When a code of this factor was last accepted; `null` while pending.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// How far (in seconds, a multiple of 30) this authenticator's clock runs ahead of the
    /// server's (negative: behind), as learned from its last accepted code; 0 while pending.
    pub drift_seconds: i64,
}

impl From<FactorRow> for FactorView {
    fn from(f: FactorRow) -> Self {
        let active = f.status == FactorStatus::Active;
        Self {
            factor_id: f.factor_id,
            kind: FactorType::Totp,
            name: FactorName::from_stored(f.name),
            status: f.status,
            created_at: f.created_at,
            activated_at: f.activated_at,
            last_used_at: f.last_used_at.filter(|_| active),
            drift_seconds: if active {
                i64::from(f.drift_steps) * PERIOD_SECS as i64
            } else {
                0
            },
        }
    }
}

/// The user's factors, active and pending, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorList {
    pub items: Vec<FactorView>,
}

/// `POST /v1/me/factors`: the name is optional (default: the lowest free "Authenticator N").
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFactorRequest {
    #[serde(default)]
    pub name: Option<FactorName>,
}

/// `PATCH /v1/me/factors/{factor_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: FactorName,
}

/// A confirmed factor and a fresh token; `recovery_codes` only for the user's first factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorConfirmed {
    pub factor: FactorView,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// Shown once; present only when this is the user's first active factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Option<Vec<String>>,
}
