//! The one path by which factors are removed (docs/API.md §10): the user's own removals, an
//! admin's, and a v1 replacement at its confirmation all call [`remove_factors`], so
//! whatever must die with a factor dies in one place.

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::db::{self, audit::AuditCtx, factors::Removal};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, TenantId, UserId};
use crate::error::ApiError;
use crate::services::devices::{revoke_all_devices, RevokeReason};
use crate::services::{audit_ctx, ClientMeta};
use crate::state::AppState;

/// Removes factors of a user: the single path every removal takes (`DELETE /v1/me/totp`,
/// `DELETE /v1/me/factors/{id}`, the admin's `…/totp` and `…/factors/{id}`, and a v1
/// replacement at its confirmation). When the user's last active factor goes, their
/// recovery codes go with it and their half-finished sign-ins die; when any active factor
/// goes, every remembered device of the user dies (§12, `device.revoked` with `reason`,
/// in `audit`'s name). Returns what went. Whatever else must die with a factor belongs here.
#[tracing::instrument(skip_all)]
pub async fn remove_factors(
    conn: &mut AsyncPgConnection,
    audit: &AuditCtx,
    user_id: &UserId,
    which: Removal,
    reason: RevokeReason,
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
        revoke_all_devices(conn, audit, user_id, reason, now).await?;
    }
    // Each removed WebAuthn factor writes `webauthn.removed` (§21), whoever removed it.
    for (factor_id, _, _) in gone
        .iter()
        .filter(|(_, s, t)| *s == FactorStatus::Active && *t == FactorType::Webauthn)
    {
        let details = serde_json::json!({"factor_id": factor_id});
        db::audit::insert(conn, audit, AuditType::WebauthnRemoved, now, details).await?;
    }
    if active_gone
        && db::factors::active(conn, tenant_id, user_id)
            .await?
            .is_empty()
    {
        db::recovery::delete_all(conn, tenant_id, user_id).await?;
        db::logins::kill_open(conn, tenant_id, user_id, now).await?;
    }
    Ok(gone)
}

/// The admin's `DELETE …/users/{user_id}/factors/{factor_id}` (authorization and step-up
/// checked by the caller); an admin may remove a user's last factor.
#[tracing::instrument(skip_all)]
pub async fn admin_remove(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor: &str,
    actor: &str,
    meta: &ClientMeta,
) -> Result<(), ApiError> {
    let factor_id = FactorId::parse(factor).ok_or(ApiError::NotFound)?;
    let now = state.now();
    let audit = audit_ctx(tenant_id, Some(user_id), Some(actor), None, meta);
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let gone = remove_factors(
            conn,
            &audit,
            user_id,
            Removal::One(factor_id),
            RevokeReason::FactorRemoved,
            now,
        )
        .await?;
        let Some((_, status, kind)) = gone.first() else {
            return Err(ApiError::NotFound);
        };
        if *status == FactorStatus::Active {
            // An admin removed the user's last factor: their enrollment grace starts afresh
            // (§13), as after a reset of all of them.
            if db::factors::active(conn, tenant_id, user_id)
                .await?
                .is_empty()
            {
                db::grace::restart(conn, tenant_id, user_id).await?;
            }
        }
        if *status == FactorStatus::Active && *kind == FactorType::Totp {
            db::audit::insert(
                conn,
                &audit,
                AuditType::TotpRemoved,
                now,
                serde_json::json!({"factor_id": factor_id, "by_admin": true}),
            )
            .await?;
        }
        Ok(())
    })
    .await
}
