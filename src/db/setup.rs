//! Creating the database and applying the migrations, safe for any number of processes
//! starting at once (docs/API.md §20): instances, `migrate` and the operator commands all
//! run this, one does the work and the others find it done.

use anyhow::Context;
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock held, on the migrated database, by the process applying migrations.
const MIGRATION_LOCK: i64 = 8242026;
/// The class of the per-name advisory locks held, on the `postgres` database, while a
/// database is created (the second key is `hashtext(name)`).
const CREATION_LOCK_CLASS: i32 = 8242027;

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

async fn exists(conn: &mut AsyncPgConnection, name: &str) -> diesel::QueryResult<bool> {
    let found: Vec<Exists> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(conn)
            .await?;
    Ok(!found.is_empty())
}

/// Creates the database named in `url` if it does not exist (optionally as a copy of
/// `template`). Creators of one name take turns under an advisory lock, so the later ones
/// find it there; a creator that does not take the lock (`createdb` by hand) can still win
/// the race, and then the error ("already exists", SQLSTATE 42P04, or a unique violation on
/// `pg_database_datname_index` when both inserted at once) is success because the database
/// exists afterwards. Whatever the message says, existence decides.
pub async fn create_database(url: &str, template: Option<&str>) -> anyhow::Result<()> {
    let (admin_url, name) = split_database_url(url)?;
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .with_context(|| format!("connecting to the postgres database to create {name}"))?;
    let lock = |f: &str| {
        diesel::sql_query(format!("SELECT {f}({CREATION_LOCK_CLASS}, hashtext($1))"))
            .bind::<Text, _>(name.clone())
    };
    lock("pg_advisory_lock")
        .execute(&mut conn)
        .await
        .with_context(|| format!("waiting for the lock to create {name}"))?;
    let created = create_unless_present(&mut conn, &name, template).await;
    // The lock ends with the session anyway; unlocking only lets the next creator go sooner.
    let _ = lock("pg_advisory_unlock").execute(&mut conn).await;
    created
}

async fn create_unless_present(
    conn: &mut AsyncPgConnection,
    name: &str,
    template: Option<&str>,
) -> anyhow::Result<()> {
    if exists(conn, name).await? {
        return Ok(());
    }
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    match conn.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(e) => match exists(conn, name).await {
            Ok(true) => Ok(()),
            _ => Err(e).with_context(|| format!("creating database {name}")),
        },
    }
}

/// Runs the embedded migrations under an advisory lock on the migrated database's
/// connection, so processes starting together migrate once: the others wait for the lock
/// and then find nothing pending. Runs on a blocking thread: the migration harness is
/// synchronous.
pub async fn migrate(url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            Connection::establish(&url).context("connecting to migrate")?;
        let lock = |f: &str| diesel::sql_query(format!("SELECT {f}({MIGRATION_LOCK})"));
        diesel::RunQueryDsl::execute(lock("pg_advisory_lock"), &mut conn)
            .context("waiting for the migration lock")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
            .map_err(|e| anyhow::anyhow!("running migrations: {e}"))
            // Then the current functions and triggers (`db::functions`), under the same lock.
            .and_then(|v: Vec<String>| Ok([v, super::functions::apply(&mut conn)?].concat()));
        // The lock ends with the session anyway; a failed unlock must not hide the result.
        let _ = diesel::RunQueryDsl::execute(lock("pg_advisory_unlock"), &mut conn);
        applied
    })
    .await
    .context("migration task")?
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
