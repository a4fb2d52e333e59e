//! The OpenAPI 3.1 document: every handler with its errors, the three credential schemes,
//! and an overview of the flows. `openapi/openapi.json` is this, printed by
//! `mspbots-mfa openapi` and compared by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::http;
use crate::http::problems::{problem, retry_after};
use crate::services;

const DESCRIPTION: &str = r#"Two-factor authentication (TOTP) for MSPbots.

MSPbots requires 2FA for users who do not sign in through Microsoft 365 / Azure AD. A tenant
admin who has 2FA turns it on for the tenant; from then on every local user of that tenant sets
up an authenticator app (Microsoft, Google or LastPass Authenticator) at their first sign-in to
the MSPbots app or the Client Portal, and enters a code at every later sign-in.

## Credentials
* **service key** (`Authorization: Bearer sk_…`): trusted backends (the MSPbots login backend,
  the Client Portal backend). Created with `mspbots-mfa service-keys create`.
* **mfa token** (`Authorization: Bearer mfa_…`): the browser of one user during one sign-in.
  Lives 10 minutes, dies after 5 wrong codes or on success.
* **access token** (`Authorization: Bearer <JWT>`): a signed-in user. EdDSA, verify it with
  `/.well-known/jwks.json`; `aud` is `mspbots-app` or `mspbots-portal`; `amr` tells how the user
  signed in (`["pwd"]`, `["pwd","otp","mfa"]` or `["pwd","mfa","rc"]`).

A credential of a kind an endpoint does not take is `401 unauthenticated`.

## Flow 1: an admin turns 2FA on for the tenant
1. The admin, if not yet enrolled, enrolls voluntarily: `POST /v1/me/totp-enrollment`, then
   `POST /v1/me/totp-enrollment/confirm` → a token whose `amr` holds `otp`.
2. `GET /v1/tenants/{tenant_id}/policy` → the policy and its `ETag`.
3. `PUT /v1/tenants/{tenant_id}/policy` with `If-Match: <ETag>` and `{"enforce_mfa": true}`.
   This is a sensitive call: it needs a sign-in with 2FA in the last 5 minutes, or a current code
   in the `X-MFA-Code` header ("Enter the code from your authenticator app").

## Flow 2: first sign-in of a user who must set up 2FA ("Setup MFA")
1. The login backend checks the password, then `POST /v1/logins` →
   `{"status": "enrollment_required", "login_id", "mfa_token", "expires_at"}`.
2. The browser calls `POST /v1/logins/{login_id}/totp-enrollment` with the mfa token → the QR
   code (`qr_svg`, `qr_png`) and `secret` for manual entry.
3. The user scans it and types the 6-digit code: `POST /v1/logins/{login_id}/totp-enrollment/confirm`
   `{"code": "123456"}` → an access token and ten recovery codes (shown once).

## Flow 3: every later sign-in of a user who has 2FA
1. `POST /v1/logins` → `{"status": "verification_required", "login_id", "mfa_token", …}`.
2. `POST /v1/logins/{login_id}/verify` `{"code": "123456"}` → an access token. Lost phone:
   `POST /v1/logins/{login_id}/recover` `{"recovery_code": "xxxxx-xxxxx"}`. A phone whose
   clock drifted: `POST /v1/logins/{login_id}/resync` `{"code1", "code2"}` (two consecutive
   codes) → an access token, and the factor remembers the offset.

## A second authenticator (v1.1)
1. `POST /v1/me/factors` `{"name": "Tablet"}` (step-up: a recent 2FA sign-in or `X-MFA-Code`)
   → the enrollment material with `factor_id`.
2. `POST /v1/me/factors/{factor_id}/confirm` `{"code": "123456"}` → the factor and a fresh token;
   the existing recovery codes stay valid. A code from any active authenticator now signs in.
3. `GET /v1/me/factors` lists them; `PATCH` renames, `DELETE` removes one (step-up).

## Remember this browser (tenant policy `remember_device_days` > 0)
1. `POST /v1/logins/{login_id}/verify` `{"code": "123456", "remember_device": true}` → also
   `device_token` (`dv_…`) and `device_expires_at`. The login backend keeps the token in an
   HttpOnly, Secure, SameSite cookie of its own; page scripts never see it.
2. Next time, `POST /v1/logins` with `"device_token"` → `{"status": "authenticated", "mfa":
   "remembered", …}` with `amr: ["pwd","mfa"]` and the `auth_time` of the code typed there. A
   token that is no longer live is ignored (the usual `verification_required`).
3. `GET /v1/me/devices`, `DELETE /v1/me/devices[/{device_id}]`; admins:
   `GET|DELETE /v1/tenants/{tenant_id}/users/{user_id}/devices`.

## Set up later, N days left (tenant policy `enrollment_grace_days` > 0)
1. `enrollment_required` carries `grace_ends_at` while the user's grace runs.
2. `POST /v1/logins/{login_id}/skip-enrollment` → signed in with `mfa: "grace"`, `amr: ["pwd"]`;
   after the grace, `409 invalid_state`.
3. `GET /v1/tenants/{tenant_id}/mfa-summary` and the users listing's `mfa=in_grace|overdue`
   show how far the tenant is.

## Webhooks
A tenant admin subscribes an `https` endpoint to the tenant's audit events
(`POST /v1/tenants/{tenant_id}/webhooks`). Each delivery is a `POST` signed as Standard Webhooks
does (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), retried
after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (±10 %); receivers dedupe by
`webhook-id` (delivery is at least once).

## Errors
Every error is `application/problem+json` (RFC 9457) with a stable `code`: `invalid_request`,
`invalid_code`, `code_reused`, `unauthenticated`, `forbidden`, `mfa_required_for_admin`,
`step_up_required`, `not_found`, `method_not_allowed`, `invalid_state`, `mfa_enforced`,
`factor_limit` (enrolling past the tenant's `max_factors_per_user`), `webhook_limit` (a tenant's 21st webhook), `name_taken` (a factor name
the user already uses, ignoring case), `precondition_failed`, `precondition_required`, `request_timeout` (the body did not arrive in
time), `payload_too_large`, `unsupported_media_type`, `too_many_attempts` (with `Retry-After`),
`unavailable` (with `Retry-After`: the database failed or missed the deadline), `internal`.
Every response carries `X-Request-Id`. Requests are judged by this document's schemas: an
`X-MFA-Code` not of the documented form is `400 invalid_request` wherever it is sent (also
where no step-up is needed), an empty listing `cursor` is `400`, an empty `If-Match` is `428`,
and a request body is `application/json` (parameters such as `charset` allowed), anything
else `415`.
"#;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "service_key",
            scheme(
                "sk_…",
                "Service key of a trusted backend (`sk_` + 256 random bits).",
            ),
        );
        components.add_security_scheme(
            "mfa_token",
            scheme(
                "mfa_…",
                "The mfa token of one sign-in in progress (`mfa_` + 128 random bits, its user's turn key, its expiry and a keyed tag; opaque to callers).",
            ),
        );
        components.add_security_scheme(
            "access_token",
            scheme(
                "JWT",
                "EdDSA access token issued by this service; verify with /.well-known/jwks.json.",
            ),
        );
    }
}

/// The errors any operation can return, whatever its handler does: `413`/`415` from the body
/// guard that runs before routing, `500` (a panic or a bug), and `503` where the operation
/// uses the database. Shared as `components/responses` and added to every operation that
/// does not document the status itself. Every operation that takes a credential can also
/// answer `401 unauthenticated`: added in those words unless the handler words it otherwise.
struct CommonErrors;

/// Operations that never touch the database, so never answer `503`.
const NO_DATABASE: &[&str] = &["healthz", "metrics", "jwks", "openapi"];

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let common = [
            ("408", "RequestTimeout", problem("`request_timeout`: the request body did not arrive in time").build()),
            ("413", "PayloadTooLarge", problem("`payload_too_large`: a request body over 16 KiB").build()),
            ("415", "UnsupportedMediaType", problem("`unsupported_media_type`: a request body that is not `application/json`").build()),
            ("500", "Internal", problem("`internal`: an unexpected error, logged with the request id; the body says nothing more").build()),
            ("503", "Unavailable", problem("`unavailable`: the database does not answer, or not within the deadline (waiting for a turn included: at most 2 requests of one user run at once per instance)").header("Retry-After", retry_after()).build()),
        ];
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, response) in &common {
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response.clone()));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let uses_db = !NO_DATABASE.contains(&op.operation_id.as_deref().unwrap_or(""));
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    let unauthenticated = problem("`unauthenticated`").build();
                    op.responses
                        .responses
                        .entry("401".to_owned())
                        .or_insert(RefOr::T(unauthenticated));
                }
                for (status, name, _) in &common {
                    if *status == "503" && !uses_db {
                        continue;
                    }
                    let reference = Ref::new(format!("#/components/responses/{name}"));
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert(RefOr::Ref(reference));
                }
            }
        }
    }
}

/// Every listing's `cursor` is what an earlier page's `next_cursor` held, never empty: the
/// schema says so (`minLength: 1`) and an empty `cursor=` is `400 invalid_request`, as the
/// service has always answered. (Here rather than on each query struct, once for all four.)
struct NonEmptyCursor;

impl Modify for NonEmptyCursor {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        for item in openapi.paths.paths.values_mut() {
            let Some(op) = item.get.as_mut() else {
                continue;
            };
            for p in op.parameters.iter_mut().flatten() {
                let RefOr::T(p) = p else {
                    continue;
                };
                if p.name != "cursor" || !matches!(p.parameter_in, ParameterIn::Query) {
                    continue;
                }
                if let Some(RefOr::T(utoipa::openapi::Schema::Object(o))) = p.schema.as_mut() {
                    o.min_length = Some(1);
                }
                p.description = Some(
                    "`next_cursor` of the previous page; leave it out for the first page (an empty value is `400`)."
                        .to_owned(),
                );
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mspbots-mfa",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        contact(name = "MSPbots", url = "https://www.mspbots.ai"),
    ),
    servers((url = "http://127.0.0.1:8080", description = "Local development")),
    modifiers(&SecuritySchemes, &CommonErrors, &NonEmptyCursor),
    tags(
        (name = "Sign-in", description = "The second factor of a sign-in: enrollment, verification, recovery."),
        (name = "Me", description = "The signed-in user's own authenticator apps, recovery codes and remembered browsers."),
        (name = "Tenant administration", description = "The tenant's 2FA switch, its users, lockouts and audit trail."),
        (name = "Webhooks", description = "Signed HTTP callbacks of the tenant's audit events (Standard Webhooks): endpoints, secrets, deliveries."),
        (name = "Operations", description = "Health, readiness, metrics, keys and this document."),
    ),
    paths(
        http::logins::start, http::logins::get, http::logins::start_enrollment, http::logins::confirm_enrollment,
        http::logins::verify, http::logins::recover, http::logins::resync, http::logins::skip_enrollment,
        http::passkeys::challenge, http::passkeys::sign_in, http::passkeys::start_enrollment,
        http::passkeys::confirm_enrollment,
        http::me::show, http::me::start_enrollment, http::me::confirm_enrollment, http::me::remove_factor,
        http::me::regenerate_codes, http::me::reauthenticate, http::me::reauthenticate_challenge,
        http::factors::list, http::factors::add, http::factors::confirm, http::factors::rename,
        http::factors::remove, http::factors::resync, http::factors::admin_list, http::factors::admin_remove,
        http::devices::list_mine, http::devices::revoke_mine, http::devices::revoke_all_mine,
        http::devices::list_for_user, http::devices::revoke_for_user, http::devices::summary,
        http::tenants::get_policy, http::tenants::put_policy, http::tenants::list_users, http::tenants::reset_factor,
        http::tenants::unlock, http::tenants::delete_user, http::tenants::list_events,
        http::webhooks::create, http::webhooks::list, http::webhooks::get, http::webhooks::update,
        http::webhooks::delete, http::webhooks::rotate, http::webhooks::test,
        http::webhooks::deliveries, http::webhooks::retry,
        http::ops::healthz, http::ops::readyz, http::ops::metrics, http::ops::jwks, http::ops::openapi,
    ),
    components(schemas(
        crate::error::Problem, crate::error::FieldError,
        services::logins::StartLogin, services::logins::LoginStarted, services::logins::LoginView,
        services::logins::CodeRequest, services::logins::RecoverRequest, services::logins::Verified,
        services::logins::Enrolled, services::logins::Recovered,
        services::logins::SignInCodeRequest, services::logins::Skipped,
        services::devices::DeviceList, services::devices::DeviceView, services::grace::MfaSummary,
        services::enrollment::EnrollmentMaterial,
        services::me::MeView, services::me::MeEnrolled, services::me::RecoveryCodes,
        services::reauth::ReauthRequest, services::reauth::Reauthenticated,
        services::policy::PolicyView, services::policy::PolicyChange,
        services::admin::UserPage, services::admin::AuditPage,
        services::factors::FactorView, services::factors::FactorList, services::factors::FactorConfirmed,
        services::factors::NewFactorRequest, services::factors::RenameRequest,
        services::resync::ResyncRequest, services::logins::Resynced,
        services::factors::NewFactor, services::factors::ConfirmFactorRequest,
        services::webauthn::WebauthnEnrollment, services::logins::WebauthnChallenge,
        services::logins::WebauthnSignInRequest, services::logins::WebauthnEnrollRequest,
        crate::domain::ids::FactorType,
        crate::domain::ids::UserVerification,
        services::webhooks::CreateWebhook, services::webhooks::UpdateWebhook,
        services::webhooks::WebhookView, services::webhooks::WebhookCreated,
        services::webhooks::WebhookPage, services::webhooks::RotatedSecret,
        services::webhooks::TestQueued, services::webhooks::DeliveryPage,
    )),
)]
pub struct ApiDoc;

/// The document as served and committed: pretty JSON with a final newline.
pub fn document() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
