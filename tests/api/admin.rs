//! Tenant administration (docs/API.md §5): the user list, lost phones, lockouts, offboarding,
//! the audit trail, tenant isolation on every tenant route, and encryption key rotation.

use std::collections::{BTreeSet, HashSet};

use chrono::SecondsFormat;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{code_at, item, items, login_of, wrong_code, Resp, TestApp, User};
use crate::tokens::ts;

/// The field names of a JSON object.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn user_ids(r: &Resp) -> Vec<String> {
    items(r)
        .iter()
        .map(|i| i["user_id"].as_str().unwrap().to_owned())
        .collect()
}

/// `path` (with its query) for the page after `cursor`, or the first page.
fn page(path: &str, cursor: &Option<String>) -> String {
    match cursor {
        None => path.to_owned(),
        Some(c) => format!("{path}&cursor={c}"),
    }
}

fn next_cursor(r: &Resp) -> Option<String> {
    match r.body.get("next_cursor") {
        None => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(other) => panic!("next_cursor must be absent or a string, got {other}"),
    }
}

/// `GET /v1/tenants/acme/users?{query}` as the holder of `token`.
async fn acme_users(app: &TestApp, token: &str, query: &str) -> Resp {
    app.get(&format!("/v1/tenants/acme/users?{query}"), Some(token))
        .await
}

/// `user`'s row in [`acme_users`] with `query` (asserted `200`).
async fn acme_user_row(app: &TestApp, token: &str, query: &str, user: &str) -> Value {
    item(&acme_users(app, token, query).await, "user_id", user)
}

/// Asserts that `u1`'s row in [`acme_users`] with `query` shows them locked for a minute
/// from now.
async fn u1_locked_a_minute(app: &TestApp, token: &str, query: &str) {
    let row = acme_user_row(app, token, query, "u1").await;
    assert_eq!(
        ts(&row["locked_until"]),
        app.now() + chrono::Duration::seconds(60)
    );
}

/// `POST` to the `unlock` path as `token` (no step-up code): `204`.
async fn unlocked(app: &TestApp, unlock: &str, token: &str) {
    let r = app.with_code(Method::POST, unlock, token, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.sql_count(sql).await
}

/// Makes `u` (enrolled) lock themselves out with five wrong codes at sign-in.
async fn lock_out(app: &TestApp, u: &User, secret: &str) {
    let started = app.start_login(u).await;
    let (login_id, token) = login_of(&started);
    for _ in 0..5 {
        app.post(
            &format!("/v1/logins/{login_id}/verify"),
            Some(&token),
            json!({"code": wrong_code(secret, app.now())}),
        )
        .await
        .problem(400, "invalid_code");
    }
}

#[tokio::test]
async fn the_user_list_pages_by_id_without_loss_or_repetition_while_users_are_added() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let token = admin.access_token.as_str();
    // 23 users (ids u-02 .. u-46, even), plus the admin: 24.
    for n in (2..=46).step_by(2) {
        assert_eq!(
            app.start_login(&User::new("acme", &format!("u-{n:02}")))
                .await
                .status,
            201
        );
    }
    let mut expected: BTreeSet<String> = (2..=46).step_by(2).map(|n| format!("u-{n:02}")).collect();
    expected.insert("admin-1".into());

    let mut seen: Vec<String> = Vec::new();
    let (mut cursor, mut pages) = (None, 0);
    loop {
        let path = page("/v1/tenants/acme/users?limit=5", &cursor);
        let r = app.get(&path, Some(token)).await;
        let page = user_ids(&r);
        pages += 1;
        assert!(!page.is_empty() && page.len() <= 5, "{page:?}");
        seen.extend(page);
        cursor = next_cursor(&r);
        match pages {
            // Users added while paging: one sorting before the cursor (already passed, so
            // not shown), one after it (shown on a later page).
            1 => {
                for id in ["u-01", "u-45"] {
                    app.start_login(&User::new("acme", id)).await;
                }
                expected.insert("u-45".into());
            }
            3 => {
                for id in ["u-03", "u-47"] {
                    app.start_login(&User::new("acme", id)).await;
                }
                expected.insert("u-47".into());
            }
            _ => {}
        }
        if cursor.is_none() {
            assert!(
                r.body.as_object().unwrap().get("next_cursor").is_none(),
                "absent on the last page: {}",
                r.text
            );
            break;
        }
        assert_eq!(r.body["items"].as_array().unwrap().len(), 5, "full pages");
    }
    assert_eq!(pages, 6, "26 users in pages of 5");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, seen,
        "ascending by user id, none repeated: {seen:?}"
    );
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "none lost"
    );

    // Page boundaries: exactly `limit` users left means no further page.
    let all = acme_users(&app, token, "limit=200").await;
    assert_eq!(user_ids(&all).len(), 28);
    assert_eq!(next_cursor(&all), None);
    let r = acme_users(&app, token, "limit=28").await;
    assert_eq!((user_ids(&r).len(), next_cursor(&r)), (28, None));
    let r = acme_users(&app, token, "limit=27").await;
    let c = next_cursor(&r).expect("one more user");
    let r = acme_users(&app, token, &format!("limit=27&cursor={c}")).await;
    assert_eq!(user_ids(&r), vec!["u-47"]);
    assert_eq!(next_cursor(&r), None);
    // The default page is 50.
    let r = app.get("/v1/tenants/acme/users", Some(token)).await;
    assert_eq!((user_ids(&r).len(), next_cursor(&r)), (28, None));
    for n in 0..30 {
        app.start_login(&User::new("acme", &format!("v-{n:02}")))
            .await;
    }
    let r = app.get("/v1/tenants/acme/users", Some(token)).await;
    assert_eq!(user_ids(&r).len(), 50);
    let c = next_cursor(&r).expect("58 users");
    let r = acme_users(&app, token, &format!("cursor={c}")).await;
    assert_eq!(user_ids(&r).len(), 8);
    assert_eq!(next_cursor(&r), None);
}

#[tokio::test]
async fn the_user_list_validates_its_query_filters_on_enrollment_and_shows_every_field() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let token = admin.access_token.as_str();
    let admin_enrolled_at = app.now();
    app.advance(100);
    let e1 = User::new("acme", "e1");
    app.enroll_via_me(&e1).await;
    let e1_at = app.now();
    app.advance(100);
    let e2 = User::new("acme", "e2").microsoft();
    app.enroll_via_me(&e2).await;
    let e2_at = app.now();
    app.advance(100);
    let n1_at = app.now();
    app.password_token(&User::new("acme", "n1")).await;
    app.password_token(&User::new("acme", "n2").microsoft())
        .await;
    // A pending enrollment is not an enrollment.
    let n3 = app.password_token(&User::new("acme", "n3")).await;
    let r = app.me_enroll_start(&n3).await;
    assert_eq!(r.status, 201);
    // Another tenant's users never show.
    app.enroll_via_me(&User::new("other", "e9")).await;

    for bad in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "cursor=!!",
        "cursor=%FF%FE",
        "mfa=maybe",
        "mfa=",
    ] {
        let r = acme_users(&app, token, bad).await;
        r.problem(400, "invalid_request");
    }
    assert_eq!(
        user_ids(&acme_users(&app, token, "limit=1").await),
        vec!["admin-1"]
    );

    let enrolled = acme_users(&app, token, "mfa=enrolled").await;
    assert_eq!(user_ids(&enrolled), vec!["admin-1", "e1", "e2"]);
    assert_eq!(next_cursor(&enrolled), None);
    let not_enrolled = acme_users(&app, token, "mfa=not_enrolled").await;
    assert_eq!(user_ids(&not_enrolled), vec!["n1", "n2", "n3"]);
    // Filters page too.
    let r = acme_users(&app, token, "mfa=enrolled&limit=2").await;
    assert_eq!(user_ids(&r), vec!["admin-1", "e1"]);
    let c = next_cursor(&r).unwrap();
    let r = acme_users(&app, token, &format!("mfa=enrolled&limit=2&cursor={c}")).await;
    assert_eq!(user_ids(&r), vec!["e2"]);
    assert_eq!(next_cursor(&r), None);

    let all = items(&app.get("/v1/tenants/acme/users", Some(token)).await);
    let by_id = |id: &str| all.iter().find(|i| i["user_id"] == id).unwrap().clone();
    let e2_row = by_id("e2");
    let fields = keys(&e2_row);
    assert_eq!(
        fields,
        BTreeSet::from([
            "user_id",
            "email",
            "identity_provider",
            "mfa_enrolled",
            "mfa_factors",
            "enrolled_at",
            "last_login_at",
            "locked_until",
            "grace_ends_at"
        ])
    );
    assert_eq!(e2_row["email"], "e2@acme.example");
    assert_eq!(e2_row["identity_provider"], "microsoft");
    assert_eq!(e2_row["mfa_enrolled"], true);
    assert_eq!(e2_row["mfa_factors"], 1);
    assert_eq!(ts(&e2_row["enrolled_at"]), e2_at);
    assert_eq!(ts(&e2_row["last_login_at"]), e2_at);
    assert_eq!(e2_row["locked_until"], Value::Null);
    assert_eq!(ts(&by_id("e1")["enrolled_at"]), e1_at);
    assert_eq!(ts(&by_id("admin-1")["enrolled_at"]), admin_enrolled_at);
    let n1 = by_id("n1");
    assert_eq!(
        (
            n1["mfa_enrolled"].clone(),
            n1["enrolled_at"].clone(),
            n1["identity_provider"].clone()
        ),
        (json!(false), Value::Null, json!("local"))
    );
    assert_eq!(ts(&n1["last_login_at"]), n1_at);

    // Service keys: every tenant, or scoped to this one, may list; another scope may not.
    let scoped_here = app.scoped_key(&["other", "acme"]).await;
    let scoped_other = app.scoped_key(&["other"]).await;
    for key in [app.service_key.as_str(), scoped_here.as_str()] {
        let r = app
            .get("/v1/tenants/acme/users?mfa=not_enrolled", Some(key))
            .await;
        assert_eq!(user_ids(&r), vec!["n1", "n2", "n3"]);
    }
    app.get("/v1/tenants/acme/users", Some(&scoped_other))
        .await
        .problem(403, "forbidden");
    for cred in [Some("sk_unknown"), None] {
        app.get("/v1/tenants/acme/users", cred)
            .await
            .problem(401, "unauthenticated");
    }
}

#[tokio::test]
async fn an_admin_reset_removes_a_lost_phone_and_its_recovery_codes() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    app.set_policy("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    let u = User::new("acme", "u1");
    let e = app.enroll_at_login(&u).await;
    let factor = app
        .sql_strings("SELECT factor_id::text AS s FROM totp_factors WHERE user_id = 'u1'")
        .await;
    assert_eq!(factor.len(), 1);
    // Recovery codes belong to the user (§10): they go with the last factor.
    let codes_of_factor =
        "SELECT count(*) AS n FROM recovery_codes WHERE tenant_id = 'acme' AND user_id = 'u1'"
            .to_owned();
    assert_eq!(count(&app, &codes_of_factor).await, 10);
    // A sign-in in progress on the lost phone's factor.
    let open = app.start_login(&u).await;
    let (open_id, open_token) = login_of(&open);

    let path = "/v1/tenants/acme/users/u1/totp";
    // A service key may not reset.
    app.delete(path, Some(&app.service_key))
        .await
        .problem(401, "unauthenticated");
    let r = app.delete(path, Some(&admin.access_token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.factor_rows("u1").await, 0);
    assert_eq!(count(&app, &codes_of_factor).await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM audit_events WHERE type = 'totp.reset_by_admin' \
             AND user_id = 'u1' AND actor_id = 'admin-1'"
        )
        .await,
        1
    );
    // The open sign-in died with the factor; the recovery codes no longer work.
    let r = app
        .post(
            &format!("/v1/logins/{open_id}/verify"),
            Some(&open_token),
            json!({"code": code_at(&e.secret, app.now() + chrono::Duration::seconds(30))}),
        )
        .await;
    r.problem(401, "unauthenticated");
    // The next sign-in sets up 2FA again (the policy is on).
    app.advance(30);
    let started = app.start_login(&u).await;
    assert_eq!(
        started.body["status"], "enrollment_required",
        "{}",
        started.text
    );
    let again = app.enroll_at_login(&u).await;
    assert_ne!(again.secret, e.secret);

    // Nothing to reset: a user without a factor, an unknown user.
    let n = User::new("acme", "n1").microsoft();
    app.password_token(&n).await;
    app.delete("/v1/tenants/acme/users/n1/totp", Some(&admin.access_token))
        .await
        .problem(404, "not_found");
    app.delete(
        "/v1/tenants/acme/users/nobody/totp",
        Some(&admin.access_token),
    )
    .await
    .problem(404, "not_found");

    // Step-up: more than 300 s after the admin's own 2FA, a code is needed.
    app.advance(301);
    app.delete(path, Some(&admin.access_token))
        .await
        .problem(403, "step_up_required");
    assert_eq!(app.factor_rows("u1").await, 1);
    let code = code_at(&admin.secret, app.now());
    let r = app
        .with_code(Method::DELETE, path, &admin.access_token, Some(&code))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.factor_rows("u1").await, 0);
}

#[tokio::test]
async fn after_an_admin_reset_with_the_policy_off_the_user_is_not_challenged() {
    let (app, _, admin) = TestApp::with_admin("calm").await;
    let u = User::new("calm", "u1");
    app.enroll_via_me(&u).await;
    assert_eq!(
        app.start_login(&u).await.body["status"],
        "verification_required"
    );
    let r = app
        .delete("/v1/tenants/calm/users/u1/totp", Some(&admin.access_token))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let started = app.start_login(&u).await;
    assert_eq!(started.body["status"], "authenticated", "{}", started.text);
    assert_eq!(started.body["mfa"], "not_required");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM recovery_codes WHERE user_id = 'u1'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM recovery_codes").await,
        10,
        "only the admin's codes are left"
    );
}

#[tokio::test]
async fn an_admin_unlock_ends_a_lockout_and_resets_the_doubling() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let (u, e) = app.enrolled("acme", "u1").await;
    app.advance(30);
    lock_out(&app, &u, &e.secret).await;

    let started = app.start_login(&u).await;
    let (login_id, token) = login_of(&started);
    let r = app.verify_now(&login_id, &token, &e.secret).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(r.headers["retry-after"], "60");
    u1_locked_a_minute(&app, &admin.access_token, "mfa=enrolled").await;

    let unlock = "/v1/tenants/acme/users/u1/unlock";
    app.send(Method::POST, unlock, Some(&app.service_key), None, &[])
        .await
        .problem(401, "unauthenticated");
    unlocked(&app, unlock, &admin.access_token).await;
    let row = acme_user_row(&app, &admin.access_token, "", "u1").await;
    assert_eq!(row["locked_until"], Value::Null);
    assert_eq!(
        count(
            &app,
            "SELECT (failed_attempts + lockout_count)::bigint AS n FROM users WHERE user_id = 'u1'"
        )
        .await,
        0,
        "count and doubling reset"
    );
    // Locked again before any success: the lockout lasts 1 min again, not 2, since the
    // unlock also reset the doubling.
    lock_out(&app, &u, &e.secret).await;
    u1_locked_a_minute(&app, &admin.access_token, "").await;
    app.verify_now(&login_id, &token, &e.secret)
        .await
        .problem(429, "too_many_attempts");
    unlocked(&app, unlock, &admin.access_token).await;
    // The sign-in that was refused now goes through with the right code.
    let r = app.verify_now(&login_id, &token, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM audit_events WHERE type = 'user.unlocked' AND user_id = 'u1' \
             AND actor_id = 'admin-1' AND details->>'was_locked' = 'true'"
        )
        .await,
        2
    );

    // Unknown user; a user who is not locked (idempotent).
    app.with_code(
        Method::POST,
        "/v1/tenants/acme/users/nobody/unlock",
        &admin.access_token,
        None,
    )
    .await
    .problem(404, "not_found");
    app.password_token(&User::new("acme", "free")).await;
    let r = app
        .with_code(
            Method::POST,
            "/v1/tenants/acme/users/free/unlock",
            &admin.access_token,
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // Step-up applies to unlocking too.
    app.advance(301);
    app.with_code(Method::POST, unlock, &admin.access_token, None)
        .await
        .problem(403, "step_up_required");
    let code = code_at(&admin.secret, app.now());
    let r = app
        .with_code(Method::POST, unlock, &admin.access_token, Some(&code))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

#[tokio::test]
async fn offboarding_erases_the_user_and_keeps_the_audit_trail() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let (u, e) = app.enrolled("acme", "u1").await;
    let open = app.start_login(&u).await;
    assert_eq!(open.body["status"], "verification_required");
    let keep = User::new("acme", "u2");
    app.enroll_via_me(&keep).await;

    let rows = |table: &str, user: &str| {
        format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = 'acme' AND user_id = '{user}'")
    };
    let codes_of = |user: &str| {
        format!(
            "SELECT count(*) AS n FROM recovery_codes WHERE tenant_id = 'acme' AND user_id = '{user}'"
        )
    };
    assert_eq!(count(&app, &rows("users", "u1")).await, 1);
    assert_eq!(count(&app, &rows("totp_factors", "u1")).await, 1);
    assert_eq!(count(&app, &codes_of("u1")).await, 10);
    assert_eq!(count(&app, &rows("logins", "u1")).await, 2);
    let events_before = count(&app, &rows("audit_events", "u1")).await;
    assert!(events_before >= 4, "{events_before}");
    let all_codes = count(&app, "SELECT count(*) AS n FROM recovery_codes").await;

    let path = "/v1/tenants/acme/users/u1";
    // Only a service key whose scope covers the tenant.
    app.delete(path, Some(&admin.access_token))
        .await
        .problem(401, "unauthenticated");
    app.delete(path, None).await.problem(401, "unauthenticated");
    let other = app.scoped_key(&["other"]).await;
    app.delete(path, Some(&other))
        .await
        .problem(403, "forbidden");
    app.delete("/v1/tenants/acme/users/nobody", Some(&app.service_key))
        .await
        .problem(404, "not_found");
    assert_eq!(
        count(&app, &rows("users", "u1")).await,
        1,
        "nothing erased yet"
    );

    let scoped = app.scoped_key(&["acme"]).await;
    let r = app.delete(path, Some(&scoped)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    for table in ["users", "totp_factors", "logins"] {
        assert_eq!(count(&app, &rows(table, "u1")).await, 0, "{table}");
    }
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM recovery_codes").await,
        all_codes - 10,
        "only u1's recovery codes went"
    );
    assert_eq!(count(&app, &rows("totp_factors", "u2")).await, 1);
    assert_eq!(
        count(&app, &rows("audit_events", "u1")).await,
        events_before + 1,
        "the trail stays, plus user.deleted"
    );
    let last = app
        .sql_strings(
            "SELECT type || ' ' || actor_id AS s FROM audit_events WHERE user_id = 'u1' ORDER BY id DESC LIMIT 1",
        )
        .await;
    assert!(last[0].starts_with("user.deleted service_key:"), "{last:?}");
    app.delete(path, Some(&scoped))
        .await
        .problem(404, "not_found");
    // Their open sign-in and their tokens died with them.
    let (login_id, mfa_token) = login_of(&open);
    app.post(
        &format!("/v1/logins/{login_id}/verify"),
        Some(&mfa_token),
        json!({"code": code_at(&e.secret, app.now() + chrono::Duration::seconds(30))}),
    )
    .await
    .problem(401, "unauthenticated");
    app.get("/v1/me", Some(&e.access_token))
        .await
        .problem(401, "unauthenticated");

    // Back later, they are a new user: no factor, so (policy on) they enroll.
    app.set_policy("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    let again = app.enroll_at_login(&u).await;
    assert_ne!(again.secret, e.secret);
    let view = app.get("/v1/me", Some(&again.access_token)).await;
    assert_eq!(view.body["mfa"]["recovery_codes_remaining"], 10);
}

#[tokio::test]
async fn the_audit_trail_is_newest_first_filtered_and_paged_without_loss() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let token = admin.access_token.as_str();
    // Events at several times: sign-ins of ten users, one with a user agent.
    for n in 0..10 {
        app.advance(7);
        let u = User::new("acme", &format!("u{n}"));
        let r = app
            .send(
                Method::POST,
                "/v1/logins",
                Some(&app.service_key),
                Some(u.login_body()),
                &[("User-Agent", "itest-agent/1.0")],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let e = app.enroll_via_me(&User::new("acme", "u3")).await;
    let since = app.now();
    let challenged = app.start_login(&User::new("acme", "u3")).await;
    let (_, mfa_token) = login_of(&challenged);
    app.advance(30);
    app.sign_in_with_code(&User::new("acme", "u3"), &e.secret)
        .await;
    // Another tenant's events never show.
    app.start_login(&User::new("other", "x1")).await;

    let all = items(
        &app.get("/v1/tenants/acme/audit-events?limit=200", Some(token))
            .await,
    );
    let db_total = count(
        &app,
        "SELECT count(*) AS n FROM audit_events WHERE tenant_id = 'acme'",
    )
    .await;
    assert_eq!(all.len() as i64, db_total);
    let key = |i: &Value| {
        (
            ts(&i["at"]),
            i["id"].as_str().unwrap().parse::<i64>().unwrap(),
        )
    };
    for w in all.windows(2) {
        assert!(
            key(&w[0]) > key(&w[1]),
            "newest first: {} then {}",
            w[0],
            w[1]
        );
    }
    let newest = &all[0];
    assert_eq!(newest["type"], "login.succeeded");
    assert_eq!(newest["user_id"], "u3");
    let fields = keys(newest);
    assert_eq!(
        fields,
        BTreeSet::from([
            "id",
            "type",
            "at",
            "user_id",
            "actor_id",
            "surface",
            "ip",
            "user_agent",
            "details"
        ])
    );
    let started = all
        .iter()
        .find(|i| i["type"] == "login.started" && i["user_id"] == "u5")
        .unwrap();
    assert_eq!(started["actor_id"], "u5");
    assert_eq!(started["surface"], "app");
    assert_eq!(started["ip"], "127.0.0.1");
    assert_eq!(started["user_agent"], "itest-agent/1.0");
    assert_eq!(started["details"]["status"], "authenticated");
    assert!(started["details"]["login_id"].is_string());
    // No token or secret in the trail.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&mfa_token) && !text.contains(&e.secret));
    assert!(!text.contains(&admin.access_token));

    // Pages of 7, while new events are written between pages.
    let mut seen: Vec<Value> = Vec::new();
    let (mut cursor, mut pages) = (None, 0);
    loop {
        let path = page("/v1/tenants/acme/audit-events?limit=7", &cursor);
        let r = app.get(&path, Some(token)).await;
        seen.extend(items(&r));
        pages += 1;
        // New events: some at the same instant, some later.
        app.start_login(&User::new("acme", &format!("late{pages}")))
            .await;
        if pages % 2 == 0 {
            app.advance(1);
        }
        cursor = next_cursor(&r);
        if cursor.is_none() {
            assert!(r.body.as_object().unwrap().get("next_cursor").is_none());
            break;
        }
        assert_eq!(r.body["items"].as_array().unwrap().len(), 7);
    }
    let ids: Vec<&str> = seen.iter().map(|i| i["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "none repeated");
    assert_eq!(
        seen, all,
        "exactly the events that existed when paging began"
    );
    assert_eq!(pages, all.len().div_ceil(7));

    // Filters.
    let only = items(
        &app.get(
            "/v1/tenants/acme/audit-events?type=login.succeeded&limit=200",
            Some(token),
        )
        .await,
    );
    assert!(!only.is_empty());
    assert!(only.iter().all(|i| i["type"] == "login.succeeded"));
    assert_eq!(
        only.len() as i64,
        count(
            &app,
            "SELECT count(*) AS n FROM audit_events WHERE tenant_id = 'acme' AND type = 'login.succeeded'"
        )
        .await
    );
    let u3 = items(
        &app.get("/v1/tenants/acme/audit-events?user_id=u3", Some(token))
            .await,
    );
    assert!(u3.iter().all(|i| i["user_id"] == "u3"));
    let u3_types: BTreeSet<&str> = u3.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert!(u3_types.is_superset(&BTreeSet::from([
        "login.started",
        "login.succeeded",
        "totp.enrollment_started",
        "totp.enrolled"
    ])));
    let since_q = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    let recent = items(
        &app.get(
            &format!("/v1/tenants/acme/audit-events?since={since_q}&user_id=u3"),
            Some(token),
        )
        .await,
    );
    assert!(!recent.is_empty());
    assert!(recent.iter().all(|i| ts(&i["at"]) >= since));
    assert_eq!(
        recent.len() as i64,
        count(
            &app,
            &format!(
                "SELECT count(*) AS n FROM audit_events WHERE tenant_id = 'acme' AND user_id = 'u3' AND at >= '{since_q}'"
            )
        )
        .await
    );
    let both = items(
        &app.get(
            "/v1/tenants/acme/audit-events?type=totp.enrolled&user_id=u3",
            Some(token),
        )
        .await,
    );
    assert_eq!(both.len(), 1);
    let none = app
        .get(
            "/v1/tenants/acme/audit-events?type=user.deleted",
            Some(token),
        )
        .await;
    assert!(items(&none).is_empty());
    assert_eq!(next_cursor(&none), None);

    for bad in [
        "type=login.nope",
        "type=",
        "since=yesterday",
        "user_id=has%20space",
        "limit=0",
        "limit=201",
        "cursor=!!",
        "cursor=eDp5",
    ] {
        app.get(&format!("/v1/tenants/acme/audit-events?{bad}"), Some(token))
            .await
            .problem(400, "invalid_request");
    }
    // Service keys read it too, within their scope.
    let r = app
        .get(
            "/v1/tenants/acme/audit-events?limit=1",
            Some(&app.service_key),
        )
        .await;
    assert_eq!(items(&r).len(), 1);
    let other = app.scoped_key(&["other"]).await;
    app.get("/v1/tenants/acme/audit-events", Some(&other))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn no_tenant_route_lets_another_tenant_in() {
    let (app, _, admin_a) = TestApp::with_admin("ta").await;
    // Both tenants have an admin called admin-1: only the token's tenant counts.
    let (_, admin_b) = app.admin("tb").await;
    let b1 = User::new("tb", "b1");
    let b1_e = app.enroll_via_me(&b1).await;
    app.advance(30);
    lock_out(&app, &b1, &b1_e.secret).await;
    let a_key = app.scoped_key(&["ta"]).await;
    let b_policy = app
        .get("/v1/tenants/tb/policy", Some(&admin_b.access_token))
        .await;
    let b_etag = b_policy.headers["etag"].to_str().unwrap().to_owned();
    let b_events = app
        .sql_count("SELECT count(*) AS n FROM audit_events WHERE tenant_id = 'tb'")
        .await;

    // Every route that takes a tenant, by an admin of A (with a valid code of A, even).
    let a_code = code_at(&admin_a.secret, app.now());
    let routes = |t: &str, u: &str| -> Vec<(Method, String)> {
        vec![
            (Method::GET, format!("/v1/tenants/{t}/policy")),
            (Method::PUT, format!("/v1/tenants/{t}/policy")),
            (Method::GET, format!("/v1/tenants/{t}/users")),
            (Method::DELETE, format!("/v1/tenants/{t}/users/{u}/totp")),
            (Method::POST, format!("/v1/tenants/{t}/users/{u}/unlock")),
            (Method::GET, format!("/v1/tenants/{t}/audit-events")),
        ]
    };
    let body = |m: &Method| (*m == Method::PUT).then(|| json!({"enforce_mfa": true}));
    // Every call of `calls` as `token` (with `If-Match: etag`) is refused with `code`.
    let refused =
        async |calls: Vec<(Method, String)>, token: &str, etag: &str, code: (u16, &str)| {
            for (m, path) in calls {
                let if_match = [("If-Match", etag)];
                let r = app
                    .send(m.clone(), &path, Some(token), body(&m), &if_match)
                    .await;
                r.problem(code.0, code.1);
            }
        };
    for (m, path) in routes("tb", "b1") {
        for code in [None, Some(a_code.as_str())] {
            let mut headers = vec![("If-Match", b_etag.as_str())];
            if let Some(c) = code {
                headers.push(("X-MFA-Code", c));
            }
            app.send(
                m.clone(),
                &path,
                Some(&admin_a.access_token),
                body(&m),
                &headers,
            )
            .await
            .problem(403, "forbidden");
        }
    }
    // Offboarding takes a service key only; a scoped key of A may not touch B.
    app.delete("/v1/tenants/tb/users/b1", Some(&admin_a.access_token))
        .await
        .problem(401, "unauthenticated");
    for path in [
        "/v1/tenants/tb/policy",
        "/v1/tenants/tb/users",
        "/v1/tenants/tb/audit-events",
    ] {
        app.get(path, Some(&a_key)).await.problem(403, "forbidden");
        assert_eq!(
            app.get(path.replace("tb", "ta").as_str(), Some(&a_key))
                .await
                .status,
            200
        );
    }
    app.delete("/v1/tenants/tb/users/b1", Some(&a_key))
        .await
        .problem(403, "forbidden");
    // A service key is no admin for the sensitive calls.
    let mut writes = routes("tb", "b1");
    writes.retain(|(m, _)| *m != Method::GET);
    refused(writes, &app.service_key, &b_etag, (401, "unauthenticated")).await;
    // B is untouched: policy, factor, lockout, user, trail.
    let after = app
        .get("/v1/tenants/tb/policy", Some(&admin_b.access_token))
        .await;
    assert_eq!(after.body, b_policy.body);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM totp_factors WHERE tenant_id = 'tb' AND user_id = 'b1'"
        )
        .await,
        1
    );
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM users WHERE tenant_id = 'tb' AND user_id = 'b1' AND locked_until IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM audit_events WHERE tenant_id = 'tb'")
            .await,
        b_events
    );

    // A user of A who is not an admin: forbidden on A's own routes, with or without 2FA.
    let a1 = User::new("ta", "a1");
    let a1_pwd = app.password_token(&a1).await;
    let a1_otp = app.enroll_via_me(&User::new("ta", "a2")).await.access_token;
    let a_etag = app
        .get("/v1/tenants/ta/policy", Some(&admin_a.access_token))
        .await
        .headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for token in [&a1_pwd, &a1_otp] {
        refused(routes("ta", "a1"), token, &a_etag, (403, "forbidden")).await;
    }
    // An admin of A without a second factor: mfa_required_for_admin everywhere.
    let admin_pwd = app
        .password_token(&User::new("ta", "admin-2").roles(&["admin"]))
        .await;
    let no_2fa = (403, "mfa_required_for_admin");
    refused(routes("ta", "a1"), &admin_pwd, &a_etag, no_2fa).await;
    // An admin whose token says `mfa` but whose factor is gone.
    let admin3 = User::new("ta", "admin-3").roles(&["admin"]);
    let admin3_e = app.enroll_via_me(&admin3).await;
    assert_eq!(
        app.get("/v1/tenants/ta/policy", Some(&admin3_e.access_token))
            .await
            .status,
        200
    );
    let r = app
        .delete("/v1/me/totp", Some(&admin3_e.access_token))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    refused(routes("ta", "a1"), &admin3_e.access_token, &a_etag, no_2fa).await;
    // And A's own admin is fine on A.
    assert_eq!(
        app.get("/v1/tenants/ta/users", Some(&admin_a.access_token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn key_rotation_re_encrypts_every_secret_and_sign_in_keeps_working() {
    use mspbots_mfa::crypto::keyring::KeyRing;

    let app = TestApp::spawn().await;
    let mut users = Vec::new();
    for (t, id) in [
        ("t1", "u1"),
        ("t1", "u2"),
        ("t1", "u3"),
        ("t2", "u1"),
        ("t2", "u9"),
    ] {
        let u = User::new(t, id);
        let e = app.enroll_via_me(&u).await;
        users.push((u, e));
    }
    // One enrollment still pending.
    let pending_user = User::new("t2", "p1");
    let pending_token = app.password_token(&pending_user).await;
    let r = app.me_enroll_start(&pending_token).await;
    assert_eq!(r.status, 201);
    let pending_secret = r.body["secret"].as_str().unwrap().to_owned();

    let old_spec = std::fs::read_to_string(app.data_dir.join("encryption-keys"))
        .unwrap()
        .trim()
        .to_owned();
    let old_id = old_spec.split(':').next().unwrap().to_owned();
    let hash_key = std::fs::read_to_string(app.data_dir.join("hash-key"))
        .unwrap()
        .trim()
        .to_owned();
    let new_key = KeyRing::generate_spec("new");
    let new_spec = format!("{new_key},{old_spec}");
    let ring = KeyRing::parse(&new_spec).unwrap();
    let app_ref = &app;
    let snapshot = || async move {
        app_ref
            .sql_strings(
                "SELECT factor_id::text || ' ' || key_id || ' ' || encode(nonce, 'hex') || ' ' \
             || encode(ciphertext, 'hex') AS s FROM totp_factors ORDER BY tenant_id, factor_id",
            )
            .await
    };
    let before = snapshot().await;
    assert_eq!(before.len(), 6);
    assert!(before
        .iter()
        .all(|r| r.split(' ').nth(1) == Some(old_id.as_str())));

    // A ring without the old key cannot rotate, and changes nothing.
    let wrong = KeyRing::parse(&KeyRing::generate_spec("stranger")).unwrap();
    let mut conn = app.db.connect().await;
    let err = mspbots_mfa::services::rotation::rotate(&mut conn, &wrong, 2)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&old_id), "{err}");
    assert_eq!(snapshot().await, before);

    let done = mspbots_mfa::services::rotation::rotate(&mut conn, &ring, 2)
        .await
        .unwrap();
    assert_eq!(done, 6, "every secret, active and pending, in batches of 2");
    let after = snapshot().await;
    assert_eq!(after.len(), 6);
    for (b, a) in before.iter().zip(&after) {
        let (b, a): (Vec<&str>, Vec<&str>) = (b.split(' ').collect(), a.split(' ').collect());
        assert_eq!(a[0], b[0], "same factor");
        assert_eq!(a[1], "new");
        assert_ne!((a[2], a[3]), (b[2], b[3]), "new nonce and ciphertext");
    }
    // Again: nothing left to do, nothing changes.
    let again = mspbots_mfa::services::rotation::rotate(&mut conn, &ring, 2)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(snapshot().await, after);

    // A second instance on the same database with the new ring (and the same hash and
    // signing keys) signs everybody in.
    let signing = app.data_dir.join("signing-key.pem");
    let app2 = TestApp::spawn_on(&app.db.url, |s| {
        s.encryption_keys = Some(SecretString::from(new_spec.clone()));
        s.hash_key = Some(SecretString::from(hash_key.clone()));
        s.signing_keys = vec![signing.clone()];
    })
    .await;
    app2.clock.set(app.now());
    for (u, e) in &users {
        let token = app2.sign_in_with_code(u, &e.secret).await;
        let me = app2.get("/v1/me", Some(&token)).await;
        assert_eq!(me.body["mfa"]["enrolled"], true, "{}", me.text);
    }
    // The pending enrollment, sealed under the old key and rotated, can be confirmed.
    let r = app2
        .me_enroll_confirm(&pending_token, &code_at(&pending_secret, app2.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(snapshot()
        .await
        .iter()
        .all(|r| r.split(' ').nth(1) == Some("new")));
    // New enrollments are sealed under the new key.
    let fresh = User::new("t1", "late");
    app2.enroll_via_me(&fresh).await;
    assert_eq!(
        app2.sql_count(
            "SELECT count(*) AS n FROM totp_factors WHERE user_id = 'late' AND key_id = 'new'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_token_minted_before_a_demotion_or_offboarding_administers_nothing() {
    let (app, admin, enrolled) = TestApp::with_admin("acme").await;
    let policy = "/v1/tenants/acme/policy";
    assert_eq!(
        app.get(policy, Some(&enrolled.access_token)).await.status,
        200
    );
    // The primary account system now says the user is no longer an admin: the next
    // sign-in refreshes the user's roles, and the old token (still carrying "admin") stops
    // working at once instead of when it expires.
    let demoted = User {
        roles: vec![],
        ..admin.clone()
    };
    let r = app.start_login(&demoted).await;
    assert_eq!(r.body["status"], "verification_required", "{}", r.body);
    app.get(policy, Some(&enrolled.access_token))
        .await
        .problem(403, "forbidden");
    // Promoted again: the same token works again (it still proves 2FA).
    assert_eq!(app.start_login(&admin).await.status, 201);
    assert_eq!(
        app.get(policy, Some(&enrolled.access_token)).await.status,
        200
    );
    // Offboarded: the token is worthless for administration.
    let r = app
        .delete("/v1/tenants/acme/users/admin-1", Some(&app.service_key))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.get(policy, Some(&enrolled.access_token))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn the_v1_1_policy_fields_default_change_one_at_a_time_and_are_audited() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let p = app
        .get("/v1/tenants/acme/policy", Some(&admin.access_token))
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["max_factors_per_user"], 5);
    assert_eq!(p.body["remember_device_days"], 0);
    assert_eq!(p.body["enrollment_grace_days"], 0);

    // Every field is optional: this changes the grace only and keeps the switch off.
    let r = app
        .set_policy(
            "acme",
            &admin.access_token,
            json!({"enrollment_grace_days": 7}),
        )
        .await;
    assert_eq!(r.body["enforce_mfa"], false);
    assert_eq!(r.body["enrollment_grace_days"], 7);
    assert_eq!(r.body["max_factors_per_user"], 5);
    assert_eq!(r.body["version"], 2);

    for (field, bad) in [
        ("max_factors_per_user", json!(0)),
        ("max_factors_per_user", json!(11)),
        ("remember_device_days", json!(91)),
        ("enrollment_grace_days", json!(-1)),
        ("remember_device_days", json!("30")),
        ("enrollment_grace_days", json!(1.5)),
    ] {
        let r = app
            .enforce("acme", &admin.access_token, json!({ field: bad }))
            .await;
        r.problem(400, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
    }
    // The body is required even though each field is optional.
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = app
        .send(
            Method::PUT,
            "/v1/tenants/acme/policy",
            Some(&admin.access_token),
            None,
            &[("If-Match", &etag)],
        )
        .await;
    r.problem(400, "invalid_request");
    let after = app
        .get("/v1/tenants/acme/policy", Some(&admin.access_token))
        .await;
    assert_eq!(after.body["version"], 2, "bad input changed nothing");

    app.set_policy(
        "acme",
        &admin.access_token,
        json!({"max_factors_per_user": 2, "remember_device_days": 30}),
    )
    .await;
    let trail = app
        .get(
            "/v1/tenants/acme/audit-events?type=policy.updated",
            Some(&admin.access_token),
        )
        .await;
    let newest = &items(&trail)[0]["details"];
    assert_eq!(newest["before"]["max_factors_per_user"], 5);
    assert_eq!(newest["after"]["max_factors_per_user"], 2);
    assert_eq!(newest["before"]["remember_device_days"], 0);
    assert_eq!(newest["after"]["remember_device_days"], 30);
    assert_eq!(newest["after"]["enrollment_grace_days"], 7);
}

/// The schema's form of `X-MFA-Code` holds wherever it is sent: a user without a factor needs
/// no step-up, and a malformed code is still `400`, never silently ignored (issue 23 §4).
#[tokio::test]
async fn a_malformed_step_up_code_is_refused_even_where_no_step_up_is_needed() {
    let app = TestApp::spawn().await;
    let token = app.password_token(&User::new("acme", "n1")).await;
    for path in ["/v1/me/totp-enrollment", "/v1/me/factors"] {
        for bad in ["", "12ab", "1234567"] {
            app.send(
                Method::POST,
                path,
                Some(&token),
                Some(Value::Null),
                &[("X-MFA-Code", bad)],
            )
            .await
            .problem(400, "invalid_request");
        }
    }
    let r = app
        .send(
            Method::POST,
            "/v1/me/factors",
            Some(&token),
            Some(Value::Null),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}
