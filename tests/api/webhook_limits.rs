//! The webhook limits of docs/API.md §20: 20 webhooks per tenant, `/test` once per 10 s
//! per webhook (disabled first), URLs stored as sent, `"*"` alone.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn webhook_the_21st_of_a_tenant_is_webhook_limit_disabled_ones_counted() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let t = Some(admin.access_token.as_str());
    let mut first = String::new();
    for i in 0..20 {
        let r = app
            .post(
                "/v1/tenants/acme/webhooks",
                t,
                json!({"url": format!("https://h{i}.example/")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        if i == 0 {
            first = r.body["webhook_id"].as_str().unwrap().to_owned();
        }
    }
    let r = app
        .patch(
            &format!("/v1/tenants/acme/webhooks/{first}"),
            &admin.access_token,
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            "/v1/tenants/acme/webhooks",
            t,
            json!({"url": "https://h20.example/"}),
        )
        .await;
    r.problem(409, "webhook_limit");
    assert_eq!(
        app.sql_count("SELECT count(*) AS n FROM webhooks").await,
        20
    );
}

#[tokio::test]
async fn webhook_test_at_most_once_per_10_s_and_disabled_first() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let t = Some(admin.access_token.as_str());
    let r = app
        .post(
            "/v1/tenants/acme/webhooks",
            t,
            json!({"url": "https://h.example/"}),
        )
        .await;
    let id = r.body["webhook_id"].as_str().unwrap().to_owned();
    let test = format!("/v1/tenants/acme/webhooks/{id}/test");
    assert_eq!(app.post(&test, t, json!({})).await.status, 202);
    app.advance(3);
    let r = app.post(&test, t, json!({})).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(crate::helpers::retry_after(&r), 7);
    // Disabled: 409 before the 429.
    let patch = format!("/v1/tenants/acme/webhooks/{id}");
    let r = app
        .patch(&patch, &admin.access_token, json!({"status": "disabled"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.post(&test, t, json!({}))
        .await
        .problem(409, "invalid_state");
    let r = app
        .patch(&patch, &admin.access_token, json!({"status": "active"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.advance(6); // 9 s after the accepted test
    app.post(&test, t, json!({}))
        .await
        .problem(429, "too_many_attempts");
    app.advance(1); // the window starts at the last accepted test, not at a refused one
    assert_eq!(app.post(&test, t, json!({})).await.status, 202);
    app.post(&test, t, json!({}))
        .await
        .problem(429, "too_many_attempts");
    let n = app
        .sql_count("SELECT count(*) AS n FROM webhook_deliveries WHERE event_id IS NULL")
        .await;
    assert_eq!(n, 2, "two tests accepted");
}

#[tokio::test]
async fn webhook_urls_are_stored_as_sent_and_star_stands_alone() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let t = Some(admin.access_token.as_str());
    let url = "https://Hooks.Example.com";
    let r = app
        .post("/v1/tenants/acme/webhooks", t, json!({"url": url}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["url"], url, "not rewritten");
    for bad in [
        " https://hooks.example.com/",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\t",
        "https://hooks.example.com/\u{1}",
        "https:///hooks.example.com",
    ] {
        app.post("/v1/tenants/acme/webhooks", t, json!({"url": bad}))
            .await
            .problem(400, "invalid_request");
    }
    for bad in [json!(["*", "user.locked"]), json!(["user.locked", "*"])] {
        app.post(
            "/v1/tenants/acme/webhooks",
            t,
            json!({"url": "https://h.example/", "event_types": bad}),
        )
        .await
        .problem(400, "invalid_request");
    }
    assert_eq!(app.sql_count("SELECT count(*) AS n FROM webhooks").await, 1);
}
