//! Credential extractors. The prefix tells the kind (`sk_` service key, `mfa_` mfa token,
//! anything else an access token); a credential of a kind the endpoint does not take is
//! `401 unauthenticated`, like a missing one.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};

use super::extract::path_id::{self, TenantIds, UserIds, WebhookIds};
use super::extract::{bearer, ClientMeta};
use crate::crypto::jwt::AccessClaims;
use crate::domain::ids::{TenantId, UserId, WebhookId};
use crate::error::ApiError;
use crate::services::{self, auth::ServiceKey, step_up, OnUser};
use crate::state::AppState;

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

enum Kind {
    Service(String),
    Mfa(String),
    Access(String),
}

fn kind(req: &HttpRequest) -> Result<Kind, ApiError> {
    let token = bearer(req).ok_or(ApiError::Unauthenticated)?.to_owned();
    Ok(if token.starts_with("sk_") {
        Kind::Service(token)
    } else if token.starts_with("mfa_") {
        Kind::Mfa(token)
    } else {
        Kind::Access(token)
    })
}

/// The service key of this request, if the per-user limits (`middleware::limits`) already
/// looked it up to take the user's turn: it is not looked up twice.
fn checked_service_key(req: &HttpRequest) -> Option<ServiceKey> {
    req.extensions().get::<ServiceKey>().cloned()
}

/// A trusted backend's service key.
pub struct ServiceAuth(pub ServiceKey);

impl FromRequest for ServiceAuth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(k) = checked_service_key(req) {
            return Box::pin(ready(Ok(ServiceAuth(k))));
        }
        let found = kind(req).and_then(|k| Ok((state(req)?, k)));
        Box::pin(async move {
            match found? {
                (state, Kind::Service(key)) => services::auth::service_key(&state, &key)
                    .await
                    .map(ServiceAuth),
                _ => Err(ApiError::Unauthenticated),
            }
        })
    }
}

/// The mfa token of a sign-in in progress (checked against its login by the service).
pub struct MfaAuth(pub String);

impl FromRequest for MfaAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(MfaAuth::of(req))
    }
}

impl MfaAuth {
    /// The request's mfa token, or `401`.
    pub fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        match kind(req) {
            Ok(Kind::Mfa(t)) if t.len() <= 100 => Ok(MfaAuth(t)),
            Ok(_) | Err(_) => Err(ApiError::Unauthenticated),
        }
    }
}

/// A signed-in user's access token.
pub struct UserAuth(pub AccessClaims);

impl FromRequest for UserAuth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match (kind(req), state(req)) {
            (Ok(Kind::Access(t)), Ok(s)) => services::auth::access_token(&s, &t).map(UserAuth),
            (_, Err(e)) => Err(e),
            _ => Err(ApiError::Unauthenticated),
        })
    }
}

/// Either a tenant admin's access token or a service key (for read-only admin calls).
pub enum AdminOrService {
    Admin(AccessClaims),
    Service(ServiceKey),
}

impl FromRequest for AdminOrService {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some(k) = checked_service_key(req) {
            return Box::pin(ready(Ok(AdminOrService::Service(k))));
        }
        let found = kind(req).and_then(|k| Ok((state(req)?, k)));
        Box::pin(async move {
            match found? {
                (state, Kind::Service(key)) => services::auth::service_key(&state, &key)
                    .await
                    .map(AdminOrService::Service),
                (state, Kind::Access(t)) => {
                    services::auth::access_token(&state, &t).map(AdminOrService::Admin)
                }
                (_, Kind::Mfa(_)) => Err(ApiError::Unauthenticated),
            }
        })
    }
}

impl AdminOrService {
    /// Checks the caller may read this tenant's administration data.
    pub async fn require_read(
        &self,
        state: &AppState,
        tenant_id: &TenantId,
    ) -> Result<(), ApiError> {
        match self {
            AdminOrService::Admin(claims) => {
                services::auth::require_admin(state, claims, tenant_id).await
            }
            AdminOrService::Service(key) => key.require(tenant_id.as_str()),
        }
    }
}

/// The caller of a call that may need step-up: the access token, the `X-MFA-Code` header
/// and the client, extracted in that order (the order the handlers listed them in). A user's
/// own sensitive call hands the three to its service; an admin's is an [`AdminCall`].
pub struct StepUpCall {
    /// The caller's access token.
    pub claims: AccessClaims,
    /// The step-up code of the header, if sent (its form already checked); read it with
    /// [`StepUpCall::code`].
    code: StepUpCode,
    /// Who is calling, for the audit trail and the per-IP limit.
    pub meta: ClientMeta,
}

impl FromRequest for StepUpCall {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut all = || -> Result<Self, ApiError> {
            let user = UserAuth::from_request(req, payload).into_inner()?;
            let code = StepUpCode::from_request(req, payload).into_inner()?;
            let meta = ClientMeta::from_request(req, payload).into_inner()?;
            Ok(StepUpCall {
                claims: user.0,
                code,
                meta,
            })
        };
        ready(all())
    }
}

/// The caller of an admin call that changes something. The handler takes the path's ids
/// through `TenantGate` (the admin check), then, where the call needs it, asks
/// [`StepUpCall::step_up`] — the request's form is judged between the two, so that a caller
/// who may not call learns nothing from it and a malformed request never uses up a code.
/// Extracted as a [`StepUpCall`]; the type says the handler is an admin's (its gate is
/// [`TenantGate`], which a user's own call does not have).
pub struct AdminCall(StepUpCall);

impl FromRequest for AdminCall {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            StepUpCall::from_request(req, payload)
                .into_inner()
                .map(AdminCall),
        )
    }
}

impl std::ops::Deref for AdminCall {
    type Target = StepUpCall;

    fn deref(&self) -> &StepUpCall {
        &self.0
    }
}

impl StepUpCall {
    /// The header's code, if sent.
    pub fn code(&self) -> Option<&str> {
        self.code.0.as_deref()
    }

    /// Step-up with the header's code (`403 step_up_required` without a recent one).
    pub async fn step_up(&self, state: &AppState) -> Result<(), ApiError> {
        step_up::require(state, &self.claims, self.code(), &self.meta).await
    }

    pub fn actor(&self) -> &str {
        self.claims.sub.as_str()
    }
}

impl AdminCall {
    /// `403` unless the caller is an admin of the tenant (with 2FA).
    pub async fn admin(&self, state: &AppState, tenant_id: &TenantId) -> Result<(), ApiError> {
        services::auth::require_admin(state, &self.claims, tenant_id).await
    }

    /// The path's user once the caller is the tenant's admin, then step-up: the gate of every
    /// sensitive admin call on a user whose request has no form to judge in between.
    pub async fn user_with_step_up(
        &self,
        state: &AppState,
        path: &UserIds,
    ) -> Result<(TenantId, UserId), ApiError> {
        let ids = self.allowed_user(state, path).await?;
        self.step_up(state).await?;
        Ok(ids)
    }

    /// This admin's action on the tenant's user `user_id`.
    pub fn on<'a>(&'a self, tenant_id: &'a TenantId, user_id: &'a UserId) -> OnUser<'a> {
        OnUser {
            tenant_id,
            user_id,
            actor: self.actor(),
            meta: &self.meta,
        }
    }
}

/// The `X-MFA-Code` header, if sent. Its form is checked here, whether or not the call turns
/// out to need step-up: a header that is not a six-digit code or a recovery code (the
/// pattern of the OpenAPI document) is `400 invalid_request`, never silently ignored, and
/// not counted as a wrong code.
pub struct StepUpCode(pub Option<String>);

impl FromRequest for StepUpCode {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let bad = || ApiError::field(step_up::HEADER, "must be a 6-digit code or a recovery code");
        ready(match req.headers().get(step_up::HEADER) {
            None => Ok(StepUpCode(None)),
            Some(v) => match v.to_str().map(str::trim) {
                Ok(code) if is_code_shaped(code) => Ok(StepUpCode(Some(code.to_owned()))),
                _ => Err(bad()),
            },
        })
    }
}

/// `^(?:[0-9]{6}|[0-9A-TV-Za-tv-z](?:[- ]*[0-9A-TV-Za-tv-z]){9})$`: six digits, or ten
/// Crockford base32 characters (any case, no `U`) with spaces or hyphens between them.
fn is_code_shaped(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() == 6 && b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let crockford = |c: &u8| c.is_ascii_alphanumeric() && !c.eq_ignore_ascii_case(&b'u');
    let separator = |c: &u8| matches!(c, b'-' | b' ');
    b.first().is_some_and(crockford)
        && b.last().is_some_and(crockford)
        && b.iter().all(|c| crockford(c) || separator(c))
        && b.iter().filter(|c| crockford(c)).count() == 10
}

/// A caller whose rights on the path's tenant decide the call. The path's ids are parsed
/// first, so an id that cannot exist is `404` whoever asks; then the caller's `401`/`403`.
pub(crate) trait TenantGate {
    /// `403` (or a service key's `forbidden`) unless the caller may make this call on the tenant.
    async fn allow(&self, state: &AppState, tenant_id: &TenantId) -> Result<(), ApiError>;

    /// The path's `{tenant_id}`, once the caller is allowed on it.
    async fn allowed_tenant(
        &self,
        state: &AppState,
        path: &TenantIds,
    ) -> Result<TenantId, ApiError> {
        let tenant_id = path_id::tenant(&path.tenant_id)?;
        self.allow(state, &tenant_id).await?;
        Ok(tenant_id)
    }

    /// The path's `{tenant_id}` and `{user_id}`, once the caller is allowed on the tenant.
    async fn allowed_user(
        &self,
        state: &AppState,
        path: &UserIds,
    ) -> Result<(TenantId, UserId), ApiError> {
        let (tenant_id, user_id) = path_id::tenant_user(&path.tenant_id, &path.user_id)?;
        self.allow(state, &tenant_id).await?;
        Ok((tenant_id, user_id))
    }

    /// The path's `{tenant_id}`, once the caller is allowed on it, and its `{webhook_id}`
    /// (parsed only then: a caller who may not call learns nothing from it).
    async fn allowed_webhook(
        &self,
        state: &AppState,
        path: &WebhookIds,
    ) -> Result<(TenantId, WebhookId), ApiError> {
        let tenant_id = path_id::tenant(&path.tenant_id)?;
        self.allow(state, &tenant_id).await?;
        Ok((tenant_id, path_id::webhook(&path.webhook_id)?))
    }
}

/// A read: an admin of the tenant, or a service key scoped to it.
impl TenantGate for AdminOrService {
    async fn allow(&self, state: &AppState, tenant_id: &TenantId) -> Result<(), ApiError> {
        self.require_read(state, tenant_id).await
    }
}

/// A change: an admin of the tenant (step-up is asked separately).
impl TenantGate for AdminCall {
    async fn allow(&self, state: &AppState, tenant_id: &TenantId) -> Result<(), ApiError> {
        self.admin(state, tenant_id).await
    }
}

/// An admin of the tenant, without step-up or client: the webhook calls that change nothing
/// the tenant relies on (a test delivery, a retry).
impl TenantGate for UserAuth {
    async fn allow(&self, state: &AppState, tenant_id: &TenantId) -> Result<(), ApiError> {
        services::auth::require_admin(state, &self.0, tenant_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::is_code_shaped;

    #[test]
    fn step_up_codes_have_the_documented_shape() {
        for ok in [
            "123456",
            "abcde-fghjk",
            "ABCDE FGHJK",
            "a-b-c-d-e-f-g-h-j-k",
            "0123456789",
        ] {
            assert!(is_code_shaped(ok), "{ok}");
        }
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "-abcdefghjk",
            "abcdefghjk-",
            "abcdeufghj",
            "abcde_fghjk",
            "abcdefghjkm",
        ] {
            assert!(!is_code_shaped(bad), "{bad}");
        }
    }
}
