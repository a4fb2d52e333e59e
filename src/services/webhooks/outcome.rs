//! What an attempt comes to: the delivery's next state (succeeded, retried on the schedule,
//! failed), the webhook's failing run, and disabling it on `410` or after 3 days of failures
//! (`webhook.disabled`), in one transaction that drops the late outcome of a superseded claim.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::attempt::Attempt;
use crate::db::{self, audit::AuditCtx, webhooks::DeliveryRow};
use crate::domain::audit::AuditType;
use crate::domain::ids::{DeliveryState, WebhookStatus};
use crate::domain::webhooks::{next_retry, FAILING_DISABLES_AFTER};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    rand::fill(&mut b);
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0
}

/// Records an attempt (and disables the webhook on `410` or after 3 days of failures).
#[tracing::instrument(skip_all)]
pub(super) async fn record(
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
    let recorded = in_transaction(state, async |conn| {
        if !db::webhooks::record(conn, &row.tenant_id, row.delivery_id, claim_id, &outcome).await? {
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
