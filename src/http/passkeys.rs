//! Handlers of passkeys and security keys at sign-in (docs/API.md §16): the challenge and the
//! assertion. Thin: extract, call the service, answer.

use super::logins::{SignInLogin, SignInStep};
use super::problems::{InvalidRequest, Locked, NotFound, TooManyAttempts};
use super::reply::{created, ok, Data, Reply};
use crate::error::{ApiError, Problem};
use crate::services::devices::RememberRequest;
use crate::services::logins::{
    self, Enrolled, Verified, WebauthnChallenge, WebauthnEnrollRequest, WebauthnSignInRequest,
};
use crate::services::webauthn::WebauthnEnrollment;

impl SignInStep<WebauthnSignInRequest> {
    /// The passkey's answer, and "don't ask again on this browser" as the request asks.
    fn credential(&self) -> Result<(Option<&serde_json::Value>, RememberRequest), ApiError> {
        let b = &self.body;
        let remember = RememberRequest::parse(b.remember_device, b.device_name.as_deref())?;
        Ok((b.credential.as_ref(), remember))
    }
}

/// Get a WebAuthn challenge for this sign-in.
///
/// Request options for `PublicKeyCredential.parseRequestOptionsFromJSON()`: a fresh challenge
/// and the user's passkeys and security keys of this surface's RP ID. Each call replaces the
/// previous challenge; it lives 5 minutes and never past the sign-in. Carries no proof: not
/// counted, and a lockout does not stop it.
#[utoipa::path(post, path = "/v1/logins/{login_id}/webauthn-challenge", tag = "Sign-in", operation_id = "webauthnChallenge",
    security(("mfa_token" = [])),
    params(SignInLogin),
    responses(
        (status = 200, description = "The request options", body = WebauthnChallenge),
        NotFound,
        (status = 409, description = "`invalid_state`: the sign-in needs an enrollment, or the user has no passkey for this surface; `webauthn_unavailable`: no RP ID on this surface", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn challenge(state: Data, at: SignInLogin) -> Reply {
    let SignInLogin { token, login_id } = at;
    ok(logins::webauthn_challenge(&state, &token.0, login_id).await?)
}

/// Finish the sign-in with a passkey or security key.
///
/// `credential` is `PublicKeyCredential.toJSON()` of the answer to this sign-in's live
/// challenge. A response that does not verify is `invalid_credential`, counted as a wrong
/// code, and uses the challenge up.
#[utoipa::path(post, path = "/v1/logins/{login_id}/webauthn", tag = "Sign-in", operation_id = "webauthnLogin",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = WebauthnSignInRequest,
    responses(
        (status = 200, description = "Signed in", body = Verified),
        (status = 400, description = "`invalid_request` (not a response's shape; not counted) or `invalid_credential` (counted)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`: the sign-in needs an enrollment; `webauthn_unavailable`", body = Problem, content_type = "application/problem+json"),
        Locked,
    ))]
pub async fn sign_in(state: Data, step: SignInStep<WebauthnSignInRequest>) -> Reply {
    let (credential, remember) = step.credential()?;
    ok(logins::webauthn(&state, step.at(), credential, &remember).await?)
}

/// "Setup MFA" with a passkey or security key instead of an app.
///
/// Creation options for `PublicKeyCredential.parseCreationOptionsFromJSON()`; discards an
/// earlier pending enrollment. Only while the sign-in is `enrollment_required`. Carries no
/// proof: a lockout does not stop it.
#[utoipa::path(post, path = "/v1/logins/{login_id}/webauthn-enrollment", tag = "Sign-in", operation_id = "startLoginWebauthnEnrollment",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body(content = Option<WebauthnEnrollRequest>, description = "Optional: the new factor's name (default \"Passkey\")"),
    responses(
        (status = 201, description = "The pending factor and its creation options", body = WebauthnEnrollment),
        InvalidRequest,
        NotFound,
        (status = 409, description = "`invalid_state`, `factor_type_not_allowed`, `webauthn_unavailable`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_enrollment(
    state: Data,
    step: SignInStep<Option<WebauthnEnrollRequest>>,
) -> Reply {
    let name = step.body.as_ref().and_then(|b| b.name.clone());
    created(logins::start_webauthn_enrollment(&state, step.at(), name).await?)
}

/// Confirm the passkey registered at sign-in; signs in.
///
/// `credential` is `PublicKeyCredential.toJSON()` of the registration. Answers as the app's
/// enrollment confirm: the access token and, for the user's first factor, recovery codes.
#[utoipa::path(post, path = "/v1/logins/{login_id}/webauthn-enrollment/confirm", tag = "Sign-in", operation_id = "confirmLoginWebauthnEnrollment",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = WebauthnSignInRequest,
    responses(
        (status = 200, description = "Enrolled and signed in", body = Enrolled),
        (status = 400, description = "`invalid_request` (not counted) or `invalid_credential` (counted)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`: no pending enrollment, or it expired; `webauthn_unavailable`", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn confirm_enrollment(state: Data, step: SignInStep<WebauthnSignInRequest>) -> Reply {
    let (credential, remember) = step.credential()?;
    ok(logins::confirm_webauthn_enrollment(&state, step.at(), credential, &remember).await?)
}
