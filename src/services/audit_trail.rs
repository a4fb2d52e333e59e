//! The tenant's audit trail (docs/API.md §5): `GET /v1/tenants/{tenant_id}/audit-events`,
//! newest first, with its cursor.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::paging::{bad_cursor, cut_page, decode_time_cursor, encode_time_cursor, page_args};
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::ids::{Surface, TenantId, UserId};
use crate::error::ApiError;
use crate::services::in_transaction;
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
    let (at, id) = decode_time_cursor(c)?;
    Ok((at, id.parse().map_err(|_| bad_cursor())?))
}

/// `GET /v1/tenants/{tenant_id}/audit-events`, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_events(
    state: &AppState,
    tenant_id: &TenantId,
    q: AuditQuery,
) -> Result<AuditPage, ApiError> {
    let (limit, before) = page_args(q.limit, q.cursor.as_deref(), decode_audit_cursor)?;
    let filter = db::audit::EventFilter {
        kind: q.kind,
        user_id: q.user_id.as_ref(),
        since: q.since,
        before,
    };
    let rows = in_transaction(state, async |conn| {
        db::prefer_ordered_scans(conn).await?;
        Ok(db::audit::list(conn, tenant_id, &filter, limit + 1).await?)
    })
    .await?;
    let (rows, next_cursor) = cut_page(rows, limit, |r| encode_time_cursor(r.at, r.id));
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
    use chrono::TimeZone;

    #[test]
    fn audit_cursors() {
        let at = Utc.timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = encode_time_cursor(at, 42);
        assert_eq!(decode_audit_cursor(&c).unwrap(), (at, 42));
        assert!(decode_audit_cursor(&encode_time_cursor(at, "y")).is_err());
    }
}
