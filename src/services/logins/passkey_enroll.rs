//! "Setup MFA" with a passkey instead of an app (docs/API.md §16, §21): `POST
//! /v1/logins/{login_id}/webauthn-enrollment` (no proof: a lockout does not stop it) and its
//! confirm, an attempt through the gate whose acceptance activates the factor, issues the
//! recovery codes and completes the sign-in.

use chrono::Duration;

use super::challenge::{in_attempt, open_attempt, SignInAt};
use super::enroll::{enrolled, in_enrollment_start, no_active_factor, pending_of, CONFIRMING};
use super::types::Enrolled;
use crate::crypto::webauthn::CHALLENGE_SECONDS;
use crate::db;
use crate::domain::factor::FactorName;
use crate::domain::ids::FactorType;
use crate::error::ApiError;
use crate::services::attempt::{self, Against};
use crate::services::devices::RememberRequest;
use crate::services::enrollment;
use crate::services::tenant::policy_of;
use crate::services::webauthn::{self, Start, WebauthnEnrollment};
use crate::state::AppState;

/// `POST /v1/logins/{login_id}/webauthn-enrollment`.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn start_webauthn_enrollment(
    state: &AppState,
    at: SignInAt<'_>,
    name: Option<FactorName>,
) -> Result<WebauthnEnrollment, ApiError> {
    let now = state.now();
    in_enrollment_start(state, at, async |conn, ctx, audit| {
        let tenant = db::tenants::get(conn, &ctx.tenant_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let policy = policy_of(&tenant)?;
        let rp = webauthn::preflight(state, &policy, ctx.surface)?;
        let user = db::users::get(conn, &ctx.tenant_id, &ctx.user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let s = Start {
            user: &user,
            rp,
            uv: policy.webauthn_user_verification,
            name,
            login_id: Some(ctx.login_id),
            expires_at: (now + Duration::seconds(CHALLENGE_SECONDS)).min(ctx.expires_at),
        };
        webauthn::start(conn, &audit, &policy, s, now).await
    })
    .await
}

/// `POST /v1/logins/{login_id}/webauthn-enrollment/confirm`.
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn confirm_webauthn_enrollment(
    state: &AppState,
    at: SignInAt<'_>,
    credential: Option<&serde_json::Value>,
    remember: &RememberRequest,
) -> Result<Enrolled, ApiError> {
    let proof = attempt::admit(state, at.meta, || webauthn::parse_registration(credential))?;
    in_attempt(state, at, CONFIRMING, async |conn, ctx, audit, _| {
        no_active_factor(conn, &ctx).await?;
        if state.webauthn.get(ctx.surface).is_none() {
            return Err(ApiError::WebauthnUnavailable);
        }
        let attempt = open_attempt(state, &ctx, &audit)?;
        let pending = pending_of(conn, &ctx).await?;
        let p = enrollment::pending_of_type(pending, FactorType::Webauthn, attempt.now())?;
        let proof = (&proof, Against::PendingWebauthn(p.factor_id));
        enrolled(
            conn,
            state,
            &attempt,
            proof,
            (&ctx, &audit),
            remember,
            at.meta,
        )
        .await
    })
    .await
}
