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

use crate::error::ApiError;
use crate::http::extract::bearer;
use crate::http::extract::read_capped;
use crate::rate_limit::Whose;
use crate::services;
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
    let whose = gate_subject(
        req.path(),
        |name| req.match_info().get(name).map(str::to_owned),
        bearer(req.request()),
        &body,
    );
    req.set_payload(Payload::from(body));
    let work = async {
        // Resolving the user and waiting for their turn hold no database connection (only a
        // service key is read, on a connection given back first), and count against the deadline.
        let resolved = match whose {
            Some(w) => match services::turns::key(&state, w).await {
                Ok(r) => r,
                Err(e) => return Ok(req.into_response(e.error_response())),
            },
            None => Default::default(),
        };
        if let Some(k) = resolved.service_key {
            // Checked once: `http::auth::ServiceAuth` takes it from here.
            req.extensions_mut().insert(k);
        }
        let _turn = match resolved.key {
            Some(k) => state.user_gate.enter(k).await,
            None => None,
        };
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(res) => res,
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

/// The whole body (at most `MAX_BODY`), or `408` if it does not arrive within `limit`.
async fn read_body(mut payload: Payload, limit: Duration) -> Result<Bytes, ApiError> {
    let read = async { read_capped(&mut payload).await.map(BytesMut::freeze) };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(ApiError::RequestTimeout))
}

/// Whose row this request will wait on, for `rate_limit::UserGate` (one key per user,
/// `services::turns` resolves it): the user in the path (admin actions on a user) or in a
/// sign-in start's body, with the request's credential; the user named by the mfa token of a step of a sign-in (any route under
/// `/v1/logins/{login_id}`); the user of the access token of a `/v1/me` call.
pub fn gate_subject(
    path: &str,
    param: impl Fn(&str) -> Option<String>,
    bearer: Option<&str>,
    body: &[u8],
) -> Option<Whose> {
    if param("login_id").is_some() {
        // The mfa token's length is checked as `http::auth::MfaAuth` does.
        let token = bearer.filter(|t| t.starts_with("mfa_") && t.len() <= 100)?;
        return Some(Whose::MfaToken(token.to_owned()));
    }
    let credential = bearer.map(str::to_owned);
    if let (Some(tenant_id), Some(user_id)) = (param("tenant_id"), param("user_id")) {
        return Some(Whose::Named {
            tenant_id,
            user_id,
            credential,
        });
    }
    if path == "/v1/logins" {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let (t, u) = (v["tenant_id"].as_str()?, v["user_id"].as_str()?);
        return Some(Whose::Named {
            tenant_id: t.to_owned(),
            user_id: u.to_owned(),
            credential,
        });
    }
    if path == "/v1/me" || path.starts_with("/v1/me/") {
        let token = bearer.filter(|t| !t.starts_with("sk_") && !t.starts_with("mfa_"))?;
        return Some(Whose::AccessToken(token.to_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn user(t: &str, u: &str, credential: Option<&str>) -> Option<Whose> {
        Some(Whose::Named {
            tenant_id: t.into(),
            user_id: u.into(),
            credential: credential.map(str::to_owned),
        })
    }

    #[test]
    fn every_route_that_waits_on_a_user_names_the_user() {
        let login = |n: &str| (n == "login_id").then(|| "L1".to_owned());
        assert_eq!(
            gate_subject("/v1/logins/L1/verify", login, Some("mfa_x"), b""),
            Some(Whose::MfaToken("mfa_x".into()))
        );
        assert_eq!(gate_subject("/v1/logins/L1/verify", login, None, b""), None);
        assert_eq!(
            gate_subject("/v1/logins/L1/verify", login, Some("sk_x"), b""),
            None
        );
        let path_user = |n: &str| match n {
            "tenant_id" => Some("acme".to_owned()),
            "user_id" => Some("jane".to_owned()),
            _ => None,
        };
        assert_eq!(
            gate_subject(
                "/v1/tenants/acme/users/jane/unlock",
                path_user,
                Some("eyJ"),
                b""
            ),
            user("acme", "jane", Some("eyJ"))
        );
        let body = br#"{"tenant_id":"acme","user_id":"jane","email":"j@a.example"}"#;
        assert_eq!(
            gate_subject("/v1/logins", none, Some("sk_x"), body),
            user("acme", "jane", Some("sk_x"))
        );
        assert_eq!(gate_subject("/v1/logins", none, None, b"not json"), None);
        assert_eq!(
            gate_subject("/v1/me/factors", none, Some("eyJ.a.b"), b""),
            Some(Whose::AccessToken("eyJ.a.b".into()))
        );
        assert_eq!(gate_subject("/v1/me", none, Some("mfa_x"), b""), None);
        assert_eq!(gate_subject("/v1/mexico", none, Some("eyJ"), b""), None);
        assert_eq!(gate_subject("/readyz", none, None, b""), None);
        assert_eq!(
            gate_subject(
                "/v1/tenants/acme/policy",
                |n| (n == "tenant_id").then(|| "acme".to_owned()),
                None,
                b""
            ),
            None
        );
    }
}
