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
pub mod tenants;
pub mod types;
pub mod users;
pub mod webhooks;

use std::time::Duration;

use anyhow::Context;
use diesel::sql_types::Text;
use diesel::{ConnectionError, QueryResult, QueryableByName};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

pub use diesel_async::AsyncPgConnection as PgConn;

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

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

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
            // The verify sends its last statement with the COMMIT: prepared from the start.
            // Not fatal: readiness means Postgres answers (docs/API.md §8), and a verify on a
            // connection where this failed is refused by the function, not run unlocked
            // (its own attempt prepares the call for the next one).
            if let Err(e) = logins::prepare_completion(&mut conn).await {
                tracing::warn!(error = %e, "could not prepare the verify's completion call");
            }
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

/// Splits `postgres://…/name?opts` into the URL of the `postgres` maintenance database and
/// `name`.
pub fn split_database_url(url: &str) -> anyhow::Result<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .map(|i| i + 3)
        .context("DATABASE_URL must be a postgres:// URL")?;
    let slash = base[scheme_end..]
        .rfind('/')
        .map(|i| i + scheme_end)
        .context("DATABASE_URL names no database")?;
    let name = &base[slash + 1..];
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "DATABASE_URL: the database name must be 1-63 characters of [A-Za-z0-9_-]"
    );
    let mut admin = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        admin.push('?');
        admin.push_str(q);
    }
    Ok((admin, name.to_owned()))
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    datname: String,
}

/// Creates the database named in `url` if it does not exist (optionally as a copy of
/// `template`). Safe against a concurrent creator.
pub async fn create_database(url: &str, template: Option<&str>) -> anyhow::Result<()> {
    let (admin_url, name) = split_database_url(url)?;
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .with_context(|| format!("connecting to the postgres database to create {name}"))?;
    let found: Vec<Exists> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(&name)
            .load(&mut conn)
            .await?;
    if !found.is_empty() {
        return Ok(());
    }
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    match conn.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        // 42P04 duplicate_database: someone else created it first.
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating database {name}")),
    }
}

/// Runs the embedded migrations under an advisory lock, so instances starting together
/// migrate once. Runs on a blocking thread: the migration harness is synchronous.
pub async fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            Connection::establish(&url).context("connecting to migrate")?;
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_lock(8242026)"),
            &mut conn,
        )?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"))
            .and_then(|v: Vec<String>| Ok([v, functions::apply(&mut conn)?].concat()));
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_unlock(8242026)"),
            &mut conn,
        )?;
        applied
    })
    .await
    .context("migration task")?
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

/// Records that a transaction's COMMIT, sent together with its last statement, was answered:
/// the transaction is over (a COMMIT after a failed statement rolls back). A COMMIT that
/// failed leaves the connection in an unknown state: marked broken, the pool closes it.
pub(crate) fn transaction_ended(
    conn: &mut AsyncPgConnection,
    committed: QueryResult<()>,
) -> QueryResult<()> {
    use diesel::connection::{TransactionDepthChange, TransactionManagerStatus};
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    match (committed, &mut *status) {
        (Ok(()), TransactionManagerStatus::Valid(v)) => {
            v.change_transaction_depth(TransactionDepthChange::DecreaseDepth)
        }
        (Ok(()), TransactionManagerStatus::InError) => {
            Err(diesel::result::Error::BrokenTransactionManager)
        }
        (Err(e), _) => {
            status.set_in_error();
            Err(e)
        }
    }
}

/// How deep in transactions this connection is (`None`: in none, or its state is unknown).
pub(crate) fn transaction_depth(conn: &mut AsyncPgConnection) -> Option<u32> {
    use diesel::connection::TransactionManagerStatus;
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    match AnsiTransactionManager::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(v) => v.transaction_depth().map(|d| d.get()),
        TransactionManagerStatus::InError => None,
    }
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
/// `Ok` commits (a failed commit is the result), `Err` rolls back and is returned. A result
/// whose transaction already ended (its COMMIT went out with the last statement:
/// `logins::complete_with_totp_and_commit`) is returned as it is.
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

    #[test]
    fn splits_database_urls() {
        let (a, n) = split_database_url("postgres://postgres@127.0.0.1:5432/mspbots_mfa").unwrap();
        assert_eq!(
            (a.as_str(), n.as_str()),
            ("postgres://postgres@127.0.0.1:5432/postgres", "mspbots_mfa")
        );
        let (a, n) = split_database_url("postgres://u:p@h/db-1?sslmode=disable").unwrap();
        assert_eq!(
            (a.as_str(), n.as_str()),
            ("postgres://u:p@h/postgres?sslmode=disable", "db-1")
        );
        assert!(split_database_url("postgres://h/").is_err());
        assert!(split_database_url("postgres://h/a\"b").is_err());
        assert!(split_database_url("nope").is_err());
    }
}
