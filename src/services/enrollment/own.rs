//! The signed-in user's own enrollments: `POST /v1/me/totp-enrollment` (a v1 replacement) and
//! `POST /v1/me/factors` (one more factor, §10), and their confirmations — an attempt through
//! the gate whose acceptance activates the factor and mints a token carrying `otp`.

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;

use super::{Activation, EnrollmentMaterial, NewFactor};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, factors::FactorRow};
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, TenantId, UserId};
use crate::error::ApiError;
use crate::services::attempt::{self, Against, Attempt, Verdict};
use crate::services::in_transaction;
use crate::services::tenant::allow_new_in;
use crate::services::{amr, lock_own_user, mint, own_audit_ctx, step_up, surface_of};
use crate::services::{ClientMeta, Minted, Subject};
use crate::state::AppState;

/// A new pending factor of the signed-in user: a replacement (no limit) or an addition
/// (`enforce_limit`). One enrollment of a user at a time; a user who has an active factor
/// passes step-up first, decided and checked in the transaction that stores the new pending
/// factor (§21: `factor_type_not_allowed` before it, `factor_limit` and `name_taken` after).
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn start(
    state: &AppState,
    claims: &AccessClaims,
    name: Option<FactorName>,
    enforce_limit: bool,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    let expires_at = now + Duration::seconds(i64::from(state.settings.login_ttl));
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        let user = lock_own_user(conn, claims).await?;
        allow_new_in(conn, &claims.tid, FactorType::Totp).await?;
        if step_up::is_enrolled(conn, claims).await? {
            accepted!(step_up::require_in(conn, state, claims, step_up_code, meta).await?);
        }
        let new = NewFactor {
            user_id: &user.user_id,
            email: &user.email,
            name,
            enforce_limit,
            expires_at,
        };
        super::start(conn, state, &audit, new, now)
            .await
            .map(Verdict::Accepted)
    })
    .await?
    .answer()
}

/// Which pending factor a confirmation is for.
#[derive(Clone, Copy)]
pub enum Pending<'a> {
    /// `/v1/me/totp-enrollment/confirm`: the user's pending one; it replaces the others.
    Latest,
    /// `/v1/me/factors/{factor_id}/confirm`: that one; it is added.
    Factor(&'a str),
}

/// A confirmed factor, the recovery codes to show once (if any) and the new token.
pub struct Confirmed {
    pub factor: FactorRow,
    pub recovery_codes: Option<Vec<String>>,
    pub minted: Minted,
}

/// Confirms the pending factor with its first code; only that factor's code is checked.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn confirm(
    state: &AppState,
    claims: &AccessClaims,
    which: Pending<'_>,
    code: &str,
    meta: &ClientMeta,
) -> Result<Confirmed, ApiError> {
    let proof = attempt::admit_totp(state, meta, code)?;
    let audit = own_audit_ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    in_transaction(state, async move |conn| {
        let attempt = Attempt::lock_user(conn, state, &audit, user_id).await?;
        let now = attempt.now();
        let (pending, how) = match which {
            Pending::Latest => {
                let p = db::factors::get(conn, tenant_id, user_id, FactorStatus::Pending).await?;
                (p, Activation::Replace)
            }
            Pending::Factor(id) => (
                Some(pending_by_id(conn, tenant_id, user_id, id).await?),
                Activation::Add,
            ),
        };
        let pending = super::pending_of_type(pending, FactorType::Totp, now)?;
        let secret = pending
            .secret()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a TOTP factor without a secret")))?;
        let accepted = accepted!(
            attempt
                .evaluate(conn, state, &proof, Against::Pending(&secret))
                .await?
        );
        let recovery_codes =
            super::activate(conn, state, &audit, user_id, accepted, how, now).await?;
        let id = pending.factor_id;
        confirmed_own(conn, state, claims, id, recovery_codes, amr::TOTP, now).await
    })
    .await?
    .answer()
}

/// The pending factor `id` of the user (`404` for an unknown id or another user's factor).
#[tracing::instrument(skip_all)]
pub async fn pending_by_id(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    id: &str,
) -> Result<FactorRow, ApiError> {
    let id = FactorId::parse(id).ok_or(ApiError::NotFound)?;
    let p = db::factors::by_id(conn, tenant_id, user_id, id).await?;
    let p = p.ok_or(ApiError::NotFound)?;
    if p.status != FactorStatus::Pending {
        return Err(ApiError::InvalidState("This factor is already active."));
    }
    Ok(p)
}

/// The end of a signed-in user's confirmation, once `factor_id` is active: the factor as
/// stored now, its recovery codes, and a new token whose `amr` says how it was proved.
#[tracing::instrument(skip_all)]
pub async fn confirmed_own(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    claims: &AccessClaims,
    factor_id: FactorId,
    recovery_codes: Option<Vec<String>>,
    amr: &[&str],
    now: DateTime<Utc>,
) -> Result<Verdict<Confirmed>, ApiError> {
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let user = db::users::get(conn, tenant_id, user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let factor = db::factors::by_id(conn, tenant_id, user_id, factor_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let who = Subject::of(tenant_id, user_id, &user);
    let minted = mint(state, &who, surface_of(state, claims), amr, now)?;
    Ok(Verdict::Accepted(Confirmed {
        factor,
        recovery_codes,
        minted,
    }))
}
