//! "Setup MFA" with a passkey instead of an app (docs/API.md §16, §21): `POST
//! /v1/logins/{login_id}/webauthn-enrollment` (no proof: a lockout does not stop it) and its
//! confirm, an attempt through the gate whose acceptance activates the factor, issues the
//! recovery codes and completes the sign-in.

use chrono::Duration;

use super::challenge::{check_attempt, in_sign_in, login_audit, open_attempt, require_status};
use super::enroll::enrolled;
use super::types::{ChallengeStatus, Enrolled};
use crate::accepted;
use crate::crypto::webauthn::CHALLENGE_SECONDS;
use crate::db;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorStatus, FactorType, LoginId};
use crate::error::ApiError;
use crate::services::attempt::{self, Against, Verdict};
use crate::services::devices::RememberRequest;
use crate::services::enrollment;
use crate::services::tenant::policy_of;
use crate::services::webauthn::{self, Start, WebauthnEnrollment};
use crate::services::ClientMeta;
use crate::state::AppState;

/// `POST /v1/logins/{login_id}/webauthn-enrollment`.
#[tracing::instrument(skip_all, fields(login_id = %login_id.0))]
pub async fn start_webauthn_enrollment(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    name: Option<FactorName>,
    meta: &ClientMeta,
) -> Result<WebauthnEnrollment, ApiError> {
    let now = state.now();
    let status = FactorStatus::Active;
    in_sign_in(state, token, login_id, status, async |conn, ctx, _| {
        // A password alone never adds a device to an account that has one.
        let has_active = ctx.factor_id.is_some();
        require_status(&ctx, has_active, ChallengeStatus::EnrollmentRequired)?;
        let tenant = db::tenants::get(conn, &ctx.tenant_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let policy = policy_of(&tenant)?;
        let rp = webauthn::preflight(state, &policy, ctx.surface)?;
        let user = db::users::get(conn, &ctx.tenant_id, &ctx.user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let audit = login_audit(&ctx, meta);
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
#[tracing::instrument(skip_all, fields(login_id = %login_id.0))]
pub async fn confirm_webauthn_enrollment(
    state: &AppState,
    token: &str,
    login_id: LoginId,
    credential: Option<&serde_json::Value>,
    remember: &RememberRequest,
    meta: &ClientMeta,
) -> Result<Enrolled, ApiError> {
    let proof = attempt::admit(state, meta, || webauthn::parse_registration(credential))?;
    let (status, wanted) = (FactorStatus::Pending, ChallengeStatus::EnrollmentRequired);
    in_sign_in(state, token, login_id, status, async |conn, ctx, _| {
        let audit = check_attempt(&ctx, status, wanted, meta)?;
        if !db::factors::active(conn, &ctx.tenant_id, &ctx.user_id)
            .await?
            .is_empty()
        {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        if state.webauthn.get(ctx.surface).is_none() {
            return Err(ApiError::WebauthnUnavailable);
        }
        let attempt = open_attempt(state, &ctx, &audit)?;
        let now = attempt.now();
        let pending = match ctx.factor_id {
            Some(id) => db::factors::by_id(conn, &ctx.tenant_id, &ctx.user_id, id).await?,
            None => None,
        };
        let p = enrollment::pending_of_type(pending, FactorType::Webauthn, now)?;
        let against = Against::PendingWebauthn(p.factor_id);
        let accepted = accepted!(attempt.evaluate(conn, state, &proof, against).await?);
        let done = (&ctx, &audit, accepted);
        enrolled(conn, state, done, remember, meta, now)
            .await
            .map(Verdict::Accepted)
    })
    .await?
    .answer()
}
