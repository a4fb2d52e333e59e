//! `audit_events`: append-only, written inside the transaction of the change it records.
//! The listing is one prepared statement per filter combination (boxed DSL), each served in
//! order by an index: `audit_events_newest`, `audit_events_by_user`, `audit_events_by_type`.
//! Inserting an event also enqueues its webhook deliveries: the trigger
//! `audit_events_webhook_outbox` (`src/db/functions/mfa_webhook_outbox.sql`) inserts one pending
//! `webhook_deliveries` row per subscribed active webhook, in the same statement and transaction.
//! One event is read back by id (`event`) for a webhook delivery's body.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::audit_events;
use crate::domain::audit::AuditType;
use crate::domain::ids::{Surface, TenantId, UserId};

/// Who and where, shared by the events of one request.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    /// The user, admin or service key (by name) that acted.
    pub actor_id: Option<String>,
    pub surface: Option<Surface>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Takes the connection shared, so that it can be pipelined with another statement.
pub async fn insert(
    mut conn: &AsyncPgConnection,
    ctx: &AuditCtx,
    kind: AuditType,
    at: DateTime<Utc>,
    details: serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::tenant_id.eq(&ctx.tenant_id),
            audit_events::type_.eq(kind),
            audit_events::at.eq(at),
            audit_events::user_id.eq(ctx.user_id.as_ref()),
            audit_events::actor_id.eq(ctx.actor_id.as_deref()),
            audit_events::surface.eq(ctx.surface),
            audit_events::ip.eq(ctx.ip.as_deref()),
            audit_events::user_agent.eq(ctx.user_agent.as_deref()),
            audit_events::details.eq(details),
        ))
        .execute(&mut conn)
        .await
        .map(|_| ())
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(diesel::pg::Pg))]
pub struct EventRow {
    pub id: i64,
    #[diesel(column_name = type_)]
    pub kind: AuditType,
    pub at: DateTime<Utc>,
    pub user_id: Option<UserId>,
    pub actor_id: Option<String>,
    pub surface: Option<Surface>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Default)]
pub struct EventFilter<'a> {
    pub kind: Option<AuditType>,
    pub user_id: Option<&'a UserId>,
    pub since: Option<DateTime<Utc>>,
    /// Keyset cursor: events strictly older than this `(at, id)`.
    pub before: Option<(DateTime<Utc>, i64)>,
}

/// Newest first; `limit` rows at most.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    f: &EventFilter<'_>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut q = audit_events::table
        .filter(audit_events::tenant_id.eq(tenant_id))
        .select(EventRow::as_select())
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(kind) = f.kind {
        q = q.filter(audit_events::type_.eq(kind));
    }
    if let Some(user_id) = f.user_id {
        q = q.filter(audit_events::user_id.eq(user_id));
    }
    if let Some(since) = f.since {
        q = q.filter(audit_events::at.ge(since));
    }
    if let Some((at, id)) = f.before {
        // The planner does not pair the row comparison with `since` into a narrow range it
        // would rather sort (a generic plan without statistics did exactly that).
        q = q.filter(super::row_before::<BigInt, _>(
            "(audit_events.at, audit_events.id)",
            at,
            id,
        ));
    }
    q.load(conn).await
}

/// One event, by its key (the one a webhook delivery carries).
pub async fn event(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    id: i64,
) -> QueryResult<Option<EventRow>> {
    audit_events::table
        .find((tenant_id, id))
        .select(EventRow::as_select())
        .first(conn)
        .await
        .optional()
}
