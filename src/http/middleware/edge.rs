//! Rules applied to every request before routing: `HEAD` is served by the `GET` route
//! (RFC 9110 §9.3.2), and the interactive reference under `/docs` gets its security headers.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Only our own scripts, styles and the spec at `/openapi.json`; no framing (clickjacking).
/// Swagger UI sets inline styles and `data:` images; it has no inline script.
pub const DOCS_CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// Middleware: a `HEAD` request is routed as `GET`. The connection still knows it was
/// `HEAD` (actix-http reads that before any middleware), so it sends the head of the `GET`
/// response, `Content-Length` included, and no body.
pub async fn head_and_docs(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let docs = is_docs(req.path());
    let mut res = next.call(req).await?;
    if docs {
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    Ok(res)
}
