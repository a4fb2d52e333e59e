//! Per-request limits: the body must arrive within `MFA_BODY_TIMEOUT_MS` (`408`); at most
//! [`PER_USER`] requests of one user run at once per instance (so one stuck user cannot
//! take the pool); and the handler — in practice its pool checkout and transaction — must
//! finish within `MFA_DB_DEADLINE_MS` (`503`), however Postgres behaves.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::http::extract::MAX_BODY;
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

/// Requests of one user (or one sign-in) that may run at once on an instance. Each may hold
/// a pooled connection for up to `MFA_LOCK_TIMEOUT_MS` when the user's row is stuck.
pub const PER_USER: usize = 2;

/// Per-user turns: a semaphore per key while someone holds or waits for it.
#[derive(Default)]
pub struct UserGate {
    slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A turn; frees the key's entry when the last holder leaves.
pub struct Turn {
    slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    key: String,
    _permit: OwnedSemaphorePermit,
}

impl UserGate {
    /// Waits for a turn of `key`; `None` (no gating) only if the map is poisoned.
    pub async fn enter(&self, key: String) -> Option<Turn> {
        let sem = {
            let mut slots = self.slots.lock().ok()?;
            slots
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_USER)))
                .clone()
        };
        let permit = sem.acquire_owned().await.ok()?;
        Some(Turn {
            slots: self.slots.clone(),
            key,
            _permit: permit,
        })
    }

    /// Keys with a holder or a waiter (for tests).
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            // The map's reference and this turn's permit: nobody else holds or waits.
            if slots
                .get(&self.key)
                .is_some_and(|s| Arc::strong_count(s) <= 2)
            {
                slots.remove(&self.key);
            }
        }
    }
}

/// Whose request this is, for [`UserGate`]: the sign-in in the path, the user in the path
/// or in a sign-in start's body, or the bearer credential of `/v1/me` (hashed, never kept).
pub fn gate_key(
    path: &str,
    param: impl Fn(&str) -> Option<String>,
    authorization: Option<&[u8]>,
    body: &[u8],
) -> Option<String> {
    if let Some(login) = param("login_id") {
        return Some(format!("login:{login}"));
    }
    if let (Some(t), Some(u)) = (param("tenant_id"), param("user_id")) {
        return Some(format!("user:{t}/{u}"));
    }
    if path == "/v1/logins" {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let (t, u) = (v["tenant_id"].as_str()?, v["user_id"].as_str()?);
        return Some(format!("user:{t}/{u}"));
    }
    if path.starts_with("/v1/me") {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        authorization?.hash(&mut h);
        return Some(format!("me:{:x}", h.finish()));
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
            gate_key("/v1/logins/L1/verify", login, None, b"").as_deref(),
            Some("login:L1")
        );
        let user = |n: &str| match n {
            "tenant_id" => Some("acme".to_owned()),
            "user_id" => Some("jane".to_owned()),
            _ => None,
        };
        assert_eq!(
            gate_key("/v1/tenants/acme/users/jane/unlock", user, None, b"").as_deref(),
            Some("user:acme/jane")
        );
        let body = br#"{"tenant_id":"acme","user_id":"jane","email":"j@a.example"}"#;
        assert_eq!(
            gate_key("/v1/logins", none, None, body).as_deref(),
            Some("user:acme/jane")
        );
        assert_eq!(gate_key("/v1/logins", none, None, b"not json"), None);
        let a = gate_key("/v1/me", none, Some(b"Bearer a"), b"");
        let b = gate_key("/v1/me/totp", none, Some(b"Bearer b"), b"");
        assert!(a.is_some() && b.is_some() && a != b);
        assert!(!a.unwrap_or_default().contains("Bearer"));
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

    #[tokio::test]
    async fn a_user_gets_at_most_per_user_turns_and_the_entry_goes_with_the_last() {
        let gate = UserGate::default();
        let a = gate.enter("u".into()).await.unwrap();
        let b = gate.enter("u".into()).await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), gate.enter("u".into())).await;
        assert!(third.is_err(), "a third turn waits");
        let other = gate.enter("v".into()).await.unwrap();
        drop(a);
        let c = gate.enter("u".into()).await.unwrap();
        assert_eq!(gate.len(), 2);
        drop((b, c, other));
        assert!(gate.is_empty());
    }
}
