//! Webhook administration (docs/API.md §14): create, list, read, change, delete, rotate the
//! secret, send a test event, list and retry deliveries. Authorization (admin, step-up,
//! scoped service key) is checked by the caller; each change writes its audit event in its
//! transaction. The delivery worker is in [`worker`].

mod attempt;
pub mod client;
mod outcome;
pub mod resolver;
pub mod views;
pub mod worker;

use chrono::Duration;
use diesel_async::AsyncPgConnection;
use secrecy::zeroize::Zeroizing;

pub use self::views::*;
use super::paging::{cut_page, page_args};
use super::{audit_ctx, ClientMeta};
use crate::crypto::keyring::Sealed;
use crate::crypto::webhook::{generate_key, secret_aad, secret_text};
use crate::db::{self, audit::AuditCtx, webhooks::WebhookChange};
use crate::domain::audit::AuditType;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId, WebhookStatus};
use crate::domain::text::is_hidden;
use crate::domain::webhooks::{EventTypes, WebhookUrl};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Webhooks a tenant may have, disabled ones included (§20).
pub const MAX_PER_TENANT: i64 = 20;
/// `POST …/test` at most once per this many seconds per webhook, from the last accepted
/// one (§20).
pub const TEST_INTERVAL_SECS: i64 = 10;

fn ctx(tenant_id: &TenantId, actor: &str, meta: &ClientMeta) -> AuditCtx {
    audit_ctx(tenant_id, None, Some(actor), None, meta)
}

/// A new signing secret for webhook `id`, and the same sealed (its AAD names the tenant and
/// the webhook).
fn new_secret(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
) -> Result<(Zeroizing<Vec<u8>>, Sealed), ApiError> {
    let key = generate_key();
    let sealed = state
        .keys
        .keyring
        .seal(&key, &secret_aad(tenant_id.as_str(), id.0))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("sealing a webhook secret: {e}")))?;
    Ok((key, sealed))
}

pub fn parse_url(state: &AppState, s: &str) -> Result<WebhookUrl, ApiError> {
    WebhookUrl::parse(s, state.settings.webhooks_allow_private())
        .map_err(|e| ApiError::field("url", e.0))
}

fn parse_types(items: Option<&[String]>) -> Result<EventTypes, ApiError> {
    match items {
        None => Ok(EventTypes::All),
        Some(v) => EventTypes::parse(v).map_err(|e| ApiError::field("event_types", e.0)),
    }
}

fn parse_description(d: Option<&str>) -> Result<Option<String>, ApiError> {
    match d.map(str::trim) {
        // Postgres text cannot hold NUL (it was a 500); the rule of every free-text field.
        Some(s) if s.chars().count() > 500 || s.chars().any(is_hidden) => Err(ApiError::field(
            "description",
            "at most 500 characters, without control or invisible formatting characters",
        )),
        Some("") | None => Ok(None),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

/// `POST …/webhooks`: the secret is shown in this answer only.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn create(
    state: &AppState,
    tenant_id: &TenantId,
    body: CreateWebhook,
    actor: &str,
    meta: &ClientMeta,
) -> Result<WebhookCreated, ApiError> {
    let url = parse_url(state, &body.url)?;
    let types = parse_types(body.event_types.as_deref())?.to_strings();
    let description = parse_description(body.description.as_deref())?;
    let id = WebhookId::new();
    let (key, sealed) = new_secret(state, tenant_id, id)?;
    let now = state.now();
    let audit = ctx(tenant_id, actor, meta);
    let row = in_transaction(state, async |conn| {
            if !db::webhooks::lock_tenant(conn, tenant_id).await? {
                return Err(ApiError::NotFound);
            }
            if db::webhooks::count(conn, tenant_id).await? >= MAX_PER_TENANT {
                return Err(ApiError::WebhookLimit);
            }
            let row = db::webhooks::insert(
                conn,
                &db::webhooks::NewWebhook {
                    tenant_id,
                    webhook_id: id,
                    url: url.as_str(),
                    event_types: &types,
                    description: description.as_deref(),
                    sealed: &sealed,
                    now,
                },
            )
            .await?;
            let details =
                serde_json::json!({"webhook_id": id.0, "host": url.url().host_str(), "event_types": types});
            db::audit::insert(conn, &audit, AuditType::WebhookCreated, now, details).await?;
            Ok(row)
        })
        .await?;
    Ok(WebhookCreated {
        webhook: view(row),
        secret: secret_text(&key),
    })
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id))]
pub async fn list(
    state: &AppState,
    tenant_id: &TenantId,
    q: WebhookListQuery,
) -> Result<WebhookPage, ApiError> {
    let (limit, after) = page_args(q.limit, q.cursor.as_deref(), decode_webhook_cursor)?;
    let mut conn = state.pool.get().await?;
    let rows = db::webhooks::list(&mut conn, tenant_id, after, limit + 1).await?;
    let (rows, next_cursor) = cut_page(rows, limit, |r| encode_webhook_cursor(r.webhook_id));
    Ok(WebhookPage {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    })
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn get(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
) -> Result<WebhookView, ApiError> {
    let mut conn = state.pool.get().await?;
    let row = db::webhooks::get(&mut conn, tenant_id, id).await?;
    row.map(view).ok_or(ApiError::NotFound)
}

/// `PATCH …/webhooks/{id}`, checked (the caller asks for step-up when `url` is present).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn update(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    body: UpdateWebhook,
    actor: &str,
    meta: &ClientMeta,
) -> Result<WebhookView, ApiError> {
    let url = body
        .url
        .as_deref()
        .map(|u| parse_url(state, u))
        .transpose()?;
    let types = match &body.event_types {
        Some(v) => Some(parse_types(Some(v))?.to_strings()),
        None => None,
    };
    let description = match &body.description {
        Some(d) => Some(parse_description(d.as_deref())?),
        None => None,
    };
    let now = state.now();
    let audit = ctx(tenant_id, actor, meta);
    let row = in_transaction(state, async |conn| {
        let current = db::webhooks::lock(conn, tenant_id, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let enabling =
            body.status == Some(WebhookStatus::Active) && current.status == WebhookStatus::Disabled;
        let change = WebhookChange {
            url: url.as_ref().map(|u| u.as_str().to_owned()),
            event_types: types.clone(),
            description: description.clone(),
            status: body.status,
            // Re-enabled: a fresh start for the 3-day rule.
            failing_since: enabling.then_some(None),
            updated_at: Some(now),
        };
        let row = db::webhooks::update(conn, tenant_id, id, &change).await?;
        if row.status != current.status {
            let held = row.status == WebhookStatus::Disabled;
            db::webhooks::hold_pending(conn, tenant_id, id, held).await?;
        }
        let mut changed: Vec<&str> = Vec::new();
        for (name, set) in [
            ("url", url.is_some()),
            ("event_types", types.is_some()),
            ("description", description.is_some()),
            ("status", body.status.is_some()),
        ] {
            if set {
                changed.push(name);
            }
        }
        let details =
            serde_json::json!({"webhook_id": id.0, "changed": changed, "status": row.status});
        db::audit::insert(conn, &audit, AuditType::WebhookUpdated, now, details).await?;
        Ok(row)
    })
    .await?;
    Ok(view(row))
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn delete(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    actor: &str,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let now = state.now();
    let audit = ctx(tenant_id, actor, meta);
    in_transaction(state, async |conn| {
        if !db::webhooks::delete(conn, tenant_id, id).await? {
            return Err(ApiError::NotFound);
        }
        let details = serde_json::json!({"webhook_id": id.0});
        db::audit::insert(conn, &audit, AuditType::WebhookDeleted, now, details).await?;
        Ok(())
    })
    .await
}

/// `rotate-secret`: a new secret; the old one keeps signing for 24 h.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn rotate(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    actor: &str,
    meta: &ClientMeta,
) -> Result<RotatedSecret, ApiError> {
    let (key, sealed) = new_secret(state, tenant_id, id)?;
    let now = state.now();
    let until = now + Duration::hours(ROTATION_OVERLAP_HOURS);
    let audit = ctx(tenant_id, actor, meta);
    in_transaction(state, async |conn| {
        let current = db::webhooks::lock(conn, tenant_id, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        db::webhooks::rotate(conn, &current, &sealed, until, now).await?;
        let details = serde_json::json!({"webhook_id": id.0, "previous_secret_expires_at": until});
        db::audit::insert(conn, &audit, AuditType::WebhookSecretRotated, now, details).await?;
        Ok(())
    })
    .await?;
    Ok(RotatedSecret {
        secret: secret_text(&key),
        previous_secret_expires_at: until,
    })
}

/// `test`: a `webhook.test` delivery to this webhook only (no audit event).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn test(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    actor: &str,
) -> Result<TestQueued, ApiError> {
    let now = state.now();
    in_transaction(state, async |conn| {
        let current = db::webhooks::lock(conn, tenant_id, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if current.status != WebhookStatus::Active {
            return Err(ApiError::InvalidState("the webhook is disabled"));
        }
        // Under the webhook's row lock: two tests at once are one after the other here.
        if let Some(last) = db::webhooks::last_test_at(conn, tenant_id, id).await? {
            let wait = (last + Duration::seconds(TEST_INTERVAL_SECS) - now).num_milliseconds();
            if wait > 0 {
                let secs = u64::try_from(wait).map_or(1, |ms| ms.div_ceil(1000));
                return Err(ApiError::TooManyAttempts {
                    retry_after_secs: secs.clamp(1, TEST_INTERVAL_SECS as u64),
                });
            }
        }
        let delivery_id = db::webhooks::insert_test(conn, tenant_id, id, actor, now).await?;
        Ok(TestQueued { delivery_id })
    })
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id))]
pub async fn list_deliveries(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    q: DeliveryListQuery,
) -> Result<DeliveryPage, ApiError> {
    let (limit, before) = page_args(q.limit, q.cursor.as_deref(), decode_delivery_cursor)?;
    let rows = in_transaction(state, async |conn| {
        if db::webhooks::get(conn, tenant_id, id).await?.is_none() {
            return Err(ApiError::NotFound);
        }
        db::prefer_ordered_scans(conn).await?;
        Ok(db::webhooks::list_deliveries(conn, tenant_id, id, q.state, before, limit + 1).await?)
    })
    .await?;
    let (rows, next_cursor) = cut_page(rows, limit, |r| {
        encode_delivery_cursor(r.created_at, r.delivery_id)
    });
    Ok(DeliveryPage {
        items: rows.into_iter().map(delivery_view).collect(),
        next_cursor,
    })
}

/// `retry`: a pending or failed delivery is due now (`409` when it already succeeded).
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, webhook_id = %id, delivery_id = %delivery))]
pub async fn retry(
    state: &AppState,
    tenant_id: &TenantId,
    id: WebhookId,
    delivery: DeliveryId,
) -> Result<(), ApiError> {
    let now = state.now();
    in_transaction(state, async |conn| {
        retry_in(conn, tenant_id, id, delivery, now).await
    })
    .await
}

async fn retry_in(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
    delivery: DeliveryId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    use crate::domain::ids::DeliveryState as S;
    match db::webhooks::retry_now(conn, tenant_id, id, delivery, now).await? {
        None => Err(ApiError::NotFound),
        Some(S::Succeeded) => Err(ApiError::InvalidState("the delivery already succeeded")),
        Some(_) => Ok(()),
    }
}
