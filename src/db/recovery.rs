//! `recovery_codes`: keyed hashes of a factor's single-use recovery codes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::recovery_codes;
use crate::domain::ids::{FactorId, TenantId};

#[diesel::dsl::auto_type]
fn of_factor<'a>(tenant_id: &'a TenantId, factor_id: FactorId) -> _ {
    recovery_codes::tenant_id
        .eq(tenant_id)
        .and(recovery_codes::factor_id.eq(factor_id))
}

/// Replaces every code of the factor with `hashes` (the old ones stop working).
pub async fn replace(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
    hashes: &[Vec<u8>],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(of_factor(tenant_id, factor_id)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|h| {
            (
                recovery_codes::tenant_id.eq(tenant_id),
                recovery_codes::factor_id.eq(factor_id),
                recovery_codes::code_hash.eq(h),
                recovery_codes::created_at.eq(now),
            )
        })
        .collect();
    diesel::insert_into(recovery_codes::table)
        .values(rows)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The hashes of the factor's unused codes (compared in constant time by the caller).
pub async fn unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
) -> QueryResult<Vec<Vec<u8>>> {
    recovery_codes::table
        .filter(of_factor(tenant_id, factor_id))
        .filter(recovery_codes::used_at.is_null())
        .select(recovery_codes::code_hash)
        .load(conn)
        .await
}

/// Uses the code up, atomically: false if it was already used (a concurrent request won).
pub async fn use_code(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        recovery_codes::table
            .find((tenant_id, factor_id, hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

pub async fn count_unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
) -> QueryResult<i64> {
    recovery_codes::table
        .filter(of_factor(tenant_id, factor_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
        .await
}
