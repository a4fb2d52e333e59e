//! The one order of checks for every call that takes a proof (docs/API.md §21): a locked-out
//! user gets `429` whatever else is wrong with the call — before an expired or unknown
//! factor's `409`/`404`, through every endpoint that confirms or resynchronises a factor.

use serde_json::json;

use crate::helpers::{code_at, retry_after, wrong_code, TestApp};

#[tokio::test]
async fn a_locked_user_gets_429_before_the_factor_is_looked_at_on_every_endpoint() {
    let (app, _, e) = TestApp::with_enrolled("acme", "jane").await;
    // A second factor, started while the token is recent, left pending until it expires.
    let started = app.add_factor(&e.access_token, json!({})).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let pending = started.body["factor_id"].as_str().unwrap().to_owned();
    app.advance(601);
    // Five wrong step-up codes lock the user.
    for i in 0..5 {
        let r = app
            .new_recovery_codes(&e.access_token, Some(&wrong_code(&e.secret, app.now())))
            .await;
        assert_eq!(r.status, 400, "attempt {i}: {}", r.body);
    }
    let code = code_at(&e.secret, app.now());
    let calls = [
        (
            format!("/v1/me/factors/{pending}/confirm"),
            json!({"code": code}),
        ),
        (
            "/v1/me/totp-enrollment/confirm".to_owned(),
            json!({"code": code}),
        ),
        (
            "/v1/me/factors/not-a-factor/resync".to_owned(),
            json!({"code1": code, "code2": code}),
        ),
        (
            format!("/v1/me/factors/{pending}/resync"),
            json!({"code1": code, "code2": code}),
        ),
    ];
    for (path, body) in calls {
        let r = app.post(&path, Some(&e.access_token), body).await;
        r.problem(429, "too_many_attempts");
        assert!(retry_after(&r) >= 1, "{path}");
    }
    // The same calls once the lockout is over answer what is wrong with them.
    app.advance(61);
    let r = app
        .confirm_factor(
            &e.access_token,
            &pending,
            json!({"code": code_at(&e.secret, app.now())}),
        )
        .await;
    r.problem(409, "invalid_state");
    let r = app
        .post(
            "/v1/me/factors/not-a-factor/resync",
            Some(&e.access_token),
            json!({"code1": "123456", "code2": "654321"}),
        )
        .await;
    r.problem(404, "not_found");
}
