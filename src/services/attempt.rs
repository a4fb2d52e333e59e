//! The parts every second-factor attempt shares (verify, confirm, recover, step-up): code
//! parsing, the per-IP limit, the lockout gate, code checks and recording a wrong code.
//!
//! Attempts run in a transaction that has locked the user's row, so one user's attempts are
//! evaluated one at a time by every instance. A wrong code must be *committed* while the
//! request still fails, so transactions here return `Ok(Err(e))` for "commit, then answer
//! `e`" and `Err(e)` for "roll back".

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::crypto::hashing::{ct_eq, HashPurpose};
use crate::crypto::tokens;
use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::totp::{self, TimeStep, TotpCode};
use crate::error::ApiError;
use crate::http::extract::ClientMeta;
use crate::metrics::Outcome;
use crate::state::AppState;

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
    locked_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    match locked_until {
        Some(until) if until > now => {
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

/// The stored hash that matches `code` among the factor's unused recovery codes. Every
/// candidate is compared in constant time.
pub async fn check_recovery(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    tenant_id: &str,
    factor_id: Uuid,
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

/// Records a wrong code: the user's lockout counters, the login's attempts (if any), the
/// failure event and, when this failure locks the user, `user.locked`.
pub async fn record_wrong(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &AuditCtx,
    login_id: Option<Uuid>,
    kind: AuditType,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let user_id = ctx.user_id.as_deref().unwrap_or_default();
    let outcome = db::users::record_failure(conn, &ctx.tenant_id, user_id, now).await?;
    let mut details = serde_json::json!({});
    if let Some(id) = login_id {
        let left = db::logins::record_failure(conn, &ctx.tenant_id, id, now).await?;
        details = serde_json::json!({"login_id": id, "attempts_left": left});
    }
    db::audit::insert(conn, ctx, kind, now, details).await?;
    if outcome.just_locked {
        db::audit::insert(
            conn,
            ctx,
            AuditType::UserLocked,
            now,
            serde_json::json!({"locked_until": outcome.locked_until}),
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
