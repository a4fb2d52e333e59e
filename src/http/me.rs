//! Handlers of the signed-in user's resource (docs/API.md §4).

use super::auth::{StepUpCall, UserAuth};
use super::extract::{ClientMeta, JsonBody};
use super::problems::{OwnStepUp, StepUpCodeRefused, StepUpHeader, TooManyAttempts};
use super::reply::{created, no_content, ok, Data, Reply};
use crate::error::Problem;
use crate::services::assertion::WebauthnChallenge;
use crate::services::enrollment::EnrollmentMaterial;
use crate::services::factors::NewFactorRequest;
use crate::services::logins::CodeRequest;
use crate::services::me::{self, MeEnrolled, MeView, RecoveryCodes};
use crate::services::reauth::{self, ReauthRequest, Reauthenticated};

/// The signed-in user's 2FA status and their tenant's policy.
#[utoipa::path(get, path = "/v1/me", tag = "Me", operation_id = "getMe",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The user", body = MeView),
    ))]
pub async fn show(state: Data, user: UserAuth) -> Reply {
    ok(me::show(&state, &user.0).await?)
}

/// Set up an authenticator app voluntarily, or replace it.
///
/// For a user without a factor (e.g. an admin before turning 2FA on) this needs only the
/// access token. If the user already has a factor this is a re-enrollment and needs
/// step-up; the old factors keep working until the new one is confirmed, which then
/// replaces all of them. The body may name the new factor (`{"name": "..."}`). To add a
/// second authenticator instead, use `POST /v1/me/factors`.
#[utoipa::path(post, path = "/v1/me/totp-enrollment", tag = "Me", operation_id = "startMyEnrollment",
    security(("access_token" = [])),
    params(StepUpHeader),
    request_body(content = Option<NewFactorRequest>, description = "Optional: the new factor's name"),
    responses(
        (status = 201, description = "The enrollment material", body = EnrollmentMaterial),
        StepUpCodeRefused,
        (status = 409, description = "`factor_type_not_allowed`: the tenant's `allowed_factor_types` has no `totp` (checked before step-up); `name_taken`: a name one of the user's factors has (they are replaced only at the confirmation)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`step_up_required`: re-enrollment without recent 2FA or a code", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn start_enrollment(
    state: Data,
    call: StepUpCall,
    body: JsonBody<Option<NewFactorRequest>>,
) -> Reply {
    let name = body.0.and_then(|b| b.name);
    created(me::start_enrollment(&state, &call.claims, name, call.code(), &call.meta).await?)
}

/// Confirm the new authenticator app; returns a token whose `amr` holds `otp`.
#[utoipa::path(post, path = "/v1/me/totp-enrollment/confirm", tag = "Me", operation_id = "confirmMyEnrollment",
    security(("access_token" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, description = "Enrolled; recovery codes shown once", body = MeEnrolled),
        (status = 400, description = "`invalid_request` or `invalid_code`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: no pending enrollment", body = Problem, content_type = "application/problem+json"),
        TooManyAttempts,
    ))]
pub async fn confirm_enrollment(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    body: JsonBody<CodeRequest>,
) -> Reply {
    ok(me::confirm_enrollment(&state, &user.0, &body.0.code, &meta).await?)
}

/// Remove every authenticator app of the user (step-up), and the recovery codes.
#[utoipa::path(delete, path = "/v1/me/totp", tag = "Me", operation_id = "removeMyFactor",
    security(("access_token" = [])),
    params(StepUpHeader),
    responses(
        (status = 204, description = "Removed"),
        OwnStepUp,
        (status = 404, description = "`not_found`: no authenticator app", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`mfa_enforced`: the tenant requires it for this user", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_factor(state: Data, call: StepUpCall) -> Reply {
    me::remove_factor(&state, &call.claims, call.code(), &call.meta).await?;
    no_content()
}

/// New recovery codes (step-up); the old ones stop working.
#[utoipa::path(post, path = "/v1/me/recovery-codes", tag = "Me", operation_id = "regenerateMyRecoveryCodes",
    security(("access_token" = [])),
    params(StepUpHeader),
    responses(
        (status = 200, description = "The new codes, shown once", body = RecoveryCodes),
        OwnStepUp,
        (status = 409, description = "`invalid_state`: no authenticator app", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn regenerate_codes(
    state: Data,
    call: StepUpCall,
    _body: JsonBody<serde_json::Value>,
) -> Reply {
    ok(me::regenerate_codes(&state, &call.claims, call.code(), &call.meta).await?)
}

/// Prove a factor again and get a fresh access token (§17).
///
/// Send exactly one of `code` (a current code of any of the user's authenticator apps),
/// `recovery_code` (used up) or `credential` (a passkey's or security key's answer to the
/// challenge from `POST /v1/me/reauthenticate/webauthn-challenge`). The new token carries the
/// `amr` a sign-in with that factor gets (`["pwd","otp","mfa"]`, `["pwd","mfa","rc"]`,
/// `["pwd","hwk","mfa"]`, or `["pwd","swk","mfa"]` for a backup-eligible passkey) and
/// `auth_time` now, so for `MFA_STEP_UP_MAX_AGE` seconds it passes every sensitive call
/// without `X-MFA-Code`: a page asks for step-up once, then makes several calls. The old token
/// stays valid until it expires (and is not made recent). Checked, counted and locked out like
/// a sign-in's code; a passkey's response uses its challenge up whatever comes of it, so it
/// succeeds once. Audited as `user.reauthenticated` with `details.method` (`totp`,
/// `recovery_code`, `webauthn`) and `details.factor_id`. Remembered browsers are kept, even
/// after a recovery code.
#[utoipa::path(post, path = "/v1/me/reauthenticate", tag = "Me", operation_id = "reauthenticate",
    security(("access_token" = [])),
    request_body = ReauthRequest,
    responses(
        (status = 200, description = "A fresh, recent access token", body = Reauthenticated),
        (status = 400, description = "`invalid_request` (no proof, more than one, or a malformed one — a `credential` that is not an object or lacks `id`/`rawId`/`type`/`response` or holds bad base64url; not counted, the challenge stays alive), `invalid_code` or `invalid_credential` (counted; a response to an expired, replaced or used challenge included) or `code_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: the user has no active factor; `webauthn_unavailable`: a `credential` on a surface without an RP ID (not counted)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts` (the user is locked out, or the per-IP limit); see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn reauthenticate(
    state: Data,
    user: UserAuth,
    meta: ClientMeta,
    body: JsonBody<ReauthRequest>,
) -> Reply {
    let done: Reauthenticated = reauth::reauthenticate(&state, &user.0, &body.0, &meta).await?;
    ok(done)
}

/// Get a WebAuthn challenge to re-authenticate with a passkey (§17).
///
/// Request options for `PublicKeyCredential.parseRequestOptionsFromJSON()`: a fresh challenge,
/// `rpId` this surface's, and `allowCredentials` the user's active passkeys and security keys
/// of that RP ID (with their transports). Answer it with `{credential}` to `POST
/// /v1/me/reauthenticate` before `expires_at` (5 minutes). One live challenge per user: each
/// call replaces the previous one, whose answer is then refused. Carries no proof: not
/// counted, and a lockout does not stop it.
#[utoipa::path(post, path = "/v1/me/reauthenticate/webauthn-challenge", tag = "Me", operation_id = "reauthenticateWebauthnChallenge",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The request options", body = WebauthnChallenge),
        (status = 409, description = "`invalid_state`: the user has no passkey or security key of this surface's RP ID; `webauthn_unavailable`: no RP ID on this surface", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reauthenticate_challenge(state: Data, user: UserAuth) -> Reply {
    ok(reauth::webauthn_challenge(&state, &user.0).await?)
}
