//! Sign-in (docs/API.md §3, §5 policy, §6, §7): the seed procedures end to end, enrollment
//! material, access tokens checked with the JWKS alone, Microsoft exemption, surfaces,
//! recovery, the login resource, invalid states, validation, tenant isolation and step-up
//! on the policy, audit events and what is (not) stored.

use chrono::{DateTime, Duration, Utc};
use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{code_at, items, login_of, wrong_code, Resp, TestApp, User};
use crate::tokens::{jwks_claims, ts, verifies_for};

const ISSUER: &str = "mspbots-mfa";

// ---------------------------------------------------------------------------------------
// Local helpers

/// The claims of the `mspbots-app` access token in an answer, checked with the JWKS.
async fn app_claims(app: &TestApp, answer: &Value) -> Value {
    let token = answer["access_token"].as_str().expect("an access token");
    jwks_claims(app, token, "mspbots-app").await
}

fn amr(claims: &Value) -> Vec<&str> {
    claims["amr"]
        .as_array()
        .expect("amr")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// Decodes a QR code from grey pixels.
fn decode_qr(w: usize, h: usize, pixel: impl FnMut(usize, usize) -> u8) -> String {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, pixel);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code");
    grids[0].decode().expect("QR decodes").1
}

/// The text of the `data:image/png;base64,` QR code.
fn decode_png_qr(data_uri: &str) -> String {
    let b64 = data_uri
        .strip_prefix("data:image/png;base64,")
        .expect("a data:image/png;base64, URI");
    let bytes = BASE64.decode(b64.as_bytes()).expect("base64");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .expect("a PNG image")
        .to_luma8();
    let (w, h) = img.dimensions();
    decode_qr(w as usize, h as usize, |x, y| {
        img.get_pixel(x as u32, y as u32).0[0]
    })
}

/// Rasterises the SVG QR code (white background, unit squares `Mx,yh1v1h-1z` in a
/// `viewBox="0 0 n n"`) and decodes it.
fn decode_svg_qr(svg: &str) -> String {
    let vb = svg.split("viewBox=\"0 0 ").nth(1).expect("viewBox");
    let dim: usize = vb.split(' ').next().unwrap().parse().expect("viewBox size");
    let d = svg
        .split(" d=\"")
        .nth(1)
        .expect("a path")
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; dim * dim];
    let mut squares = 0;
    for cmd in d.split('M').filter(|c| !c.trim().is_empty()) {
        let cmd = cmd.trim();
        let rest = cmd
            .strip_suffix("h1v1h-1z")
            .unwrap_or_else(|| panic!("unit square expected, got {cmd}"));
        let (x, y) = rest.split_once(',').expect("x,y");
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        dark[y * dim + x] = true;
        squares += 1;
    }
    assert!(squares > 0);
    const SCALE: usize = 8;
    decode_qr(dim * SCALE, dim * SCALE, |x, y| {
        if dark[(y / SCALE) * dim + x / SCALE] {
            0
        } else {
            255
        }
    })
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Checks everything about "Set Up Authentication" material for this user and returns
/// the secret.
fn check_material(m: &Resp, u: &User, login_expires_at: Option<DateTime<Utc>>) -> String {
    check_material_of(m, u, "MSPbots", login_expires_at)
}

fn check_material_of(
    m: &Resp,
    u: &User,
    issuer: &str,
    login_expires_at: Option<DateTime<Utc>>,
) -> String {
    assert_eq!(m.status, 201, "{}", m.text);
    let b = &m.body;
    let secret = b["secret"].as_str().expect("secret").to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(!secret.contains('='), "no padding");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "RFC 4648 base32 alphabet: {secret}"
    );
    assert_eq!(crate::helpers::base32_decode(&secret).len(), 20);
    assert_eq!(b["issuer"], issuer);
    assert_eq!(b["account_name"], u.email.as_str());
    assert_eq!(b["algorithm"], "SHA1");
    assert_eq!(b["digits"], 6);
    assert_eq!(b["period"], 30);
    let (issuer, account) = (pct(issuer), pct(&u.email));
    let uri = format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
    );
    assert_eq!(b["otpauth_uri"], uri.as_str());
    if let Some(exp) = login_expires_at {
        assert_eq!(
            ts(&b["expires_at"]),
            exp,
            "the pending enrollment lives with the login"
        );
    }
    let png = b["qr_png"].as_str().expect("qr_png");
    assert_eq!(
        decode_png_qr(png),
        uri,
        "the PNG QR code encodes otpauth_uri"
    );
    let svg = b["qr_svg"].as_str().expect("qr_svg");
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "an SVG document: {}",
        &svg[..svg.len().min(80)]
    );
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        decode_svg_qr(svg),
        uri,
        "the SVG QR code encodes otpauth_uri"
    );
    secret
}

fn recovery_codes(r: &Resp) -> Vec<String> {
    r.body["recovery_codes"]
        .as_array()
        .expect("recovery_codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

async fn policy_etag(app: &TestApp, tenant: &str, token: &str) -> String {
    let p = app
        .get(&format!("/v1/tenants/{tenant}/policy"), Some(token))
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    p.headers["etag"].to_str().unwrap().to_owned()
}

async fn put_policy(
    app: &TestApp,
    tenant: &str,
    token: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Resp {
    app.send(
        Method::PUT,
        &format!("/v1/tenants/{tenant}/policy"),
        Some(token),
        Some(body),
        headers,
    )
    .await
}

/// `token` may neither read nor write the tenant's policy: both refused with this problem.
async fn policy_closed(app: &TestApp, tenant: &str, token: &str, status: u16, code: &str) {
    app.get(&format!("/v1/tenants/{tenant}/policy"), Some(token))
        .await
        .problem(status, code);
    let body = json!({"enforce_mfa": true});
    put_policy(app, tenant, token, body, &[("If-Match", "\"v1\"")])
        .await
        .problem(status, code);
}

// ---------------------------------------------------------------------------------------
// The seed procedures

/// Seed procedure 1: the tenant does not enforce 2FA, so the password alone signs in.
#[tokio::test]
async fn policy_off_signs_in_with_the_password_alone() {
    let app = TestApp::spawn().await;
    let u = User::new("acme", "u-1");
    let r = app.start_login(&u).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["status"], "authenticated");
    assert_eq!(b["mfa"], "not_required");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3600);
    assert!(uuid::Uuid::parse_str(b["login_id"].as_str().unwrap()).is_ok());
    assert!(b.get("mfa_token").is_none(), "no second step: {b}");
    let claims = app_claims(&app, b).await;
    assert_eq!(amr(&claims), ["pwd"]);
    assert_eq!(claims["sub"], "u-1");
    assert_eq!(claims["tid"], "acme");
    // The tenant and the user now exist, with the default policy.
    let p = app
        .get("/v1/tenants/acme/policy", Some(&app.service_key))
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.body["enforce_mfa"], false);
    assert_eq!(p.body["surfaces"], json!(["app", "portal"]));
    assert_eq!(p.body["exempt_identity_providers"], json!(["microsoft"]));
    assert_eq!(p.body["issuer"], "MSPbots");
    let types = app.audit_types("acme").await;
    assert_eq!(types, ["login.started", "login.succeeded"]);
}

/// Seed procedures 2 and 3: an admin with 2FA turns 2FA on; a local user must then set up
/// an authenticator app at sign-in ("Setup MFA" → "Set Up Authentication" → confirm) and
/// enter a code at every later sign-in.
#[tokio::test]
async fn admin_turns_2fa_on_then_a_local_user_enrolls_and_later_verifies() {
    let (app, _admin, admin_e) = TestApp::with_admin("acme").await;
    let admin_claims = jwks_claims(&app, &admin_e.access_token, "mspbots-app").await;
    assert_eq!(amr(&admin_claims), ["pwd", "otp", "mfa"]);
    assert_eq!(admin_e.recovery_codes.len(), 10);

    let on = app
        .set_policy("acme", &admin_e.access_token, json!({"enforce_mfa": true}))
        .await;
    assert_eq!(on.body["enforce_mfa"], true);
    assert_eq!(on.body["updated_by"], "admin-1");
    assert_eq!(on.headers["etag"], "\"v2\"");

    // (2) "Setup MFA".
    let u = User::new("acme", "jane");
    let started = app.start_login(&u).await;
    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(started.body["status"], "enrollment_required");
    let (login_id, token) = login_of(&started);
    assert!(token.starts_with("mfa_"), "{token}");
    assert!(token.len() >= 4 + 22, "≥ 128 bits: {token}");
    let expires_at = ts(&started.body["expires_at"]);
    assert_eq!(expires_at, app.now() + Duration::seconds(600));
    assert!(started.body.get("access_token").is_none());

    let view = app.login_view(&login_id, &token).await;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["status"], "enrollment_required");
    assert_eq!(view.body["attempts_left"], 5);

    // "Set Up Authentication".
    let material = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let secret = check_material(&material, &u, Some(expires_at));

    // Confirm with the first code: signed in, recovery codes shown once.
    let done = app
        .confirm_at_login(&login_id, &token, &code_at(&secret, app.now()))
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "authenticated");
    assert_eq!(done.body["token_type"], "Bearer");
    assert_eq!(done.body["expires_in"], 3600);
    let codes = recovery_codes(&done);
    assert_eq!(codes.len(), 10);
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "distinct codes");
    for c in &codes {
        assert_eq!(c.len(), 11, "{c}");
        assert_eq!(&c[5..6], "-", "{c}");
        assert!(
            c.chars()
                .filter(|&ch| ch != '-')
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_lowercase()),
            "{c}"
        );
    }
    let claims = app_claims(&app, &done.body).await;
    assert_eq!(amr(&claims), ["pwd", "otp", "mfa"]);
    // The sign-in is over: its token is dead.
    app.login_view(&login_id, &token)
        .await
        .problem(401, "unauthenticated");

    let me = app.get("/v1/me", done.body["access_token"].as_str()).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["mfa"]["enrolled"], true);
    assert_eq!(me.body["mfa"]["recovery_codes_remaining"], 10);
    assert_eq!(me.body["tenant"]["enforce_mfa"], true);

    // (3) The next sign-in asks for a code.
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;
    let view = app.login_view(&login_id, &token).await;
    assert_eq!(view.body["status"], "verification_required");
    let ok = app.verify_now(&login_id, &token, &secret).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "authenticated");
    assert_eq!(ok.body["token_type"], "Bearer");
    assert_eq!(ok.body["expires_in"], 3600);
    assert!(ok.body.get("recovery_codes").is_none(), "shown once only");
    let claims = app_claims(&app, &ok.body).await;
    assert_eq!(amr(&claims), ["pwd", "otp", "mfa"]);
    assert_eq!(claims["sub"], "jane");

    let users = app
        .get_ok("/v1/tenants/acme/users?mfa=not_enrolled", &app.service_key)
        .await;
    assert_eq!(users["items"], json!([]), "everyone has 2FA now");
}

/// Each "Set Up Authentication" makes a new secret; the previous pending one is discarded
/// and its codes no longer confirm.
#[tokio::test]
async fn each_enrollment_call_makes_a_new_secret_and_the_old_one_stops_confirming() {
    let (app, u, (login_id, token)) = TestApp::with_enrollment_login("acme", "jane").await;
    let first = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let old = check_material(&first, &u, None);
    let second = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let new = check_material(&second, &u, None);
    assert_ne!(old, new, "a new secret each time");
    assert_eq!(
        app.factor_rows("jane").await,
        1,
        "one pending factor: the previous one is gone"
    );

    let old_code = code_at(&old, app.now());
    let new_window: Vec<String> = (-1..=1)
        .map(|s| code_at(&new, app.now() + Duration::seconds(30 * s)))
        .collect();
    assert!(
        !new_window.contains(&old_code),
        "the two secrets happen to share a code (p ≈ 3e-6); rerun"
    );
    app.confirm_at_login(&login_id, &token, &old_code)
        .await
        .problem(400, "invalid_code");
    assert_eq!(app.attempts_left(&login_id, &token).await, 4, "counted");
    let ok = app
        .confirm_at_login(&login_id, &token, &code_at(&new, app.now()))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(recovery_codes(&ok).len(), 10);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM totp_factors WHERE user_id = 'jane' AND status = 'active'"
        )
        .await,
        1
    );
}

/// The tenant's issuer and the user's e-mail are percent-encoded in the otpauth URI (and so
/// in both QR codes), and the codes of that secret confirm.
#[tokio::test]
async fn a_custom_issuer_and_odd_email_are_percent_encoded_in_the_material() {
    let body = json!({"enforce_mfa": true, "issuer": "Acme IT & Co"});
    let (app, r) = TestApp::with_policy("acme", body).await;
    assert_eq!(r.body["issuer"], "Acme IT & Co");
    let mut u = User::new("acme", "jane");
    u.email = "jane+mfa@acme.example".into();
    let (login_id, token) = app.enrollment_login(&u).await;
    let m = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let secret = check_material_of(&m, &u, "Acme IT & Co", None);
    assert!(
        m.body["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Acme%20IT%20%26%20Co:jane%2Bmfa%40acme.example?"),
        "{}",
        m.body["otpauth_uri"]
    );
    let r = app
        .confirm_at_login(&login_id, &token, &code_at(&secret, app.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Access tokens are verifiable by anyone with the JWKS alone; their claims follow §2.
#[tokio::test]
async fn access_tokens_verify_with_the_published_jwks_alone() {
    let (app, _, _) = TestApp::with_enforced_tenant("acme").await;
    let u = User::new("acme", "jane").roles(&["viewer", "editor"]);
    let enrolled = app.enroll_at_login(&u).await;
    let enrolled_at = app.now().timestamp();
    let c = jwks_claims(&app, &enrolled.access_token, "mspbots-app").await;
    assert_eq!(amr(&c), ["pwd", "otp", "mfa"]);
    assert_eq!(
        c["auth_time"], enrolled_at,
        "the confirmation is the factor"
    );

    // A TOTP sign-in on the portal.
    app.advance(30);
    let p = u.clone().portal();
    let r = app.signs_in_now(&p, &enrolled.secret).await;
    let portal_token = r.body["access_token"].as_str().unwrap().to_owned();
    let c = jwks_claims(&app, &portal_token, "mspbots-portal").await;
    let now = app.now().timestamp();
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["aud"], "mspbots-portal");
    assert_eq!(c["sub"], "jane");
    assert_eq!(c["tid"], "acme");
    assert_eq!(c["email"], "jane@acme.example");
    assert_eq!(c["roles"], json!(["viewer", "editor"]));
    assert_eq!(c["idp"], "local");
    assert_eq!(amr(&c), ["pwd", "otp", "mfa"]);
    assert_eq!(c["auth_time"], now);
    assert_eq!(c["iat"], now);
    assert_eq!(c["exp"], now + 3600);
    let jti = c["jti"].as_str().expect("jti").to_owned();
    assert!(!jti.is_empty());
    assert!(
        !verifies_for(&app, &portal_token, "mspbots-app").await,
        "a portal token is not an app token"
    );

    // A TOTP sign-in on the app.
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;
    let r = app.verify_now(&login_id, &token, &enrolled.secret).await;
    let app_token = r.body["access_token"].as_str().unwrap().to_owned();
    let c = jwks_claims(&app, &app_token, "mspbots-app").await;
    assert_eq!(c["aud"], "mspbots-app");
    assert_ne!(c["jti"], jti.as_str(), "a fresh jti per token");
    assert!(!verifies_for(&app, &app_token, "mspbots-portal").await);

    // A recovery-code sign-in.
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;
    let r = app
        .recover_code(&login_id, &token, &enrolled.recovery_codes[0])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = app_claims(&app, &r.body).await;
    assert_eq!(amr(&c), ["pwd", "mfa", "rc"]);
    assert_eq!(c["auth_time"], app.now().timestamp());
    assert_eq!(
        c["exp"].as_i64().unwrap(),
        c["iat"].as_i64().unwrap() + 3600
    );

    // A tampered token does not verify.
    let mut parts: Vec<String> = app_token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).unwrap()).unwrap();
    payload["roles"] = json!(["admin"]);
    parts[1] = BASE64URL_NOPAD.encode(payload.to_string().as_bytes());
    let forged = parts.join(".");
    assert!(!verifies_for(&app, &forged, "mspbots-app").await);
    app.get("/v1/me", Some(&forged))
        .await
        .problem(401, "unauthenticated");
}

// ---------------------------------------------------------------------------------------
// Microsoft users and surfaces

/// Microsoft users are exempt by default when 2FA is enforced; when the admin empties the
/// exemption list they must enroll like everyone else.
#[tokio::test]
async fn microsoft_users_are_exempt_until_the_policy_removes_the_exemption() {
    let (app, _, admin) = TestApp::with_enforced_tenant("acme").await;
    let ms = User::new("acme", "bob").microsoft();
    let r = app.start_login(&ms).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["status"], "authenticated", "{}", r.text);
    assert_eq!(r.body["mfa"], "exempt");
    let c = app_claims(&app, &r.body).await;
    assert_eq!(amr(&c), ["pwd"]);
    assert_eq!(c["idp"], "microsoft");
    // A local user of the same tenant is not exempt.
    let local = app.start_login(&User::new("acme", "jane")).await;
    assert_eq!(local.body["status"], "enrollment_required");

    let r = app
        .set_policy(
            "acme",
            &admin.access_token,
            json!({"enforce_mfa": true, "exempt_identity_providers": []}),
        )
        .await;
    assert_eq!(r.body["exempt_identity_providers"], json!([]));
    let r = app.start_login(&ms).await;
    assert_eq!(r.body["status"], "enrollment_required", "{}", r.text);
    let e = app.enroll_at_login(&ms).await;
    app.advance(30);
    app.signs_in_now(&ms, &e.secret).await;
}

/// An active factor always wins: an enrolled Microsoft user is challenged when the policy
/// is off, and when it is on with Microsoft exempt.
#[tokio::test]
async fn an_enrolled_microsoft_user_is_always_challenged() {
    let app = TestApp::spawn().await;
    let ms = User::new("acme", "bob").microsoft();
    let e = app.enroll_via_me(&ms).await;
    app.advance(30);
    let (login_id, token) = app.challenge(&ms).await; // the policy is off
    let r = app.verify_now(&login_id, &token, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let (_, admin) = app.admin("acme").await;
    let policy = app
        .enforce("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    policy.enforced();
    assert_eq!(
        policy.body["exempt_identity_providers"],
        json!(["microsoft"]),
        "the policy is on with Microsoft exempt: {}",
        policy.text
    );
    // The exemption is real: a Microsoft user without a factor signs in with no code.
    let other = app
        .start_login(&User::new("acme", "carol").microsoft())
        .await;
    assert_eq!(other.body["status"], "authenticated", "{}", other.text);
    app.advance(30);
    let r = app.start_login(&ms).await;
    assert_eq!(
        r.body["status"], "verification_required",
        "exemption only waives enrollment: {}",
        r.text
    );
    assert!(r.body.get("access_token").is_none());
    // Also on the portal.
    let r = app.start_login(&ms.clone().portal()).await;
    assert_eq!(r.body["status"], "verification_required");
}

/// Enforcing 2FA on the portal only leaves MSPbots app sign-ins as they were.
#[tokio::test]
async fn enforcing_only_the_portal_leaves_app_sign_ins_alone() {
    let body = json!({"enforce_mfa": true, "surfaces": ["portal"]});
    let (app, r) = TestApp::with_policy("acme", body).await;
    assert_eq!(r.body["surfaces"], json!(["portal"]));
    let u = User::new("acme", "jane");
    let r = app.start_login(&u).await;
    assert_eq!(r.body["status"], "authenticated", "{}", r.text);
    assert_eq!(r.body["mfa"], "not_required");
    let r = app.start_login(&u.clone().portal()).await;
    assert_eq!(r.body["status"], "enrollment_required", "{}", r.text);
    // Once enrolled (on the portal), the app challenges too.
    let e = app.enroll_at_login(&u.clone().portal()).await;
    let c = jwks_claims(&app, &e.access_token, "mspbots-portal").await;
    assert_eq!(c["aud"], "mspbots-portal");
    let r = app.start_login(&u).await;
    assert_eq!(r.body["status"], "verification_required", "{}", r.text);
}

// ---------------------------------------------------------------------------------------
// Recovery

/// A recovery code signs in once, whatever its case or hyphen; the same code again is a
/// wrong code.
#[tokio::test]
async fn recovery_codes_sign_in_once_whatever_their_case_or_hyphen() {
    let (app, u, e) = TestApp::with_enrolled("acme", "jane").await;
    let code = e.recovery_codes[3].clone();
    let typed = code.to_uppercase().replace('-', "");
    assert_ne!(typed, code);

    let (login_id, token) = app.challenge(&u).await;
    let r = app.recover_code(&login_id, &token, &typed).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "authenticated");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["recovery_codes_remaining"], 9);
    let c = app_claims(&app, &r.body).await;
    assert_eq!(amr(&c), ["pwd", "mfa", "rc"]);
    app.login_view(&login_id, &token)
        .await
        .problem(401, "unauthenticated");
    assert_eq!(app.audit_count("acme", "recovery_code.used").await, 1);

    // Used up, in any spelling.
    for again in [code.clone(), typed.clone(), code.replace('-', " ")] {
        let (login_id, token) = app.challenge(&u).await;
        app.recover_code(&login_id, &token, &again)
            .await
            .problem(400, "invalid_code");
        assert_eq!(app.attempts_left(&login_id, &token).await, 4, "counted");
    }
    assert_eq!(app.audit_count("acme", "recovery_code.failed").await, 3);
    // Another code still works, and the count goes down.
    let r = app.recovery_sign_in(&u, &e.recovery_codes[4]).await;
    assert_eq!(r.body["recovery_codes_remaining"], 8);
}

// ---------------------------------------------------------------------------------------
// The login resource, states and validation

/// `token` is no key to `login_id`: its view and a verify with the right code are both
/// `401 unauthenticated`.
async fn token_refused(app: &TestApp, login_id: &str, token: &str, secret: &str) {
    app.login_view(login_id, token)
        .await
        .problem(401, "unauthenticated");
    app.verify_now(login_id, token, secret)
        .await
        .problem(401, "unauthenticated");
}

/// `GET /v1/logins/{id}` shows the sign-in to its own live mfa token, and to nothing else.
#[tokio::test]
async fn login_resource_shows_progress_only_to_its_own_live_token() {
    let app = TestApp::spawn().await;
    let u = User::new("acme", "jane").portal();
    let e = app.enroll_via_me(&u).await;
    let (login_id, token) = app.challenge(&u).await;
    let started_at = app.now();

    let r = app.login_view(&login_id, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["login_id"], login_id.as_str());
    assert_eq!(r.body["status"], "verification_required");
    assert_eq!(r.body["tenant_id"], "acme");
    assert_eq!(r.body["user_id"], "jane");
    assert_eq!(r.body["surface"], "portal");
    assert_eq!(r.body["attempts_left"], 5);
    assert_eq!(
        ts(&r.body["expires_at"]),
        started_at + Duration::seconds(600)
    );

    // A wrong code is counted.
    app.verify_wrong(&login_id, &token, &e.secret).await;
    assert_eq!(app.attempts_left(&login_id, &token).await, 4);

    // Another login's id (even a real one), a random id, a malformed id: 404.
    let bob = User::new("acme", "bob");
    app.enroll_via_me(&bob).await;
    let (other_id, other_token) = app.challenge(&bob).await;
    for path in [
        format!("/v1/logins/{other_id}"),
        format!("/v1/logins/{}", uuid::Uuid::new_v4()),
        "/v1/logins/not-a-uuid".to_owned(),
        "/v1/logins/1".to_owned(),
    ] {
        app.get(&path, Some(&token)).await.problem(404, "not_found");
    }
    app.verify_now(&other_id, &token, &e.secret)
        .await
        .problem(404, "not_found");
    assert_eq!(
        app.attempts_left(&other_id, &other_token).await,
        5,
        "the other login is untouched"
    );

    // Credentials of another kind, or none, or unknown: 401.
    let path = format!("/v1/logins/{login_id}");
    for cred in [
        Some(e.access_token.as_str()),
        Some(app.service_key.as_str()),
        Some("mfa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
    ] {
        let r = app.get(&path, cred).await;
        r.problem(401, "unauthenticated");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    app.verify_now(&login_id, &e.access_token, &e.secret)
        .await
        .problem(401, "unauthenticated");

    // The token names its user's turn after a dot; edited to another user's (or cut off), it
    // is an unknown token: refused, nothing counted.
    let (random, owner) = token.split_once('.').expect("mfa_<random>.<owner>");
    let (_, bobs_owner) = other_token.split_once('.').expect("mfa_<random>.<owner>");
    assert_ne!(owner, bobs_owner);
    for edited in [format!("{random}.{bobs_owner}"), random.to_owned()] {
        token_refused(&app, &login_id, &edited, &e.secret).await;
    }
    assert_eq!(app.attempts_left(&login_id, &token).await, 4);

    // Expired after 10 minutes (the clock moves; nothing sleeps).
    app.advance(599);
    assert_eq!(
        app.attempts_left(&login_id, &token).await,
        4,
        "alive at 599 s"
    );
    app.advance(2);
    token_refused(&app, &login_id, &token, &e.secret).await;
    assert_eq!(
        app.user_failures("acme", "jane").await,
        1,
        "attempts on a dead login are not evaluated"
    );

    // After success the token is dead.
    let (login_id, token) = app.challenge(&u).await;
    let r = app.verify_now(&login_id, &token, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.login_view(&login_id, &token)
        .await
        .problem(401, "unauthenticated");
    app.recover_code(&login_id, &token, &e.recovery_codes[0])
        .await
        .problem(401, "unauthenticated");
}

/// Each step only in its state: `409 invalid_state` otherwise.
#[tokio::test]
async fn steps_out_of_order_are_invalid_state() {
    // enrollment_required: no verify, no recover, no confirm before an enrollment.
    let (app, _, (login_id, token)) = TestApp::with_enrollment_login("acme", "jane").await;
    app.verify_code(&login_id, &token, "123456")
        .await
        .problem(409, "invalid_state");
    app.recover_code(&login_id, &token, "abcde-fghjk")
        .await
        .problem(409, "invalid_state");
    let r = app.confirm_at_login(&login_id, &token, "123456").await;
    r.problem(409, "invalid_state");
    assert!(
        r.body["detail"].as_str().unwrap().contains("pending"),
        "{}",
        r.text
    );
    assert_eq!(
        app.attempts_left(&login_id, &token).await,
        5,
        "invalid states count nothing"
    );

    // verification_required: no enrollment (a password never adds a device), no confirm.
    let (login_id, token) = app.challenge(&User::first_admin("acme")).await;
    let r = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    r.problem(409, "invalid_state");
    app.confirm_at_login(&login_id, &token, "123456")
        .await
        .problem(409, "invalid_state");
    assert_eq!(app.attempts_left(&login_id, &token).await, 5);
    assert_eq!(
        app.factor_rows("admin-1").await,
        1,
        "no pending factor was added beside the active one"
    );
}

/// A code that is not exactly six ASCII digits, or a body without the field, is a 400
/// `invalid_request` naming the field, and is not counted.
#[tokio::test]
async fn malformed_codes_are_invalid_requests_and_not_counted() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 1000).await;
    app.enforced_tenant("acme").await;
    let u = User::new("acme", "jane");
    app.enroll_at_login(&u).await;
    let (login_id, token) = app.challenge(&u).await;

    let bad_codes = [
        json!("12345"),
        json!("abcdef"),
        json!("1234567"),
        json!(" 123456"),
        json!("12 345"),
        json!("１２３４５６"),
        json!(""),
        json!(123456),
        json!(null),
    ];
    for code in &bad_codes {
        let r = app
            .login_post(&login_id, &token, "verify", json!({"code": code}))
            .await;
        r.problem(400, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], "code", "{code}: {}", r.text);
    }
    // No body at all, an empty object, the wrong field.
    for body in [None, Some(json!({})), Some(json!({"otp": "123456"}))] {
        let r = app
            .send(
                Method::POST,
                &format!("/v1/logins/{login_id}/verify"),
                Some(&token),
                body,
                &[],
            )
            .await;
        r.problem(400, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], "code", "{}", r.text);
        assert!(
            r.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("missing field"),
            "{}",
            r.text
        );
    }
    // Malformed JSON.
    let r = app
        .client
        .post(app.url(&format!("/v1/logins/{login_id}/verify")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"code\": ")
        .send()
        .await
        .unwrap();
    Resp::from(r).await.problem(400, "invalid_request");
    // Recovery codes of the wrong shape.
    for rc in ["", "abc", "abcde-fghjk-mnpqr", "!!!!!-!!!!!"] {
        app.recover_code(&login_id, &token, rc)
            .await
            .problem(400, "invalid_request");
    }
    app.login_post(&login_id, &token, "recover", json!({}))
        .await
        .problem(400, "invalid_request");
    assert_eq!(
        app.attempts_left(&login_id, &token).await,
        5,
        "none counted"
    );
    assert_eq!(app.user_failures("acme", "jane").await, 0);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 0);

    // Confirm takes the same rules.
    let started = app.start_login(&User::new("acme", "bob")).await;
    let (bob_login, bob_token) = login_of(&started);
    let m = app
        .login_post(&bob_login, &bob_token, "totp-enrollment", json!({}))
        .await;
    assert_eq!(m.status, 201);
    for code in &bad_codes {
        app.login_post(
            &bob_login,
            &bob_token,
            "totp-enrollment/confirm",
            json!({"code": code}),
        )
        .await
        .problem(400, "invalid_request");
    }
    app.login_post(&bob_login, &bob_token, "totp-enrollment/confirm", json!({}))
        .await
        .problem(400, "invalid_request");
    assert_eq!(app.attempts_left(&bob_login, &bob_token).await, 5);
    assert_eq!(app.user_failures("acme", "bob").await, 0);
    // And the login still works with a good code.
    let secret = m.body["secret"].as_str().unwrap();
    let ok = app
        .confirm_at_login(&bob_login, &bob_token, &code_at(secret, app.now()))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

// ---------------------------------------------------------------------------------------
// Tenant policy: isolation, admin rule, If-Match, step-up

#[tokio::test]
async fn tenant_policy_is_isolated_and_guarded_by_admin_2fa_if_match_and_step_up() {
    let (app, _, a) = TestApp::with_admin("ta").await;
    let (_, b) = app.admin("tb").await;
    let a_token = a.access_token.clone();
    // ta's policy, as its admin.
    let put = async |body: Value, headers: &[(&str, &str)]| {
        put_policy(&app, "ta", &a_token, body, headers).await
    };

    // Another tenant's admin: forbidden, read or write.
    policy_closed(&app, "tb", &a_token, 403, "forbidden").await;
    assert_eq!(
        app.get("/v1/tenants/tb/policy", Some(&b.access_token))
            .await
            .body["enforce_mfa"],
        false,
        "tb unchanged"
    );

    // A user of the tenant who is not an admin, even with 2FA: forbidden.
    let plain = User::new("ta", "plain");
    let plain_e = app.enroll_via_me(&plain).await;
    app.get("/v1/tenants/ta/policy", Some(&plain_e.access_token))
        .await
        .problem(403, "forbidden");

    // An admin without a second factor (amr ["pwd"]): mfa_required_for_admin.
    let bare = User::new("ta", "admin-2").roles(&["admin"]);
    let r = app.start_login(&bare).await;
    assert_eq!(r.body["status"], "authenticated");
    let bare_token = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        amr(&jwks_claims(&app, &bare_token, "mspbots-app").await),
        ["pwd"]
    );
    policy_closed(&app, "ta", &bare_token, 403, "mfa_required_for_admin").await;

    // If-Match: required, must be current; success returns the new ETag.
    let etag = policy_etag(&app, "ta", &a_token).await;
    assert_eq!(etag, "\"v1\"");
    put(json!({"enforce_mfa": true}), &[])
        .await
        .problem(428, "precondition_required");
    let r = put(
        json!({"enforce_mfa": true, "surfaces": ["app"]}),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"v2\"");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["enforce_mfa"], true);
    assert_eq!(r.body["surfaces"], json!(["app"]));
    assert_eq!(
        r.body["exempt_identity_providers"],
        json!(["microsoft"]),
        "kept"
    );
    assert_eq!(r.body["updated_by"], "admin-1");
    assert_eq!(policy_etag(&app, "ta", &a_token).await, "\"v2\"");
    put(json!({"enforce_mfa": false}), &[("If-Match", &etag)])
        .await
        .problem(412, "precondition_failed");

    // Step-up: the admin's 2FA sign-in is older than 5 minutes.
    app.advance(301);
    let etag = policy_etag(&app, "ta", &a_token).await; // reading needs no step-up
    put(json!({"enforce_mfa": true}), &[("If-Match", &etag)])
        .await
        .problem(403, "step_up_required");
    put(
        json!({"enforce_mfa": true}),
        &[
            ("If-Match", &etag),
            ("X-MFA-Code", &wrong_code(&a.secret, app.now())),
        ],
    )
    .await
    .problem(400, "invalid_code");
    assert_eq!(app.user_failures("ta", "admin-1").await, 1, "counted");
    put(
        json!({"enforce_mfa": true}),
        &[("If-Match", &etag), ("X-MFA-Code", "12ab")],
    )
    .await
    .problem(400, "invalid_request");
    app.advance(30);
    let code = code_at(&a.secret, app.now());
    let r = put(
        json!({"enforce_mfa": true, "surfaces": ["app", "portal"]}),
        &[("If-Match", &etag), ("X-MFA-Code", &code)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"v3\"");
    assert_eq!(r.body["surfaces"], json!(["app", "portal"]));
    assert_eq!(
        app.user_failures("ta", "admin-1").await,
        0,
        "a success resets"
    );
    // The step-up code is used up.
    put(
        json!({"enforce_mfa": false}),
        &[("If-Match", "\"v3\""), ("X-MFA-Code", &code)],
    )
    .await
    .problem(400, "code_reused");
    assert_eq!(policy_etag(&app, "ta", &a_token).await, "\"v3\"");
    assert_eq!(app.audit_count("ta", "policy.updated").await, 2);
    assert_eq!(app.audit_count("tb", "policy.updated").await, 0);

    // Service keys: a scoped key reads its tenants only and never writes.
    let scoped = app.scoped_key(&["ta"]).await;
    let r = app.get("/v1/tenants/ta/policy", Some(&scoped)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["etag"], "\"v3\"");
    app.get("/v1/tenants/tb/policy", Some(&scoped))
        .await
        .problem(403, "forbidden");
    for key in [&scoped, &app.service_key] {
        let body = json!({"enforce_mfa": false});
        put_policy(&app, "ta", key, body, &[("If-Match", "\"v3\"")])
            .await
            .problem(401, "unauthenticated");
    }
    // An mfa token is not a credential here.
    let started = app.start_login(&User::new("ta", "jane")).await;
    let (_, mfa) = login_of(&started);
    app.get("/v1/tenants/ta/policy", Some(&mfa))
        .await
        .problem(401, "unauthenticated");
}

// ---------------------------------------------------------------------------------------
// Audit events and secrets at rest

#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

#[derive(diesel::QueryableByName)]
struct TableColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

#[derive(diesel::QueryableByName)]
struct BytesRow {
    #[diesel(sql_type = diesel::sql_types::Binary)]
    b: Vec<u8>,
}

/// Every row of every table of the app's database, as JSON text.
async fn dump_database(app: &TestApp) -> String {
    use diesel_async::RunQueryDsl;
    let mut c = app.db.connect().await;
    let tables: Vec<TextRow> = diesel::sql_query(
        "SELECT table_name::text AS t FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .load(&mut c)
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.t.as_str()).collect();
    for expected in [
        "audit_events",
        "logins",
        "recovery_codes",
        "service_keys",
        "tenants",
        "totp_factors",
        "users",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let mut out = String::new();
    for t in &tables {
        let rows: Vec<TextRow> = diesel::sql_query(format!(
            "SELECT row_to_json(x)::text AS t FROM \"{}\" x",
            t.t
        ))
        .load(&mut c)
        .await
        .unwrap();
        for r in rows {
            out.push_str(&r.t);
            out.push('\n');
        }
    }
    out
}

/// Every value of every `bytea` column.
async fn all_bytes(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    use diesel_async::RunQueryDsl;
    let mut c = app.db.connect().await;
    let cols: Vec<TableColumn> = diesel::sql_query(
        "SELECT table_name::text AS table_name, column_name::text AS column_name \
         FROM information_schema.columns WHERE table_schema = 'public' AND data_type = 'bytea'",
    )
    .load(&mut c)
    .await
    .unwrap();
    let mut out = vec![];
    for col in cols {
        let rows: Vec<BytesRow> = diesel::sql_query(format!(
            "SELECT \"{c}\" AS b FROM \"{t}\" WHERE \"{c}\" IS NOT NULL",
            c = col.column_name,
            t = col.table_name
        ))
        .load(&mut c)
        .await
        .unwrap();
        for r in rows {
            out.push((format!("{}.{}", col.table_name, col.column_name), r.b));
        }
    }
    out
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// After every flow: the audit trail has the events, and neither it nor any table holds
/// a secret, code or token in clear (or as an unkeyed hash).
#[tokio::test]
async fn flows_are_audited_and_no_secret_code_or_token_is_stored_in_clear() {
    let app = TestApp::spawn().await;
    let mut secrets: Vec<String> = vec![]; // base32 TOTP secrets
    let mut mfa_tokens: Vec<String> = vec![];
    let mut codes: Vec<String> = vec![]; // recovery codes as shown
    let mut access: Vec<String> = vec![];
    let mut totp_codes: Vec<String> = vec![];

    let (_, admin) = app.admin("acme").await;
    secrets.push(admin.secret.clone());
    codes.extend(admin.recovery_codes.clone());
    access.push(admin.access_token.clone());
    let on = app
        .enforce("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    assert_eq!(on.status, 200);

    // Enrollment at sign-in, by hand to keep the mfa token.
    let u = User::new("acme", "jane");
    let started = app
        .client
        .post(app.url("/v1/logins"))
        .bearer_auth(&app.service_key)
        .header("user-agent", "Mozilla/5.0 (TestBrowser)")
        .json(&u.login_body())
        .send()
        .await
        .unwrap();
    let started = Resp::from(started).await;
    let (login_id, token) = login_of(&started);
    mfa_tokens.push(token.clone());
    let m = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let first_secret = m.body["secret"].as_str().unwrap().to_owned();
    secrets.push(first_secret);
    let m = app
        .login_post(&login_id, &token, "totp-enrollment", json!({}))
        .await;
    let secret = m.body["secret"].as_str().unwrap().to_owned();
    secrets.push(secret.clone());
    app.confirm_at_login(&login_id, &token, &wrong_code(&secret, app.now()))
        .await
        .problem(400, "invalid_code");
    let code = code_at(&secret, app.now());
    totp_codes.push(code.clone());
    let done = app.confirm_at_login(&login_id, &token, &code).await;
    assert_eq!(done.status, 200, "{}", done.text);
    codes.extend(recovery_codes(&done));
    access.push(done.body["access_token"].as_str().unwrap().to_owned());

    // Verify, recover, and one sign-in left open (its token hash is still stored).
    app.advance(30);
    let (login_id, token) = app.challenge(&u).await;
    mfa_tokens.push(token.clone());
    let code = code_at(&secret, app.now());
    totp_codes.push(code.clone());
    let r = app.verify_code(&login_id, &token, &code).await;
    assert_eq!(r.status, 200);
    access.push(r.body["access_token"].as_str().unwrap().to_owned());
    let (login_id, token) = app.challenge(&u).await;
    mfa_tokens.push(token.clone());
    app.recover_code(&login_id, &token, "zzzzz-zzzzz")
        .await
        .problem(400, "invalid_code");
    let r = app.recover_code(&login_id, &token, &codes[12]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    access.push(r.body["access_token"].as_str().unwrap().to_owned());
    let (open_id, open_token) = app.challenge(&u).await;
    mfa_tokens.push(open_token.clone());

    // The audit trail.
    let types = app.audit_types("acme").await;
    for t in [
        "login.started",
        "login.succeeded",
        "totp.enrollment_started",
        "totp.enrolled",
        "totp.verify_failed",
        "policy.updated",
        "recovery_code.used",
        "recovery_code.failed",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM audit_events WHERE user_agent = 'Mozilla/5.0 (TestBrowser)' \
             AND type = 'login.started' AND ip = '127.0.0.1'"
        )
        .await,
        1,
        "who and from where"
    );
    let via_api = app
        .get(
            "/v1/tenants/acme/audit-events?limit=200",
            Some(&app.service_key),
        )
        .await;
    assert_eq!(items(&via_api).len(), types.len());

    // Nothing secret anywhere: the whole database as JSON, and the audit API.
    let mut needles: Vec<(String, String)> = vec![]; // (what, lower-case needle)
    for s in &secrets {
        let raw = crate::helpers::base32_decode(s);
        needles.push(("base32 secret".into(), s.to_lowercase()));
        needles.push(("hex secret".into(), HEXLOWER.encode(&raw)));
        needles.push(("base64 secret".into(), BASE64.encode(&raw).to_lowercase()));
    }
    for t in &mfa_tokens {
        needles.push(("mfa token".into(), t.to_lowercase()));
        needles.push(("mfa token body".into(), t[4..].to_lowercase()));
    }
    for c in &codes {
        needles.push(("recovery code".into(), c.to_lowercase()));
        needles.push(("normalized recovery code".into(), c.replace('-', "")));
    }
    for a in &access {
        needles.push(("access token".into(), a.to_lowercase()));
        needles.push((
            "access token signature".into(),
            a.rsplit('.').next().unwrap().to_lowercase(),
        ));
    }
    for c in &totp_codes {
        // A six-digit code could appear by chance in a number; look for it as a value.
        needles.push(("totp code".into(), format!("\"{c}\"")));
    }
    let dump = dump_database(&app).await.to_lowercase();
    assert!(
        dump.contains("mozilla/5.0 (testbrowser)"),
        "the dump is real"
    );
    assert!(dump.contains("\"totp.enrolled\""), "the dump is real");
    let api = via_api.text.to_lowercase();
    for (what, n) in &needles {
        assert!(!dump.contains(n.as_str()), "{what} found in the database");
        assert!(!api.contains(n.as_str()), "{what} found in the audit API");
    }

    // Binary columns: no secret bytes inside any value (e.g. the ciphertext), and the
    // stored hashes are keyed (not a plain SHA-256 of the token or code).
    let bytes = all_bytes(&app).await;
    assert!(bytes.iter().any(|(c, _)| c == "totp_factors.ciphertext"));
    assert!(bytes.iter().any(|(c, _)| c == "logins.token_hash"));
    assert!(bytes.iter().any(|(c, _)| c == "recovery_codes.code_hash"));
    let mut plain_hashes: Vec<Vec<u8>> = vec![];
    for t in &mfa_tokens {
        plain_hashes.push(Sha256::digest(t.as_bytes()).to_vec());
    }
    for c in &codes {
        plain_hashes.push(Sha256::digest(c.as_bytes()).to_vec());
        plain_hashes.push(Sha256::digest(c.replace('-', "").as_bytes()).to_vec());
    }
    plain_hashes.push(Sha256::digest(app.service_key.as_bytes()).to_vec());
    for (col, value) in &bytes {
        for s in &secrets {
            let raw = crate::helpers::base32_decode(s);
            assert!(!contains_bytes(value, &raw), "secret bytes inside {col}");
            assert!(
                !contains_bytes(value, &raw[..8]),
                "part of the secret inside {col}"
            );
        }
        for t in &mfa_tokens {
            assert!(
                !contains_bytes(value, &t.as_bytes()[4..20]),
                "mfa token inside {col}"
            );
        }
        for h in &plain_hashes {
            assert_ne!(value, h, "{col} holds an unkeyed hash");
        }
    }
    // The open sign-in's token is stored as a hash, and still works.
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM logins WHERE token_hash IS NOT NULL")
            .await,
        1
    );
    assert_eq!(app.attempts_left(&open_id, &open_token).await, 5);
}
