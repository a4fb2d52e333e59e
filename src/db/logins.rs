//! `logins`: sign-ins in progress. The mfa token is found by its keyed hash; it dies when
//! its hash is cleared (success, too many wrong codes).

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, Binary, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::audit::AuditCtx;
use crate::domain::lockout;

pub struct NewLogin<'a> {
    pub tenant_id: &'a str,
    pub login_id: Uuid,
    pub user_id: &'a str,
    pub surface: &'a str,
    pub status: &'a str,
    pub token_hash: Option<&'a [u8]>,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    l: &NewLogin<'_>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO logins (tenant_id, login_id, user_id, surface, status, token_hash, created_at, expires_at, completed_at, ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $5 = 'authenticated' THEN $7 END, $9, $10)",
    )
    .bind::<Text, _>(l.tenant_id)
    .bind::<SqlUuid, _>(l.login_id)
    .bind::<Text, _>(l.user_id)
    .bind::<Text, _>(l.surface)
    .bind::<Text, _>(l.status)
    .bind::<Nullable<Binary>, _>(l.token_hash)
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(l.expires_at)
    .bind::<Nullable<Text>, _>(l.ip)
    .bind::<Nullable<Text>, _>(l.user_agent)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A live login with its user and one of the user's factors: everything a second-factor
/// attempt needs, in one statement.
#[derive(Debug, Clone, QueryableByName)]
pub struct LoginCtx {
    #[diesel(sql_type = Text)]
    pub tenant_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub login_id: Uuid,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub surface: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub login_failures: i32,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub identity_provider: String,
    #[diesel(sql_type = Array<Text>)]
    pub roles: Vec<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub factor_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub key_id: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub nonce: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub ciphertext: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub factor_expires_at: Option<DateTime<Utc>>,
}

/// Finds the login of an mfa token, with the user's factor in `factor_status`. With
/// `lock`, the login and user rows stay locked until the transaction ends, so attempts of
/// one user are evaluated one at a time by every instance.
pub async fn by_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    factor_status: &str,
    lock: bool,
) -> diesel::QueryResult<Option<LoginCtx>> {
    let lock = if lock {
        " FOR NO KEY UPDATE OF l, u"
    } else {
        ""
    };
    diesel::sql_query(format!(
        "SELECT l.tenant_id, l.login_id, l.user_id, l.surface, l.status, l.expires_at, \
           l.failed_attempts AS login_failures, u.email, u.identity_provider, u.roles, u.locked_until, \
           f.factor_id, f.key_id, f.nonce, f.ciphertext, f.expires_at AS factor_expires_at \
         FROM logins l \
         JOIN users u ON u.tenant_id = l.tenant_id AND u.user_id = l.user_id \
         LEFT JOIN totp_factors f ON f.tenant_id = l.tenant_id AND f.user_id = l.user_id AND f.status = $2 \
         WHERE l.token_hash = $1{lock}"
    ))
    .bind::<Binary, _>(token_hash)
    .bind::<Text, _>(factor_status)
    .get_result(conn)
    .await
    .optional()
}

/// Counts a wrong code against the login; the 5th kills its token. Returns the attempts
/// left.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    login_id: Uuid,
    now: DateTime<Utc>,
) -> diesel::QueryResult<i32> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Integer)]
        failed_attempts: i32,
    }
    let r: Row = diesel::sql_query(
        "UPDATE logins SET failed_attempts = failed_attempts + 1, \
           token_hash = CASE WHEN failed_attempts + 1 >= $3 THEN NULL ELSE token_hash END, \
           status = CASE WHEN failed_attempts + 1 >= $3 THEN 'failed' ELSE status END, \
           completed_at = CASE WHEN failed_attempts + 1 >= $3 THEN $4 ELSE completed_at END \
         WHERE tenant_id = $1 AND login_id = $2 RETURNING failed_attempts",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(login_id)
    .bind::<Integer, _>(lockout::MAX_FAILURES)
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await?;
    Ok(lockout::MAX_FAILURES - r.failed_attempts)
}

/// Ends the login as authenticated; its token dies.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    login_id: Uuid,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = $3 \
         WHERE tenant_id = $1 AND login_id = $2",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<SqlUuid, _>(login_id)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The verify hot path in one statement: the replay guard on the factor, and only if it
/// passes, the login's completion, the user's lockout reset and `login.succeeded`;
/// otherwise `totp.code_reused`. Returns whether the code was accepted.
pub async fn complete_with_totp(
    conn: &mut AsyncPgConnection,
    ctx: &AuditCtx,
    login_id: Uuid,
    factor_id: Uuid,
    step: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        accepted: bool,
    }
    let r: Row = diesel::sql_query(
        "WITH f AS ( \
           UPDATE totp_factors SET last_used_step = $4, last_used_at = $5 \
           WHERE tenant_id = $1 AND factor_id = $3 AND status = 'active' \
             AND (last_used_step IS NULL OR last_used_step < $4) \
           RETURNING user_id), \
         u AS ( \
           UPDATE users SET failed_attempts = 0, lockout_count = 0, locked_until = NULL, last_login_at = $5 \
           WHERE tenant_id = $1 AND user_id IN (SELECT user_id FROM f)), \
         l AS ( \
           UPDATE logins SET status = 'authenticated', token_hash = NULL, completed_at = $5 \
           WHERE tenant_id = $1 AND login_id = $2 AND EXISTS (SELECT 1 FROM f)), \
         a AS ( \
           INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, surface, ip, user_agent, details) \
           SELECT $1, CASE WHEN EXISTS (SELECT 1 FROM f) THEN 'login.succeeded' ELSE 'totp.code_reused' END, \
             $5, $6, $6, $7, $8, $9, $10) \
         SELECT EXISTS (SELECT 1 FROM f) AS accepted",
    )
    .bind::<Text, _>(&ctx.tenant_id)
    .bind::<SqlUuid, _>(login_id)
    .bind::<SqlUuid, _>(factor_id)
    .bind::<diesel::sql_types::BigInt, _>(step)
    .bind::<Timestamptz, _>(now)
    .bind::<Nullable<Text>, _>(ctx.user_id.as_deref())
    .bind::<Nullable<Text>, _>(ctx.surface)
    .bind::<Nullable<Text>, _>(ctx.ip.as_deref())
    .bind::<Nullable<Text>, _>(ctx.user_agent.as_deref())
    .bind::<Jsonb, _>(serde_json::json!({"login_id": login_id, "method": "totp"}))
    .get_result(conn)
    .await?;
    Ok(r.accepted)
}

/// Open logins of a user are erased with the user (cascade); this kills them without
/// erasing (after an admin reset, a half-finished sign-in must start over).
pub async fn kill_open(
    conn: &mut AsyncPgConnection,
    tenant_id: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "UPDATE logins SET status = 'failed', token_hash = NULL, completed_at = $3 \
         WHERE tenant_id = $1 AND user_id = $2 AND token_hash IS NOT NULL",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(user_id)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await
    .map(|_| ())
}
