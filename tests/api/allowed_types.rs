//! A tenant's `allowed_factor_types` for authenticator apps (docs/API.md §16, §21): a new
//! TOTP enrollment is `409 factor_type_not_allowed` at each of its starts — at sign-in,
//! `/v1/me/totp-enrollment`, `/v1/me/factors` — before step-up, while an app enrolled before
//! keeps signing in. (Passkeys' side: `passkeys::allowed_factor_types_govern_new_enrollments_only`.)

use serde_json::json;

use crate::helpers::{login_of, Enrolled, TestApp, User};

/// A tenant enforcing 2FA that allows passkeys only, with its admin (who has an app).
async fn passkeys_only(app: &TestApp) -> (User, Enrolled) {
    let (admin, e) = app.enforced_tenant("acme").await;
    let body = json!({"allowed_factor_types": ["webauthn"]});
    app.set_policy("acme", &e.access_token, body).await;
    (admin, e)
}

#[tokio::test]
async fn an_app_enrollment_at_sign_in_is_refused_where_only_passkeys_are_allowed() {
    let app = TestApp::spawn().await;
    let (admin, e) = passkeys_only(&app).await;
    let (login_id, token) = login_of(&app.start_login(&User::new("acme", "at-1")).await);
    app.login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await
        .problem(409, "factor_type_not_allowed");
    app.enrollment_started(&login_id, &token, "webauthn").await;
    // The admin's app, enrolled before, still signs in.
    app.sign_in_with_code(&admin, &e.secret).await;
}

#[tokio::test]
async fn an_app_re_enrollment_from_me_is_refused_before_step_up() {
    let app = TestApp::spawn().await;
    let (_, e) = passkeys_only(&app).await;
    // No longer recent and no code: the policy answers, not step-up (§21).
    app.advance(600);
    app.post("/v1/me/totp-enrollment", Some(&e.access_token), json!({}))
        .await
        .problem(409, "factor_type_not_allowed");
}

#[tokio::test]
async fn an_app_added_from_me_factors_is_refused_with_or_without_its_type() {
    let app = TestApp::spawn().await;
    let (_, e) = passkeys_only(&app).await;
    for body in [json!({"type": "totp"}), json!({})] {
        app.post("/v1/me/factors", Some(&e.access_token), body)
            .await
            .problem(409, "factor_type_not_allowed");
    }
}
