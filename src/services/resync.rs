//! Clock-drift resynchronisation (docs/API.md §11): two codes of consecutive steps teach a
//! factor its phone's offset. Anything but the rule is one wrong code (lockout, per-IP
//! limit); the sign-in flavour lives in `logins::resync`, this file holds the rule's use and
//! the signed-in user's flavour.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use utoipa::ToSchema;

use super::attempt::{self, Attempt, Matched};
use super::factors::FactorView;
use super::{audit_ctx, surface_of, ClientMeta};
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, factors::FactorSecret};
use crate::domain::audit::AuditType;
use crate::domain::drift;
use crate::domain::ids::{FactorId, FactorStatus, TenantId, UserId};
use crate::domain::totp::{time_step, TotpCode};
use crate::error::ApiError;
use crate::state::AppState;

/// Two codes shown one after the other by the same authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code1": "123456", "code2": "654321"}))]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// A code, exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code1: String,
    /// The code the app shows next, exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code2: String,
}

/// Both codes of a resync request, parsed (not six digits: `400 invalid_request`, not counted).
pub fn parse(req: &ResyncRequest) -> Result<(TotpCode, TotpCode), ApiError> {
    Ok((
        attempt::parse_totp("code1", &req.code1)?,
        attempt::parse_totp("code2", &req.code2)?,
    ))
}

/// The first of `factors` for which the two codes satisfy the resync rule: its new last
/// used step (`s+1`) and drift.
pub fn find(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    factors: &[FactorSecret],
    codes: &(TotpCode, TotpCode),
    now: DateTime<Utc>,
) -> Result<Option<Matched>, ApiError> {
    let s = &state.settings;
    for f in factors {
        let secret = super::open_secret(
            state,
            tenant_id,
            user_id,
            f.factor_id,
            &f.key_id,
            &f.nonce,
            &f.ciphertext,
        )?;
        if let Some(step) = drift::resync(
            &secret,
            &codes.0,
            &codes.1,
            now.timestamp(),
            s.totp_resync_window,
            s.totp_max_drift,
            f.clock.last_used_step,
        ) {
            let drift = i32::try_from(step - time_step(now.timestamp())).unwrap_or(0);
            return Ok(Some(Matched {
                factor_id: f.factor_id,
                step,
                drift,
            }));
        }
    }
    Ok(None)
}

/// Resynchronises one of `factors` and records it; a failure (or a lost race) is one wrong
/// code, `Ok(Err(invalid_code))` (commit, then fail).
pub async fn apply(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    user_id: &UserId,
    factors: &[FactorSecret],
    codes: &(TotpCode, TotpCode),
    now: DateTime<Utc>,
) -> Result<Result<Matched, ApiError>, ApiError> {
    let tenant_id = &attempt.audit.tenant_id;
    let found = find(state, tenant_id, user_id, factors, codes, now)?;
    let consumed = match found {
        Some(m) => {
            db::factors::consume_step(conn, tenant_id, user_id, m.factor_id, m.step, m.drift, now)
                .await?
        }
        None => false,
    };
    match found.filter(|_| consumed) {
        Some(m) => Ok(Ok(m)),
        None => {
            attempt::record_wrong(conn, state, attempt, AuditType::TotpVerifyFailed, now).await?;
            Ok(Err(ApiError::InvalidCode))
        }
    }
}

/// `POST /v1/me/factors/{factor_id}/resync`: no step-up (the two codes are the proof).
pub async fn for_me(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    req: &ResyncRequest,
    meta: &ClientMeta,
) -> Result<FactorView, ApiError> {
    let factor_id = FactorId::parse(factor).ok_or(ApiError::NotFound)?;
    attempt::rate_limit(state, meta)?;
    let codes = parse(req)?;
    let now = state.now();
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let audit = audit_ctx(
        tenant_id,
        Some(user_id),
        Some(user_id.as_str()),
        Some(surface_of(state, claims)),
        meta,
    );
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let lockout = db::users::lock_for_attempt(conn, tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let Some(f) = db::factors::by_id(conn, tenant_id, user_id, factor_id).await? else {
            return Err(ApiError::NotFound);
        };
        if f.status != FactorStatus::Active {
            return Err(ApiError::InvalidState(
                "Only an active factor can be resynchronised: confirm it first.",
            ));
        }
        attempt::ensure_not_locked(state, &lockout, now)?;
        let attempt = Attempt {
            audit: &audit,
            lockout,
            login: None,
        };
        let m = match apply(conn, state, &attempt, user_id, &[f.secret()], &codes, now).await? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        db::users::reset_lockout(conn, tenant_id, user_id, now).await?;
        state.metrics.outcome(crate::metrics::Outcome::Success);
        state.metrics.drift(m.drift);
        let row = db::factors::by_id(conn, tenant_id, user_id, factor_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Ok(row.into()))
    })
    .await?
}
