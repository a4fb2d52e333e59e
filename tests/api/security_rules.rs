//! docs/API.md §6 rules the other files left unshown: step-up by what the token proves (not
//! only its age), the max-age boundary, single use of a recovery code under concurrency,
//! one lockout for a burst across instances, and the audit event's transaction.

use diesel_async::SimpleAsyncConnection;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{claims_of, code_at, wrong_code, Resp, TestApp, User};

/// `POST /v1/me/recovery-codes`, a sensitive call, with no step-up code.
async fn sensitive(app: &TestApp, token: &str) -> Resp {
    app.new_recovery_codes(token, None).await
}

/// A *recent* `["pwd"]` token of a user who has since enrolled proves no second factor:
/// every sensitive call refuses it, however fresh its `auth_time`.
#[tokio::test]
async fn a_recent_password_only_token_of_an_enrolled_user_is_refused_for_step_up() {
    let app = TestApp::spawn().await;
    let pwd = app.password_token(&User::new("acme", "jane")).await;
    assert_eq!(claims_of(&pwd)["amr"], json!(["pwd"]));
    let done = app.enroll_with_token(&pwd).await;

    // Same second: auth_time is as recent as can be, and still no step-up.
    assert_eq!(claims_of(&pwd)["auth_time"], app.now().timestamp());
    sensitive(&app, &pwd).await.problem(403, "step_up_required");
    for (method, path) in [
        (Method::DELETE, "/v1/me/totp"),
        (Method::POST, "/v1/me/totp-enrollment"),
    ] {
        app.with_code(method, path, &pwd, None)
            .await
            .problem(403, "step_up_required");
    }
    // The token from the confirmation, which holds `mfa`, passes.
    assert_eq!(sensitive(&app, &done.access_token).await.status, 200);
}

/// A sign-in with a recovery code is a second factor (`amr` holds `mfa`): it counts as a
/// recent 2FA sign-in for step-up, as §6 says of any token whose `amr` holds `mfa`.
#[tokio::test]
async fn a_recovery_code_sign_in_counts_for_step_up() {
    let (app, _, _) = TestApp::with_enforced_tenant("acme").await;
    let u = User::new("acme", "jane");
    let e = app.enroll_at_login(&u).await;
    app.advance(30);
    let r = app.recovery_sign_in(&u, &e.recovery_codes[0]).await;
    let rc = r.body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(rc)["amr"], json!(["pwd", "mfa", "rc"]));
    let fresh = sensitive(&app, rc).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
}

/// "auth_time at most 5 min old": exactly 300 s is recent, 301 s is not.
#[tokio::test]
async fn the_step_up_max_age_is_inclusive_to_the_second() {
    let (app, u, admin) = TestApp::with_admin("acme").await;
    let token = app.sign_in_with_code(&u, &admin.secret).await;
    let auth_time = claims_of(&token)["auth_time"].as_i64().unwrap();
    app.advance(300);
    assert_eq!(app.now().timestamp() - auth_time, 300);
    let at_limit = sensitive(&app, &token).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.text);
    app.advance(1);
    sensitive(&app, &token)
        .await
        .problem(403, "step_up_required");
    // The access token itself lives on (it is step-up that needs a recent 2FA).
    assert_eq!(app.get("/v1/me", Some(&token)).await.status, 200);
}

/// The same recovery code sent on two sign-ins at the same moment signs in exactly once.
#[tokio::test]
async fn one_recovery_code_sent_twice_at_once_signs_in_once() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 1000).await;
    app.enforced_tenant("acme").await;
    let u = User::new("acme", "jane");
    let e = app.enroll_at_login(&u).await;
    for round in 0..3 {
        app.advance(30);
        let a = app.challenge(&u).await;
        let b = app.challenge(&u).await;
        let body = json!({"recovery_code": e.recovery_codes[round]});
        let results = join_all([
            app.login_post(&a.0, &a.1, "recover", body.clone()),
            app.login_post(&b.0, &b.1, "recover", body.clone()),
        ])
        .await;
        let mut statuses: Vec<_> = results
            .iter()
            .map(|r| (r.status, r.body["code"].as_str().map(str::to_owned)))
            .collect();
        statuses.sort();
        assert_eq!(
            statuses,
            vec![(200, None), (400, Some("invalid_code".to_owned()))],
            "round {round}"
        );
        let left = results.iter().find(|r| r.status == 200).unwrap().body
            ["recovery_codes_remaining"]
            .clone();
        assert_eq!(left, json!(9 - round), "round {round}");
    }
    assert_eq!(app.audit_count("acme", "recovery_code.used").await, 3);
}

/// Twenty wrong codes at once, split over two instances: one lockout (one `user.locked`
/// event), five codes evaluated, the other fifteen refused unevaluated while locked.
#[tokio::test]
async fn twenty_wrong_codes_at_once_on_two_instances_lock_the_user_once() {
    let (app, app2) = TestApp::two_instances(|s| s.rate_limit_per_minute = 1000).await;
    app.enforced_tenant("acme").await;
    let u = User::new("acme", "jane");
    let e = app.enroll_at_login(&u).await;
    app.advance(30);
    let logins = app.alternating_challenges(&app2, &u).await;
    let wrong = wrong_code(&e.secret, app.now());
    let results = join_all(
        logins
            .iter()
            .map(|(inst, id, token)| inst.verify_code(id, token, &wrong)),
    )
    .await;
    let count = |status: u16, code: &str| {
        results
            .iter()
            .filter(|r| r.status == status && r.body["code"] == code)
            .count()
    };
    let all: Vec<_> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        (count(400, "invalid_code"), count(429, "too_many_attempts")),
        (5, 15),
        "{all:?}"
    );
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 5);
}

/// "An audit event in the same transaction as the change": when the audit insert fails,
/// the change is not made either, and the code it used is not used up.
#[tokio::test]
async fn a_change_whose_audit_event_fails_is_rolled_back() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let mut conn = app.db.connect().await;
    conn.batch_execute(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$; \
         CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events FOR EACH ROW \
           WHEN (NEW.type IN ('policy.updated', 'login.succeeded')) EXECUTE FUNCTION refuse_audit();",
    )
    .await
    .unwrap();

    // The policy change fails as a whole: version, switch and ETag stay.
    let r = app
        .enforce("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    r.problem(500, "internal");
    let p = app
        .get("/v1/tenants/acme/policy", Some(&admin.access_token))
        .await;
    assert_eq!(
        (p.body["enforce_mfa"].clone(), p.body["version"].clone()),
        (json!(false), json!(1)),
        "{}",
        p.text
    );
    assert_eq!(app.audit_count("acme", "policy.updated").await, 0);

    // A verify whose success cannot be audited does not sign in, and its code is not
    // spent: once the audit works again, the same code signs in.
    let u = User::first_admin("acme");
    let secret = admin.secret.clone();
    let succeeded_before = app.audit_count("acme", "login.succeeded").await;
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;
    let code = code_at(&secret, app.now());
    app.verify_code(&login_id, &token, &code)
        .await
        .problem(500, "internal");
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM logins WHERE login_id = '{login_id}' AND status = 'verification_required'"
        ))
        .await,
        1,
        "the sign-in is still waiting for its code"
    );
    conn.batch_execute("DROP TRIGGER refuse_audit ON audit_events")
        .await
        .unwrap();
    let ok = app.verify_code(&login_id, &token, &code).await;
    assert_eq!(
        ok.status, 200,
        "the rolled-back attempt spent the code: {}",
        ok.text
    );
    assert_eq!(
        app.audit_count("acme", "login.succeeded").await,
        succeeded_before + 1
    );
}

/// Token expiry is judged by the service's clock (the test's), to the second, with the
/// service's 30 s leeway for clock skew between machines.
#[tokio::test]
async fn access_tokens_expire_by_the_test_clock() {
    let app = TestApp::spawn().await;
    let token = app.password_token(&User::new("acme", "jane")).await;
    let exp = claims_of(&token)["exp"].as_i64().unwrap();
    assert_eq!(exp, app.now().timestamp() + 3600);
    app.advance(3600 + 29);
    assert_eq!(app.get("/v1/me", Some(&token)).await.status, 200);
    app.advance(1);
    app.get("/v1/me", Some(&token))
        .await
        .problem(401, "unauthenticated");
}
