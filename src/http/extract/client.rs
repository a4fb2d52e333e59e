//! Who is calling, as the request says: the client's address (through trusted proxies),
//! its user agent, and its bearer credential.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};

use crate::error::ApiError;
use crate::services::ClientMeta;
use crate::state::AppState;

/// The client IP: the peer, unless the peer is a trusted proxy, in which case the nearest
/// untrusted address in `X-Forwarded-For` (read right to left, so a client cannot spoof
/// it by sending its own header).
fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    match peer {
        Some(p) if is_trusted(&p) => {
            let xff: Vec<IpAddr> = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            xff.iter()
                .rev()
                .find(|ip| !is_trusted(ip))
                .copied()
                .or(xff.first().copied())
                .or(Some(p))
        }
        other => other,
    }
}

impl FromRequest for ClientMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<actix_web::web::Data<AppState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        ready(Ok(ClientMeta {
            ip: client_ip(req, &trusted),
            user_agent,
        }))
    }
}

/// The bearer credential of the request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request from `peer` that says it was forwarded for `xff`.
    fn forwarded(peer: &str, xff: &str) -> HttpRequest {
        actix_web::test::TestRequest::default()
            .peer_addr(peer.parse().unwrap())
            .insert_header(("x-forwarded-for", xff))
            .to_http_request()
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let via_proxy = forwarded("10.1.2.3:5000", "6.6.6.6, 203.0.113.9, 10.0.0.7");
        let direct = forwarded("198.51.100.1:5000", "6.6.6.6");
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(client_ip(&via_proxy, &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(&direct, &trusted), ip("198.51.100.1"));
    }

    #[test]
    fn bearer_takes_the_token() {
        use actix_web::test::TestRequest;
        let r = TestRequest::default()
            .insert_header(("authorization", "bearer sk_abc"))
            .to_http_request();
        assert_eq!(bearer(&r), Some("sk_abc"));
        let r = TestRequest::default()
            .insert_header(("authorization", "Basic x"))
            .to_http_request();
        assert_eq!(bearer(&r), None);
    }
}
