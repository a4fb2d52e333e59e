//! The database failing under a request, provoked for real on the shared Postgres: a row
//! held by another session (lock timeout, statement timeout, the service's own deadline), a
//! backend terminated mid-request, and 50 requests piling onto one stuck user. Every such
//! failure is `503 unavailable` with `Retry-After`, never a 500 or a stall.

use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use mspbots_mfa::config::Settings;
use reqwest::Method;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::helpers::{retry_after, Resp, TestApp, User};

/// A raw session holding `u`'s row (`SELECT … FOR UPDATE` in an open transaction), as a
/// stuck instance would.
pub(crate) async fn hold_row(app: &TestApp, u: &User) -> AsyncPgConnection {
    let started = app.start_login(u).await;
    assert_eq!(started.status, 201, "{}", started.text);
    let mut conn = app.db.connect().await;
    conn.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM users WHERE tenant_id = '{}' AND user_id = '{}' FOR UPDATE",
        u.tenant, u.id
    ))
    .await
    .unwrap();
    conn
}

/// A new app (`configure`d) whose user `acme/stuck` has their row held by another session
/// ([`hold_row`]): the app, the user and that session.
async fn stuck_user(configure: impl FnOnce(&mut Settings)) -> (TestApp, User, AsyncPgConnection) {
    let app = TestApp::spawn_with(configure).await;
    let u = User::new("acme", "stuck");
    let held = hold_row(&app, &u).await;
    (app, u, held)
}

/// Lets the held row go (`ROLLBACK`): then `u` signs in (the start answers `201`).
pub(crate) async fn released_then_signs_in(app: &TestApp, mut held: AsyncPgConnection, u: &User) {
    held.batch_execute("ROLLBACK").await.unwrap();
    let r = app.start_login(u).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Sets how long a request may wait on Postgres, in ms: the lock timeout, the statement
/// timeout and the service's own deadline (each test leaves one of them in reach).
pub(crate) fn waits(s: &mut Settings, lock: u32, statement: u32, deadline: u32) {
    s.lock_timeout_ms = lock;
    s.statement_timeout_ms = statement;
    s.db_deadline_ms = deadline;
}

#[track_caller]
pub(crate) fn assert_unavailable(r: &Resp) {
    r.problem(503, "unavailable");
    assert!(retry_after(r) >= 1, "{:?}", r.headers);
}

/// `POST /v1/logins` for `u`, sent on its own task, so that the test acts while it waits.
pub(crate) fn start_login_spawned(app: &TestApp, u: &User) -> JoinHandle<Resp> {
    let body = Some(u.login_body());
    spawn_request(app, Method::POST, "/v1/logins", &app.service_key, body)
}

/// Sends one request in the background.
pub(crate) fn spawn_request(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> JoinHandle<Resp> {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    tokio::spawn(async move { Resp::from(r.send().await.unwrap()).await })
}

/// Backends of this test's database waiting on a lock.
pub(crate) async fn lock_waiters(app: &TestApp) -> i64 {
    app.sql_count(&format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        app.db.name
    ))
    .await
}

/// Checks `times` over, 50 ms apart, that at most `PER_USER` connections wait on the stuck
/// user's row.
pub(crate) async fn at_most_per_user_waiting(app: &TestApp, times: usize) {
    let cap = mspbots_mfa::rate_limit::PER_USER as i64;
    for _ in 0..times {
        let waiting = lock_waiters(app).await;
        assert!(
            waiting <= cap,
            "{waiting} connections wait on the stuck user's row"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// While a stuck user's requests pile up: `/readyz` answers `200`, and every sign-in start
/// of `others` (other users) `201`.
pub(crate) async fn ready_and_all_started(app: &TestApp, others: Vec<JoinHandle<Resp>>) {
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    for o in others {
        let r = o.await.unwrap();
        assert_eq!(r.status, 201, "another user: {}", r.text);
    }
}

/// How long a test waits before calling something hung: far beyond every timeout the tests
/// configure, so a loaded machine cannot trip it. A guard against a hang, not a timing claim.
pub(crate) const HANG: Duration = Duration::from_secs(30);

/// `fut`'s output; fails, naming `what`, only if it hangs for [`HANG`].
pub(crate) async fn within_hang_guard<T>(
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(HANG, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung: no answer after {HANG:?}"))
}

/// Polls (bounded) until `cond` holds; the database acts on its own time here.
pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut cond: impl FnMut() -> F,
) {
    let until = Instant::now() + HANG;
    while !cond().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sign-in start of a user whose row another session holds, under the limits `configure`
/// sets: `503` with `Retry-After`, answered by Postgres (not the service's deadline).
async fn a_held_row_is_503_from_postgres(configure: impl FnOnce(&mut Settings)) {
    let (app, u, _held) = stuck_user(configure).await;
    let r = within_hang_guard("the sign-in start", app.start_login(&u)).await;
    assert_unavailable(&r);
    assert_eq!(
        app.state.metrics.deadline_exceeded.get(),
        0,
        "Postgres answered first"
    );
}

#[actix_web::test]
async fn a_lock_timeout_is_503_with_retry_after() {
    // The statement timeout and the service's deadline are out of reach (a minute): only
    // the lock timeout can answer before the hang guard.
    a_held_row_is_503_from_postgres(|s| waits(s, 300, 60_000, 61_000)).await;
}

#[actix_web::test]
async fn a_statement_timeout_is_503_with_retry_after() {
    // The lock timeout and the deadline are a minute away: only the statement timeout can
    // answer before the hang guard.
    a_held_row_is_503_from_postgres(|s| waits(s, 60_000, 400, 61_000)).await;
}

#[actix_web::test]
async fn a_backend_terminated_mid_request_is_503_and_the_next_request_succeeds() {
    let (app, u, held) = stuck_user(|s| {
        s.lock_timeout_ms = 60_000;
        s.db_deadline_ms = 20_000;
    })
    .await;
    let request = start_login_spawned(&app, &u);
    eventually("the request to wait on the row", || async {
        lock_waiters(&app).await == 1
    })
    .await;
    let killed = app
        .sql_count(&format!(
            "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND wait_event_type = 'Lock') t",
            app.db.name
        ))
        .await;
    assert_eq!(killed, 1);
    let r = request.await.unwrap();
    assert_unavailable(&r);
    // The dead connection left the pool: the user signs in on the next try.
    released_then_signs_in(&app, held, &u).await;
}

#[actix_web::test]
async fn the_services_own_deadline_answers_503_and_drops_the_connection() {
    let (app, u, held) = stuck_user(|s| waits(s, 60_000, 60_000, 500)).await;
    // Postgres's own timeouts are a minute away: the answer before the hang guard is the
    // deadline's, and the metric says so.
    let r = within_hang_guard("the sign-in start", app.start_login(&u)).await;
    assert_unavailable(&r);
    assert_eq!(app.state.metrics.deadline_exceeded.get(), 1);
    // The abandoned transaction's connection was closed, so Postgres ended its lock wait.
    eventually("the abandoned backend to go", || async {
        lock_waiters(&app).await == 0
    })
    .await;
    released_then_signs_in(&app, held, &u).await;
}

#[actix_web::test]
async fn fifty_requests_for_one_stuck_user_leave_other_users_and_readiness_alone() {
    let (app, stuck, held) = stuck_user(|s| {
        s.db_pool_size = 8;
        s.lock_timeout_ms = 300;
    })
    .await;
    let send = |u: &User| start_login_spawned(&app, u);
    let stuck_requests: Vec<_> = (0..50).map(|_| send(&stuck)).collect();
    eventually("the stuck user's requests to queue", || async {
        lock_waiters(&app).await >= 1
    })
    .await;
    // The pile-up holds at most PER_USER connections; the rest wait without one.
    at_most_per_user_waiting(&app, 5).await;
    // Other users (each of a tenant of their own: today a sign-in start also locks its
    // tenant's row) and the readiness probe while the pile-up lasts.
    let others: Vec<_> = (0..10)
        .map(|i| send(&User::new(&format!("globex-{i}"), "user")))
        .collect();
    ready_and_all_started(&app, others).await;
    let mut unavailable = 0;
    for s in stuck_requests {
        let r = s.await.unwrap();
        assert_ne!(r.status, 500, "{}", r.text);
        assert_unavailable(&r);
        unavailable += 1;
    }
    assert_eq!(unavailable, 50);
    released_then_signs_in(&app, held, &stuck).await;
}

#[actix_web::test]
async fn a_body_that_does_not_arrive_in_time_is_408_problem_with_a_request_id() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|s| s.body_timeout_ms = 300).await;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    // Declares 100 bytes, sends 2, and waits.
    sock.write_all(
        b"POST /v1/logins HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{}",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    within_hang_guard(
        "the answer to a stalled body",
        sock.read_to_end(&mut answer),
    )
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(
        text.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(text.contains("x-request-id: "), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
}

#[actix_web::test]
async fn pooled_sessions_carry_every_limit() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Limits {
        #[diesel(sql_type = diesel::sql_types::Text)]
        statement: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        lock: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        idle: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        client_check: String,
    }
    let app = TestApp::spawn_with(|s| {
        s.statement_timeout_ms = 4000;
        s.lock_timeout_ms = 1500;
        s.idle_in_transaction_timeout_ms = 7000;
    })
    .await;
    let mut conn = app.state.pool.get().await.unwrap();
    let l: Limits = diesel::sql_query(
        "SELECT current_setting('statement_timeout') AS statement, \
         current_setting('lock_timeout') AS lock, \
         current_setting('idle_in_transaction_session_timeout') AS idle, \
         current_setting('client_connection_check_interval') AS client_check",
    )
    .get_result(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        (
            l.statement.as_str(),
            l.lock.as_str(),
            l.idle.as_str(),
            l.client_check.as_str()
        ),
        ("4s", "1500ms", "7s", "1s")
    );
}
