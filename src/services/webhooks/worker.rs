//! The delivery worker every instance runs (docs/API.md §14). One round
//! ([`deliver_due`]): claim due deliveries (`FOR UPDATE SKIP LOCKED`, a lease as their
//! `next_attempt_at`, a claim id) in a short transaction; send each outside any transaction
//! (one shared client: connections kept, every resolved address checked, no redirects,
//! 10 s); record each attempt in a transaction of its own, where a `410` or 3 days of
//! failures disable the webhook (`webhook.disabled`). A delivery whose instance died is due again when its lease ends;
//! the late outcome of a superseded claim is dropped. [`spawn`] runs rounds until stopped.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use secrecy::ExposeSecret;

use super::client;
use crate::crypto::webhook::{secret_aad, sign};
use crate::db::{self, audit::AuditCtx, webhooks::DeliveryRow, webhooks::WebhookRow};
use crate::domain::audit::AuditType;
use crate::domain::ids::{DeliveryState, WebhookStatus};
use crate::domain::webhooks::{next_retry, parse_retry_after, WebhookUrl, FAILING_DISABLES_AFTER};
use crate::error::ApiError;
use crate::services::background::Background;
use crate::state::AppState;

/// How long a claim holds a delivery: well over the 10 s a send may take.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// A receiver has this long to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries claimed per round.
pub const BATCH: i64 = 20;
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Deliveries of one round sent at once.
const CONCURRENCY: usize = 8;

/// What one send came to.
#[derive(Debug, Default)]
pub struct Attempt {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub error: Option<String>,
}

impl Attempt {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
    fn failed(error: &str) -> Self {
        Attempt {
            error: Some(error.to_owned()),
            ..Default::default()
        }
    }
}

/// Claims up to `limit` due deliveries for this instance: `(claim id, rows)`.
pub async fn claim(
    state: &AppState,
    limit: i64,
) -> Result<(uuid::Uuid, Vec<DeliveryRow>), ApiError> {
    let now = state.now();
    let claim = uuid::Uuid::new_v4();
    let mut conn = state.pool.get().await?;
    let rows = conn
        .transaction::<_, ApiError, _>(async |conn| {
            Ok(db::webhooks::claim(conn, now, now + LEASE, claim, limit).await?)
        })
        .await?;
    Ok((claim, rows))
}

/// One round: claims, sends and records up to `limit` due deliveries; returns how many
/// were attempted. Tests call it directly with the injected clock.
pub async fn deliver_due(state: &AppState, limit: i64) -> Result<usize, ApiError> {
    let (claim_id, rows) = claim(state, limit).await?;
    let n = rows.len();
    // A few at a time: each send holds no connection, but its two short transactions do.
    let sends =
        futures_util::stream::iter(rows.into_iter().map(|row| deliver(state, claim_id, row)))
            .buffer_unordered(CONCURRENCY);
    for r in sends.collect::<Vec<_>>().await {
        if let Err(e) = r {
            tracing::warn!(error = %e, "recording a webhook delivery failed");
        }
    }
    Ok(n)
}

/// Sends one claimed delivery and records the attempt.
pub async fn deliver(
    state: &AppState,
    claim_id: uuid::Uuid,
    row: DeliveryRow,
) -> Result<(), ApiError> {
    let prepared = {
        let mut conn = state.pool.get().await?;
        prepare(&mut conn, &row).await?
    };
    let Some((webhook, msg_id, body)) = prepared else {
        return Ok(()); // the webhook is gone, and its deliveries with it
    };
    let started = Instant::now();
    let attempt = match signatures(state, &webhook, &msg_id, &body) {
        Ok(sig) => send(state, &webhook.url, &msg_id, &sig, body).await,
        Err(e) => {
            tracing::error!(error = %e, webhook_id = %webhook.webhook_id, "a webhook secret does not open");
            Attempt::failed("the webhook secret could not be read")
        }
    };
    state
        .metrics
        .webhook_latency
        .observe(started.elapsed().as_secs_f64());
    record(state, claim_id, &row, &attempt).await
}

/// The webhook, the `webhook-id` and the body of a delivery.
async fn prepare(
    conn: &mut AsyncPgConnection,
    row: &DeliveryRow,
) -> Result<Option<(WebhookRow, String, Vec<u8>)>, ApiError> {
    let Some(webhook) = db::webhooks::get(conn, &row.tenant_id, row.webhook_id).await? else {
        return Ok(None);
    };
    let (msg_id, payload) = match row.event_id {
        Some(id) => {
            let ev = db::webhooks::event(conn, &row.tenant_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("delivery of a missing audit event {id}"))
                })?;
            let data = serde_json::json!({
                "event_id": ev.id.to_string(), "tenant_id": row.tenant_id, "user_id": ev.user_id,
                "actor_id": ev.actor_id, "surface": ev.surface, "ip": ev.ip, "details": ev.details,
            });
            (
                format!("evt_{id}"),
                serde_json::json!({"type": ev.kind, "timestamp": ev.at, "data": data}),
            )
        }
        None => {
            let data = serde_json::json!({
                "event_id": null, "tenant_id": row.tenant_id, "user_id": null,
                "actor_id": row.actor_id, "surface": null, "ip": null, "details": null,
            });
            let id = format!("evt_test_{}", row.delivery_id.0.simple());
            (
                id,
                serde_json::json!({"type": "webhook.test", "timestamp": row.created_at, "data": data}),
            )
        }
    };
    let body = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Some((webhook, msg_id, body)))
}

/// `webhook-signature`: one `v1,…` per live secret (two during a rotation's overlap).
fn signatures(
    state: &AppState,
    w: &WebhookRow,
    msg_id: &str,
    body: &[u8],
) -> anyhow::Result<(i64, String)> {
    let now = state.now();
    let ts = now.timestamp();
    let aad = secret_aad(w.tenant_id.as_str(), w.webhook_id.0);
    let ring = &state.keys.keyring;
    let key = ring.open(&w.key_id, &w.nonce, &w.ciphertext, &aad)?;
    let mut sigs = vec![sign(key.expose_secret(), msg_id, ts, body)];
    if let (Some(kid), Some(nonce), Some(ct), Some(until)) = (
        &w.previous_key_id,
        &w.previous_nonce,
        &w.previous_ciphertext,
        w.previous_expires_at,
    ) {
        if until > now {
            let old = ring.open(kid, nonce, ct, &aad)?;
            sigs.push(sign(old.expose_secret(), msg_id, ts, body));
        }
    }
    Ok((ts, sigs.join(" ")))
}

async fn send(
    state: &AppState,
    url: &str,
    msg_id: &str,
    sig: &(i64, String),
    body: Vec<u8>,
) -> Attempt {
    let Some(url) = WebhookUrl::from_stored(url) else {
        return Attempt::failed("the URL does not parse");
    };
    // The resolver never sees a literal: it is checked here.
    if url.forbidden_literal(state.settings.webhooks_allow_private()) {
        return Attempt::failed(client::FORBIDDEN);
    }
    let url = url.url();
    let sent = state
        .webhook_client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", sig.0.to_string())
        .header("webhook-signature", &sig.1)
        .body(body)
        .send();
    // The client's timeout covers the request and the answer; this one also the lookup.
    let sent = match tokio::time::timeout(TIMEOUT + Duration::from_secs(1), sent).await {
        Ok(sent) => sent,
        Err(_) => return Attempt::failed("no answer within 10 s"),
    };
    match sent {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, state.now().timestamp()));
            let error = (!res.status().is_success()).then(|| format!("HTTP {status}"));
            drain(res).await;
            Attempt {
                status: Some(status),
                retry_after,
                error,
            }
        }
        Err(e) => match client::refusal(&e) {
            Some(why) => Attempt::failed(why),
            None if e.is_timeout() => Attempt::failed("no answer within 10 s"),
            None if e.is_connect() => Attempt::failed("the connection failed"),
            None => Attempt::failed("the request failed"),
        },
    }
}

/// Reads up to 64 KiB of an answer and drops it, so a short answer's connection goes back to
/// the pool; a longer one is cut (its connection closed), never buffered. The client's
/// timeout bounds the reading; its errors do not matter, the status is in.
async fn drain(mut res: reqwest::Response) {
    let mut left: usize = 64 * 1024;
    while let Ok(Some(chunk)) = res.chunk().await {
        match left.checked_sub(chunk.len()) {
            Some(l) => left = l,
            None => break,
        }
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    rand::fill(&mut b);
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0
}

/// Records an attempt (and disables the webhook on `410` or after 3 days of failures).
async fn record(
    state: &AppState,
    claim_id: uuid::Uuid,
    row: &DeliveryRow,
    a: &Attempt,
) -> Result<(), ApiError> {
    let now = state.now();
    let attempts = u32::try_from(row.attempts).unwrap_or(0) + 1;
    let (delivery_state, next) = if a.ok() {
        (DeliveryState::Succeeded, None)
    } else {
        match next_retry(attempts, jitter(), a.retry_after) {
            Some(wait) => (
                DeliveryState::Pending,
                Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1))),
            ),
            None => (DeliveryState::Failed, None),
        }
    };
    let outcome = db::webhooks::Outcome {
        state: delivery_state,
        status: a.status.map(i32::from),
        error: a.error.as_deref(),
        next_attempt_at: next,
        now,
    };
    let mut conn = state.pool.get().await?;
    let recorded = conn
        .transaction::<_, ApiError, _>(async |conn| {
            if !db::webhooks::record(conn, &row.tenant_id, row.delivery_id, claim_id, &outcome)
                .await?
            {
                return Ok(false);
            }
            if a.ok() {
                db::webhooks::note_success(conn, &row.tenant_id, row.webhook_id).await?;
            } else {
                disable_if_due(conn, row, a.status == Some(410), now).await?;
            }
            Ok(true)
        })
        .await?;
    if recorded {
        let label = match delivery_state {
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Pending => "retrying",
            DeliveryState::Failed => "failed",
        };
        state
            .metrics
            .webhook_deliveries
            .with_label_values(&[label])
            .inc();
    }
    Ok(())
}

async fn disable_if_due(
    conn: &mut AsyncPgConnection,
    row: &DeliveryRow,
    gone: bool,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some((since, status)) =
        db::webhooks::note_failure(conn, &row.tenant_id, row.webhook_id, now).await?
    else {
        return Ok(());
    };
    let failing_too_long = (now - since)
        .to_std()
        .is_ok_and(|d| d >= FAILING_DISABLES_AFTER);
    if status != WebhookStatus::Active || !(gone || failing_too_long) {
        return Ok(());
    }
    let change = db::webhooks::WebhookChange {
        status: Some(WebhookStatus::Disabled),
        updated_at: Some(now),
        ..Default::default()
    };
    db::webhooks::update(conn, &row.tenant_id, row.webhook_id, &change).await?;
    db::webhooks::hold_pending(conn, &row.tenant_id, row.webhook_id, true).await?;
    let audit = AuditCtx {
        tenant_id: row.tenant_id.clone(),
        user_id: None,
        actor_id: None,
        surface: None,
        ip: None,
        user_agent: None,
    };
    let reason = if gone { "gone" } else { "failing" };
    let details = serde_json::json!({"webhook_id": row.webhook_id.0, "reason": reason, "failing_since": since});
    db::audit::insert(conn, &audit, AuditType::WebhookDisabled, now, details).await?;
    Ok(())
}

/// Counts pending deliveries into the queue-depth gauge.
pub async fn observe_queue(state: &AppState) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    let n = conn
        .transaction::<_, ApiError, _>(async |conn| {
            diesel_async::SimpleAsyncConnection::batch_execute(
                conn,
                "SET LOCAL enable_seqscan = off",
            )
            .await?;
            Ok(db::webhooks::pending_count(conn).await?)
        })
        .await?;
    state.metrics.webhook_queue_depth.set(n);
    Ok(())
}

/// Starts this instance's worker: a round whenever the last one was full, else every second.
/// Stopping it lets the round in flight finish.
pub fn spawn(state: actix_web::web::Data<AppState>) -> Background {
    Background::spawn(move |mut stopped| async move {
        let mut rounds: u64 = 0;
        loop {
            if *stopped.borrow() {
                break;
            }
            let busy = match deliver_due(&state, BATCH).await {
                Ok(n) => n as i64 == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "a webhook delivery round failed");
                    false
                }
            };
            if rounds % 5 == 0 {
                let _ = observe_queue(&state).await;
            }
            rounds += 1;
            if busy {
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    })
}
