//! The tenant's audit trail (docs/API.md §5): `GET /v1/tenants/{tenant_id}/audit-events`,
//! newest first, with its cursor.

use chrono::{DateTime, TimeZone, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::admin::{bad_cursor, decode_cursor, encode_cursor, page_limit};
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::ids::{Surface, TenantId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events of this type, e.g. `user.locked`.
    #[serde(rename = "type")]
    #[param(rename = "type", inline)]
    pub kind: Option<AuditType>,
    /// Only events about this user.
    pub user_id: Option<UserId>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AuditType,
    pub at: DateTime<Utc>,
    #[schema(required = true)]
    pub user_id: Option<UserId>,
    /// Who did it: the user, an admin's user id, or `service_key:<id>`.
    #[schema(required = true)]
    pub actor_id: Option<String>,
    #[schema(required = true)]
    pub surface: Option<Surface>,
    #[schema(required = true)]
    pub ip: Option<String>,
    #[schema(required = true)]
    pub user_agent: Option<String>,
    /// Never holds a secret, code or token.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

fn decode_audit_cursor(c: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let s = decode_cursor(c)?;
    let (micros, id) = s.split_once(':').ok_or_else(bad_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    let id: i64 = id.parse().map_err(|_| bad_cursor())?;
    let at = Utc
        .timestamp_micros(micros)
        .single()
        .ok_or_else(bad_cursor)?;
    Ok((at, id))
}

/// `GET /v1/tenants/{tenant_id}/audit-events`, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_events(
    state: &AppState,
    tenant_id: &TenantId,
    q: AuditQuery,
) -> Result<AuditPage, ApiError> {
    let limit = page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(decode_audit_cursor).transpose()?;
    let filter = db::audit::EventFilter {
        kind: q.kind,
        user_id: q.user_id.as_ref(),
        since: q.since,
        before,
    };
    let mut conn = state.pool.get().await?;
    let mut rows = conn
        .transaction::<_, ApiError, _>(async |conn| {
            db::prefer_ordered_scans(conn).await?;
            Ok(db::audit::list(conn, tenant_id, &filter, limit + 1).await?)
        })
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|r| encode_cursor(&format!("{}:{}", r.at.timestamp_micros(), r.id)))
        })
        .flatten();
    let items = rows
        .into_iter()
        .map(|r| AuditEvent {
            id: r.id.to_string(),
            kind: r.kind,
            at: r.at,
            user_id: r.user_id,
            actor_id: r.actor_id,
            surface: r.surface,
            ip: r.ip,
            user_agent: r.user_agent,
            details: r.details,
        })
        .collect();
    Ok(AuditPage { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_cursors() {
        let at = Utc.timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = encode_cursor(&format!("{}:{}", at.timestamp_micros(), 42));
        assert_eq!(decode_audit_cursor(&c).unwrap(), (at, 42));
        assert!(decode_audit_cursor(&encode_cursor("x:y")).is_err());
    }
}
