//! `webhooks` and `webhook_deliveries`. Delivery rows are made by the outbox trigger on
//! `audit_events` (migrations/2026-11-30-000003_webhooks); here are the endpoints' queries,
//! the test delivery, and the worker's claim and outcome. Every query is keyed by tenant,
//! except the worker's claim, which takes due rows of all tenants through
//! `webhook_deliveries_due`.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::audit::EventRow;
use super::schema::{audit_events, webhook_deliveries as d, webhooks as w};
use crate::crypto::keyring::Sealed;
use crate::domain::ids::{DeliveryId, DeliveryState, TenantId, WebhookId, WebhookStatus};

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

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    w::table
        .find((tenant_id, id))
        .select(WebhookRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The row locked for an update in the caller's transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: WebhookId,
) -> QueryResult<Option<WebhookRow>> {
    w::table
        .find((tenant_id, id))
        .select(WebhookRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
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

/// A new secret; the current one stays valid (sealed) until `previous_until`.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    current: &WebhookRow,
    sealed: &Sealed,
    previous_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(w::table.find((&current.tenant_id, current.webhook_id)))
        .set((
            w::key_id.eq(&sealed.key_id),
            w::nonce.eq(&sealed.nonce),
            w::ciphertext.eq(&sealed.ciphertext),
            w::previous_key_id.eq(&current.key_id),
            w::previous_nonce.eq(&current.nonce),
            w::previous_ciphertext.eq(&current.ciphertext),
            w::previous_expires_at.eq(previous_until),
            w::updated_at.eq(now),
        ))
        .execute(conn)
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

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = d, check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub tenant_id: TenantId,
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: Option<i64>,
    pub event_type: String,
    pub actor_id: Option<String>,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A `webhook.test` delivery, due now.
pub async fn insert_test(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    webhook_id: WebhookId,
    actor_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<DeliveryId> {
    let id = DeliveryId::new();
    diesel::insert_into(d::table)
        .values((
            d::tenant_id.eq(tenant_id),
            d::delivery_id.eq(id),
            d::webhook_id.eq(webhook_id),
            d::event_type.eq("webhook.test"),
            d::actor_id.eq(actor_id),
            d::state.eq(DeliveryState::Pending),
            d::next_attempt_at.eq(now),
            d::created_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// One webhook's deliveries, newest first, strictly before the `(created_at, id)` cursor.
pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    webhook_id: WebhookId,
    state: Option<DeliveryState>,
    before: Option<(DateTime<Utc>, DeliveryId)>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut q = d::table
        .filter(d::tenant_id.eq(tenant_id))
        .filter(d::webhook_id.eq(webhook_id))
        .select(DeliveryRow::as_select())
        .order((d::created_at.desc(), d::delivery_id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(s) = state {
        q = q.filter(d::state.eq(s));
    }
    if let Some((at, id)) = before {
        // A row comparison (one index condition), which the DSL has no word for.
        q = q.filter(
            sql::<Bool>("(webhook_deliveries.created_at, webhook_deliveries.delivery_id) < (")
                .bind::<Timestamptz, _>(at)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        );
    }
    q.load(conn).await
}

/// `retry`: a pending or failed delivery becomes due now. False: no such delivery, or it
/// succeeded.
pub async fn retry_now(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    webhook_id: WebhookId,
    id: DeliveryId,
    now: DateTime<Utc>,
) -> QueryResult<Option<DeliveryState>> {
    let found: Option<DeliveryState> = d::table
        .find((tenant_id, id))
        .filter(d::webhook_id.eq(webhook_id))
        .select(d::state)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if matches!(found, Some(DeliveryState::Pending | DeliveryState::Failed)) {
        diesel::update(d::table.find((tenant_id, id)))
            .set((
                d::state.eq(DeliveryState::Pending),
                d::next_attempt_at.eq(now),
                d::claim_id.eq(None::<uuid::Uuid>),
            ))
            .execute(conn)
            .await?;
    }
    Ok(found)
}

/// Claims up to `limit` due deliveries of active webhooks (held ones belong to disabled
/// webhooks), in order through `webhook_deliveries_due`, skipping rows another instance
/// has locked: each gets `claim` and a lease until `lease_until` (its `next_attempt_at`), so it
/// is due again if this instance dies. Run it in a transaction; send after it commits.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    claim: uuid::Uuid,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let due: Vec<(TenantId, DeliveryId)> = d::table
        .filter(d::state.eq(DeliveryState::Pending))
        .filter(d::held.eq(false))
        .filter(d::next_attempt_at.le(now))
        .order(d::next_attempt_at.asc())
        .limit(limit)
        .select((d::tenant_id, d::delivery_id))
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let tenants: Vec<&TenantId> = due.iter().map(|(t, _)| t).collect();
    let ids: Vec<DeliveryId> = due.iter().map(|(_, i)| *i).collect();
    // Both keys as `= ANY`: one primary-key probe per pair (delivery ids are unique).
    diesel::update(
        d::table
            .filter(d::tenant_id.eq_any(tenants))
            .filter(d::delivery_id.eq_any(ids)),
    )
    .set((d::next_attempt_at.eq(lease_until), d::claim_id.eq(claim)))
    .returning(DeliveryRow::as_returning())
    .get_results(conn)
    .await
}

/// What an attempt came to.
pub struct Outcome<'a> {
    pub state: DeliveryState,
    pub status: Option<i32>,
    pub error: Option<&'a str>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Records the attempt of claim `claim`; false when the claim was superseded (its lease
/// ran out and another instance took the delivery) or the delivery is gone.
pub async fn record(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: DeliveryId,
    claim: uuid::Uuid,
    o: &Outcome<'_>,
) -> QueryResult<bool> {
    let delivered = (o.state == DeliveryState::Succeeded).then_some(o.now);
    diesel::update(d::table.find((tenant_id, id)).filter(d::claim_id.eq(claim)))
        .set((
            d::state.eq(o.state),
            d::attempts.eq(d::attempts + 1),
            d::last_status.eq(o.status),
            d::last_error.eq(o.error),
            d::next_attempt_at.eq(o.next_attempt_at),
            d::claim_id.eq(None::<uuid::Uuid>),
            d::delivered_at.eq(delivered),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Pending deliveries (the queue depth). Run it in a transaction after
/// `SET LOCAL enable_seqscan = off`: without statistics the planner would read the table.
pub async fn pending_count(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    d::table
        .filter(d::state.eq(DeliveryState::Pending))
        .count()
        .get_result(conn)
        .await
}

/// Holds (webhook disabled) or releases (re-enabled) the webhook's pending deliveries.
pub async fn hold_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    webhook_id: WebhookId,
    held: bool,
) -> QueryResult<usize> {
    diesel::update(
        d::table
            .filter(d::tenant_id.eq(tenant_id))
            .filter(d::webhook_id.eq(webhook_id))
            .filter(d::state.eq(DeliveryState::Pending))
            .filter(d::held.ne(held)),
    )
    .set(d::held.eq(held))
    .execute(conn)
    .await
}

/// The audit event a delivery carries.
pub async fn event(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: i64,
) -> QueryResult<Option<EventRow>> {
    audit_events::table
        .find((tenant_id, id))
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Webhooks with a secret (current or previous) not under the active key, for
/// `encryption-keys rotate`.
pub async fn not_under_key(
    conn: &mut AsyncPgConnection,
    active_key_id: &str,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    w::table
        .filter(
            w::key_id
                .ne(active_key_id)
                .or(w::previous_key_id.ne(active_key_id)),
        )
        .order((w::tenant_id, w::webhook_id))
        .limit(limit)
        .select(WebhookRow::as_select())
        .load(conn)
        .await
}

/// Replaces the current secret's ciphertext if it is still under `old_key_id`.
pub async fn reseal(
    conn: &mut AsyncPgConnection,
    r: &WebhookRow,
    sealed: &Sealed,
) -> QueryResult<bool> {
    diesel::update(
        w::table
            .find((&r.tenant_id, r.webhook_id))
            .filter(w::key_id.eq(&r.key_id))
            .filter(w::nonce.eq(&r.nonce)),
    )
    .set((
        w::key_id.eq(&sealed.key_id),
        w::nonce.eq(&sealed.nonce),
        w::ciphertext.eq(&sealed.ciphertext),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Replaces the previous secret's ciphertext if it is still the one read.
pub async fn reseal_previous(
    conn: &mut AsyncPgConnection,
    r: &WebhookRow,
    sealed: &Sealed,
) -> QueryResult<bool> {
    diesel::update(
        w::table
            .find((&r.tenant_id, r.webhook_id))
            .filter(w::previous_key_id.eq(r.previous_key_id.as_deref()))
            .filter(w::previous_nonce.eq(r.previous_nonce.as_deref())),
    )
    .set((
        w::previous_key_id.eq(&sealed.key_id),
        w::previous_nonce.eq(&sealed.nonce),
        w::previous_ciphertext.eq(&sealed.ciphertext),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
