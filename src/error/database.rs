//! Database and pool errors as [`ApiError`]: `NotFound` → 404; what is the database's state
//! rather than the request's (a lost connection, a timeout, a lock or serialization failure,
//! an exhausted pool) → 503; anything else, a bug → 500 with its cause in the log.

use super::ApiError;

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match e {
            Error::NotFound => ApiError::NotFound,
            other => match transient_cause(&other) {
                Some(why) => ApiError::Unavailable(why),
                None => ApiError::Internal(anyhow::Error::new(other).context("database")),
            },
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// Postgres messages (the server's `lc_messages` in English, the default) of failures that
/// are the database's state, not the request's: SQLSTATE classes 08 and 57, 55P03, 40P01,
/// 25P03. diesel-async reports these as `DatabaseErrorKind::Unknown` and keeps no SQLSTATE,
/// so the message is all there is to go on.
const TRANSIENT_MESSAGES: &[&str] = &[
    "canceling statement due to statement timeout", // 57014
    "canceling statement due to lock timeout",      // 55P03
    "canceling statement due to user request",      // 57014 (pg_cancel_backend)
    "could not obtain lock",                        // 55P03 (NOWAIT)
    "terminating connection", // 57P01 admin shutdown, 57P02 crash, 25P03 idle in transaction
    "the database system is", // 57P03 starting up / shutting down / in recovery
    "deadlock detected",      // 40P01
    "could not serialize access", // 40001 under another kind
    "server closed the connection", // class 08 seen by the client
    "connection to server",
];

/// Why a database error is transient (→ `503`), or `None` when it is a bug (→ `500`).
fn transient_cause(e: &diesel::result::Error) -> Option<String> {
    use diesel::result::{DatabaseErrorKind as K, Error};
    match e {
        Error::DatabaseError(kind, info) => {
            let message = info.message();
            let transient = match kind {
                // A dropped socket, a closed connection, a serialization failure (40001).
                K::ClosedConnection | K::UnableToSendCommand | K::SerializationFailure => true,
                K::Unknown => {
                    let m = message.to_ascii_lowercase();
                    TRANSIENT_MESSAGES.iter().any(|t| m.contains(t))
                }
                _ => false,
            };
            transient.then(|| message.to_owned())
        }
        // The connection was left mid-transaction by an earlier failure.
        Error::BrokenTransactionManager => Some("broken transaction manager".to_owned()),
        Error::RollbackErrorOnCommit { commit_error, .. } => transient_cause(commit_error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    fn db(kind: diesel::result::DatabaseErrorKind, message: &str) -> diesel::result::Error {
        diesel::result::Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    fn status_of(e: diesel::result::Error) -> u16 {
        let e = ApiError::from(e);
        let res = e.error_response();
        if res.status() == 503 {
            assert!(res.headers().contains_key("retry-after"), "{e:?}");
        }
        res.status().as_u16()
    }

    #[test]
    fn database_failures_that_are_not_the_requests_fault_are_503() {
        use diesel::result::DatabaseErrorKind as K;
        let unavailable = [
            // diesel-async: the socket is gone (Postgres stopped, backend killed).
            db(K::UnableToSendCommand, "connection closed"),
            db(
                K::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            // 57P01 admin shutdown (pg_ctl stop -m fast, pg_terminate_backend).
            db(
                K::Unknown,
                "terminating connection due to administrator command",
            ),
            // 57P02 crash of another backend.
            db(
                K::Unknown,
                "terminating connection because of crash of another server process",
            ),
            // 25P03 idle_in_transaction_session_timeout.
            db(
                K::Unknown,
                "terminating connection due to idle-in-transaction timeout",
            ),
            // 57P03 cannot_connect_now.
            db(K::Unknown, "the database system is shutting down"),
            // 57014 statement timeout and cancel.
            db(K::Unknown, "canceling statement due to statement timeout"),
            db(K::Unknown, "canceling statement due to user request"),
            // 55P03 lock_timeout and NOWAIT.
            db(K::Unknown, "canceling statement due to lock timeout"),
            db(
                K::Unknown,
                "could not obtain lock on row in relation \"users\"",
            ),
            // 40001 and 40P01.
            db(
                K::SerializationFailure,
                "could not serialize access due to concurrent update",
            ),
            db(K::Unknown, "deadlock detected"),
            diesel::result::Error::BrokenTransactionManager,
            diesel::result::Error::RollbackErrorOnCommit {
                rollback_error: Box::new(db(K::UnableToSendCommand, "connection closed")),
                commit_error: Box::new(db(
                    K::Unknown,
                    "terminating connection due to administrator command",
                )),
            },
        ];
        for e in unavailable {
            let shown = format!("{e:?}");
            assert_eq!(status_of(e), 503, "{shown}");
        }
    }

    #[test]
    fn database_errors_that_are_bugs_stay_500_and_not_found_404() {
        use diesel::result::DatabaseErrorKind as K;
        assert_eq!(
            status_of(db(K::UniqueViolation, "duplicate key value")),
            500
        );
        assert_eq!(
            status_of(db(K::Unknown, "relation \"nope\" does not exist")),
            500
        );
        assert_eq!(
            status_of(db(K::CheckViolation, "violates check constraint")),
            500
        );
        assert_eq!(status_of(diesel::result::Error::NotFound), 404);
    }

    #[test]
    fn pool_errors_are_503() {
        use diesel_async::pooled_connection::deadpool::PoolError;
        let e = PoolError::Timeout(deadpool::managed::TimeoutType::Wait);
        let res = ApiError::from(e).error_response();
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }
}
