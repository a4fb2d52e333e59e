//! The signed-in user (docs/API.md §4): their 2FA status, voluntary (re-)enrollment, removing
//! the factor, new recovery codes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::attempt::Verdict;
use super::enrollment::{self, own, EnrollmentMaterial};
use super::factors::removal::{remove_factors, Why};
use super::logins::TokenType;
use super::step_up;
use super::tenant::policy_of;
use super::{own_audit_ctx, surface_of, ClientMeta};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::db;
use crate::db::factors::Removal;
use crate::domain::audit::AuditType;
use crate::domain::factor::FactorName;
use crate::domain::factor_types::AllowedFactorTypes;
use crate::domain::ids::{FactorStatus, IdentityProvider, Surface, TenantId, UserId};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaStatus {
    /// The user has an active authenticator app.
    pub enrolled: bool,
    /// `null` without an authenticator app.
    #[schema(required = true)]
    pub enrolled_at: Option<DateTime<Utc>>,
    /// When a code was last accepted (the confirming code counts); `null` without an
    /// authenticator app.
    #[schema(required = true)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub recovery_codes_remaining: i64,
    /// How many active authenticator apps the user has (§10).
    pub factors: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantMfa {
    pub enforce_mfa: bool,
    pub surfaces: Vec<Surface>,
    /// How long "Don't ask again on this browser" lasts (§12); 0 when the tenant does not
    /// offer it.
    pub remember_device_days: i32,
    /// The factor types users may enroll (§16).
    pub allowed_factor_types: AllowedFactorTypes,
    /// Whether passkeys work on the surface of this token (it has an RP ID).
    pub webauthn_available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tenant_id": "acme", "user_id": "u-1001", "email": "jane@acme.example",
    "identity_provider": "local", "mfa": {"enrolled": true, "enrolled_at": "2026-11-28T09:00:00Z",
    "last_used_at": "2026-11-28T09:30:00Z", "recovery_codes_remaining": 9, "factors": 1},
    "tenant": {"enforce_mfa": true, "surfaces": ["app", "portal"], "remember_device_days": 30}}))]
pub struct MeView {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    pub identity_provider: IdentityProvider,
    pub mfa: MfaStatus,
    pub tenant: TenantMfa,
}

/// A new access token (carrying `otp` in `amr`) and the recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeEnrolled {
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    #[schema(example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Vec<String>,
}

/// New recovery codes; the previous ones no longer work.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Vec<String>,
}

/// `GET /v1/me`.
#[tracing::instrument(skip_all)]
pub async fn show(state: &AppState, claims: &AccessClaims) -> Result<MeView, ApiError> {
    let mut conn = state.pool.get().await?;
    let user = db::users::get(&mut conn, &claims.tid, &claims.sub)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let tenant = db::tenants::get(&mut conn, &claims.tid)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let factors = db::factors::active(&mut conn, &claims.tid, &claims.sub).await?;
    let factor = factors.first();
    let remaining = match factor {
        Some(_) => db::recovery::count_unused(&mut conn, &claims.tid, &claims.sub).await?,
        None => 0,
    };
    let policy = policy_of(&tenant)?;
    Ok(MeView {
        tenant_id: user.tenant_id,
        user_id: user.user_id,
        email: user.email,
        identity_provider: user.identity_provider,
        mfa: MfaStatus {
            enrolled: factor.is_some(),
            enrolled_at: factor.and_then(|f| f.activated_at),
            last_used_at: factors.iter().filter_map(|f| f.last_used_at).max(),
            recovery_codes_remaining: remaining,
            factors: factors.len() as i64,
        },
        tenant: TenantMfa {
            enforce_mfa: policy.enforce_mfa,
            surfaces: policy.surfaces,
            remember_device_days: policy.remember_device_days.get(),
            allowed_factor_types: policy.allowed_factor_types,
            webauthn_available: state.webauthn.get(surface_of(state, claims)).is_some(),
        },
    })
}

/// `POST /v1/me/totp-enrollment`; a re-enrollment (the user has a factor) needs step-up. It
/// is a replacement (§10), so the tenant's factor limit does not apply.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn start_enrollment(
    state: &AppState,
    claims: &AccessClaims,
    name: Option<FactorName>,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    own::start(state, claims, name, false, step_up_code, meta).await
}

/// `POST /v1/me/totp-enrollment/confirm`: activates the pending factor (replacing every
/// other active factor only now, with new recovery codes) and returns a token whose `amr`
/// carries `otp`.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn confirm_enrollment(
    state: &AppState,
    claims: &AccessClaims,
    code: &str,
    meta: &ClientMeta,
) -> Result<MeEnrolled, ApiError> {
    let done = own::confirm(state, claims, own::Pending::Latest, code, meta).await?;
    Ok(MeEnrolled {
        access_token: done.minted.token,
        token_type: TokenType::Bearer,
        expires_in: done.minted.expires_in,
        recovery_codes: done.recovery_codes.unwrap_or_default(),
    })
}

/// `DELETE /v1/me/totp`: removes all the user's factors; refused while the tenant requires this user's factor (checked
/// first, so no code is spent on a call that cannot succeed), all in the transaction that
/// removes it.
#[tracing::instrument(skip_all)]
pub async fn remove_factor(
    state: &AppState,
    claims: &AccessClaims,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        let user = db::users::get(conn, &claims.tid, &claims.sub)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let tenant = db::tenants::get(conn, &claims.tid)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if policy_of(&tenant)?.requires_factor(user.identity_provider) {
            return Err(ApiError::MfaEnforced);
        }
        if db::factors::active(conn, &claims.tid, &claims.sub)
            .await?
            .is_empty()
        {
            return Err(ApiError::NotFound);
        }
        accepted!(step_up::require_in(conn, state, claims, step_up_code, meta).await?);
        // Sign-ins started against the removed factors cannot finish; they end with them.
        let (all, why) = (Removal::All, Why::ByUser);
        let gone = remove_factors(conn, &audit, &claims.sub, all, why, now).await?;
        if !gone.iter().any(|(_, s, _)| *s == FactorStatus::Active) {
            return Err(ApiError::NotFound);
        }
        Ok(Verdict::Accepted(()))
    })
    .await?
    .answer()
}

/// `POST /v1/me/recovery-codes`: ten new codes; the old ones stop working.
#[tracing::instrument(skip_all)]
pub async fn regenerate_codes(
    state: &AppState,
    claims: &AccessClaims,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<RecoveryCodes, ApiError> {
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        accepted!(step_up::require_in(conn, state, claims, step_up_code, meta).await?);
        if db::factors::active(conn, &claims.tid, &claims.sub)
            .await?
            .is_empty()
        {
            return Err(ApiError::InvalidState(
                "The user has no authenticator app, so no recovery codes.",
            ));
        }
        let (codes, hashes) = enrollment::new_recovery_codes(state);
        db::recovery::replace(conn, &claims.tid, &claims.sub, &hashes, now).await?;
        let (kind, details) = (AuditType::RecoveryCodesRegenerated, serde_json::json!({}));
        db::audit::insert(conn, &audit, kind, now, details).await?;
        Ok(Verdict::Accepted(RecoveryCodes {
            recovery_codes: codes,
        }))
    })
    .await?
    .answer()
}
