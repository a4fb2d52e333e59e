//! `webhook_deliveries`: the test delivery, the listing, a retry, holding a disabled
//! webhook's deliveries, an attempt's outcome and the queue depth (the audit event a delivery
//! carries is `db::audit::event`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::webhook_deliveries as d;
use crate::domain::ids::{DeliveryId, DeliveryState, TenantId, WebhookId};

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
        q = q.filter(crate::db::row_before::<SqlUuid, _>(
            "(webhook_deliveries.created_at, webhook_deliveries.delivery_id)",
            at,
            id,
        ));
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

/// When the webhook's newest test delivery was made (`webhook_deliveries_tests`).
pub async fn last_test_at(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    webhook_id: WebhookId,
) -> QueryResult<Option<DateTime<Utc>>> {
    d::table
        .filter(d::tenant_id.eq(tenant_id))
        .filter(d::webhook_id.eq(webhook_id))
        .filter(d::event_id.is_null())
        .order(d::created_at.desc())
        .select(d::created_at)
        .first(conn)
        .await
        .optional()
}
