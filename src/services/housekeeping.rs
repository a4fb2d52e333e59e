//! Housekeeping, run by every instance: deletes expired sign-ins, dead remembered browsers,
//! expired enrollments and their secrets, and finished webhook deliveries once they are older
//! than `MFA_RETENTION_DAYS` (`db::housekeeping::Sweepable` says which rows each is). Without it those tables only grow: every sign-in leaves a login.
//! The audit trail is the record and is never deleted here.
//!
//! A sweep walks each table once, [`WINDOW_PAGES`] pages per statement (one short
//! transaction each), so it never holds many locks or a long snapshot; rows a request holds
//! are skipped and go in a later sweep. [`spawn`] sweeps once a few minutes after start (spread
//! per instance) and then every [`EVERY`].

use std::time::Duration;

use crate::db::housekeeping::{self, Sweepable, WINDOW_PAGES};
use crate::error::ApiError;
use crate::services::background::Background;
use crate::state::AppState;

/// Time between two sweeps of one instance.
pub const EVERY: Duration = Duration::from_secs(10 * 60);

/// Rows one sweep deleted, per kind, in `Sweepable::ALL` order.
pub type Swept = Vec<(Sweepable, u64)>;

/// One sweep: every kind, its table a window of pages at a time. Tests call it directly with
/// the injected clock. Does nothing when retention is 0 (keep forever). A kind whose
/// statement fails is logged and left for the next sweep; the others are still swept.
#[tracing::instrument(skip_all)]
pub async fn sweep(state: &AppState) -> Result<Swept, ApiError> {
    sweep_until(state, || false).await
}

/// [`sweep`], giving up between two statements once `stopping()` says so (a shutdown waits
/// for one statement, not for a sweep of a backlog).
async fn sweep_until(state: &AppState, stopping: impl Fn() -> bool) -> Result<Swept, ApiError> {
    let days = state.settings.retention_days;
    if days == 0 {
        return Ok(Vec::new());
    }
    let cutoff = state.now() - chrono::Duration::days(i64::from(days));
    let mut conn = state.pool.get().await?;
    let mut swept = Vec::with_capacity(Sweepable::ALL.len());
    for what in Sweepable::ALL {
        if stopping() {
            break;
        }
        match sweep_table(&mut conn, what, cutoff, &stopping).await {
            Ok(n) => {
                state
                    .metrics
                    .housekeeping_deleted
                    .with_label_values(&[what.table()])
                    .inc_by(n);
                swept.push((what, n));
            }
            Err(e) => {
                tracing::warn!(error = %e, table = what.table(), "housekeeping could not sweep a table; the next sweep retries")
            }
        }
    }
    Ok(swept)
}

/// One pass over `what`'s table, window after window; returns the rows deleted.
async fn sweep_table(
    conn: &mut diesel_async::AsyncPgConnection,
    what: Sweepable,
    cutoff: chrono::DateTime<chrono::Utc>,
    stopping: &impl Fn() -> bool,
) -> diesel::QueryResult<u64> {
    let pages = housekeeping::pages(conn, what).await?;
    let mut deleted = 0u64;
    let mut first = 0;
    while first < pages && !stopping() {
        deleted += housekeeping::delete_window(conn, what, cutoff, first).await? as u64;
        first += WINDOW_PAGES;
    }
    Ok(deleted)
}

/// Starts this instance's housekeeping (nothing when `MFA_HOUSEKEEPING` is false or
/// `MFA_RETENTION_DAYS` is 0). The first sweep comes after a random 1-5 minutes, so instances
/// started together spread out and a start-up is not slowed by it. Stopping it lets the
/// statement in flight finish.
pub fn spawn(state: actix_web::web::Data<AppState>) -> Option<Background> {
    if !state.settings.housekeeping || state.settings.retention_days == 0 {
        return None;
    }
    let first = Duration::from_secs(rand::random_range(60..=300));
    Some(Background::spawn(move |mut stopped| async move {
        let mut wait = first;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            let stopping = || *stopped.borrow();
            match sweep_until(&state, stopping).await {
                Ok(swept) if swept.iter().any(|(_, n)| *n > 0) => {
                    let deleted: Vec<String> = swept
                        .iter()
                        .map(|(what, n)| format!("{}={n}", what.table()))
                        .collect();
                    tracing::info!(deleted = %deleted.join(" "), "housekeeping deleted rows past retention");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a housekeeping sweep failed; the next one retries")
                }
            }
            wait = EVERY;
        }
    }))
}
