//! A tenant's stored policy read as the domain's `TenantPolicy`, for every use case that
//! decides by it (sign-in, devices, grace, factors, administration).

use super::stored;
use crate::db::tenants::TenantRow;
use crate::domain::factor_types::AllowedFactorTypes;
use crate::domain::ids::{parse_db_list, IdentityProvider, Surface, UserVerification};
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
