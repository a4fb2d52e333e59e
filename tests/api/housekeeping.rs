//! Housekeeping (`services::housekeeping`): rows nobody can use any more go once they are
//! older than `MFA_RETENTION_DAYS`; everything else, and the audit trail, stays.

use diesel_async::SimpleAsyncConnection;
use mspbots_mfa::db::housekeeping::{self as db_housekeeping, Sweepable, WINDOW_PAGES};
use mspbots_mfa::services::housekeeping;
use mspbots_mfa::services::webhooks::worker;
use serde_json::json;

use crate::helpers::{TestApp, User};
use crate::webhook_receiver::Receiver;

const DAY: i64 = 86_400;

async fn sweep(app: &TestApp) -> Vec<(Sweepable, u64)> {
    housekeeping::sweep(&app.state).await.unwrap()
}

fn deleted(swept: &[(Sweepable, u64)], what: Sweepable) -> u64 {
    swept
        .iter()
        .find(|(w, _)| *w == what)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("{what:?} not swept: {swept:?}"))
}

/// Asserts a sweep that reached every table and deleted nothing. A table whose sweep
/// failed is missing from the result (its error is only a warning), so "every count is 0"
/// would pass then: this wants each table, in order, with 0.
#[track_caller]
fn assert_nothing_swept(swept: &[(Sweepable, u64)]) {
    let nothing: Vec<(Sweepable, u64)> = Sweepable::ALL.iter().map(|w| (*w, 0)).collect();
    assert_eq!(swept, nothing, "every table swept, nothing deleted");
}

/// Rows of each swept table, and of the audit trail.
async fn counts(app: &TestApp) -> [i64; 5] {
    [
        app.sql_count("SELECT count(*) AS n FROM logins").await,
        app.sql_count("SELECT count(*) AS n FROM remembered_devices")
            .await,
        app.sql_count("SELECT count(*) AS n FROM totp_factors")
            .await,
        app.sql_count("SELECT count(*) AS n FROM webhook_deliveries")
            .await,
        app.sql_count("SELECT count(*) AS n FROM audit_events")
            .await,
    ]
}

#[tokio::test]
async fn housekeeping_deletes_what_nobody_can_use_once_past_retention_and_keeps_the_rest() {
    let app = TestApp::spawn().await; // MFA_RETENTION_DAYS: the default, 30
    assert_eq!(app.state.settings.retention_days, 30);
    let rx = Receiver::start().await;
    let body = json!({"enforce_mfa": false, "remember_device_days": 1});
    let admin = app.admin_with_policy("acme", body).await;
    let r = app
        .post(
            "/v1/tenants/acme/webhooks",
            Some(&admin.access_token),
            json!({"url": rx.url, "event_types": ["login.succeeded"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Day 0: what will be dead 30 days from its end.
    let jane = User::new("acme", "jane");
    let e = app.enroll_via_me(&jane).await;
    let old_device = app.remember_browser(&jane, &e.secret).await; // expires on day 1
    let (old_login, old_token) = app.challenge(&jane).await; // left open: dies in 10 min
    let r = app
        .add_factor(&e.access_token, json!({"name": "Tablet"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text); // never confirmed: dies in 10 min
    while worker::deliver_due(&app.state, 50).await.unwrap() > 0 {}
    assert!(!rx.received().is_empty());
    // A delivery still pending, however old, is never swept.
    let mut c = app.db.connect().await;
    c.batch_execute(&format!(
        "INSERT INTO audit_events (tenant_id, type, at, details) \
         VALUES ('acme', 'login.succeeded', '{}', '{{}}')",
        app.now().to_rfc3339()
    ))
    .await
    .unwrap();
    let day0_pending = app
        .sql_count("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
        .await;
    assert_eq!(day0_pending, 1);

    // A minute short of 30 days after the first of them: nothing goes.
    app.advance(30 * DAY - 90);
    let before = counts(&app).await;
    assert_nothing_swept(&sweep(&app).await);
    assert_eq!(counts(&app).await, before);

    // A day later the device, expired on day 1, is past retention too. Fresh rows of
    // today next to the old ones.
    app.advance(DAY + 2 * 3_600);
    let new_device = app.remember_browser(&jane, &e.secret).await;
    let (new_login, new_token) = app.challenge(&jane).await;
    let new_deliveries = app
        .sql_count("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
        .await
        - day0_pending;
    assert!(new_deliveries > 0);
    let old_logins = app
        .sql_count(&format!(
            "SELECT count(*) AS n FROM logins WHERE created_at < '{}'",
            (app.now() - chrono::Duration::days(30)).to_rfc3339()
        ))
        .await;
    assert!(old_logins >= 4, "admin and jane signed in on day 0");
    let old_delivered = app
        .sql_count("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'succeeded'")
        .await;
    assert!(old_delivered > 0);
    let before = counts(&app).await;

    let swept = sweep(&app).await;
    assert_eq!(deleted(&swept, Sweepable::Logins), old_logins as u64);
    assert_eq!(deleted(&swept, Sweepable::Devices), 1);
    assert_eq!(deleted(&swept, Sweepable::PendingFactors), 1);
    assert_eq!(deleted(&swept, Sweepable::Deliveries), old_delivered as u64);
    let after = counts(&app).await;
    assert_eq!(after[0], before[0] - old_logins);
    assert_eq!(after[1], before[1] - 1);
    assert_eq!(after[2], before[2] - 1);
    assert_eq!(after[3], before[3] - old_delivered);
    assert_eq!(after[4], before[4], "the audit trail is never swept");
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
            .await,
        day0_pending + new_deliveries
    );
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM totp_factors WHERE status = 'active'")
            .await,
        2,
        "the admin's and jane's authenticators stay"
    );
    let metrics = app.get("/metrics", None).await.text;
    let line = format!("mfa_housekeeping_deleted_total{{table=\"logins\"}} {old_logins}");
    assert!(metrics.contains(&line), "{line} in {metrics}");

    // What is still alive works as before: today's device and sign-in, jane's factor.
    let mut body = jane.login_body();
    body["device_token"] = json!(new_device);
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    assert_eq!(r.body["mfa"], "remembered", "{}", r.text);
    let r = app.login_view(&new_login, &new_token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.advance(30);
    let r = app.verify_now(&new_login, &new_token, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The swept ones are simply gone: their tokens were dead already.
    let r = app.login_view(&old_login, &old_token).await;
    r.problem(401, "unauthenticated");
    let mut body = jane.login_body();
    body["device_token"] = json!(old_device);
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    assert_eq!(r.body["status"], "verification_required", "{}", r.text);

    // A second sweep finds nothing left to do.
    app.advance(60);
    assert_nothing_swept(&sweep(&app).await);
}

/// `count` sign-ins of jane that expired 40 days ago.
async fn expired_logins(app: &TestApp, count: usize) {
    let mut c = app.db.connect().await;
    c.batch_execute(&format!(
        "INSERT INTO logins (tenant_id, login_id, user_id, surface, status, created_at, expires_at) \
         SELECT 'acme', gen_random_uuid(), 'jane', 'app', 'verification_required', \
                '{old}'::timestamptz - interval '10 minutes', '{old}' \
           FROM generate_series(1, {count})",
        old = (app.now() - chrono::Duration::days(40)).to_rfc3339()
    ))
    .await
    .unwrap();
}

/// An app where jane has one live sign-in and `count` that expired 40 days ago.
async fn app_with_expired_logins(count: usize) -> TestApp {
    let app = TestApp::spawn().await;
    let r = app.start_login(&User::new("acme", "jane")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    expired_logins(&app, count).await;
    app
}

/// Which transaction deleted each expired sign-in, and on which page the row was: read in a
/// snapshot taken before the sweep, where the deleted rows are still visible with the
/// deleting transaction's id as `xmax`.
#[derive(diesel::QueryableByName)]
struct Deleter {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    xmax: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    first_page: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_page: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
}

#[tokio::test]
async fn housekeeping_walks_a_backlog_window_by_window() {
    let app = app_with_expired_logins(12_000).await;
    let jane = User::new("acme", "jane");
    let r = app.start_login(&jane).await; // a live one at the end of the table, too
    assert_eq!(r.status, 201, "{}", r.text);
    let mut c = app.db.connect().await;
    let pages = db_housekeeping::pages(&mut c, Sweepable::Logins)
        .await
        .unwrap();
    assert!(pages > 2 * WINDOW_PAGES, "{pages} pages: several windows");
    // A snapshot from before the sweep keeps the deleted rows in view.
    let mut before = app.db.connect().await;
    before
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM logins")
        .await
        .unwrap();
    let swept = sweep(&app).await;
    assert_eq!(deleted(&swept, Sweepable::Logins), 12_000);
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM logins").await,
        2,
        "today's sign-ins stay"
    );
    // One transaction per window: each deleter's rows lie on the pages of one window, and
    // every window with expired rows had its own (a single DELETE would be one deleter).
    let deleters: Vec<Deleter> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT xmax::text::bigint AS xmax, \
                    min((ctid::text::point)[0])::bigint AS first_page, \
                    max((ctid::text::point)[0])::bigint AS last_page, count(*) AS rows \
               FROM logins WHERE expires_at < now() - interval '30 days' \
              GROUP BY 1 ORDER BY 2",
        ),
        &mut before,
    )
    .await
    .unwrap();
    before.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        deleters.iter().map(|d| d.rows).sum::<i64>(),
        12_000,
        "the snapshot sees every deleted row"
    );
    let windows: Vec<i64> = deleters
        .iter()
        .map(|d| d.first_page / WINDOW_PAGES)
        .collect();
    for d in &deleters {
        assert_ne!(d.xmax, 0, "row deleted");
        assert_eq!(
            d.first_page / WINDOW_PAGES,
            d.last_page / WINDOW_PAGES,
            "transaction {} deleted pages {}..={}: more than one window",
            d.xmax,
            d.first_page,
            d.last_page
        );
    }
    assert!(
        windows.windows(2).all(|w| w[0] < w[1]),
        "one transaction per window: {windows:?}"
    );
    assert!(
        deleters.len() as i64 > 2,
        "{} transactions for {pages} pages",
        deleters.len()
    );
}

#[tokio::test]
async fn a_row_a_transaction_holds_is_skipped_without_waiting_and_goes_in_a_later_sweep() {
    let app = app_with_expired_logins(3).await;
    let mut holder = app.db.connect().await;
    holder
        .batch_execute(
            "BEGIN; SELECT 1 FROM logins WHERE login_id = \
               (SELECT login_id FROM logins ORDER BY expires_at LIMIT 1) FOR UPDATE",
        )
        .await
        .unwrap();
    // Returns at once (the lock timeout would make a wait an error, not a pass).
    assert_eq!(deleted(&sweep(&app).await, Sweepable::Logins), 2);
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM logins").await, 2);
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(deleted(&sweep(&app).await, Sweepable::Logins), 1);
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM logins").await, 1);
}

#[tokio::test]
async fn retention_zero_keeps_everything_forever() {
    let app = TestApp::spawn_with(|s| s.retention_days = 0).await;
    let jane = User::new("acme", "jane");
    let e = app.enroll_via_me(&jane).await;
    app.challenge(&jane).await;
    let r = app.add_factor(&e.access_token, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.advance(3_650 * DAY);
    let before = counts(&app).await;
    assert!(sweep(&app).await.is_empty());
    assert_eq!(counts(&app).await, before);
}

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// Each sweep statement locks its window's dead rows with one TID range scan of its table,
/// no join, and on a table of some size (logins: 12,000 rows, never analyzed) deletes them
/// through a TID scan.
#[tokio::test]
async fn sweep_statements_delete_by_row_address() {
    let app = app_with_expired_logins(12_000).await;
    let mut c = app.db.connect().await;
    for what in Sweepable::ALL {
        let sql = what
            .sql()
            .replace("$1", "now()")
            .replace("$2", "'(64,0)'")
            .replace("$3", "'(128,0)'");
        let rows: Vec<Plan> =
            diesel_async::RunQueryDsl::load(diesel::sql_query(format!("EXPLAIN {sql}")), &mut c)
                .await
                .unwrap();
        let plan: String = rows.into_iter().map(|r| r.plan + "\n").collect();
        assert!(plan.contains("LockRows"), "{what:?}: {plan}");
        assert!(plan.contains("Tid Range Scan on"), "{what:?}: {plan}");
        assert!(
            !plan.contains("Nested Loop") && !plan.contains("Join"),
            "{what:?}: {plan}"
        );
        // On the (nearly empty) other tables the planner may read their few pages instead.
        if what == Sweepable::Logins {
            assert!(plan.contains("Tid Scan on logins"), "{plan}");
            assert!(!plan.contains("Seq Scan"), "{plan}");
        }
    }
}
