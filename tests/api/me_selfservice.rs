//! The signed-in user (docs/API.md §4): `GET /v1/me`, voluntary enrollment and re-enrollment,
//! removing the factor, new recovery codes, and the step-up rules (§6) these calls share.

use data_encoding::BASE64URL_NOPAD;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{claims_of, code_at, item, login_of, wrong_code, Resp, TestApp, User};
use crate::tokens::ts;

fn codes(r: &Resp) -> Vec<String> {
    r.body["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("recovery codes in {}", r.text))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

async fn me(app: &TestApp, token: &str) -> Value {
    let r = app.get("/v1/me", Some(token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// The user's lockout counters, straight from the database.
async fn failed_attempts(app: &TestApp, u: &User) -> i64 {
    app.sql_count(&format!(
        "SELECT failed_attempts::bigint AS n FROM users WHERE tenant_id = '{}' AND user_id = '{}'",
        u.tenant, u.id
    ))
    .await
}

async fn count_events(app: &TestApp, u: &User, kind: &str) -> i64 {
    app.sql_count(&format!(
        "SELECT count(*) AS n FROM audit_events WHERE tenant_id = '{}' AND user_id = '{}' AND type = '{kind}'",
        u.tenant, u.id
    ))
    .await
}

/// Starts a sign-in of an enrolled user and recovers with `code`.
async fn recover(app: &TestApp, u: &User, code: &str) -> Resp {
    let (login_id, token) = app.challenge(u).await;
    app.recover_code(&login_id, &token, code).await
}

#[tokio::test]
async fn me_shows_the_user_and_the_tenant_before_and_after_enrollment() {
    let app = TestApp::spawn().await;
    let u = User::new("t1", "u1");
    let started = app.start_login(&u).await;
    assert_eq!(started.body["mfa"], "not_required", "{}", started.text);
    let pwd_token = started.body["access_token"].as_str().unwrap().to_owned();

    let before = me(&app, &pwd_token).await;
    assert_eq!(
        before,
        json!({"tenant_id": "t1", "user_id": "u1", "email": "u1@t1.example",
               "identity_provider": "local",
               "mfa": {"enrolled": false, "enrolled_at": null, "last_used_at": null,
                       "recovery_codes_remaining": 0, "factors": 0},
               "tenant": {"enforce_mfa": false, "surfaces": ["app", "portal"],
                          "remember_device_days": 0,
                          "allowed_factor_types": ["totp", "webauthn"], "webauthn_available": true}})
    );

    // Voluntary enrollment: the factor is active from the confirmation on.
    let material = app.me_enroll_start(&pwd_token).await;
    assert_eq!(material.status, 201, "{}", material.text);
    let secret = material.body["secret"].as_str().unwrap().to_owned();
    let enrolled_at = app.now();
    let done = app
        .me_enroll_confirm(&pwd_token, &code_at(&secret, enrolled_at))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let otp_token = done.body["access_token"].as_str().unwrap().to_owned();
    let recovery = codes(&done);

    let after = me(&app, &otp_token).await;
    assert_eq!(after["mfa"]["enrolled"], true);
    assert_eq!(ts(&after["mfa"]["enrolled_at"]), enrolled_at);
    assert_eq!(
        ts(&after["mfa"]["last_used_at"]),
        enrolled_at,
        "the confirming code counts as used"
    );
    assert_eq!(after["mfa"]["recovery_codes_remaining"], 10);
    // The password-only token of before sees the same user.
    assert_eq!(me(&app, &pwd_token).await["mfa"]["enrolled"], true);

    // The tenant part follows the policy.
    let (_, admin) = app.admin("t1").await;
    app.set_policy(
        "t1",
        &admin.access_token,
        json!({"enforce_mfa": true, "surfaces": ["portal"], "remember_device_days": 0}),
    )
    .await;
    assert_eq!(
        me(&app, &otp_token).await["tenant"],
        json!({"enforce_mfa": true, "surfaces": ["portal"], "remember_device_days": 0,
               "allowed_factor_types": ["totp", "webauthn"], "webauthn_available": true})
    );

    // A TOTP sign-in moves last_used_at; a recovery sign-in uses one code up.
    let token = app.sign_in_with_code(&u, &secret).await;
    let used_at = app.now();
    let view = me(&app, &token).await;
    assert_eq!(ts(&view["mfa"]["last_used_at"]), used_at);
    assert_eq!(ts(&view["mfa"]["enrolled_at"]), enrolled_at);
    app.advance(30);
    let r = recover(&app, &u, &recovery[0]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["recovery_codes_remaining"], 9);
    let rc_token = r.body["access_token"].as_str().unwrap();
    let view = me(&app, rc_token).await;
    assert_eq!(view["mfa"]["recovery_codes_remaining"], 9);
    assert_eq!(view["mfa"]["enrolled"], true);
    assert_eq!(view["tenant"]["enforce_mfa"], true);
}

#[tokio::test]
async fn me_takes_only_a_valid_unexpired_access_token_of_this_service() {
    let (app, u, e) = TestApp::with_enrolled("t1", "u1").await;
    let good = e.access_token.clone();
    assert_eq!(app.get("/v1/me", Some(&good)).await.status, 200);

    // None, a service key, an mfa token, not a JWT: each is no access token.
    let started = app.start_login(&u).await;
    let (_, mfa_token) = login_of(&started);
    for cred in [
        None,
        Some(app.service_key.as_str()),
        Some(mfa_token.as_str()),
        Some("not-a-jwt"),
    ] {
        app.get("/v1/me", cred)
            .await
            .problem(401, "unauthenticated");
    }

    let parts: Vec<&str> = good.split('.').collect();
    let (header, payload) = (parts[0], parts[1]);

    // The same claims signed by a key this service does not have: under its own kid, and
    // under the kid of this service's key.
    let other = mspbots_mfa::crypto::jwt::SigningKeys::from_pems(&[
        mspbots_mfa::crypto::jwt::generate_pem(),
    ])
    .unwrap();
    let claims: mspbots_mfa::crypto::jwt::AccessClaims =
        serde_json::from_value(claims_of(&good)).unwrap();
    let forged = other.sign(&claims).unwrap();
    app.get("/v1/me", Some(&forged))
        .await
        .problem(401, "unauthenticated");
    let forged_parts: Vec<&str> = forged.split('.').collect();
    let under_our_kid = format!("{header}.{}.{}", forged_parts[1], forged_parts[2]);
    app.get("/v1/me", Some(&under_our_kid))
        .await
        .problem(401, "unauthenticated");

    // Tampered: the payload changed (made an admin of another tenant), the signature kept.
    let mut c = claims_of(&good);
    c["roles"] = json!(["admin"]);
    c["tid"] = json!("t2");
    let tampered_payload = BASE64URL_NOPAD.encode(c.to_string().as_bytes());
    app.get(
        "/v1/me",
        Some(&format!("{header}.{tampered_payload}.{}", parts[2])),
    )
    .await
    .problem(401, "unauthenticated");
    // Tampered signature.
    let mut sig = BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap();
    sig[0] ^= 1;
    app.get(
        "/v1/me",
        Some(&format!(
            "{header}.{payload}.{}",
            BASE64URL_NOPAD.encode(&sig)
        )),
    )
    .await
    .problem(401, "unauthenticated");

    // `alg: none`, with and without our kid, and HS256 keyed with the published public key.
    let our_header: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(header.as_bytes()).unwrap()).unwrap();
    assert_eq!(our_header["alg"], "EdDSA");
    let kid = our_header["kid"].as_str().unwrap().to_owned();
    for h in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
    ] {
        let h = BASE64URL_NOPAD.encode(h.to_string().as_bytes());
        for token in [format!("{h}.{payload}."), format!("{h}.{payload}")] {
            app.get("/v1/me", Some(&token))
                .await
                .problem(401, "unauthenticated");
        }
    }
    let jwks = app.get("/.well-known/jwks.json", None).await;
    let x = BASE64URL_NOPAD
        .decode(jwks.body["keys"][0]["x"].as_str().unwrap().as_bytes())
        .unwrap();
    let h = BASE64URL_NOPAD.encode(
        json!({"alg": "HS256", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    let signing_input = format!("{h}.{payload}");
    let mac = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&x).unwrap();
        m.update(signing_input.as_bytes());
        m.finalize().into_bytes()
    };
    app.get(
        "/v1/me",
        Some(&format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&mac))),
    )
    .await
    .problem(401, "unauthenticated");

    // Expiry: 3600 s plus 30 s of leeway.
    assert_eq!(app.get("/v1/me", Some(&good)).await.status, 200);
    app.advance(3600 + 29);
    assert_eq!(
        app.get("/v1/me", Some(&good)).await.status,
        200,
        "within the leeway"
    );
    app.advance(2);
    app.get("/v1/me", Some(&good))
        .await
        .problem(401, "unauthenticated");
}

#[tokio::test]
async fn voluntary_enrollment_needs_no_step_up_and_mints_an_otp_token() {
    let app = TestApp::spawn().await;
    let u = User::new("t1", "u1");
    let token = app.password_token(&u).await;
    assert_eq!(claims_of(&token)["amr"], json!(["pwd"]));
    // Long after the password sign-in, and with no second factor ever: still no step-up,
    // since there is no factor to replace (a code sent along has nothing to be checked
    // against, so it neither blocks nor counts).
    app.advance(1000);
    let r = app.re_enroll(&token, Some("000000")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(failed_attempts(&app, &u).await, 0);
    let material = app.me_enroll_start(&token).await;
    assert_eq!(material.status, 201, "{}", material.text);
    for field in ["secret", "otpauth_uri", "qr_svg", "qr_png", "expires_at"] {
        assert!(material.body[field].is_string(), "{field}");
    }
    assert_eq!(material.body["account_name"], "u1@t1.example");
    let secret = material.body["secret"].as_str().unwrap();
    let confirming = code_at(secret, app.now());
    let done = app.me_enroll_confirm(&token, &confirming).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["token_type"], "Bearer");
    assert_eq!(done.body["expires_in"], 3600);
    let rc = codes(&done);
    assert_eq!(rc.len(), 10);
    let c = claims_of(done.body["access_token"].as_str().unwrap());
    let amr: Vec<&str> = c["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(amr.contains(&"otp") && amr.contains(&"mfa"), "{amr:?}");
    assert_eq!(
        c["auth_time"],
        app.now().timestamp(),
        "the confirmation proved a factor"
    );
    assert_eq!(
        (c["sub"].as_str(), c["tid"].as_str()),
        (Some("u1"), Some("t1"))
    );
    // From now on this user is challenged at sign-in, though the policy is off. The code
    // that confirmed the enrollment counts as used: not for a sign-in, not for step-up.
    let (login_id, mfa_token) = app.challenge(&u).await;
    app.verify_code(&login_id, &mfa_token, &confirming)
        .await
        .problem(400, "code_reused");
    let otp_token = done.body["access_token"].as_str().unwrap();
    app.new_recovery_codes(otp_token, Some(&confirming))
        .await
        .problem(400, "code_reused");
    let types = app.audit_types("t1").await;
    assert!(types.contains(&"totp.enrollment_started".to_owned()));
    assert!(types.contains(&"totp.enrolled".to_owned()));
    // No step-up event was needed, so no code was spent and nothing failed.
    assert!(
        !types.contains(&"totp.verify_failed".to_owned()),
        "{types:?}"
    );
}

#[tokio::test]
async fn re_enrollment_needs_step_up_and_replaces_the_factor_only_once_confirmed() {
    let (app, u, e) = TestApp::with_enrolled("t1", "u1").await;
    let old_secret = e.secret.clone();

    // More than 300 s after the second factor: the token no longer counts as recent.
    app.advance(301);
    app.me_enroll_start(&e.access_token)
        .await
        .problem(403, "step_up_required");
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM totp_factors WHERE user_id = 'u1' AND status = 'pending'"
        )
        .await,
        0,
        "nothing started without step-up"
    );
    // With a current code of the old factor.
    let code = code_at(&old_secret, app.now());
    let r = app.re_enroll(&e.access_token, Some(&code)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pending_secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(pending_secret, old_secret);

    // Until the new factor is confirmed, the old one is the user's factor: its codes and
    // its recovery codes work.
    let fresh = app.sign_in_with_code(&u, &old_secret).await;
    assert_eq!(
        me(&app, &fresh).await["mfa"]["recovery_codes_remaining"],
        10
    );
    let r = recover(&app, &u, &e.recovery_codes[1]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["recovery_codes_remaining"], 9);

    // A fresh otp token is step-up enough; a new start discards the previous pending one.
    let r = app.me_enroll_start(&fresh).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new_secret = r.body["secret"].as_str().unwrap().to_owned();
    app.me_enroll_confirm(&fresh, &code_at(&pending_secret, app.now()))
        .await
        .problem(400, "invalid_code");
    let confirmed_at = app.now();
    let done = app
        .me_enroll_confirm(&fresh, &code_at(&new_secret, confirmed_at))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let new_codes = codes(&done);
    assert_eq!(app.factor_rows("u1").await, 1, "one factor: the new one");

    // The old secret no longer signs in; the new one does.
    app.advance(30);
    let started = app.start_login(&u).await;
    let (login_id, token) = login_of(&started);
    app.post(
        &format!("/v1/logins/{login_id}/verify"),
        Some(&token),
        json!({"code": code_at(&old_secret, app.now())}),
    )
    .await
    .problem(400, "invalid_code");
    let ok = app
        .post(
            &format!("/v1/logins/{login_id}/verify"),
            Some(&token),
            json!({"code": code_at(&new_secret, app.now())}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The old recovery codes went with the old factor.
    app.advance(30);
    recover(&app, &u, &e.recovery_codes[0])
        .await
        .problem(400, "invalid_code");
    let view = me(&app, ok.body["access_token"].as_str().unwrap()).await;
    assert_eq!(ts(&view["mfa"]["enrolled_at"]), confirmed_at);
    assert_eq!(view["mfa"]["recovery_codes_remaining"], 10);
    assert_eq!(new_codes.len(), 10);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM audit_events WHERE type = 'totp.enrolled' AND details->>'replaced' = 'true'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn confirm_without_a_pending_enrollment_is_invalid_state_and_wrong_codes_count() {
    let app = TestApp::spawn().await;
    let u = User::new("t1", "u1");
    let token = app.password_token(&u).await;
    app.me_enroll_confirm(&token, "123456")
        .await
        .problem(409, "invalid_state");
    assert_eq!(failed_attempts(&app, &u).await, 0, "nothing was checked");

    let material = app.me_enroll_start(&token).await;
    let secret = material.body["secret"].as_str().unwrap().to_owned();
    let wrong = wrong_code(&secret, app.now());
    app.me_enroll_confirm(&token, &wrong)
        .await
        .problem(400, "invalid_code");
    assert_eq!(failed_attempts(&app, &u).await, 1);
    assert_eq!(count_events(&app, &u, "totp.verify_failed").await, 1);
    // Not six digits: refused without being counted.
    app.me_enroll_confirm(&token, "12ab")
        .await
        .problem(400, "invalid_request");
    assert_eq!(failed_attempts(&app, &u).await, 1);
    // Four more wrong codes lock the user: then even the right code is not evaluated.
    for _ in 0..4 {
        app.me_enroll_confirm(&token, &wrong)
            .await
            .problem(400, "invalid_code");
    }
    assert_eq!(count_events(&app, &u, "user.locked").await, 1);
    let r = app
        .me_enroll_confirm(&token, &code_at(&secret, app.now()))
        .await;
    r.problem(429, "too_many_attempts");
    assert!(r.headers.contains_key("retry-after"));
    app.advance(61);
    let r = app
        .me_enroll_confirm(&token, &code_at(&secret, app.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        failed_attempts(&app, &u).await,
        0,
        "a success resets the count"
    );
}

#[tokio::test]
async fn removing_the_factor_needs_step_up_and_ends_the_challenge() {
    let (app, u, e) = TestApp::with_enrolled("t1", "u1").await;
    app.advance(301);
    app.delete("/v1/me/totp", Some(&e.access_token))
        .await
        .problem(403, "step_up_required");
    assert_eq!(me(&app, &e.access_token).await["mfa"]["enrolled"], true);

    let code = code_at(&e.secret, app.now());
    let r = app
        .with_code(Method::DELETE, "/v1/me/totp", &e.access_token, Some(&code))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    let view = me(&app, &e.access_token).await;
    assert_eq!(
        view["mfa"],
        json!({"enrolled": false, "enrolled_at": null, "last_used_at": null,
               "recovery_codes_remaining": 0, "factors": 0})
    );
    assert_eq!(app.factor_rows("u1").await, 0);
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM recovery_codes")
            .await,
        0
    );
    assert_eq!(count_events(&app, &u, "totp.removed").await, 1);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM audit_events WHERE type = 'totp.removed' AND actor_id = 'u1'"
        )
        .await,
        1
    );
    // The policy is off: the next sign-in is not challenged.
    let started = app.start_login(&u).await;
    assert_eq!(started.body["status"], "authenticated", "{}", started.text);
    assert_eq!(started.body["mfa"], "not_required");
    // Nothing left to remove, for this user or one who never enrolled.
    let fresh = started.body["access_token"].as_str().unwrap().to_owned();
    app.delete("/v1/me/totp", Some(&fresh))
        .await
        .problem(404, "not_found");
    let never = app.start_login(&User::new("t1", "u2")).await;
    app.delete("/v1/me/totp", never.body["access_token"].as_str())
        .await
        .problem(404, "not_found");
}

#[tokio::test]
async fn the_factor_the_tenant_requires_cannot_be_removed_but_an_exempt_one_can() {
    let (app, _, admin) = TestApp::with_admin("t1").await;
    // A Microsoft user who enrolled voluntarily before 2FA was turned on.
    let ms = User::new("t1", "ms1").microsoft();
    let ms_e = app.enroll_via_me(&ms).await;
    app.set_policy("t1", &admin.access_token, json!({"enforce_mfa": true}))
        .await;

    let local = User::new("t1", "u1");
    let e = app.enroll_at_login(&local).await;
    app.delete("/v1/me/totp", Some(&e.access_token))
        .await
        .problem(409, "mfa_enforced");
    // Refused before any code is spent.
    let code = code_at(&e.secret, app.now() + chrono::Duration::seconds(30));
    app.with_code(Method::DELETE, "/v1/me/totp", &e.access_token, Some(&code))
        .await
        .problem(409, "mfa_enforced");
    assert_eq!(me(&app, &e.access_token).await["mfa"]["enrolled"], true);
    // The code was not spent on the refused call.
    let r = app.new_recovery_codes(&e.access_token, Some(&code)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(count_events(&app, &local, "totp.removed").await, 0);

    // Enforced on the portal only: still required of a local user (on any surface).
    app.set_policy(
        "t1",
        &admin.access_token,
        json!({"enforce_mfa": true, "surfaces": ["portal"], "remember_device_days": 0}),
    )
    .await;
    app.delete("/v1/me/totp", Some(&e.access_token))
        .await
        .problem(409, "mfa_enforced");

    // Microsoft users are exempt by default: they may remove theirs.
    let r = app.delete("/v1/me/totp", Some(&ms_e.access_token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // No longer challenged; on the portal, where 2FA is enforced, exempt.
    let started = app.start_login(&ms.clone().portal()).await;
    assert_eq!(started.body["status"], "authenticated", "{}", started.text);
    assert_eq!(started.body["mfa"], "exempt");

    // Once the tenant exempts local users too, the local user may remove theirs.
    app.set_policy(
        "t1",
        &admin.access_token,
        json!({"enforce_mfa": true, "exempt_identity_providers": ["local", "microsoft"]}),
    )
    .await;
    let r = app.delete("/v1/me/totp", Some(&e.access_token)).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones() {
    let (app, u, e) = TestApp::with_enrolled("t1", "u1").await;
    let r = app
        .post("/v1/me/recovery-codes", Some(&e.access_token), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new = codes(&r);
    assert_eq!(new.len(), 10);
    let mut unique = new.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "ten different codes");
    assert!(new.iter().all(|c| !e.recovery_codes.contains(c)));
    assert_eq!(
        count_events(&app, &u, "recovery_codes.regenerated").await,
        1
    );
    assert_eq!(
        me(&app, &e.access_token).await["mfa"]["recovery_codes_remaining"],
        10
    );

    // The old codes stopped working; the new ones work.
    app.advance(30);
    let started = app.start_login(&u).await;
    let (login_id, token) = login_of(&started);
    let path = format!("/v1/logins/{login_id}/recover");
    app.post(
        &path,
        Some(&token),
        json!({"recovery_code": e.recovery_codes[0]}),
    )
    .await
    .problem(400, "invalid_code");
    let ok = app
        .post(&path, Some(&token), json!({"recovery_code": new[0]}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["recovery_codes_remaining"], 9);

    // Step-up: an old token alone is not enough.
    app.advance(301);
    app.post("/v1/me/recovery-codes", Some(&e.access_token), json!({}))
        .await
        .problem(403, "step_up_required");

    // A recovery code as X-MFA-Code proves the factor and is used up.
    let r = app.re_enroll(&e.access_token, Some(&new[1])).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        me(&app, &e.access_token).await["mfa"]["recovery_codes_remaining"],
        8
    );
    app.new_recovery_codes(&e.access_token, Some(&new[1]))
        .await
        .problem(400, "invalid_code");
    let r = app.new_recovery_codes(&e.access_token, Some(&new[2])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let third = codes(&r);
    assert!(third.iter().all(|c| !new.contains(c)));
    assert_eq!(
        me(&app, &e.access_token).await["mfa"]["recovery_codes_remaining"],
        10
    );
    assert_eq!(
        count_events(&app, &u, "recovery_codes.regenerated").await,
        2
    );
    assert_eq!(count_events(&app, &u, "recovery_code.used").await, 3);
    // Codes and secrets never reach the audit trail.
    let trail = app
        .sql_strings("SELECT details::text AS s FROM audit_events")
        .await
        .join("\n");
    for secret in new.iter().chain(third.iter()).chain([&e.secret]) {
        assert!(!trail.contains(secret.as_str()), "{secret} in {trail}");
    }
}

#[tokio::test]
async fn step_up_codes_are_always_checked_and_counted() {
    let (app, _, admin) = TestApp::with_admin("t1").await;
    let (u, e) = app.enrolled("t1", "u1").await;
    let path = "/v1/me/recovery-codes";

    // A code that is sent is checked even though the token alone would do.
    let wrong = wrong_code(&e.secret, app.now());
    app.with_code(Method::POST, path, &e.access_token, Some(&wrong))
        .await
        .problem(400, "invalid_code");
    assert_eq!(failed_attempts(&app, &u).await, 1);
    assert_eq!(count_events(&app, &u, "totp.verify_failed").await, 1);
    // Malformed: neither six digits nor a recovery code; not counted.
    app.with_code(Method::POST, path, &e.access_token, Some("12ab"))
        .await
        .problem(400, "invalid_request");
    assert_eq!(failed_attempts(&app, &u).await, 1);

    // A code already used (here: for the sign-in) is `code_reused`, not counted.
    let fresh = app.sign_in_with_code(&u, &e.secret).await;
    assert_eq!(failed_attempts(&app, &u).await, 0);
    let used = code_at(&e.secret, app.now());
    app.with_code(Method::POST, path, &fresh, Some(&used))
        .await
        .problem(400, "code_reused");
    assert_eq!(failed_attempts(&app, &u).await, 0);
    assert_eq!(count_events(&app, &u, "totp.code_reused").await, 1);

    // Five wrong step-up codes lock the user.
    app.advance(301);
    for i in 1..=5 {
        app.with_code(
            Method::POST,
            path,
            &fresh,
            Some(&wrong_code(&e.secret, app.now())),
        )
        .await
        .problem(400, "invalid_code");
        if i < 5 {
            assert_eq!(failed_attempts(&app, &u).await, i);
        }
    }
    assert_eq!(count_events(&app, &u, "user.locked").await, 1);
    let users = app
        .get("/v1/tenants/t1/users", Some(&admin.access_token))
        .await;
    let row = item(&users, "user_id", "u1");
    assert_eq!(
        ts(&row["locked_until"]),
        app.now() + chrono::Duration::seconds(60)
    );
    // While locked no code is evaluated: a right TOTP code, a recovery code.
    let next = code_at(&e.secret, app.now() + chrono::Duration::seconds(30));
    let r = app.with_code(Method::POST, path, &fresh, Some(&next)).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(r.headers["retry-after"], "60");
    app.with_code(Method::POST, path, &fresh, Some(&e.recovery_codes[0]))
        .await
        .problem(429, "too_many_attempts");
    assert_eq!(
        me(&app, &fresh).await["mfa"]["recovery_codes_remaining"],
        10
    );
    // Nor may a locked user sign in.
    let (login_id, token) = login_of(&app.start_login(&u).await);
    app.verify_code(&login_id, &token, &next)
        .await
        .problem(429, "too_many_attempts");
    // After the lockout the right code works again.
    app.advance(60);
    let users = app
        .get(
            "/v1/tenants/t1/users?mfa=enrolled",
            Some(&admin.access_token),
        )
        .await;
    let row = item(&users, "user_id", "u1");
    assert_eq!(row["locked_until"], Value::Null, "the lockout is over");
    let r = app
        .with_code(
            Method::POST,
            path,
            &fresh,
            Some(&code_at(&e.secret, app.now())),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn removing_the_factor_ends_sign_ins_started_against_it() {
    let (app, u, e) = TestApp::with_enrolled("acme", "jane").await;
    app.advance(30);
    let (login_id, mfa) = app.challenge(&u).await;
    let fresh = app.sign_in_with_code(&u, &e.secret).await;
    // Alive right before the removal (after the other sign-in too): the 401 below can only
    // come from the removal.
    assert_eq!(app.attempts_left(&login_id, &mfa).await, 5);
    let r = app.delete("/v1/me/totp", Some(&fresh)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.login_view(&login_id, &mfa)
        .await
        .problem(401, "unauthenticated");
}
