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
use crate::db::factors::FactorSecret;
use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::drift::{self, Check, FactorClock};
use crate::domain::ids::{FactorId, LoginId, TenantId, UserId};
use crate::domain::lockout::LockoutState;
use crate::domain::totp::{TimeStep, TotpCode};
use crate::error::ApiError;
use crate::metrics::Outcome;
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

/// Which window a code is checked in (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A sign-in or step-up: within `MFA_TOTP_SKEW` of now or of now + the factor's drift.
    Signed,
    /// The confirmation of an enrollment: within `MFA_TOTP_ENROLL_SKEW` of now.
    Enrollment,
}

/// A code accepted for one factor: the step to record and the drift it shows.
#[derive(Debug, Clone, Copy)]
pub struct Matched {
    pub factor_id: FactorId,
    pub step: TimeStep,
    pub drift: i32,
}

/// Checks `code` against each factor in turn (at most the user's active factors, each
/// secret opened once): the first that accepts it, else `Err(Some(factor))` when a factor
/// matched it only at a used step (`code_reused`), else `Err(None)`.
pub fn match_code(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    factors: &[FactorSecret],
    code: &TotpCode,
    now: DateTime<Utc>,
    window: Window,
) -> Result<Result<Matched, Option<FactorId>>, ApiError> {
    let s = &state.settings;
    let mut reused = None;
    for f in factors {
        let secret = super::open_secret(
            state,
            tenant_id,
            user_id,
            f.factor_id,
            &f.key_id,
            &f.nonce,
            &f.ciphertext,
        )?;
        let (skew, clock) = match window {
            Window::Signed => (s.totp_skew, f.clock),
            Window::Enrollment => (s.totp_enroll_skew, FactorClock::default()),
        };
        match drift::check(&secret, code, now.timestamp(), skew, clock) {
            Check::Accepted(step) => {
                return Ok(Ok(Matched {
                    factor_id: f.factor_id,
                    step,
                    drift: drift::drift_of(step, now.timestamp(), s.totp_max_drift),
                }))
            }
            Check::Reused => reused = reused.or(Some(f.factor_id)),
            Check::NoMatch => {}
        }
    }
    Ok(Err(reused))
}

/// "Check the code, count a wrong one" for TOTP, the one definition every path uses
/// (verify, confirm, step-up): the factor and step `code` is accepted for, or
/// `Ok(Err(code_reused))` (recorded, not counted) or the wrong code recorded and
/// `Ok(Err(invalid_code))` (commit, then fail).
pub async fn check_totp_or_count(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    factors: &[FactorSecret],
    code: &TotpCode,
    now: DateTime<Utc>,
    window: Window,
) -> Result<Result<Matched, ApiError>, ApiError> {
    let user_id = attempt_user(attempt)?;
    match match_code(
        state,
        &attempt.audit.tenant_id,
        user_id,
        factors,
        code,
        now,
        window,
    )? {
        Ok(m) => Ok(Ok(m)),
        Err(Some(factor_id)) => {
            record_reused(conn, state, attempt, factor_id, now).await?;
            Ok(Err(ApiError::CodeReused))
        }
        Err(None) => {
            record_wrong(conn, state, attempt, AuditType::TotpVerifyFailed, now).await?;
            Ok(Err(ApiError::InvalidCode))
        }
    }
}

fn attempt_user<'a>(attempt: &'a Attempt<'_>) -> Result<&'a UserId, ApiError> {
    attempt
        .audit
        .user_id
        .as_ref()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a code check without a user")))
}

/// A code of a step already used (§6): `totp.code_reused` naming the factor; not counted.
pub async fn record_reused(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    factor_id: FactorId,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let mut details = serde_json::json!({"factor_id": factor_id});
    if let Some((id, _)) = attempt.login {
        details["login_id"] = serde_json::json!(id.0);
    }
    db::audit::insert(conn, attempt.audit, AuditType::TotpCodeReused, now, details).await?;
    state.metrics.outcome(Outcome::Reused);
    Ok(())
}

/// The stored hash that matches `code` among the user's unused recovery codes. Every
/// candidate is compared in constant time.
pub async fn check_recovery(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    code: &str,
) -> diesel::QueryResult<Option<Vec<u8>>> {
    let presented = state
        .keys
        .hash_key
        .hash(HashPurpose::RecoveryCode, code.as_bytes());
    let mut matched = None;
    for h in db::recovery::unused(conn, tenant_id, user_id).await? {
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
    let user_id = attempt_user(attempt)?;
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
