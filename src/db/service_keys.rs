//! `service_keys`: credentials of trusted backends, stored as keyed hashes.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Binary, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(Debug, Clone, QueryableByName)]
pub struct ServiceKeyRow {
    #[diesel(sql_type = SqlUuid)]
    pub key_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub tenant_scope: Option<Vec<String>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "key_id, name, tenant_scope, created_at, revoked_at";

pub async fn insert(
    conn: &mut AsyncPgConnection,
    key_id: Uuid,
    name: &str,
    key_hash: &[u8],
    scope: Option<&[String]>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO service_keys (key_id, name, key_hash, tenant_scope, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<SqlUuid, _>(key_id)
    .bind::<Text, _>(name)
    .bind::<Binary, _>(key_hash)
    .bind::<Nullable<Array<Text>>, _>(scope)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The live (unrevoked) key with this hash.
pub async fn find_live(
    conn: &mut AsyncPgConnection,
    key_hash: &[u8],
) -> diesel::QueryResult<Option<ServiceKeyRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM service_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind::<Binary, _>(key_hash)
    .get_result(conn)
    .await
    .optional()
}

pub async fn list(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Vec<ServiceKeyRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM service_keys ORDER BY created_at, key_id"
    ))
    .load(conn)
    .await
}

/// Revokes a key; false if there is no such live key.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    key_id: Uuid,
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    diesel::sql_query(
        "UPDATE service_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(key_id)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|n| n == 1)
}
