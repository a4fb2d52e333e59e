//! `recovery_codes`: keyed hashes of a factor's single-use recovery codes.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Binary, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Replaces every code of the factor with `hashes` (the old ones stop working).
pub async fn replace(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
    hashes: &[Vec<u8>],
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query("DELETE FROM recovery_codes WHERE tenant_id = $1 AND factor_id = $2")
        .bind::<Text, _>(tenant_id)
        .bind::<SqlUuid, _>(factor_id)
        .execute(conn)
        .await?;
    diesel::sql_query(
        "INSERT INTO recovery_codes (tenant_id, factor_id, code_hash, created_at) \
         SELECT $1, $2, h, $4 FROM unnest($3::bytea[]) AS h",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<Array<Binary>, _>(hashes)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The hashes of the factor's unused codes (compared in constant time by the caller).
pub async fn unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
) -> diesel::QueryResult<Vec<Vec<u8>>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Binary)]
        code_hash: Vec<u8>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT code_hash FROM recovery_codes WHERE tenant_id = $1 AND factor_id = $2 AND used_at IS NULL",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.code_hash).collect())
}

/// Uses the code up, atomically: false if it was already used (a concurrent request won).
pub async fn use_code(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
    hash: &[u8],
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    diesel::sql_query(
        "UPDATE recovery_codes SET used_at = $4 \
         WHERE tenant_id = $1 AND factor_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<Binary, _>(hash)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|n| n == 1)
}

pub async fn count_unused(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
) -> diesel::QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let r: Row = diesel::sql_query(
        "SELECT count(*) AS n FROM recovery_codes WHERE tenant_id = $1 AND factor_id = $2 AND used_at IS NULL",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .get_result(conn)
    .await?;
    Ok(r.n)
}
