//! The user's and the admin's view of remembered devices (docs/API.md §12): listing and
//! revocation.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{audit_revoked, created_after, revoke_all_devices, RevokeReason};
use crate::crypto::jwt::AccessClaims;
use crate::db;
use crate::domain::ids::{Surface, TenantId, UserId};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::services::tenant::policy_of;
use crate::services::{in_admin_action, own_audit_ctx, ClientMeta, OnUser};
use crate::state::AppState;

/// A remembered device as its owner and the tenant's admins see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub device_id: Uuid,
    /// `device_name` when it was remembered, else from its User-Agent.
    pub name: String,
    pub surface: Surface,
    pub created_at: DateTime<Utc>,
    /// When it stops working (the earlier of its absolute expiry and its age reaching the
    /// tenant's current `remember_device_days`).
    pub expires_at: DateTime<Utc>,
    /// The last remembered sign-in; `null` before the first.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address of the last remembered sign-in; `null` before the first.
    #[schema(required = true)]
    pub last_ip: Option<String>,
}

/// The user's live remembered devices, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<DeviceView>,
}

/// `404` unless the user exists (the admin's device calls).
#[tracing::instrument(skip_all)]
pub async fn require_user(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    match db::users::get(&mut conn, tenant_id, user_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound),
    }
}

/// `GET /v1/me/devices` and the admin's `GET …/users/{user_id}/devices`.
#[tracing::instrument(skip_all)]
pub async fn list(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> Result<DeviceList, ApiError> {
    let now = state.now();
    let mut conn = state.pool.get().await?;
    let tenant = db::tenants::get(&mut conn, tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let days = policy_of(&tenant)?.remember_device_days;
    let Some(cutoff) = created_after(days, now) else {
        return Ok(DeviceList { items: vec![] });
    };
    let clip = Duration::days(i64::from(days.get()));
    let rows = db::devices::live_for_user(&mut conn, tenant_id, user_id, now, cutoff).await?;
    let items = rows
        .into_iter()
        .map(|d| DeviceView {
            device_id: d.device_id,
            name: d.name,
            surface: d.surface,
            expires_at: d.expires_at.min(d.created_at + clip),
            created_at: d.created_at,
            last_used_at: d.last_used_at,
            last_ip: d.last_ip,
        })
        .collect();
    Ok(DeviceList { items })
}

/// `DELETE /v1/me/devices[/{device_id}]`: no step-up (it only reduces trust). One unknown
/// or already dead device is `404`.
#[tracing::instrument(skip_all)]
pub async fn revoke_mine(
    state: &AppState,
    claims: &AccessClaims,
    device_id: Option<Uuid>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        let reason = RevokeReason::UserRevoked;
        match device_id {
            None => revoke_all_devices(conn, &audit, &claims.sub, reason, now)
                .await
                .map(|_| ()),
            Some(id) => {
                let revoked =
                    db::devices::revoke_for_user(conn, &claims.tid, &claims.sub, Some(id), now)
                        .await?;
                if revoked.is_empty() {
                    return Err(ApiError::NotFound);
                }
                audit_revoked(conn, &audit, &claims.sub, &revoked, reason, now).await
            }
        }
    })
    .await
}

/// `DELETE /v1/tenants/{tenant_id}/users/{user_id}/devices` (admin, step-up checked by the
/// caller): every device of the user. `404` for an unknown user.
#[tracing::instrument(skip_all, fields(tenant_id = %on.tenant_id, user_id = %on.user_id))]
pub async fn revoke_by_admin(state: &AppState, on: OnUser<'_>) -> Result<(), ApiError> {
    in_admin_action(state, &on, async |conn, audit, now| {
        if db::users::get(conn, on.tenant_id, on.user_id)
            .await?
            .is_none()
        {
            return Err(ApiError::NotFound);
        }
        let reason = RevokeReason::AdminRevoked;
        revoke_all_devices(conn, audit, on.user_id, reason, now).await?;
        Ok(())
    })
    .await
}
