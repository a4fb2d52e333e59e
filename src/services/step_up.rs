//! Step-up for sensitive calls (docs/API.md §6): a token whose `amr` holds `mfa` and whose
//! `auth_time` is recent, or a current code in `X-MFA-Code` (TOTP, or a recovery code that
//! is then used up), checked through the one attempt gate (`services::attempt`).

use diesel_async::AsyncPgConnection;

use super::attempt::{self, Against, Attempt, Verdict};
use super::{lock_own_row, own_audit_ctx, ClientMeta};
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, factors::FactorSecret};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

/// The header that carries a step-up code.
pub const HEADER: &str = "X-MFA-Code";

/// Whether the token itself proves a recent second factor.
pub fn is_recent(state: &AppState, claims: &AccessClaims) -> bool {
    let age = state.now().timestamp() - claims.auth_time;
    claims.amr.iter().any(|a| a == "mfa")
        && (0..=i64::from(state.settings.step_up_max_age)).contains(&age)
}

/// Requires step-up for the caller of a sensitive call, in a transaction of its own (for
/// callers whose action runs elsewhere). `code` is the `X-MFA-Code` header.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn require(
    state: &AppState,
    claims: &AccessClaims,
    code: Option<&str>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    if code.is_none() {
        return require_token(state, claims);
    }
    in_transaction(state, async move |conn| {
        require_in(conn, state, claims, code, meta).await
    })
    .await?
    .answer()
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
/// (user first). A code goes through the attempt gate; its refusal is committed.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn require_in(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    claims: &AccessClaims,
    code: Option<&str>,
    meta: &ClientMeta,
) -> Result<Verdict<()>, ApiError> {
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let Some(raw) = code else {
        require_token(state, claims)?;
        lock_own_row(conn, tenant_id, user_id).await?;
        return Ok(Verdict::Accepted(()));
    };
    let proof = attempt::admit(state, meta, || attempt::parse_any(HEADER, raw))?;
    let audit = own_audit_ctx(state, claims, meta);
    let attempt = Attempt::lock_user(conn, state, &audit, user_id).await?;
    let active = db::factors::active(conn, tenant_id, user_id).await?;
    if active.is_empty() {
        // No factor to check the code against.
        return Err(ApiError::StepUpRequired);
    }
    // A code is checked against the TOTP factors (none for a passkey-only user: a wrong
    // code, counted, §21); a recovery code against the user's codes.
    let factors: Vec<FactorSecret> = active.iter().filter_map(|f| f.secret()).collect();
    let verdict = attempt
        .evaluate(conn, state, &proof, Against::Active(&factors))
        .await?;
    Ok(verdict.map(|_| ()))
}

/// Whether the signed-in user has an active factor: such a user steps up to enroll another,
/// while a first enrollment needs only the access token.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn is_enrolled(
    conn: &mut AsyncPgConnection,
    claims: &AccessClaims,
) -> Result<bool, ApiError> {
    let active = db::factors::active(conn, &claims.tid, &claims.sub).await?;
    Ok(!active.is_empty())
}
