//! A sign-in's WebAuthn challenge (docs/API.md §16, §21): `POST
//! /v1/logins/{login_id}/webauthn-challenge`. It carries no proof: not counted, and a lockout
//! does not stop it. Each call replaces the user's live sign-in challenge; it lives 5 min and
//! never past the login. The answer goes through the gate (`verify::webauthn`).

use chrono::Duration;
use utoipa::ToSchema;

use super::challenge::{in_sign_in, require_status};
use super::types::ChallengeStatus;
use crate::crypto::webauthn::CHALLENGE_SECONDS;
use crate::db::webauthn::Purpose;
use crate::domain::ids::{FactorStatus, LoginId};
use crate::error::ApiError;
pub use crate::services::assertion::WebauthnChallenge;
use crate::services::assertion::{assertion_challenge, Ask};
use crate::state::AppState;

/// `POST /v1/logins/{login_id}/webauthn-challenge`.
#[tracing::instrument(skip_all, fields(login_id = %login_id.0))]
pub async fn challenge(
    state: &AppState,
    token: &str,
    login_id: LoginId,
) -> Result<WebauthnChallenge, ApiError> {
    let status = FactorStatus::Active;
    in_sign_in(state, token, login_id, status, async |conn, ctx, _| {
        let wanted = ChallengeStatus::VerificationRequired;
        require_status(&ctx, ctx.factor_id.is_some(), wanted)?;
        let rp = state
            .webauthn
            .get(ctx.surface)
            .ok_or(ApiError::WebauthnUnavailable)?;
        let now = state.now();
        let ask = Ask {
            tenant_id: &ctx.tenant_id,
            user_id: &ctx.user_id,
            rp,
            purpose: Purpose::SignIn,
            login_id: Some(ctx.login_id),
            expires_at: (now + Duration::seconds(CHALLENGE_SECONDS)).min(ctx.expires_at),
        };
        assertion_challenge(conn, ask).await
    })
    .await
}

/// `POST /v1/logins/{login_id}/webauthn`: the assertion, optionally remembering this browser.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnSignInRequest {
    /// `AuthenticationResponseJSON`: what `PublicKeyCredential.toJSON()` returns.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub credential: Option<serde_json::Value>,
    /// As `verify`'s (§12).
    pub remember_device: Option<bool>,
    /// As `verify`'s.
    #[schema(min_length = 1, max_length = 64)]
    pub device_name: Option<String>,
}

/// `POST /v1/logins/{login_id}/webauthn-enrollment`: an optional name (default "Passkey").
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnEnrollRequest {
    #[serde(default)]
    pub name: Option<crate::domain::factor::FactorName>,
}
