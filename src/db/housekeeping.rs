//! Housekeeping deletes: rows that expired or finished before a cutoff, one window of pages
//! per call. Each call is one statement (its own transaction outside one). `SKIP LOCKED`: a row
//! a request holds is left for the next sweep, and instances sweeping at once split the
//! work instead of waiting on each other.
//!
//! Written as SQL because a batch is chosen by `ctid` (the row's physical address, which the
//! typed schema cannot name). A sweep walks each table once, a window of [`WINDOW_PAGES`]
//! pages per statement: the inner SELECT locks the window's dead rows (a TID range scan of
//! those pages) and the DELETE reaches each by a TID scan. So a sweep reads every page once
//! however large the backlog (a LIMITed scan from the first page each batch would re-read the
//! rows earlier batches left dead, until vacuum), and a statement touches at most a window's
//! rows. No index is kept for these rows: one would cost every sign-in an index entry to save
//! a pass every few minutes.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// What a sweep may delete, each with the condition that makes a row dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweepable {
    /// Sign-ins that expired before the cutoff (finished or not: the token is long dead,
    /// and the audit trail keeps what happened).
    Logins,
    /// Remembered browsers that expired or were revoked before the cutoff (never listed,
    /// never accepted again: revocation is final).
    Devices,
    /// Enrollments never confirmed whose time ran out before the cutoff, and their secrets
    /// (confirming one then answers 404 instead of the expiry's 409).
    PendingFactors,
    /// Webhook deliveries that succeeded or failed, created before the cutoff (a failed one
    /// can no longer be retried by hand then); pending ones stay whatever their age.
    Deliveries,
}

impl Sweepable {
    pub const ALL: [Sweepable; 4] = [
        Sweepable::Logins,
        Sweepable::Devices,
        Sweepable::PendingFactors,
        Sweepable::Deliveries,
    ];

    /// The table, as `/metrics` and the logs name it.
    pub fn table(self) -> &'static str {
        match self {
            Sweepable::Logins => "logins",
            Sweepable::Devices => "remembered_devices",
            Sweepable::PendingFactors => "totp_factors",
            Sweepable::Deliveries => "webhook_deliveries",
        }
    }

    /// Which rows of [`Self::table`] are dead: `$1` is the cutoff.
    fn dead(self) -> &'static str {
        match self {
            Sweepable::Logins => "expires_at < $1",
            Sweepable::Devices => "(expires_at < $1 OR revoked_at < $1)",
            Sweepable::PendingFactors => "status = 'pending' AND expires_at < $1",
            Sweepable::Deliveries => "state IN ('succeeded', 'failed') AND created_at < $1",
        }
    }

    /// The statement: `$1` the cutoff, `$2` and `$3` the first address of the window and
    /// the first after it (`(page,0)`).
    pub fn sql(self) -> String {
        let (table, dead) = (self.table(), self.dead());
        format!(
            "DELETE FROM {table} WHERE ctid = ANY (ARRAY(
                 SELECT ctid FROM {table}
                  WHERE ctid >= $2::tid AND ctid < $3::tid AND {dead}
                    FOR UPDATE SKIP LOCKED))"
        )
    }
}

/// Pages per statement: at most a few thousand rows.
pub const WINDOW_PAGES: i64 = 64;

/// How many pages `what`'s table has now (rows added later are too young to be dead).
pub async fn pages(conn: &mut AsyncPgConnection, what: Sweepable) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Pages {
        #[diesel(sql_type = BigInt)]
        pages: i64,
    }
    let sql = format!(
        "SELECT pg_relation_size('{}') / current_setting('block_size')::bigint AS pages",
        what.table()
    );
    let p: Pages = diesel::sql_query(sql).get_result(conn).await?;
    Ok(p.pages)
}

/// Deletes the dead rows of `what` older than `cutoff` on the [`WINDOW_PAGES`] pages from
/// `first_page`; returns how many went.
pub async fn delete_window(
    conn: &mut AsyncPgConnection,
    what: Sweepable,
    cutoff: DateTime<Utc>,
    first_page: i64,
) -> QueryResult<usize> {
    diesel::sql_query(what.sql())
        .bind::<Timestamptz, _>(cutoff)
        .bind::<Text, _>(format!("({first_page},0)"))
        .bind::<Text, _>(format!("({},0)", first_page + WINDOW_PAGES))
        .execute(conn)
        .await
}
