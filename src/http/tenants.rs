//! Handlers of tenant administration (docs/API.md §5).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::auth::{AdminCall, AdminOrService, ServiceAuth, TenantGate};
use super::extract::path_id::{TenantPath, UserPath};
use super::extract::{path_id, ClientMeta, Query, RawJson};
use super::problems::{
    AdminForbidden, AdminStepUpRefused, KeyOutOfScope, NoSuchTenant, NoSuchUser, NotATenantId,
    NotFound, RequestOrCodeRefused, StepUpForbidden, StepUpHeader, TooManyAttempts,
};
use super::reply::{no_content, ok, Data, Reply};
use crate::domain::ids::{TenantId, UserId};
use crate::error::{ApiError, Problem};
use crate::services::admin::{self, AuditPage, AuditQuery, UserListQuery, UserPage};
use crate::services::policy::{self, PolicyChange, PolicyView};
use crate::services::OnUser;

/// The tenant's 2FA policy.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/policy", tag = "Tenant administration", operation_id = "getPolicy",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, description = "The policy", body = PolicyView, headers(("ETag" = String, description = "`\"v<version>\"`, for If-Match"))),
        AdminForbidden,
        NoSuchTenant,
    ))]
pub async fn get_policy(state: Data, caller: AdminOrService, path: TenantPath) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    let p = policy::get(&state, &tenant_id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, p.etag()))
        .json(p))
}

/// Turn 2FA on or off for the tenant, or change where it applies (step-up, If-Match).
#[utoipa::path(put, path = "/v1/tenants/{tenant_id}/policy", tag = "Tenant administration", operation_id = "updatePolicy",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path),
        ("If-Match" = String, Header, min_length = 1, description = "The ETag of the policy as last read, e.g. `\"v3\"` (`v3` without quotes is accepted too), or `*`. Required and never empty: missing or empty is `428` (an empty value names no entity tag, so the service treats it as missing); stale: `412`; a weak tag (`W/\"v3\"`, never matched by If-Match) or a value that is no entity tag: `400`"),
        StepUpHeader),
    request_body = PolicyChange,
    responses(
        (status = 200, description = "The new policy", body = PolicyView, headers(("ETag" = String, description = "The new ETag"))),
        RequestOrCodeRefused,
        StepUpForbidden,
        NotFound,
        (status = 412, description = "`precondition_failed`: If-Match is stale", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "`precondition_required`: no If-Match", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn put_policy(
    state: Data,
    caller: AdminCall,
    req: HttpRequest,
    path: TenantPath,
    body: RawJson,
) -> Reply {
    // Who may call comes first; then the request's form; the step-up code last, so that a
    // malformed request never uses up a code.
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    // A value that is not visible ASCII is no entity tag (400), not a missing one.
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("?"));
    policy::parse_if_match(if_match)?;
    // Every field is optional (`{}` changes nothing), but the body itself is required.
    if body.is_empty() {
        return Err(ApiError::field("", "a JSON body is required"));
    }
    let change: PolicyChange = body.parse()?;
    caller.step_up(&state).await?;
    let p = policy::update(
        &state,
        &caller.claims,
        &tenant_id,
        if_match,
        change,
        &caller.meta,
    );
    let p = p.await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, p.etag()))
        .json(p))
}

/// The tenant's users and who still has to set up 2FA.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users", tag = "Tenant administration", operation_id = "listUsers",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), UserListQuery),
    responses(
        (status = 200, description = "A page of users, by user id", body = UserPage),
        (status = 400, description = "`invalid_request`: bad `mfa`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        AdminForbidden,
        NotATenantId,
    ))]
pub async fn list_users(
    state: Data,
    caller: AdminOrService,
    path: TenantPath,
    q: Query<UserListQuery>,
) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    ok(admin::list_users(&state, &tenant_id, q.0).await?)
}

/// Remove a user's authenticator app (lost phone); they enroll again at next sign-in.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/users/{user_id}/totp", tag = "Tenant administration", operation_id = "resetUserFactor",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path),
        StepUpHeader),
    responses(
        (status = 204, description = "Removed"),
        AdminStepUpRefused,
        (status = 404, description = "`not_found`: no such user, or no authenticator app", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reset_factor(state: Data, caller: AdminCall, path: UserPath) -> Reply {
    let (tenant_id, user_id) = caller.user_with_step_up(&state, &path).await?;
    admin::reset_factor(&state, caller.on(&tenant_id, &user_id)).await?;
    no_content()
}

/// End a user's lockout.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/users/{user_id}/unlock", tag = "Tenant administration", operation_id = "unlockUser",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path),
        StepUpHeader),
    responses(
        (status = 204, description = "Unlocked (also when the user was not locked)"),
        AdminStepUpRefused,
        NoSuchUser,
    ))]
pub async fn unlock(state: Data, caller: AdminCall, path: UserPath, body: RawJson) -> Reply {
    // Any JSON body is ignored, but a malformed one is judged only after the caller's rights.
    let (tenant_id, user_id) = caller.allowed_user(&state, &path).await?;
    body.parse::<serde_json::Value>()?;
    caller.step_up(&state).await?;
    admin::unlock(&state, caller.on(&tenant_id, &user_id)).await?;
    no_content()
}

/// Offboard a user: their factor, recovery codes and open sign-ins are erased; the audit
/// trail stays. Service key only.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/users/{user_id}", tag = "Tenant administration", operation_id = "deleteUser",
    security(("service_key" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "`unauthenticated` (also for an access token)", body = Problem, content_type = "application/problem+json"),
        KeyOutOfScope,
        NoSuchUser,
    ))]
pub async fn delete_user(state: Data, key: ServiceAuth, meta: ClientMeta, path: UserPath) -> Reply {
    let (tenant_id, user_id) = path_id::tenant_user(&path.tenant_id, &path.user_id)?;
    key.0.require(tenant_id.as_str())?;
    let actor = format!("service_key:{}", key.0.key_id);
    let (tenant_id, user_id, actor, meta) = (&tenant_id, &user_id, &actor, &meta);
    let on = OnUser {
        tenant_id,
        user_id,
        actor,
        meta,
    };
    admin::delete_user(&state, on).await?;
    no_content()
}

/// The tenant's audit trail, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/audit-events", tag = "Tenant administration", operation_id = "listAuditEvents",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditPage),
        (status = 400, description = "`invalid_request`: bad `type`, `user_id`, `since`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        AdminForbidden,
        NotATenantId,
    ))]
pub async fn list_events(
    state: Data,
    caller: AdminOrService,
    path: TenantPath,
    q: Query<AuditQuery>,
) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    ok(admin::list_events(&state, &tenant_id, q.0).await?)
}
