//! Per-request limits: the body must arrive within `MFA_BODY_TIMEOUT_MS` (`408`); at most
//! `rate_limit::PER_USER` requests of one user run at once per instance (the
//! `rate_limit::UserGate` of the state, so one stuck user cannot take the pool); and the
//! handler — in practice its pool checkout and transaction — must finish within
//! `MFA_DB_DEADLINE_MS` (`503`), however Postgres behaves.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::http::extract::MAX_BODY;
use crate::rate_limit::GateKey;
use crate::state::AppState;

/// Middleware (per resource): reads the body first, under its own timeout, so a slow client
/// is a `408` and never counts against the database deadline; then runs the handler under
/// the deadline. When the deadline passes the handler's future is dropped: a pooled
/// connection inside a transaction is then discarded by the pool (diesel-async sees it
/// mid-transaction), so its socket closes and Postgres rolls the transaction back.
pub async fn time_limits(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if !state.is_ready() && req.path().starts_with("/v1/") {
        let e = ApiError::Unavailable("the database is being prepared".into());
        return Ok(req.into_response(e.error_response()));
    }
    let body_limit = Duration::from_millis(state.settings.body_timeout_ms.into());
    let deadline = Duration::from_millis(state.settings.db_deadline_ms.into());
    let http_req = req.request().clone();
    let body = match read_body(req.take_payload(), body_limit).await {
        Ok(body) => body,
        Err(e) => return Ok(ServiceResponse::new(http_req, e.error_response())),
    };
    let key = gate_key(
        req.path(),
        |name| req.match_info().get(name).map(str::to_owned),
        req.headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
        &body,
    );
    req.set_payload(Payload::from(body));
    let work = async {
        // Waiting for a turn holds no database connection, and counts against the deadline.
        let _turn = match key {
            Some(k) => state.user_gate.enter(k).await,
            None => None,
        };
        next.call(req).await
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            state.metrics.deadline_exceeded.inc();
            let e = ApiError::Unavailable(format!(
                "no answer within the {} ms deadline",
                deadline.as_millis()
            ));
            Ok(ServiceResponse::new(http_req, e.error_response()))
        }
    }
}

/// The whole body (at most [`MAX_BODY`]), or `408` if it does not arrive within `limit`.
async fn read_body(mut payload: Payload, limit: Duration) -> Result<Bytes, ApiError> {
    let read = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::field("", "the request body could not be read"))?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(ApiError::RequestTimeout))
}

/// Whose request this is, for `rate_limit::UserGate`: the sign-in in the path, the user in
/// the path or in a sign-in start's body, or the bearer credential of `/v1/me`.
pub fn gate_key(
    path: &str,
    param: impl Fn(&str) -> Option<String>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Option<GateKey> {
    if let Some(login) = param("login_id") {
        return Some(GateKey::login(login));
    }
    if let (Some(t), Some(u)) = (param("tenant_id"), param("user_id")) {
        return Some(GateKey::user(t, u));
    }
    if path == "/v1/logins" {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let (t, u) = (v["tenant_id"].as_str()?, v["user_id"].as_str()?);
        return Some(GateKey::user(t, u));
    }
    if path.starts_with("/v1/me") {
        return Some(GateKey::credential(authorization?));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn requests_are_keyed_by_user_or_sign_in() {
        let login = |n: &str| (n == "login_id").then(|| "L1".to_owned());
        assert_eq!(
            gate_key("/v1/logins/L1/verify", login, None, b""),
            Some(GateKey::login("L1"))
        );
        let user = |n: &str| match n {
            "tenant_id" => Some("acme".to_owned()),
            "user_id" => Some("jane".to_owned()),
            _ => None,
        };
        assert_eq!(
            gate_key("/v1/tenants/acme/users/jane/unlock", user, None, b""),
            Some(GateKey::user("acme", "jane"))
        );
        let body = br#"{"tenant_id":"acme","user_id":"jane","email":"j@a.example"}"#;
        assert_eq!(
            gate_key("/v1/logins", none, None, body),
            Some(GateKey::user("acme", "jane"))
        );
        assert_eq!(gate_key("/v1/logins", none, None, b"not json"), None);
        let a = gate_key("/v1/me", none, Some(b"Bearer a"), b"");
        let b = gate_key("/v1/me/totp", none, Some(b"Bearer b"), b"");
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(gate_key("/readyz", none, None, b""), None);
        assert_eq!(
            gate_key(
                "/v1/tenants/acme/policy",
                |n| (n == "tenant_id").then(|| "acme".to_owned()),
                None,
                b""
            ),
            None
        );
    }
}
