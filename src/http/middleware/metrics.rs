//! Middleware that counts every request in the metrics registry (`crate::metrics`) under
//! its route pattern, method label and status, with its latency.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

/// The label of an unmatched path: any path may be requested, so none becomes a label.
pub const UNMATCHED: &str = "UNKNOWN";

/// The `method` label: the standard methods by name, every other token as `OTHER` (a method
/// is any token a client sends; copying it would let anyone add series).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Middleware: counts every request under its route pattern, method label and status.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let endpoint = res.request().match_pattern();
        let status = res.status().as_u16();
        let secs = started.elapsed().as_secs_f64();
        let endpoint = endpoint.as_deref().unwrap_or(UNMATCHED);
        state
            .metrics
            .request(endpoint, method_label(&method), status, secs);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for m in ["FOO", "get", &"X".repeat(3000)] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "OTHER");
        }
    }
}
