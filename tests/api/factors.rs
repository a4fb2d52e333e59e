//! Several named authenticators per user (docs/API.md §10) and clock drift (§11): on real
//! Postgres with the injected clock; codes are computed from the secrets the API returned.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{
    code_at, item, login_of, ok_and_reused, wrong_code, Enrolled, Resp, TestApp, User,
};

const STEP: i64 = 30;

/// A user with one factor (voluntary enrollment; policy off) and a fresh `otp` token.
async fn one_factor(app: &TestApp, id: &str) -> (User, Enrolled) {
    let u = User::new("acme", id);
    let e = app.enroll_via_me(&u).await;
    (u, e)
}

/// Adds and confirms a factor with the (fresh) token: `(factor_id, secret, confirm body)`.
async fn add_factor(app: &TestApp, token: &str, name: Option<&str>) -> (String, String, Value) {
    // A second later than the previous factor, so "oldest first" has one answer.
    app.advance(1);
    let body = name.map_or(json!({}), |n| json!({ "name": n }));
    let r = app.post("/v1/me/factors", Some(token), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let done = app
        .confirm_factor(token, &id, json!({"code": code_at(&secret, app.now())}))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    (id, secret, done.body)
}

async fn factors(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/v1/me/factors", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// `POST path` (a sign-in's or a factor's `resync`) as `token`, with two codes in a row.
async fn resync(app: &TestApp, path: &str, token: &str, [code1, code2]: [&str; 2]) -> Resp {
    let body = json!({ "code1": code1, "code2": code2 });
    app.post(path, Some(token), body).await
}

/// [`resync`] of the sign-in `login_id`, with its mfa token.
async fn resync_login(app: &TestApp, login_id: &str, token: &str, codes: [&str; 2]) -> Resp {
    resync(app, &format!("/v1/logins/{login_id}/resync"), token, codes).await
}

/// Asserts an answer's status and the factor `name` it shows.
#[track_caller]
fn answers_named(r: &Resp, status: u16, name: &str) {
    assert_eq!(
        (r.status, r.body["name"].clone()),
        (status, json!(name)),
        "{}",
        r.text
    );
}

/// The `details.factor_id` of the tenant's events of `kind`, oldest first.
async fn factor_ids_of(app: &TestApp, kind: &str) -> Vec<String> {
    app.sql_strings(&format!(
        "SELECT details->>'factor_id' AS s FROM audit_events \
         WHERE type = '{kind}' AND details ? 'factor_id' ORDER BY id"
    ))
    .await
}

async fn recovery_left(app: &TestApp, user: &str) -> i64 {
    app.sql_count(&format!(
        "SELECT count(*) AS n FROM recovery_codes WHERE user_id = '{user}' AND used_at IS NULL"
    ))
    .await
}

#[tokio::test]
async fn a_code_of_either_authenticator_signs_in_and_each_has_its_own_replay_guard() {
    let app = TestApp::spawn().await;
    let (u, a) = one_factor(&app, "jane").await;
    let (b_id, b_secret, confirmed) = add_factor(&app, &a.access_token, Some("Tablet")).await;
    assert_eq!(confirmed["factor"]["name"], "Tablet");
    assert_eq!(confirmed["factor"]["status"], "active");
    assert!(confirmed.get("recovery_codes").is_none(), "{confirmed}");
    let amr = crate::helpers::claims_of(confirmed["access_token"].as_str().unwrap())["amr"].clone();
    assert_eq!(amr, json!(["pwd", "otp", "mfa"]));
    let items = factors(&app, &a.access_token).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "Authenticator");
    let a_id = items[0]["factor_id"].as_str().unwrap().to_owned();
    assert_eq!(items[1]["factor_id"], b_id.as_str());

    app.advance(STEP);
    app.signs_in_now(&u, &a.secret).await;
    // The same step on the other factor is not a replay.
    app.signs_in_now(&u, &b_secret).await;
    // But that step again on either factor is.
    let (l3, t3) = app.challenge(&u).await;
    app.verify_now(&l3, &t3, &b_secret)
        .await
        .problem(400, "code_reused");
    app.verify_now(&l3, &t3, &a.secret)
        .await
        .problem(400, "code_reused");
    assert_eq!(app.attempts_left(&l3, &t3).await, 5, "reuse is not counted");
    // Each event names the factor that matched.
    assert_eq!(
        factor_ids_of(&app, "login.succeeded").await,
        vec![a_id.clone(), b_id.clone()]
    );
    assert_eq!(
        factor_ids_of(&app, "totp.code_reused").await,
        vec![b_id.clone(), a_id]
    );
    // Step-up accepts either factor too.
    app.advance(STEP);
    let r = app
        .new_recovery_codes(&a.access_token, Some(&code_at(&b_secret, app.now())))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_same_code_at_once_to_twenty_sign_ins_over_two_instances_succeeds_once() {
    let (app, app2) = TestApp::two_instances(|s| s.rate_limit_per_minute = 1000).await;
    let (u, a) = one_factor(&app, "jane").await;
    let (_, b_secret, _) = add_factor(&app, &a.access_token, None).await;
    app.advance(STEP);
    let logins = app.alternating_challenges(&app2, &u).await;
    let code = code_at(&b_secret, app.now());
    let results: Vec<Resp> = join_all(
        logins
            .iter()
            .map(|(inst, id, token)| inst.verify_code(id, token, &code)),
    )
    .await;
    let (ok, reused) = ok_and_reused(&results);
    assert_eq!((ok, reused), (1, 19));
    assert_eq!(app.user_failures("acme", "jane").await, 0);
}

#[tokio::test]
async fn five_wrong_codes_lock_the_user_whatever_factor_they_were_meant_for() {
    let app = TestApp::spawn().await;
    let (u, a) = one_factor(&app, "jane").await;
    let (_, b_secret, _) = add_factor(&app, &a.access_token, None).await;
    app.advance(STEP);
    // Four wrong codes, then a right one of factor B: the count resets.
    let (l, t) = app.challenge(&u).await;
    for secret in [&a.secret, &b_secret, &a.secret, &b_secret] {
        app.verify_wrong(&l, &t, secret).await;
    }
    assert_eq!(app.user_failures("acme", "jane").await, 4);
    let r = app.verify_now(&l, &t, &b_secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.user_failures("acme", "jane").await, 0);

    // Four on a sign-in and one as a step-up code: five in all lock the user.
    app.advance(STEP);
    let (l, t) = app.challenge(&u).await;
    for secret in [&b_secret, &a.secret, &b_secret, &a.secret] {
        app.verify_wrong(&l, &t, secret).await;
    }
    app.new_recovery_codes(&a.access_token, Some(&wrong_code(&b_secret, app.now())))
        .await
        .problem(400, "invalid_code");
    let (l, t) = app.challenge(&u).await;
    for secret in [&a.secret, &b_secret] {
        app.verify_now(&l, &t, secret)
            .await
            .problem(429, "too_many_attempts");
    }
}

#[tokio::test]
async fn the_factor_limit_and_names() {
    let app = TestApp::spawn().await;
    let (_, a) = one_factor(&app, "jane").await;
    let t = &a.access_token;
    let (_, _, _) = add_factor(&app, t, Some("Phone")).await;
    // A name differing only by case is taken; so is the default's.
    for taken in ["pHONE", " phone ", "AUTHENTICATOR"] {
        app.add_factor(t, json!({ "name": taken }))
            .await
            .problem(409, "name_taken");
    }
    // Control and format characters, empty names and long names are refused.
    for bad in [
        json!("Tab\u{0007}let"),
        json!("a\u{202e}b"),
        json!("  "),
        json!("x".repeat(65)),
        json!(5),
    ] {
        app.add_factor(t, json!({ "name": bad }))
            .await
            .problem(400, "invalid_request");
    }
    // Defaults take the lowest free number.
    let (third, _, c) = add_factor(&app, t, None).await;
    assert_eq!(c["factor"]["name"], "Authenticator 2");
    add_factor(&app, t, Some("Laptop")).await;
    add_factor(&app, t, Some("Password manager")).await;
    // The sixth at the default limit of 5.
    app.add_factor(t, json!({}))
        .await
        .problem(409, "factor_limit");
    // Renaming: to another's name (any case) is taken; to its own (other case) is fine.
    let path = format!("/v1/me/factors/{third}");
    app.patch(&path, t, json!({"name": "laptop"}))
        .await
        .problem(409, "name_taken");
    let r = app
        .patch(&path, t, json!({"name": "authenticator 2"}))
        .await;
    answers_named(&r, 200, "authenticator 2");
    app.patch(&path, t, json!({"name": "x\u{0000}"}))
        .await
        .problem(400, "invalid_request");
    assert_eq!(
        factor_ids_of(&app, "factor.renamed").await,
        vec![third.clone()]
    );
    let unknown = "/v1/me/factors/00000000-0000-4000-8000-000000000000";
    app.patch(unknown, t, json!({"name": "y"}))
        .await
        .problem(404, "not_found");
    // The listing and the admin's view agree.
    let me = app.get("/v1/me", Some(t)).await;
    assert_eq!(me.body["mfa"]["factors"], 5, "{}", me.text);
    // Removing one frees its name again (the token is recent: no code needed).
    let r = app.delete(&path, Some(t)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(factor_ids_of(&app, "totp.removed").await, vec![third]);
    add_factor(&app, t, Some("Authenticator 2")).await;
}

#[tokio::test]
async fn a_drifted_phone_is_resynchronised_then_accepted_at_its_offset() {
    let app = TestApp::spawn().await;
    let (u, a) = one_factor(&app, "jane").await;
    app.advance(STEP);
    let ahead = |steps: i64| {
        code_at(
            &a.secret,
            app.now() + chrono::Duration::seconds(STEP * steps),
        )
    };
    // A phone 4 steps ahead: refused by verify (and counted).
    let (l, t) = app.challenge(&u).await;
    app.verify_code(&l, &t, &ahead(4))
        .await
        .problem(400, "invalid_code");
    // Two non-consecutive codes: one wrong code.
    resync_login(&app, &l, &t, [&ahead(3), &ahead(5)])
        .await
        .problem(400, "invalid_code");
    assert_eq!(app.attempts_left(&l, &t).await, 3);
    assert_eq!(app.user_failures("acme", "jane").await, 2);
    // Two consecutive codes: the sign-in completes and the factor learns the offset.
    let r = resync_login(&app, &l, &t, [&ahead(3), &ahead(4)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["drift_seconds"], 120);
    assert_eq!(app.user_failures("acme", "jane").await, 0);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(factors(&app, &token).await[0]["drift_seconds"], 120);
    // Then its codes are accepted at the new offset.
    app.advance(STEP);
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &ahead(4)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = app.get("/metrics", None).await.text;
    assert!(text.contains("mfa_totp_drift_steps_bucket"), "{text}");
    assert!(text.contains("mfa_totp_drift_steps_count 3"), "{text}");

    // Its clock corrected, the phone works as soon as its codes are later than the last one.
    app.advance(5 * STEP);
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &ahead(0)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(factors(&app, &token).await[0]["drift_seconds"], 0);

    // A drift past MFA_TOTP_MAX_DRIFT (10) is refused, by resync and by verify.
    app.advance(STEP);
    let (l, t) = app.challenge(&u).await;
    resync_login(&app, &l, &t, [&ahead(11), &ahead(12)])
        .await
        .problem(400, "invalid_code");
    app.verify_code(&l, &t, &ahead(12))
        .await
        .problem(400, "invalid_code");
    // The signed-in user's resync, at the edge of MFA_TOTP_MAX_DRIFT.
    let id = factors(&app, &token).await[0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/me/factors/{id}/resync");
    let r = resync(&app, &path, &token, [&ahead(9), &ahead(10)]).await;
    assert_eq!(
        (r.status, r.body["drift_seconds"].clone()),
        (200, json!(300)),
        "{}",
        r.text
    );
    // Not later than the last accepted step: a wrong code.
    resync(&app, &path, &token, [&ahead(8), &ahead(9)])
        .await
        .problem(400, "invalid_code");
    resync(&app, &path, &token, ["12345", &ahead(1)])
        .await
        .problem(400, "invalid_request");
}

#[tokio::test]
async fn removing_the_last_factor_follows_the_enforcement_rule_and_takes_the_recovery_codes() {
    let (app, admin, ae) = TestApp::with_admin("acme").await;
    // Recovery codes come with the first factor only and survive its removal.
    let (u, a) = one_factor(&app, "jane").await;
    assert_eq!(recovery_left(&app, "jane").await, 10);
    let (b_id, b_secret, c) = add_factor(&app, &a.access_token, Some("Tablet")).await;
    assert!(c.get("recovery_codes").is_none());
    let a_id = factors(&app, &a.access_token).await[0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .delete(&format!("/v1/me/factors/{a_id}"), Some(&a.access_token))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(recovery_left(&app, "jane").await, 10);
    app.advance(STEP);
    let jane = app.sign_in_with_code(&u, &b_secret).await;

    // Under enforcement the user may not remove the last factor; an admin may.
    app.enforce("acme", &ae.access_token, json!({"enforce_mfa": true}))
        .await
        .enforced();
    let path = format!("/v1/me/factors/{b_id}");
    app.delete(&path, Some(&jane))
        .await
        .problem(409, "mfa_enforced");
    let admin_path = format!("/v1/tenants/acme/users/jane/factors/{b_id}");
    let listed = app.user_factors("acme", "jane", &ae.access_token).await;
    assert_eq!(listed[0]["name"], "Tablet");
    let users = app
        .get("/v1/tenants/acme/users", Some(&ae.access_token))
        .await;
    let row = item(&users, "user_id", "jane");
    assert_eq!(
        (row["mfa_enrolled"].clone(), row["mfa_factors"].clone()),
        (json!(true), json!(1))
    );
    let r = app.delete(&admin_path, Some(&ae.access_token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(recovery_left(&app, "jane").await, 0);
    app.delete(&admin_path, Some(&ae.access_token))
        .await
        .problem(404, "not_found");
    let started = app.start_login(&u).await;
    assert_eq!(
        started.body["status"], "enrollment_required",
        "{}",
        started.text
    );
    let _ = (admin, login_of(&started));
}

#[tokio::test]
async fn a_v1_re_enrollment_replaces_every_factor_only_at_its_confirmation() {
    let app = TestApp::spawn().await;
    let (u, a) = one_factor(&app, "jane").await;
    let (_, b_secret, _) = add_factor(&app, &a.access_token, Some("Tablet")).await;
    let m = app
        .post(
            "/v1/me/totp-enrollment",
            Some(&a.access_token),
            json!({"name": "New phone"}),
        )
        .await;
    answers_named(&m, 201, "New phone");
    let c_secret = m.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(factors(&app, &a.access_token).await.len(), 3);
    // Until the confirmation, the old factors still sign in.
    app.sign_in_with_code(&u, &b_secret).await;
    let done = app
        .me_enroll_confirm(&a.access_token, &code_at(&c_secret, app.now()))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["recovery_codes"].as_array().unwrap().len(), 10);
    let items = factors(&app, &a.access_token).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "New phone");
    app.advance(STEP);
    let (l, t) = app.challenge(&u).await;
    app.verify_now(&l, &t, &b_secret)
        .await
        .problem(400, "invalid_code");
    app.recover_code(&l, &t, &a.recovery_codes[0])
        .await
        .problem(400, "invalid_code");
    let r = app.verify_now(&l, &t, &c_secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // DELETE /v1/me/totp removes every factor.
    let t2 = r.body["access_token"].as_str().unwrap().to_owned();
    add_factor(&app, &t2, None).await;
    let r = app.delete("/v1/me/totp", Some(&t2)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(factors(&app, &t2).await.is_empty());
    assert_eq!(recovery_left(&app, "jane").await, 0);
}
