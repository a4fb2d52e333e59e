//! `tenants`: one row per tenant with its 2FA policy and the policy's version (the ETag).

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(Debug, Clone, QueryableByName)]
pub struct TenantRow {
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = Bool)]
    pub enforce_mfa: bool,
    #[diesel(sql_type = Array<Text>)]
    pub surfaces: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub exempt_identity_providers: Vec<String>,
    #[diesel(sql_type = Text)]
    pub issuer: String,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub updated_by: Option<String>,
}

const COLUMNS: &str = "tenant_id, enforce_mfa, surfaces, exempt_identity_providers, issuer, version, updated_at, updated_by";

/// Creates the tenant with the default policy on first sight and returns it.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<TenantRow> {
    // The no-op update makes RETURNING yield the existing row too, in one statement.
    diesel::sql_query(format!(
        "INSERT INTO tenants (tenant_id, created_at, updated_at) VALUES ($1, $2, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id RETURNING {COLUMNS}"
    ))
    .bind::<Text, _>(tenant_id)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
) -> diesel::QueryResult<Option<TenantRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM tenants WHERE tenant_id = $1"
    ))
    .bind::<Text, _>(tenant_id)
    .get_result(conn)
    .await
    .optional()
}

pub struct PolicyUpdate<'a> {
    pub enforce_mfa: bool,
    pub surfaces: &'a [String],
    pub exempt_identity_providers: &'a [String],
    pub issuer: &'a str,
    pub updated_by: &'a str,
}

/// Writes the policy only if it is still at `expected_version` (optimistic concurrency in
/// one statement); `None` when it moved on.
pub async fn update_policy(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    expected_version: i64,
    p: &PolicyUpdate<'_>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<TenantRow>> {
    diesel::sql_query(format!(
        "UPDATE tenants SET enforce_mfa = $3, surfaces = $4, exempt_identity_providers = $5, issuer = $6, \
         updated_by = $7, updated_at = $8, version = version + 1 \
         WHERE tenant_id = $1 AND version = $2 RETURNING {COLUMNS}"
    ))
    .bind::<Text, _>(tenant_id)
    .bind::<BigInt, _>(expected_version)
    .bind::<Bool, _>(p.enforce_mfa)
    .bind::<Array<Text>, _>(p.surfaces)
    .bind::<Array<Text>, _>(p.exempt_identity_providers)
    .bind::<Text, _>(p.issuer)
    .bind::<Text, _>(p.updated_by)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
    .optional()
}
