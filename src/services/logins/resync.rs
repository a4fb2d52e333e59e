//! `POST /v1/logins/{login_id}/resync` (docs/API.md §11): a sign-in whose phone clock
//! drifted completes with two consecutive codes, and the factor learns the offset.

use diesel_async::AsyncConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::challenge::{begin_verification, complete_login, login_attempt, signed_in};
use super::types::{AuthenticatedStatus, TokenType};
use crate::domain::ids::LoginId;
use crate::domain::totp::PERIOD_SECS;
use crate::error::ApiError;
use crate::services::resync::{self, ResyncRequest};
use crate::services::{amr, attempt, ClientMeta};
use crate::state::AppState;

/// Signed in after a resynchronisation, with the drift the factor learned.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "authenticated", "access_token": "eyJhbGciOiJFZERTQSJ9...",
    "token_type": "Bearer", "expires_in": 3600, "drift_seconds": 120}))]
pub struct Resynced {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    /// The authenticator's learned offset, in seconds (a multiple of 30).
    pub drift_seconds: i64,
}

/// `POST /v1/logins/{login_id}/resync`.
pub async fn resync(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    req: &ResyncRequest,
    meta: &ClientMeta,
) -> Result<Resynced, ApiError> {
    attempt::rate_limit(state, meta)?;
    let codes = resync::parse(req)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let (ctx, audit, factors) = begin_verification(conn, state, token, login_id, meta).await?;
        let attempt = login_attempt(&ctx, &audit);
        let found = resync::find(state, &ctx.tenant_id, &ctx.user_id, &factors, &codes, now)?;
        // The replay guard and the login's completion are the verify statement's.
        let done = match found {
            Some(m) => complete_login(conn, state, &ctx, &audit, m, now).await?,
            None => false,
        };
        let Some(m) = found.filter(|_| done) else {
            attempt::record_wrong(
                conn,
                state,
                &attempt,
                crate::domain::audit::AuditType::TotpVerifyFailed,
                now,
            )
            .await?;
            return Ok(Err(ApiError::InvalidCode));
        };
        let minted = signed_in(state, &ctx, amr::TOTP, now)?;
        Ok(Ok(Resynced {
            status: AuthenticatedStatus::Authenticated,
            access_token: minted.token,
            token_type: TokenType::Bearer,
            expires_in: minted.expires_in,
            drift_seconds: i64::from(m.drift) * PERIOD_SECS as i64,
        }))
    })
    .await?
}
