//! Re-authentication with a passkey (docs/API.md §17, §21): `POST
//! /v1/me/reauthenticate/webauthn-challenge`, then `{credential}` to `POST
//! /v1/me/reauthenticate`, through the one attempt gate. A software authenticator signs for
//! real; the clock is injected.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{claims_of, code_at, retry_after, wrong_code, Resp, TestApp, User};
use crate::passkeys::{app_with_passkey, Key};

const CHALLENGE: &str = "/v1/me/reauthenticate/webauthn-challenge";
const PATH: &str = "/v1/me/reauthenticate";
/// A sensitive call that needs a recent token: adding a factor (the user has one).
const ADD_FACTOR: &str = "/v1/me/factors";

async fn ask(app: &TestApp, token: &str) -> Resp {
    app.post(CHALLENGE, Some(token), json!({})).await
}

/// A live §17 challenge's request options.
async fn options(app: &TestApp, token: &str) -> Value {
    let r = ask(app, token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ends: DateTime<Utc> = r.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends, app.now() + Duration::seconds(300));
    r.body["public_key"].clone()
}

async fn reauth(app: &TestApp, token: &str, credential: &Value) -> Resp {
    app.post(PATH, Some(token), json!({ "credential": credential }))
        .await
}

async fn add_factor(app: &TestApp, token: &str) -> Resp {
    app.post(ADD_FACTOR, Some(token), json!({"type": "totp"}))
        .await
}

async fn failures(app: &TestApp, u: &User) -> i64 {
    app.user_failures(&u.tenant, &u.id).await
}

#[tokio::test]
async fn a_passkey_steps_up_and_the_new_token_passes_a_sensitive_call_the_old_one_does_not() {
    let (app, u, (_e, mut key, factor_id, done)) = app_with_passkey("acme", "rk-1").await;
    let old = done["access_token"].as_str().unwrap().to_owned();
    app.advance(301);
    add_factor(&app, &old)
        .await
        .problem(403, "step_up_required");

    let pk = options(&app, &old).await;
    assert!(pk.get("publicKey").is_none(), "the inner object: {pk}");
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "preferred");
    let allowed = pk["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1, "the passkey only: {pk}");
    let credential = key.get(&pk);
    assert_eq!(allowed[0]["id"], credential["rawId"]);
    let r = reauth(&app, &old, &credential).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = r.body["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&new);
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
    assert_eq!(claims["auth_time"], json!(app.now().timestamp()));
    let events = app
        .sql_strings(
            "SELECT details::text AS s FROM audit_events WHERE type = 'user.reauthenticated'",
        )
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    let details: Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(
        (details["method"].as_str(), details["factor_id"].as_str()),
        (Some("webauthn"), Some(factor_id.as_str()))
    );
    // The counter the assertion showed is stored.
    let counter = app
        .sql_count(&format!(
            "SELECT counter AS n FROM webauthn_credentials WHERE factor_id = '{factor_id}'"
        ))
        .await;
    assert_eq!(counter, 1);

    // Sensitive calls with the new token, no code; the old token is still not recent.
    for _ in 0..2 {
        let r = add_factor(&app, &new).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    add_factor(&app, &old)
        .await
        .problem(403, "step_up_required");
    app.advance(300);
    assert_eq!(add_factor(&app, &new).await.status, 201);
    app.advance(1);
    add_factor(&app, &new)
        .await
        .problem(403, "step_up_required");
    add_factor(&app, &old)
        .await
        .problem(403, "step_up_required");

    // The same response again while the token lives: its challenge is gone.
    assert_eq!(failures(&app, &u).await, 0);
    reauth(&app, &new, &credential)
        .await
        .problem(400, "invalid_credential");
    assert_eq!(failures(&app, &u).await, 1);
}

#[tokio::test]
async fn one_live_challenge_per_user_shapes_not_counted_expiry_counted_locked_is_429() {
    let (app, u, (e, mut key, _, done)) = app_with_passkey("acme", "rk-2").await;
    let token = done["access_token"].as_str().unwrap().to_owned();

    // A second challenge kills the first: the answer to the first is refused, counted, and
    // consumes the live one.
    let first = key.get(&options(&app, &token).await);
    let second = key.get(&options(&app, &token).await);
    reauth(&app, &token, &first)
        .await
        .problem(400, "invalid_credential");
    reauth(&app, &token, &second)
        .await
        .problem(400, "invalid_credential");
    assert_eq!(failures(&app, &u).await, 2);
    assert_eq!(app.audit_count("acme", "webauthn.verify_failed").await, 2);

    // Shape errors: not counted, and the challenge stays alive.
    let live = key.get(&options(&app, &token).await);
    for bad in [
        json!({"credential": {"id": "x"}}),
        json!({"credential": "x"}),
        json!({"credential": {"id": "x", "rawId": "!!", "type": "public-key", "response": {}}}),
        json!({"credential": live, "code": "123456"}),
        json!({}),
    ] {
        app.post(PATH, Some(&token), bad)
            .await
            .problem(400, "invalid_request");
    }
    assert_eq!(failures(&app, &u).await, 2);
    let r = reauth(&app, &token, &live).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        failures(&app, &u).await,
        0,
        "an acceptance resets the count"
    );

    // An expired challenge: refused and counted.
    let late = key.get(&options(&app, &token).await);
    app.advance(301);
    reauth(&app, &token, &late)
        .await
        .problem(400, "invalid_credential");
    assert_eq!(failures(&app, &u).await, 1);

    // Four wrong codes lock the user; the challenge call still answers (no proof), the
    // response is not evaluated.
    for _ in 0..4 {
        app.post(
            PATH,
            Some(&token),
            json!({"code": wrong_code(&e.secret, app.now())}),
        )
        .await
        .problem(400, "invalid_code");
    }
    let good = key.get(&options(&app, &token).await);
    let r = reauth(&app, &token, &good).await;
    r.problem(429, "too_many_attempts");
    assert!(retry_after(&r) > 0);
    let left = app
        .sql_count(
            "SELECT count(*) AS n FROM webauthn_challenges WHERE purpose = 'reauthentication'",
        )
        .await;
    assert_eq!(left, 1, "a locked user's response consumes nothing");
}

#[tokio::test]
async fn no_passkey_on_this_rp_id_is_invalid_state_and_no_rp_id_is_webauthn_unavailable() {
    // The app surface has an RP ID (one exact origin), the portal none.
    let (app, origin) = crate::passkeys_rules::app_rp_only().await;
    let (u, e) = app.enrolled("acme", "rk-3").await;
    // An app user with no passkey: never an empty allowCredentials.
    ask(&app, &e.access_token)
        .await
        .problem(409, "invalid_state");
    let mut key = Key::at(origin, true);
    let (_, done) = crate::passkeys::add_passkey(&app, &e.access_token, &mut key).await;
    let app_token = done["access_token"].as_str().unwrap();
    assert_eq!(options(&app, app_token).await["rpId"], "localhost");

    // On the portal (no RP ID): the challenge and a response are 409, not counted, before
    // the lockout.
    let portal = u.clone().portal();
    let (login_id, mfa) = app.challenge(&portal).await;
    let signed = app
        .verify_code(
            &login_id,
            &mfa,
            &code_at(&e.secret, app.now() + Duration::seconds(30)),
        )
        .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let portal_token = signed.body["access_token"].as_str().unwrap();
    ask(&app, portal_token)
        .await
        .problem(409, "webauthn_unavailable");
    let response = key.get(&options(&app, app_token).await);
    reauth(&app, portal_token, &response)
        .await
        .problem(409, "webauthn_unavailable");
    assert_eq!(failures(&app, &u).await, 0);
    // The app's challenge was not consumed by the portal's refusal.
    let r = reauth(&app, app_token, &response).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
