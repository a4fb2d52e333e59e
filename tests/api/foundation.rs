//! The foundation (issue 2): error model, operations endpoints, request ids, readiness,
//! service keys, the OpenAPI document.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Resp, TestApp, User};

/// `POST /v1/logins` with the service key and a raw `body` of this `content-type`.
async fn post_raw(app: &TestApp, content_type: &str, body: String) -> Resp {
    let r = app
        .client
        .post(app.url("/v1/logins"))
        .bearer_auth(&app.service_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Resp::from(r).await
}

#[tokio::test]
async fn health_and_readiness_answer_200_with_a_request_id() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["status"], "ok");
        assert!(!r.headers["x-request-id"].is_empty());
        assert_eq!(r.headers["cache-control"], "no-store");
    }
}

/// `GET path` sent with this `X-Request-Id`.
async fn get_with_request_id(app: &TestApp, path: &str, id: &str) -> Resp {
    let headers = [("X-Request-Id", id)];
    app.send(Method::GET, path, None, None, &headers).await
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_replaced_when_not() {
    let app = TestApp::spawn().await;
    let r = get_with_request_id(&app, "/healthz", "abc-123").await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
    let r = get_with_request_id(&app, "/nope", "trace:42").await;
    assert_eq!(r.headers["x-request-id"], "trace:42", "errors carry it too");
    let r = get_with_request_id(&app, "/healthz", "<script>").await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;
    app.get("/nope", None).await.problem(404, "not_found");
    let r = app.delete("/healthz", None).await;
    r.problem(405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, HEAD");
    let r = app
        .send(Method::PATCH, "/v1/tenants/t1/policy", None, None, &[])
        .await;
    r.problem(405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, HEAD, PUT");
}

#[tokio::test]
async fn oversized_and_non_json_bodies_are_refused_before_anything_else() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(40 * 1024);
    for key in [None, Some(app.service_key.as_str())] {
        let mut req = app
            .client
            .post(app.url("/v1/logins"))
            .header("content-type", "application/json")
            .body(big.clone());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        crate::helpers::Resp::from(req.send().await.unwrap())
            .await
            .problem(413, "payload_too_large");
        let mut req = app
            .client
            .post(app.url("/v1/logins"))
            .form(&[("tenant_id", "t1")]);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        crate::helpers::Resp::from(req.send().await.unwrap())
            .await
            .problem(415, "unsupported_media_type");
    }
    // Exactly 16 KiB is still read (and then judged as JSON).
    let edge = format!("{{\"pad\":\"{}\"}}", "y".repeat(16 * 1024 - 10));
    assert_eq!(edge.len(), 16 * 1024);
    post_raw(&app, "application/json", edge)
        .await
        .problem(400, "invalid_request");
}

/// docs/API.md §20: `application/json` with parameters only; `+json` suffixes are `415` too.
#[tokio::test]
async fn request_bodies_are_application_json_with_parameters_only() {
    let app = TestApp::spawn().await;
    // Read as JSON: the body is then judged (missing fields).
    for ok in ["application/json; charset=utf-8", "Application/JSON"] {
        post_raw(&app, ok, "{}".into())
            .await
            .problem(400, "invalid_request");
    }
    for refused in [
        "application/merge-patch+json",
        "application/vnd.api+json",
        "text/json",
        "text/plain",
    ] {
        post_raw(&app, refused, "{}".into())
            .await
            .problem(415, "unsupported_media_type");
    }
}

#[tokio::test]
async fn malformed_json_and_bad_fields_name_what_is_wrong() {
    let app = TestApp::spawn().await;
    let r = post_raw(&app, "application/json", "{bad json".into()).await;
    r.problem(400, "invalid_request");
    assert!(r.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("malformed JSON"));

    let mut body = User::new("t1", "u1").login_body();
    body.as_object_mut().unwrap().remove("tenant_id");
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    r.problem(400, "invalid_request");
    assert_eq!(r.body["errors"][0]["field"], "tenant_id");

    let mut body = User::new("t1", "u1").login_body();
    body["surface"] = json!("desktop");
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    r.problem(400, "invalid_request");
    assert_eq!(r.body["errors"][0]["field"], "surface");

    let mut body = User::new("t1", "u1").login_body();
    body["user_id"] = json!("has space");
    let r = app.post("/v1/logins", Some(&app.service_key), body).await;
    assert_eq!(r.body["errors"][0]["field"], "user_id");

    let mut body = User::new("t1", "u1").login_body();
    body["roles"] = json!([1]);
    app.post("/v1/logins", Some(&app.service_key), body)
        .await
        .problem(400, "invalid_request");
    // Nothing was written by any of these.
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM users").await, 0);
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM audit_events")
            .await,
        0
    );
}

#[tokio::test]
async fn readiness_follows_the_database_without_a_restart() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/readyz", None).await.status, 200);
    // Take the database away under the running app (its connections are killed).
    let mut admin = app.db_admin().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut admin,
        &format!("DROP DATABASE \"{}\" WITH (FORCE)", app.db.name),
    )
    .await
    .unwrap();
    let r = app.get("/readyz", None).await;
    r.problem(503, "unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        !r.text.contains("does not exist"),
        "no internals leak: {}",
        r.text
    );
    // Requests that need the database say so too.
    let r = app.start_login(&User::new("t1", "u1")).await;
    r.problem(503, "unavailable");
    // Back, without restarting the app.
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut admin,
        &format!("CREATE DATABASE \"{}\"", app.db.name),
    )
    .await
    .unwrap();
    assert_eq!(app.get("/readyz", None).await.status, 200);
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn service_keys_authenticate_until_revoked_and_respect_their_scope() {
    let app = TestApp::spawn().await;
    let u = User::new("t1", "u1");
    assert_eq!(app.start_login(&u).await.status, 201);
    // Missing, unknown, or of another kind.
    app.post("/v1/logins", None, u.login_body())
        .await
        .problem(401, "unauthenticated");
    app.post("/v1/logins", Some("sk_unknown"), u.login_body())
        .await
        .problem(401, "unauthenticated");
    app.post("/v1/logins", Some("mfa_x"), u.login_body())
        .await
        .problem(401, "unauthenticated");
    app.post(
        "/v1/logins",
        Some("eyJhbGciOiJub25lIn0.e30."),
        u.login_body(),
    )
    .await
    .problem(401, "unauthenticated");
    // Scoped to t2: t1 is forbidden, t2 fine.
    let scoped = app.scoped_key(&["t2"]).await;
    app.post("/v1/logins", Some(&scoped), u.login_body())
        .await
        .problem(403, "forbidden");
    assert_eq!(
        app.post(
            "/v1/logins",
            Some(&scoped),
            User::new("t2", "u1").login_body()
        )
        .await
        .status,
        201
    );
    // Revoked keys stop working at once.
    let mut conn = app.db.connect().await;
    let keys = mspbots_mfa::services::service_keys::list(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 2);
    for k in &keys {
        assert!(
            mspbots_mfa::services::service_keys::revoke(&mut conn, k.key_id)
                .await
                .unwrap()
        );
    }
    app.post("/v1/logins", Some(&app.service_key), u.login_body())
        .await
        .problem(401, "unauthenticated");
    // Only hashes are stored.
    assert_eq!(
        app.sql_count(&format!(
            "SELECT count(*) AS n FROM service_keys WHERE position('{}'::bytea in key_hash) > 0",
            &app.service_key[3..13]
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn operations_endpoints_serve_jwks_metrics_docs_and_the_committed_spec() {
    let app = TestApp::spawn().await;
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    let k = &jwks.body["keys"][0];
    assert_eq!(
        (
            k["kty"].as_str(),
            k["crv"].as_str(),
            k["alg"].as_str(),
            k["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    assert!(k["d"].is_null(), "never the private part");

    app.get("/nope", None).await;
    app.get("/healthz", None).await;
    let m = app.get("/metrics", None).await;
    assert_eq!(m.status, 200);
    for needle in [
        "mfa_http_requests_total",
        "mfa_http_requests_duration_seconds_bucket",
        "mfa_db_pool_connections",
        "mfa_second_factor_attempts_total{outcome=\"reused\"} 0",
        "mfa_lockouts_total 0",
        "endpoint=\"/healthz\"",
        "endpoint=\"UNKNOWN\"",
    ] {
        assert!(m.text.contains(needle), "missing {needle} in\n{}", m.text);
    }

    let spec = app.get("/openapi.json", None).await;
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert_eq!(
        spec.text, committed,
        "served spec must be byte-identical to openapi/openapi.json"
    );

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200, "redirect followed to the UI");
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("cdn") && !html.contains("unpkg"),
        "served offline"
    );
    let init = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = mspbots_mfa::openapi::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
}
