//! Re-authentication in one call (docs/API.md §17, §21): `POST /v1/me/reauthenticate` with a
//! TOTP code or a recovery code, through the one attempt gate; the token it mints is recent
//! for step-up while the old one is not. Also the page-facing fields of §21 (`GET
//! /v1/logins/{login_id}` and `GET /v1/me`). Real Postgres, injected clock.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{code_at, login_of, retry_after, wrong_code, Resp, TestApp, User};
use crate::tokens::{jwks_claims, ts};

const PATH: &str = "/v1/me/reauthenticate";
/// A sensitive call (step-up) that changes nothing but the recovery codes.
const SENSITIVE: &str = "/v1/me/recovery-codes";

async fn reauth(app: &TestApp, token: &str, body: Value) -> Resp {
    app.post(PATH, Some(token), body).await
}

/// A sensitive call with the token alone (no `X-MFA-Code`).
async fn sensitive(app: &TestApp, token: &str) -> Resp {
    app.with_code(Method::POST, SENSITIVE, token, None).await
}

async fn failed_attempts(app: &TestApp, u: &User) -> i64 {
    app.user_failures(&u.tenant, &u.id).await
}

/// The `details` of the user's events of this type, oldest first.
async fn details(app: &TestApp, u: &User, kind: &str) -> Vec<Value> {
    app.sql_strings(&format!(
        "SELECT details::text AS s FROM audit_events WHERE tenant_id = '{}' AND user_id = '{}' \
         AND type = '{kind}' ORDER BY id",
        u.tenant, u.id
    ))
    .await
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect()
}

#[tokio::test]
async fn a_code_mints_a_recent_otp_token_and_the_old_token_stays_valid_but_not_recent() {
    let (app, u, e) = TestApp::with_enrolled("acme", "jane").await;
    let factors = app.get("/v1/me/factors", Some(&e.access_token)).await;
    let factor_id = factors.body["items"][0]["factor_id"].clone();
    app.advance(301);
    let old = e.access_token;
    sensitive(&app, &old).await.problem(403, "step_up_required");
    let signed_in = app.audit_count("acme", "login.succeeded").await;

    let r = reauth(&app, &old, json!({"code": code_at(&e.secret, app.now())})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    let new = r.body["access_token"].as_str().unwrap().to_owned();
    let claims = jwks_claims(&app, &new, "mspbots-app").await;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["auth_time"], json!(app.now().timestamp()));
    assert_eq!(claims["sub"], "jane");
    assert_eq!(claims["tid"], "acme");

    // Audited as a re-authentication, not a sign-in.
    let events = details(&app, &u, "user.reauthenticated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["method"], "totp");
    assert_eq!(events[0]["factor_id"], factor_id);
    assert_eq!(app.audit_count("acme", "login.succeeded").await, signed_in);

    // Several sensitive calls with the new token, no code; the old token works but is not
    // recent.
    for _ in 0..2 {
        let s = sensitive(&app, &new).await;
        assert_eq!(s.status, 200, "{}", s.text);
    }
    assert_eq!(app.get("/v1/me", Some(&old)).await.status, 200);
    sensitive(&app, &old).await.problem(403, "step_up_required");
    // Recent for MFA_STEP_UP_MAX_AGE only.
    app.advance(300);
    assert_eq!(sensitive(&app, &new).await.status, 200);
    app.advance(1);
    sensitive(&app, &new).await.problem(403, "step_up_required");
}

#[tokio::test]
async fn a_recovery_code_is_spent_audited_and_leaves_remembered_devices_alone() {
    let app = TestApp::spawn().await;
    let admin = app
        .admin_with_policy("acme", json!({"remember_device_days": 30}))
        .await;
    // A webhook may subscribe to the new audit type (§21).
    let hook =
        json!({"url": "https://hooks.acme.example/mfa", "event_types": ["user.reauthenticated"]});
    let r = app
        .post("/v1/tenants/acme/webhooks", Some(&admin.access_token), hook)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (u, e) = app.enrolled("acme", "jane").await;
    // Jane's browser is remembered at a sign-in.
    let device = app.remember_browser(&u, &e.secret).await;
    let signed_in = app.audit_count("acme", "login.succeeded").await;

    app.advance(301);
    let code = &e.recovery_codes[0];
    let r = reauth(&app, &e.access_token, json!({"recovery_code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["access_token"].as_str().unwrap().to_owned();
    let claims = jwks_claims(&app, &new, "mspbots-app").await;
    assert_eq!(claims["amr"], json!(["pwd", "mfa", "rc"]));
    assert_eq!(claims["auth_time"], json!(app.now().timestamp()));
    assert_eq!(app.audit_count("acme", "recovery_code.used").await, 1);
    let events = details(&app, &u, "user.reauthenticated").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["method"], "recovery_code");
    assert!(events[0].get("factor_id").is_none(), "{}", events[0]);
    assert_eq!(app.audit_count("acme", "login.succeeded").await, signed_in);
    let queued = "SELECT count(*) AS n FROM webhook_deliveries";
    assert_eq!(app.sql_count(queued).await, 1);
    let me = app.get("/v1/me", Some(&new)).await;
    assert_eq!(me.body["mfa"]["recovery_codes_remaining"], 9);

    // The code is used up: a second use is a wrong code, counted.
    reauth(&app, &new, json!({"recovery_code": code}))
        .await
        .problem(400, "invalid_code");
    assert_eq!(failed_attempts(&app, &u).await, 1);
    assert_eq!(app.audit_count("acme", "recovery_code.failed").await, 1);

    // The remembered browser still stands in for the code.
    assert_eq!(app.audit_count("acme", "device.revoked").await, 0);
    let devices = app.get("/v1/me/devices", Some(&new)).await;
    assert_eq!(devices.body["items"].as_array().unwrap().len(), 1);
    let mut b = u.login_body();
    b["device_token"] = json!(device);
    let started = app.post("/v1/logins", Some(&app.service_key), b).await;
    assert_eq!(started.body["mfa"], "remembered", "{}", started.text);
}

#[tokio::test]
async fn wrong_codes_count_and_lock_and_a_reused_code_does_not() {
    let (app, u, e) = TestApp::with_enrolled("acme", "jane").await;
    let token = e.access_token.clone();

    // The confirming code's step is used: code_reused, not counted.
    reauth(&app, &token, json!({"code": code_at(&e.secret, app.now())}))
        .await
        .problem(400, "code_reused");
    assert_eq!(failed_attempts(&app, &u).await, 0);
    assert_eq!(app.audit_count("acme", "totp.code_reused").await, 1);

    for i in 1..=5 {
        let wrong = wrong_code(&e.secret, app.now());
        reauth(&app, &token, json!({"code": wrong}))
            .await
            .problem(400, "invalid_code");
        if i < 5 {
            assert_eq!(failed_attempts(&app, &u).await, i);
        }
    }
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 5);
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);

    // Locked: a right code, a recovery code, well-formed bodies, all 429.
    app.advance(30);
    let r = reauth(&app, &token, json!({"code": code_at(&e.secret, app.now())})).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(retry_after(&r), 30);
    let rc = json!({"recovery_code": e.recovery_codes[0]});
    reauth(&app, &token, rc.clone())
        .await
        .problem(429, "too_many_attempts");
    assert_eq!(app.audit_count("acme", "recovery_code.used").await, 0);
    // A shape error is still a shape error (§21: step 2 before step 4).
    reauth(&app, &token, json!({}))
        .await
        .problem(400, "invalid_request");

    // After the lockout the right code works again.
    app.advance(30);
    let r = reauth(&app, &token, json!({"code": code_at(&e.secret, app.now())})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(failed_attempts(&app, &u).await, 0);
    assert_eq!(app.audit_count("acme", "user.reauthenticated").await, 1);
}

#[tokio::test]
async fn no_proof_or_two_proofs_or_a_malformed_one_is_400_and_not_counted() {
    let (app, u, e) = TestApp::with_enrolled("acme", "jane").await;
    let code = code_at(&e.secret, app.now() + Duration::seconds(30));
    let rc = e.recovery_codes[0].clone();
    let bodies = [
        json!({}),
        json!({"code": code, "recovery_code": rc}),
        json!({"code": null, "recovery_code": null}),
        json!({"code": "12ab"}),
        json!({"code": "1234567"}),
        json!({"recovery_code": "not a code"}),
        json!({"code": 123456}),
        json!({"code": code, "extra": true}),
        json!(["123456"]),
    ];
    for b in bodies {
        let r = reauth(&app, &e.access_token, b.clone()).await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        r.problem(400, "invalid_request");
    }
    // An empty body reads as {}: no proof.
    let r = app
        .send(Method::POST, PATH, Some(&e.access_token), None, &[])
        .await;
    r.problem(400, "invalid_request");
    assert_eq!(failed_attempts(&app, &u).await, 0);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 0);
    assert_eq!(app.audit_count("acme", "recovery_code.failed").await, 0);
    assert_eq!(app.audit_count("acme", "recovery_code.used").await, 0);
    // Without an access token: 401.
    app.post(PATH, None, json!({"code": code}))
        .await
        .problem(401, "unauthenticated");
    let (_, mfa_token) = login_of(&app.start_login(&u).await);
    app.post(PATH, Some(&mfa_token), json!({"code": code}))
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn the_per_ip_limit_comes_before_the_shape() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 3).await;
    let u = User::new("acme", "jane");
    // The enrollment's confirmation is the first request with a proof.
    let e = app.enroll_via_me(&u).await;
    for _ in 0..2 {
        reauth(&app, &e.access_token, json!({}))
            .await
            .problem(400, "invalid_request");
    }
    reauth(&app, &e.access_token, json!({}))
        .await
        .problem(429, "too_many_attempts");
}

#[tokio::test]
async fn a_locked_user_gets_429_before_the_409_of_a_user_without_factors() {
    let (app, _, e) = TestApp::with_enrolled("acme", "jane").await;
    for _ in 0..5 {
        let wrong = wrong_code(&e.secret, app.now());
        reauth(&app, &e.access_token, json!({"code": wrong}))
            .await
            .problem(400, "invalid_code");
    }
    // The token is still recent, so Jane may remove her only factor (2FA not enforced).
    let r = app
        .with_code(Method::DELETE, "/v1/me/totp", &e.access_token, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let code = json!({"code": code_at(&e.secret, app.now() + Duration::seconds(30))});
    reauth(&app, &e.access_token, code.clone())
        .await
        .problem(429, "too_many_attempts");
    app.advance(60);
    reauth(&app, &e.access_token, code.clone())
        .await
        .problem(409, "invalid_state");
    // Not counted: the lockout did not start again.
    reauth(&app, &e.access_token, code)
        .await
        .problem(409, "invalid_state");
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 5);

    // A user who never had a factor, with a password-only token.
    let v = User::new("acme", "vic");
    let token = app.password_token(&v).await;
    reauth(&app, &token, json!({"recovery_code": "abcde-fghjk"}))
        .await
        .problem(409, "invalid_state");
}

#[tokio::test]
async fn the_pages_get_remember_device_days_and_grace_ends_at() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let body = json!({"enforce_mfa": true, "enrollment_grace_days": 7, "remember_device_days": 30});
    app.enforce("acme", &admin.access_token, body)
        .await
        .enforced();
    let u = User::new("acme", "jane");
    let started = app.start_login(&u).await;
    assert_eq!(
        started.body["status"], "enrollment_required",
        "{}",
        started.text
    );
    let (login_id, token) = login_of(&started);
    let view = app.login_view(&login_id, &token).await;
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.body["remember_device_days"], 30);
    assert_eq!(
        ts(&view.body["grace_ends_at"]),
        ts(&started.body["grace_ends_at"])
    );
    assert_eq!(
        ts(&view.body["grace_ends_at"]),
        app.now() + Duration::days(7)
    );
    let me = app.get("/v1/me", Some(&admin.access_token)).await;
    assert_eq!(me.body["tenant"]["remember_device_days"], 30);

    // Grace over: no grace_ends_at.
    app.advance(7 * 86_400);
    let started = app.start_login(&u).await;
    let (login_id, token) = login_of(&started);
    let view = app.login_view(&login_id, &token).await;
    assert!(view.body.get("grace_ends_at").is_none(), "{}", view.text);

    // A tenant that remembers nothing and has no grace; a login that waits for a code.
    let (_, other) = app.admin("beta").await;
    app.enforce("beta", &other.access_token, json!({"enforce_mfa": true}))
        .await
        .enforced();
    let me = app.get("/v1/me", Some(&other.access_token)).await;
    assert_eq!(me.body["tenant"]["remember_device_days"], 0);
    let (login_id, token) = app.challenge(&User::first_admin("beta")).await;
    let view = app.login_view(&login_id, &token).await;
    assert_eq!(view.body["remember_device_days"], 0, "{}", view.text);
    assert!(view.body.get("grace_ends_at").is_none(), "{}", view.text);
}
