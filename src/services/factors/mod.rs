//! Several named authenticators per user (docs/API.md §10): the signed-in user's factors
//! (list, add, confirm, rename, remove) and an admin's view of a user's. Removal of any factor
//! goes through [`removal::remove_factors`].

pub mod removal;
mod types;

pub use removal::admin_remove;
pub use types::*;

use super::attempt::Verdict;
use super::enrollment::own;
use super::logins::TokenType;
use super::tenant::policy_of;
use super::{lock_own_row, lock_own_user, own_audit_ctx, step_up, ClientMeta};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, factors::Removal};
use crate::domain::audit::AuditType;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, TenantId, UserId};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;
use removal::{remove_factors, Why};

fn factor_id(s: &str) -> Result<FactorId, ApiError> {
    FactorId::parse(s).ok_or(ApiError::NotFound)
}

/// `GET /v1/me/factors` and the admin's `GET …/users/{user_id}/factors` (`404` for a user
/// this service has not seen).
#[tracing::instrument(skip_all)]
pub async fn list(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> Result<FactorList, ApiError> {
    let mut conn = state.pool.get().await?;
    db::users::get(&mut conn, tenant_id, user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let rows = db::factors::list(&mut conn, tenant_id, user_id).await?;
    let creds = db::webauthn::of_user(&mut conn, tenant_id, user_id).await?;
    Ok(FactorList {
        items: rows
            .into_iter()
            .map(|f| {
                let c = creds.iter().find(|c| c.factor_id == f.factor_id);
                FactorView::with_credential(f, c)
            })
            .collect(),
    })
}

/// `POST /v1/me/factors`: step-up when the user already has an active factor; `409
/// factor_limit` at the tenant's limit.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn add(
    state: &AppState,
    claims: &AccessClaims,
    req: NewFactorRequest,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<NewFactor, ApiError> {
    match req.kind.unwrap_or(FactorType::Totp) {
        FactorType::Totp => own::start(state, claims, req.name, true, step_up_code, meta)
            .await
            .map(NewFactor::Totp),
        FactorType::Webauthn => {
            super::webauthn::start_own(state, claims, req.name, step_up_code, meta)
                .await
                .map(NewFactor::Webauthn)
        }
    }
}

/// `POST /v1/me/factors/{factor_id}/confirm`: only the new factor's code is checked.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn confirm(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    req: &ConfirmFactorRequest,
    meta: &ClientMeta,
) -> Result<FactorConfirmed, ApiError> {
    let done = match (&req.code, &req.credential) {
        (Some(code), None) => {
            own::confirm(state, claims, own::Pending::Factor(factor), code, meta).await?
        }
        (None, credential @ Some(_)) => {
            super::webauthn::confirm_own(state, claims, factor, credential.as_ref(), meta).await?
        }
        _ => {
            return Err(ApiError::field(
                "code",
                "send exactly one of `code` (authenticator app) and `credential` (passkey)",
            ))
        }
    };
    let mut conn = state.pool.get().await?;
    let creds = db::webauthn::of_user(&mut conn, &claims.tid, &claims.sub).await?;
    let id = done.factor.factor_id;
    let cred = creds.iter().find(|c| c.factor_id == id);
    Ok(FactorConfirmed {
        factor: FactorView::with_credential(done.factor, cred),
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        recovery_codes: done.recovery_codes,
    })
}

/// `PATCH /v1/me/factors/{factor_id}`: no step-up.
#[tracing::instrument(skip_all)]
pub async fn rename(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    name: FactorName,
    meta: &ClientMeta,
) -> Result<FactorView, ApiError> {
    let factor_id = factor_id(factor)?;
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    in_transaction(state, async move |conn| {
        lock_own_row(conn, tenant_id, user_id).await?;
        let all = db::factors::list(conn, tenant_id, user_id).await?;
        let Some(old) = all.iter().find(|f| f.factor_id == factor_id) else {
            return Err(ApiError::NotFound);
        };
        if all
            .iter()
            .any(|f| f.factor_id != factor_id && name.clashes(&f.name))
        {
            return Err(ApiError::NameTaken);
        }
        let from = old.name.clone();
        let row = db::factors::rename(conn, tenant_id, user_id, factor_id, &name)
            .await?
            .ok_or(ApiError::NotFound)?;
        let details =
            serde_json::json!({"factor_id": factor_id, "from": from, "to": name.as_str()});
        db::audit::insert(conn, &audit, AuditType::FactorRenamed, now, details).await?;
        Ok(row.into())
    })
    .await
}

/// `DELETE /v1/me/factors/{factor_id}`: step-up for an active factor (none to cancel a
/// pending one); the last active factor follows v1's rule (`409 mfa_enforced`).
#[tracing::instrument(skip_all)]
pub async fn remove(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let factor_id = factor_id(factor)?;
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    in_transaction(state, async move |conn| {
        // Two removals at once must not both see "not the last one".
        let user = lock_own_user(conn, claims).await?;
        let Some(f) = db::factors::by_id(conn, tenant_id, user_id, factor_id).await? else {
            return Err(ApiError::NotFound);
        };
        if f.status == FactorStatus::Active {
            let active = db::factors::active(conn, tenant_id, user_id).await?;
            let tenant = db::tenants::get(conn, tenant_id)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            if active.len() == 1 && policy_of(&tenant)?.requires_factor(user.identity_provider) {
                return Err(ApiError::MfaEnforced);
            }
            accepted!(step_up::require_in(conn, state, claims, step_up_code, meta).await?);
        }
        let one = Removal::One(factor_id);
        let gone = remove_factors(conn, &audit, user_id, one, Why::ByUser, now).await?;
        if gone.is_empty() {
            return Err(ApiError::NotFound);
        }
        Ok(Verdict::Accepted(()))
    })
    .await?
    .answer()
}
