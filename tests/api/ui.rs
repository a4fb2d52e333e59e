//! The reference pages under `/ui/` (docs/API.md §18, §19, §21): their headers, the origins
//! handed to the page in `<meta>` elements, `MFA_UI=false`, and same-origin calls through CORS.

use crate::helpers::TestApp;

fn header<'a>(r: &'a crate::helpers::Resp, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_no_embedding_by_default() {
    let app = TestApp::spawn().await;
    let r = app.get("/ui/", None).await;
    assert_eq!(r.status, 200);
    assert!(header(&r, "content-type").starts_with("text/html"));
    let csp = header(&r, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&r, "referrer-policy"), "no-referrer");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert!(r
        .text
        .contains(r#"<meta name="mspbots-mfa-embed-origins" content="">"#));
    // No inline script or style in the HTML itself.
    assert!(
        !r.text.contains("<script>") && !r.text.contains("<style") && !r.text.contains("style=")
    );

    let js = app.get("/ui/app.js", None).await;
    assert_eq!(js.status, 200);
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert_eq!(header(&js, "x-content-type-options"), "nosniff");
    let css = app.get("/ui/app.css", None).await;
    assert!(header(&css, "content-type").starts_with("text/css"));
    app.get("/ui/nope.js", None).await.problem(404, "not_found");
    let bare = app.get("/ui", None).await;
    assert_eq!(bare.status, 200, "reqwest follows /ui → /ui/");
}

#[tokio::test]
async fn embed_and_return_origins_reach_the_policy_and_the_page() {
    let app = TestApp::spawn_with(|s| {
        s.ui_embed_origins = vec![
            "https://app.example".into(),
            "https://portal.example".into(),
        ];
        s.ui_return_origins = vec!["https://app.example".into()];
    })
    .await;
    let r = app.get("/ui/", None).await;
    let csp = header(&r, "content-security-policy");
    assert!(
        csp.contains("frame-ancestors https://app.example https://portal.example"),
        "{csp}"
    );
    assert!(r.text.contains(
        r#"<meta name="mspbots-mfa-embed-origins" content="https://app.example https://portal.example">"#
    ));
    assert!(r
        .text
        .contains(r#"<meta name="mspbots-mfa-return-origins" content="https://app.example">"#));
}

#[tokio::test]
async fn mfa_ui_false_hides_the_pages() {
    let app = TestApp::spawn_with(|s| s.ui = false).await;
    app.get("/ui/", None).await.problem(404, "not_found");
    app.get("/ui/app.js", None).await.problem(404, "not_found");
}

#[tokio::test]
async fn a_same_origin_call_from_the_page_passes_cors() {
    let app = TestApp::spawn().await;
    let origin = format!("http://127.0.0.1:{}", app.port);
    let r = app
        .send(
            reqwest::Method::POST,
            "/v1/logins/00000000-0000-0000-0000-000000000000/verify",
            Some("mfa_x"),
            Some(serde_json::json!({"code": "123456"})),
            &[("Origin", origin.as_str())],
        )
        .await;
    // The API's own answer: the CORS layer (actix-cors 0.7, which does not block on an origin
    // it does not list) lets the page's same-origin calls through untouched.
    r.problem(401, "unauthenticated");
    let other = app
        .send(
            reqwest::Method::GET,
            "/healthz",
            None,
            None,
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
}
