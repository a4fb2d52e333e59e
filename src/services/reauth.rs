//! Re-authentication in one call (docs/API.md §17): a signed-in user proves a factor again
//! and gets a fresh access token, recent for step-up, so a page asks once and then makes
//! several sensitive calls. One attempt through the gate (`services::attempt`) in §21's
//! order; the old token stays valid; remembered devices are left alone, whatever the proof.
//! A passkey answers the user's one live §17 challenge (`webauthn_challenge`).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::assertion::{self, assertion_challenge, Ask, WebauthnChallenge};
use super::attempt::{self, Against, Attempt, Proof, Verdict};
use super::logins::TokenType;
use super::{lock_own_row, mint, own_audit_ctx, surface_of, ClientMeta, Subject};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::crypto::webauthn::CHALLENGE_SECONDS;
use crate::db::{self, factors::FactorSecret, webauthn::Purpose};
use crate::domain::audit::AuditType;
use crate::error::{ApiError, FieldError};
use crate::services::in_transaction;
use crate::state::AppState;

/// Exactly one proof of a factor (§17, §21): a body with none, or with more than one, is
/// `400 invalid_request`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    /// A current code of any of the user's active authenticator apps: exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: Option<String>,
    /// An unused recovery code; it is used up.
    pub recovery_code: Option<String>,
    /// A passkey's or security key's answer to the user's live challenge from `POST
    /// /v1/me/reauthenticate/webauthn-challenge`: `AuthenticationResponseJSON`, what
    /// `PublicKeyCredential.toJSON()` returns. Missing members or bad base64url are
    /// `invalid_request` (not counted; the challenge stays alive); a response that does not
    /// verify, an expired challenge or one since replaced is `invalid_credential`, counted,
    /// and uses the challenge up.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub credential: Option<serde_json::Value>,
}

/// The names of the proof fields, for the shape error.
const PROOFS: &[&str] = &["code", "recovery_code", "credential"];

impl ReauthRequest {
    /// The one proof this body carries, parsed (§21 step 2; not counted). A new kind of
    /// proof is one field above, one name in [`PROOFS`] and one line here.
    pub fn parse(&self) -> Result<Proof, ApiError> {
        let given = [
            self.code
                .as_deref()
                .map(|c| attempt::parse_totp("code", c).map(Proof::Totp)),
            self.recovery_code
                .as_deref()
                .map(|c| attempt::parse_recovery("recovery_code", c).map(Proof::Recovery)),
            self.credential
                .as_ref()
                .map(|c| assertion::parse_assertion(Some(c), Purpose::Reauthentication)),
        ];
        let mut given = given.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(proof), None) => proof,
            _ => Err(one_proof()),
        }
    }
}

fn one_proof() -> ApiError {
    let message = format!("send exactly one of: {}", PROOFS.join(", "));
    ApiError::InvalidRequest {
        detail: message.clone(),
        errors: PROOFS
            .iter()
            .map(|f| FieldError {
                field: (*f).to_owned(),
                message: message.clone(),
            })
            .collect(),
    }
}

/// A fresh access token with the `amr` of the factor just proven and `auth_time` now.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJFZERTQSJ9...", "token_type": "Bearer",
    "expires_in": 3600}))]
pub struct Reauthenticated {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
}

/// `POST /v1/me/reauthenticate`: the per-IP limit and the shape, then under the user's row
/// lock the lockout, the user's active factors (none: `409 invalid_state`) and the
/// evaluation; on acceptance `user.reauthenticated` and the new token, in one transaction.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn reauthenticate(
    state: &AppState,
    claims: &AccessClaims,
    req: &ReauthRequest,
    meta: &ClientMeta,
) -> Result<Reauthenticated, ApiError> {
    let proof = attempt::admit(state, meta, || req.parse())?;
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let surface = surface_of(state, claims);
    // §21 step 3, before the lockout.
    if matches!(proof, Proof::Webauthn(..)) && state.webauthn.get(surface).is_none() {
        return Err(ApiError::WebauthnUnavailable);
    }
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        let attempt = Attempt::lock_user(conn, state, &audit, user_id).await?;
        // Any active factor, of either type, makes a re-authentication possible; only TOTP
        // factors have a secret for a code (a passkey-only user's code is a wrong code, §21).
        let active = db::factors::active(conn, tenant_id, user_id).await?;
        let factors: Vec<FactorSecret> = active.iter().filter_map(|f| f.secret()).collect();
        if active.is_empty() {
            return Err(ApiError::InvalidState(
                "The user has no active factor to re-authenticate with.",
            ));
        }
        let against = Against::Active(&factors);
        let accepted = accepted!(attempt.evaluate(conn, state, &proof, against).await?);
        let now = attempt.now();
        let mut details = serde_json::json!({"method": accepted.method.as_str()});
        if let Some(id) = accepted.factor_id {
            details["factor_id"] = serde_json::json!(id);
        }
        let kind = AuditType::UserReauthenticated;
        db::audit::insert(conn, &audit, kind, now, details).await?;
        let user = db::users::get(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let who = Subject::of(tenant_id, user_id, &user);
        let minted = mint(state, &who, surface, accepted.method.amr(), now)?;
        Ok(Verdict::Accepted(Reauthenticated {
            access_token: minted.token,
            token_type: TokenType::Bearer,
            expires_in: minted.expires_in,
        }))
    })
    .await?
    .answer()
}

/// `POST /v1/me/reauthenticate/webauthn-challenge`: request options for the user's active
/// WebAuthn credentials of the token's surface's RP ID, stored as the user's one live §17
/// challenge (each call replaces it), 5 min. No proof: not counted, no lockout.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn webauthn_challenge(
    state: &AppState,
    claims: &AccessClaims,
) -> Result<WebauthnChallenge, ApiError> {
    let rp = state
        .webauthn
        .get(surface_of(state, claims))
        .ok_or(ApiError::WebauthnUnavailable)?;
    let expires_at = state.now() + Duration::seconds(CHALLENGE_SECONDS);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    in_transaction(state, async move |conn| {
        // The user's row lock orders a new challenge with a response being checked.
        lock_own_row(conn, tenant_id, user_id).await?;
        let ask = Ask {
            tenant_id,
            user_id,
            rp,
            purpose: Purpose::Reauthentication,
            login_id: None,
            expires_at,
        };
        assertion_challenge(conn, ask).await
    })
    .await
}
