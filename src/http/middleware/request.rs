//! The outermost middleware of every request: a request id (echoed from `X-Request-Id`
//! when the caller sends a sane one) on every response and every log line of the request,
//! the body guard (`413`/`415` before routing), an access log line, error responses of
//! other middlewares turned into problems; and, per resource, a panic guard that turns a
//! panicking handler into a 500 problem.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::ApiError;
use crate::http::extract::body_guard;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn accept_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

/// Middleware (outermost): request id, request span, access log.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(accept_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    let res = match body_guard(&req) {
        Err(e) => req.into_response(e.error_response()).map_into_boxed_body(),
        Ok(()) => next
            .call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body(),
    };
    let mut res = as_problem(res);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let status = res.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, latency_ms, "request finished"));
    Ok(res)
}

/// An error response that is not problem+json yet (one from CORS, or actix's own) gets
/// the problem body of its status; its status and headers stay.
fn as_problem(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let body = serde_json::to_vec(&crate::error::problem_for_status(status)).unwrap_or_default();
    res.map_body(|head, _| {
        head.headers_mut().insert(
            actix_web::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        BoxBody::new(body)
    })
}

/// Middleware (per resource, after routing): a panicking handler answers `500 internal`
/// instead of dropping the connection. It sits on resources because the app router needs
/// sole ownership of the request while it routes.
pub async fn panic_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let http_req = req.request().clone();
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            tracing::error!("handler panicked");
            let e = ApiError::Internal(anyhow::anyhow!("handler panicked"));
            Ok(ServiceResponse::new(http_req, e.error_response()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_panicking_handler_answers_500_problem_with_a_request_id() {
        use actix_web::middleware::from_fn;
        use actix_web::{test, web, App};
        let app = test::init_service(
            App::new()
                .service(
                    web::resource("/boom")
                        .wrap(from_fn(panic_guard))
                        .to(|| async {
                            if true {
                                panic!("boom")
                            } else {
                                "never"
                            }
                        }),
                )
                .wrap(from_fn(request_context)),
        )
        .await;
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(res.status(), 500);
        assert!(res.headers().contains_key("x-request-id"));
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["code"], "internal");
        // The worker survives: the next request is served.
        let res =
            test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(res.status(), 500);
    }

    #[actix_web::test]
    async fn a_rejected_cors_preflight_is_a_problem_with_a_request_id() {
        use actix_web::middleware::from_fn;
        use actix_web::{test, web, App};
        let app = test::init_service(
            App::new()
                .route("/x", web::post().to(|| async { "ok" }))
                .wrap(actix_cors::Cors::default().allowed_origin("https://ok.example"))
                .wrap(from_fn(request_context)),
        )
        .await;
        let req = test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/x")
            .insert_header(("Origin", "https://evil.example"))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["code"], "invalid_request");
        assert_eq!(body["status"], 400);
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(accept_request_id(&ok).as_deref(), Some("abc-123_x.y:z"));
        for bad in ["", "has space", "a\"b", "<script>"] {
            assert!(
                accept_request_id(&HeaderValue::from_str(bad).unwrap()).is_none(),
                "{bad}"
            );
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert!(accept_request_id(&long).is_none());
    }
}
