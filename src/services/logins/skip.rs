//! `POST /v1/logins/{login_id}/skip-enrollment` (docs/API.md §13): "Set up later". Inside the
//! user's enrollment grace the sign-in ends without a second factor (`amr: ["pwd"]`);
//! after it, `409 invalid_state` and the user must enroll.

use super::challenge::{
    finish_login, in_sign_in, login_audit, require_status, signed_in, SignInAt,
};
use super::types::{AuthenticatedStatus, ChallengeStatus, Skipped, TokenType};
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::ids::FactorStatus;
use crate::domain::policy::MfaRequirement;
use crate::error::ApiError;
use crate::services::tenant::policy_of;
use crate::services::{amr, grace};
use crate::state::AppState;

/// `POST /v1/logins/{login_id}/skip-enrollment`: the login ends (its mfa token dies).
#[tracing::instrument(skip_all, fields(login_id = %at.login_id.0))]
pub async fn skip_enrollment(state: &AppState, at: SignInAt<'_>) -> Result<Skipped, ApiError> {
    let now = state.now();
    let status = FactorStatus::Active;
    in_sign_in(
        state,
        at.token,
        at.login_id,
        status,
        async |conn, ctx, factors| {
            require_status(
                &ctx,
                !factors.is_empty(),
                ChallengeStatus::EnrollmentRequired,
            )?;
            let tenant = db::tenants::get(conn, &ctx.tenant_id)
                .await?
                .ok_or(ApiError::Unauthenticated)?;
            let days = policy_of(&tenant)?.enrollment_grace_days;
            let started = db::grace::started_at(conn, &ctx.tenant_id, &ctx.user_id).await?;
            let Some(ends) = grace::running(started, days, now) else {
                return Err(ApiError::InvalidState(
                    "The enrollment grace is over: set up an authenticator app to sign in.",
                ));
            };
            let audit = login_audit(&ctx, at.meta);
            // No proof, so no lockout reset: only the sign-in's time is stored.
            db::users::touch_login(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
            finish_login(conn, &ctx, &audit, "enrollment_skipped", None, now).await?;
            let details = serde_json::json!({"login_id": ctx.login_id.0, "grace_ends_at": ends});
            db::audit::insert(conn, &audit, AuditType::TotpEnrollmentSkipped, now, details).await?;
            let m = signed_in(state, &ctx, amr::PASSWORD_ONLY, now)?;
            Ok(Skipped {
                status: AuthenticatedStatus::Authenticated,
                mfa: MfaRequirement::Grace,
                access_token: m.token,
                token_type: TokenType::Bearer,
                expires_in: m.expires_in,
                grace_ends_at: ends,
            })
        },
    )
    .await
}
