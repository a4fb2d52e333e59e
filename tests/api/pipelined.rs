//! A transaction whose BEGIN goes out with its first statement (`db::begin_with`, the
//! verify's locking read): the statement runs inside the transaction even when it is not yet
//! prepared, an error rolls it all back, and a transaction left open marks the connection
//! for the pool to close; two independent statements sent together (`db::pipelined`).

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use mspbots_mfa::db;

use crate::helpers::TestDb;

#[derive(QueryableByName)]
struct Xact {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    x: Option<String>,
}

diesel::define_sql_function! {
    /// This session's transaction id, assigning one if needed.
    fn txid_current() -> diesel::sql_types::BigInt;
}

/// The transaction id, through a statement Diesel caches: prepared on its first use on a
/// connection (its Parse follows the BEGIN), sent at once from then on.
async fn xact(mut conn: &AsyncPgConnection) -> diesel::QueryResult<Option<String>> {
    diesel::select(txid_current())
        .get_result::<i64>(&mut conn)
        .await
        .map(|x| Some(x.to_string()))
}

/// The transaction id if one is open and has one (NULL outside a transaction).
async fn xact_if_assigned(conn: &mut AsyncPgConnection) -> Option<String> {
    diesel::sql_query("SELECT txid_current_if_assigned()::text AS x")
        .get_result::<Xact>(conn)
        .await
        .unwrap()
        .x
}

/// A fresh database with a scratch table `marks (v text)`, and a connection to it.
async fn with_marks() -> (TestDb, AsyncPgConnection) {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    diesel::sql_query("CREATE TABLE marks (v text)")
        .execute(&mut conn)
        .await
        .unwrap();
    (db, conn)
}

#[tokio::test]
async fn the_first_statement_runs_inside_the_transaction_and_commit_ends_it() {
    let (_db, mut conn) = with_marks().await;

    // First on a fresh connection (not prepared yet), then with the statement cached.
    for round in ["cold", "warm"] {
        let first = db::begin_with(&mut conn, |c| xact(c).boxed())
            .await
            .unwrap();
        let result: Result<Option<String>, diesel::result::Error> = async {
            diesel::sql_query("INSERT INTO marks VALUES ('kept')")
                .execute(&mut conn)
                .await?;
            Ok(xact_if_assigned(&mut conn).await)
        }
        .await;
        let second = db::end_transaction(&mut conn, result).await.unwrap();
        assert!(first.is_some());
        assert_eq!(
            first, second,
            "{round}: both statements ran in one transaction"
        );

        assert!(
            !conn.is_broken(),
            "{round}: committed, the pool may reuse it"
        );
        assert_eq!(
            xact_if_assigned(&mut conn).await,
            None,
            "{round}: none open"
        );
    }
    let kept: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM marks")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 2);
}

#[tokio::test]
async fn an_error_rolls_back_the_whole_transaction() {
    let (_db, mut conn) = with_marks().await;

    // The first statement fails: nothing of the transaction stays, the connection is usable.
    let failed = db::begin_with(&mut conn, |mut c| {
        async move {
            diesel::sql_query("SELECT 1 / 0")
                .execute(&mut c)
                .await
                .map(|_| ())
        }
        .boxed()
    })
    .await;
    assert!(failed.is_err());
    let ended = db::end_transaction(&mut conn, failed).await;
    assert!(ended.unwrap_err().to_string().contains("division by zero"));
    assert!(!conn.is_broken());
    assert_eq!(xact_if_assigned(&mut conn).await, None);

    // A later step fails: the first statement's write is rolled back with it.
    let first = db::begin_with(&mut conn, |mut c| {
        async move {
            diesel::sql_query("INSERT INTO marks VALUES ('gone')")
                .execute(&mut c)
                .await
        }
        .boxed()
    })
    .await
    .unwrap();
    assert_eq!(first, 1);
    let result: Result<(), diesel::result::Error> = async {
        diesel::sql_query("SELECT 1 / 0").execute(&mut conn).await?;
        Ok(())
    }
    .await;
    assert!(db::end_transaction(&mut conn, result).await.is_err());
    assert!(!conn.is_broken());
    let left: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM marks")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the first statement's row went with the rollback");
}

/// Inserts a mark, through a statement Diesel does not cache (sent with its own Parse).
async fn mark(mut conn: &AsyncPgConnection, v: &str) -> diesel::QueryResult<()> {
    diesel::sql_query("INSERT INTO marks VALUES ($1)")
        .bind::<Text, _>(v)
        .execute(&mut conn)
        .await
        .map(|_| ())
}

/// Inserts the id of the transaction it runs in as a mark.
async fn mark_xact(mut conn: &AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("INSERT INTO marks SELECT txid_current()::text")
        .execute(&mut conn)
        .await
        .map(|_| ())
}

/// The transaction id, through a statement Diesel does not cache.
async fn xact_uncached(mut conn: &AsyncPgConnection) -> diesel::QueryResult<Option<String>> {
    diesel::sql_query("SELECT txid_current()::text AS x")
        .get_result::<Xact>(&mut conn)
        .await
        .map(|r| r.x)
}

async fn division_by_zero(mut conn: &AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT 1 / 0")
        .execute(&mut conn)
        .await
        .map(|_| ())
}

async fn marks(conn: &mut AsyncPgConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Mark {
        #[diesel(sql_type = Text)]
        v: String,
    }
    diesel::sql_query("SELECT v FROM marks ORDER BY v")
        .load::<Mark>(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.v)
        .collect()
}

/// Two independent statements in one round trip (`db::pipelined`: the start's login and its
/// event) run inside the transaction, with the cached one not yet prepared and prepared. When
/// one fails and the other is refused as "current transaction is aborted", the error returned
/// is the failure's, in either argument order; the rollback takes both.
#[tokio::test]
async fn pipelined_statements_share_the_transaction_and_report_the_real_failure() {
    let (_db, mut conn) = with_marks().await;
    let mut begun = Vec::new();
    for round in ["not yet prepared", "prepared"] {
        let xid = db::begin_with(&mut conn, |c| xact_uncached(c).boxed())
            .await
            .unwrap()
            .expect("a transaction id");
        let both = db::pipelined(mark_xact(&conn), xact(&conn)).await;
        let (_, inner) = db::end_transaction(&mut conn, both).await.unwrap();
        assert_eq!(
            inner.as_deref(),
            Some(xid.as_str()),
            "{round}: one transaction"
        );
        begun.push(xid);
    }
    begun.sort();
    assert_eq!(
        marks(&mut conn).await,
        begun,
        "each mark written in its transaction"
    );

    for failing_first in [true, false] {
        db::begin_with(&mut conn, |c| mark(c, "gone").boxed())
            .await
            .unwrap();
        // The other statement is sent once the failure is answered: Postgres refuses it.
        let (failed, answered) = tokio::sync::oneshot::channel::<()>();
        let other = std::cell::RefCell::new(None);
        let failing = async {
            let r = division_by_zero(&conn).await;
            let _ = failed.send(());
            r
        };
        let refused = async {
            let _ = answered.await;
            let r = mark(&conn, "gone").await;
            *other.borrow_mut() = Some(format!("{r:?}"));
            r
        };
        let result = if failing_first {
            db::pipelined(failing, refused).await
        } else {
            db::pipelined(refused, failing).await
        };
        let err = db::end_transaction(&mut conn, result).await.unwrap_err();
        let other = other.into_inner().unwrap_or_default();
        assert!(
            other.contains("current transaction is aborted"),
            "failing first: {failing_first}: the other statement: {other}"
        );
        assert!(
            err.to_string().contains("division by zero"),
            "failing first: {failing_first}: {err}"
        );
        assert!(!conn.is_broken());
        assert_eq!(xact_if_assigned(&mut conn).await, None);
    }
    assert_eq!(
        marks(&mut conn).await,
        begun,
        "the failed transactions left nothing"
    );
}

#[tokio::test]
async fn a_transaction_left_open_marks_the_connection_for_closing() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    // As if the request were abandoned after the first round trip: never ended.
    db::begin_with(&mut conn, |c| xact(c).boxed())
        .await
        .unwrap();
    assert!(
        conn.is_broken(),
        "an open transaction must not go back to the pool"
    );
    // Nor may a second one start on top of it.
    let again = db::begin_with(&mut conn, |c| xact(c).boxed()).await;
    assert!(matches!(
        again,
        Err(diesel::result::Error::AlreadyInTransaction)
    ));
}
