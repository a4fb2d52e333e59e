//! `webhooks`: the endpoints' queries on the table and the webhook's failing run. The
//! deliveries (`webhook_deliveries`) are in [`deliveries`] and the worker's claim in
//! [`claim`]; the secrets' rotation and re-sealing in [`secrets`]. Delivery rows are made by
//! the outbox trigger on `audit_events` (migrations/2026-11-30-000003_webhooks, current body
//! in 2026-12-01-000001). Every query is keyed by tenant, except the worker's claim, which
//! takes due rows of all tenants, and the key rotation's walk.

mod claim;
mod deliveries;
mod secrets;

use chrono::{DateTime, Utc};
use diesel::dsl::{sql, AsSelect};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub use self::claim::*;
pub use self::deliveries::*;
pub use self::secrets::*;
use super::schema::webhooks as w;
use crate::crypto::keyring::Sealed;
use crate::domain::ids::{TenantId, WebhookId, WebhookStatus};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = w, check_for_backend(diesel::pg::Pg))]
pub struct WebhookRow {
    pub tenant_id: TenantId,
    pub webhook_id: WebhookId,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub status: WebhookStatus,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub previous_key_id: Option<String>,
    pub previous_nonce: Option<Vec<u8>>,
    pub previous_ciphertext: Option<Vec<u8>>,
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewWebhook<'a> {
    pub tenant_id: &'a TenantId,
    pub webhook_id: WebhookId,
    pub url: &'a str,
    pub event_types: &'a [String],
    pub description: Option<&'a str>,
    pub sealed: &'a Sealed,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, n: &NewWebhook<'_>) -> QueryResult<WebhookRow> {
    diesel::insert_into(w::table)
        .values((
            w::tenant_id.eq(n.tenant_id),
            w::webhook_id.eq(n.webhook_id),
            w::url.eq(n.url),
            w::event_types.eq(n.event_types),
            w::description.eq(n.description),
            w::status.eq(WebhookStatus::Active),
            w::key_id.eq(&n.sealed.key_id),
            w::nonce.eq(&n.sealed.nonce),
            w::ciphertext.eq(&n.sealed.ciphertext),
            w::created_at.eq(n.now),
            w::updated_at.eq(n.now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

/// The webhook's row, by its key.
#[diesel::dsl::auto_type]
fn row<'a>(tenant_id: &'a TenantId, id: WebhookId) -> _ {
    let columns: AsSelect<WebhookRow, Pg> = WebhookRow::as_select();
    w::table.find((tenant_id, id)).select(columns)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    row(tenant_id, id).first(conn).await.optional()
}

/// The row locked for an update in the caller's transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    row(tenant_id, id).for_update().first(conn).await.optional()
}

/// By webhook id (the primary key's order), after `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    after: Option<WebhookId>,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    let mut q = w::table
        .filter(w::tenant_id.eq(tenant_id))
        .select(WebhookRow::as_select())
        .order(w::webhook_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(w::webhook_id.gt(a));
    }
    q.load(conn).await
}

/// The fields an update may change; `None` keeps the stored value.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = w)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub status: Option<WebhookStatus>,
    pub failing_since: Option<Option<DateTime<Utc>>>,
    pub updated_at: Option<DateTime<Utc>>,
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
    change: &WebhookChange,
) -> QueryResult<WebhookRow> {
    diesel::update(w::table.find((tenant_id, id)))
        .set(change)
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<bool> {
    diesel::delete(w::table.find((tenant_id, id)))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Records a failed attempt in the webhook's failing run; returns when the run started.
pub async fn note_failure(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
    now: DateTime<Utc>,
) -> QueryResult<Option<(DateTime<Utc>, WebhookStatus)>> {
    diesel::update(w::table.find((tenant_id, id)))
        .set(
            w::failing_since.eq(sql::<Nullable<Timestamptz>>("COALESCE(failing_since, ")
                .bind::<Timestamptz, _>(now)
                .sql(")")),
        )
        .returning((w::failing_since, w::status))
        .get_result::<(Option<DateTime<Utc>>, WebhookStatus)>(conn)
        .await
        .optional()
        .map(|r| r.map(|(since, status)| (since.unwrap_or(now), status)))
}

/// A success ends the webhook's failing run.
pub async fn note_success(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<usize> {
    diesel::update(
        w::table
            .find((tenant_id, id))
            .filter(w::failing_since.is_not_null()),
    )
    .set(w::failing_since.eq(None::<DateTime<Utc>>))
    .execute(conn)
    .await
}

/// Locks the tenant's row (`FOR NO KEY UPDATE`: the webhooks' foreign keys still check
/// against it) so that counting its webhooks and adding one is one step; false when there is
/// no such tenant.
pub async fn lock_tenant(conn: &mut AsyncPgConnection, tenant_id: &TenantId) -> QueryResult<bool> {
    use super::schema::tenants as t;
    let read = t::table
        .find(tenant_id)
        .select(t::tenant_id)
        .for_no_key_update()
        .limit(1); // as `.first()` had it: the statement's text is unchanged
    crate::db::locked::<TenantId, _>(conn, read).await
}

/// The tenant's webhooks, disabled ones included.
pub async fn count(conn: &mut AsyncPgConnection, tenant_id: &TenantId) -> QueryResult<i64> {
    w::table
        .filter(w::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
        .await
}
