//! `recovery_codes`: keyed hashes of a user's single-use recovery codes (issued with their
//! first factor, deleted with their last).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::recovery_codes;
use crate::domain::ids::{TenantId, UserId};

/// The user's codes.
#[diesel::dsl::auto_type]
fn of_user<'a>(tenant_id: &'a TenantId, user_id: &'a UserId) -> _ {
    recovery_codes::table.filter(
        recovery_codes::tenant_id
            .eq(tenant_id)
            .and(recovery_codes::user_id.eq(user_id)),
    )
}

/// The user's codes not used yet.
#[diesel::dsl::auto_type]
fn unused_of<'a>(tenant_id: &'a TenantId, user_id: &'a UserId) -> _ {
    let q: of_user<'a> = of_user(tenant_id, user_id);
    q.filter(recovery_codes::used_at.is_null())
}

/// Deletes every code of the user (their last factor went).
pub async fn delete_all(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<()> {
    diesel::delete(of_user(tenant_id, user_id))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Replaces every code of the user with `hashes` (the old ones stop working).
pub async fn replace(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    hashes: &[Vec<u8>],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    delete_all(conn, tenant_id, user_id).await?;
    let rows: Vec<_> = hashes
        .iter()
        .map(|h| {
            (
                recovery_codes::tenant_id.eq(tenant_id),
                recovery_codes::user_id.eq(user_id),
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

/// The hashes of the user's unused codes (compared in constant time by the caller).
pub async fn unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Vec<Vec<u8>>> {
    unused_of(tenant_id, user_id)
        .select(recovery_codes::code_hash)
        .load(conn)
        .await
}

/// Uses the code up, atomically: false if it was already used (a concurrent request won).
pub async fn use_code(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    hash: &[u8],
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        recovery_codes::table
            .find((tenant_id, user_id, hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// How many of the user's codes are left.
pub async fn count_unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<i64> {
    unused_of(tenant_id, user_id).count().get_result(conn).await
}
