//! Request extractors that answer in problem+json: the JSON body (16 KiB, JSON only, empty
//! reads as `{}`), query strings, the client's address and user agent, bearer credentials.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// A JSON request body parsed into `T`, with field paths in its errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Turns a serde error into a 400 naming the field.
pub fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let mut message = inner.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let mut field = e.path().to_string();
    if field == "." || field == "?" {
        field = String::new();
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        field = if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        };
    }
    if inner.is_syntax() || inner.is_eof() {
        message = format!("malformed JSON: {message}");
    }
    let detail = if field.is_empty() {
        message.clone()
    } else {
        format!("{field}: {message}")
    };
    ApiError::InvalidRequest {
        detail,
        errors: vec![FieldError { field, message }],
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(json_error)?;
    de.end()
        .map_err(|e| ApiError::field("", format!("malformed JSON: trailing characters ({e})")))?;
    Ok(value)
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let json = is_json(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > MAX_BODY) {
                return Err(ApiError::PayloadTooLarge);
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|_| ApiError::field("", "the request body could not be read"))?;
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ApiError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            if !body.is_empty() && !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse_json(&body).map(JsonBody)
        })
    }
}

/// Checks every request before routing (and before authentication): a declared body over
/// 16 KiB is `413`, a body that is not JSON is `415`. Bodies without a declared length are
/// checked again while they are read (`JsonBody`).
pub fn body_guard(req: &actix_web::dev::ServiceRequest) -> Result<(), ApiError> {
    let h = req.headers();
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::PayloadTooLarge);
    }
    let has_body = declared.is_some_and(|n| n > 0) || h.contains_key(header::TRANSFER_ENCODING);
    if has_body && !is_json(req.request()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

pub use crate::services::ClientMeta;

/// The client IP: the peer, unless the peer is a trusted proxy, in which case the nearest
/// untrusted address in `X-Forwarded-For` (read right to left, so a client cannot spoof
/// it by sending its own header).
pub fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
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

/// Query strings: like `web::Query`, with problem+json errors.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded_de(req.query_string());
        ready(de.map(Query))
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    actix_web::web::Query::<T>::from_query(q)
        .map(|q| q.into_inner())
        .map_err(|e| {
            let msg = match &e {
                actix_web::error::QueryPayloadError::Deserialize(d) => d.to_string(),
                other => other.to_string(),
            };
            ApiError::field("query", msg)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn problem(e: ApiError) -> (String, String) {
        match e {
            ApiError::InvalidRequest { errors, .. } => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let (f, m) = problem(parse_json::<Body>(b"{}").unwrap_err());
        assert_eq!((f.as_str(), m.as_str()), ("name", "missing field `name`"));
        let (f, _) = problem(parse_json::<Body>(br#"{"name":"a","inner":{"n":300}}"#).unwrap_err());
        assert_eq!(f, "inner.n");
        let (f, m) = problem(parse_json::<Body>(b"{bad json").unwrap_err());
        assert_eq!(f, "");
        assert!(m.starts_with("malformed JSON"), "{m}");
        assert!(parse_json::<Body>(br#"{"name":"a"} x"#).is_err());
    }

    #[test]
    fn empty_body_reads_as_an_empty_object() {
        #[derive(Deserialize)]
        struct Empty {}
        assert!(parse_json::<Empty>(b"").is_ok());
        assert!(parse_json::<Empty>(b"  \n").is_ok());
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
        use actix_web::test::TestRequest;
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let req = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.7"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        let direct = TestRequest::default()
            .peer_addr("198.51.100.1:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .to_http_request();
        assert_eq!(
            client_ip(&direct, &trusted),
            Some("198.51.100.1".parse().unwrap())
        );
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
