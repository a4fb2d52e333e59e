//! `audit_events`: append-only, written inside the transaction of the change it records.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::audit::AuditType;

/// Who and where, shared by the events of one request.
#[derive(Debug, Clone, Default)]
pub struct AuditCtx {
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub actor_id: Option<String>,
    pub surface: Option<&'static str>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    ctx: &AuditCtx,
    kind: AuditType,
    at: DateTime<Utc>,
    details: serde_json::Value,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind::<Text, _>(&ctx.tenant_id)
    .bind::<Text, _>(kind.as_str())
    .bind::<Timestamptz, _>(at)
    .bind::<Nullable<Text>, _>(ctx.user_id.as_deref())
    .bind::<Nullable<Text>, _>(ctx.actor_id.as_deref())
    .bind::<Nullable<Text>, _>(ctx.surface)
    .bind::<Nullable<Text>, _>(ctx.ip.as_deref())
    .bind::<Nullable<Text>, _>(ctx.user_agent.as_deref())
    .bind::<Jsonb, _>(details)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Debug, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub r#type: String,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub actor_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub surface: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub details: serde_json::Value,
}

#[derive(Debug, Default)]
pub struct EventFilter<'a> {
    pub kind: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    /// Keyset cursor: events strictly older than this `(at, id)`.
    pub before: Option<(DateTime<Utc>, i64)>,
}

/// Newest first; `limit` rows at most.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    f: &EventFilter<'_>,
    limit: i32,
) -> diesel::QueryResult<Vec<EventRow>> {
    diesel::sql_query(
        "SELECT id, type, at, user_id, actor_id, surface, ip, user_agent, details FROM audit_events \
         WHERE tenant_id = $1 \
           AND ($2::text IS NULL OR type = $2) \
           AND ($3::text IS NULL OR user_id = $3) \
           AND ($4::timestamptz IS NULL OR at >= $4) \
           AND ($5::timestamptz IS NULL OR (at, id) < ($5, $6)) \
         ORDER BY at DESC, id DESC LIMIT $7",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Nullable<Text>, _>(f.kind)
    .bind::<Nullable<Text>, _>(f.user_id)
    .bind::<Nullable<Timestamptz>, _>(f.since)
    .bind::<Nullable<Timestamptz>, _>(f.before.map(|b| b.0))
    .bind::<BigInt, _>(f.before.map(|b| b.1).unwrap_or(0))
    .bind::<Integer, _>(limit)
    .load(conn)
    .await
}
