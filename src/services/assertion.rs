//! Asking for a WebAuthn assertion (docs/API.md §16, §17, §21), shared by a sign-in's
//! `webauthn-challenge` and the signed-in user's `reauthenticate/webauthn-challenge`: the
//! request options for the user's active credentials of one RP ID, and the user's live
//! challenge of that purpose, replaced. Carries no proof: not counted, no lockout. The answer
//! is parsed here and checked by the attempt gate (`attempt::webauthn`).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::attempt::Proof;
use super::tenant::policy_of;
use crate::crypto::webauthn::{self as wa, transports_from_text, Credential, RelyingParty};
use crate::db::{self, webauthn::Purpose};
use crate::domain::ids::{FactorType, LoginId, TenantId, UserId};
use crate::error::ApiError;

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

/// Whose challenge, under which RP ID, for what, and until when.
pub struct Ask<'a> {
    pub tenant_id: &'a TenantId,
    pub user_id: &'a UserId,
    pub rp: &'a RelyingParty,
    pub purpose: Purpose,
    /// The sign-in it belongs to; none for §17.
    pub login_id: Option<LoginId>,
    pub expires_at: DateTime<Utc>,
}

/// The options and the stored challenge; `409 invalid_state` when the user has no active
/// WebAuthn factor of the RP ID (never an empty `allowCredentials`, §21). The caller holds
/// the user's (or the login's) row lock.
#[tracing::instrument(skip_all)]
pub async fn assertion_challenge(
    conn: &mut AsyncPgConnection,
    ask: Ask<'_>,
) -> Result<WebauthnChallenge, ApiError> {
    let (tenant_id, user_id, rp) = (ask.tenant_id, ask.user_id, ask.rp);
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
    db::webauthn::put_challenge(
        conn,
        tenant_id,
        user_id,
        ask.purpose,
        rp.rp_id(),
        ask.login_id,
        None,
        &rp_state,
        ask.expires_at,
    )
    .await?;
    Ok(WebauthnChallenge {
        public_key,
        expires_at: ask.expires_at,
    })
}

/// A `credential` field holding an assertion answering a challenge of `purpose`, or
/// `400 invalid_request` (§21 step 2: not counted, the challenge left alive).
pub fn parse_assertion(
    credential: Option<&serde_json::Value>,
    purpose: Purpose,
) -> Result<Proof, ApiError> {
    credential
        .and_then(wa::parse_assertion)
        .map(|r| Proof::Webauthn(Box::new(r), purpose))
        .ok_or_else(|| {
            ApiError::field(
                "credential",
                "must be an AuthenticationResponseJSON (PublicKeyCredential.toJSON())",
            )
        })
}
