//! The delivery worker's claim (docs/API.md §20): due deliveries of every tenant, taken
//! webhook by webhook in turn, each webhook's oldest due first and at most its share,
//! `FOR UPDATE SKIP LOCKED`, leased to one instance.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DeliveryRow;
use crate::db::schema::webhook_deliveries as d;
use crate::domain::ids::{DeliveryId, TenantId, WebhookId};

/// A webhook, as the claim's turn and the per-webhook share are counted.
pub type WebhookKey = (TenantId, WebhookId);

/// The walk over webhooks (a loose scan of `webhook_deliveries_queue`: one probe per webhook
/// with pending deliveries, whatever their number) from just after `($3, $4)` up to and
/// including `($5, $6)` when `$5` is given; for each, its oldest due deliveries up to its
/// share (`$10` less what this instance already sends to it, `$7`–`$9`), locked, skipping
/// rows another instance holds. A recursive CTE and `LATERAL`, which the DSL cannot say.
const DUE_IN_TURN: &str = "
WITH RECURSIVE hooks (tenant_id, webhook_id, turn) AS (
    (SELECT q.tenant_id, q.webhook_id, 1
       FROM webhook_deliveries q
      WHERE q.state = 'pending' AND NOT q.held
        AND (q.tenant_id, q.webhook_id) > ($3::text, $4::uuid)
        AND ($5::text IS NULL OR (q.tenant_id, q.webhook_id) <= ($5::text, $6::uuid))
      ORDER BY q.tenant_id, q.webhook_id
      LIMIT 1)
    UNION ALL
    SELECT n.tenant_id, n.webhook_id, h.turn + 1
      FROM hooks h
     CROSS JOIN LATERAL (
           SELECT q.tenant_id, q.webhook_id
             FROM webhook_deliveries q
            WHERE q.state = 'pending' AND NOT q.held
              AND (q.tenant_id, q.webhook_id) > (h.tenant_id, h.webhook_id)
            ORDER BY q.tenant_id, q.webhook_id
            LIMIT 1) n
     WHERE $5::text IS NULL OR (n.tenant_id, n.webhook_id) <= ($5::text, $6::uuid)
)
SELECT x.tenant_id, x.delivery_id, h.webhook_id, h.turn
  FROM hooks h
 CROSS JOIN LATERAL (
       SELECT q.tenant_id, q.delivery_id
         FROM webhook_deliveries q
        WHERE q.state = 'pending' AND NOT q.held
          AND q.tenant_id = h.tenant_id AND q.webhook_id = h.webhook_id
          AND q.next_attempt_at <= $1::timestamptz
        ORDER BY q.next_attempt_at
        LIMIT GREATEST(0, $10::int4 - COALESCE(
              (SELECT b.n FROM unnest($7::text[], $8::uuid[], $9::int4[]) AS b (t, w, n)
                WHERE b.t = h.tenant_id AND b.w = h.webhook_id), 0))
          FOR UPDATE SKIP LOCKED) x
 LIMIT $2::bigint";

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Text)]
    tenant_id: TenantId,
    #[diesel(sql_type = SqlUuid)]
    delivery_id: DeliveryId,
    #[diesel(sql_type = SqlUuid)]
    webhook_id: WebhookId,
    #[diesel(sql_type = Integer)]
    turn: i32,
}

/// What a claim asks for.
pub struct ClaimRequest<'a> {
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
    pub claim: uuid::Uuid,
    pub limit: i64,
    /// Deliveries of one webhook this instance may have in flight at once.
    pub per_webhook: i32,
    /// What this instance is sending now, per webhook.
    pub in_flight: &'a HashMap<WebhookKey, i32>,
    /// The webhook the previous claim ended with: this one starts after it.
    pub after: Option<&'a WebhookKey>,
}

/// The claimed rows and the webhook the claim ended with (the next one's `after`).
pub struct Claimed {
    pub rows: Vec<DeliveryRow>,
    pub last: Option<WebhookKey>,
}

/// Claims up to `limit` due deliveries of active webhooks (held ones belong to disabled
/// webhooks) in turn: the webhooks after `after` first, then from the first up to `after`.
/// Each claimed row gets `claim` and a lease until `lease_until` (its `next_attempt_at`), so
/// it is due again if this instance dies. Run it in a transaction; send after it commits.
pub async fn claim(conn: &mut AsyncPgConnection, r: &ClaimRequest<'_>) -> QueryResult<Claimed> {
    let start = (String::new(), uuid::Uuid::nil());
    let (from, to) = match r.after {
        Some((t, w)) => ((t.as_str().to_owned(), w.0), Some((t.as_str(), w.0))),
        None => (start.clone(), None),
    };
    let mut due = due_in_turn(conn, r, &from, None, r.limit).await?;
    let mut last = due.iter().max_by_key(|x| x.turn).map(key);
    let left = r.limit - due.len() as i64;
    if let (Some(upto), true) = (to, left > 0) {
        let wrapped = due_in_turn(conn, r, &start, Some(upto), left).await?;
        if let Some(l) = wrapped.iter().max_by_key(|x| x.turn) {
            last = Some(key(l));
        }
        due.extend(wrapped);
    }
    if due.is_empty() {
        return Ok(Claimed {
            rows: Vec::new(),
            last,
        });
    }
    let tenants: Vec<&TenantId> = due.iter().map(|x| &x.tenant_id).collect();
    let ids: Vec<DeliveryId> = due.iter().map(|x| x.delivery_id).collect();
    // Both keys as `= ANY`: one primary-key probe per pair (delivery ids are unique).
    let rows = diesel::update(
        d::table
            .filter(d::tenant_id.eq_any(tenants))
            .filter(d::delivery_id.eq_any(ids)),
    )
    .set((
        d::next_attempt_at.eq(r.lease_until),
        d::claim_id.eq(r.claim),
    ))
    .returning(DeliveryRow::as_returning())
    .get_results(conn)
    .await?;
    Ok(Claimed { rows, last })
}

fn key(x: &Due) -> WebhookKey {
    (x.tenant_id.clone(), x.webhook_id)
}

async fn due_in_turn(
    conn: &mut AsyncPgConnection,
    r: &ClaimRequest<'_>,
    after: &(String, uuid::Uuid),
    upto: Option<(&str, uuid::Uuid)>,
    limit: i64,
) -> QueryResult<Vec<Due>> {
    let (mut busy_tenants, mut busy_hooks, mut busy_counts) = (Vec::new(), Vec::new(), Vec::new());
    for ((t, w), n) in r.in_flight {
        busy_tenants.push(t.as_str());
        busy_hooks.push(w.0);
        busy_counts.push(*n);
    }
    diesel::sql_query(DUE_IN_TURN)
        .bind::<Timestamptz, _>(r.now)
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(&after.0)
        .bind::<SqlUuid, _>(after.1)
        .bind::<Nullable<Text>, _>(upto.map(|u| u.0))
        .bind::<Nullable<SqlUuid>, _>(upto.map(|u| u.1))
        .bind::<Array<Text>, _>(busy_tenants)
        .bind::<Array<SqlUuid>, _>(busy_hooks)
        .bind::<Array<Integer>, _>(busy_counts)
        .bind::<Integer, _>(r.per_webhook)
        .load(conn)
        .await
}
