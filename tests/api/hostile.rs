//! Hostile input and sharp edges (issue 10): bounded metrics, invisible characters, ids of
//! dots, authorization before validation, If-Match forms, HEAD, /docs headers, every bad
//! field named, and a policy PUT that changes nothing.

use std::io::{Read, Write};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{login_of, Resp, TestApp, User};

/// The number of series of the request counter.
fn request_series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with("mfa_http_requests_total{"))
        .count()
}

#[tokio::test]
async fn metrics_series_stay_bounded_whatever_methods_and_paths_are_sent() {
    let app = TestApp::spawn().await;
    app.get("/healthz", None).await;
    let before = request_series(&app.get("/metrics", None).await.text);
    for i in 0..1000 {
        let method = Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            format!("/nope-{i}")
        } else {
            "/healthz".to_owned()
        };
        let r = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        app.get(&format!("/random/{i}/{}", "x".repeat(i % 50)), None)
            .await;
    }
    let m = app.get("/metrics", None).await.text;
    let after = request_series(&m);
    // 404 and 405 under two endpoints and two methods, plus /metrics itself.
    assert!(after <= before + 6, "{before} -> {after}\n{m}");
    assert!(!m.contains("M17X") && !m.contains("/nope-") && !m.contains("/random/"));
    assert!(
        m.contains(r#"endpoint="UNKNOWN",method="OTHER",status="404""#),
        "{m}"
    );
    assert!(
        m.contains(r#"endpoint="/healthz",method="OTHER",status="405""#),
        "{m}"
    );
    assert!(m.len() < 64 * 1024, "{} bytes", m.len());
}

#[tokio::test]
async fn swagger_assets_are_counted_under_their_route_pattern() {
    let app = TestApp::spawn().await;
    for asset in [
        "/docs/",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        assert_eq!(app.get(asset, None).await.status, 200, "{asset}");
    }
    let m = app.get("/metrics", None).await.text;
    assert!(
        m.contains(
            r#"mfa_http_requests_total{endpoint="/docs/{_:.*}",method="GET",status="200"} 3"#
        ),
        "{m}"
    );
}

#[tokio::test]
async fn format_characters_are_rejected_in_names_issuer_roles_and_email() {
    let app = TestApp::spawn().await;
    let u = User::new("acme", "u-1");
    for (field, value) in [
        ("display_name", json!("Jane \u{202e}eoD")),
        ("display_name", json!("\u{feff}Jane")),
        ("display_name", json!("Ja\u{200b}ne")),
        ("roles", json!(["ad\u{200d}min"])),
        ("email", json!("ja\u{202e}ne@acme.example")),
    ] {
        let mut body = u.login_body();
        body[field] = value;
        let r = app.post("/v1/logins", Some(&app.service_key), body).await;
        r.problem(400, "invalid_request");
        assert!(r.text.contains(field), "{}", r.text);
    }
    let (_, admin) = app.admin("acme").await;
    for issuer in ["\u{202e}stobPSM", "MSP\u{feff}bots", "MSPbots\u{2066}"] {
        let r = app
            .enforce(
                "acme",
                &admin.access_token,
                json!({"enforce_mfa": true, "issuer": issuer}),
            )
            .await;
        r.problem(400, "invalid_request");
        assert_eq!(r.body["errors"][0]["field"], "issuer", "{}", r.text);
    }
    // The spec says so too: the patterns exclude the format characters.
    let spec = app.get("/openapi.json", None).await.body;
    let s = &spec["components"]["schemas"];
    let class = mspbots_mfa::domain::text::BMP_FORMAT_CLASS;
    for pattern in [
        &s["StartLogin"]["properties"]["display_name"]["pattern"],
        &s["Issuer"]["pattern"],
        &s["Role"]["pattern"],
        &s["FactorName"]["pattern"],
    ] {
        assert!(pattern.as_str().unwrap().contains(class), "{pattern}");
    }
}

#[tokio::test]
async fn ids_made_of_dots_are_rejected() {
    let app = TestApp::spawn().await;
    for id in [".", "..", "..."] {
        for field in ["tenant_id", "user_id"] {
            let mut body = User::new("acme", "u-1").login_body();
            body[field] = json!(id);
            let r = app.post("/v1/logins", Some(&app.service_key), body).await;
            r.problem(400, "invalid_request");
            assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
        }
    }
    app.get("/v1/tenants/.../policy", Some(&app.service_key))
        .await
        .problem(404, "not_found");
    let r = app
        .delete("/v1/tenants/acme/users/...", Some(&app.service_key))
        .await;
    r.problem(404, "not_found");
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM tenants").await, 0);
}

async fn put_policy(app: &TestApp, token: &str, body: Value, if_match: &str) -> Resp {
    app.send(
        Method::PUT,
        "/v1/tenants/acme/policy",
        Some(token),
        Some(body),
        &[("If-Match", if_match)],
    )
    .await
}

#[tokio::test]
async fn who_may_call_is_checked_before_the_body_is_judged() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let member = app.password_token(&User::new("acme", "u-2")).await;
    let (_, other_admin) = app.admin("other").await;
    for token in [&member, &other_admin.access_token] {
        put_policy(&app, token, json!({"foo": 1}), "\"v1\"")
            .await
            .problem(403, "forbidden");
        // Nor does a missing If-Match tell a non-admin anything.
        app.send(
            Method::PUT,
            "/v1/tenants/acme/policy",
            Some(token),
            Some(json!({"foo": 1})),
            &[],
        )
        .await
        .problem(403, "forbidden");
    }
    // Bodies that are ignored still are judged only after the caller's rights.
    let malformed = |path: String, token: String| {
        app.client
            .post(app.url(&path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
    };
    let r = malformed("/v1/tenants/acme/users/u-2/unlock".into(), member.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A service key that does not exist, with a body that is not valid either: 401.
    app.post("/v1/logins", Some("sk_not-a-key"), json!({"foo": 1}))
        .await
        .problem(401, "unauthenticated");
    // An mfa token that is not this login's, with an invalid body: 401 or 404, not 400.
    app.set_policy("acme", &admin.access_token, json!({"enforce_mfa": true}))
        .await;
    let (login_id, _) = login_of(&app.start_login(&User::new("acme", "u-3")).await);
    for action in ["verify", "recover", "totp-enrollment/confirm"] {
        let r = app
            .login_post(&login_id, "mfa_forged", action, json!({"foo": 1}))
            .await;
        r.problem(401, "unauthenticated");
    }
    let path = format!("/v1/logins/{login_id}/totp-enrollment");
    let r = malformed(path, "mfa_forged".into()).await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn if_match_empty_is_missing_unquoted_is_ours_and_weak_is_explained() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let t = &admin.access_token;
    let on = json!({"enforce_mfa": true});
    put_policy(&app, t, on.clone(), "")
        .await
        .problem(428, "precondition_required");
    put_policy(&app, t, on.clone(), "   ")
        .await
        .problem(428, "precondition_required");
    let weak = put_policy(&app, t, on.clone(), "W/\"v1\"").await;
    weak.problem(400, "invalid_request");
    assert_eq!(weak.body["errors"][0]["field"], "If-Match");
    assert!(weak.text.contains("weak"), "{}", weak.text);
    put_policy(&app, t, on.clone(), "garbage")
        .await
        .problem(400, "invalid_request");
    put_policy(&app, t, on.clone(), "\"v9\"")
        .await
        .problem(412, "precondition_failed");
    let ok = put_policy(&app, t, on.clone(), "v1").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.headers["etag"], "\"v2\"");
    // The spec gives X-MFA-Code a pattern (an empty header is not schema-valid).
    let spec = app.get("/openapi.json", None).await.body;
    let params = spec["paths"]["/v1/tenants/{tenant_id}/policy"]["put"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let code = params.iter().find(|p| p["name"] == "X-MFA-Code").unwrap();
    let pattern = code["schema"]["pattern"].as_str().unwrap();
    assert!(pattern.contains("[0-9]{6}"), "{pattern}");
}

#[tokio::test]
async fn head_is_served_wherever_get_is_without_a_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/.well-known/jwks.json",
        "/docs/",
    ] {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let get_len = get.headers().get("content-length").cloned();
        let head = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        if path != "/metrics" {
            assert_eq!(
                head.headers().get("content-length"),
                get_len.as_ref(),
                "{path}"
            );
        }
    }
    let r = app
        .send(Method::HEAD, "/v1/tenants/acme/policy", None, None, &[])
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text.is_empty());
    let post = app.post("/healthz", None, json!({})).await;
    post.problem(405, "method_not_allowed");
    assert_eq!(post.headers["allow"], "GET, HEAD");
    // On the wire: the head only, no body after it.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        head.to_ascii_lowercase().contains("content-length: 15"),
        "{raw}"
    );
    assert_eq!(body, "", "{raw}");
}

#[tokio::test]
async fn docs_carry_a_content_security_policy_and_cannot_be_framed() {
    let app = TestApp::spawn().await;
    for path in ["/docs/", "/docs/swagger-initializer.js", "/docs"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
}

/// Asserts an `invalid_request` problem whose `errors` name `fields`, in this order.
#[track_caller]
fn invalid_fields(r: &Resp, fields: &[&str]) {
    r.problem(400, "invalid_request");
    let named: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {}", r.text))
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(named, fields, "{}", r.text);
}

#[tokio::test]
async fn every_bad_field_is_named_unknown_ones_included() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let r = app
        .enforce(
            "acme",
            &admin.access_token,
            json!({"enforce_mfa": true, "foo": 1}),
        )
        .await;
    r.problem(400, "invalid_request");
    assert_eq!(
        r.body["errors"],
        json!([{"field": "foo", "message": "unknown field"}])
    );
    let r = app
        .enforce(
            "acme",
            &admin.access_token,
            // v1.1: every policy field is optional, so only the bad ones are named.
            json!({"surfaces": ["app", "web"], "issuer": "a:b", "foo": 1, "bar": 2,
                   "max_factors_per_user": 11, "enrollment_grace_days": -1}),
        )
        .await;
    invalid_fields(
        &r,
        &[
            "surfaces[1]",
            "issuer",
            "max_factors_per_user",
            "enrollment_grace_days",
            "bar",
            "foo",
        ],
    );
    let r = app
        .post(
            "/v1/logins",
            Some(&app.service_key),
            json!({"tenant_id": "..", "user_id": 7, "email": "x", "surface": "tv", "extra": true}),
        )
        .await;
    invalid_fields(
        &r,
        &[
            "tenant_id",
            "user_id",
            "email",
            "identity_provider",
            "surface",
            "extra",
        ],
    );
}

#[tokio::test]
async fn a_policy_put_that_changes_nothing_keeps_the_version() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let t = &admin.access_token;
    let first = app.enforce("acme", t, json!({"enforce_mfa": true})).await;
    assert_eq!(first.headers["etag"], "\"v2\"", "{}", first.text);
    let events = app.audit_count("acme", "policy.updated").await;
    for same in [
        json!({"enforce_mfa": true}),
        json!({"enforce_mfa": true, "surfaces": ["portal", "app", "app"], "issuer": " MSPbots "}),
    ] {
        let again = put_policy(&app, t, same, "\"v2\"").await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.headers["etag"], "\"v2\"");
        assert_eq!(again.body["version"], 2);
        assert_eq!(again.body["updated_at"], first.body["updated_at"]);
    }
    assert_eq!(app.audit_count("acme", "policy.updated").await, events);
    // A stale tag is still stale, even for a change that would change nothing.
    put_policy(&app, t, json!({"enforce_mfa": true}), "\"v1\"")
        .await
        .problem(412, "precondition_failed");
    let off = put_policy(&app, t, json!({"enforce_mfa": false}), "\"v2\"").await;
    assert_eq!(off.headers["etag"], "\"v3\"");
}

/// A JSON array is not an object, though serde's derive would fill a struct from one field by
/// field (found by a fresh-seed conformance run: `[]` started an enrollment). Refused with 400
/// and nothing written.
#[tokio::test]
async fn array_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let r = app.start_login(&User::new("acme", "u-1")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["access_token"]
        .as_str()
        .expect("signed in")
        .to_owned();
    let r = app
        .post("/v1/me/totp-enrollment", Some(&token), json!([]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["code"], "invalid_request");
    let r = app
        .post(
            "/v1/logins",
            Some(&app.service_key),
            json!(["acme", "u-2", "u2@acme.example", "local", "app"]),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let written = app
        .sql_strings(
            "SELECT (SELECT count(*) FROM totp_factors) || '/' || \
             (SELECT count(*) FROM users WHERE user_id = 'u-2') AS s",
        )
        .await;
    assert_eq!(written, ["0/0"]);
}
