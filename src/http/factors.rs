//! Handlers of the user's authenticators (docs/API.md §10, §11): `/v1/me/factors…` and the
//! admin's `/v1/tenants/{tenant_id}/users/{user_id}/factors…`.

use actix_web::web;

use super::auth::{AdminCall, AdminOrService, StepUpCall, TenantGate, UserAuth};
use super::extract::path_id::{FactorPath, UserPath};
use super::extract::{ClientMeta, JsonBody};
use super::problems::{
    AdminForbidden, AdminStepUpRefused, InvalidRequest, NoSuchUser, NotFound, OwnStepUp,
    ResyncRefused, StepUpHeader, StepUpRequired, TooManyAttempts,
};
use super::reply::{created, no_content, ok, Data, Reply};
use crate::domain::ids::{TenantId, UserId};
use crate::error::{ApiError, Problem};
use crate::services::factors::{
    self, ConfirmFactorRequest, FactorConfirmed, FactorList, FactorView, NewFactor,
    NewFactorRequest, RenameRequest,
};
use crate::services::resync::{self, ResyncRequest};

/// The signed-in user's authenticators, active and pending, oldest first.
#[utoipa::path(get, path = "/v1/me/factors", tag = "Me", operation_id = "listMyFactors",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The factors", body = FactorList),
    ))]
pub async fn list(state: Data, user: UserAuth) -> Reply {
    let c = &user.0;
    let list = factors::list(&state, &c.tid, &c.sub)
        .await
        .map_err(|e| match e {
            ApiError::NotFound => ApiError::Unauthenticated,
            e => e,
        })?;
    ok(list)
}

/// Add an authenticator app (a second phone, a password manager…).
///
/// Returns the enrollment material and the pending factor's id; confirm it with a code.
/// Needs step-up when the user already has an active factor (the first needs only the
/// access token). Discards an earlier pending enrollment.
#[utoipa::path(post, path = "/v1/me/factors", tag = "Me", operation_id = "addMyFactor",
    security(("access_token" = [])),
    params(StepUpHeader),
    request_body(content = Option<NewFactorRequest>, description = "Optional: the new factor's name (default: the lowest free of \"Authenticator\", \"Authenticator 2\"…)"),
    responses(
        (status = 201, description = "An authenticator app's enrollment material with `factor_id` and `name`, or (`type: \"webauthn\"`) a passkey's `public_key` creation options (§16)", body = NewFactor),
        (status = 400, description = "`invalid_request` (e.g. a name with control characters), `invalid_code` or `code_reused` (step-up code)", body = Problem, content_type = "application/problem+json"),
        StepUpRequired,
        (status = 409, description = "`factor_type_not_allowed`, `webauthn_unavailable` (no RP ID on this surface), `factor_limit`: as many active factors as the tenant allows; `name_taken`: a name the user already uses (ignoring case)", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn add(state: Data, call: StepUpCall, body: JsonBody<Option<NewFactorRequest>>) -> Reply {
    let req = body.0.unwrap_or_default();
    let m = factors::add(&state, &call.claims, req, call.code(), &call.meta).await?;
    // `Created` either way: the material of an app, or a passkey's creation options.
    created(m)
}

/// Confirm a pending factor with its first code; returns a fresh token.
///
/// Only the new factor's code is checked. `recovery_codes` are returned (once) only when
/// this is the user's first active factor; otherwise the existing ones stay valid.
#[utoipa::path(post, path = "/v1/me/factors/{factor_id}/confirm", tag = "Me", operation_id = "confirmMyFactor",
    security(("access_token" = [])),
    params(("factor_id" = uuid::Uuid, Path)),
    request_body = ConfirmFactorRequest,
    responses(
        (status = 200, description = "The factor is active", body = FactorConfirmed),
        (status = 400, description = "`invalid_request` (not six digits, not a registration response; not counted), `invalid_code` or `invalid_credential` (counted)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: unknown or discarded factor", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: already active, or the enrollment expired", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn confirm(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    path: web::Path<String>,
    body: JsonBody<ConfirmFactorRequest>,
) -> Reply {
    ok(factors::confirm(&state, &user.0, &path, &body.0, &meta).await?)
}

/// Rename a factor (no step-up).
#[utoipa::path(patch, path = "/v1/me/factors/{factor_id}", tag = "Me", operation_id = "renameMyFactor",
    security(("access_token" = [])),
    params(("factor_id" = uuid::Uuid, Path)),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "The factor", body = FactorView),
        InvalidRequest,
        NotFound,
        (status = 409, description = "`name_taken`: another factor of the user has this name (ignoring case)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rename(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    path: web::Path<String>,
    body: JsonBody<RenameRequest>,
) -> Reply {
    ok(factors::rename(&state, &user.0, &path, body.0.name, &meta).await?)
}

/// Remove one factor: step-up for an active one, none to cancel a pending one.
///
/// Removing the last active factor also removes the recovery codes, and is refused
/// (`mfa_enforced`) when the tenant requires 2FA of this user.
#[utoipa::path(delete, path = "/v1/me/factors/{factor_id}", tag = "Me", operation_id = "removeMyFactorById",
    security(("access_token" = [])),
    params(("factor_id" = uuid::Uuid, Path),
        StepUpHeader),
    responses(
        (status = 204, description = "Removed"),
        OwnStepUp,
        NotFound,
        (status = 409, description = "`mfa_enforced`: the last factor, and the tenant requires 2FA of this user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove(state: Data, call: StepUpCall, path: web::Path<String>) -> Reply {
    factors::remove(&state, &call.claims, &path, call.code(), &call.meta).await?;
    no_content()
}

/// Resynchronise a factor whose phone clock drifted, with two consecutive codes (§11).
///
/// No step-up: the two codes are the proof. A failure counts as one wrong code.
#[utoipa::path(post, path = "/v1/me/factors/{factor_id}/resync", tag = "Me", operation_id = "resyncMyFactor",
    security(("access_token" = [])),
    params(("factor_id" = uuid::Uuid, Path)),
    request_body = ResyncRequest,
    responses(
        (status = 200, description = "The factor with its new `drift_seconds`", body = FactorView),
        ResyncRefused,
        NotFound,
        (status = 409, description = "`invalid_state`: the factor is still pending", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn resync(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    path: web::Path<String>,
    body: JsonBody<ResyncRequest>,
) -> Reply {
    ok(resync::for_me(&state, &user.0, &path, &body.0, &meta).await?)
}

/// A user's authenticators (an admin of the tenant, or a service key scoped to it).
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}/users/{user_id}/factors", tag = "Tenant administration", operation_id = "listUserFactors",
    security(("access_token" = []), ("service_key" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path)),
    responses(
        (status = 200, description = "The factors, active and pending, oldest first", body = FactorList),
        AdminForbidden,
        NoSuchUser,
    ))]
pub async fn admin_list(state: Data, caller: AdminOrService, path: UserPath) -> Reply {
    let (tenant_id, user_id) = caller.allowed_user(&state, &path).await?;
    ok(factors::list(&state, &tenant_id, &user_id).await?)
}

/// Remove one of a user's factors (step-up). An admin may remove the last one: the user
/// then enrolls again at next sign-in.
#[utoipa::path(delete, path = "/v1/tenants/{tenant_id}/users/{user_id}/factors/{factor_id}", tag = "Tenant administration", operation_id = "removeUserFactor",
    security(("access_token" = [])),
    params(("tenant_id" = TenantId, Path), ("user_id" = UserId, Path), ("factor_id" = uuid::Uuid, Path),
        StepUpHeader),
    responses(
        (status = 204, description = "Removed"),
        AdminStepUpRefused,
        (status = 404, description = "`not_found`: no such user or factor", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn admin_remove(
    state: Data,
    caller: AdminCall,
    path: UserPath,
    factor: FactorPath,
) -> Reply {
    let (tenant_id, user_id) = caller.user_with_step_up(&state, &path).await?;
    let on = caller.on(&tenant_id, &user_id);
    factors::admin_remove(&state, on, &factor.factor_id).await?;
    no_content()
}
