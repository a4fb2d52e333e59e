//! Ids in the path, parsed by the handler once its extractors have run (so a body's `413`
//! still comes first): an id that cannot exist is simply not found (`404`), never a `400`.
//! The groups of ids that many routes share (`TenantPath`, `UserPath`, `WebhookPath`) are
//! taken as one parameter each, by name.

use actix_web::web;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::ids::{DeliveryId, TenantId, UserId, WebhookId};
use crate::error::ApiError;

/// The `{tenant_id}` of a path on a tenant, as the path holds it.
#[derive(Deserialize)]
pub struct TenantIds {
    pub tenant_id: String,
}

/// The `{tenant_id}` and `{user_id}` of a path on one of the tenant's users.
#[derive(Deserialize)]
pub struct UserIds {
    pub tenant_id: String,
    pub user_id: String,
}

/// The `{tenant_id}` and `{webhook_id}` of a path on one of the tenant's webhooks.
#[derive(Deserialize)]
pub struct WebhookIds {
    pub tenant_id: String,
    pub webhook_id: String,
}

/// The `{factor_id}` of a path on one of a user's factors, taken with its `UserPath`.
#[derive(Deserialize)]
pub struct FactorIds {
    pub factor_id: String,
}

/// The `{delivery_id}` of a path on one of a webhook's deliveries, taken with its `WebhookPath`.
#[derive(Deserialize)]
pub struct DeliveryIds {
    pub delivery_id: String,
}

/// A path's ids by name, read by `web::Path` (percent-decoded). A route with more ids takes
/// two of these (e.g. `UserPath` and `FactorPath`): each ignores the ids it does not name, so
/// none of these structs may deny unknown fields, and a route's `{names}` must match them.
pub type TenantPath = web::Path<TenantIds>;
pub type UserPath = web::Path<UserIds>;
pub type WebhookPath = web::Path<WebhookIds>;
pub type FactorPath = web::Path<FactorIds>;
pub type DeliveryPath = web::Path<DeliveryIds>;

/// The `{tenant_id}` of the path.
pub fn tenant(s: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(s).map_err(|_| ApiError::NotFound)
}

/// The `{user_id}` of the path.
pub fn user(s: &str) -> Result<UserId, ApiError> {
    UserId::parse(s).map_err(|_| ApiError::NotFound)
}

/// The `{tenant_id}` and `{user_id}` of a path on one user, in that order.
pub fn tenant_user(tenant_id: &str, user_id: &str) -> Result<(TenantId, UserId), ApiError> {
    Ok((tenant(tenant_id)?, user(user_id)?))
}

/// A plain uuid of the path (`{device_id}`).
pub fn uuid(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::NotFound)
}

/// The `{webhook_id}` of the path.
pub fn webhook(s: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(s).ok_or(ApiError::NotFound)
}

/// The `{delivery_id}` of the path.
pub fn delivery(s: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(s).ok_or(ApiError::NotFound)
}
