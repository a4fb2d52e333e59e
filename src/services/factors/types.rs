//! What the factor endpoints take and return (docs/API.md §10).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::factors::FactorRow;
use crate::db::webauthn::CredentialRow;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, FactorType};
use crate::domain::totp::PERIOD_SECS;
use crate::services::logins::TokenType;

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
    /// TOTP only: how far (in seconds, a multiple of 30) this authenticator's clock runs
    /// ahead of the server's (negative: behind), as learned from its last accepted code; 0
    /// while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub drift_seconds: Option<i64>,
    /// WebAuthn only (§16): the RP ID the credential belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "mspbots.ai")]
    pub rp_id: Option<String>,
    /// WebAuthn only: whether the credential may be synced (a passkey); false while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub backup_eligible: Option<bool>,
    /// WebAuthn only: whether it is synced now; false while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub backed_up: Option<bool>,
    /// WebAuthn only: how the browser reaches it (`usb`, `nfc`, `ble`, `internal`,
    /// `hybrid`); `[]` while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub transports: Option<Vec<String>>,
}

impl FactorView {
    /// A factor with its WebAuthn credential, when it is one.
    pub fn with_credential(f: FactorRow, c: Option<&CredentialRow>) -> Self {
        let mut v = Self::from(f);
        if let Some(c) = c.filter(|_| v.kind == FactorType::Webauthn) {
            v.rp_id = Some(c.rp_id.clone());
            v.backup_eligible = Some(c.backup_eligible);
            v.backed_up = Some(c.backed_up);
            v.transports = Some(c.transports.clone());
        }
        v
    }
}

impl From<FactorRow> for FactorView {
    fn from(f: FactorRow) -> Self {
        let active = f.status == FactorStatus::Active;
        let totp = f.factor_type == FactorType::Totp;
        Self {
            factor_id: f.factor_id,
            kind: f.factor_type,
            name: FactorName::from_stored(f.name),
            status: f.status,
            created_at: f.created_at,
            activated_at: f.activated_at,
            last_used_at: f.last_used_at.filter(|_| active),
            drift_seconds: totp.then(|| {
                if active {
                    i64::from(f.drift_steps) * PERIOD_SECS as i64
                } else {
                    0
                }
            }),
            rp_id: None,
            backup_eligible: None,
            backed_up: None,
            transports: None,
        }
    }
}

/// The user's factors, active and pending, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorList {
    pub items: Vec<FactorView>,
}

/// `POST /v1/me/factors`: the type (default `totp`) and an optional name (default: the lowest
/// free "Authenticator N", or "Passkey N" for WebAuthn).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFactorRequest {
    // Absent means TOTP (§21); `null` is not a type, so it is refused like any other.
    #[serde(default, rename = "type", deserialize_with = "present")]
    #[schema(nullable = false)]
    pub kind: Option<FactorType>,
    #[serde(default)]
    pub name: Option<FactorName>,
}

/// A field that may be absent (`None` by `#[serde(default)]`) but not `null`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A new pending factor: an authenticator app's material, or a passkey's creation options.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum NewFactor {
    Totp(crate::services::enrollment::EnrollmentMaterial),
    Webauthn(crate::services::webauthn::WebauthnEnrollment),
}

/// `POST /v1/me/factors/{factor_id}/confirm`: the first code of an authenticator app, or the
/// registration response of a passkey or security key (exactly one).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
#[serde(deny_unknown_fields)]
pub struct ConfirmFactorRequest {
    /// TOTP: exactly six digits.
    #[serde(default)]
    #[schema(nullable = false, pattern = "^[0-9]{6}$")]
    pub code: Option<String>,
    /// WebAuthn: `RegistrationResponseJSON`, what `PublicKeyCredential.toJSON()` returns.
    #[serde(default)]
    #[schema(nullable = false, value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub credential: Option<serde_json::Value>,
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
