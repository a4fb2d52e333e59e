//! Several named authenticators per user (docs/API.md §10): the signed-in user's factors
//! (list, add, confirm, rename, remove), an admin's view and removal of a user's factors, and
//! [`remove_factors`], the one path by which any factor of any user is removed.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::attempt::{self, Attempt, Window};
use super::enrollment::{self, Activation, EnrollmentMaterial, NewFactor};
use super::logins::TokenType;
use super::{amr, audit_ctx, mint, step_up, surface_of, ClientMeta, Subject};
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, audit::AuditCtx, factors::FactorRow, factors::Removal};
use crate::domain::audit::AuditType;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, TenantId, UserId};
use crate::domain::totp::PERIOD_SECS;
use crate::error::ApiError;
use crate::services::policy::policy_of;
use crate::state::AppState;

/// The only factor type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactorType {
    Totp,
}

/// One authenticator of a user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"factor_id": "0b7f3c7e-8a4b-4c1e-9d55-3f1f0b2f9a10", "type": "totp",
    "name": "Work phone", "status": "active", "created_at": "2026-11-28T09:00:00Z",
    "activated_at": "2026-11-28T09:01:00Z", "last_used_at": "2026-11-28T09:30:00Z",
    "drift_seconds": 0}))]
pub struct FactorView {
    pub factor_id: FactorId,
    #[serde(rename = "type")]
    pub kind: FactorType,
    pub name: FactorName,
    pub status: FactorStatus,
    pub created_at: DateTime<Utc>,
    /// `null` while pending.
    #[schema(required = true)]
    pub activated_at: Option<DateTime<Utc>>,
    /// When a code of this factor was last accepted; `null` while pending.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// How far (in seconds, a multiple of 30) this authenticator's clock runs ahead of the
    /// server's (negative: behind), as learned from its last accepted code; 0 while pending.
    pub drift_seconds: i64,
}

impl From<FactorRow> for FactorView {
    fn from(f: FactorRow) -> Self {
        let active = f.status == FactorStatus::Active;
        Self {
            factor_id: f.factor_id,
            kind: FactorType::Totp,
            name: FactorName::from_stored(f.name),
            status: f.status,
            created_at: f.created_at,
            activated_at: f.activated_at,
            last_used_at: f.last_used_at.filter(|_| active),
            drift_seconds: if active {
                i64::from(f.drift_steps) * PERIOD_SECS as i64
            } else {
                0
            },
        }
    }
}

/// The user's factors, active and pending, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorList {
    pub items: Vec<FactorView>,
}

/// `POST /v1/me/factors`: the name is optional (default: the lowest free "Authenticator N").
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFactorRequest {
    #[serde(default)]
    pub name: Option<FactorName>,
}

/// `PATCH /v1/me/factors/{factor_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: FactorName,
}

/// A confirmed factor and a fresh token; `recovery_codes` only for the user's first factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactorConfirmed {
    pub factor: FactorView,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// Shown once; present only when this is the user's first active factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Option<Vec<String>>,
}

/// Removes factors of a user: the single path every removal takes (`DELETE /v1/me/totp`,
/// `DELETE /v1/me/factors/{id}`, the admin's `…/totp` and `…/factors/{id}`, and a v1
/// replacement at its confirmation). When the user's last active factor goes, their
/// recovery codes go with it and their half-finished sign-ins die. Returns what went.
/// Whatever else must die with a factor belongs here.
pub async fn remove_factors(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    which: Removal,
    now: DateTime<Utc>,
) -> Result<Vec<(FactorId, FactorStatus)>, ApiError> {
    let gone = db::factors::delete(conn, tenant_id, user_id, which).await?;
    let active_gone = gone.iter().any(|(_, s)| *s == FactorStatus::Active);
    if active_gone
        && db::factors::active(conn, tenant_id, user_id)
            .await?
            .is_empty()
    {
        db::recovery::delete_all(conn, tenant_id, user_id).await?;
        db::logins::kill_open(conn, tenant_id, user_id, now).await?;
    }
    Ok(gone)
}

fn ctx(state: &AppState, claims: &AccessClaims, meta: &ClientMeta) -> AuditCtx {
    audit_ctx(
        &claims.tid,
        Some(&claims.sub),
        Some(claims.sub.as_str()),
        Some(surface_of(state, claims)),
        meta,
    )
}

fn factor_id(s: &str) -> Result<FactorId, ApiError> {
    FactorId::parse(s).ok_or(ApiError::NotFound)
}

/// `GET /v1/me/factors` and the admin's `GET …/users/{user_id}/factors` (`404` for a user
/// this service has not seen).
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
    Ok(FactorList {
        items: rows.into_iter().map(FactorView::from).collect(),
    })
}

/// `POST /v1/me/factors`: step-up when the user already has an active factor; `409
/// factor_limit` at the tenant's limit.
pub async fn add(
    state: &AppState,
    claims: &AccessClaims,
    req: NewFactorRequest,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    let expires_at = now + Duration::seconds(i64::from(state.settings.login_ttl));
    let audit = ctx(state, claims, meta);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        // One enrollment of a user at a time (the name and the limit are checked here).
        db::users::lock_for_attempt(conn, &claims.tid, &claims.sub)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let user = db::users::get(conn, &claims.tid, &claims.sub)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let has_active = !db::factors::active(conn, &claims.tid, &claims.sub)
            .await?
            .is_empty();
        if has_active {
            if let Err(e) = step_up::require_in(conn, state, claims, step_up_code, meta).await? {
                return Ok(Err(e));
            }
        }
        let new = NewFactor {
            user_id: &user.user_id,
            email: &user.email,
            name: req.name,
            enforce_limit: true,
            expires_at,
        };
        enrollment::start(conn, state, &audit, new, now)
            .await
            .map(Ok)
    })
    .await?
}

/// `POST /v1/me/factors/{factor_id}/confirm`: only the new factor's code is checked.
pub async fn confirm(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    code: &str,
    meta: &ClientMeta,
) -> Result<FactorConfirmed, ApiError> {
    let factor_id = factor_id(factor)?;
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let audit = ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let lockout = db::users::lock_for_attempt(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let Some(p) = db::factors::by_id(conn, tenant_id, user_id, factor_id).await? else {
            return Err(ApiError::NotFound);
        };
        if p.status != FactorStatus::Pending {
            return Err(ApiError::InvalidState("This factor is already active."));
        }
        if p.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidState(
                "The pending enrollment expired: start a new one.",
            ));
        }
        attempt::ensure_not_locked(state, &lockout, now)?;
        let attempt = Attempt {
            audit: &audit,
            lockout,
            login: None,
        };
        let secret = [p.secret()];
        let m = match attempt::check_totp_or_count(
            conn,
            state,
            &attempt,
            &secret,
            &code,
            now,
            Window::Enrollment,
        )
        .await?
        {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let recovery_codes =
            enrollment::activate(conn, state, &audit, user_id, m, Activation::Add, now).await?;
        let user = db::users::get(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let row = db::factors::by_id(conn, tenant_id, user_id, factor_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let who = Subject {
            tenant_id,
            user_id,
            email: &user.email,
            roles: &user.roles,
            idp: user.identity_provider,
        };
        let minted = mint(state, &who, surface_of(state, claims), amr::TOTP, now)?;
        Ok(Ok(FactorConfirmed {
            factor: row.into(),
            access_token: minted.token,
            token_type: TokenType::Bearer,
            expires_in: minted.expires_in,
            recovery_codes,
        }))
    })
    .await?
}

/// `PATCH /v1/me/factors/{factor_id}`: no step-up.
pub async fn rename(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    name: FactorName,
    meta: &ClientMeta,
) -> Result<FactorView, ApiError> {
    let factor_id = factor_id(factor)?;
    let now = state.now();
    let audit = ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        db::users::lock_for_attempt(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
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
        db::audit::insert(
            conn,
            &audit,
            AuditType::FactorRenamed,
            now,
            serde_json::json!({"factor_id": factor_id, "from": from, "to": name.as_str()}),
        )
        .await?;
        Ok(row.into())
    })
    .await
}

/// `DELETE /v1/me/factors/{factor_id}`: step-up for an active factor (none to cancel a
/// pending one); the last active factor follows v1's rule (`409 mfa_enforced`).
pub async fn remove(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let factor_id = factor_id(factor)?;
    let now = state.now();
    let audit = ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        // Two removals at once must not both see "not the last one".
        db::users::lock_for_attempt(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let user = db::users::get(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
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
            if let Err(e) = step_up::require_in(conn, state, claims, step_up_code, meta).await? {
                return Ok(Err(e));
            }
        }
        let gone = remove_factors(conn, tenant_id, user_id, Removal::One(factor_id), now).await?;
        if gone.is_empty() {
            return Err(ApiError::NotFound);
        }
        if f.status == FactorStatus::Active {
            db::audit::insert(
                conn,
                &audit,
                AuditType::TotpRemoved,
                now,
                serde_json::json!({"factor_id": factor_id}),
            )
            .await?;
        }
        Ok(Ok(()))
    })
    .await?
}

/// The admin's `DELETE …/users/{user_id}/factors/{factor_id}` (authorization and step-up
/// checked by the caller); an admin may remove a user's last factor.
pub async fn admin_remove(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor: &str,
    actor: &str,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let factor_id = factor_id(factor)?;
    let now = state.now();
    let audit = audit_ctx(tenant_id, Some(user_id), Some(actor), None, meta);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let gone = remove_factors(conn, tenant_id, user_id, Removal::One(factor_id), now).await?;
        let Some((_, status)) = gone.first() else {
            return Err(ApiError::NotFound);
        };
        if *status == FactorStatus::Active {
            db::audit::insert(
                conn,
                &audit,
                AuditType::TotpRemoved,
                now,
                serde_json::json!({"factor_id": factor_id, "by_admin": true}),
            )
            .await?;
        }
        Ok(())
    })
    .await
}
