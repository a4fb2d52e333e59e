//! Handlers of remembered devices (docs/API.md §12) and the tenant's 2FA summary (§13).

use actix_web::web;

use super::auth::{AdminCall, AdminOrService, TenantGate, UserAuth};
use super::extract::path_id::{self, TenantPath, UserPath};
use super::extract::ClientMeta;
use super::problems::{AdminForbidden, AdminStepUpRefused, NoSuchTenant, NoSuchUser, StepUpHeader};
use super::reply::{no_content, ok, Data, Reply};
use crate::domain::ids::{TenantId, UserId};
use crate::error::Problem;
use crate::services::devices::{self, DeviceList};
use crate::services::grace::{self, MfaSummary};

/// The browsers the signed-in user asked to remember, still live, oldest first.
#[utoipa::path(get, path = "/v1/me/devices", tag = "Me", operation_id = "listMyDevices",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "Live remembered devices", body = DeviceList),
    ))]
pub async fn list_mine(state: Data, user: UserAuth) -> Reply {
    ok(devices::list(&state, &user.0.tid, &user.0.sub).await?)
}

/// Forget one remembered browser (no step-up: it only reduces trust).
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "Me", operation_id = "revokeMyDevice",
    security(("access_token" = [])),
    params(("device_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked, for good"),
        (status = 404, description = "`not_found`: no such live device of this user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_mine(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    path: web::Path<String>,
) -> Reply {
    let id = path_id::uuid(&path)?;
    devices::revoke_mine(&state, &user.0, Some(id), &meta).await?;
    no_content()
}

/// Forget every remembered browser of the signed-in user (no step-up).
#[utoipa::path(delete, path = "/v1/me/devices", tag = "Me", operation_id = "revokeAllMyDevices",
    security(("access_token" = [])),
    responses(
        (status = 204, description = "All revoked (also when there were none)"),
    ))]
pub async fn revoke_all_mine(state: Data, user: UserAuth, meta: ClientMeta) -> Reply {
    devices::revoke_mine(&state, &user.0, None, &meta).await?;
    no_content()
}

/// A user's live remembered devices (an admin, or a service key scoped to the tenant).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users/{user_id}/devices", tag = "Tenant administration", operation_id = "listUserDevices",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 200, description = "Live remembered devices, oldest first", body = DeviceList),
        AdminForbidden,
        NoSuchUser,
    ))]
pub async fn list_for_user(state: Data, caller: AdminOrService, path: UserPath) -> Reply {
    let (tenant_id, user_id) = caller.allowed_user(&state, &path).await?;
    devices::require_user(&state, &tenant_id, &user_id).await?;
    ok(devices::list(&state, &tenant_id, &user_id).await?)
}

/// Revoke every remembered browser of a user (admin, step-up).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/users/{user_id}/devices", tag = "Tenant administration", operation_id = "revokeUserDevices",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path),
        StepUpHeader),
    responses(
        (status = 204, description = "All revoked (also when there were none)"),
        AdminStepUpRefused,
        NoSuchUser,
    ))]
pub async fn revoke_for_user(state: Data, caller: AdminCall, path: UserPath) -> Reply {
    let (tenant_id, user_id) = caller.user_with_step_up(&state, &path).await?;
    devices::revoke_by_admin(&state, caller.on(&tenant_id, &user_id)).await?;
    no_content()
}

/// How far the tenant is with 2FA: one call for an admin dashboard.
///
/// `users = enrolled + not_enrolled`; `exempt`, `in_grace` and `overdue` are parts of
/// `not_enrolled`; `enrolled`, `not_enrolled`, `in_grace` and `overdue` each equal the length
/// of the users listing with that `mfa` filter. Computed now, with the current policy.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/mfa-summary", tag = "Tenant administration", operation_id = "getMfaSummary",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, description = "The counts", body = MfaSummary),
        AdminForbidden,
        NoSuchTenant,
    ))]
pub async fn summary(state: Data, caller: AdminOrService, path: TenantPath) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    ok(grace::summary(&state, &tenant_id).await?)
}
