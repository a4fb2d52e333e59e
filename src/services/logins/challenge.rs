//! The browser's side of a sign-in, with its mfa token: the login's state, enrollment
//! ("Set Up Authentication"), confirmation, verification and recovery.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::types::{
    AuthenticatedStatus, ChallengeStatus, Enrolled, LoginView, Recovered, TokenType, Verified,
};
use crate::crypto::hashing::HashPurpose;
use crate::db::{self, audit::AuditCtx, logins::LoginCtx};
use crate::domain::audit::AuditType;
use crate::domain::totp::{TimeStep, TotpCode};
use crate::error::ApiError;
use crate::http::extract::ClientMeta;
use crate::metrics::Outcome;
use crate::services::attempt::{self, Proof};
use crate::services::enrollment::{self, EnrollmentMaterial};
use crate::services::step_up::{use_proof, FactorRef};
use crate::services::{amr, audit_ctx, mint, stored_surface, Minted, Subject};
use crate::state::AppState;

/// Parses the path's login id; anything malformed is simply not found.
pub fn parse_login_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::NotFound)
}

/// The login of this mfa token, if it is alive and the one in the path.
async fn load(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: Uuid,
    factor_status: &str,
    lock: bool,
) -> Result<LoginCtx, ApiError> {
    let hash = state
        .keys
        .hash_key
        .hash(HashPurpose::MfaToken, token.as_bytes());
    let ctx = db::logins::by_token(conn, &hash, factor_status, lock)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if ctx.expires_at <= state.now() {
        return Err(ApiError::Unauthenticated);
    }
    if ctx.login_id != login_id {
        return Err(ApiError::NotFound);
    }
    Ok(ctx)
}

fn require_status(ctx: &LoginCtx, status: &str) -> Result<(), ApiError> {
    if ctx.status == status {
        return Ok(());
    }
    Err(ApiError::InvalidState(match status {
        "enrollment_required" => {
            "This sign-in does not need an enrollment: the user already has an authenticator app."
        }
        _ => "This sign-in needs an enrollment first: the user has no authenticator app yet.",
    }))
}

fn login_audit(ctx: &LoginCtx, meta: &ClientMeta) -> Result<AuditCtx, ApiError> {
    let surface = stored_surface(&ctx.surface)?;
    Ok(audit_ctx(
        &ctx.tenant_id,
        Some(&ctx.user_id),
        Some(&ctx.user_id),
        Some(surface),
        meta,
    ))
}

/// The start of every code-carrying call: the token's live login, locked with its user
/// until the transaction ends, in `status`, and the user not locked out.
async fn begin_attempt(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: Uuid,
    factor_status: &str,
    status: &str,
    meta: &ClientMeta,
) -> Result<(LoginCtx, AuditCtx), ApiError> {
    let ctx = load(conn, state, token, login_id, factor_status, true).await?;
    require_status(&ctx, status)?;
    attempt::ensure_not_locked(state, ctx.locked_until, state.now())?;
    let audit = login_audit(&ctx, meta)?;
    Ok((ctx, audit))
}

/// Checks a TOTP code against the login's factor; a wrong code is recorded and answered
/// with `Ok(Err(invalid_code))` (commit, then fail).
async fn check_code(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    code: &TotpCode,
    now: DateTime<Utc>,
) -> Result<Result<TimeStep, ApiError>, ApiError> {
    let (Some(factor_id), Some(key_id), Some(nonce), Some(ct)) =
        (ctx.factor_id, &ctx.key_id, &ctx.nonce, &ctx.ciphertext)
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "code check without a factor"
        )));
    };
    let secret = crate::services::open_secret(
        state,
        &ctx.tenant_id,
        &ctx.user_id,
        factor_id,
        key_id,
        nonce,
        ct,
    )?;
    match attempt::check_totp(state, &secret, code, now) {
        Some(step) => Ok(Ok(step)),
        None => {
            attempt::record_wrong(
                conn,
                state,
                audit,
                Some(ctx.login_id),
                AuditType::TotpVerifyFailed,
                now,
            )
            .await?;
            Ok(Err(ApiError::InvalidCode))
        }
    }
}

/// The access token that ends a sign-in.
fn signed_in(
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
        idp: &ctx.identity_provider,
    };
    mint(state, &who, stored_surface(&ctx.surface)?, amr, now)
}

/// Ends the login as authenticated (its token dies) and writes `login.succeeded`.
async fn finish_login(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    method: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    db::logins::complete(conn, &ctx.tenant_id, ctx.login_id, now).await?;
    db::users::touch_login(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
    let details = serde_json::json!({"login_id": ctx.login_id, "method": method});
    db::audit::insert(conn, audit, AuditType::LoginSucceeded, now, details).await?;
    Ok(())
}

const FACTOR_REMOVED: &str = "The user's authenticator app was removed: sign in again.";

/// `GET /v1/logins/{login_id}`.
pub async fn get(state: &AppState, token: &str, login_id: Uuid) -> Result<LoginView, ApiError> {
    let mut conn = state.pool.get().await?;
    let ctx = load(&mut conn, state, token, login_id, "active", false).await?;
    Ok(LoginView {
        login_id: ctx.login_id,
        status: crate::services::stored(ChallengeStatus::from_db(&ctx.status), "login status")?,
        expires_at: ctx.expires_at,
        tenant_id: ctx.tenant_id,
        user_id: ctx.user_id,
        surface: stored_surface(&ctx.surface)?,
        attempts_left: crate::domain::lockout::MAX_FAILURES - ctx.login_failures,
    })
}

/// `POST /v1/logins/{login_id}/totp-enrollment`.
pub async fn start_enrollment(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let ctx = load(conn, state, token, login_id, "active", true).await?;
        require_status(&ctx, "enrollment_required")?;
        if ctx.factor_id.is_some() {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        let audit = login_audit(&ctx, meta)?;
        enrollment::start(
            conn,
            state,
            &audit,
            &ctx.user_id,
            &ctx.email,
            ctx.expires_at,
            now,
        )
        .await
    })
    .await
}

/// `POST /v1/logins/{login_id}/totp-enrollment/confirm`.
pub async fn confirm_enrollment(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Enrolled, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit) = begin_attempt(
            conn,
            state,
            token,
            login_id,
            "pending",
            "enrollment_required",
            meta,
        )
        .await?;
        // A password alone never adds a device to an account that has one.
        if db::factors::get(conn, &ctx.tenant_id, &ctx.user_id, "active")
            .await?
            .is_some()
        {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        let Some(factor_id) = ctx.factor_id else {
            return Err(ApiError::InvalidState(
                "There is no pending enrollment to confirm: start one first.",
            ));
        };
        if ctx.factor_expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidState(
                "The pending enrollment expired: start a new one.",
            ));
        }
        let step = match check_code(conn, state, &ctx, &audit, &code, now).await? {
            Ok(step) => step,
            Err(e) => return Ok(Err(e)),
        };
        let recovery_codes =
            enrollment::activate(conn, state, &audit, &ctx.user_id, factor_id, step, now).await?;
        finish_login(conn, &ctx, &audit, "totp", now).await?;
        let m = signed_in(state, &ctx, amr::TOTP, now)?;
        Ok(Ok(Enrolled {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            recovery_codes,
        }))
    })
    .await?
}

/// `POST /v1/logins/{login_id}/verify`: the hot path. One transaction: the locking read
/// and one statement that checks-and-sets the replay guard, completes the login, resets the
/// lockout and writes the audit event.
pub async fn verify(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Verified, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit) = begin_attempt(
            conn,
            state,
            token,
            login_id,
            "active",
            "verification_required",
            meta,
        )
        .await?;
        let Some(factor_id) = ctx.factor_id else {
            return Err(ApiError::InvalidState(FACTOR_REMOVED));
        };
        let step = match check_code(conn, state, &ctx, &audit, &code, now).await? {
            Ok(step) => step,
            Err(e) => return Ok(Err(e)),
        };
        if !db::logins::complete_with_totp(conn, &audit, login_id, factor_id, step, now).await? {
            state.metrics.outcome(Outcome::Reused);
            return Ok(Err(ApiError::CodeReused));
        }
        state.metrics.outcome(Outcome::Success);
        let m = signed_in(state, &ctx, amr::TOTP, now)?;
        Ok(Ok(Verified {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
        }))
    })
    .await?
}

/// `POST /v1/logins/{login_id}/recover`.
pub async fn recover(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Recovered, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_recovery("recovery_code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit) = begin_attempt(
            conn,
            state,
            token,
            login_id,
            "active",
            "verification_required",
            meta,
        )
        .await?;
        let Some(factor_id) = ctx.factor_id else {
            return Err(ApiError::InvalidState(FACTOR_REMOVED));
        };
        let factor = FactorRef {
            user_id: &ctx.user_id,
            factor_id,
            sealed: None,
        };
        let used = use_proof(
            conn,
            state,
            &audit,
            Some(login_id),
            &factor,
            &Proof::Recovery(code),
            now,
        )
        .await?;
        if let Err(e) = used {
            return Ok(Err(e));
        }
        db::users::reset_lockout(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
        finish_login(conn, &ctx, &audit, "recovery_code", now).await?;
        let remaining = db::recovery::count_unused(conn, &ctx.tenant_id, factor_id).await?;
        let m = signed_in(state, &ctx, amr::RECOVERY_CODE, now)?;
        Ok(Ok(Recovered {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            recovery_codes_remaining: remaining,
        }))
    })
    .await?
}
