//! A passkey enrollment and sign-in through the real binary at `RUST_LOG=debug` (the helpers
//! of `e2e`): no challenge, public key, signature or full credential id reaches the log.

use diesel::sql_types::Text;
use serde_json::{json, Value};

use crate::e2e::{call, cli_service_key, command, spawn};
use crate::helpers::{TempDir, TestDb};
use crate::passkeys::Key;

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    s: String,
}

/// Every string under a key `x` or `y` (the stored COSE key's coordinates).
fn coordinates(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("x" | "y", Value::String(s)) => out.push(s.clone()),
                    ("x" | "y", Value::Array(a)) => {
                        let bytes: Vec<u8> = a.iter().map(|b| b.as_u64().unwrap() as u8).collect();
                        out.push(data_encoding::BASE64URL_NOPAD.encode(&bytes));
                    }
                    _ => coordinates(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| coordinates(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn no_webauthn_secret_reaches_a_debug_log() {
    let db = TestDb::new().await;
    let dir = TempDir::new();
    let svc = spawn(command(&db, &dir));
    let key = cli_service_key(&db, &dir);
    let c = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let url = |p: &str| format!("{}{p}", svc.base);
    let port = svc.base.rsplit(':').next().unwrap();
    let mut passkey = Key::at(&format!("http://localhost:{port}"), true);
    let user = json!({"tenant_id": "acme", "user_id": "jane", "email": "jane@acme.example",
                      "identity_provider": "local", "roles": [], "surface": "app"});

    // Registration, signed in (the tenant has no 2FA: the sign-in ends at once).
    let (s, b) = call(&c, post.clone(), url("/v1/logins"), &key, user.clone(), &[]).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (201, Some("authenticated")),
        "{b}"
    );
    let token = b["access_token"].as_str().unwrap().to_owned();
    let body = json!({"type": "webauthn"});
    let (s, started) = call(&c, post.clone(), url("/v1/me/factors"), &token, body, &[]).await;
    assert_eq!(s, 201, "{started}");
    let created = passkey.create(&started["public_key"]);
    let confirm = url(&format!(
        "/v1/me/factors/{}/confirm",
        started["factor_id"].as_str().unwrap()
    ));
    let body = json!({ "credential": created });
    let (s, b) = call(&c, post.clone(), confirm, &token, body, &[]).await;
    assert_eq!(s, 200, "{b}");

    // Sign-in with it.
    let (s, b) = call(&c, post.clone(), url("/v1/logins"), &key, user, &[]).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (201, Some("verification_required")),
        "{b}"
    );
    let login = |a: &str| {
        url(&format!(
            "/v1/logins/{}/{a}",
            b["login_id"].as_str().unwrap()
        ))
    };
    let mfa = b["mfa_token"].as_str().unwrap().to_owned();
    let (s, ch) = call(
        &c,
        post.clone(),
        login("webauthn-challenge"),
        &mfa,
        json!({}),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{ch}");
    let asserted = passkey.get(&ch["public_key"]);
    let body = json!({ "credential": asserted });
    let (s, done) = call(&c, post.clone(), login("webauthn"), &mfa, body, &[]).await;
    assert_eq!(s, 200, "{done}");

    let mut conn = db.connect().await;
    let stored: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT credential::text AS s FROM webauthn_credentials"),
        &mut conn,
    )
    .await
    .unwrap();
    let mut secrets = Vec::new();
    coordinates(&serde_json::from_str(&stored[0].s).unwrap(), &mut secrets);
    assert_eq!(
        secrets.len(),
        2,
        "the public key's x and y: {}",
        stored[0].s
    );
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    secrets.extend([
        text(&started["public_key"]["challenge"]),
        text(&ch["public_key"]["challenge"]),
        text(&created["rawId"]),
        text(&created["response"]["attestationObject"]),
        text(&created["response"]["clientDataJSON"]),
        text(&asserted["response"]["signature"]),
        text(&asserted["response"]["authenticatorData"]),
        text(&asserted["response"]["clientDataJSON"]),
    ]);
    let log = svc.log_text();
    assert!(
        log.contains("request finished"),
        "the access log is there:\n{log}"
    );
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "logged: {s}");
    }
}
