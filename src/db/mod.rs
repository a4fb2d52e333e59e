//! Persistence: the pool, database creation and migrations, the typed schema, and one module
//! per table's queries. Queries are Diesel DSL over `schema.rs` (checked by the compiler,
//! prepared once per connection); repository functions take a `&mut AsyncPgConnection` so
//! the caller (a service) owns the transaction, return Diesel's errors, and never decide
//! policy.

pub mod audit;
pub mod factors;
pub mod logins;
pub mod recovery;
pub mod schema;
pub mod service_keys;
pub mod tenants;
pub mod types;
pub mod users;

use std::time::Duration;

use anyhow::Context;
use diesel::sql_types::Text;
use diesel::{ConnectionError, QueryableByName};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures_util::FutureExt;

pub use diesel_async::AsyncPgConnection as PgConn;

pub type Pool = DeadPool<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Builds the pool. Every new connection gets a `statement_timeout`, so a stuck query
/// cannot hold a connection (and a request) forever.
pub fn pool(url: &str, size: u32, statement_timeout_ms: u32) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // A closed connection surfaces as an error on use (→ 503) and is then dropped; this
    // saves a round trip per checkout compared with `Verified`.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&format!("SET statement_timeout = {statement_timeout_ms}"))
                .await
                .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
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
        .context("building the database pool")
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
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"));
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

/// Whether Postgres answers on this connection (for `/readyz`).
pub async fn ping(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    conn.batch_execute("SELECT 1").await
}

#[cfg(test)]
mod tests {
    use super::*;

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
