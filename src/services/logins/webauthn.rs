//! A sign-in's WebAuthn challenge (docs/API.md §16, §21): `POST
//! /v1/logins/{login_id}/webauthn-challenge`. It carries no proof: not counted, and a lockout
//! does not stop it. Each call replaces the user's live sign-in challenge; it lives 5 min and
//! never past the login. The answer goes through the gate (`verify::webauthn`).

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::challenge::{load, require_status};
use super::types::ChallengeStatus;
use crate::crypto::webauthn::{transports_from_text, Credential, CHALLENGE_SECONDS};
use crate::db::{self, webauthn::Purpose};
use crate::domain::ids::{FactorStatus, FactorType, LoginId};
use crate::error::ApiError;
use crate::services::tenant::policy_of;
use crate::state::AppState;

/// Request options for `PublicKeyCredential.parseRequestOptionsFromJSON()`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"expires_at": "2026-11-28T10:05:00Z", "public_key": {
    "challenge": "…", "timeout": 300000, "rpId": "mspbots.ai", "userVerification": "preferred",
    "allowCredentials": [{"type": "public-key", "id": "…", "transports": ["internal"]}]}}))]
pub struct WebauthnChallenge {
    /// `PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub public_key: serde_json::Value,
    /// The challenge must be answered before this.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/logins/{login_id}/webauthn-challenge`.
#[tracing::instrument(skip_all, fields(login_id = %login_id.0))]
pub async fn challenge(
    state: &AppState,
    token: &str,
    login_id: LoginId,
) -> Result<WebauthnChallenge, ApiError> {
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, _) = load(conn, state, token, login_id, FactorStatus::Active, true).await?;
        let wanted = ChallengeStatus::VerificationRequired;
        require_status(&ctx, ctx.factor_id.is_some(), wanted)?;
        let rp = state
            .webauthn
            .get(ctx.surface)
            .ok_or(ApiError::WebauthnUnavailable)?;
        let (tenant_id, user_id) = (&ctx.tenant_id, &ctx.user_id);
        let active = db::factors::active(conn, tenant_id, user_id).await?;
        let rows = db::webauthn::of_user(conn, tenant_id, user_id).await?;
        let mut credentials = Vec::new();
        for row in rows.into_iter().filter(|c| c.rp_id == rp.rp_id()) {
            let is_active = active
                .iter()
                .any(|f| f.factor_id == row.factor_id && f.factor_type == FactorType::Webauthn);
            let Some(stored) = row.credential.filter(|_| is_active) else {
                continue;
            };
            let mut c: Credential = serde_json::from_value(stored)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored credential: {e}")))?;
            c.transports = transports_from_text(&row.transports);
            credentials.push(c);
        }
        if credentials.is_empty() {
            // Never an empty allowCredentials (§21).
            return Err(ApiError::InvalidState(
                "The user has no passkey or security key for this surface.",
            ));
        }
        let tenant = db::tenants::get(conn, tenant_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let uv = policy_of(&tenant)?.webauthn_user_verification;
        let (public_key, rp_state) = rp
            .start_authentication(credentials, uv)
            .map_err(ApiError::Internal)?;
        let now = state.now();
        let expires_at = (now + Duration::seconds(CHALLENGE_SECONDS)).min(ctx.expires_at);
        db::webauthn::put_challenge(
            conn,
            tenant_id,
            user_id,
            Purpose::SignIn,
            rp.rp_id(),
            Some(ctx.login_id),
            None,
            &rp_state,
            expires_at,
        )
        .await?;
        Ok(WebauthnChallenge {
            public_key,
            expires_at,
        })
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
