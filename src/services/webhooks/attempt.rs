//! One attempt of one delivery: its body (the audit event, or the test event), the
//! `webhook-signature` with every live secret, and the `POST` through the guarded client,
//! bounded by the 10-s limit, the name's lookup included.

use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret;

use super::client;
use crate::crypto::webhook::{secret_aad, sign};
use crate::db::{self, webhooks::DeliveryRow, webhooks::WebhookRow};
use crate::domain::webhooks::{parse_retry_after, WebhookUrl, TIMEOUT};
use crate::error::ApiError;
use crate::state::AppState;

/// What one send came to.
#[derive(Debug, Default)]
pub struct Attempt {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub error: Option<String>,
}

impl Attempt {
    pub(super) fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
    fn failed(error: &str) -> Self {
        Attempt {
            error: Some(error.to_owned()),
            ..Default::default()
        }
    }
}

/// Sends one delivery; `None` when its webhook is gone (and its deliveries with it).
#[tracing::instrument(skip_all)]
pub(super) async fn attempt(
    state: &AppState,
    row: &DeliveryRow,
) -> Result<Option<Attempt>, ApiError> {
    let prepared = {
        let mut conn = state.pool.get().await?;
        prepare(&mut conn, row).await?
    };
    let Some((webhook, msg_id, body)) = prepared else {
        return Ok(None);
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
    Ok(Some(attempt))
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
            let ev = db::audit::event(conn, &row.tenant_id, id)
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
