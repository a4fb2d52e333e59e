//! `service_keys`: credentials of trusted backends, stored as keyed hashes. Global, not
//! tenant-owned: a key is found by its hash alone (unique index).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::service_keys;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = service_keys, check_for_backend(diesel::pg::Pg))]
pub struct ServiceKeyRow {
    pub key_id: Uuid,
    pub name: String,
    pub tenant_scope: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    key_id: Uuid,
    name: &str,
    key_hash: &[u8],
    scope: Option<&[String]>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(service_keys::table)
        .values((
            service_keys::key_id.eq(key_id),
            service_keys::name.eq(name),
            service_keys::key_hash.eq(key_hash),
            service_keys::tenant_scope.eq(scope),
            service_keys::created_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The live (unrevoked) key with this hash.
pub async fn find_live(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
) -> QueryResult<Option<ServiceKeyRow>> {
    service_keys::table
        .filter(service_keys::key_hash.eq(key_hash))
        .filter(service_keys::revoked_at.is_null())
        .select(ServiceKeyRow::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<ServiceKeyRow>> {
    service_keys::table
        .order((service_keys::created_at, service_keys::key_id))
        .select(ServiceKeyRow::as_select())
        .load(conn)
        .await
}

/// Revokes a key; false if there is no such live key.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    key_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        service_keys::table
            .find(key_id)
            .filter(service_keys::revoked_at.is_null()),
    )
    .set(service_keys::revoked_at.eq(now))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
