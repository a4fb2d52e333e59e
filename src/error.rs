//! The one error type of the HTTP API and its single mapping to RFC 9457 problem+json.
//!
//! Which type to use where: services and extractors return [`ApiError`]; repository
//! functions return `diesel::result::Error` and `?` converts it here (`NotFound` → 404,
//! a lost connection or pool → 503, anything else → 500). A 500 says only "internal":
//! its cause goes to the log, tagged with the request id by the request span.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `tenant_id` or `roles[1]`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

/// RFC 9457 problem details, as every error of this API is sent.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "urn:mspbots:mfa:invalid_code", "title": "Invalid code",
    "status": 400, "detail": "The code is not valid. Check your authenticator app and try again.",
    "code": "invalid_code"}))]
pub struct Problem {
    /// `urn:mspbots:mfa:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code (docs/API.md §7).
    pub code: String,
    /// Present on validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {detail}")]
    InvalidRequest {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("invalid code")]
    InvalidCode,
    #[error("code reused")]
    CodeReused,
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("admin without an active second factor")]
    MfaRequiredForAdmin,
    #[error("step-up required")]
    StepUpRequired,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    #[error("the tenant requires this factor")]
    MfaEnforced,
    #[error("the user has as many factors as the tenant allows")]
    FactorLimit,
    #[error("the user already has a factor of that name")]
    NameTaken,
    #[error("the tenant has as many webhooks as allowed")]
    WebhookLimit,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("precondition required")]
    PreconditionRequired,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("request timeout")]
    RequestTimeout,
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::InvalidRequest {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::InvalidCode => "invalid_code",
            ApiError::CodeReused => "code_reused",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::MfaRequiredForAdmin => "mfa_required_for_admin",
            ApiError::StepUpRequired => "step_up_required",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::InvalidState(_) => "invalid_state",
            ApiError::MfaEnforced => "mfa_enforced",
            ApiError::FactorLimit => "factor_limit",
            ApiError::NameTaken => "name_taken",
            ApiError::WebhookLimit => "webhook_limit",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title_and_detail(&self) -> (&'static str, String) {
        let (t, d): (&str, &str) = match self {
            ApiError::InvalidRequest { detail, .. } => return ("Invalid request", detail.clone()),
            ApiError::InvalidCode => ("Invalid code", "The code is not valid. Check your authenticator app and try again."),
            ApiError::CodeReused => ("Code already used", "This code was already used. Wait for the next code in your authenticator app."),
            ApiError::Unauthenticated => ("Unauthenticated", "A valid credential of the kind this endpoint takes is required."),
            ApiError::Forbidden => ("Forbidden", "The credential is valid but not allowed to do this."),
            ApiError::MfaRequiredForAdmin => ("Two-factor authentication required", "Only an administrator who signed in with two-factor authentication may do this."),
            ApiError::StepUpRequired => ("Step-up required", "Sign in with your second factor again, or send a current code in the X-MFA-Code header."),
            ApiError::NotFound => ("Not found", "No such resource."),
            ApiError::MethodNotAllowed { .. } => ("Method not allowed", "This path does not take that method; see the Allow header."),
            ApiError::InvalidState(why) => return ("Invalid state", (*why).to_owned()),
            ApiError::MfaEnforced => ("Two-factor authentication enforced", "The tenant requires two-factor authentication for this user; the factor cannot be removed."),
            ApiError::FactorLimit => ("Too many authenticators", "The user already has as many authenticator apps as the tenant allows (max_factors_per_user). Remove one first."),
            ApiError::NameTaken => ("Name taken", "The user already has an authenticator app of that name (names are compared ignoring case)."),
            ApiError::WebhookLimit => ("Too many webhooks", "The tenant already has 20 webhooks, disabled ones included. Delete one first."),
            ApiError::PreconditionFailed => ("Precondition failed", "The resource changed since it was read (If-Match is stale). Read it again."),
            ApiError::PreconditionRequired => ("Precondition required", "Send If-Match with the ETag of the resource as last read."),
            ApiError::PayloadTooLarge => ("Payload too large", "The request body is larger than 16 KiB."),
            ApiError::UnsupportedMediaType => ("Unsupported media type", "Send the request body as application/json."),
            ApiError::TooManyAttempts { .. } => ("Too many attempts", "Too many attempts. Try again after the time given in Retry-After."),
            ApiError::RequestTimeout => ("Request timeout", "The request was not received in time. Send it again."),
            ApiError::Unavailable(_) => ("Service unavailable", "The service cannot reach its database. Try again shortly."),
            ApiError::Internal(_) => ("Internal error", "internal"),
        };
        (t, d.to_owned())
    }

    pub fn problem(&self) -> Problem {
        let (title, detail) = self.title_and_detail();
        let errors = match self {
            ApiError::InvalidRequest { errors, .. } if !errors.is_empty() => Some(errors.clone()),
            _ => None,
        };
        Problem {
            type_: format!("urn:mspbots:mfa:{}", self.code()),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
            code: self.code().to_owned(),
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } | ApiError::InvalidCode | ApiError::CodeReused => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::MfaRequiredForAdmin | ApiError::StepUpRequired => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidState(_)
            | ApiError::MfaEnforced
            | ApiError::FactorLimit
            | ApiError::NameTaken
            | ApiError::WebhookLimit => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        match self {
            ApiError::TooManyAttempts { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, (*retry_after_secs).max(1).to_string()));
            }
            ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::Unauthenticated => {
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            // The rest of a late body may still arrive: do not read it as the next request.
            ApiError::RequestTimeout => {
                res.insert_header((header::CONNECTION, "close"));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match e {
            Error::NotFound => ApiError::NotFound,
            other => match transient_cause(&other) {
                Some(why) => ApiError::Unavailable(why),
                None => ApiError::Internal(anyhow::Error::new(other).context("database")),
            },
        }
    }
}

/// The problem for an error response something other than [`ApiError`] produced (a
/// middleware such as CORS, or actix itself), by its status; its headers are kept.
pub fn problem_for_status(status: StatusCode) -> Problem {
    let e = match status.as_u16() {
        401 => ApiError::Unauthenticated,
        403 => ApiError::Forbidden,
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed {
            allow: String::new(),
        },
        408 => ApiError::RequestTimeout,
        413 => ApiError::PayloadTooLarge,
        415 => ApiError::UnsupportedMediaType,
        429 => ApiError::TooManyAttempts {
            retry_after_secs: 1,
        },
        503 => ApiError::Unavailable(String::new()),
        500..=599 => ApiError::Internal(anyhow::anyhow!("{status}")),
        // 400, a rejected CORS preflight among them, and any other 4xx.
        _ => ApiError::InvalidRequest {
            detail: "The request was rejected: it is malformed or not allowed from this origin."
                .to_owned(),
            errors: vec![],
        },
    };
    let mut p = e.problem();
    p.status = status.as_u16();
    p
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// Postgres messages (the server's `lc_messages` in English, the default) of failures that
/// are the database's state, not the request's: SQLSTATE classes 08 and 57, 55P03, 40P01,
/// 25P03. diesel-async reports these as `DatabaseErrorKind::Unknown` and keeps no SQLSTATE,
/// so the message is all there is to go on.
const TRANSIENT_MESSAGES: &[&str] = &[
    "canceling statement due to statement timeout", // 57014
    "canceling statement due to lock timeout",      // 55P03
    "canceling statement due to user request",      // 57014 (pg_cancel_backend)
    "could not obtain lock",                        // 55P03 (NOWAIT)
    "terminating connection", // 57P01 admin shutdown, 57P02 crash, 25P03 idle in transaction
    "the database system is", // 57P03 starting up / shutting down / in recovery
    "deadlock detected",      // 40P01
    "could not serialize access", // 40001 under another kind
    "server closed the connection", // class 08 seen by the client
    "connection to server",
];

/// Why a database error is transient (→ `503`), or `None` when it is a bug (→ `500`).
pub fn transient_cause(e: &diesel::result::Error) -> Option<String> {
    use diesel::result::{DatabaseErrorKind as K, Error};
    match e {
        Error::DatabaseError(kind, info) => {
            let message = info.message();
            let transient = match kind {
                // A dropped socket, a closed connection, a serialization failure (40001).
                K::ClosedConnection | K::UnableToSendCommand | K::SerializationFailure => true,
                K::Unknown => {
                    let m = message.to_ascii_lowercase();
                    TRANSIENT_MESSAGES.iter().any(|t| m.contains(t))
                }
                _ => false,
            };
            transient.then(|| message.to_owned())
        }
        // The connection was left mid-transaction by an earlier failure.
        Error::BrokenTransactionManager => Some("broken transaction manager".to_owned()),
        Error::RollbackErrorOnCommit { commit_error, .. } => transient_cause(commit_error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn internal_errors_never_leak_their_cause() {
        let e = ApiError::Internal(anyhow::anyhow!("password=hunter2 at db.internal"));
        let res = e.error_response();
        assert_eq!(res.status(), 500);
        let body = to_bytes(res.into_body()).await.unwrap();
        let s = String::from_utf8(body.to_vec()).unwrap();
        assert!(!s.contains("hunter2") && !s.contains("db.internal"), "{s}");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["code"], "internal");
        assert_eq!(v["type"], "urn:mspbots:mfa:internal");
    }

    /// docs/API.md §7, written out: each variant's status and code as the contract states
    /// them, not as the code computes them.
    #[test]
    fn every_variant_maps_to_its_row_of_the_contract_table() {
        let table: [(ApiError, u16, &str); 22] = [
            (ApiError::field("x", "bad"), 400, "invalid_request"),
            (ApiError::InvalidCode, 400, "invalid_code"),
            (ApiError::CodeReused, 400, "code_reused"),
            (ApiError::Unauthenticated, 401, "unauthenticated"),
            (ApiError::Forbidden, 403, "forbidden"),
            (ApiError::MfaRequiredForAdmin, 403, "mfa_required_for_admin"),
            (ApiError::StepUpRequired, 403, "step_up_required"),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed {
                    allow: "GET".into(),
                },
                405,
                "method_not_allowed",
            ),
            (ApiError::InvalidState("x"), 409, "invalid_state"),
            (ApiError::MfaEnforced, 409, "mfa_enforced"),
            (ApiError::FactorLimit, 409, "factor_limit"),
            (ApiError::NameTaken, 409, "name_taken"),
            (ApiError::WebhookLimit, 409, "webhook_limit"),
            (ApiError::PreconditionFailed, 412, "precondition_failed"),
            (ApiError::PreconditionRequired, 428, "precondition_required"),
            (ApiError::PayloadTooLarge, 413, "payload_too_large"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::TooManyAttempts {
                    retry_after_secs: 3,
                },
                429,
                "too_many_attempts",
            ),
            (ApiError::RequestTimeout, 408, "request_timeout"),
            (ApiError::Unavailable("x".into()), 503, "unavailable"),
            (ApiError::Internal(anyhow::anyhow!("x")), 500, "internal"),
        ];
        for (e, status, code) in table {
            let p = e.problem();
            assert_eq!((p.status, p.code.as_str()), (status, code), "{e:?}");
            assert_eq!(e.status_code().as_u16(), status, "{e:?}");
            assert_eq!(p.type_, format!("urn:mspbots:mfa:{code}"));
        }
    }

    #[test]
    fn retry_after_is_set_for_429_and_503() {
        let r = ApiError::TooManyAttempts {
            retry_after_secs: 42,
        }
        .error_response();
        assert_eq!(r.headers().get("retry-after").unwrap(), "42");
        let r = ApiError::Unavailable("down".into()).error_response();
        assert!(r.headers().contains_key("retry-after"));
        let r = ApiError::MethodNotAllowed {
            allow: "GET, PUT".into(),
        }
        .error_response();
        assert_eq!(r.headers().get("allow").unwrap(), "GET, PUT");
    }

    fn db(kind: diesel::result::DatabaseErrorKind, message: &str) -> diesel::result::Error {
        diesel::result::Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    fn status_of(e: diesel::result::Error) -> u16 {
        let e = ApiError::from(e);
        let res = e.error_response();
        if res.status() == 503 {
            assert!(res.headers().contains_key("retry-after"), "{e:?}");
        }
        res.status().as_u16()
    }

    #[test]
    fn database_failures_that_are_not_the_requests_fault_are_503() {
        use diesel::result::DatabaseErrorKind as K;
        let unavailable = [
            // diesel-async: the socket is gone (Postgres stopped, backend killed).
            db(K::UnableToSendCommand, "connection closed"),
            db(
                K::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            // 57P01 admin shutdown (pg_ctl stop -m fast, pg_terminate_backend).
            db(
                K::Unknown,
                "terminating connection due to administrator command",
            ),
            // 57P02 crash of another backend.
            db(
                K::Unknown,
                "terminating connection because of crash of another server process",
            ),
            // 25P03 idle_in_transaction_session_timeout.
            db(
                K::Unknown,
                "terminating connection due to idle-in-transaction timeout",
            ),
            // 57P03 cannot_connect_now.
            db(K::Unknown, "the database system is shutting down"),
            // 57014 statement timeout and cancel.
            db(K::Unknown, "canceling statement due to statement timeout"),
            db(K::Unknown, "canceling statement due to user request"),
            // 55P03 lock_timeout and NOWAIT.
            db(K::Unknown, "canceling statement due to lock timeout"),
            db(
                K::Unknown,
                "could not obtain lock on row in relation \"users\"",
            ),
            // 40001 and 40P01.
            db(
                K::SerializationFailure,
                "could not serialize access due to concurrent update",
            ),
            db(K::Unknown, "deadlock detected"),
            diesel::result::Error::BrokenTransactionManager,
            diesel::result::Error::RollbackErrorOnCommit {
                rollback_error: Box::new(db(K::UnableToSendCommand, "connection closed")),
                commit_error: Box::new(db(
                    K::Unknown,
                    "terminating connection due to administrator command",
                )),
            },
        ];
        for e in unavailable {
            let shown = format!("{e:?}");
            assert_eq!(status_of(e), 503, "{shown}");
        }
    }

    #[test]
    fn database_errors_that_are_bugs_stay_500_and_not_found_404() {
        use diesel::result::DatabaseErrorKind as K;
        assert_eq!(
            status_of(db(K::UniqueViolation, "duplicate key value")),
            500
        );
        assert_eq!(
            status_of(db(K::Unknown, "relation \"nope\" does not exist")),
            500
        );
        assert_eq!(
            status_of(db(K::CheckViolation, "violates check constraint")),
            500
        );
        assert_eq!(status_of(diesel::result::Error::NotFound), 404);
    }

    #[test]
    fn pool_errors_are_503() {
        use diesel_async::pooled_connection::deadpool::PoolError;
        let e = PoolError::Timeout(deadpool::managed::TimeoutType::Wait);
        let res = ApiError::from(e).error_response();
        assert_eq!(res.status(), 503);
        assert!(res.headers().contains_key("retry-after"));
    }

    #[test]
    fn other_error_statuses_get_a_documented_code() {
        for (status, code) in [
            (400, "invalid_request"),
            (404, "not_found"),
            (408, "request_timeout"),
            (413, "payload_too_large"),
            (431, "invalid_request"),
            (503, "unavailable"),
            (502, "internal"),
        ] {
            let p = problem_for_status(StatusCode::from_u16(status).unwrap());
            assert_eq!((p.status, p.code.as_str()), (status, code));
            assert!(!p.detail.starts_with(':'), "{}", p.detail);
            assert_eq!(p.type_, format!("urn:mspbots:mfa:{code}"));
        }
    }

    #[test]
    fn validation_errors_list_fields() {
        let p = ApiError::field("tenant_id", "must be set").problem();
        assert_eq!(p.errors.unwrap()[0].field, "tenant_id");
    }
}
