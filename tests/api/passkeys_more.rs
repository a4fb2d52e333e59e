//! Passkeys, continued (docs/API.md §16, §21): "Setup MFA" with a passkey, one assertion
//! sent many times at once, and the tenant's required user verification.

use serde_json::{json, Value};

use crate::helpers::{claims_of, login_of, TestApp, User};
use crate::passkeys::{
    answer, app_with_passkey, challenge, lists_app_and_passkey, with_passkey, Key,
};

#[tokio::test]
async fn a_passkey_instead_of_an_app_at_first_sign_in() {
    let app = TestApp::spawn().await;
    let (_, _admin) = app.enforced_tenant("acme").await;
    let u = User::new("acme", "pk-7");
    let (login_id, token) = app.enrollment_login(&u).await;
    let view = app.login_view(&login_id, &token).await;
    lists_app_and_passkey(&view, "allowed_factor_types");
    assert_eq!(view.body["webauthn_available"], true);
    let r = app.enrollment_started(&login_id, &token, "webauthn").await;
    assert_eq!(
        (r.body["type"].as_str(), r.body["name"].as_str()),
        (Some("webauthn"), Some("Passkey"))
    );
    // A code sent to a passkey enrollment is refused without being counted (§21).
    let code = app.confirm_at_login(&login_id, &token, "123456").await;
    code.problem(400, "invalid_request");
    let mut key = Key::new(&app);
    let credential = key.create(&r.body["public_key"]);
    let done = app
        .login_post(
            &login_id,
            &token,
            "webauthn-enrollment/confirm",
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["recovery_codes"].as_array().unwrap().len(), 10);
    let claims = claims_of(done.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
    // Next time: only a passkey (and recovery codes).
    app.advance(60);
    let again = app.start_login(&u).await;
    assert_eq!(
        again.body["factor_types"],
        json!(["webauthn"]),
        "{}",
        again.text
    );
    let (l2, t2) = login_of(&again);
    // A code from a user with no app is a wrong code, counted.
    app.verify_code(&l2, &t2, "123456")
        .await
        .problem(400, "invalid_code");
    let a = key.get(&challenge(&app, &l2, &t2).await);
    let ok = answer(&app, &l2, &t2, &a).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // Removing it writes webauthn.removed, not totp.removed.
    let t = ok.body["access_token"].as_str().unwrap();
    let factors = app.get("/v1/me/factors", Some(t)).await;
    let id = factors.body["items"][0]["factor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = app
        .delete(
            &format!("/v1/tenants/acme/users/{}/factors/{id}", u.id),
            Some(&_admin.access_token),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let types = app.audit_types("acme").await;
    assert!(types.iter().any(|t| t == "webauthn.removed"), "{types:?}");
    assert!(!types.iter().any(|t| t == "totp.removed"), "{types:?}");
}

#[tokio::test]
async fn one_assertion_sent_twenty_times_at_once_to_two_instances_succeeds_once() {
    let (app, app2) = TestApp::two_instances(|s| s.rate_limit_per_minute = 1000).await;
    let u = User::new("acme", "pk-8");
    let (_e, mut key, _, _) = with_passkey(&app, &u).await;
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let a = key.get(&challenge(&app, &login_id, &token).await);
    let to = |i: usize| if i.is_multiple_of(2) { &app } else { &app2 };
    let sends = (0..20).map(|i| answer(to(i), &login_id, &token, &a));
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 400, 401].contains(s)),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn under_required_user_verification_a_key_without_uv_is_refused_and_counted() {
    let app = TestApp::spawn().await;
    let u = User::new("acme", "pk-9").roles(&["admin"]);
    let e = app.enroll_via_me(&u).await;
    app.set_policy(
        "acme",
        &e.access_token,
        json!({"webauthn_user_verification": "required"}),
    )
    .await;
    let r = app
        .add_factor(&e.access_token, json!({"type": "webauthn"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        r.body["public_key"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    // The browser of a key without UV (its own client refuses "required": ask it for less;
    // the service must still refuse the result).
    let mut key = Key::with_uv(&app, false);
    let mut asked = r.body["public_key"].clone();
    asked["authenticatorSelection"]["userVerification"] = json!("discouraged");
    let credential = key.create(&asked);
    let id = r.body["factor_id"].as_str().unwrap();
    let done = app
        .confirm_factor(&e.access_token, id, json!({ "credential": credential }))
        .await;
    done.problem(400, "invalid_credential");
    let types = app.audit_types("acme").await;
    assert!(
        types.iter().any(|t| t == "webauthn.verify_failed"),
        "{types:?}"
    );
}

/// `acme`'s `id` with a passkey whose stored signature counter is then set to 1000 (a clone
/// of the key used meanwhile), answering a sign-in's challenge with this copy: refused
/// (`invalid_credential`). `(app, factor_id, the challenge's options, the assertion)`.
async fn a_clone_answers(id: &str) -> (TestApp, String, Value, Value) {
    let (app, u, (_e, mut key, factor_id, _)) = app_with_passkey("acme", id).await;
    app.sql_count(&format!(
        "WITH u AS (UPDATE webauthn_credentials SET counter = 1000 WHERE factor_id = '{factor_id}' RETURNING 1) SELECT count(*) AS n FROM u"
    ))
    .await;
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let options = challenge(&app, &login_id, &token).await;
    let a = key.get(&options);
    answer(&app, &login_id, &token, &a)
        .await
        .problem(400, "invalid_credential");
    (app, factor_id, options, a)
}

#[tokio::test]
async fn audit_events_hold_no_challenge_key_signature_or_full_credential_id() {
    let (app, _, options, a) = a_clone_answers("pk-6").await;
    let all = app
        .sql_strings("SELECT details::text AS s FROM audit_events")
        .await
        .join("\n");
    let raw_id = a["rawId"].as_str().unwrap();
    let secrets = [
        options["challenge"].as_str().unwrap(),
        raw_id,
        a["response"]["signature"].as_str().unwrap(),
    ];
    for s in secrets {
        assert!(!all.contains(s), "{s} in {all}");
    }
    assert!(all.contains(&raw_id[..8]), "the short id is shown: {all}");
}

#[tokio::test]
async fn a_counter_that_does_not_grow_is_refused_and_audited() {
    // A clone of the key used meanwhile: the stored counter is ahead of this copy's.
    let (app, id, _, _) = a_clone_answers("pk-4").await;
    let types = app.audit_types("acme").await;
    assert!(
        types.iter().any(|t| t == "webauthn.counter_regressed"),
        "{types:?}"
    );
    assert!(
        types.iter().any(|t| t == "webauthn.verify_failed"),
        "{types:?}"
    );
    let counter = app
        .sql_strings(&format!(
            "SELECT counter::text AS s FROM webauthn_credentials WHERE factor_id = '{id}'"
        ))
        .await;
    assert_eq!(counter, vec!["1000".to_owned()], "left as it was");
}
