//! A tenant's stored policy read as the domain's `TenantPolicy`, for every use case that
//! decides by it (sign-in, devices, grace, factors, administration), and the one check of
//! `allowed_factor_types` that every enrollment start makes.

use diesel_async::AsyncPgConnection;

use super::stored;
use crate::db::{self, tenants::TenantRow};
use crate::domain::factor_types::AllowedFactorTypes;
use crate::domain::ids::UserVerification;
use crate::domain::ids::{parse_db_list, FactorType, IdentityProvider, Surface, TenantId};
use crate::domain::policy::{Days, FactorLimit, Issuer, TenantPolicy};
use crate::error::ApiError;

pub fn policy_of(t: &TenantRow) -> Result<TenantPolicy, ApiError> {
    Ok(TenantPolicy {
        enforce_mfa: t.enforce_mfa,
        surfaces: stored(parse_db_list(&t.surfaces, Surface::from_db), "surfaces")?,
        exempt_identity_providers: stored(
            parse_db_list(&t.exempt_identity_providers, IdentityProvider::from_db),
            "providers",
        )?,
        issuer: stored(Issuer::parse(&t.issuer).ok(), "issuer")?,
        max_factors_per_user: stored(
            FactorLimit::parse(t.max_factors_per_user.into()).ok(),
            "max_factors_per_user",
        )?,
        remember_device_days: stored(
            Days::parse(t.remember_device_days.into()).ok(),
            "remember_device_days",
        )?,
        enrollment_grace_days: stored(
            Days::parse(t.enrollment_grace_days.into()).ok(),
            "enrollment_grace_days",
        )?,
        allowed_factor_types: stored(
            AllowedFactorTypes::from_db(&t.allowed_factor_types),
            "allowed_factor_types",
        )?,
        webauthn_user_verification: stored(
            UserVerification::from_db(&t.webauthn_user_verification),
            "webauthn_user_verification",
        )?,
    })
}

/// §16, §21 start check 3: a new enrollment of a type the tenant does not allow is `409
/// factor_type_not_allowed` (checked when it starts, before step-up); factors enrolled
/// before keep working.
pub fn allow_new(policy: &TenantPolicy, kind: FactorType) -> Result<(), ApiError> {
    if policy.allowed_factor_types.allows(kind) {
        Ok(())
    } else {
        Err(ApiError::FactorTypeNotAllowed)
    }
}

/// [`allow_new`] against the tenant's policy as stored now.
#[tracing::instrument(skip_all)]
pub async fn allow_new_in(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    kind: FactorType,
) -> Result<(), ApiError> {
    let tenant = db::tenants::get(conn, tenant_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    allow_new(&policy_of(&tenant)?, kind)
}
