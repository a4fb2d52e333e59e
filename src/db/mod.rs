//! Persistence: the pool, database creation and migrations, the typed schema, and one module
//! per table's queries. Queries are Diesel DSL over `schema.rs` (checked by the compiler,
//! prepared once per connection); repository functions take a `&mut AsyncPgConnection` so
//! the caller (a service) owns the transaction, return Diesel's errors, and never decide
//! policy.

pub mod audit;
pub mod devices;
pub mod factors;
pub mod functions;
pub mod grace;
pub mod housekeeping;
pub mod logins;
pub mod recovery;
pub mod schema;
pub mod service_keys;
pub mod setup;
pub mod tenants;
pub mod types;
pub mod users;
pub mod webauthn;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::expression::{AsExpression, SqlLiteral, TypedExpressionType, UncheckedBind};
use diesel::sql_types::{Bool, SqlType, Timestamptz};
use diesel::{ConnectionError, OptionalExtension, QueryResult};
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::FutureExt;

pub use diesel_async::AsyncPgConnection as PgConn;
pub use setup::{create_database, migrate, split_database_url, MIGRATIONS};

/// The connection pool. Dereferences to deadpool's pool; its `get` hands out [`Conn`].
#[derive(Clone)]
pub struct Pool(DeadPool<AsyncPgConnection>);

impl Pool {
    pub async fn get(&self) -> Result<Conn, diesel_async::pooled_connection::deadpool::PoolError> {
        self.0.get().await.map(|c| Conn(Some(c)))
    }
}

impl std::ops::Deref for Pool {
    type Target = DeadPool<AsyncPgConnection>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

type Object = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

/// A pooled connection. Dropped mid-transaction (its request missed the deadline and was
/// abandoned) or closed, it is detached and closed at once: back in the pool it would keep
/// its Postgres transaction, and the row locks it holds or waits for, until its next use.
pub struct Conn(Option<Object>);

impl Conn {
    /// Takes the connection out of the pool for good (it closes when dropped).
    pub fn detach(mut self) -> Option<AsyncPgConnection> {
        self.0.take().map(deadpool::managed::Object::take)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        use diesel_async::pooled_connection::PoolableConnection;
        if let Some(mut c) = self.0.take() {
            if c.is_broken() {
                drop(deadpool::managed::Object::take(c));
            }
        }
    }
}

impl std::ops::Deref for Conn {
    type Target = AsyncPgConnection;
    fn deref(&self) -> &AsyncPgConnection {
        match &self.0 {
            Some(c) => c,
            // Only `drop` and `detach` empty it, and both consume the `Conn`.
            None => unreachable!("a Conn is used after it was dropped"),
        }
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        match &mut self.0 {
            Some(c) => c,
            None => unreachable!("a Conn is used after it was dropped"),
        }
    }
}

/// Limits Postgres enforces on each pooled session.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub statement_timeout_ms: u32,
    /// Short, so requests queued on one user's row lock give their connection back soon.
    pub lock_timeout_ms: u32,
    /// Ends a session left idle in a transaction (its instance frozen) and its locks.
    pub idle_in_transaction_timeout_ms: u32,
}

impl SessionLimits {
    /// The settings, and (Postgres 14+) a check every second that the client is still
    /// there, so a statement whose request was abandoned (its connection closed) stops —
    /// lock waits included — instead of running on to its own timeout.
    fn sql(&self) -> String {
        format!(
            "SET statement_timeout = {}; SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}; \
             SELECT set_config('client_connection_check_interval', '1000', false) \
             WHERE current_setting('server_version_num')::int >= 140000",
            self.statement_timeout_ms, self.lock_timeout_ms, self.idle_in_transaction_timeout_ms
        )
    }
}

/// `url` with a connect timeout and TCP keepalives (tokio-postgres reads them from the
/// URL), unless it sets them itself: a dead or unreachable host then fails in seconds
/// instead of the OS's minutes.
pub fn connection_url(url: &str, connect_timeout_secs: u32) -> String {
    let present = |key: &str| {
        url.split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.split('=').next() == Some(key)))
    };
    let wanted = [
        ("connect_timeout", connect_timeout_secs.to_string()),
        ("keepalives", "1".to_owned()),
        ("keepalives_idle", "30".to_owned()),
        ("keepalives_interval", "10".to_owned()),
        ("keepalives_retries", "3".to_owned()),
    ];
    let mut out = url.to_owned();
    for (key, value) in wanted {
        if !present(key) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{key}={value}"));
        }
    }
    out
}

/// Builds the pool. Every new connection gets the session limits, so a stuck query or
/// lock wait cannot hold a connection (and a request) for long.
pub fn pool(url: &str, size: u32, limits: SessionLimits) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A closed connection surfaces as an error on use (→ 503) and is then dropped; this
    // saves a round trip per checkout compared with `Verified`.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&limits.sql())
                .await
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
            {
                use diesel_async::pooled_connection::PoolableConnection;
                if conn.is_broken() {
                    return Err(ConnectionError::BadConnection(
                        "the connection failed while it was being set up".to_owned(),
                    ));
                }
            }
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    DeadPool::builder(manager)
        .max_size(size as usize)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map(Pool)
        .context("building the database pool")
}

/// `host:port` of a `postgres://` URL, for operators' messages (never the credentials).
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = if hostport.is_empty() {
        "localhost"
    } else {
        hostport
    };
    let has_port = match host.rsplit_once(':') {
        Some((h, p)) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':'),
        None => false,
    };
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// A keyset page's cursor condition `(columns) < (at, id)`: a row comparison, which the DSL
/// has no word for. It is one index condition on those columns (`columns` names them, the
/// time first; a literal, as it is pasted into the SQL). Its type is spelled out so that a
/// boxed listing can filter on it.
pub fn row_before<ST, V>(columns: &'static str, at: DateTime<Utc>, id: V) -> RowBefore<ST, V>
where
    ST: SqlType + TypedExpressionType,
    V: AsExpression<ST>,
{
    sql::<Bool>(&format!("{columns} < ("))
        .bind::<Timestamptz, _>(at)
        .sql(", ")
        .bind::<ST, _>(id)
        .sql(")")
}

/// What [`row_before`] builds.
pub type RowBefore<ST, V> = SqlLiteral<
    Bool,
    UncheckedBind<
        SqlLiteral<Bool, UncheckedBind<SqlLiteral<Bool>, Bound<Timestamptz, DateTime<Utc>>>>,
        Bound<ST, V>,
    >,
>;
type Bound<ST, V> = <V as AsExpression<ST>>::Expression;

/// Whether a locking read of one row by its key found the row, which then stays locked until
/// the transaction ends. `U` is the one column the read selects.
pub async fn locked<'q, U, Q>(conn: &mut AsyncPgConnection, read: Q) -> QueryResult<bool>
where
    U: Send + 'static,
    Q: diesel_async::methods::LoadQuery<'q, AsyncPgConnection, U> + 'q,
{
    read.get_result::<U>(conn)
        .await
        .optional()
        .map(|r| r.is_some())
}

/// What a listing's transaction sets first. Listings are keyset pages (`ORDER BY` the key of
/// an index, `LIMIT n`): an index serves each in order and a page costs a page. Without
/// statistics a generic plan may still guess that a filter matches two rows and prefer a
/// bitmap scan plus a sort, which on a common value sorts the whole trail; this takes those
/// two plans off the table for the listing's transaction only.
pub const ORDERED_SCANS: &str = "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off";

pub async fn prefer_ordered_scans(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    conn.batch_execute(ORDERED_SCANS).await
}

/// Opens a transaction whose `BEGIN` goes out together with its first statement: one round
/// trip instead of two on the verify path. `first` gets the connection shared and builds the
/// statement's future; `join!` polls the `BEGIN` first, and tokio-postgres sends each request
/// when its future is first polled, in that order (a statement not yet prepared sends its
/// Parse after the `BEGIN` too). The transaction counts as open before anything is sent, so a
/// future dropped midway leaves a connection the pool closes (see [`Conn`]). On an error the
/// caller still ends the transaction with [`end_transaction`], as after any statement.
pub async fn begin_with<'c, R, F>(conn: &'c mut AsyncPgConnection, first: F) -> QueryResult<R>
where
    F: FnOnce(&'c AsyncPgConnection) -> futures_util::future::BoxFuture<'c, QueryResult<R>>,
{
    use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    match AnsiTransactionManager::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(v) if v.transaction_depth().is_none() => {
            v.change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
        }
        TransactionManagerStatus::Valid(_) => {
            return Err(diesel::result::Error::AlreadyInTransaction)
        }
        TransactionManagerStatus::InError => {
            return Err(diesel::result::Error::BrokenTransactionManager)
        }
    }
    let shared: &'c AsyncPgConnection = conn;
    let mut begin_conn = shared;
    let (begun, first) = futures_util::join!(begin_conn.batch_execute("BEGIN"), first(shared));
    begun?;
    first
}

/// Two statements of one transaction in one round trip once both are prepared on the
/// connection: both futures are polled together, and tokio-postgres sends each request when
/// its future is first polled. A statement not yet prepared holds diesel-async's statement
/// cache until its Parse is answered, so on a new connection the pair takes more round
/// trips; nothing here relies on their order, so only for statements that do not depend on
/// each other. After a failed statement the other is refused ("current transaction is
/// aborted", matched by its message: Diesel's error does not carry the SQLSTATE); the error
/// returned is the one that caused it.
pub async fn pipelined<A, B>(
    a: impl std::future::Future<Output = QueryResult<A>>,
    b: impl std::future::Future<Output = QueryResult<B>>,
) -> QueryResult<(A, B)> {
    match futures_util::join!(a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), Err(cause)) if in_aborted_transaction(&e) => Err(cause),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Whether `e` is Postgres refusing a statement after an earlier one failed (SQLSTATE 25P02).
fn in_aborted_transaction(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if info.message().starts_with("current transaction is aborted"))
}

/// Whether this connection is inside a transaction.
fn in_transaction(conn: &mut AsyncPgConnection) -> bool {
    use diesel::connection::TransactionManagerStatus;
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    match AnsiTransactionManager::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(v) => v.transaction_depth().is_some(),
        TransactionManagerStatus::InError => true,
    }
}

/// Ends a transaction opened by [`begin_with`] as `AsyncConnection::transaction` ends its own:
/// `Ok` commits (a failed commit is the result), `Err` rolls back and is returned.
pub async fn end_transaction<T, E>(
    conn: &mut AsyncPgConnection,
    result: Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    if !in_transaction(conn) {
        return result;
    }
    match result {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(e) => match AnsiTransactionManager::rollback_transaction(conn).await {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Whether Postgres answers on this connection (for `/readyz`).
pub async fn ping(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    conn.batch_execute("SELECT 1").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_urls_get_a_connect_timeout_and_keepalives_unless_set() {
        assert_eq!(
            connection_url("postgres://h/db", 5),
            "postgres://h/db?connect_timeout=5&keepalives=1&keepalives_idle=30&keepalives_interval=10&keepalives_retries=3"
        );
        assert_eq!(
            connection_url("postgres://h/db?sslmode=disable&connect_timeout=2&keepalives_idle=60", 5),
            "postgres://h/db?sslmode=disable&connect_timeout=2&keepalives_idle=60&keepalives=1&keepalives_interval=10&keepalives_retries=3"
        );
    }

    #[test]
    fn session_limits_set_all_three_timeouts() {
        let sql = SessionLimits {
            statement_timeout_ms: 5000,
            lock_timeout_ms: 2000,
            idle_in_transaction_timeout_ms: 10000,
        }
        .sql();
        assert!(sql.starts_with("SET statement_timeout = 5000; SET lock_timeout = 2000; SET idle_in_transaction_session_timeout = 10000; "), "{sql}");
        assert!(sql.contains("client_connection_check_interval"));
    }

    #[test]
    fn host_port_names_the_server_without_credentials() {
        assert_eq!(
            host_port("postgres://u:secret@db.example:6543/mfa?x=1"),
            "db.example:6543"
        );
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1/mfa"),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("postgres://[::1]:5433/mfa"), "[::1]:5433");
    }
}
