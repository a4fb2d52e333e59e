//! `totp_factors`: encrypted TOTP secrets, pending until confirmed, then active. The replay
//! guard (`last_used_step`) is checked and set in one UPDATE.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Binary, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::crypto::keyring::Sealed;

#[derive(Debug, Clone, QueryableByName)]
pub struct FactorRow {
    #[diesel(sql_type = SqlUuid)]
    pub factor_id: Uuid,
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub key_id: String,
    #[diesel(sql_type = Binary)]
    pub nonce: Vec<u8>,
    #[diesel(sql_type = Binary)]
    pub ciphertext: Vec<u8>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub activated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "factor_id, tenant_id, user_id, key_id, nonce, ciphertext, expires_at, activated_at, last_used_at";

/// The user's factor in `status` ('active' or 'pending').
pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    status: &str,
) -> diesel::QueryResult<Option<FactorRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM totp_factors WHERE tenant_id = $1 AND user_id = $2 AND status = $3"
    ))
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(status)
    .get_result(conn)
    .await
    .optional()
}

/// Stores a new pending factor, discarding the previous pending one.
pub async fn replace_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    factor_id: Uuid,
    sealed: &Sealed,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "DELETE FROM totp_factors WHERE tenant_id = $1 AND user_id = $2 AND status = 'pending'",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO totp_factors (tenant_id, factor_id, user_id, status, key_id, nonce, ciphertext, created_at, expires_at) \
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(&sealed.key_id)
    .bind::<Binary, _>(&sealed.nonce)
    .bind::<Binary, _>(&sealed.ciphertext)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(expires_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Makes the pending factor the user's active one, replacing any previous active factor
/// (whose recovery codes go with it). The confirming code's step counts as used.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    factor_id: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    diesel::sql_query(
        "DELETE FROM totp_factors WHERE tenant_id = $1 AND user_id = $2 AND status = 'active'",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE totp_factors SET status = 'active', activated_at = $4, expires_at = NULL, \
           last_used_step = $5, last_used_at = $4 \
         WHERE tenant_id = $1 AND user_id = $2 AND factor_id = $3 AND status = 'pending'",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(step)
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// The replay guard: records `step` as used only if it is later than the last used step.
/// False means the code (or an earlier one) was already used.
pub async fn consume_step(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    diesel::sql_query(
        "UPDATE totp_factors SET last_used_step = $3, last_used_at = $4 \
         WHERE tenant_id = $1 AND factor_id = $2 AND status = 'active' \
           AND (last_used_step IS NULL OR last_used_step < $3)",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<BigInt, _>(step)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Removes the user's active and pending factors (and, by cascade, recovery codes).
/// Returns how many active factors went.
pub async fn delete_for_user(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
) -> diesel::QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        active: i32,
    }
    let row: Row = diesel::sql_query(
        "WITH d AS (DELETE FROM totp_factors WHERE tenant_id = $1 AND user_id = $2 RETURNING status) \
         SELECT count(*) FILTER (WHERE status = 'active')::int AS active FROM d",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await?;
    Ok(usize::try_from(row.active).unwrap_or(0))
}

/// A batch of factors not yet under `active_key_id`, for `encryption-keys rotate`.
pub async fn not_under_key(
    conn: &mut AsyncPgConnection,
    active_key_id: &str,
    limit: i32,
) -> diesel::QueryResult<Vec<FactorRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM totp_factors WHERE key_id <> $1 ORDER BY tenant_id, factor_id LIMIT $2"
    ))
    .bind::<Text, _>(active_key_id)
    .bind::<Integer, _>(limit)
    .load(conn)
    .await
}

/// Replaces one ciphertext if it is still under `old_key_id` (a concurrent re-enrollment
/// or rotation wins; this then changes nothing).
pub async fn reseal(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    factor_id: Uuid,
    old_key_id: &str,
    sealed: &Sealed,
) -> diesel::QueryResult<bool> {
    diesel::sql_query(
        "UPDATE totp_factors SET key_id = $4, nonce = $5, ciphertext = $6 \
         WHERE tenant_id = $1 AND factor_id = $2 AND key_id = $3",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<Text, _>(old_key_id)
    .bind::<Text, _>(&sealed.key_id)
    .bind::<Binary, _>(&sealed.nonce)
    .bind::<Binary, _>(&sealed.ciphertext)
    .execute(conn)
    .await
    .map(|n| n == 1)
}
