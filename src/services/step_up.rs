//! Step-up for sensitive calls (docs/API.md §6): a token whose `amr` holds `mfa` and whose
//! `auth_time` is recent, or a current code in `X-MFA-Code` (TOTP, or a recovery code that
//! is then used up). A code that is sent is always checked, and a wrong one counts.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::attempt::{self, Attempt, Proof, Window};
use super::{audit_ctx, surface_of, ClientMeta};
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, factors::FactorSecret};
use crate::domain::audit::AuditType;
use crate::domain::ids::UserId;
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::state::AppState;

/// The header that carries a step-up code.
pub const HEADER: &str = "X-MFA-Code";

/// Checks a proof against the user's active factors and uses it up (the replay guard of
/// the factor that accepted a TOTP code, single use for recovery codes). A wrong proof is
/// recorded (lockout, audit). `Ok(Err(e))`: commit the transaction, then answer `e`.
pub async fn use_proof(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    user_id: &UserId,
    factors: &[FactorSecret],
    proof: &Proof,
    now: DateTime<Utc>,
) -> Result<Result<(), ApiError>, ApiError> {
    let audit = attempt.audit;
    let tenant_id = &audit.tenant_id;
    match proof {
        Proof::Totp(code) => {
            let m = match attempt::check_totp_or_count(
                conn,
                state,
                attempt,
                factors,
                code,
                now,
                Window::Signed,
            )
            .await?
            {
                Ok(m) => m,
                Err(e) => return Ok(Err(e)),
            };
            let fresh = db::factors::consume_step(
                conn,
                tenant_id,
                user_id,
                m.factor_id,
                m.step,
                m.drift,
                now,
            )
            .await?;
            if !fresh {
                attempt::record_reused(conn, state, attempt, m.factor_id, now).await?;
                return Ok(Err(ApiError::CodeReused));
            }
            state.metrics.drift(m.drift);
        }
        Proof::Recovery(code) => {
            let Some(hash) = attempt::check_recovery(conn, state, tenant_id, user_id, code).await?
            else {
                attempt::record_wrong(conn, state, attempt, AuditType::RecoveryCodeFailed, now)
                    .await?;
                return Ok(Err(ApiError::InvalidCode));
            };
            if !db::recovery::use_code(conn, tenant_id, user_id, &hash, now).await? {
                state.metrics.outcome(Outcome::Reused);
                return Ok(Err(ApiError::CodeReused));
            }
            let left = db::recovery::count_unused(conn, tenant_id, user_id).await?;
            let mut details = serde_json::json!({"recovery_codes_remaining": left});
            if let Some((id, _)) = attempt.login {
                details["login_id"] = serde_json::json!(id.0);
            }
            db::audit::insert(conn, audit, AuditType::RecoveryCodeUsed, now, details).await?;
        }
    }
    state.metrics.outcome(Outcome::Success);
    Ok(Ok(()))
}

/// Whether the token itself proves a recent second factor.
pub fn is_recent(state: &AppState, claims: &AccessClaims) -> bool {
    let age = state.now().timestamp() - claims.auth_time;
    claims.amr.iter().any(|a| a == "mfa")
        && (0..=i64::from(state.settings.step_up_max_age)).contains(&age)
}

/// Requires step-up for the caller of a sensitive call, in a transaction of its own (for
/// callers whose action runs elsewhere). `code` is the `X-MFA-Code` header.
pub async fn require(
    state: &AppState,
    claims: &AccessClaims,
    code: Option<&str>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    if code.is_none() {
        return require_token(state, claims);
    }
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        require_in(conn, state, claims, code, meta).await
    })
    .await?
}

fn require_token(state: &AppState, claims: &AccessClaims) -> Result<(), ApiError> {
    if is_recent(state, claims) {
        Ok(())
    } else {
        Err(ApiError::StepUpRequired)
    }
}

/// Step-up inside the caller's transaction, so the check and the action it allows commit
/// together. It locks the user's row first, code or not: attempts of one user run one at a
/// time, and the action it allows then touches the user's other rows in the one lock order
/// (user first). `Ok(Err(e))`: commit (a wrong code counts), then answer `e`.
pub async fn require_in(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    claims: &AccessClaims,
    code: Option<&str>,
    meta: &ClientMeta,
) -> Result<Result<(), ApiError>, ApiError> {
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let Some(raw) = code else {
        require_token(state, claims)?;
        db::users::lock_for_attempt(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(Ok(()));
    };
    attempt::rate_limit(state, meta)?;
    let proof = attempt::parse_any(HEADER, raw)?;
    let now = state.now();
    let audit = audit_ctx(
        tenant_id,
        Some(user_id),
        Some(user_id.as_str()),
        Some(surface_of(state, claims)),
        meta,
    );
    let lockout = db::users::lock_for_attempt(conn, tenant_id, user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    attempt::ensure_not_locked(state, &lockout, now)?;
    let factors: Vec<FactorSecret> = db::factors::active(conn, tenant_id, user_id)
        .await?
        .iter()
        .map(|f| f.secret())
        .collect();
    if factors.is_empty() {
        // No factor to check the code against.
        return Err(ApiError::StepUpRequired);
    }
    let attempt = Attempt {
        audit: &audit,
        lockout,
        login: None,
    };
    let used = use_proof(conn, state, &attempt, user_id, &factors, &proof, now).await?;
    if used.is_ok() {
        db::users::reset_lockout(conn, tenant_id, user_id, now).await?;
    }
    Ok(used)
}
