//! `tenants`: one row per tenant with its 2FA policy and the policy's version (the ETag).
//! A sign-in only reads this row: it is created on first sight and written only by a policy
//! change, so sign-ins of one tenant never queue on it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::tenants;
use crate::domain::ids::TenantId;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct TenantRow {
    pub tenant_id: TenantId,
    pub enforce_mfa: bool,
    pub surfaces: Vec<String>,
    pub exempt_identity_providers: Vec<String>,
    pub issuer: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<String>,
    pub max_factors_per_user: i32,
    pub remember_device_days: i32,
    pub enrollment_grace_days: i32,
    pub allowed_factor_types: Vec<String>,
    pub webauthn_user_verification: String,
}

/// The tenant with the default policy, created on first sight. A plain read when it exists
/// (every sign-in but the tenant's first); on a miss an insert that yields to a concurrent
/// creator, then the read again.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    now: DateTime<Utc>,
) -> QueryResult<TenantRow> {
    if let Some(t) = get(conn, tenant_id).await? {
        return Ok(t);
    }
    diesel::insert_into(tenants::table)
        .values((
            tenants::tenant_id.eq(tenant_id),
            tenants::created_at.eq(now),
            tenants::updated_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    get(conn, tenant_id).await?.ok_or(diesel::NotFound)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
) -> QueryResult<Option<TenantRow>> {
    tenants::table
        .find(tenant_id)
        .select(TenantRow::as_select())
        .get_result(conn)
        .await
        .optional()
}

#[derive(AsChangeset)]
#[diesel(table_name = tenants)]
pub struct PolicyUpdate<'a> {
    pub enforce_mfa: bool,
    pub surfaces: &'a [String],
    pub exempt_identity_providers: &'a [String],
    pub issuer: &'a str,
    pub updated_by: &'a str,
    pub max_factors_per_user: i32,
    pub remember_device_days: i32,
    pub enrollment_grace_days: i32,
    pub allowed_factor_types: &'a [String],
    pub webauthn_user_verification: &'a str,
}

/// Writes the policy only if it is still at `expected_version` (optimistic concurrency in
/// one statement); `None` when it moved on.
pub async fn update_policy(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    expected_version: i64,
    p: &PolicyUpdate<'_>,
    now: DateTime<Utc>,
) -> QueryResult<Option<TenantRow>> {
    diesel::update(
        tenants::table
            .find(tenant_id)
            .filter(tenants::version.eq(expected_version)),
    )
    .set((
        p,
        tenants::updated_at.eq(now),
        tenants::version.eq(tenants::version + 1),
    ))
    .returning(TenantRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}
