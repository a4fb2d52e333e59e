//! Remembered devices (docs/API.md §12): "don't ask again on this browser". A remembered
//! sign-in and its claims (checked with the JWKS), every cause that kills a device token (one
//! test each), foreign tokens ignored, the 20-device cap, clipping by the current policy, and
//! step-up judged by the moment the code was typed. Real Postgres, injected clock.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{code_at, wrong_code, Enrolled, Resp, TestApp, User};
use crate::tokens::{jwks_claims, ts};

const DAY: i64 = 86_400;

/// A tenant whose admin turned remembering on for `days` (2FA not enforced, so users may
/// also remove their factor), with the admin; `body` adds policy fields.
async fn tenant_remembering(
    app: &TestApp,
    tenant: &str,
    days: i64,
    body: Value,
) -> (User, Enrolled) {
    let (admin, e) = app.admin(tenant).await;
    let mut b = json!({"remember_device_days": days});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    app.set_policy(tenant, &e.access_token, b).await;
    (admin, e)
}

/// A user of `tenant` with an authenticator (voluntary enrollment).
async fn enrolled(app: &TestApp, u: &User) -> Enrolled {
    app.enroll_via_me(u).await
}

/// Where most device tests start: `acme` remembers browsers for 30 days (2FA not turned
/// on); jane has an authenticator and a remembered browser.
struct Remembered {
    app: TestApp,
    admin: User,
    ae: Enrolled,
    u: User,
    e: Enrolled,
    dv: String,
}

/// A new app whose `acme` remembers browsers for `days` (policy `body` added), its admin,
/// and jane with an authenticator: `(app, admin, admin's enrollment, jane, hers)`.
async fn jane_enrolled(days: i64, body: Value) -> (TestApp, User, Enrolled, User, Enrolled) {
    let app = TestApp::spawn().await;
    let (admin_user, admin) = tenant_remembering(&app, "acme", days, body).await;
    let u = User::new("acme", "jane");
    let e = enrolled(&app, &u).await;
    (app, admin_user, admin, u, e)
}

async fn jane_remembered() -> Remembered {
    let (app, admin, ae, u, e) = jane_enrolled(30, json!({})).await;
    let dv = app.remember_browser(&u, &e.secret).await;
    Remembered {
        app,
        admin,
        ae,
        u,
        e,
        dv,
    }
}

/// `POST /v1/logins` with a device token.
async fn start_with(app: &TestApp, u: &User, device_token: &str) -> Resp {
    let mut body = u.login_body();
    body["device_token"] = json!(device_token);
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r
}

/// Whether the device token still signs the user in without a code.
async fn works(app: &TestApp, u: &User, device_token: &str) -> bool {
    let r = start_with(app, u, device_token).await;
    match r.body["status"].as_str() {
        Some("authenticated") => {
            assert_eq!(r.body["mfa"], "remembered", "{}", r.text);
            true
        }
        _ => {
            assert_eq!(r.body["status"], "verification_required", "{}", r.text);
            false
        }
    }
}

/// Asserts that `dv` no longer signs `u` in, and that `acme`'s device revocations so far
/// were for `reasons`.
async fn revoked(app: &TestApp, u: &User, dv: &str, reasons: &[&str]) {
    assert!(!works(app, u, dv).await);
    assert_eq!(revoked_reasons(app, "acme").await, reasons);
}

/// `DELETE path` by the admin `ae` with a step-up code: `204`.
async fn admin_deletes(app: &TestApp, path: &str, ae: &Enrolled) {
    deleted_with_code(app, path, &ae.access_token, &ae.secret).await;
}

/// A new sign-in of `u` that asks for a code, and its step `action` with `body`: the answer.
async fn challenged_step(app: &TestApp, u: &User, action: &str, body: Value) -> Resp {
    let (login_id, token) = app.challenge(u).await;
    app.login_post(&login_id, &token, action, body).await
}

/// `DELETE path` as `token`, which must answer `204`.
async fn deleted(app: &TestApp, path: &str, token: &str) {
    let r = app.delete(path, Some(token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// `DELETE path` as `token` with a step-up code of `secret` typed now: `204`.
async fn deleted_with_code(app: &TestApp, path: &str, token: &str, secret: &str) {
    let code = code_at(secret, app.now());
    let r = app
        .with_code(Method::DELETE, path, token, Some(&code))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
}

async fn revoked_reasons(app: &TestApp, tenant: &str) -> Vec<String> {
    app.sql_strings(&format!(
        "SELECT details->>'reason' AS s FROM audit_events WHERE tenant_id = '{tenant}' \
         AND type = 'device.revoked' ORDER BY id"
    ))
    .await
}

#[tokio::test]
async fn a_remembered_browser_signs_in_without_a_code_with_the_claims_of_the_code() {
    let (app, _, _, u, e) = jane_enrolled(30, json!({})).await;
    let r = app
        .verify_remembering(&u, &e.secret, Some("Work laptop"))
        .await;
    let typed_at = app.now();
    let token = r.body["device_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dv_") && token.len() >= 3 + 22, "{token}");
    assert_eq!(
        ts(&r.body["device_expires_at"]),
        typed_at + Duration::days(30)
    );
    // Stored only as a keyed hash.
    let stored = app
        .sql_count(&format!(
            "SELECT count(*) AS n FROM remembered_devices WHERE position('{token}'::bytea in token_hash) > 0"
        ))
        .await;
    assert_eq!(stored, 0);

    app.advance(2 * 3600);
    let started = start_with(&app, &u, &token).await;
    assert_eq!(started.body["status"], "authenticated", "{}", started.text);
    assert_eq!(started.body["mfa"], "remembered");
    assert!(started.body.get("mfa_token").is_none());
    let claims = jwks_claims(
        &app,
        started.body["access_token"].as_str().unwrap(),
        "mspbots-app",
    )
    .await;
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));
    assert_eq!(claims["auth_time"], json!(typed_at.timestamp()));
    assert_eq!(claims["sub"], "jane");
    assert_eq!(claims["tid"], "acme");

    // The audit trail: remembered, then a sign-in by the device.
    let methods = app
        .sql_strings(
            "SELECT details->>'method' AS s FROM audit_events WHERE type = 'login.succeeded' \
             AND user_id = 'jane' ORDER BY id",
        )
        .await;
    assert_eq!(methods.last().unwrap(), "remembered_device");
    assert_eq!(app.audit_count("acme", "device.remembered").await, 1);
    let text = app
        .sql_strings("SELECT details::text AS s FROM audit_events WHERE tenant_id = 'acme'")
        .await
        .join("\n");
    assert!(!text.contains(&token), "no token in the audit trail");

    // The user's list shows it, with its use.
    let fresh = app.sign_in_with_code(&u, &e.secret).await;
    let list = app.get("/v1/me/devices", Some(&fresh)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "Work laptop");
    assert_eq!(items[0]["surface"], "app");
    assert_eq!(ts(&items[0]["created_at"]), typed_at);
    assert_eq!(ts(&items[0]["expires_at"]), typed_at + Duration::days(30));
    assert!(items[0]["last_used_at"].is_string());
    // Absolute expiry: use never extends it.
    assert!(works(&app, &u, &token).await);
    app.clock
        .set(typed_at + Duration::days(30) - Duration::seconds(1));
    assert!(works(&app, &u, &token).await);
}

#[tokio::test]
async fn the_flag_is_ignored_while_the_tenant_does_not_remember_and_by_recover() {
    let (app, _, _, u, e) = jane_enrolled(0, json!({})).await;
    let r = app.verify_remembering(&u, &e.secret, None).await;
    assert!(r.body.get("device_token").is_none(), "{}", r.text);
    let r = challenged_step(
        &app,
        &u,
        "recover",
        json!({"recovery_code": e.recovery_codes[0], "remember_device": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("device_token").is_none());
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM remembered_devices")
            .await,
        0
    );
    // A bad name is refused before the code is looked at.
    let r = challenged_step(
        &app,
        &u,
        "verify",
        json!({"code": "123456", "remember_device": true, "device_name": "x".repeat(65)}),
    )
    .await;
    r.problem(400, "invalid_request");
    assert_eq!(app.user_failures("acme", "jane").await, 0);
}

#[tokio::test]
async fn confirming_an_enrollment_at_sign_in_can_remember_the_browser() {
    let app = TestApp::spawn().await;
    tenant_remembering(&app, "acme", 14, json!({"enforce_mfa": true})).await;
    let u = User::new("acme", "new");
    let (login_id, token) = app.enrollment_login(&u).await;
    let m = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let secret = m.body["secret"].as_str().unwrap().to_owned();
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let done = app
        .send(
            Method::POST,
            &format!("/v1/logins/{login_id}/totp-enrollment/confirm"),
            Some(&token),
            Some(json!({"code": code_at(&secret, app.now()), "remember_device": true})),
            &[("User-Agent", ua)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    // Named from the User-Agent when no name was given.
    let list = app
        .get("/v1/me/devices", done.body["access_token"].as_str())
        .await;
    assert_eq!(
        list.body["items"][0]["name"], "Firefox on Linux",
        "{}",
        list.text
    );
    let dv = done.body["device_token"].as_str().unwrap().to_owned();
    assert_eq!(
        ts(&done.body["device_expires_at"]),
        app.now() + Duration::days(14)
    );
    assert!(works(&app, &u, &dv).await);
}

// ---------------------------------------------------------------------------------------
// Each cause that kills a device token.

#[tokio::test]
async fn a_device_token_dies_when_it_expires() {
    let (app, _, _, u, e) = jane_enrolled(1, json!({})).await;
    let dv = app.remember_browser(&u, &e.secret).await;
    app.advance(DAY - 60);
    assert!(works(&app, &u, &dv).await);
    app.advance(61);
    assert!(!works(&app, &u, &dv).await);
}

#[tokio::test]
async fn lowering_the_days_from_30_to_7_kills_a_10_day_old_token() {
    let (app, admin, ae, u, e) = jane_enrolled(30, json!({})).await;
    let old = app.remember_browser(&u, &e.secret).await;
    app.advance(10 * DAY);
    let young = app.remember_browser(&u, &e.secret).await;
    assert!(works(&app, &u, &old).await);
    let fresh_admin = app.sign_in_with_code(&admin, &ae.secret).await;
    app.set_policy("acme", &fresh_admin, json!({"remember_device_days": 7}))
        .await;
    assert!(
        !works(&app, &u, &old).await,
        "10 days old under a 7-day policy"
    );
    assert!(works(&app, &u, &young).await, "a day-old device lives on");
    // The list shows only the live one, clipped to the new days.
    let fresh = app.sign_in_with_code(&u, &e.secret).await;
    let list = app.get("/v1/me/devices", Some(&fresh)).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    let created = ts(&items[0]["created_at"]);
    assert_eq!(ts(&items[0]["expires_at"]), created + Duration::days(7));
}

#[tokio::test]
async fn a_device_token_dies_when_the_user_revokes_it_or_all() {
    let (app, _, _, u, e) = jane_enrolled(30, json!({})).await;
    let a = app.remember_browser(&u, &e.secret).await;
    let b = app.remember_browser(&u, &e.secret).await;
    let c = app.remember_browser(&u, &e.secret).await;
    // No step-up needed: an hour-old token will do.
    let token = app.sign_in_with_code(&u, &e.secret).await;
    app.advance(3600 - 60);
    let list = app.get("/v1/me/devices", Some(&token)).await;
    let first = list.body["items"][0]["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    deleted(&app, &format!("/v1/me/devices/{first}"), &token).await;
    assert!(!works(&app, &u, &a).await);
    assert!(works(&app, &u, &b).await);
    // Again, or someone else's id, or garbage: 404.
    let r = app
        .delete(&format!("/v1/me/devices/{first}"), Some(&token))
        .await;
    r.problem(404, "not_found");
    let r = app.delete("/v1/me/devices/not-a-uuid", Some(&token)).await;
    r.problem(404, "not_found");
    deleted(&app, "/v1/me/devices", &token).await;
    assert!(!works(&app, &u, &b).await);
    assert!(!works(&app, &u, &c).await);
    assert_eq!(revoked_reasons(&app, "acme").await, vec!["user_revoked"; 3]);
    let list = app.get("/v1/me/devices", Some(&token)).await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
async fn a_device_token_dies_when_an_admin_revokes_the_users_devices() {
    let Remembered {
        app,
        admin,
        ae,
        u,
        dv,
        ..
    } = jane_remembered().await;
    // The admin (or a scoped service key) sees them.
    let key = app.scoped_key(&["acme"]).await;
    let list = app
        .get("/v1/tenants/acme/users/jane/devices", Some(&key))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let other = app.scoped_key(&["other"]).await;
    app.get("/v1/tenants/acme/users/jane/devices", Some(&other))
        .await
        .problem(403, "forbidden");
    app.get("/v1/tenants/acme/users/nobody/devices", Some(&key))
        .await
        .problem(404, "not_found");
    // Delete needs step-up.
    app.advance(600);
    let stale = app.sign_in_with_code(&admin, &ae.secret).await;
    app.advance(400);
    let r = app
        .delete("/v1/tenants/acme/users/jane/devices", Some(&stale))
        .await;
    r.problem(403, "step_up_required");
    assert!(works(&app, &u, &dv).await);
    deleted_with_code(
        &app,
        "/v1/tenants/acme/users/jane/devices",
        &stale,
        &ae.secret,
    )
    .await;
    revoked(&app, &u, &dv, &["admin_revoked"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_the_user_removes_the_factor() {
    let Remembered { app, u, e, dv, .. } = jane_remembered().await;
    let token = app.sign_in_with_code(&u, &e.secret).await;
    deleted(&app, "/v1/me/totp", &token).await;
    // Enrolled again, the old browser is still not remembered.
    let e2 = app.enroll_via_me(&u).await;
    let _ = e2;
    revoked(&app, &u, &dv, &["factor_removed"]).await;
}

/// Starts (and, with `confirm`, confirms) one more authenticator: its id.
async fn add_factor(app: &TestApp, token: &str, name: &str, confirm: bool) -> String {
    let r = app.add_factor(token, json!({ "name": name })).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    if confirm {
        let secret = r.body["secret"].as_str().unwrap();
        let done = app
            .confirm_factor(token, &id, json!({"code": code_at(secret, app.now())}))
            .await;
        assert_eq!(done.status, 200, "{}", done.text);
    }
    id
}

#[tokio::test]
async fn a_device_token_dies_when_any_one_of_several_factors_is_removed_not_when_one_is_added() {
    let Remembered {
        app, ae, u, e, dv, ..
    } = jane_remembered().await;
    let token = app.sign_in_with_code(&u, &e.secret).await;
    // Adding an authenticator, or cancelling a pending one, reduces no trust.
    let tablet = add_factor(&app, &token, "Tablet", true).await;
    let spare = add_factor(&app, &token, "Spare", false).await;
    deleted(&app, &format!("/v1/me/factors/{spare}"), &token).await;
    assert!(works(&app, &u, &dv).await);
    // Removing one active factor of two (§10) kills every remembered browser (§12).
    deleted(&app, &format!("/v1/me/factors/{tablet}"), &token).await;
    revoked(&app, &u, &dv, &["factor_removed"]).await;

    // The same through the admin's removal of one factor.
    let dv = app.remember_browser(&u, &e.secret).await;
    let token = app.sign_in_with_code(&u, &e.secret).await;
    let laptop = add_factor(&app, &token, "Laptop", true).await;
    assert!(works(&app, &u, &dv).await);
    admin_deletes(
        &app,
        &format!("/v1/tenants/acme/users/jane/factors/{laptop}"),
        &ae,
    )
    .await;
    revoked(&app, &u, &dv, &["factor_removed", "factor_removed"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_an_admin_resets_the_factor() {
    let Remembered { app, ae, u, dv, .. } = jane_remembered().await;
    admin_deletes(&app, "/v1/tenants/acme/users/jane/totp", &ae).await;
    app.enroll_via_me(&u).await;
    revoked(&app, &u, &dv, &["factor_reset"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_the_factor_is_replaced() {
    let Remembered { app, u, e, dv, .. } = jane_remembered().await;
    let token = app.sign_in_with_code(&u, &e.secret).await;
    let m = app.me_enroll_start(&token).await;
    assert_eq!(m.status, 201, "{}", m.text);
    // Started but not confirmed: nothing is replaced yet.
    assert!(works(&app, &u, &dv).await);
    let secret = m.body["secret"].as_str().unwrap();
    let r = app
        .me_enroll_confirm(&token, &code_at(secret, app.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    revoked(&app, &u, &dv, &["factor_replaced"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_the_user_signs_in_with_a_recovery_code() {
    let Remembered { app, u, e, dv, .. } = jane_remembered().await;
    app.recovery_sign_in(&u, &e.recovery_codes[0]).await;
    revoked(&app, &u, &dv, &["recovery_code_sign_in"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_the_user_gets_locked_out() {
    let Remembered { app, u, e, dv, .. } = jane_remembered().await;
    let (login_id, token) = app.challenge(&u).await;
    let bad = wrong_code(&e.secret, app.now());
    for i in 0..5 {
        let r = app.verify_code(&login_id, &token, &bad).await;
        r.problem(400, "invalid_code");
        if i < 4 {
            assert!(revoked_reasons(&app, "acme").await.is_empty());
        }
    }
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);
    // Locked and after the lockout: the browser must type a code again.
    assert!(!works(&app, &u, &dv).await);
    app.advance(120);
    revoked(&app, &u, &dv, &["locked"]).await;
}

#[tokio::test]
async fn a_device_token_dies_when_the_user_is_deleted() {
    let Remembered { app, u, dv, .. } = jane_remembered().await;
    deleted(&app, "/v1/tenants/acme/users/jane", &app.service_key).await;
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM remembered_devices")
            .await,
        0
    );
    assert_eq!(revoked_reasons(&app, "acme").await, vec!["user_deleted"]);
    // The same user id comes back (and enrolls): the old token is nothing.
    app.enroll_via_me(&u).await;
    assert!(!works(&app, &u, &dv).await);
}

#[tokio::test]
async fn a_device_token_dies_when_the_tenant_stops_remembering_and_stays_dead() {
    let Remembered { app, ae, u, dv, .. } = jane_remembered().await;
    app.set_policy("acme", &ae.access_token, json!({"remember_device_days": 0}))
        .await;
    let revoked = app
        .sql_count("SELECT count(*) AS n FROM remembered_devices WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, 1, "revoked in the policy change's transaction");
    assert_eq!(revoked_reasons(&app, "acme").await, vec!["policy_disabled"]);
    app.set_policy(
        "acme",
        &ae.access_token,
        json!({"remember_device_days": 30}),
    )
    .await;
    assert!(
        !works(&app, &u, &dv).await,
        "raising the days again revives nothing"
    );
}

#[tokio::test]
async fn the_21st_device_revokes_the_one_created_first() {
    let (app, _, _, u, e) = jane_enrolled(30, json!({})).await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.remember_browser(&u, &e.secret).await);
    }
    assert!(revoked_reasons(&app, "acme").await.is_empty());
    let last = app.remember_browser(&u, &e.secret).await;
    assert!(!works(&app, &u, &tokens[0]).await, "the first is revoked");
    assert!(works(&app, &u, &tokens[1]).await);
    assert!(works(&app, &u, &last).await);
    assert_eq!(revoked_reasons(&app, "acme").await, vec!["limit"]);
    let token = app.sign_in_with_code(&u, &e.secret).await;
    let list = app.get("/v1/me/devices", Some(&token)).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn a_token_of_another_user_surface_or_tenant_is_ignored() {
    let app = TestApp::spawn().await;
    let (_, ae) = tenant_remembering(&app, "acme", 30, json!({})).await;
    tenant_remembering(&app, "globex", 30, json!({})).await;
    let jane = User::new("acme", "jane");
    let je = enrolled(&app, &jane).await;
    let dv = app.remember_browser(&jane, &je.secret).await;
    let bob = User::new("acme", "bob");
    enrolled(&app, &bob).await;
    let jane_elsewhere = User::new("globex", "jane");
    enrolled(&app, &jane_elsewhere).await;
    let jane_portal = jane.clone().portal();
    // Each answers exactly like a sign-in without a token: a challenge, nothing more.
    for (who, token) in [
        (&bob, dv.as_str()),
        (&jane_portal, dv.as_str()),
        (&jane_elsewhere, dv.as_str()),
        (&jane, "dv_not-a-token"),
        (&jane, "garbage"),
    ] {
        let r = start_with(&app, who, token).await;
        assert_eq!(r.body["status"], "verification_required", "{}", r.text);
        let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec![
                "expires_at",
                "factor_types",
                "login_id",
                "mfa_token",
                "status"
            ]
        );
    }
    // A user without a factor is not signed in by a device either: under enforcement, the
    // admin removes jane's last factor (§10: she enrolls again at her next sign-in).
    let r = app
        .enforce("acme", &ae.access_token, json!({"enforce_mfa": true}))
        .await;
    r.enforced();
    assert!(works(&app, &jane, &dv).await, "still good for its own user");
    let items = app.user_factors("acme", "jane", &ae.access_token).await;
    assert_eq!(items.len(), 1, "{items:?}");
    admin_deletes(
        &app,
        &format!(
            "/v1/tenants/acme/users/jane/factors/{}",
            items[0]["factor_id"].as_str().unwrap()
        ),
        &ae,
    )
    .await;
    let r = start_with(&app, &jane, &dv).await;
    assert_eq!(r.body["status"], "enrollment_required", "{}", r.text);
    assert!(r.body.get("access_token").is_none(), "{}", r.text);
    let r = app
        .post(
            "/v1/logins",
            Some(&app.service_key),
            json!({"tenant_id": "acme", "user_id": "jane", "email": "jane@acme.example",
               "identity_provider": "local", "surface": "app", "device_token": 42}),
        )
        .await;
    r.problem(400, "invalid_request");
}

#[tokio::test]
async fn a_remembered_sign_in_passes_step_up_only_within_5_minutes_of_the_code_typed() {
    let Remembered { app, u, dv, .. } = jane_remembered().await;
    app.advance(4 * 60);
    let soon = start_with(&app, &u, &dv).await;
    let soon = soon.body["access_token"].as_str().unwrap().to_owned();
    let r = app.new_recovery_codes(&soon, None).await;
    assert_eq!(
        r.status, 200,
        "4 minutes after the code: recent ({})",
        r.text
    );
    app.advance(2 * 60);
    let r = app.new_recovery_codes(&soon, None).await;
    r.problem(403, "step_up_required");
    // A new remembered sign-in much later carries the old moment: never recent.
    app.advance(DAY);
    let later = start_with(&app, &u, &dv).await;
    let later = later.body["access_token"].as_str().unwrap().to_owned();
    let claims = jwks_claims(&app, &later, "mspbots-app").await;
    assert!(claims["iat"].as_i64().unwrap() - claims["auth_time"].as_i64().unwrap() > DAY - 1);
    let r = app.new_recovery_codes(&later, None).await;
    r.problem(403, "step_up_required");
}
