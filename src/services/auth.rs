//! Who is calling: service keys (trusted backends), access tokens (signed-in users) and the
//! rule for tenant administrators.

use uuid::Uuid;

use crate::crypto::hashing::HashPurpose;
use crate::crypto::jwt::AccessClaims;
use crate::db;
use crate::domain::ids::{FactorStatus, TenantId};
use crate::error::ApiError;
use crate::state::AppState;

/// Seconds of clock difference tolerated on `exp`/`iat` between instances.
const LEEWAY_SECS: u64 = 30;

/// An authenticated trusted backend.
#[derive(Debug, Clone)]
pub struct ServiceKey {
    pub key_id: Uuid,
    pub name: String,
    /// `None`: every tenant.
    pub scope: Option<Vec<String>>,
}

impl ServiceKey {
    pub fn covers(&self, tenant_id: &str) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.iter().any(|t| t == tenant_id))
    }

    /// 403 unless the key's scope covers the tenant.
    pub fn require(&self, tenant_id: &str) -> Result<(), ApiError> {
        if self.covers(tenant_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Looks a service key up by its keyed hash. The lookup is by hash, so its timing says
/// nothing about any stored key.
#[tracing::instrument(skip_all)]
pub async fn service_key(state: &AppState, key: &str) -> Result<ServiceKey, ApiError> {
    if !key.starts_with("sk_") || key.len() > 100 {
        return Err(ApiError::Unauthenticated);
    }
    let hash = state
        .keys
        .hash_key
        .hash(HashPurpose::ServiceKey, key.as_bytes());
    let mut conn = state.pool.get().await?;
    let row = db::service_keys::find_live(&mut conn, &hash)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(ServiceKey {
        key_id: row.key_id,
        name: row.name,
        scope: row.tenant_scope,
    })
}

/// Verifies an access token (signature, `kid`, `iss`, `aud`, expiry).
pub fn access_token(state: &AppState, token: &str) -> Result<AccessClaims, ApiError> {
    let s = &state.settings;
    let audiences = [s.audience_app.clone(), s.audience_portal.clone()];
    state
        .keys
        .signing
        .verify(
            token,
            &s.issuer,
            &audiences,
            state.now().timestamp(),
            LEEWAY_SECS,
        )
        .map_err(|e| {
            tracing::debug!(reason = %e, "access token rejected");
            ApiError::Unauthenticated
        })
}

/// The tenant administration rule (docs/API.md §5): an admin of this tenant (else 403
/// `forbidden`) who signed in with a second factor and still has one (else 403
/// `mfa_required_for_admin`). Roles are read from the user's current record too, so a token
/// minted before a demotion or an offboarding no longer administers anything.
#[tracing::instrument(skip_all)]
pub async fn require_admin(
    state: &AppState,
    claims: &AccessClaims,
    tenant_id: &TenantId,
) -> Result<(), ApiError> {
    let is_admin = |roles: &[String]| roles.iter().any(|r| r == "admin");
    if &claims.tid != tenant_id || !is_admin(&claims.roles) {
        return Err(ApiError::Forbidden);
    }
    let mut conn = state.pool.get().await?;
    let user = db::users::get(&mut conn, tenant_id, &claims.sub).await?;
    if !user.is_some_and(|u| is_admin(&u.roles)) {
        return Err(ApiError::Forbidden);
    }
    if !claims.amr.iter().any(|a| a == "mfa") {
        return Err(ApiError::MfaRequiredForAdmin);
    }
    match db::factors::get(&mut conn, tenant_id, &claims.sub, FactorStatus::Active).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::MfaRequiredForAdmin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_covers_listed_tenants_only() {
        let all = ServiceKey {
            key_id: Uuid::nil(),
            name: "a".into(),
            scope: None,
        };
        let one = ServiceKey {
            key_id: Uuid::nil(),
            name: "b".into(),
            scope: Some(vec!["t1".into()]),
        };
        assert!(all.covers("anything"));
        assert!(one.covers("t1"));
        assert!(!one.covers("t2"));
        assert!(matches!(one.require("t2"), Err(ApiError::Forbidden)));
    }
}
