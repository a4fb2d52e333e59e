//! Handlers of the sign-in resource (docs/API.md §3). Thin: extract, call the service, answer.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use serde::de::DeserializeOwned;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{KnownFormat, ObjectBuilder, Required, SchemaFormat, Type};

use super::auth::{MfaAuth, ServiceAuth};
use super::extract::{ClientMeta, RawJson};
use super::problems::{
    InvalidRequest, KeyOutOfScope, Locked, NeedsEnrollment, NotFound, ResyncRefused,
    TooManyAttempts,
};
use super::reply::{created, ok, Data, Reply};
use crate::domain::ids::LoginId;
use crate::error::{ApiError, Problem};
use crate::services::devices::RememberRequest;
use crate::services::enrollment::EnrollmentMaterial;
use crate::services::factors::NewFactorRequest;
use crate::services::logins::{
    self, Enrolled, LoginStarted, LoginView, RecoverRequest, Recovered, Resynced, SignInAt,
    SignInCodeRequest, Skipped, StartLogin, Verified,
};
use crate::services::resync::ResyncRequest;

/// What every step of a sign-in starts from: the mfa token (`401`) and the `login_id` of
/// the path (`404` when it is not one; the service checks that it is this token's).
pub struct SignInLogin {
    pub token: MfaAuth,
    pub login_id: LoginId,
}

impl SignInLogin {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let token = MfaAuth::of(req)?;
        let login_id = logins::parse_login_id(req.match_info().get("login_id").unwrap_or(""))?;
        Ok(SignInLogin { token, login_id })
    }
}

/// The path parameter, documented once for every sign-in step.
impl utoipa::IntoParams for SignInLogin {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let uuid = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        vec![ParameterBuilder::new()
            .name("login_id")
            .parameter_in(ParameterIn::Path)
            .description(Some("The `login_id` of this mfa token's sign-in"))
            .required(Required::True)
            .schema(Some(uuid))
            .build()]
    }
}

impl FromRequest for SignInLogin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(SignInLogin::of(req))
    }
}

/// A sign-in step with its body. The body is judged only once the mfa token is known to be
/// good for this login: without a valid token an invalid body is `401`/`404`, never a list
/// of fields. (The token is checked here only on that path; the service checks it again on
/// the happy path.)
pub struct SignInStep<T> {
    pub token: MfaAuth,
    pub login_id: LoginId,
    pub body: T,
    /// The caller's address and user agent, for the per-IP limit and the audit event.
    pub meta: ClientMeta,
}

impl<T> SignInStep<T> {
    /// The sign-in this is a step of, and who calls.
    pub fn at(&self) -> SignInAt<'_> {
        SignInAt {
            token: &self.token.0,
            login_id: self.login_id,
            meta: &self.meta,
        }
    }
}

impl SignInStep<SignInCodeRequest> {
    /// The code, and "don't ask again on this browser" as the request asks.
    fn code(&self) -> Result<(&str, RememberRequest), ApiError> {
        let b = &self.body;
        let remember = RememberRequest::parse(b.remember_device, b.device_name.as_deref())?;
        Ok((b.code.as_str(), remember))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for SignInStep<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let token = MfaAuth::of(req);
        let raw = RawJson::from_request(req, payload);
        let login = SignInLogin::of(req);
        let meta = ClientMeta::extract(req).into_inner();
        let state = req.app_data::<Data>().cloned();
        Box::pin(async move {
            token?;
            let raw = raw.await?;
            let SignInLogin { token, login_id } = login?;
            let meta = meta?;
            match raw.parse() {
                Ok(body) => Ok(SignInStep {
                    token,
                    login_id,
                    body,
                    meta,
                }),
                Err(e) => {
                    let state = state.ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("application state missing"))
                    })?;
                    logins::get(&state, &token.0, login_id).await?;
                    Err(e)
                }
            }
        })
    }
}

/// Start the second factor of a sign-in.
///
/// Called by the primary login backend after it checked the password (or the Microsoft
/// sign-in). Creates the tenant and the user on first sight and says what happens next:
/// `authenticated` (an access token, no second factor needed), `enrollment_required`
/// ("Setup MFA") or `verification_required` (enter a code); the last two carry the mfa
/// token the browser uses for the next calls.
#[utoipa::path(post, path = "/v1/logins", tag = "Sign-in", operation_id = "startLogin",
    security(("service_key" = [])),
    request_body = StartLogin,
    responses(
        (status = 201, description = "What the sign-in needs next", body = LoginStarted),
        InvalidRequest,
        (status = 401, description = "`unauthenticated`: missing, unknown or revoked service key", body = Problem, content_type = "application/problem+json"),
        KeyOutOfScope,
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start(state: Data, key: ServiceAuth, meta: ClientMeta, body: RawJson) -> Reply {
    let body: StartLogin = body.parse()?;
    created(logins::start(&state, &key.0, body, &meta).await?)
}

/// The state of a sign-in in progress.
#[utoipa::path(get, path = "/v1/logins/{login_id}", tag = "Sign-in", operation_id = "getLogin",
    security(("mfa_token" = [])),
    params(SignInLogin),
    responses(
        (status = 200, description = "The sign-in", body = LoginView),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or dead mfa token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: not this token's login", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(state: Data, at: SignInLogin) -> Reply {
    let SignInLogin { token, login_id } = at;
    ok(logins::get(&state, &token.0, login_id).await?)
}

/// Start setting up an authenticator app ("Set Up Authentication").
///
/// Returns a new secret as a QR code (SVG and PNG) and as text for manual entry. Each call
/// makes a new secret and discards the previous pending one. Only while the sign-in is
/// `enrollment_required`. The body may name the factor (`{"name": "Work phone"}`; default
/// "Authenticator"); an empty body or `{}` is fine.
#[utoipa::path(post, path = "/v1/logins/{login_id}/totp-enrollment", tag = "Sign-in", operation_id = "startLoginEnrollment",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body(content = Option<NewFactorRequest>, description = "Optional: the new factor's name"),
    responses(
        (status = 201, description = "The enrollment material", body = EnrollmentMaterial),
        (status = 400, description = "`invalid_request`: a body that is not JSON or has other fields, or a `name` that is not 1-64 visible characters", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`: the sign-in is not `enrollment_required`; `factor_type_not_allowed`: the tenant's `allowed_factor_types` has no `totp`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn start_enrollment(state: Data, step: SignInStep<Option<NewFactorRequest>>) -> Reply {
    let name = step.body.as_ref().and_then(|b| b.name.clone());
    created(logins::start_enrollment(&state, step.at(), name).await?)
}

/// Confirm the authenticator app with its first code and finish the sign-in.
///
/// The factor becomes active and ten recovery codes are returned, this once. The
/// confirming code counts as used.
#[utoipa::path(post, path = "/v1/logins/{login_id}/totp-enrollment/confirm", tag = "Sign-in", operation_id = "confirmLoginEnrollment",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = SignInCodeRequest,
    responses(
        (status = 200, description = "Signed in; recovery codes shown once", body = Enrolled),
        (status = 400, description = "`invalid_request` (not six digits, or a bad `device_name`; not counted) or `invalid_code` (counted)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`: no pending enrollment, or not `enrollment_required`", body = Problem, content_type = "application/problem+json"),
        Locked,
    ))]
pub async fn confirm_enrollment(state: Data, step: SignInStep<SignInCodeRequest>) -> Reply {
    let (code, remember) = step.code()?;
    ok(logins::confirm_enrollment(&state, step.at(), code, &remember).await?)
}

/// Finish the sign-in with a code from the authenticator app.
#[utoipa::path(post, path = "/v1/logins/{login_id}/verify", tag = "Sign-in", operation_id = "verifyLogin",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = SignInCodeRequest,
    responses(
        (status = 200, description = "Signed in", body = Verified),
        (status = 400, description = "`invalid_request` (not six digits, or a bad `device_name`; not counted), `invalid_code` (counted) or `code_reused` (not counted)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or dead (5 wrong codes) mfa token", body = Problem, content_type = "application/problem+json"),
        NotFound,
        NeedsEnrollment,
        Locked,
    ))]
pub async fn verify(state: Data, step: SignInStep<SignInCodeRequest>) -> Reply {
    let (code, remember) = step.code()?;
    ok(logins::verify(&state, step.at(), code, &remember).await?)
}

/// Finish the sign-in with a recovery code (lost phone). The code is used up.
#[utoipa::path(post, path = "/v1/logins/{login_id}/recover", tag = "Sign-in", operation_id = "recoverLogin",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = RecoverRequest,
    responses(
        (status = 200, description = "Signed in", body = Recovered),
        (status = 400, description = "`invalid_request` (not shaped like a recovery code; not counted) or `invalid_code` (counted)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn recover(state: Data, step: SignInStep<RecoverRequest>) -> Reply {
    let code = &step.body.recovery_code;
    ok(logins::recover(&state, step.at(), code).await?)
}

/// "Set up later (N days left)": postpone enrollment inside the user's grace (§13).
///
/// Only while the sign-in is `enrollment_required` and its answer carried `grace_ends_at`
/// that has not passed (computed again now, with the current policy). The sign-in ends
/// with `amr: ["pwd"]`; the mfa token dies. The body, if any, is ignored.
#[utoipa::path(post, path = "/v1/logins/{login_id}/skip-enrollment", tag = "Sign-in", operation_id = "skipLoginEnrollment",
    security(("mfa_token" = [])),
    params(SignInLogin),
    responses(
        (status = 200, description = "Signed in without a second factor, enrollment postponed", body = Skipped),
        (status = 400, description = "`invalid_request`: a body that is not JSON (any JSON body is ignored)", body = Problem, content_type = "application/problem+json"),
        NotFound,
        (status = 409, description = "`invalid_state`: not `enrollment_required`, or the grace is over (the user must enroll)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn skip_enrollment(state: Data, step: SignInStep<serde_json::Value>) -> Reply {
    ok(logins::skip_enrollment(&state, step.at()).await?)
}

/// Finish the sign-in with two consecutive codes when the phone's clock drifted (§11).
///
/// The two codes must be of consecutive time steps of one of the user's authenticators,
/// within `MFA_TOTP_RESYNC_WINDOW` steps of now and within `MFA_TOTP_MAX_DRIFT` of it; the
/// factor then learns the offset. Anything else is one wrong code.
#[utoipa::path(post, path = "/v1/logins/{login_id}/resync", tag = "Sign-in", operation_id = "resyncLogin",
    security(("mfa_token" = [])),
    params(SignInLogin),
    request_body = ResyncRequest,
    responses(
        (status = 200, description = "Signed in; the factor's new drift", body = Resynced),
        ResyncRefused,
        NotFound,
        NeedsEnrollment,
        Locked,
    ))]
pub async fn resync(state: Data, step: SignInStep<ResyncRequest>) -> Reply {
    ok(logins::resync(&state, step.at(), &step.body).await?)
}
