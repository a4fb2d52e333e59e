//! The delivery worker every instance runs (docs/API.md §14, §20). It claims due deliveries
//! in a short transaction (`FOR UPDATE SKIP LOCKED`, a lease as their `next_attempt_at`, a
//! claim id), taking webhooks in turn and never more than [`PER_WEBHOOK`] of one webhook in
//! flight on this instance; it sends each outside any transaction
//! ([`attempt`](super::attempt)) and records each attempt in a transaction of its own
//! ([`outcome`](super::outcome)). A hanging receiver so holds at most two of this
//! instance's slots for up to 10 s, and every other webhook's due delivery is claimed at the
//! next poll or completion. A delivery whose instance died is due again when its lease
//! ends; the late outcome of a superseded claim is dropped.
//!
//! [`spawn`] runs the loop until stopped; [`deliver_due`] is one synchronous round, which
//! tests call with the injected clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel_async::SimpleAsyncConnection;
use futures_util::StreamExt;
use tokio::task::JoinSet;

use super::attempt::attempt;
use super::outcome::record;
use crate::db::{self, webhooks::ClaimRequest, webhooks::DeliveryRow, webhooks::WebhookKey};
use crate::error::ApiError;
use crate::services::background::Background;
use crate::services::in_transaction;
use crate::state::AppState;

/// How long a claim holds a delivery: well over the 10 s a send may take. A delivery is
/// claimed only when a slot is free to send it at once, so the lease starts with the send.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// Deliveries of one webhook an instance sends at once (§20).
pub const PER_WEBHOOK: i32 = 2;
/// Deliveries an instance sends at once, over all webhooks. Sends hold no database
/// connection; their two short transactions each take one for a moment.
pub const MAX_IN_FLIGHT: usize = 32;
/// Due deliveries are looked for at least this often (hence "within 2 s of being due").
const POLL: Duration = Duration::from_secs(1);
/// How often the queue depth is counted.
const QUEUE_EVERY: Duration = Duration::from_secs(5);

/// Claims up to `limit` due deliveries for this instance, in turn and at most
/// [`PER_WEBHOOK`] of each webhook: `(claim id, rows)`. Tests use it to play a claim whose
/// instance dies.
#[tracing::instrument(skip_all)]
pub async fn claim(
    state: &AppState,
    limit: i64,
) -> Result<(uuid::Uuid, Vec<DeliveryRow>), ApiError> {
    let (claim, claimed) = claim_in_turn(state, limit, &HashMap::new(), None).await?;
    Ok((claim, claimed.rows))
}

#[tracing::instrument(skip(state, in_flight, after))]
async fn claim_in_turn(
    state: &AppState,
    limit: i64,
    in_flight: &HashMap<WebhookKey, i32>,
    after: Option<&WebhookKey>,
) -> Result<(uuid::Uuid, db::webhooks::Claimed), ApiError> {
    let now = state.now();
    let request = ClaimRequest {
        now,
        lease_until: now + LEASE,
        claim: uuid::Uuid::new_v4(),
        limit,
        per_webhook: PER_WEBHOOK,
        in_flight,
        after,
    };
    let claimed = in_transaction(state, async |conn| {
        Ok(db::webhooks::claim(conn, &request).await?)
    })
    .await?;
    Ok((request.claim, claimed))
}

/// One round: claims, sends and records up to `limit` due deliveries (at most
/// [`PER_WEBHOOK`] of each webhook); returns how many were attempted.
#[tracing::instrument(skip(state))]
pub async fn deliver_due(state: &AppState, limit: i64) -> Result<usize, ApiError> {
    let (claim_id, rows) = claim(state, limit).await?;
    let n = rows.len();
    let sends =
        futures_util::stream::iter(rows.into_iter().map(|row| deliver(state, claim_id, row)))
            .buffer_unordered(MAX_IN_FLIGHT);
    for r in sends.collect::<Vec<_>>().await {
        if let Err(e) = r {
            tracing::warn!(error = %e, "recording a webhook delivery failed");
        }
    }
    Ok(n)
}

/// Sends one claimed delivery and records the attempt.
#[tracing::instrument(skip(state, row), fields(tenant_id = %row.tenant_id, webhook_id = %row.webhook_id, delivery_id = %row.delivery_id))]
pub async fn deliver(
    state: &AppState,
    claim_id: uuid::Uuid,
    row: DeliveryRow,
) -> Result<(), ApiError> {
    let gauge = &state.metrics.webhook_in_flight;
    gauge.inc();
    let _sent = OnDrop(|| gauge.dec());
    match attempt(state, &row).await? {
        Some(a) => record(state, claim_id, &row, &a).await,
        None => Ok(()), // the webhook is gone, and its deliveries with it
    }
}

/// Runs its closure when dropped, so a send that panics or is cancelled still gives back
/// what it took.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Counts pending deliveries into the queue-depth gauge.
#[tracing::instrument(skip(state))]
pub async fn observe_queue(state: &AppState) -> Result<(), ApiError> {
    let n = in_transaction(state, async |conn| {
        conn.batch_execute("SET LOCAL enable_seqscan = off").await?;
        Ok(db::webhooks::pending_count(conn).await?)
    })
    .await?;
    state.metrics.webhook_queue_depth.set(n);
    Ok(())
}

/// What this instance is sending, per webhook; a send's slot is given back when its task
/// ends, however it ends.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashMap<WebhookKey, i32>>>);

impl InFlight {
    fn snapshot(&self) -> HashMap<WebhookKey, i32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn take(&self, key: WebhookKey) -> OnDrop<impl FnMut()> {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default() += 1;
        let this = self.clone();
        OnDrop(move || {
            let mut map = this.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n <= 0 {
                    map.remove(&key);
                }
            }
        })
    }
}

/// Starts this instance's worker: it claims whenever a send ends and at least every second,
/// as many due deliveries as it has free slots. Stopping it lets the sends in flight finish
/// (each within the 10-s limit) and be recorded.
pub fn spawn(state: actix_web::web::Data<AppState>) -> Background {
    Background::spawn(move |mut stopped| async move {
        let in_flight = InFlight::default();
        let mut sends: JoinSet<()> = JoinSet::new();
        let mut after: Option<WebhookKey> = None;
        let mut counted: Option<Instant> = None;
        loop {
            if *stopped.borrow() {
                break;
            }
            let free = MAX_IN_FLIGHT.saturating_sub(sends.len());
            if free > 0 {
                let busy = in_flight.snapshot();
                match claim_in_turn(&state, free as i64, &busy, after.as_ref()).await {
                    Ok((claim_id, claimed)) => {
                        after = claimed.last.or(after);
                        for row in claimed.rows {
                            let slot = in_flight.take((row.tenant_id.clone(), row.webhook_id));
                            let state = state.clone();
                            sends.spawn(async move {
                                let _slot = slot;
                                if let Err(e) = deliver(&state, claim_id, row).await {
                                    tracing::warn!(error = %e, "a webhook delivery failed to record");
                                }
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            if counted.is_none_or(|at| at.elapsed() >= QUEUE_EVERY) {
                let _ = observe_queue(&state).await;
                counted = Some(Instant::now());
            }
            tokio::select! {
                _ = stopped.changed() => break,
                Some(_) = sends.join_next(), if !sends.is_empty() => {
                    while sends.try_join_next().is_some() {}
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        while sends.join_next().await.is_some() {}
    })
}
