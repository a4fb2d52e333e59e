//! The parts every second-factor attempt shares (verify, confirm, recover, step-up): code
//! parsing, the per-IP limit, the lockout gate, code checks and recording a wrong code.
//!
//! Attempts run in a transaction that has locked the user's row, so one user's attempts are
//! evaluated one at a time by every instance. A wrong code must be *committed* while the
//! request still fails, so transactions here return `Ok(Err(e))` for "commit, then answer
//! `e`" and `Err(e)` for "roll back".

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::crypto::hashing::{ct_eq, HashPurpose};
use crate::crypto::tokens;
use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, LoginId, TenantId};
use crate::domain::lockout::LockoutState;
use crate::domain::totp::{self, TimeStep, TotpCode};
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::services::step_up::FactorRef;
use crate::services::ClientMeta;
use crate::state::AppState;

/// One second-factor attempt in progress: who (for audit events), the user's lockout state
/// as read under the row lock, and the sign-in it belongs to with its wrong codes so far.
pub struct Attempt<'a> {
    pub audit: &'a AuditCtx,
    pub lockout: LockoutState,
    pub login: Option<(LoginId, i32)>,
}

/// What the caller sent as proof of the second factor.
pub enum Proof {
    Totp(TotpCode),
    /// Canonical (normalised) recovery code.
    Recovery(String),
}

/// A TOTP code field: exactly six ASCII digits, else 400 `invalid_request` (not counted).
pub fn parse_totp(field: &str, code: &str) -> Result<TotpCode, ApiError> {
    TotpCode::parse(code).ok_or_else(|| ApiError::field(field, "must be exactly 6 digits"))
}

pub fn parse_recovery(field: &str, code: &str) -> Result<String, ApiError> {
    tokens::normalize_recovery_code(code)
        .ok_or_else(|| ApiError::field(field, "must be a recovery code like xxxxx-xxxxx"))
}

/// An `X-MFA-Code` value: a TOTP code or a recovery code.
pub fn parse_any(field: &str, code: &str) -> Result<Proof, ApiError> {
    if let Some(c) = TotpCode::parse(code) {
        return Ok(Proof::Totp(c));
    }
    tokens::normalize_recovery_code(code)
        .map(Proof::Recovery)
        .ok_or_else(|| ApiError::field(field, "must be a 6-digit code or a recovery code"))
}

/// The per-client-IP limit on requests that carry a code.
pub fn rate_limit(state: &AppState, meta: &ClientMeta) -> Result<(), ApiError> {
    let Some(ip) = meta.ip else { return Ok(()) };
    state
        .rate_limiter
        .check(ip, state.now())
        .map_err(|retry_after_secs| {
            state.metrics.outcome(Outcome::RateLimited);
            ApiError::TooManyAttempts { retry_after_secs }
        })
}

/// While the user is locked out no code is evaluated.
pub fn ensure_not_locked(
    state: &AppState,
    lockout: &LockoutState,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match lockout.locked_until {
        Some(until) if lockout.is_locked(now) => {
            state.metrics.outcome(Outcome::Locked);
            Err(ApiError::TooManyAttempts {
                retry_after_secs: super::secs_until(until, now),
            })
        }
        _ => Ok(()),
    }
}

/// The time step `code` matches for `secret` now, if any.
pub fn check_totp(
    state: &AppState,
    secret: &[u8],
    code: &TotpCode,
    now: DateTime<Utc>,
) -> Option<TimeStep> {
    totp::verify(secret, code, now.timestamp(), state.settings.totp_skew)
}

/// "Check the code, count a wrong one" for TOTP, the one definition every path uses
/// (verify, confirm, step-up): the step `code` matches for the factor's secret now, or the
/// wrong code recorded and `Ok(Err(invalid_code))` (commit, then fail).
pub async fn check_totp_or_count(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    factor: &FactorRef<'_>,
    code: &TotpCode,
    now: DateTime<Utc>,
) -> Result<Result<TimeStep, ApiError>, ApiError> {
    let (key_id, nonce, ct) = factor.sealed.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("TOTP proof without the factor's secret"))
    })?;
    let secret = super::open_secret(
        state,
        &attempt.audit.tenant_id,
        factor.user_id,
        factor.factor_id,
        key_id,
        nonce,
        ct,
    )?;
    match check_totp(state, &secret, code, now) {
        Some(step) => Ok(Ok(step)),
        None => {
            record_wrong(conn, state, attempt, AuditType::TotpVerifyFailed, now).await?;
            Ok(Err(ApiError::InvalidCode))
        }
    }
}

/// The stored hash that matches `code` among the factor's unused recovery codes. Every
/// candidate is compared in constant time.
pub async fn check_recovery(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    tenant_id: &TenantId,
    factor_id: FactorId,
    code: &str,
) -> diesel::QueryResult<Option<Vec<u8>>> {
    let presented = state
        .keys
        .hash_key
        .hash(HashPurpose::RecoveryCode, code.as_bytes());
    let mut matched = None;
    for h in db::recovery::unused(conn, tenant_id, factor_id).await? {
        if ct_eq(&h, &presented) {
            matched = Some(h);
        }
    }
    Ok(matched)
}

/// Records a wrong code: the user's lockout counters (`domain::lockout`, applied to the
/// state read under the row lock), the login's attempts (if any), the failure event and,
/// when this failure locks the user, `user.locked`.
pub async fn record_wrong(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    kind: AuditType,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let ctx = attempt.audit;
    let user_id = ctx
        .user_id
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a wrong code without a user")))?;
    let (next, just_locked) = attempt.lockout.after_failure(now);
    db::users::store_lockout(conn, &ctx.tenant_id, user_id, &next).await?;
    let mut details = serde_json::json!({});
    if let Some((id, failures)) = attempt.login {
        let left = db::logins::record_failure(conn, &ctx.tenant_id, id, failures, now).await?;
        details = serde_json::json!({"login_id": id.0, "attempts_left": left});
    }
    db::audit::insert(conn, ctx, kind, now, details).await?;
    if just_locked {
        // A lockout ends the trust of every remembered browser (§12).
        let reason = super::devices::RevokeReason::Locked;
        super::devices::revoke_all_devices(conn, ctx, user_id, reason, now).await?;
        db::audit::insert(
            conn,
            ctx,
            AuditType::UserLocked,
            now,
            serde_json::json!({"locked_until": next.locked_until}),
        )
        .await?;
        state.metrics.lockout();
    }
    state.metrics.outcome(Outcome::Invalid);
    Ok(())
}

/// Ten fresh recovery codes: what the user sees once, and the hashes that are stored.
pub fn new_recovery_codes(state: &AppState) -> (Vec<String>, Vec<Vec<u8>>) {
    (0..10)
        .map(|_| {
            let shown = tokens::new_recovery_code();
            let canonical = tokens::normalize_recovery_code(&shown).unwrap_or_default();
            let hash = state
                .keys
                .hash_key
                .hash(HashPurpose::RecoveryCode, canonical.as_bytes())
                .to_vec();
            (shown, hash)
        })
        .unzip()
}
