//! One lock order for a user's rows: the user's row first, then their logins and factors.
//! A sign-in's code is checked under the user's and the login's locks; removing factors
//! (the user after step-up, an admin's reset) kills the user's open logins. Were one to
//! lock the login first and the other the user first, each could hold what the other waits
//! for: Postgres breaks such a deadlock by failing one of them, a server error. Each test
//! holds one row from a raw session, lets the request queue behind it, and then asks, with
//! `NOWAIT`, which rows the waiting request already holds.

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

use crate::helpers::{login_of, Resp, TestApp, User};
use crate::resilience::{eventually, lock_waiters};

/// A raw session that has run `BEGIN; sql` and holds what `sql` locked.
async fn holding(app: &TestApp, sql: &str) -> AsyncPgConnection {
    let mut conn = app.db.connect().await;
    conn.batch_execute(&format!("BEGIN; {sql}")).await.unwrap();
    conn
}

/// A raw session holding user `acme/u1`'s row in `mode` (`FOR <mode>`).
async fn holding_user(app: &TestApp, mode: &str) -> AsyncPgConnection {
    holding(
        app,
        &format!("SELECT 1 FROM users WHERE tenant_id = 'acme' AND user_id = 'u1' FOR {mode}"),
    )
    .await
}

/// Whether another session can lock every row of `acme/u1` in `table` right now.
async fn rows_free(app: &TestApp, table: &str) -> bool {
    can_lock(
        app,
        &format!(
            "SELECT 1 FROM {table} WHERE tenant_id = 'acme' AND user_id = 'u1' FOR UPDATE NOWAIT"
        ),
    )
    .await
}

/// Whether another session can lock what `sql` selects right now (`sql` ends in `NOWAIT`).
async fn can_lock(app: &TestApp, sql: &str) -> bool {
    let mut conn = app.db.connect().await;
    let free = match conn.batch_execute(&format!("BEGIN; {sql}")).await {
        Ok(()) => true,
        Err(e) if e.to_string().contains("could not obtain lock") => false,
        Err(e) => panic!("{sql}: {e}"),
    };
    conn.batch_execute("ROLLBACK").await.unwrap();
    free
}

/// Waits for `request` to queue on a lock, runs `probe`, then lets `held` go and returns
/// the request's answer with the probe's.
async fn probe_while_queued<T>(
    app: &TestApp,
    mut held: AsyncPgConnection,
    request: impl std::future::Future<Output = Resp>,
    probe: impl std::future::Future<Output = T>,
) -> (Resp, T) {
    let observe = async {
        eventually("the request to queue on the held row", || async {
            lock_waiters(app).await == 1
        })
        .await;
        let seen = probe.await;
        held.batch_execute("ROLLBACK").await.unwrap();
        seen
    };
    tokio::join!(request, observe)
}

/// While `acme/u1`'s row is held in `mode`, `request` queues on it holding none of the
/// user's rows in `table` (else `held_msg`), then answers `status`.
async fn queued_before(
    app: &TestApp,
    mode: &str,
    request: impl std::future::Future<Output = Resp>,
    table: &str,
    status: u16,
    held_msg: &str,
) {
    let held = holding_user(app, mode).await;
    let (r, free) = probe_while_queued(app, held, request, rows_free(app, table)).await;
    assert!(free, "{held_msg}");
    assert_eq!(r.status, status, "{}", r.text);
}

#[actix_web::test]
async fn a_code_is_checked_with_the_users_row_locked_before_the_logins() {
    let (app, _admin, _) = TestApp::with_admin("acme").await;
    let (u, e) = app.enrolled("acme", "u1").await;
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;

    let held = holding(
        &app,
        &format!("SELECT 1 FROM logins WHERE login_id = '{login_id}' FOR NO KEY UPDATE"),
    )
    .await;
    let (r, user_free) = probe_while_queued(
        &app,
        held,
        app.verify_now(&login_id, &token, &e.secret),
        rows_free(&app, "users"),
    )
    .await;
    // Waiting for the login, the verify already holds the user's row.
    assert!(
        !user_free,
        "the verify waited for the login before locking the user"
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[actix_web::test]
async fn an_admin_reset_locks_the_users_row_before_their_factors_and_logins() {
    let (app, _admin_user, admin) = TestApp::with_admin("acme").await;
    let u = User::new("acme", "u1");
    app.enroll_via_me(&u).await;
    app.advance(30);
    let open = app.start_login(&u).await;
    let (open_id, _) = login_of(&open);

    let held = holding_user(&app, "NO KEY UPDATE").await;
    let others = async {
        let factors = rows_free(&app, "totp_factors").await;
        let login = can_lock(
            &app,
            &format!("SELECT 1 FROM logins WHERE login_id = '{open_id}' FOR NO KEY UPDATE NOWAIT"),
        )
        .await;
        (factors, login)
    };
    let (r, (factors_free, login_free)) = probe_while_queued(
        &app,
        held,
        app.delete("/v1/tenants/acme/users/u1/totp", Some(&admin.access_token)),
        others,
    )
    .await;
    // Queued on the user's row, the reset has touched nothing else of the user yet.
    assert!(
        factors_free,
        "the reset held the factors while waiting for the user"
    );
    assert!(
        login_free,
        "the reset held a login while waiting for the user"
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.factor_rows("u1").await, 0);
}

#[actix_web::test]
async fn deleting_a_user_locks_their_row_before_their_remembered_browsers() {
    let (app, _admin_user, admin) = TestApp::with_admin("acme").await;
    app.set_policy(
        "acme",
        &admin.access_token,
        serde_json::json!({"remember_device_days": 30}),
    )
    .await;
    let (u, e) = app.enrolled("acme", "u1").await;
    app.remember_browser(&u, &e.secret).await;

    // A sign-in's foreign-key lock on the user (a login being inserted) holds the row.
    // Queued on the user's row, the delete has not revoked the browsers yet.
    queued_before(
        &app,
        "KEY SHARE",
        app.delete("/v1/tenants/acme/users/u1", Some(&app.service_key)),
        "remembered_devices",
        204,
        "the delete held the devices while waiting for the user",
    )
    .await;
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM remembered_devices")
            .await,
        0
    );
}

#[actix_web::test]
async fn a_step_up_by_token_alone_locks_the_users_row_before_what_it_allows() {
    // A fresh `otp` token: new recovery codes need no code.
    let (app, _, e) = TestApp::with_enrolled("acme", "u1").await;
    queued_before(
        &app,
        "NO KEY UPDATE",
        app.post(
            "/v1/me/recovery-codes",
            Some(&e.access_token),
            serde_json::json!({}),
        ),
        "recovery_codes",
        200,
        "the new codes replaced the old before the user was locked",
    )
    .await;
}
