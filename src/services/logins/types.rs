//! The request and response bodies of the sign-in resource.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::factor_types::AllowedFactorTypes;
use crate::domain::ids::{
    Email, FactorType, IdentityProvider, LoginStatus, Surface, TenantId, UserId,
};
use crate::domain::policy::MfaRequirement;

/// `POST /v1/logins`: the primary login has checked the password (or Microsoft sign-in).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"tenant_id": "acme", "user_id": "u-1001", "email": "jane@acme.example",
    "display_name": "Jane Doe", "identity_provider": "local", "roles": ["admin"], "surface": "app"}))]
#[serde(deny_unknown_fields)]
pub struct StartLogin {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: Email,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub display_name: Option<String>,
    pub identity_provider: IdentityProvider,
    /// Roles in the primary account system; `admin` may administer the tenant.
    #[serde(default)]
    #[schema(max_items = 32, value_type = Option<Vec<Role>>)]
    pub roles: Option<Vec<String>>,
    pub surface: Surface,
    /// The `device_token` of a browser remembered earlier (§12), from the login backend's
    /// own cookie. When it is live for this tenant, user and surface and the user has an
    /// authenticator, the answer is `authenticated` with `mfa: "remembered"`; otherwise it
    /// is ignored and the normal flow follows (nothing says why). Over 100 characters: `400`.
    #[schema(
        max_length = 100,
        example = "dv_3q2-7wEXAMPLEtokenOnlyTheLoginBackendKeeps"
    )]
    pub device_token: Option<String>,
}

// Only documents the items of `roles`; `parse_roles` checks them.
/// A role in the primary account system: 1-64 characters, no whitespace, control or format
/// characters.
#[derive(ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 64,
    pattern = r"^[^\s\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]+$", example = "admin")]
pub struct Role(pub String);

/// What the sign-in needs next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginStarted {
    /// Signed in: no second factor needed (`mfa`: `not_required`, `exempt`), or a live
    /// remembered browser stood in for the code (`remembered`, §12: `amr: ["pwd","mfa"]`,
    /// `auth_time` of the code typed on that browser).
    #[schema(example = json!({"status": "authenticated", "login_id": "7f0d3c2e-8a51-4c1b-9a57-5d1f0e6b2a10",
        "mfa": "not_required", "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...", "token_type": "Bearer", "expires_in": 3600}))]
    Authenticated {
        login_id: Uuid,
        mfa: MfaRequirement,
        access_token: String,
        token_type: TokenType,
        expires_in: u32,
    },
    /// "Setup MFA": the user must enroll an authenticator app. While the user's enrollment
    /// grace runs (§13), `grace_ends_at` says until when they may postpone it
    /// (`POST /v1/logins/{login_id}/skip-enrollment`).
    EnrollmentRequired {
        login_id: Uuid,
        mfa_token: String,
        expires_at: DateTime<Utc>,
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        grace_ends_at: Option<DateTime<Utc>>,
    },
    /// The user must prove a factor: a code from their authenticator app, or a passkey.
    VerificationRequired {
        login_id: Uuid,
        mfa_token: String,
        expires_at: DateTime<Utc>,
        /// The factor types the user can use on this surface (§16, §21), in the order
        /// `["totp","webauthn"]`; `[]`: only a recovery code works.
        factor_types: Vec<FactorType>,
    },
}

/// Always `Bearer`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// Always `authenticated`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatedStatus {
    Authenticated,
}

/// What a sign-in in progress waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeStatus {
    /// "Setup MFA": an authenticator app must be enrolled.
    EnrollmentRequired,
    /// A code from the authenticator app.
    VerificationRequired,
}

impl ChallengeStatus {
    /// What a live login waits for now. The stored status was decided at its start; a user
    /// who has enrolled since (on another device or sign-in) is asked for a code instead.
    pub fn of(stored: LoginStatus, has_active_factor: bool) -> Option<Self> {
        match (stored, has_active_factor) {
            (LoginStatus::EnrollmentRequired, false) => Some(Self::EnrollmentRequired),
            (LoginStatus::EnrollmentRequired, true) | (LoginStatus::VerificationRequired, _) => {
                Some(Self::VerificationRequired)
            }
            (LoginStatus::Authenticated | LoginStatus::Failed, _) => None,
        }
    }
}

/// The state of a sign-in in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginView {
    pub login_id: Uuid,
    pub status: ChallengeStatus,
    pub expires_at: DateTime<Utc>,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub surface: Surface,
    /// Wrong codes this mfa token may still take.
    pub attempts_left: i32,
    /// The tenant's `remember_device_days` (§12): how long "Don't ask again on this
    /// browser" lasts; 0 when the tenant does not offer it.
    pub remember_device_days: i32,
    /// While `enrollment_required` inside the user's enrollment grace (§13): when it ends
    /// (until then the sign-in may `skip-enrollment`). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// While `verification_required`: the factor types the user can use here (§21).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub factor_types: Option<Vec<FactorType>>,
    /// While `enrollment_required`: the factor types the tenant lets users enroll.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub allowed_factor_types: Option<AllowedFactorTypes>,
    /// While `enrollment_required`: whether passkeys can be registered on this surface.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webauthn_available: Option<bool>,
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

/// A code from the authenticator app at sign-in, optionally remembering this browser.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456", "remember_device": true, "device_name": "Work laptop"}))]
#[serde(deny_unknown_fields)]
pub struct SignInCodeRequest {
    /// Exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
    /// "Don't ask again on this browser" (§12): when the tenant's `remember_device_days` is
    /// above 0 the answer carries a `device_token`; at 0 the flag is ignored.
    pub remember_device: Option<bool>,
    /// A name for the remembered browser (1-64 characters, without control or invisible
    /// formatting characters); default: from the User-Agent.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub device_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"recovery_code": "7kq2m-x9d4t"}))]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// One of the codes shown at enrollment; case, spaces and hyphens do not matter.
    pub recovery_code: String,
    /// Accepted and ignored: a recovery-code sign-in never remembers a browser.
    pub remember_device: Option<bool>,
    /// Accepted and ignored.
    pub device_name: Option<String>,
}

/// Signed in with enrollment postponed (§13): `amr: ["pwd"]`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "authenticated", "mfa": "grace", "access_token": "eyJhbGciOiJFZERTQSJ9...",
    "token_type": "Bearer", "expires_in": 3600, "grace_ends_at": "2026-12-07T09:00:00Z"}))]
pub struct Skipped {
    pub status: AuthenticatedStatus,
    pub mfa: MfaRequirement,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// After this the user must enroll to sign in.
    pub grace_ends_at: DateTime<Utc>,
}

/// Signed in after a second factor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "authenticated", "access_token": "eyJhbGciOiJFZERTQSJ9...", "token_type": "Bearer", "expires_in": 3600}))]
pub struct Verified {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// `dv_…`, shown only here: when `remember_device` was asked and the tenant's
    /// `remember_device_days` is above 0 (§12). The login backend keeps it in an HttpOnly
    /// cookie of its own and sends it as `device_token` with the next `POST /v1/logins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_token: Option<String>,
    /// With `device_token`: when it stops working (absolute, never extended by use).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_expires_at: Option<DateTime<Utc>>,
}

/// Signed in, with the recovery codes of the new factor (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    #[schema(example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Vec<String>,
    /// `dv_…`, shown only here: when `remember_device` was asked and the tenant's
    /// `remember_device_days` is above 0 (§12). The login backend keeps it in an HttpOnly
    /// cookie of its own and sends it as `device_token` with the next `POST /v1/logins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_token: Option<String>,
    /// With `device_token`: when it stops working (absolute, never extended by use).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub device_expires_at: Option<DateTime<Utc>>,
}

/// Signed in with a recovery code, which is now used up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    pub recovery_codes_remaining: i64,
}
