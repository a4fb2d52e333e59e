//! The browser's side of a sign-in, with its mfa token: finding the token's login, the
//! checks every call on it shares, its one completion, and `GET /v1/logins/{login_id}`.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;

use super::types::{ChallengeStatus, LoginView};
use crate::crypto::hashing::HashPurpose;
use crate::db::{self, audit::AuditCtx, factors::FactorSecret, logins::LoginCtx};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, FactorStatus, LoginId};
use crate::error::ApiError;
use crate::services::attempt::{Attempt, Verdict};
use crate::services::tenant::policy_of;
use crate::services::{audit_ctx, grace, mint, ClientMeta, Minted, Subject};
use crate::state::AppState;

/// Parses the path's login id; anything malformed is simply not found.
pub fn parse_login_id(s: &str) -> Result<LoginId, ApiError> {
    LoginId::parse(s).ok_or(ApiError::NotFound)
}

/// The login of this mfa token, if it is alive and the one in the path, with the user's
/// factors in `factor_status`; read without a lock (`GET /v1/logins/{login_id}`).
#[tracing::instrument(skip_all)]
async fn peek(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: LoginId,
) -> Result<(LoginCtx, Vec<FactorSecret>), ApiError> {
    let hash = mfa_token_hash(state, token);
    let found = db::logins::by_token(conn, &hash, FactorStatus::Active, false).await?;
    found_login(state, found, login_id)
}

/// The one transaction of every call on a sign-in (its mfa token): the `BEGIN` goes out
/// together with the read of the token's live login, its user and the user's factors in
/// `factor_status`, the login and user rows locked until the transaction ends (so one user's
/// attempts run one at a time on every instance); then `body`. `Ok` commits (a refusal the
/// gate recorded included, `Verdict::Refused`), `Err` rolls back.
#[tracing::instrument(skip_all)]
pub(super) async fn in_sign_in<T>(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    factor_status: FactorStatus,
    body: impl AsyncFnOnce(&mut AsyncPgConnection, LoginCtx, Vec<FactorSecret>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let hash = mfa_token_hash(state, token);
    let mut pooled = state.pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let found = db::begin_with(conn, |c| {
        db::logins::by_token(c, &hash, factor_status, true).boxed()
    })
    .await;
    let result = async {
        let (ctx, factors) = found_login(state, found?, login_id)?;
        body(conn, ctx, factors).await
    }
    .await;
    db::end_transaction(conn, result).await
}

/// Which sign-in a call is a step of, and who calls: the browser's mfa token, the login in
/// the path, the client (for the per-IP limit and the audit event). No `Debug`: the token is
/// a credential and must never reach a log or a span.
#[derive(Clone, Copy)]
pub struct SignInAt<'a> {
    pub token: &'a str,
    pub login_id: LoginId,
    pub meta: &'a ClientMeta,
}

/// [`in_sign_in`] for a call that carries a proof, through the gate's step 3
/// ([`check_attempt`]): the login waits for `wanted`. `body` gets the login, its audit context
/// and the user's factors in `factor_status`; a refusal it returns is committed, then answered.
pub(super) async fn in_attempt<T>(
    state: &AppState,
    at: SignInAt<'_>,
    (factor_status, wanted): (FactorStatus, ChallengeStatus),
    body: impl AsyncFnOnce(
        &mut AsyncPgConnection,
        LoginCtx,
        AuditCtx,
        Vec<FactorSecret>,
    ) -> Result<Verdict<T>, ApiError>,
) -> Result<T, ApiError> {
    in_sign_in(
        state,
        at.token,
        at.login_id,
        factor_status,
        async |conn, ctx, factors| {
            let audit = check_attempt(&ctx, factor_status, wanted, at.meta)?;
            body(conn, ctx, audit, factors).await
        },
    )
    .await?
    .answer()
}

fn mfa_token_hash(state: &AppState, token: &str) -> [u8; 32] {
    state
        .keys
        .hash_key
        .hash(HashPurpose::MfaToken, token.as_bytes())
}

/// The found login, if its token is alive and it is the one in the path.
fn found_login(
    state: &AppState,
    found: Option<(LoginCtx, Vec<FactorSecret>)>,
    login_id: LoginId,
) -> Result<(LoginCtx, Vec<FactorSecret>), ApiError> {
    let (ctx, factors) = found.ok_or(ApiError::Unauthenticated)?;
    if ctx.expires_at <= state.now() {
        return Err(ApiError::Unauthenticated);
    }
    if ctx.login_id != login_id {
        return Err(ApiError::NotFound);
    }
    Ok((ctx, factors))
}

/// What the login waits for now (`ChallengeStatus::of`); `has_active` is whether the user
/// has an active factor, when the caller loaded it.
pub(super) fn require_status(
    ctx: &LoginCtx,
    has_active: bool,
    wanted: ChallengeStatus,
) -> Result<(), ApiError> {
    if ChallengeStatus::of(ctx.status, has_active) == Some(wanted) {
        return Ok(());
    }
    Err(ApiError::InvalidState(match wanted {
        ChallengeStatus::EnrollmentRequired => {
            "This sign-in does not need an enrollment: the user already has an authenticator app."
        }
        ChallengeStatus::VerificationRequired => {
            "This sign-in needs an enrollment first: the user has no authenticator app yet."
        }
    }))
}

pub(super) fn login_audit(ctx: &LoginCtx, meta: &ClientMeta) -> AuditCtx {
    audit_ctx(
        &ctx.tenant_id,
        Some(&ctx.user_id),
        Some(ctx.user_id.as_str()),
        Some(ctx.surface),
        meta,
    )
}

/// Step 3 of the attempt gate on a sign-in, on the login [`in_sign_in`] read: it waits for
/// `wanted` (and, for a code, the user still has an active factor). Returns its audit context.
fn check_attempt(
    ctx: &LoginCtx,
    factor_status: FactorStatus,
    wanted: ChallengeStatus,
    meta: &ClientMeta,
) -> Result<AuditCtx, ApiError> {
    // With the pending factor loaded nothing is known of an active one; confirm checks.
    let has_active = factor_status == FactorStatus::Active && ctx.factor_id.is_some();
    require_status(ctx, has_active, wanted)?;
    // Any active factor, of any type (`factors` holds the TOTP ones only: a code sent by a
    // passkey-only user is a wrong code, §21).
    if wanted == ChallengeStatus::VerificationRequired && ctx.factor_id.is_none() {
        return Err(ApiError::InvalidState(FACTOR_REMOVED));
    }
    Ok(login_audit(ctx, meta))
}

/// Step 4 for a sign-in's attempt: the lockout read under the login's lock, and the
/// sign-in's wrong codes so far.
pub(super) fn open_attempt<'a>(
    state: &AppState,
    ctx: &'a LoginCtx,
    audit: &'a AuditCtx,
) -> Result<Attempt<'a>, ApiError> {
    let login = Some((ctx.login_id, ctx.login_failures));
    Attempt::open(state, audit, &ctx.user_id, ctx.lockout(), login)
}

/// The access token that ends a sign-in.
pub(super) fn signed_in(
    state: &AppState,
    ctx: &LoginCtx,
    amr: &[&str],
    now: DateTime<Utc>,
) -> Result<Minted, ApiError> {
    let who = Subject {
        tenant_id: &ctx.tenant_id,
        user_id: &ctx.user_id,
        email: &ctx.email,
        roles: &ctx.roles,
        idp: ctx.identity_provider,
    };
    mint(state, &who, ctx.surface, amr, now)
}

/// The one completion of a sign-in: the login ends as authenticated (its token dies) and
/// `login.succeeded` names how and, for a code, the factor. (The user's sign-in time was
/// stored by the gate's acceptance, or by the caller for a sign-in without a proof.)
#[tracing::instrument(skip_all)]
pub(super) async fn finish_login(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    method: &str,
    factor_id: Option<FactorId>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut details = serde_json::json!({"login_id": ctx.login_id.0, "method": method});
    if let Some(id) = factor_id {
        details["factor_id"] = serde_json::json!(id);
    }
    // The login's end and its event in one round trip: neither reads the other.
    let conn: &AsyncPgConnection = conn;
    db::pipelined(
        db::logins::complete(conn, &ctx.tenant_id, ctx.login_id, now),
        db::audit::insert(conn, audit, AuditType::LoginSucceeded, now, details),
    )
    .await?;
    Ok(())
}

pub(super) const FACTOR_REMOVED: &str = "The user's authenticator app was removed: sign in again.";

/// `GET /v1/logins/{login_id}`, with what the pages need of the tenant's policy (§21).
#[tracing::instrument(skip_all)]
pub async fn get(state: &AppState, token: &str, login_id: LoginId) -> Result<LoginView, ApiError> {
    let mut conn = state.pool.get().await?;
    let (ctx, _) = peek(&mut conn, state, token, login_id).await?;
    let status = ChallengeStatus::of(ctx.status, ctx.factor_id.is_some());
    let status = crate::services::stored(status, "login status")?;
    let tenant = db::tenants::get(&mut conn, &ctx.tenant_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let policy = policy_of(&tenant)?;
    let (mut factor_types, mut allowed_factor_types, mut webauthn_available) = (None, None, None);
    let grace_ends_at = match status {
        ChallengeStatus::EnrollmentRequired => {
            allowed_factor_types = Some(policy.allowed_factor_types.clone());
            webauthn_available = Some(state.webauthn.get(ctx.surface).is_some());
            let started = db::grace::started_at(&mut conn, &ctx.tenant_id, &ctx.user_id).await?;
            grace::running(started, policy.enrollment_grace_days, state.now())
        }
        ChallengeStatus::VerificationRequired => {
            let (t, u, s) = (&ctx.tenant_id, &ctx.user_id, ctx.surface);
            factor_types =
                Some(crate::services::webauthn::factor_types(&mut conn, state, t, u, s).await?);
            None
        }
    };
    Ok(LoginView {
        factor_types,
        allowed_factor_types,
        webauthn_available,
        login_id: ctx.login_id.0,
        status,
        expires_at: ctx.expires_at,
        tenant_id: ctx.tenant_id,
        user_id: ctx.user_id,
        surface: ctx.surface,
        attempts_left: crate::domain::lockout::MAX_FAILURES - ctx.login_failures,
        remember_device_days: policy.remember_device_days.get(),
        grace_ends_at,
    })
}
