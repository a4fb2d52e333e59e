//! The one error type of the HTTP API: [`ApiError`], its stable codes, and the conversions
//! into it. Its single mapping to RFC 9457 problem+json is `problem`; database and pool
//! errors are sorted into 404, 503 and 500 by `database`.
//!
//! Which type to use where: services and extractors return [`ApiError`]; repository
//! functions return `diesel::result::Error` and `?` converts it here (`NotFound` → 404,
//! a lost connection or pool → 503, anything else → 500). A 500 says only "internal":
//! its cause goes to the log, tagged with the request id by the request span.

use serde::Serialize;
use utoipa::ToSchema;

mod database;
mod problem;

pub use problem::{problem_for_status, Problem};

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `tenant_id` or `roles[1]`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

/// Every error the API answers with; `problem` maps each variant to its status and code
/// (docs/API.md §7).
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
    #[error("a WebAuthn response that does not verify")]
    InvalidCredential,
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
    #[error("WebAuthn is not configured on this surface")]
    WebauthnUnavailable,
    #[error("the tenant does not allow this factor type")]
    FactorTypeNotAllowed,
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
            ApiError::InvalidCredential => "invalid_credential",
            ApiError::WebauthnUnavailable => "webauthn_unavailable",
            ApiError::FactorTypeNotAllowed => "factor_type_not_allowed",
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
}
