//! Ids in the path, parsed by the handler once its extractors have run (so a body's `413`
//! still comes first): an id that cannot exist is simply not found (`404`), never a `400`.

use uuid::Uuid;

use crate::domain::ids::{DeliveryId, TenantId, UserId, WebhookId};
use crate::error::ApiError;

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
