//! The tenant's "2-factor Authentication" switch (docs/API.md §5): read by admins and scoped
//! service keys, changed by an admin with step-up and `If-Match`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tenant::policy_of;
use super::{audit_ctx, surface_of, ClientMeta};
use crate::crypto::jwt::AccessClaims;
use crate::db::{self, tenants::TenantRow};
use crate::domain::audit::AuditType;
use crate::domain::factor_types::AllowedFactorTypes;
use crate::domain::ids::{FactorType, IdentityProvider, Surface, TenantId, UserVerification};
use crate::domain::policy::{normalized, Days, FactorLimit, Issuer, TenantPolicy};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

/// The tenant's 2FA policy.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"tenant_id": "acme", "enforce_mfa": true, "surfaces": ["app", "portal"],
    "exempt_identity_providers": ["microsoft"], "issuer": "MSPbots", "max_factors_per_user": 5,
    "remember_device_days": 30, "enrollment_grace_days": 7, "version": 2,
    "updated_at": "2026-11-28T09:00:00Z", "updated_by": "u-1001"}))]
pub struct PolicyView {
    pub tenant_id: TenantId,
    /// The "2-factor Authentication" switch.
    pub enforce_mfa: bool,
    /// Where 2FA is enforced.
    pub surfaces: Vec<Surface>,
    /// Users of these identity providers are not made to enroll.
    pub exempt_identity_providers: Vec<IdentityProvider>,
    /// Shown above the code in the authenticator app.
    pub issuer: String,
    /// How many active authenticators a user may keep (§10).
    pub max_factors_per_user: FactorLimit,
    /// "Don't ask again on this browser" for this many days; 0 = off (§12).
    pub remember_device_days: Days,
    /// Days a user may postpone setting up an authenticator; 0 = enroll at once (§13).
    pub enrollment_grace_days: Days,
    /// Which factor types users may enroll (§16); existing factors keep working.
    pub allowed_factor_types: AllowedFactorTypes,
    /// Whether a passkey or security key must verify the user (PIN, biometrics) (§16).
    pub webauthn_user_verification: UserVerification,
    /// Increases with every change; the ETag is `"v<version>"`.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    /// The admin who made the last change; `null` until the first change.
    #[schema(required = true)]
    pub updated_by: Option<String>,
}

impl PolicyView {
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// `PUT /v1/tenants/{tenant_id}/policy`: every field is optional (v1.1); fields left out
/// keep their values.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"enforce_mfa": true, "surfaces": ["app", "portal"], "exempt_identity_providers": ["microsoft"], "enrollment_grace_days": 7}))]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    pub enforce_mfa: Option<bool>,
    pub surfaces: Option<Vec<Surface>>,
    pub exempt_identity_providers: Option<Vec<IdentityProvider>>,
    pub issuer: Option<Issuer>,
    pub max_factors_per_user: Option<FactorLimit>,
    pub remember_device_days: Option<Days>,
    pub enrollment_grace_days: Option<Days>,
    pub allowed_factor_types: Option<AllowedFactorTypes>,
    pub webauthn_user_verification: Option<UserVerification>,
}

pub fn view(t: TenantRow) -> Result<PolicyView, ApiError> {
    let p = policy_of(&t)?;
    Ok(PolicyView {
        tenant_id: t.tenant_id,
        enforce_mfa: p.enforce_mfa,
        surfaces: p.surfaces,
        exempt_identity_providers: p.exempt_identity_providers,
        issuer: t.issuer,
        max_factors_per_user: p.max_factors_per_user,
        remember_device_days: p.remember_device_days,
        enrollment_grace_days: p.enrollment_grace_days,
        allowed_factor_types: p.allowed_factor_types,
        webauthn_user_verification: p.webauthn_user_verification,
        version: t.version,
        updated_at: t.updated_at,
        updated_by: t.updated_by,
    })
}

/// The policy as `policy.updated` records it before and after a change.
fn audit_view(p: &TenantPolicy) -> serde_json::Value {
    serde_json::json!({
        "enforce_mfa": p.enforce_mfa,
        "surfaces": p.surfaces,
        "exempt_identity_providers": p.exempt_identity_providers,
        "issuer": p.issuer,
        "max_factors_per_user": p.max_factors_per_user,
        "remember_device_days": p.remember_device_days,
        "enrollment_grace_days": p.enrollment_grace_days,
        "allowed_factor_types": p.allowed_factor_types,
        "webauthn_user_verification": p.webauthn_user_verification,
    })
}

/// `GET /v1/tenants/{tenant_id}/policy` (authorization is the caller's).
#[tracing::instrument(skip_all)]
pub async fn get(state: &AppState, tenant_id: &TenantId) -> Result<PolicyView, ApiError> {
    let mut conn = state.pool.get().await?;
    let row = db::tenants::get(&mut conn, tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    view(row)
}

/// The versions an `If-Match` header names (`None` for `*`). Missing or empty is `428`. Our
/// ETag without its quotes (`v3`) is accepted; a weak tag can never match (RFC 9110
/// §13.1.1) and anything that is no entity tag is `400` saying so; another quoted tag simply
/// matches nothing (`412`).
pub fn parse_if_match(header: Option<&str>) -> Result<Vec<Option<i64>>, ApiError> {
    let h = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(ApiError::PreconditionRequired)?;
    let mut versions = Vec::new();
    for tag in h.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let version = |s: &str| s.strip_prefix('v').and_then(|n| n.parse::<i64>().ok());
        if tag == "*" {
            versions.push(None);
        } else if let Some(quoted) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            versions.extend(version(quoted).map(Some));
        } else if tag.starts_with("W/") {
            return Err(ApiError::field(
                "If-Match",
                "a weak entity tag never matches If-Match; send the ETag as received, e.g. \"v3\"",
            ));
        } else if let Some(v) = version(tag) {
            versions.push(Some(v));
        } else {
            return Err(ApiError::field(
                "If-Match",
                "not an entity tag; send the ETag as received, e.g. \"v3\"",
            ));
        }
    }
    Ok(versions)
}

/// `PUT /v1/tenants/{tenant_id}/policy`: the caller passed the admin and step-up checks.
#[tracing::instrument(skip_all)]
pub async fn update(
    state: &AppState,
    claims: &AccessClaims,
    tenant_id: &TenantId,
    if_match: Option<&str>,
    change: PolicyChange,
    meta: &ClientMeta,
) -> Result<PolicyView, ApiError> {
    let wanted = parse_if_match(if_match)?;
    let now = state.now();
    let audit = audit_ctx(
        tenant_id,
        None,
        Some(claims.sub.as_str()),
        Some(surface_of(state, claims)),
        meta,
    );
    in_transaction(state, async move |conn| {
        let current = db::tenants::get(conn, tenant_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if !wanted
            .iter()
            .any(|v| v.is_none_or(|v| v == current.version))
        {
            return Err(ApiError::PreconditionFailed);
        }
        let old = policy_of(&current)?;
        let new = TenantPolicy {
            enforce_mfa: change.enforce_mfa.unwrap_or(old.enforce_mfa),
            surfaces: change
                .surfaces
                .map(normalized)
                .unwrap_or_else(|| old.surfaces.clone()),
            exempt_identity_providers: change
                .exempt_identity_providers
                .map(normalized)
                .unwrap_or_else(|| old.exempt_identity_providers.clone()),
            issuer: change.issuer.unwrap_or_else(|| old.issuer.clone()),
            max_factors_per_user: change
                .max_factors_per_user
                .unwrap_or(old.max_factors_per_user),
            remember_device_days: change
                .remember_device_days
                .unwrap_or(old.remember_device_days),
            enrollment_grace_days: change
                .enrollment_grace_days
                .unwrap_or(old.enrollment_grace_days),
            allowed_factor_types: change
                .allowed_factor_types
                .unwrap_or_else(|| old.allowed_factor_types.clone()),
            webauthn_user_verification: change
                .webauthn_user_verification
                .unwrap_or(old.webauthn_user_verification),
        };
        // Only passkeys allowed where a surface it enforces has none (§21).
        if !new.allowed_factor_types.allows(FactorType::Totp)
            && new
                .surfaces
                .iter()
                .any(|s| new.enforces_on(*s) && state.webauthn.get(*s).is_none())
        {
            return Err(ApiError::WebauthnUnavailable);
        }
        // A change that changes nothing keeps the version, so the ETag other editors hold
        // stays valid, and writes no audit event: nothing happened.
        let unchanged = TenantPolicy {
            surfaces: normalized(old.surfaces.clone()),
            exempt_identity_providers: normalized(old.exempt_identity_providers.clone()),
            ..old.clone()
        };
        if new == unchanged {
            return view(current);
        }
        let surfaces: Vec<String> = new.surfaces.iter().map(|s| s.as_str().to_owned()).collect();
        let exempt: Vec<String> = new
            .exempt_identity_providers
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let allowed = new.allowed_factor_types.to_db();
        let update = db::tenants::PolicyUpdate {
            enforce_mfa: new.enforce_mfa,
            surfaces: &surfaces,
            exempt_identity_providers: &exempt,
            issuer: new.issuer.as_str(),
            updated_by: claims.sub.as_str(),
            max_factors_per_user: new.max_factors_per_user.get(),
            remember_device_days: new.remember_device_days.get(),
            enrollment_grace_days: new.enrollment_grace_days.get(),
            allowed_factor_types: &allowed,
            webauthn_user_verification: new.webauthn_user_verification.as_str(),
        };
        // The version check is repeated in the UPDATE itself, so a concurrent change
        // between the read and the write still gets 412.
        let row = db::tenants::update_policy(conn, tenant_id, current.version, &update, now)
            .await?
            .ok_or(ApiError::PreconditionFailed)?;
        let details = serde_json::json!({
            "version": row.version,
            "before": audit_view(&old),
            "after": audit_view(&new),
        });
        db::audit::insert(conn, &audit, AuditType::PolicyUpdated, now, details).await?;
        // Remembering turned off: every device of the tenant dies now, for good (§12).
        if new.remember_device_days.get() == 0 && old.remember_device_days.get() > 0 {
            super::devices::revoke_tenant_devices(conn, &audit, now).await?;
        }
        view(row)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parsing() {
        for missing in [None, Some(""), Some("  ")] {
            assert!(
                matches!(parse_if_match(missing), Err(ApiError::PreconditionRequired)),
                "{missing:?}"
            );
        }
        assert_eq!(parse_if_match(Some("\"v3\"")).unwrap(), vec![Some(3)]);
        assert_eq!(parse_if_match(Some("v3")).unwrap(), vec![Some(3)]);
        assert_eq!(
            parse_if_match(Some("\"v1\", \"v2\"")).unwrap(),
            vec![Some(1), Some(2)]
        );
        assert_eq!(parse_if_match(Some("*")).unwrap(), vec![None]);
        assert!(
            parse_if_match(Some("\"abc\"")).unwrap().is_empty(),
            "another tag matches nothing"
        );
        for bad in ["W/\"v3\"", "garbage", "3", "\"v3"] {
            let Err(ApiError::InvalidRequest { errors, .. }) = parse_if_match(Some(bad)) else {
                panic!("{bad}");
            };
            assert_eq!(errors[0].field, "If-Match");
        }
        assert_eq!(etag(7), "\"v7\"");
    }
}
