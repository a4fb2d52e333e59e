//! Today's SQL functions and triggers, one file per function: `<function>.sql` holds the
//! function and the triggers that call it, so its reader sees when it runs. History stays in
//! `migrations/`; the current text is here, and only here.
//!
//! A file is a comment (lines starting with `--`), then the definition exactly as Postgres
//! prints it: `pg_get_functiondef` and `;`, then each trigger's `pg_get_triggerdef` and `;`,
//! by trigger name, after a blank line. Written in that form, the file and the catalog are
//! compared as text, without parsing SQL: [`apply`] replaces only what differs, and
//! `tests/api/schema.rs` checks that a migrated database holds exactly these definitions (on a
//! mismatch it prints the text to paste).
//!
//! [`apply`] runs after the embedded migrations, under the same advisory lock (`db::migrate`),
//! and in one transaction (re)creates each function whose definition differs from its file,
//! dropping the triggers that call it and creating the file's. When nothing differs it only
//! reads the catalog: recreating a trigger would lock its table against writes at every start.
//!
//! - Change a body, add a function or a trigger: edit or add the file (and list it in
//!   [`FILES`]); no migration.
//! - Change a function's arguments or return type (`CREATE OR REPLACE` cannot), or remove a
//!   function: a migration drops the old one (`CASCADE` takes its triggers); the file then
//!   creates the new one, or goes. Migrations run first, so they see the previous functions.
//! - A migration never creates a function or a trigger: the file would silently replace it.

use anyhow::Context;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;

/// Every file of this folder, by the name of the function it defines.
pub const FILES: &[(&str, &str)] = &[
    ("mfa_accept_step", include_str!("mfa_accept_step.sql")),
    ("mfa_consume_step", include_str!("mfa_consume_step.sql")),
    ("mfa_reset_lockout", include_str!("mfa_reset_lockout.sql")),
    (
        "mfa_totp_factor_rules",
        include_str!("mfa_totp_factor_rules.sql"),
    ),
    ("mfa_webhook_outbox", include_str!("mfa_webhook_outbox.sql")),
];

/// A file's definition: its text after the leading comment (and blank lines).
pub fn definition(file: &str) -> &str {
    let mut rest = file;
    while let Some(line) = rest.lines().next() {
        if !(line.trim().is_empty() || line.starts_with("--")) {
            break;
        }
        rest = rest.get(line.len() + 1..).unwrap_or_default();
    }
    rest.trim_end()
}

/// Function `$1` of schema `public` and the triggers that call it, in the files' form (NULL if
/// there is no such function).
const CURRENT: &str = "\
    SELECT string_agg(rtrim(pg_get_functiondef(p.oid), E'\\n') || ';', E'\\n' ORDER BY p.oid) \
        || COALESCE((SELECT string_agg(E'\\n\\n' || pg_get_triggerdef(t.oid) || ';', '' \
                                       ORDER BY t.tgname) \
                       FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid \
                      WHERE f.pronamespace = 'public'::regnamespace AND f.proname = $1 \
                        AND NOT t.tgisinternal), '') AS text \
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname = $1";

/// The statements that drop the triggers calling function `$1`.
const DROP_TRIGGERS: &str = "\
    SELECT format('DROP TRIGGER %I ON %s', t.tgname, t.tgrelid::regclass) AS text \
      FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid \
     WHERE f.pronamespace = 'public'::regnamespace AND f.proname = $1 AND NOT t.tgisinternal";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    text: Option<String>,
}

type Conn = AsyncConnectionWrapper<AsyncPgConnection>;

fn query(conn: &mut Conn, sql: &str, name: &str) -> diesel::QueryResult<Vec<Option<String>>> {
    let rows: Vec<Row> = diesel::sql_query(sql).bind::<Text, _>(name).load(conn)?;
    Ok(rows.into_iter().map(|r| r.text).collect())
}

/// (Re)creates, in one transaction, each function whose definition in the database differs
/// from its file, with its triggers. Returns the files it applied (usually none). The caller
/// holds the migrations' advisory lock.
pub fn apply(conn: &mut Conn) -> anyhow::Result<Vec<String>> {
    let mut stale = Vec::new();
    for &(name, file) in FILES {
        let current = query(conn, CURRENT, name).context("reading the functions' catalog")?;
        if current.into_iter().flatten().next().as_deref() != Some(definition(file)) {
            stale.push((name, file));
        }
    }
    if stale.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        stale
            .iter()
            .map(|&(name, file)| {
                for drop in query(conn, DROP_TRIGGERS, name)?.into_iter().flatten() {
                    diesel::connection::SimpleConnection::batch_execute(conn, &drop)?;
                }
                diesel::connection::SimpleConnection::batch_execute(conn, file)
                    .with_context(|| format!("applying src/db/functions/{name}.sql"))?;
                Ok(format!("src/db/functions/{name}.sql"))
            })
            .collect()
    })
}
