//! Remembered devices (docs/API.md §12): "don't ask again on this browser for N days". A code
//! typed with `remember_device` mints a `dv_` token (stored as a keyed hash) bound to the
//! tenant, user and surface; `POST /v1/logins` with a live one signs in without a code.
//!
//! Every cause that ends a device's trust calls [`revoke_all_devices`] in its own
//! transaction (factor removed, reset or replaced, recovery-code sign-in, lockout, user
//! deleted); the tenant setting the days to 0 calls [`revoke_tenant_devices`]. Lowering the
//! days clips by age when a token is used or listed ([`created_after`]). The user's and the
//! admin's listing and revocation endpoints are in `manage`.

mod manage;

pub use manage::{list, require_user, revoke_by_admin, revoke_mine, DeviceList, DeviceView};

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::ClientMeta;
use crate::crypto::hashing::HashPurpose;
use crate::crypto::tokens;
use crate::db::{self, audit::AuditCtx, devices::DeviceRow};
use crate::domain::audit::AuditType;
use crate::domain::device_name;
use crate::domain::ids::{Surface, TenantId, UserId};
use crate::domain::policy::Days;
use crate::domain::text::is_hidden;
use crate::error::ApiError;
use crate::services::tenant::policy_of;
use crate::state::AppState;

/// At most this many live devices per user; one more revokes the one created first.
pub const MAX_DEVICES_PER_USER: usize = 20;

/// Why devices were revoked, as `device.revoked` records it (`details.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    UserRevoked,
    AdminRevoked,
    FactorRemoved,
    FactorReset,
    FactorReplaced,
    RecoveryCodeSignIn,
    Locked,
    UserDeleted,
    PolicyDisabled,
    Limit,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRevoked => "user_revoked",
            Self::AdminRevoked => "admin_revoked",
            Self::FactorRemoved => "factor_removed",
            Self::FactorReset => "factor_reset",
            Self::FactorReplaced => "factor_replaced",
            Self::RecoveryCodeSignIn => "recovery_code_sign_in",
            Self::Locked => "locked",
            Self::UserDeleted => "user_deleted",
            Self::PolicyDisabled => "policy_disabled",
            Self::Limit => "limit",
        }
    }
}

/// `remember_device` and `device_name` of a verify or an enrollment confirmation, parsed.
#[derive(Debug, Clone, Default)]
pub struct RememberRequest {
    pub remember: bool,
    pub name: Option<String>,
}

impl RememberRequest {
    /// `device_name`: trimmed, 1-64 characters, no control or format characters.
    pub fn parse(remember: Option<bool>, name: Option<&str>) -> Result<Self, ApiError> {
        let name = match name.map(str::trim) {
            None => None,
            Some(n) if !n.is_empty() && n.chars().count() <= 64 && !n.chars().any(is_hidden) => {
                Some(n.to_owned())
            }
            Some(_) => {
                return Err(ApiError::field(
                    "device_name",
                    "must be 1-64 characters without control or invisible formatting characters",
                ))
            }
        };
        Ok(Self {
            remember: remember.unwrap_or(false),
            name,
        })
    }
}

/// The creation time after which a device may still be live under `days` (None: off).
pub fn created_after(days: Days, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (days.get() > 0).then(|| now - Duration::days(i64::from(days.get())))
}

/// The token of a newly remembered device, shown only in this response.
#[derive(Debug)]
pub struct Remembered {
    pub device_token: String,
    pub device_expires_at: DateTime<Utc>,
}

/// After a code was accepted on a sign-in (`audit` is that sign-in's): remembers the
/// browser when asked and the tenant allows it, in the caller's transaction. The 21st live
/// device revokes the oldest.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all)]
pub async fn remember(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    audit: &AuditCtx,
    user_id: &UserId,
    surface: Surface,
    req: &RememberRequest,
    meta: &ClientMeta,
    now: DateTime<Utc>,
) -> Result<Option<Remembered>, ApiError> {
    if !req.remember {
        return Ok(None);
    }
    let tenant_id = &audit.tenant_id;
    let tenant = db::tenants::get(conn, tenant_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let days = policy_of(&tenant)?.remember_device_days;
    let Some(cutoff) = created_after(days, now) else {
        return Ok(None);
    };
    let live = db::devices::live_for_user(conn, tenant_id, user_id, now, cutoff).await?;
    let excess = (live.len() + 1).saturating_sub(MAX_DEVICES_PER_USER);
    for old in live.iter().take(excess) {
        let revoked =
            db::devices::revoke_for_user(conn, tenant_id, user_id, Some(old.device_id), now)
                .await?;
        audit_revoked(conn, audit, user_id, &revoked, RevokeReason::Limit, now).await?;
    }
    let token = tokens::new_device_token();
    let hash = state
        .keys
        .hash_key
        .hash(HashPurpose::DeviceToken, token.as_bytes());
    let device_id = Uuid::new_v4();
    let name = req
        .name
        .clone()
        .unwrap_or_else(|| device_name::from_user_agent(meta.user_agent.as_deref()));
    let expires_at = now + Duration::days(i64::from(days.get()));
    db::devices::insert(
        conn,
        &db::devices::NewDevice {
            tenant_id,
            device_id,
            user_id,
            surface,
            token_hash: &hash,
            name: &name,
            auth_time: now,
            created_at: now,
            expires_at,
        },
    )
    .await?;
    let details = serde_json::json!({"device_id": device_id, "name": name,
        "expires_at": expires_at});
    db::audit::insert(conn, audit, AuditType::DeviceRemembered, now, details).await?;
    Ok(Some(Remembered {
        device_token: token,
        device_expires_at: expires_at,
    }))
}

/// The live device of a `device_token` sent with `POST /v1/logins`, for this tenant, user
/// and surface under the tenant's current days; `None` for anything else (no oracle: the
/// caller goes on with the normal flow).
#[tracing::instrument(skip_all)]
pub async fn live_device(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    who: (&TenantId, &UserId, Surface),
    days: Days,
    now: DateTime<Utc>,
) -> Result<Option<DeviceRow>, ApiError> {
    let Some(cutoff) = created_after(days, now) else {
        return Ok(None);
    };
    if !token.starts_with("dv_") {
        return Ok(None);
    }
    let hash = state
        .keys
        .hash_key
        .hash(HashPurpose::DeviceToken, token.as_bytes());
    Ok(db::devices::live_by_token(conn, &hash, who, now, cutoff).await?)
}

async fn audit_revoked(
    conn: &mut AsyncPgConnection,
    audit: &AuditCtx,
    user_id: &UserId,
    devices: &[Uuid],
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let ctx = AuditCtx {
        user_id: Some(user_id.clone()),
        ..audit.clone()
    };
    for id in devices {
        let details = serde_json::json!({"device_id": id, "reason": reason.as_str()});
        db::audit::insert(conn, &ctx, AuditType::DeviceRevoked, now, details).await?;
    }
    Ok(())
}

/// THE one way to end all of a user's remembered devices, in the caller's transaction, with
/// a `device.revoked` event per device (`audit` is the cause's; its user is set to `user_id`).
/// Every path that removes, resets or replaces a factor, a recovery-code sign-in, a lockout
/// and offboarding call it. Returns how many were revoked.
#[tracing::instrument(skip_all)]
pub async fn revoke_all_devices(
    conn: &mut AsyncPgConnection,
    audit: &AuditCtx,
    user_id: &UserId,
    reason: RevokeReason,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let revoked = db::devices::revoke_for_user(conn, &audit.tenant_id, user_id, None, now).await?;
    audit_revoked(conn, audit, user_id, &revoked, reason, now).await?;
    Ok(revoked.len())
}

/// The tenant set `remember_device_days` to 0: every device of it is revoked, in the policy
/// change's transaction.
#[tracing::instrument(skip_all)]
pub async fn revoke_tenant_devices(
    conn: &mut AsyncPgConnection,
    audit: &AuditCtx,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let revoked = db::devices::revoke_for_tenant(conn, &audit.tenant_id, now).await?;
    for (user_id, device_id) in &revoked {
        audit_revoked(
            conn,
            audit,
            user_id,
            &[*device_id],
            RevokeReason::PolicyDisabled,
            now,
        )
        .await?;
    }
    Ok(revoked.len())
}
