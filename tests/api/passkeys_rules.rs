//! Passkeys, §21's settled points (docs/API.md §16, §17, §21): a proof of the wrong type for
//! a pending enrollment, a confirm on a surface without an RP ID, a credential id registered
//! anywhere already; `swk` for a synced passkey; a remembered browser after a passkey.

use serde_json::{json, Value};

use crate::helpers::{claims_of, login_of, TestApp, User};
use crate::passkeys::{answer, challenge, with_passkey, Key};
use crate::synced_key::SyncedKey;

fn origin(app: &TestApp) -> String {
    format!("http://localhost:{}", app.port)
}

/// In production, an RP ID (`localhost`, one exact origin, returned) on the app surface and
/// none on the portal.
pub async fn app_rp_only() -> (TestApp, &'static str) {
    let origin = "http://localhost:4444";
    let app = TestApp::spawn_production(|s| {
        s.webauthn_rp_id_app = Some("localhost".into());
        s.webauthn_origins_app = vec![origin.into()];
    })
    .await;
    (app, origin)
}

async fn failures(app: &TestApp, u: &User) -> i64 {
    app.user_failures(&u.tenant, &u.id).await
}

/// `POST /v1/me/factors` as `token`: `(factor_id, creation options)`.
async fn start_own(app: &TestApp, token: &str, kind: &str) -> (String, Value) {
    let r = app.add_factor(token, json!({ "type": kind })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["factor_id"].as_str().unwrap().to_owned(),
        r.body["public_key"].clone(),
    )
}

/// Registers `key`'s passkey as `token`'s own (start, then confirm): the confirm's answer.
async fn register_synced(app: &TestApp, token: &str, key: &SyncedKey) -> crate::helpers::Resp {
    let (id, options) = start_own(app, token, "webauthn").await;
    let body = json!({ "credential": key.create(&options) });
    app.confirm_factor(token, &id, body).await
}

#[tokio::test]
async fn a_proof_of_the_other_type_for_a_pending_enrollment_is_invalid_request_not_counted() {
    let app = TestApp::spawn().await;
    let (_, _admin) = app.enforced_tenant("acme").await;
    // At sign-in: a code to a passkey's enrollment, a credential to an app's.
    let u = User::new("acme", "pr-1");
    let (login_id, token) = login_of(&app.start_login(&u).await);
    let r = app.enrollment_started(&login_id, &token, "webauthn").await;
    let mut key = Key::new(&app);
    let credential = key.create(&r.body["public_key"]);
    app.confirm_at_login(&login_id, &token, "123456")
        .await
        .problem(400, "invalid_request");
    app.enrollment_started(&login_id, &token, "totp").await;
    let body = json!({ "credential": credential });
    app.login_post(&login_id, &token, "webauthn-enrollment/confirm", body)
        .await
        .problem(400, "invalid_request");
    assert_eq!(failures(&app, &u).await, 0);
    assert_eq!(app.attempts_left(&login_id, &token).await, 5);

    // Signed in, through /v1/me/factors/{id}/confirm, both ways.
    let v = User::new("acme", "pr-2");
    let e = app.enroll_at_login(&v).await;
    let (pk_id, options) = start_own(&app, &e.access_token, "webauthn").await;
    app.confirm_factor(&e.access_token, &pk_id, json!({"code": "123456"}))
        .await
        .problem(400, "invalid_request");
    let credential = key.create(&options);
    let (totp_id, _) = start_own(&app, &e.access_token, "totp").await;
    let body = json!({ "credential": credential });
    app.confirm_factor(&e.access_token, &totp_id, body)
        .await
        .problem(400, "invalid_request");
    assert_eq!(failures(&app, &v).await, 0);
}

#[tokio::test]
async fn a_registration_confirmed_on_a_surface_without_an_rp_id_is_webauthn_unavailable() {
    let (app, origin) = app_rp_only().await;
    // No 2FA in the tenant: both surfaces sign the user in at once.
    let u = User::new("acme", "pr-3");
    let signed = |r: crate::helpers::Resp| r.body["access_token"].as_str().unwrap().to_owned();
    let app_token = signed(app.start_login(&u).await);
    let portal_token = signed(app.start_login(&u.clone().portal()).await);
    let (id, options) = start_own(&app, &app_token, "webauthn").await;
    let credential = Key::at(origin, true).create(&options);
    let body = json!({ "credential": credential });
    app.confirm_factor(&portal_token, &id, body.clone())
        .await
        .problem(409, "webauthn_unavailable");
    assert_eq!(failures(&app, &u).await, 0);
    // Nothing consumed: the app confirms it.
    let r = app.confirm_factor(&app_token, &id, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_credential_id_registered_in_another_tenant_is_refused_counted_and_uses_the_challenge() {
    let app = TestApp::spawn().await;
    let key = SyncedKey::new(&origin(&app));
    let a = User::new("acme", "pr-4");
    let ea = app.enroll_via_me(&a).await;
    let r = register_synced(&app, &ea.access_token, &key).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The same authenticator's credential offered to a user of another tenant.
    let b = User::new("globex", "pr-5");
    let eb = app.enroll_via_me(&b).await;
    let (id, options) = start_own(&app, &eb.access_token, "webauthn").await;
    let body = json!({ "credential": key.create(&options) });
    app.confirm_factor(&eb.access_token, &id, body.clone())
        .await
        .problem(400, "invalid_credential");
    assert_eq!(failures(&app, &b).await, 1);
    assert_eq!(app.audit_count("globex", "webauthn.verify_failed").await, 1);
    // The challenge is used up: the same response again is refused too.
    app.confirm_factor(&eb.access_token, &id, body)
        .await
        .problem(400, "invalid_credential");
    assert_eq!(failures(&app, &b).await, 2);
}

#[tokio::test]
async fn a_synced_passkey_gives_swk_at_sign_in_and_in_reauthentication() {
    let (app, u, e) = TestApp::with_enrolled("acme", "pr-6").await;
    let key = SyncedKey::new(&origin(&app));
    let done = register_synced(&app, &e.access_token, &key).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let f = &done.body["factor"];
    assert_eq!(
        (f["backup_eligible"].as_bool(), f["backed_up"].as_bool()),
        (Some(true), Some(true))
    );
    let claims = claims_of(done.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]));

    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let a = key.get(&challenge(&app, &login_id, &token).await);
    let ok = answer(&app, &login_id, &token, &a).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let t = ok.body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(t)["amr"], json!(["pwd", "swk", "mfa"]));

    let r = app
        .post(
            "/v1/me/reauthenticate/webauthn-challenge",
            Some(t),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let credential = key.get(&r.body["public_key"]);
    let r = app
        .post(
            "/v1/me/reauthenticate",
            Some(t),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let claims = claims_of(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]));
}

#[tokio::test]
async fn a_browser_remembered_after_a_passkey_sign_in_skips_the_factor() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    app.set_policy(
        "acme",
        &admin.access_token,
        json!({"remember_device_days": 30}),
    )
    .await;
    let u = User::new("acme", "pr-7");
    let (_, mut key, _, _) = with_passkey(&app, &u).await;
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let a = key.get(&challenge(&app, &login_id, &token).await);
    let body = json!({"credential": a, "remember_device": true, "device_name": "Laptop"});
    let ok = app.login_post(&login_id, &token, "webauthn", body).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let device = ok.body["device_token"].as_str().unwrap().to_owned();
    assert!(ok.body["device_expires_at"].is_string(), "{}", ok.text);

    app.advance(60);
    let mut b = u.login_body();
    b["device_token"] = json!(device);
    let started = app.post("/v1/logins", Some(&app.service_key), b).await;
    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(started.body["mfa"], "remembered", "{}", started.text);
    assert_eq!(started.body["status"], "authenticated", "{}", started.text);
    // Without it, the factor is asked for.
    let again = app.start_login(&u).await;
    assert_eq!(again.body["status"], "verification_required");
}
