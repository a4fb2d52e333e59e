//! Operations: whether this instance can serve (its database answers).

use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// `/readyz`: a pooled connection that answers a trivial query. Any failure is `503`: the
/// question is only whether the database can be reached now.
pub async fn ready(state: &AppState) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    db::ping(&mut conn)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}
