//! A sign-in that waits for a code (`verification_required`): verify with a TOTP code,
//! recover with a recovery code, resynchronise with two codes (§11). All three are one
//! attempt through the gate (`services::attempt`) and one completion (`challenge::finish_login`).

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::challenge::{finish_login, in_attempt, open_attempt, signed_in, SignInAt};
use super::types::{AuthenticatedStatus, ChallengeStatus, Recovered, TokenType, Verified};
use crate::accepted;
use crate::db::{audit::AuditCtx, logins::LoginCtx, webauthn::Purpose};
use crate::domain::ids::FactorStatus;
use crate::domain::totp::PERIOD_SECS;
use crate::error::ApiError;
use crate::services::attempt::{self, Accepted, Against, Method, Proof, Verdict};
use crate::services::devices::{self, RememberRequest, RevokeReason};
use crate::services::resync::ResyncRequest;
use crate::services::{ClientMeta, Minted};
use crate::state::AppState;

/// A sign-in completed by a proof: the token, the accepted proof, and the device remembered.
pub(super) struct Completed {
    pub minted: Minted,
    pub accepted: Accepted,
    pub device: Option<devices::Remembered>,
}

/// The attempt of every call on a sign-in that waits for a code, in the gate's order; on
/// acceptance the sign-in completes in the same transaction.
async fn attempt(
    state: &AppState,
    at: SignInAt<'_>,
    proof: Proof,
    remember: &RememberRequest,
) -> Result<Completed, ApiError> {
    let waits = (FactorStatus::Active, ChallengeStatus::VerificationRequired);
    in_attempt(state, at, waits, async |conn, ctx, audit, factors| {
        if matches!(proof, Proof::Webauthn(..)) && state.webauthn.get(ctx.surface).is_none() {
            return Err(ApiError::WebauthnUnavailable);
        }
        let attempt = open_attempt(state, &ctx, &audit)?;
        let against = Against::Active(&factors);
        let accepted = accepted!(attempt.evaluate(conn, state, &proof, against).await?);
        let now = attempt.now();
        complete(conn, state, &ctx, &audit, accepted, remember, at.meta, now)
            .await
            .map(Verdict::Accepted)
    })
    .await
}

/// The sign-in's completion after an accepted proof. A recovery-code sign-in ends the trust
/// of every remembered browser and never remembers this one (§12).
#[allow(clippy::too_many_arguments)]
pub(super) async fn complete(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    accepted: Accepted,
    remember: &RememberRequest,
    meta: &ClientMeta,
    now: DateTime<Utc>,
) -> Result<Completed, ApiError> {
    let (method, factor_id) = (accepted.method, accepted.factor_id);
    finish_login(conn, ctx, audit, method.as_str(), factor_id, now).await?;
    let device = if method == Method::RecoveryCode {
        let reason = RevokeReason::RecoveryCodeSignIn;
        devices::revoke_all_devices(conn, audit, &ctx.user_id, reason, now).await?;
        None
    } else {
        let (user, surface) = (&ctx.user_id, ctx.surface);
        devices::remember(conn, state, audit, user, surface, remember, meta, now).await?
    };
    let minted = signed_in(state, ctx, method.amr(), now)?;
    Ok(Completed {
        minted,
        accepted,
        device,
    })
}

/// The attempt of a call that never remembers this browser (a recovery code, a
/// resynchronisation): its proof admitted, then the attempt.
async fn unremembered(
    state: &AppState,
    at: SignInAt<'_>,
    parse: impl FnOnce() -> Result<Proof, ApiError>,
) -> Result<Completed, ApiError> {
    let proof = attempt::admit(state, at.meta, parse)?;
    let never = RememberRequest::default();
    attempt(state, at, proof, &never).await
}

/// The answer of a sign-in completed by a code or a passkey.
fn verified(done: Completed) -> Verified {
    Verified {
        status: AuthenticatedStatus::Authenticated,
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        device_token: done.device.as_ref().map(|d| d.device_token.clone()),
        device_expires_at: done.device.map(|d| d.device_expires_at),
    }
}

/// `POST /v1/logins/{login_id}/verify`: the hot path.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn verify(
    state: &AppState,
    at: SignInAt<'_>,
    code: &str,
    remember: &RememberRequest,
) -> Result<Verified, ApiError> {
    let proof = attempt::admit_totp(state, at.meta, code)?;
    let done = attempt(state, at, proof, remember).await?;
    Ok(verified(done))
}

/// `POST /v1/logins/{login_id}/webauthn` (§16): an assertion answering the sign-in's live
/// challenge, through the same gate and completion as a code.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn webauthn(
    state: &AppState,
    at: SignInAt<'_>,
    credential: Option<&serde_json::Value>,
    remember: &RememberRequest,
) -> Result<Verified, ApiError> {
    let proof = attempt::admit(state, at.meta, || {
        crate::services::assertion::parse_assertion(credential, Purpose::SignIn)
    })?;
    let done = attempt(state, at, proof, remember).await?;
    Ok(verified(done))
}

/// `POST /v1/logins/{login_id}/recover`.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn recover(
    state: &AppState,
    at: SignInAt<'_>,
    code: &str,
) -> Result<Recovered, ApiError> {
    let done = unremembered(state, at, || {
        attempt::parse_recovery("recovery_code", code).map(Proof::Recovery)
    })
    .await?;
    Ok(Recovered {
        status: AuthenticatedStatus::Authenticated,
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        recovery_codes_remaining: done.accepted.recovery_codes_remaining.unwrap_or(0),
    })
}

/// Signed in after a resynchronisation, with the drift the factor learned.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "authenticated", "access_token": "eyJhbGciOiJFZERTQSJ9...",
    "token_type": "Bearer", "expires_in": 3600, "drift_seconds": 120}))]
pub struct Resynced {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// The authenticator's learned offset, in seconds (a multiple of 30).
    pub drift_seconds: i64,
}

/// `POST /v1/logins/{login_id}/resync` (§11): the sign-in completes with two consecutive
/// codes, and the factor learns the offset.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn resync(
    state: &AppState,
    at: SignInAt<'_>,
    req: &ResyncRequest,
) -> Result<Resynced, ApiError> {
    let done = unremembered(state, at, || req.parse()).await?;
    Ok(Resynced {
        status: AuthenticatedStatus::Authenticated,
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        drift_seconds: i64::from(done.accepted.drift) * PERIOD_SECS as i64,
    })
}
