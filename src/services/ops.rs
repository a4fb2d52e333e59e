//! Operations: whether this instance can serve (its database is prepared and answers).

use std::time::Duration;

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// How long `/readyz` waits for Postgres: a load balancer's probe must not hang.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/readyz`: the database was prepared at start, and a pooled connection answers a trivial
/// query within [`READY_TIMEOUT`]. Any failure is `503`: the question is only whether the
/// database can be reached now. A connection that did not answer in time is closed rather
/// than returned to the pool.
#[tracing::instrument(skip_all)]
pub async fn ready(state: &AppState) -> Result<(), ApiError> {
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "the database is being prepared".into(),
        ));
    }
    let until = tokio::time::Instant::now() + READY_TIMEOUT;
    let late =
        || ApiError::Unavailable(format!("no answer within {} ms", READY_TIMEOUT.as_millis()));
    let mut conn = tokio::time::timeout_at(until, state.pool.get())
        .await
        .map_err(|_| late())??;
    match tokio::time::timeout_at(until, db::ping(&mut conn)).await {
        Ok(r) => r.map_err(|e| ApiError::Unavailable(e.to_string())),
        Err(_) => {
            drop(conn.detach());
            Err(late())
        }
    }
}
