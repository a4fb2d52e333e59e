//! `users`: the users this service has seen, with the lockout counters of their second
//! factor. The lockout transitions (domain::lockout) are single statements so every
//! instance shares them exactly.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::lockout;

#[derive(Debug, Clone, QueryableByName)]
pub struct UserRow {
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub identity_provider: String,
    #[diesel(sql_type = Array<Text>)]
    pub roles: Vec<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_login_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "tenant_id, user_id, email, identity_provider, roles, last_login_at, locked_until";

pub struct UserUpsert<'a> {
    pub tenant_id: &'a str,
    pub user_id: &'a str,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub identity_provider: &'a str,
    pub roles: &'a [String],
}

/// Creates the user on first sight; later sign-ins refresh what the primary account
/// system says about them (e-mail, name, provider, roles).
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    u: &UserUpsert<'_>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<UserRow> {
    diesel::sql_query(format!(
        "INSERT INTO users (tenant_id, user_id, email, display_name, identity_provider, roles, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET email = EXCLUDED.email, \
           display_name = EXCLUDED.display_name, identity_provider = EXCLUDED.identity_provider, \
           roles = EXCLUDED.roles \
         RETURNING {COLUMNS}"
    ))
    .bind::<Text, _>(u.tenant_id)
    .bind::<Text, _>(u.user_id)
    .bind::<Text, _>(u.email)
    .bind::<Nullable<Text>, _>(u.display_name)
    .bind::<Text, _>(u.identity_provider)
    .bind::<Array<Text>, _>(u.roles)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
) -> diesel::QueryResult<Option<UserRow>> {
    diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2"
    ))
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Locks the user's row for the rest of the transaction, so attempts of one user are
/// evaluated one at a time across all instances; returns its lockout end.
pub async fn lock_for_attempt(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
) -> diesel::QueryResult<Option<Option<DateTime<Utc>>>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        locked_until: Option<DateTime<Utc>>,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT locked_until FROM users WHERE tenant_id = $1 AND user_id = $2 FOR NO KEY UPDATE",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.locked_until))
}

#[derive(Debug, QueryableByName)]
pub struct FailureOutcome {
    /// This failure started a lockout.
    #[diesel(sql_type = Bool)]
    pub just_locked: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
}

/// Counts one wrong code; the 5th consecutive one locks the factor for
/// `lockout::lock_duration(previous lockouts)` (the same schedule, written in SQL so the
/// count, the doubling and the lock change together).
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<FailureOutcome> {
    diesel::sql_query(
        "UPDATE users SET \
           failed_attempts = CASE WHEN failed_attempts + 1 >= $4 THEN 0 ELSE failed_attempts + 1 END, \
           lockout_count = CASE WHEN failed_attempts + 1 >= $4 THEN lockout_count + 1 ELSE lockout_count END, \
           locked_until = CASE WHEN failed_attempts + 1 >= $4 \
             THEN $3 + make_interval(secs => LEAST($5 * power(2, LEAST(lockout_count, 30)), $6)) \
             ELSE locked_until END \
         WHERE tenant_id = $1 AND user_id = $2 \
         RETURNING failed_attempts = 0 AS just_locked, locked_until",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .bind::<Timestamptz, _>(now)
    .bind::<Integer, _>(lockout::MAX_FAILURES)
    .bind::<Double, _>(lockout::BASE_LOCK_SECS as f64)
    .bind::<Double, _>(lockout::MAX_LOCK_SECS as f64)
    .get_result(conn)
    .await
}

/// A success or an admin unlock: clears the count, the doubling and any lock. Returns
/// whether the user was locked at `now`.
pub async fn reset_lockout(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<bool>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        was_locked: bool,
    }
    let row: Option<Row> = diesel::sql_query(
        "UPDATE users u SET failed_attempts = 0, lockout_count = 0, locked_until = NULL \
         FROM (SELECT locked_until FROM users WHERE tenant_id = $1 AND user_id = $2) old \
         WHERE u.tenant_id = $1 AND u.user_id = $2 \
         RETURNING COALESCE(old.locked_until > $3, false) AS was_locked",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.was_locked))
}

pub async fn touch_login(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query("UPDATE users SET last_login_at = $3 WHERE tenant_id = $1 AND user_id = $2")
        .bind::<Text, _>(tenant_id)
        .bind::<Text, _>(user_id)
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Erases the user with their factors, recovery codes and logins (cascades).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
) -> diesel::QueryResult<bool> {
    diesel::sql_query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
        .bind::<Text, _>(tenant_id)
        .bind::<Text, _>(user_id)
        .execute(conn)
        .await
        .map(|n| n > 0)
}

#[derive(Debug, QueryableByName)]
pub struct ListedUser {
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub identity_provider: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub enrolled_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_login_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
}

/// Users ordered by id after `after` (keyset); `enrolled` filters on an active factor.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    enrolled: Option<bool>,
    after: Option<&str>,
    limit: i32,
) -> diesel::QueryResult<Vec<ListedUser>> {
    diesel::sql_query(
        "SELECT u.user_id, u.email, u.identity_provider, f.activated_at AS enrolled_at, u.last_login_at, u.locked_until \
         FROM users u LEFT JOIN totp_factors f \
           ON f.tenant_id = u.tenant_id AND f.user_id = u.user_id AND f.status = 'active' \
         WHERE u.tenant_id = $1 \
           AND ($2::bool IS NULL OR (f.factor_id IS NOT NULL) = $2) \
           AND ($3::text IS NULL OR u.user_id > $3) \
         ORDER BY u.user_id LIMIT $4",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Nullable<Bool>, _>(enrolled)
    .bind::<Nullable<Text>, _>(after)
    .bind::<Integer, _>(limit)
    .load(conn)
    .await
}
