//! Enrollment grace and the tenant summary (docs/API.md §13): "Set up later (N days left)",
//! the end of grace (by time, by a lower policy), voluntary enrollment inside it, the restart
//! after an admin reset, and the summary agreeing with the filtered listings at each point.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{
    claims_of, code_at, items, login_of, wrong_code, Enrolled, Resp, TestApp, User,
};
use crate::tokens::ts;

const DAY: i64 = 86_400;

/// A new app whose `acme` enforces 2FA with `grace` days; its admin.
async fn enforcing(grace: i64) -> (TestApp, User, Enrolled) {
    let app = TestApp::spawn().await;
    let (admin, e) = app.admin("acme").await;
    app.enforce(
        "acme",
        &e.access_token,
        json!({"enforce_mfa": true, "enrollment_grace_days": grace}),
    )
    .await
    .enforced();
    (app, admin, e)
}

/// [`enforcing`] with 7 days, and jane's first sign-in, which must enroll and whose grace
/// ends 7 days after it: `(app, admin, admin's enrollment, jane, the start's time, its answer)`.
async fn jane_in_grace() -> (TestApp, User, Enrolled, User, DateTime<Utc>, Resp) {
    let (app, admin, ae) = enforcing(7).await;
    let u = User::new("acme", "jane");
    let t0 = app.now();
    let started = start_in_grace_until(&app, &u, t0 + Duration::days(7)).await;
    assert_eq!(
        started.body["status"], "enrollment_required",
        "{}",
        started.text
    );
    (app, admin, ae, u, t0, started)
}

/// Starts a sign-in of `u` whose grace ends at `end`: the start's answer.
async fn start_in_grace_until(app: &TestApp, u: &User, end: DateTime<Utc>) -> Resp {
    let started = app.start_login(u).await;
    assert_eq!(ts(&started.body["grace_ends_at"]), end, "{}", started.text);
    started
}

async fn skip(app: &TestApp, started: &Resp) -> Resp {
    let (login_id, token) = login_of(started);
    app.login_post(&login_id, &token, "skip-enrollment", json!({}))
        .await
}

/// The user ids of every page of the users listing with this filter (service key).
async fn listed(app: &TestApp, tenant: &str, filter: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/tenants/{tenant}/users?mfa={filter}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&path, Some(&app.service_key)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            ids.push(item["user_id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

async fn summary(app: &TestApp, tenant: &str) -> Value {
    let path = format!("/v1/tenants/{tenant}/mfa-summary");
    app.get_ok(&path, &app.service_key).await
}

/// The summary's counts equal the listings' lengths; returns the summary.
async fn agree(app: &TestApp, tenant: &str) -> Value {
    let s = summary(app, tenant).await;
    for filter in ["enrolled", "not_enrolled", "in_grace", "overdue"] {
        let n = listed(app, tenant, filter).await.len() as i64;
        assert_eq!(s[filter].as_i64().unwrap(), n, "{filter}: {s}");
    }
    let all = listed(app, tenant, "enrolled").await.len()
        + listed(app, tenant, "not_enrolled").await.len();
    assert_eq!(s["users"].as_i64().unwrap(), all as i64, "{s}");
    s
}

#[tokio::test]
async fn day_0_skip_is_allowed_and_day_8_of_7_is_refused() {
    let (app, _, _, u, t0, started) = jane_in_grace().await;
    let r = skip(&app, &started).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "authenticated");
    assert_eq!(r.body["mfa"], "grace");
    assert_eq!(ts(&r.body["grace_ends_at"]), t0 + Duration::days(7));
    let claims = claims_of(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(app.audit_count("acme", "totp.enrollment_skipped").await, 1);
    // The login is over: its mfa token is dead.
    let (login_id, token) = login_of(&started);
    let r = app.login_view(&login_id, &token).await;
    r.problem(401, "unauthenticated");
    assert_eq!(listed(&app, "acme", "in_grace").await, vec!["jane"]);
    let s = agree(&app, "acme").await;
    assert_eq!(
        (s["in_grace"].as_i64(), s["overdue"].as_i64()),
        (Some(1), Some(0))
    );
    // The grace end shows in the listing.
    let page = app
        .get(
            "/v1/tenants/acme/users?mfa=in_grace",
            Some(&app.service_key),
        )
        .await;
    assert_eq!(
        ts(&page.body["items"][0]["grace_ends_at"]),
        t0 + Duration::days(7)
    );

    // Day 3: still in grace, the same end (it does not move with each sign-in).
    app.advance(3 * DAY);
    let started = start_in_grace_until(&app, &u, t0 + Duration::days(7)).await;
    assert_eq!(skip(&app, &started).await.status, 200);

    // Day 8: over. No grace_ends_at; the skip is refused; the user must enroll.
    app.advance(5 * DAY);
    let started = app.start_login(&u).await;
    assert_eq!(started.body["status"], "enrollment_required");
    assert!(
        started.body.get("grace_ends_at").is_none(),
        "{}",
        started.text
    );
    skip(&app, &started).await.problem(409, "invalid_state");
    assert_eq!(listed(&app, "acme", "overdue").await, vec!["jane"]);
    let page = app
        .get("/v1/tenants/acme/users?mfa=overdue", Some(&app.service_key))
        .await;
    assert!(page.body["items"][0]["grace_ends_at"].is_null());
    let s = agree(&app, "acme").await;
    assert_eq!(
        (s["in_grace"].as_i64(), s["overdue"].as_i64()),
        (Some(0), Some(1))
    );
    // Enrolling still works on that same sign-in.
    let (login_id, token) = login_of(&started);
    let m = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let secret = m.body["secret"].as_str().unwrap();
    let done = app
        .confirm_at_login(&login_id, &token, &code_at(secret, app.now()))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let s = agree(&app, "acme").await;
    assert_eq!(
        (s["in_grace"].as_i64(), s["overdue"].as_i64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn without_grace_days_the_user_must_enroll_at_once_and_is_overdue() {
    let (app, _, _) = enforcing(0).await;
    let u = User::new("acme", "jane");
    let started = app.start_login(&u).await;
    assert_eq!(started.body["status"], "enrollment_required");
    assert!(started.body.get("grace_ends_at").is_none());
    skip(&app, &started).await.problem(409, "invalid_state");
    assert_eq!(listed(&app, "acme", "overdue").await, vec!["jane"]);
    agree(&app, "acme").await;
    // Skip on a sign-in that asks for a code: invalid state too.
    let (login_id, token) = app.challenge(&User::first_admin("acme")).await;
    let r = app
        .login_post(&login_id, &token, "skip-enrollment", json!({}))
        .await;
    r.problem(409, "invalid_state");
}

#[tokio::test]
async fn lowering_the_grace_ends_it_at_once() {
    let (app, admin, ae, u, grace_start, _) = jane_in_grace().await;
    app.advance(2 * DAY);
    assert_eq!(listed(&app, "acme", "in_grace").await, vec!["jane"]);
    let fresh = app.sign_in_with_code(&admin, &ae.secret).await;
    let started = app.start_login(&u).await;
    assert!(started.body["grace_ends_at"].is_string(), "day 2 of 7");
    app.set_policy("acme", &fresh, json!({"enrollment_grace_days": 1}))
        .await;
    // Even the sign-in started under the old days cannot skip now.
    skip(&app, &started).await.problem(409, "invalid_state");
    assert!(listed(&app, "acme", "in_grace").await.is_empty());
    assert_eq!(listed(&app, "acme", "overdue").await, vec!["jane"]);
    let s = agree(&app, "acme").await;
    assert_eq!(s["overdue"], 1);
    // Raised again, the grace (from the same start) runs again.
    app.set_policy("acme", &fresh, json!({"enrollment_grace_days": 3}))
        .await;
    start_in_grace_until(&app, &u, grace_start + Duration::days(3)).await;
}

#[tokio::test]
async fn voluntary_enrollment_inside_grace_works() {
    let (app, _, _) = enforcing(7).await;
    let u = User::new("acme", "jane");
    let started = app.start_login(&u).await;
    let r = skip(&app, &started).await;
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let enrolled = app.enroll_with_token(&token).await;
    assert!(listed(&app, "acme", "in_grace").await.is_empty());
    assert!(listed(&app, "acme", "enrolled")
        .await
        .contains(&"jane".to_owned()));
    agree(&app, "acme").await;
    // Next sign-in asks for a code.
    app.sign_in_with_code(&u, &enrolled.secret).await;
}

#[tokio::test]
async fn grace_starts_afresh_after_an_admin_removes_all_factors() {
    let (app, admin, ae) = enforcing(7).await;
    let u = User::new("acme", "jane");
    app.start_login(&u).await;
    app.advance(10 * DAY);
    let e = app.enroll_at_login(&u).await;
    let _ = e;
    let fresh = app.sign_in_with_code(&admin, &ae.secret).await;
    let r = app
        .delete("/v1/tenants/acme/users/jane/totp", Some(&fresh))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let t = app.now();
    let started = start_in_grace_until(&app, &u, t + Duration::days(7)).await;
    assert_eq!(skip(&app, &started).await.status, 200);
}

#[tokio::test]
async fn the_summary_counts_equal_the_filtered_listings_with_users_in_every_state() {
    let app = TestApp::spawn().await;
    // Before enforcement: one user who will never sign in again, one who enrolled already.
    let (admin, ae) = app.admin("acme").await;
    app.start_login(&User::new("acme", "never-back")).await;
    let enrolled_user = User::new("acme", "enrolled");
    let ee = app.enroll_via_me(&enrolled_user).await;
    app.enforce(
        "acme",
        &ae.access_token,
        json!({"enforce_mfa": true, "enrollment_grace_days": 7, "remember_device_days": 30}),
    )
    .await
    .enforced();
    // Overdue: asked on day 0, nothing since.
    app.start_login(&User::new("acme", "overdue")).await;
    app.advance(8 * DAY);
    // In grace: asked on day 8.
    let started = app.start_login(&User::new("acme", "in-grace")).await;
    assert!(started.body["grace_ends_at"].is_string());
    // Exempt: a Microsoft user.
    let ms = app.start_login(&User::new("acme", "ms").microsoft()).await;
    assert_eq!(ms.body["mfa"], "exempt");
    // Locked: an enrolled user with five wrong codes.
    let locked = User::new("acme", "locked");
    let le = app.enroll_at_login(&locked).await;
    app.advance(30);
    let (login_id, token) = app.challenge(&locked).await;
    let bad = wrong_code(&le.secret, app.now());
    for _ in 0..5 {
        app.verify_code(&login_id, &token, &bad)
            .await
            .problem(400, "invalid_code");
    }
    // A remembered browser.
    app.remember_browser(&enrolled_user, &ee.secret).await;

    let s = agree(&app, "acme").await;
    assert_eq!(
        s,
        json!({"users": 7, "enrolled": 3, "not_enrolled": 4, "exempt": 1, "in_grace": 1,
               "overdue": 1, "locked": 1, "remembered_devices": 1}),
        "admin, enrolled, locked have a factor; never-back, overdue, in-grace, ms do not"
    );
    assert_eq!(listed(&app, "acme", "in_grace").await, vec!["in-grace"]);
    assert_eq!(listed(&app, "acme", "overdue").await, vec!["overdue"]);
    let page = app
        .get("/v1/tenants/acme/users?limit=200", Some(&app.service_key))
        .await;
    let locked_now = items(&page)
        .iter()
        .filter(|u| !u["locked_until"].is_null())
        .count();
    assert_eq!(locked_now as i64, s["locked"].as_i64().unwrap());
    // The admin may read it too; another tenant's admin may not; a bad filter is a 400.
    let fresh = app.sign_in_with_code(&admin, &ae.secret).await;
    let r = app.get("/v1/tenants/acme/mfa-summary", Some(&fresh)).await;
    let mut expected = s.clone();
    expected["locked"] = json!(0); // signing in took 30 s: the one-minute lockout is over
    assert_eq!(r.body, expected);
    let (_, other) = app.admin("globex").await;
    app.get("/v1/tenants/acme/mfa-summary", Some(&other.access_token))
        .await
        .problem(403, "forbidden");
    app.get("/v1/tenants/acme/users?mfa=late", Some(&app.service_key))
        .await
        .problem(400, "invalid_request");
    // Turning 2FA off: nobody is in grace or overdue any more, in both.
    app.set_policy("acme", &fresh, json!({"enforce_mfa": false}))
        .await;
    let s = agree(&app, "acme").await;
    assert_eq!(
        (s["in_grace"].as_i64(), s["overdue"].as_i64()),
        (Some(0), Some(0))
    );
}
