//! `logins`: sign-ins in progress. The mfa token is found by its keyed hash (unique index);
//! it dies when its hash is cleared (success, too many wrong codes).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Binary, Integer, Nullable, Text, Timestamptz, Untyped, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::factors::FactorSecret;
use super::schema::logins;
use crate::domain::drift::FactorClock;
use crate::domain::ids::{
    FactorId, FactorStatus, IdentityProvider, LoginId, LoginStatus, Surface, TenantId, UserId,
};
use crate::domain::lockout;

/// `None` binds NULL rather than `DEFAULT`, so the statement's text never varies and Diesel
/// keeps it prepared (with `DEFAULT` it re-plans every insert).
#[derive(Insertable)]
#[diesel(table_name = logins, treat_none_as_default_value = false)]
pub struct NewLogin<'a> {
    pub tenant_id: &'a TenantId,
    pub login_id: LoginId,
    pub user_id: &'a UserId,
    pub surface: Surface,
    pub status: LoginStatus,
    pub token_hash: Option<&'a [u8]>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when the login ends at once (no second factor needed).
    pub completed_at: Option<DateTime<Utc>>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Takes the connection shared, so that it can be pipelined with another statement.
pub async fn insert(mut conn: &AsyncPgConnection, l: &NewLogin<'_>) -> QueryResult<()> {
    diesel::insert_into(logins::table)
        .values(l)
        .execute(&mut conn)
        .await
        .map(|_| ())
}

/// A live login with its user and one of the user's factors: everything a second-factor
/// attempt needs, in one statement.
#[derive(Debug, Clone, QueryableByName)]
pub struct LoginCtx {
    #[diesel(sql_type = Text)]
    pub tenant_id: TenantId,
    #[diesel(sql_type = SqlUuid)]
    pub login_id: LoginId,
    #[diesel(sql_type = Text)]
    pub user_id: UserId,
    #[diesel(sql_type = Text)]
    pub surface: Surface,
    #[diesel(sql_type = Text)]
    pub status: LoginStatus,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub login_failures: i32,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub identity_provider: IdentityProvider,
    #[diesel(sql_type = Array<Text>)]
    pub roles: Vec<String>,
    #[diesel(sql_type = Integer)]
    pub failed_attempts: i32,
    #[diesel(sql_type = Integer)]
    pub lockout_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub factor_id: Option<FactorId>,
    #[diesel(sql_type = Nullable<Text>)]
    pub key_id: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub nonce: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Binary>)]
    pub ciphertext: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub factor_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_used_step: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub drift_steps: Option<i32>,
}

impl LoginCtx {
    /// The factor of this row, if the join found one.
    fn factor(&self) -> Option<FactorSecret> {
        let (Some(factor_id), Some(key_id), Some(nonce), Some(ciphertext)) =
            (self.factor_id, &self.key_id, &self.nonce, &self.ciphertext)
        else {
            return None;
        };
        Some(FactorSecret {
            factor_id,
            key_id: key_id.clone(),
            nonce: nonce.clone(),
            ciphertext: ciphertext.clone(),
            clock: FactorClock {
                last_used_step: self.last_used_step,
                drift_steps: self.drift_steps.unwrap_or(0),
            },
        })
    }

    pub fn lockout(&self) -> lockout::LockoutState {
        lockout::LockoutState {
            failed_attempts: self.failed_attempts,
            lockout_count: self.lockout_count,
            locked_until: self.locked_until,
        }
    }
}

/// The login of an mfa token with its user and the user's factors in `factor_status`, one
/// row per factor (oldest first; one row with NULL factor columns when there is none). The
/// DSL cannot lock only some tables of an outer join (`FOR … OF`), so this statement is
/// written out; it is still a prepared statement, cached per connection: its type has a
/// static query id and `LOCK` is part of the type. Every join goes through a whole unique
/// key: the token's hash, the user's primary key, `totp_factors_by_user`.
struct ByToken<'a, const LOCK: bool> {
    token_hash: &'a [u8],
    factor_status: FactorStatus,
}

impl<const LOCK: bool> QueryId for ByToken<'_, LOCK> {
    type QueryId = ByToken<'static, LOCK>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const LOCK: bool> QueryFragment<Pg> for ByToken<'_, LOCK> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT l.tenant_id, l.login_id, l.user_id, l.surface, l.status, l.expires_at, \
               l.failed_attempts AS login_failures, u.email, u.identity_provider, u.roles, \
               u.failed_attempts, u.lockout_count, u.locked_until, \
               f.factor_id, f.key_id, f.nonce, f.ciphertext, f.expires_at AS factor_expires_at, \
               f.last_used_step, f.drift_steps \
             FROM logins l \
             JOIN users u ON u.tenant_id = l.tenant_id AND u.user_id = l.user_id \
             LEFT JOIN totp_factors f \
               ON f.tenant_id = l.tenant_id AND f.user_id = l.user_id AND f.status = ",
        );
        out.push_bind_param::<Text, _>(&self.factor_status)?;
        out.push_sql(" WHERE l.token_hash = ");
        out.push_bind_param::<Binary, _>(&self.token_hash)?;
        out.push_sql(" ORDER BY f.activated_at, f.created_at, f.factor_id");
        if LOCK {
            // The user's row first, then the login's: Postgres locks a row's tables in the
            // order of this list (its executor's behaviour, not a documented guarantee:
            // tests/api/lock_order.rs pins it). Every path that locks more than one row of a
            // user starts with the user's, so two of them cannot deadlock.
            out.push_sql(" FOR NO KEY UPDATE OF u, l");
        }
        Ok(())
    }
}

impl<const LOCK: bool> Query for ByToken<'_, LOCK> {
    type SqlType = Untyped;
}

/// Finds the login of an mfa token, with the user's factors in `factor_status` (the
/// login's columns are those of the first row; `factor_id` there is the oldest factor's).
/// With `lock`, the login and user rows stay locked until the transaction ends, so attempts
/// of one user are evaluated one at a time by every instance.
/// Takes the connection shared, so that it can go out together with the transaction's
/// `BEGIN` (`db::begin_with`).
pub async fn by_token(
    mut conn: &AsyncPgConnection,
    token_hash: &[u8],
    factor_status: FactorStatus,
    lock: bool,
) -> QueryResult<Option<(LoginCtx, Vec<FactorSecret>)>> {
    let rows: Vec<LoginCtx> = if lock {
        let q = ByToken::<true> {
            token_hash,
            factor_status,
        };
        q.load(&mut conn).await?
    } else {
        let q = ByToken::<false> {
            token_hash,
            factor_status,
        };
        q.load(&mut conn).await?
    };
    let factors = rows.iter().filter_map(LoginCtx::factor).collect();
    Ok(rows.into_iter().next().map(|ctx| (ctx, factors)))
}

#[diesel::dsl::auto_type]
fn key<'a>(tenant_id: &'a TenantId, login_id: LoginId) -> _ {
    logins::tenant_id
        .eq(tenant_id)
        .and(logins::login_id.eq(login_id))
}

/// Counts a wrong code against the login; the 5th kills its token. Returns the attempts
/// left.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    login_id: LoginId,
    failures_before: i32,
    now: DateTime<Utc>,
) -> QueryResult<i32> {
    let failures = failures_before + 1;
    let q = diesel::update(logins::table.filter(key(tenant_id, login_id)));
    if failures >= lockout::MAX_FAILURES {
        q.set((
            logins::failed_attempts.eq(failures),
            logins::token_hash.eq(None::<Vec<u8>>),
            logins::status.eq(LoginStatus::Failed),
            logins::completed_at.eq(now),
        ))
        .execute(conn)
        .await?;
    } else {
        q.set(logins::failed_attempts.eq(failures))
            .execute(conn)
            .await?;
    }
    Ok(lockout::MAX_FAILURES - failures)
}

/// Ends a login as authenticated; its token dies. Written out, as [`ByToken`] is, so that it
/// is a prepared statement cached per connection: Diesel's update DSL is never cached, and
/// every sign-in would parse and plan it again, in a round trip of its own.
struct Complete<'a> {
    tenant_id: &'a TenantId,
    login_id: LoginId,
    now: DateTime<Utc>,
}

impl QueryId for Complete<'_> {
    type QueryId = Complete<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for Complete<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE logins SET status = ");
        out.push_bind_param::<Text, _>(&LoginStatus::Authenticated)?;
        out.push_sql(", token_hash = NULL, completed_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.now)?;
        out.push_sql(" WHERE tenant_id = ");
        out.push_bind_param::<Text, _>(self.tenant_id)?;
        out.push_sql(" AND login_id = ");
        out.push_bind_param::<SqlUuid, _>(&self.login_id)?;
        Ok(())
    }
}

/// Ends the login as authenticated; its token dies. Takes the connection shared, so that it
/// can be pipelined with the login's event.
pub async fn complete(
    mut conn: &AsyncPgConnection,
    tenant_id: &TenantId,
    login_id: LoginId,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let q = Complete {
        tenant_id,
        login_id,
        now,
    };
    q.execute(&mut conn).await.map(|_| ())
}

/// Open logins of a user are erased with the user (cascade); this kills them without
/// erasing (after an admin reset, a half-finished sign-in must start over).
pub async fn kill_open(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(
        logins::table
            .filter(logins::tenant_id.eq(tenant_id))
            .filter(logins::user_id.eq(user_id))
            .filter(logins::token_hash.is_not_null()),
    )
    .set((
        logins::status.eq(LoginStatus::Failed),
        logins::token_hash.eq(None::<Vec<u8>>),
        logins::completed_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}
