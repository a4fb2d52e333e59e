//! Handlers of the tenant's webhooks (docs/API.md §14): an admin of the tenant (with 2FA)
//! changes them, with step-up for create, delete, secret rotation and a new URL; a scoped
//! service key may read webhooks (never a secret) and deliveries.

use actix_web::HttpResponse;

use super::auth::{AdminCall, AdminOrService, TenantGate, UserAuth};
use super::extract::path_id::{self, DeliveryPath, TenantPath, WebhookPath};
use super::extract::{Query, RawJson};
use super::problems::{
    AdminForbidden, AdminStepUp, BodyNotJson, NotFound, RequestOrCodeRefused, StepUpForbidden,
    StepUpHeader, StepUpHeaderBrief, StepUpHeaderOnUrl, TooManyAttempts,
};
use super::reply::{created, no_content, ok, Data, Reply};
use crate::domain::ids::TenantId;
use crate::error::{ApiError, Problem};
use crate::services::webhooks::{
    self, CreateWebhook, DeliveryListQuery, DeliveryPage, RotatedSecret, TestQueued, UpdateWebhook,
    WebhookCreated, WebhookListQuery, WebhookPage, WebhookView,
};

/// Subscribe an endpoint to the tenant's audit events (admin, step-up). The secret is shown
/// only in this answer.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/webhooks", tag = "Webhooks", operation_id = "createWebhook",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path),
        StepUpHeader),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook and its secret (shown once)", body = WebhookCreated),
        (status = 400, description = "`invalid_request` (a URL that is not https or points to a private address, an unknown event type), `invalid_code` or `code_reused`", body = Problem, content_type = "application/problem+json"),
        StepUpForbidden,
        NotFound,
        (status = 409, description = "`webhook_limit`: the tenant has 20 webhooks, disabled ones included", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn create(state: Data, caller: AdminCall, path: TenantPath, body: RawJson) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    let req: CreateWebhook = body.parse()?;
    webhooks::parse_url(&state, &req.url)?;
    caller.step_up(&state).await?;
    created(webhooks::create(&state, &tenant_id, req, caller.actor(), &caller.meta).await?)
}

/// The tenant's webhooks, by webhook id.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/webhooks", tag = "Webhooks", operation_id = "listWebhooks",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), WebhookListQuery),
    responses(
        (status = 200, description = "A page of webhooks", body = WebhookPage),
        (status = 400, description = "`invalid_request`: bad `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        AdminForbidden,
        NotFound,
    ))]
pub async fn list(
    state: Data,
    caller: AdminOrService,
    path: TenantPath,
    q: Query<WebhookListQuery>,
) -> Reply {
    let tenant_id = caller.allowed_tenant(&state, &path).await?;
    ok(webhooks::list(&state, &tenant_id, q.0).await?)
}

/// One webhook (never its secret).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}", tag = "Webhooks", operation_id = "getWebhook",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        AdminForbidden,
        NotFound,
    ))]
pub async fn get(state: Data, caller: AdminOrService, path: WebhookPath) -> Reply {
    let (tenant_id, id) = caller.allowed_webhook(&state, &path).await?;
    ok(webhooks::get(&state, &tenant_id, id).await?)
}

/// Change a webhook (step-up when `url` changes); `status` disables or re-enables it.
#[utoipa::path(patch, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}", tag = "Webhooks", operation_id = "updateWebhook",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path),
        StepUpHeaderOnUrl),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        RequestOrCodeRefused,
        StepUpForbidden,
        NotFound,
        TooManyAttempts,
    ))]
pub async fn update(state: Data, caller: AdminCall, path: WebhookPath, body: RawJson) -> Reply {
    let (tenant_id, id) = caller.allowed_webhook(&state, &path).await?;
    if body.is_empty() {
        return Err(ApiError::field("", "a JSON body is required"));
    }
    let req: UpdateWebhook = body.parse()?;
    if let Some(url) = &req.url {
        webhooks::parse_url(&state, url)?;
    }
    // A new URL needs step-up; a code that is sent is always checked (docs/API.md §6).
    if req.url.is_some() || caller.code().is_some() {
        caller.step_up(&state).await?;
    }
    let (actor, meta) = (caller.actor(), &caller.meta);
    ok(webhooks::update(&state, &tenant_id, id, req, actor, meta).await?)
}

/// Delete a webhook and its deliveries (step-up).
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}", tag = "Webhooks", operation_id = "deleteWebhook",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path),
        StepUpHeaderBrief),
    responses(
        (status = 204, description = "Deleted"),
        AdminStepUp,
    ))]
pub async fn delete(state: Data, caller: AdminCall, path: WebhookPath) -> Reply {
    let (tenant_id, id) = caller.allowed_webhook(&state, &path).await?;
    caller.step_up(&state).await?;
    webhooks::delete(&state, &tenant_id, id, caller.actor(), &caller.meta).await?;
    no_content()
}

/// A new secret (step-up); for 24 h both secrets sign every delivery.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret", tag = "Webhooks", operation_id = "rotateWebhookSecret",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path),
        StepUpHeaderBrief),
    responses(
        (status = 200, description = "The new secret (shown once)", body = RotatedSecret),
        AdminStepUp,
    ))]
pub async fn rotate(state: Data, caller: AdminCall, path: WebhookPath, body: RawJson) -> Reply {
    let (tenant_id, id) = caller.allowed_webhook(&state, &path).await?;
    body.parse::<serde_json::Value>()?;
    caller.step_up(&state).await?;
    ok(webhooks::rotate(&state, &tenant_id, id, caller.actor(), &caller.meta).await?)
}

/// Deliver a `webhook.test` event to this webhook only.
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test", tag = "Webhooks", operation_id = "testWebhook",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path)),
    responses(
        (status = 202, description = "Queued", body = TestQueued),
        BodyNotJson,
        AdminForbidden,
        NotFound,
        (status = 409, description = "`invalid_state`: the webhook is disabled (checked before the 429)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts`: a test of this webhook was accepted less than 10 s ago; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn test(state: Data, user: UserAuth, path: WebhookPath, body: RawJson) -> Reply {
    let (tenant_id, id) = user.allowed_webhook(&state, &path).await?;
    body.parse::<serde_json::Value>()?;
    let queued = webhooks::test(&state, &tenant_id, id, user.0.sub.as_str()).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

/// The webhook's deliveries, newest first.
///
/// A finished delivery (succeeded or failed) is kept `MFA_RETENTION_DAYS` (default 30) from
/// its creation, then housekeeping deletes it; a pending one stays until it finishes.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries", tag = "Webhooks", operation_id = "listWebhookDeliveries",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path), DeliveryListQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "`invalid_request`: bad `state`, `limit` or `cursor`", body = Problem, content_type = "application/problem+json"),
        AdminForbidden,
        NotFound,
    ))]
pub async fn deliveries(
    state: Data,
    caller: AdminOrService,
    path: WebhookPath,
    q: Query<DeliveryListQuery>,
) -> Reply {
    let (tenant_id, id) = caller.allowed_webhook(&state, &path).await?;
    ok(webhooks::list_deliveries(&state, &tenant_id, id, q.0).await?)
}

/// Attempt a pending or failed delivery now (the attempt counts).
#[utoipa::path(post, path = "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", tag = "Webhooks", operation_id = "retryWebhookDelivery",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("webhook_id" = uuid::Uuid, Path), ("delivery_id" = uuid::Uuid, Path)),
    responses(
        (status = 202, description = "Due now"),
        BodyNotJson,
        AdminForbidden,
        (status = 404, description = "`not_found` (also a finished delivery housekeeping deleted, `MFA_RETENTION_DAYS` after its creation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: the delivery already succeeded", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    state: Data,
    user: UserAuth,
    path: WebhookPath,
    delivery: DeliveryPath,
    body: RawJson,
) -> Reply {
    let (tenant_id, id) = user.allowed_webhook(&state, &path).await?;
    let d = path_id::delivery(&delivery.delivery_id)?;
    body.parse::<serde_json::Value>()?;
    webhooks::retry(&state, &tenant_id, id, d).await?;
    Ok(HttpResponse::Accepted().finish())
}
