//! The single mapping of [`ApiError`] to RFC 9457 problem+json: status, title, detail and
//! headers per variant, and the problem for an error response that something other than
//! `ApiError` produced. A 500 says only "internal"; its cause goes to the log.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, FieldError};

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

impl ApiError {
    fn title_and_detail(&self) -> (&'static str, String) {
        let (t, d): (&str, &str) = match self {
            ApiError::InvalidRequest { detail, .. } => return ("Invalid request", detail.clone()),
            ApiError::InvalidCode => ("Invalid code", "The code is not valid. Check your authenticator app and try again."),
            ApiError::InvalidCredential => ("Invalid credential", "The passkey or security key response did not verify. Start again with a new challenge."),
            ApiError::WebauthnUnavailable => ("Passkeys unavailable", "Passkeys and security keys are not configured for this surface."),
            ApiError::FactorTypeNotAllowed => ("Factor type not allowed", "The tenant does not allow new factors of this type (allowed_factor_types)."),
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
            ApiError::InvalidRequest { .. }
            | ApiError::InvalidCode
            | ApiError::CodeReused
            | ApiError::InvalidCredential => StatusCode::BAD_REQUEST,
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
            | ApiError::WebauthnUnavailable
            | ApiError::FactorTypeNotAllowed
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
        use ApiError as E;
        let (allow, retry_after_secs) = ("GET".into(), 3);
        let table: [(ApiError, u16, &str); 25] = [
            (E::field("x", "bad"), 400, "invalid_request"),
            (E::InvalidCode, 400, "invalid_code"),
            (E::CodeReused, 400, "code_reused"),
            (E::Unauthenticated, 401, "unauthenticated"),
            (E::Forbidden, 403, "forbidden"),
            (E::MfaRequiredForAdmin, 403, "mfa_required_for_admin"),
            (E::StepUpRequired, 403, "step_up_required"),
            (E::NotFound, 404, "not_found"),
            (E::MethodNotAllowed { allow }, 405, "method_not_allowed"),
            (E::InvalidState("x"), 409, "invalid_state"),
            (E::MfaEnforced, 409, "mfa_enforced"),
            (E::FactorLimit, 409, "factor_limit"),
            (E::NameTaken, 409, "name_taken"),
            (E::InvalidCredential, 400, "invalid_credential"),
            (E::WebauthnUnavailable, 409, "webauthn_unavailable"),
            (E::FactorTypeNotAllowed, 409, "factor_type_not_allowed"),
            (E::WebhookLimit, 409, "webhook_limit"),
            (E::PreconditionFailed, 412, "precondition_failed"),
            (E::PreconditionRequired, 428, "precondition_required"),
            (E::PayloadTooLarge, 413, "payload_too_large"),
            (E::UnsupportedMediaType, 415, "unsupported_media_type"),
            (
                E::TooManyAttempts { retry_after_secs },
                429,
                "too_many_attempts",
            ),
            (E::RequestTimeout, 408, "request_timeout"),
            (E::Unavailable("x".into()), 503, "unavailable"),
            (E::Internal(anyhow::anyhow!("x")), 500, "internal"),
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
