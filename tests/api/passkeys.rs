//! Passkeys and security keys (docs/API.md §16, §21) against a software authenticator
//! (`webauthn-authenticator-rs`' SoftPasskey, which signs for real), never a mock of the
//! verifier: registration from `/v1/me/factors`, sign-in, one-shot challenges, refusals
//! counted with wrong codes, the counter rule, the tenant's allowed types.

use serde_json::{json, Value};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions, RequestChallengeResponse,
};

use crate::helpers::{
    claims_of, code_at, item, login_of, wrong_code, Enrolled, Resp, TestApp, User,
};

/// A software authenticator and the origin its browser reports.
pub struct Key {
    inner: SoftPasskey,
    origin: url::Url,
}

impl Key {
    pub fn new(app: &TestApp) -> Self {
        // `true`: it claims user verification (a passkey flow would require it).
        Self::with_uv(app, true)
    }

    pub fn with_uv(app: &TestApp, uv: bool) -> Self {
        Self::at(&format!("http://localhost:{}", app.port), uv)
    }

    /// A key whose browser reports `origin`.
    pub fn at(origin: &str, uv: bool) -> Self {
        Self {
            inner: SoftPasskey::new(uv),
            origin: url::Url::parse(origin).unwrap(),
        }
    }

    /// `navigator.credentials.create()` then `toJSON()`.
    pub fn create(&mut self, public_key: &Value) -> Value {
        let opts: PublicKeyCredentialCreationOptions =
            serde_json::from_value(public_key.clone()).expect("creation options");
        let ccr = CreationChallengeResponse { public_key: opts };
        let r = self
            .inner
            .do_registration(self.origin.clone(), ccr)
            .expect("registration");
        serde_json::to_value(r).unwrap()
    }

    /// `navigator.credentials.get()` then `toJSON()`.
    pub fn get(&mut self, public_key: &Value) -> Value {
        let opts: PublicKeyCredentialRequestOptions =
            serde_json::from_value(public_key.clone()).expect("request options");
        let rcr = RequestChallengeResponse {
            public_key: opts,
            mediation: None,
        };
        let r = self
            .inner
            .do_authentication(self.origin.clone(), rcr)
            .expect("assertion");
        serde_json::to_value(r).unwrap()
    }
}

/// A user with an authenticator app (fresh `otp` token) who adds a passkey from
/// `/v1/me/factors`: the key, the factor id and the confirm answer.
pub async fn with_passkey(app: &TestApp, u: &User) -> (Enrolled, Key, String, Value) {
    let e = app.enroll_via_me(u).await;
    let mut key = Key::new(app);
    let (id, done) = add_passkey(app, &e.access_token, &mut key).await;
    (e, key, id, done)
}

/// Asserts that the answer lists both factor types, app and passkey, under `field`.
#[track_caller]
pub fn lists_app_and_passkey(r: &Resp, field: &str) {
    assert_eq!(r.body[field], json!(["totp", "webauthn"]), "{}", r.text);
}

/// A new app with `id` of `tenant`, who has an app and a passkey ([`with_passkey`]).
pub async fn app_with_passkey(
    tenant: &str,
    id: &str,
) -> (TestApp, User, (Enrolled, Key, String, Value)) {
    let app = TestApp::spawn().await;
    let u = User::new(tenant, id);
    let with = with_passkey(&app, &u).await;
    (app, u, with)
}

pub async fn add_passkey(app: &TestApp, token: &str, key: &mut Key) -> (String, Value) {
    let r = app.add_factor(token, json!({"type": "webauthn"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    let credential = key.create(&r.body["public_key"]);
    let done = app
        .confirm_factor(token, &id, json!({ "credential": credential }))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    (id, done.body)
}

/// A sign-in's challenge options.
pub async fn challenge(app: &TestApp, login_id: &str, token: &str) -> Value {
    let r = app
        .login_post(login_id, token, "webauthn-challenge", json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["public_key"].clone()
}

pub async fn answer(
    app: &TestApp,
    login_id: &str,
    token: &str,
    credential: &Value,
) -> crate::helpers::Resp {
    app.login_post(
        login_id,
        token,
        "webauthn",
        json!({ "credential": credential }),
    )
    .await
}

#[tokio::test]
async fn a_passkey_added_from_me_factors_signs_in_with_hwk() {
    let (app, u, e) = TestApp::with_enrolled("acme", "pk-1").await;
    let r = app
        .add_factor(&e.access_token, json!({"type": "webauthn"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pk = &r.body["public_key"];
    assert!(pk.get("publicKey").is_none(), "the inner object: {pk}");
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["excludeCredentials"], json!([]));
    assert_eq!(
        pk["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert_eq!(pk["user"]["name"], u.email.as_str());
    assert_eq!(
        (r.body["type"].as_str(), r.body["name"].as_str()),
        (Some("webauthn"), Some("Passkey"))
    );
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    // Pending: listed with rp_id and no flags yet, no drift.
    let list = app.get("/v1/me/factors", Some(&e.access_token)).await;
    let pending = item(&list, "factor_id", &id);
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        (pending["rp_id"].as_str(), pending["backed_up"].as_bool()),
        (Some("localhost"), Some(false))
    );
    assert_eq!(pending["transports"], json!([]));
    assert!(pending.get("drift_seconds").is_none(), "{pending}");

    let mut key = Key::new(&app);
    let credential = key.create(pk);
    let done = app
        .confirm_factor(&e.access_token, &id, json!({ "credential": credential }))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["factor"]["type"], "webauthn");
    assert_eq!(done.body["factor"]["status"], "active");
    assert_eq!(done.body["factor"]["backup_eligible"], false);
    assert!(
        done.body.get("recovery_codes").is_none(),
        "not the first factor"
    );
    let amr = claims_of(done.body["access_token"].as_str().unwrap())["amr"].clone();
    assert_eq!(amr, json!(["pwd", "hwk", "mfa"]));

    // Sign in with it.
    app.advance(60);
    let started = app.start_login(&u).await;
    lists_app_and_passkey(&started, "factor_types");
    let (login_id, token) = login_of(&started);
    let view = app.login_view(&login_id, &token).await;
    lists_app_and_passkey(&view, "factor_types");
    let options = challenge(&app, &login_id, &token).await;
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["allowCredentials"].as_array().unwrap().len(), 1);
    let assertion = key.get(&options);
    let ok = answer(&app, &login_id, &token, &assertion).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let claims = claims_of(ok.body["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]));
    assert_eq!(claims["auth_time"], json!(app.now().timestamp()));
    // The same assertion again: the sign-in is over, its token dead.
    let again = answer(&app, &login_id, &token, &assertion).await;
    assert_eq!(again.status, 401, "{}", again.text);

    // A second passkey's options exclude the first.
    let (_, fresh) = {
        app.advance(1);
        let t = ok.body["access_token"].as_str().unwrap();
        let r = app.add_factor(t, json!({"type": "webauthn"})).await;
        (r.status, r)
    };
    assert_eq!(fresh.status, 201, "{}", fresh.text);
    assert_eq!(fresh.body["name"], "Passkey 2");
    let excluded = fresh.body["public_key"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], assertion["rawId"]);

    let types = app.audit_types("acme").await;
    for t in ["webauthn.enrollment_started", "webauthn.enrolled"] {
        assert!(types.iter().any(|x| x == t), "{t}: {types:?}");
    }
    let details = app
        .sql_strings("SELECT details::text AS s FROM audit_events WHERE type = 'login.succeeded' ORDER BY id DESC LIMIT 1")
        .await;
    assert!(
        details[0].contains("\"method\": \"webauthn\"") && details[0].contains(&id),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_challenge_answers_once_and_the_next_one_kills_it() {
    let (app, u, (_e, mut key, _, _)) = app_with_passkey("acme", "pk-2").await;
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let first = key.get(&challenge(&app, &login_id, &token).await);
    // A second challenge replaces the first: the answer to the first fails, counted, and
    // consumes the live one too.
    let second = key.get(&challenge(&app, &login_id, &token).await);
    let r = answer(&app, &login_id, &token, &first).await;
    r.problem(400, "invalid_credential");
    let r = answer(&app, &login_id, &token, &second).await;
    r.problem(400, "invalid_credential");
    assert_eq!(app.attempts_left(&login_id, &token).await, 3);
    // An expired challenge: 5 min and a second.
    let options = challenge(&app, &login_id, &token).await;
    let late = key.get(&options);
    app.advance(301);
    answer(&app, &login_id, &token, &late)
        .await
        .problem(400, "invalid_credential");
    // A fresh one works (the login lives 10 min).
    let ok = key.get(&challenge(&app, &login_id, &token).await);
    let r = answer(&app, &login_id, &token, &ok).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn refusals_count_with_wrong_codes_and_lock_the_user() {
    let (app, u, (e, mut key, _, _)) = app_with_passkey("acme", "pk-3").await;
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    // Shape errors are not counted.
    answer(&app, &login_id, &token, &json!({"id": "x"}))
        .await
        .problem(400, "invalid_request");
    // An answer to another sign-in's challenge: that sign-in's request replaced this one's.
    let options = challenge(&app, &login_id, &token).await;
    let (other_login, other_token) = app.challenge(&u).await;
    let foreign = key.get(&challenge(&app, &other_login, &other_token).await);
    let _ = options;
    answer(&app, &login_id, &token, &foreign)
        .await
        .problem(400, "invalid_credential");
    // A bad signature.
    let options = challenge(&app, &login_id, &token).await;
    let mut tampered = key.get(&options);
    tampered["response"]["signature"] = json!("AAAA");
    answer(&app, &login_id, &token, &tampered)
        .await
        .problem(400, "invalid_credential");
    // An unknown credential (another authenticator the user never registered).
    let options = challenge(&app, &login_id, &token).await;
    let stranger = evil_assertion(&app, &options);
    answer(&app, &login_id, &token, &stranger)
        .await
        .problem(400, "invalid_credential");
    // Two wrong TOTP codes.
    for _ in 0..2 {
        let r = app
            .verify_code(&login_id, &token, &wrong_code(&e.secret, app.now()))
            .await;
        r.problem(400, "invalid_code");
    }
    // Locked: nothing is evaluated, not even a good code.
    let (l2, t2) = app.challenge(&u).await;
    let good = code_at(&e.secret, app.now());
    app.verify_code(&l2, &t2, &good)
        .await
        .problem(429, "too_many_attempts");
    let types = app.audit_types("acme").await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "webauthn.verify_failed")
            .count(),
        3,
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "user.locked"));
}

/// An assertion by an authenticator the service never saw, for the options' challenge.
fn evil_assertion(app: &TestApp, options: &Value) -> Value {
    let mut other = Key::new(app);
    let reg = json!({
        "rp": {"id": "localhost", "name": "x"},
        "user": {"id": "AAAAAAAAAAAAAAAAAAAAAA", "name": "x", "displayName": "x"},
        "challenge": options["challenge"], "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "excludeCredentials": [], "attestation": "none",
        "authenticatorSelection": {"userVerification": "preferred", "requireResidentKey": false}
    });
    let created = other.create(&reg);
    let mut opts = options.clone();
    opts["allowCredentials"] = json!([{"type": "public-key", "id": created["rawId"]}]);
    other.get(&opts)
}

#[tokio::test]
async fn allowed_factor_types_govern_new_enrollments_only() {
    let app = TestApp::spawn().await;
    let u = User::new("acme", "pk-5").roles(&["admin"]);
    let (e, mut key, _, done) = with_passkey(&app, &u).await;
    let t = done["access_token"].as_str().unwrap();
    let r = app
        .set_policy("acme", t, json!({"allowed_factor_types": ["totp"]}))
        .await;
    assert_eq!(r.body["allowed_factor_types"], json!(["totp"]));
    let r = app.add_factor(t, json!({"type": "webauthn"})).await;
    r.problem(409, "factor_type_not_allowed");
    for bad in [json!([]), json!(["totp", "totp"]), json!(["sms"])] {
        let r = app
            .enforce("acme", t, json!({"allowed_factor_types": bad}))
            .await;
        r.problem(400, "invalid_request");
    }
    // The existing passkey still signs in.
    app.advance(60);
    let (login_id, token) = app.challenge(&u).await;
    let a = key.get(&challenge(&app, &login_id, &token).await);
    let ok = answer(&app, &login_id, &token, &a).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let _ = e;
}
