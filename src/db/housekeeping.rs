//! Housekeeping deletes: rows nobody can use any more, older than a cutoff, one batch per
//! call. Each call is one statement (its own transaction outside one). `SKIP LOCKED`: a row
//! a request holds is left for the next sweep, and instances sweeping at once split the
//! work instead of waiting on each other.
//!
//! Written as SQL because the batch is chosen by `ctid` (the row's physical address, which
//! the typed schema cannot name): the inner SELECT locks up to `limit` matching rows and the
//! DELETE reaches each by a TID scan. Matching rows are found by a sequential scan (no index
//! is kept for them: one would cost every sign-in an index entry to save a sweep every few
//! minutes); the oldest rows sit at the start of the heap, so a full batch stops early.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Timestamptz};
use diesel::QueryResult;
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
    /// Enrollments never confirmed whose time ran out before the cutoff, and their secrets.
    PendingFactors,
    /// Webhook deliveries that succeeded or failed, created before the cutoff; pending ones
    /// stay whatever their age.
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

    /// The statement: `$1` the cutoff, `$2` the batch size.
    pub fn sql(self) -> &'static str {
        match self {
            Sweepable::Logins => {
                "DELETE FROM logins WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM logins WHERE expires_at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))"
            }
            Sweepable::Devices => {
                "DELETE FROM remembered_devices WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM remembered_devices
                     WHERE expires_at < $1 OR revoked_at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))"
            }
            Sweepable::PendingFactors => {
                "DELETE FROM totp_factors WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM totp_factors
                     WHERE status = 'pending' AND expires_at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))"
            }
            Sweepable::Deliveries => {
                "DELETE FROM webhook_deliveries WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM webhook_deliveries
                     WHERE state IN ('succeeded', 'failed') AND created_at < $1
                     LIMIT $2 FOR UPDATE SKIP LOCKED))"
            }
        }
    }
}

/// Deletes up to `limit` dead rows of `what` older than `cutoff`; returns how many went.
pub async fn delete_batch(
    conn: &mut AsyncPgConnection,
    what: Sweepable,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(what.sql())
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(limit)
        .execute(conn)
        .await
}
