//! The one path by which factors are removed (docs/API.md §10): the user's own removals, an
//! admin's, and a v1 replacement at its confirmation all call [`remove_factors`], so
//! whatever must die with a factor dies in one place.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::db::{self, audit::AuditCtx, factors::Removal};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, UserId};
use crate::error::ApiError;
use crate::services::devices::{revoke_all_devices, RevokeReason};
use crate::services::{in_admin_action, OnUser};
use crate::state::AppState;

/// Removes factors of a user: the single path every removal takes (`DELETE /v1/me/totp`,
/// `DELETE /v1/me/factors/{id}`, the admin's `…/totp` and `…/factors/{id}`, and a v1
/// replacement at its confirmation). When the user's last active factor goes, their
/// recovery codes go with it and their half-finished sign-ins die; when any active factor
/// goes, every remembered device of the user dies (§12, `device.revoked` with `reason`,
/// in `audit`'s name). Each removed active factor writes its event (`totp.removed` or
/// `webauthn.removed`) unless `why` says the caller writes one for all of them. Returns what
/// went. Whatever else must die with a factor belongs here.
#[tracing::instrument(skip_all)]
pub async fn remove_factors(
    conn: &mut AsyncPgConnection,
    audit: &AuditCtx,
    user_id: &UserId,
    which: Removal,
    why: Why,
    now: DateTime<Utc>,
) -> Result<Vec<(FactorId, FactorStatus, FactorType)>, ApiError> {
    let tenant_id = &audit.tenant_id;
    // The user's row before their factors and logins, the order a sign-in takes them in
    // (`db::logins::by_token`): otherwise a sign-in holding the login and waiting for the
    // factor, and this holding the factor and waiting for the login, deadlock.
    db::users::lock_for_attempt(conn, tenant_id, user_id).await?;
    let gone = db::factors::delete(conn, tenant_id, user_id, which).await?;
    let active_gone = gone.iter().any(|(_, s, _)| *s == FactorStatus::Active);
    if active_gone {
        revoke_all_devices(conn, audit, user_id, why.revoke_reason(), now).await?;
    }
    for (factor_id, _, kind) in gone.iter().filter(|(_, s, _)| *s == FactorStatus::Active) {
        // Each removed WebAuthn factor writes `webauthn.removed` (§21), whoever removed it.
        let event = match (kind, why) {
            (FactorType::Webauthn, _) => AuditType::WebauthnRemoved,
            (FactorType::Totp, Why::ByUser | Why::ByAdmin) => AuditType::TotpRemoved,
            (FactorType::Totp, Why::AdminReset | Why::Replaced) => continue,
        };
        let mut details = serde_json::json!({"factor_id": factor_id});
        if why == Why::ByAdmin && *kind == FactorType::Totp {
            details["by_admin"] = true.into();
        }
        db::audit::insert(conn, audit, event, now, details).await?;
    }
    if active_gone
        && db::factors::active(conn, tenant_id, user_id)
            .await?
            .is_empty()
    {
        db::recovery::delete_all(conn, tenant_id, user_id).await?;
        db::logins::kill_open(conn, tenant_id, user_id, now).await?;
        // An admin removed the user's last factor: their enrollment grace starts afresh (§13).
        if matches!(why, Why::ByAdmin | Why::AdminReset) {
            db::grace::restart(conn, tenant_id, user_id).await?;
        }
    }
    Ok(gone)
}

/// Who removes factors and why: decides the remembered devices' revoke reason, the events
/// written per factor, and whether the user's enrollment grace restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The user, from `/v1/me`.
    ByUser,
    /// An admin, one factor.
    ByAdmin,
    /// An admin, all of them (lost phone); the caller writes `totp.reset_by_admin`.
    AdminReset,
    /// A v1 enrollment replacing the active factors; its `totp.enrolled` says `replaced`.
    Replaced,
}

impl Why {
    fn revoke_reason(self) -> RevokeReason {
        match self {
            Self::ByUser | Self::ByAdmin => RevokeReason::FactorRemoved,
            Self::AdminReset => RevokeReason::FactorReset,
            Self::Replaced => RevokeReason::FactorReplaced,
        }
    }
}

/// The admin's `DELETE …/users/{user_id}/factors/{factor_id}` (authorization and step-up
/// checked by the caller); an admin may remove a user's last factor.
#[tracing::instrument(skip_all, fields(tenant_id = %on.tenant_id, user_id = %on.user_id))]
pub async fn admin_remove(state: &AppState, on: OnUser<'_>, factor: &str) -> Result<(), ApiError> {
    let factor_id = FactorId::parse(factor).ok_or(ApiError::NotFound)?;
    in_admin_action(state, &on, async |conn, audit, now| {
        let one = Removal::One(factor_id);
        let gone = remove_factors(conn, audit, on.user_id, one, Why::ByAdmin, now).await?;
        if gone.is_empty() {
            return Err(ApiError::NotFound);
        }
        Ok(())
    })
    .await
}
