//! The browser's side of a sign-in, with its mfa token: the login's state, enrollment
//! ("Set Up Authentication"), confirmation, verification and recovery.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::FutureExt;

use super::types::{
    AuthenticatedStatus, ChallengeStatus, Enrolled, LoginView, Recovered, TokenType, Verified,
};
use crate::crypto::hashing::HashPurpose;
use crate::db::{self, audit::AuditCtx, factors::FactorSecret, logins::LoginCtx};
use crate::domain::audit::AuditType;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, LoginId};
use crate::domain::totp::TotpCode;
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::services::attempt::{self, Matched, Proof, Window};
use crate::services::devices::{self, RememberRequest, RevokeReason};
use crate::services::enrollment::{self, Activation, EnrollmentMaterial, NewFactor};
use crate::services::step_up::use_proof;
use crate::services::{amr, audit_ctx, mint, ClientMeta, Minted, Subject};
use crate::state::AppState;

/// Parses the path's login id; anything malformed is simply not found.
pub fn parse_login_id(s: &str) -> Result<LoginId, ApiError> {
    LoginId::parse(s).ok_or(ApiError::NotFound)
}

/// The login of this mfa token, if it is alive and the one in the path, with the user's
/// factors in `factor_status`.
pub(super) async fn load(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: LoginId,
    factor_status: FactorStatus,
    lock: bool,
) -> Result<(LoginCtx, Vec<FactorSecret>), ApiError> {
    let hash = mfa_token_hash(state, token);
    let found = db::logins::by_token(conn, &hash, factor_status, lock).await?;
    found_login(state, found, login_id)
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

/// The start of every code-carrying call: the token's live login, locked with its user
/// until the transaction ends, in `status`, the user not locked out, and the user's factors
/// in `factor_status`.
pub(super) async fn begin_attempt(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: LoginId,
    factor_status: FactorStatus,
    wanted: ChallengeStatus,
    meta: &ClientMeta,
) -> Result<(LoginCtx, AuditCtx, Vec<FactorSecret>), ApiError> {
    let (ctx, factors) = load(conn, state, token, login_id, factor_status, true).await?;
    attempt_on(state, ctx, factors, factor_status, wanted, meta)
}

/// `begin_attempt`'s checks of the login it locked.
fn attempt_on(
    state: &AppState,
    ctx: LoginCtx,
    factors: Vec<FactorSecret>,
    factor_status: FactorStatus,
    wanted: ChallengeStatus,
    meta: &ClientMeta,
) -> Result<(LoginCtx, AuditCtx, Vec<FactorSecret>), ApiError> {
    // With the pending factor loaded nothing is known of an active one; confirm checks.
    let has_active = factor_status == FactorStatus::Active && ctx.factor_id.is_some();
    require_status(&ctx, has_active, wanted)?;
    attempt::ensure_not_locked(state, &ctx.lockout(), state.now())?;
    let audit = login_audit(&ctx, meta);
    Ok((ctx, audit, factors))
}

/// The start of a code-carrying call on a sign-in that waits for a code (verify, recover,
/// resync): `begin_attempt` for `verification_required`, with the user's active factors,
/// of which there is at least one.
pub(super) async fn begin_verification(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: LoginId,
    meta: &ClientMeta,
) -> Result<(LoginCtx, AuditCtx, Vec<FactorSecret>), ApiError> {
    let (ctx, factors) = load(conn, state, token, login_id, FactorStatus::Active, true).await?;
    verification_on(state, ctx, factors, meta)
}

/// `begin_verification`'s checks of the login it locked.
fn verification_on(
    state: &AppState,
    ctx: LoginCtx,
    factors: Vec<FactorSecret>,
    meta: &ClientMeta,
) -> Result<(LoginCtx, AuditCtx, Vec<FactorSecret>), ApiError> {
    let wanted = ChallengeStatus::VerificationRequired;
    let (ctx, audit, factors) =
        attempt_on(state, ctx, factors, FactorStatus::Active, wanted, meta)?;
    if factors.is_empty() {
        return Err(ApiError::InvalidState(FACTOR_REMOVED));
    }
    Ok((ctx, audit, factors))
}

/// The attempt of a login: its audit context, the lockout read under the lock, its
/// wrong codes so far.
pub(super) fn login_attempt<'a>(ctx: &LoginCtx, audit: &'a AuditCtx) -> attempt::Attempt<'a> {
    attempt::Attempt {
        audit,
        lockout: ctx.lockout(),
        login: Some((ctx.login_id, ctx.login_failures)),
    }
}

/// Checks a TOTP code against the login's factors (the user's active ones, or the pending
/// one at a confirmation); a wrong code is recorded and answered with
/// `Ok(Err(invalid_code))` (commit, then fail).
async fn check_code(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    factors: &[FactorSecret],
    code: &TotpCode,
    window: Window,
) -> Result<Result<Matched, ApiError>, ApiError> {
    if factors.is_empty() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "code check without a factor"
        )));
    }
    let attempt = login_attempt(ctx, audit);
    attempt::check_totp_or_count(conn, state, &attempt, factors, code, state.now(), window).await
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

/// Ends the login as authenticated (its token dies) and writes `login.succeeded`, naming
/// the factor whose code it was (none for a recovery code).
pub(super) async fn finish_login(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    method: &str,
    factor_id: Option<FactorId>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    db::logins::complete(conn, &ctx.tenant_id, ctx.login_id, now).await?;
    db::users::touch_login(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
    let mut details = serde_json::json!({"login_id": ctx.login_id.0, "method": method});
    if let Some(id) = factor_id {
        details["factor_id"] = serde_json::json!(id);
    }
    db::audit::insert(conn, audit, AuditType::LoginSucceeded, now, details).await?;
    Ok(())
}

pub(super) const FACTOR_REMOVED: &str = "The user's authenticator app was removed: sign in again.";

/// `GET /v1/logins/{login_id}`.
pub async fn get(state: &AppState, token: &str, login_id: LoginId) -> Result<LoginView, ApiError> {
    let mut conn = state.pool.get().await?;
    let (ctx, _) = load(
        &mut conn,
        state,
        token,
        login_id,
        FactorStatus::Active,
        false,
    )
    .await?;
    let status = ChallengeStatus::of(ctx.status, ctx.factor_id.is_some());
    Ok(LoginView {
        login_id: ctx.login_id.0,
        status: crate::services::stored(status, "login status")?,
        expires_at: ctx.expires_at,
        tenant_id: ctx.tenant_id,
        user_id: ctx.user_id,
        surface: ctx.surface,
        attempts_left: crate::domain::lockout::MAX_FAILURES - ctx.login_failures,
    })
}

/// `POST /v1/logins/{login_id}/totp-enrollment`, with an optional factor name (§10).
pub async fn start_enrollment(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    name: Option<FactorName>,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, _) = load(conn, state, token, login_id, FactorStatus::Active, true).await?;
        // A password alone never adds a device to an account that has one.
        require_status(
            &ctx,
            ctx.factor_id.is_some(),
            ChallengeStatus::EnrollmentRequired,
        )?;
        let audit = login_audit(&ctx, meta);
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
pub async fn confirm_enrollment(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    code: &str,
    remember: &RememberRequest,
    meta: &ClientMeta,
) -> Result<Enrolled, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit, pending) = begin_attempt(
            conn,
            state,
            token,
            login_id,
            FactorStatus::Pending,
            ChallengeStatus::EnrollmentRequired,
            meta,
        )
        .await?;
        // A password alone never adds a device to an account that has one.
        if !db::factors::active(conn, &ctx.tenant_id, &ctx.user_id)
            .await?
            .is_empty()
        {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        if pending.is_empty() {
            return Err(ApiError::InvalidState(
                "There is no pending enrollment to confirm: start one first.",
            ));
        }
        if ctx.factor_expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidState(
                "The pending enrollment expired: start a new one.",
            ));
        }
        let m = match check_code(
            conn,
            state,
            &ctx,
            &audit,
            &pending,
            &code,
            Window::Enrollment,
        )
        .await?
        {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let recovery_codes = enrollment::activate(
            conn,
            state,
            &audit,
            &ctx.user_id,
            m,
            Activation::Replace,
            now,
        )
        .await?
        .unwrap_or_default();
        finish_login(conn, &ctx, &audit, "totp", Some(m.factor_id), now).await?;
        let device = devices::remember(
            conn,
            state,
            &audit,
            &ctx.user_id,
            ctx.surface,
            remember,
            meta,
            now,
        )
        .await?;
        let m = signed_in(state, &ctx, amr::TOTP, now)?;
        Ok(Ok(Enrolled {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            recovery_codes,
            device_token: device.as_ref().map(|d| d.device_token.clone()),
            device_expires_at: device.map(|d| d.device_expires_at),
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
    login_id: LoginId,
    code: &str,
    remember: &RememberRequest,
    meta: &ClientMeta,
) -> Result<Verified, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let hash = mfa_token_hash(state, token);
    let mut pooled = state.pool.get().await?;
    let a = VerifyAttempt {
        state,
        hash: &hash,
        login_id,
        code: &code,
        remember,
        meta,
        now,
    };
    // Again at most once, on the same connection: a completion call that was refused (not
    // yet prepared there, it went out after the COMMIT and wrote nothing) is prepared now.
    for _ in 0..2 {
        if let Some(verified) = verify_on(&mut pooled, &a).await? {
            return Ok(verified);
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "the verify's completion call was refused twice on one connection"
    )))
}

struct VerifyAttempt<'a> {
    state: &'a AppState,
    hash: &'a [u8; 32],
    login_id: LoginId,
    code: &'a TotpCode,
    remember: &'a RememberRequest,
    meta: &'a ClientMeta,
    now: DateTime<Utc>,
}

/// One verify transaction; `None` when the completion call was refused (nothing written,
/// the transaction over).
async fn verify_on(
    conn: &mut AsyncPgConnection,
    a: &VerifyAttempt<'_>,
) -> Result<Option<Verified>, ApiError> {
    let (state, meta, remember, now) = (a.state, a.meta, a.remember, a.now);
    // BEGIN goes out with the locking read, COMMIT with the completion: 2 round trips, not 4.
    let found = db::begin_with(conn, |c| {
        db::logins::by_token(c, a.hash, FactorStatus::Active, true).boxed()
    })
    .await;
    let result: Result<Option<Result<Verified, ApiError>>, ApiError> = async {
        let (ctx, factors) = found_login(state, found?, a.login_id)?;
        let (ctx, audit, factors) = verification_on(state, ctx, factors, meta)?;
        let m =
            match check_code(conn, state, &ctx, &audit, &factors, a.code, Window::Signed).await? {
                Ok(m) => m,
                Err(e) => return Ok(Some(Err(e))),
            };
        if !remember.remember {
            // The completion is the last statement: it goes out with the COMMIT, and the
            // token is signed first, so that nothing can fail after the commit.
            let minted = signed_in(state, &ctx, amr::TOTP, now)?;
            return Ok(
                match complete_login_and_commit(conn, state, &ctx, &audit, m, now).await? {
                    None => None,
                    Some(false) => Some(Err(ApiError::CodeReused)),
                    Some(true) => Some(Ok(Verified {
                        status: AuthenticatedStatus::Authenticated,
                        access_token: minted.token,
                        token_type: TokenType::Bearer,
                        expires_in: minted.expires_in,
                        device_token: None,
                        device_expires_at: None,
                    })),
                },
            );
        }
        if !complete_login(conn, state, &ctx, &audit, m, now).await? {
            return Ok(Some(Err(ApiError::CodeReused)));
        }
        let device = devices::remember(
            conn,
            state,
            &audit,
            &ctx.user_id,
            ctx.surface,
            remember,
            meta,
            now,
        )
        .await?;
        let m = signed_in(state, &ctx, amr::TOTP, now)?;
        Ok(Some(Ok(Verified {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            device_token: device.as_ref().map(|d| d.device_token.clone()),
            device_expires_at: device.map(|d| d.device_expires_at),
        })))
    }
    .await;
    match db::end_transaction(conn, result).await? {
        Some(outcome) => outcome.map(Some),
        None => Ok(None),
    }
}

/// The replay guard of the factor that accepted the code and, if it passes, the login's
/// completion (`mfa_complete_login_totp`, one statement). False: the step was used meanwhile
/// (`totp.code_reused` written).
pub(super) async fn complete_login(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    m: Matched,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let accepted = db::logins::complete_with_totp(conn, &completion(ctx, audit, &m, now)).await?;
    count_completion(state, &m, accepted);
    Ok(accepted)
}

/// `complete_login` as the transaction's last statement, sent with its COMMIT (one round
/// trip): the transaction is over when this returns. `None`: the call was refused, having
/// gone out after the COMMIT (not yet prepared on this connection); nothing was written.
async fn complete_login_and_commit(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &LoginCtx,
    audit: &AuditCtx,
    m: Matched,
    now: DateTime<Utc>,
) -> Result<Option<bool>, ApiError> {
    let c = completion(ctx, audit, &m, now);
    let accepted = match db::logins::complete_with_totp_and_commit(conn, &c).await {
        Err(e) if db::logins::refused_outside_its_transaction(&e) => {
            tracing::warn!("the verify's completion call was not prepared on its connection");
            return Ok(None);
        }
        r => r?,
    };
    count_completion(state, &m, accepted);
    Ok(Some(accepted))
}

fn completion<'a>(
    ctx: &'a LoginCtx,
    audit: &'a AuditCtx,
    m: &Matched,
    now: DateTime<Utc>,
) -> db::logins::TotpCompletion<'a> {
    db::logins::TotpCompletion {
        audit,
        user_id: &ctx.user_id,
        login_id: ctx.login_id,
        factor_id: m.factor_id,
        step: m.step,
        drift: m.drift,
        now,
    }
}

fn count_completion(state: &AppState, m: &Matched, accepted: bool) {
    if accepted {
        state.metrics.outcome(Outcome::Success);
        state.metrics.drift(m.drift);
    } else {
        state.metrics.outcome(Outcome::Reused);
    }
}

/// `POST /v1/logins/{login_id}/recover`.
pub async fn recover(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    code: &str,
    meta: &ClientMeta,
) -> Result<Recovered, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_recovery("recovery_code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit, factors) = begin_verification(conn, state, token, login_id, meta).await?;
        let attempt = login_attempt(&ctx, &audit);
        let proof = Proof::Recovery(code);
        let used = use_proof(conn, state, &attempt, &ctx.user_id, &factors, &proof, now).await?;
        if let Err(e) = used {
            return Ok(Err(e));
        }
        db::users::reset_lockout(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
        // A recovery-code sign-in ends the trust of every remembered browser.
        devices::revoke_all_devices(
            conn,
            &audit,
            &ctx.user_id,
            RevokeReason::RecoveryCodeSignIn,
            now,
        )
        .await?;
        finish_login(conn, &ctx, &audit, "recovery_code", None, now).await?;
        let remaining = db::recovery::count_unused(conn, &ctx.tenant_id, &ctx.user_id).await?;
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
