//! "Set Up Authentication" during a sign-in (`enrollment_required`): the enrollment material,
//! and its confirmation by the first code — an attempt through the gate whose acceptance
//! activates the factor and completes the sign-in.

use diesel_async::AsyncPgConnection;

use super::challenge::{
    in_attempt, in_sign_in, login_audit, open_attempt, require_status, SignInAt,
};
use super::types::{AuthenticatedStatus, ChallengeStatus, Enrolled, TokenType};
use super::verify::complete;
use crate::accepted;
use crate::db::{self, audit::AuditCtx, logins::LoginCtx};
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorStatus, FactorType};
use crate::error::ApiError;
use crate::services::attempt::{self, Against, Attempt, Proof, Verdict};
use crate::services::devices::RememberRequest;
use crate::services::enrollment::{self, Activation, EnrollmentMaterial, NewFactor};
use crate::services::tenant::allow_new_in;
use crate::services::ClientMeta;
use crate::state::AppState;

/// `POST /v1/logins/{login_id}/totp-enrollment`, with an optional factor name (§10). It
/// carries no proof: a lockout does not stop it.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn start_enrollment(
    state: &AppState,
    at: SignInAt<'_>,
    name: Option<FactorName>,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    in_enrollment_start(state, at, async |conn, ctx, audit| {
        allow_new_in(conn, &ctx.tenant_id, FactorType::Totp).await?;
        let new = NewFactor {
            user_id: &ctx.user_id,
            email: &ctx.email,
            name,
            enforce_limit: false,
            expires_at: ctx.expires_at,
        };
        enrollment::start(conn, state, &audit, new, now).await
    })
    .await
}

/// `POST /v1/logins/{login_id}/totp-enrollment/confirm`.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn confirm_enrollment(
    state: &AppState,
    at: SignInAt<'_>,
    code: &str,
    remember: &RememberRequest,
) -> Result<Enrolled, ApiError> {
    let proof = attempt::admit_totp(state, at.meta, code)?;
    in_attempt(state, at, CONFIRMING, async |conn, ctx, audit, pending| {
        no_active_factor(conn, &ctx).await?;
        let attempt = open_attempt(state, &ctx, &audit)?;
        let now = attempt.now();
        let Some(p) = pending.first() else {
            // No app's enrollment: a passkey's (`400`, §21) or none.
            enrollment::pending_of_type(pending_of(conn, &ctx).await?, FactorType::Totp, now)?;
            return Err(ApiError::InvalidState(enrollment::NO_PENDING));
        };
        if ctx.factor_expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidState(
                "The pending enrollment expired: start a new one.",
            ));
        }
        let proof = (&proof, Against::Pending(p));
        enrolled(
            conn,
            state,
            &attempt,
            proof,
            (&ctx, &audit),
            remember,
            at.meta,
        )
        .await
    })
    .await
}

/// The one transaction of both enrollment starts at sign-in (app, passkey): the sign-in
/// waits for an enrollment. They carry no proof, so a lockout does not stop them. `body`
/// gets the login and its audit context.
pub(super) async fn in_enrollment_start<T>(
    state: &AppState,
    at: SignInAt<'_>,
    body: impl AsyncFnOnce(&mut AsyncPgConnection, LoginCtx, AuditCtx) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    in_sign_in(
        state,
        at.token,
        at.login_id,
        FactorStatus::Active,
        async |conn, ctx, _| {
            // A password alone never adds a device to an account that has one.
            let has_active = ctx.factor_id.is_some();
            require_status(&ctx, has_active, ChallengeStatus::EnrollmentRequired)?;
            let audit = login_audit(&ctx, at.meta);
            body(conn, ctx, audit).await
        },
    )
    .await
}

/// What both enrollment confirms at sign-in (app, passkey) read and wait for
/// (`challenge::in_attempt`): the pending factors, and a sign-in that waits for an enrollment.
pub(super) const CONFIRMING: (FactorStatus, ChallengeStatus) =
    (FactorStatus::Pending, ChallengeStatus::EnrollmentRequired);

/// A password alone never adds a device to an account that has one: an enrollment confirmed
/// at sign-in needs a user without an active factor.
pub(super) async fn no_active_factor(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
) -> Result<(), ApiError> {
    if db::factors::active(conn, &ctx.tenant_id, &ctx.user_id)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    Err(ApiError::InvalidState(
        "The user already has an authenticator app.",
    ))
}

/// The factor the login's user has pending, of either type, if any.
pub(super) async fn pending_of(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
) -> Result<Option<db::factors::FactorRow>, ApiError> {
    Ok(match ctx.factor_id {
        Some(id) => db::factors::by_id(conn, &ctx.tenant_id, &ctx.user_id, id).await?,
        None => None,
    })
}

/// The end of an enrollment confirmed during a sign-in (an app's first code, a passkey's
/// registration): the proof is evaluated against the pending factor; once accepted the factor
/// becomes active with the first recovery codes, then the sign-in's one completion
/// (`verify::complete`).
pub(super) async fn enrolled(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    (proof, against): (&Proof, Against<'_>),
    (ctx, audit): (&LoginCtx, &AuditCtx),
    remember: &RememberRequest,
    meta: &ClientMeta,
) -> Result<Verdict<Enrolled>, ApiError> {
    let accepted = accepted!(attempt.evaluate(conn, state, proof, against).await?);
    let (user_id, how, now) = (&ctx.user_id, Activation::Replace, attempt.now());
    let recovery_codes = enrollment::activate(conn, state, audit, user_id, accepted, how, now)
        .await?
        .unwrap_or_default();
    let done = complete(conn, state, ctx, audit, accepted, remember, meta, now).await?;
    Ok(Verdict::Accepted(Enrolled {
        status: AuthenticatedStatus::Authenticated,
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        recovery_codes,
        device_token: done.device.as_ref().map(|d| d.device_token.clone()),
        device_expires_at: done.device.map(|d| d.device_expires_at),
    }))
}
