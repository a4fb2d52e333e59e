//! Tenant administration (docs/API.md §5) beyond the policy: who has 2FA, lost phones,
//! lockouts, offboarding and the audit trail. Authorization is checked by the caller.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use super::audit_trail::{list_events, AuditEvent, AuditPage, AuditQuery};
use super::paging::{bad_cursor, cut_page, decode_cursor, encode_cursor, page_args};
use crate::db::factors::Removal;
use crate::db::{self, audit::AuditCtx, users::GraceFilter};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorStatus, IdentityProvider, TenantId, UserId};
use crate::domain::policy::TenantPolicy;
use crate::error::ApiError;
use crate::services::devices::{self, RevokeReason};
use crate::services::factors::removal::{remove_factors, Why};
use crate::services::grace;
use crate::services::tenant::policy_of;
use crate::services::{in_admin_action, OnUser};
use crate::state::AppState;

/// The users listing's cursor: the last user id of the page, which must parse as one (so a
/// crafted cursor is a 400, never a value the database cannot hold).
fn decode_user_cursor(c: &str) -> Result<UserId, ApiError> {
    UserId::parse(&decode_cursor(c)?).map_err(|_| bad_cursor())
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentFilter {
    Enrolled,
    NotEnrolled,
    InGrace,
    Overdue,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// `enrolled`: users with an active factor; `not_enrolled`: who still has to set up 2FA;
    /// `in_grace`: required to enroll, postponing inside their grace (§13); `overdue`:
    /// required to enroll, asked to, and their grace is over (or there is none).
    #[param(inline)]
    pub mfa: Option<EnrollmentFilter>,
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserSummary {
    pub user_id: UserId,
    pub email: String,
    pub identity_provider: IdentityProvider,
    pub mfa_enrolled: bool,
    /// How many active authenticator apps the user has (§10).
    pub mfa_factors: i64,
    /// When the user's first active factor was confirmed.
    #[schema(required = true)]
    pub enrolled_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Set while the user's second factor is locked, else `null`.
    #[schema(required = true)]
    pub locked_until: Option<DateTime<Utc>>,
    /// When the user's enrollment grace ends, while it runs (§13); else `null`.
    #[schema(required = true)]
    pub grace_ends_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserSummary>,
    /// Absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// `GET /v1/tenants/{tenant_id}/users`, ordered by user id (stable under inserts).
#[tracing::instrument(skip_all)]
pub async fn list_users(
    state: &AppState,
    tenant_id: &TenantId,
    q: UserListQuery,
) -> Result<UserPage, ApiError> {
    let (limit, after) = page_args(q.limit, q.cursor.as_deref(), decode_user_cursor)?;
    let enrolled = match q.mfa {
        Some(EnrollmentFilter::Enrolled) => Some(true),
        Some(EnrollmentFilter::NotEnrolled) => Some(false),
        _ => None,
    };
    let now = state.now();
    let mut conn = state.pool.get().await?;
    let policy = match db::tenants::get(&mut conn, tenant_id).await? {
        Some(t) => policy_of(&t)?,
        None => TenantPolicy::default(),
    };
    let (exempt, required) = grace::requirement(&policy);
    let grace_days = policy.enrollment_grace_days;
    let cutoff = now - Duration::days(i64::from(grace_days.get()));
    let grace_filter = match q.mfa {
        Some(EnrollmentFilter::InGrace) => Some(GraceFilter::InGrace {
            exempt: &exempt,
            cutoff,
        }),
        Some(EnrollmentFilter::Overdue) => Some(GraceFilter::Overdue {
            exempt: &exempt,
            cutoff,
        }),
        _ => None,
    };
    // Nobody is in grace or overdue under a policy that requires no factor.
    if grace_filter.is_some() && !required {
        return Ok(UserPage {
            items: vec![],
            next_cursor: None,
        });
    }
    // One row more than asked tells whether there is a next page.
    let rows = conn
        .transaction::<_, ApiError, _>(async |conn| {
            db::prefer_ordered_scans(conn).await?;
            let after = after.as_ref();
            Ok(db::users::list(conn, tenant_id, enrolled, grace_filter, after, limit + 1).await?)
        })
        .await?;
    let (rows, next_cursor) = cut_page(rows, limit, |r| encode_cursor(r.user_id.as_str()));
    let items = rows
        .into_iter()
        .map(|r| UserSummary {
            grace_ends_at: (r.enrolled_at.is_none()
                && required
                && !exempt.iter().any(|e| e == r.identity_provider.as_str()))
            .then(|| grace::running(r.grace_started_at, grace_days, now))
            .flatten(),
            identity_provider: r.identity_provider,
            mfa_enrolled: r.factors > 0,
            mfa_factors: r.factors,
            enrolled_at: r.enrolled_at,
            last_login_at: r.last_login_at,
            locked_until: r.locked_until.filter(|u| *u > now),
            user_id: r.user_id,
            email: r.email,
        })
        .collect();
    Ok(UserPage { items, next_cursor })
}

/// `DELETE /v1/tenants/{tenant_id}/users/{user_id}/totp`: lost phone. All the user's
/// factors and recovery codes go, half-finished sign-ins die; the user enrolls again next
/// time.
#[tracing::instrument(skip_all, fields(tenant_id = %on.tenant_id, user_id = %on.user_id))]
pub async fn reset_factor(state: &AppState, on: OnUser<'_>) -> Result<(), ApiError> {
    let (tenant_id, user_id) = (on.tenant_id, on.user_id);
    let kind = AuditType::TotpResetByAdmin;
    in_audited_admin_action(state, &on, kind, async |conn, audit, now| {
        let (all, why) = (Removal::All, Why::AdminReset);
        let gone = remove_factors(conn, audit, user_id, all, why, now).await?;
        let removed: Vec<_> = gone
            .iter()
            .filter(|(_, s, _)| *s == FactorStatus::Active)
            .map(|(id, _, _)| *id)
            .collect();
        if removed.is_empty() {
            return Err(ApiError::NotFound);
        }
        db::users::reset_lockout(conn, tenant_id, user_id, now, false).await?;
        Ok(serde_json::json!({"factor_ids": removed}))
    })
    .await
}

/// `POST /v1/tenants/{tenant_id}/users/{user_id}/unlock`: ends a lockout (idempotent).
#[tracing::instrument(skip_all, fields(tenant_id = %on.tenant_id, user_id = %on.user_id))]
pub async fn unlock(state: &AppState, on: OnUser<'_>) -> Result<(), ApiError> {
    in_audited_admin_action(state, &on, AuditType::UserUnlocked, async |conn, _, now| {
        let was_locked = db::users::reset_lockout(conn, on.tenant_id, on.user_id, now, false)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(serde_json::json!({"was_locked": was_locked}))
    })
    .await
}

/// `DELETE /v1/tenants/{tenant_id}/users/{user_id}`: offboarding. The user's factor,
/// recovery codes and logins are erased; the audit trail stays.
#[tracing::instrument(skip_all, fields(tenant_id = %on.tenant_id, user_id = %on.user_id))]
pub async fn delete_user(state: &AppState, on: OnUser<'_>) -> Result<(), ApiError> {
    let (tenant_id, user_id, kind) = (on.tenant_id, on.user_id, AuditType::UserDeleted);
    in_audited_admin_action(state, &on, kind, async |conn, audit, now| {
        // The user's row first (the one lock order), and against a sign-in's foreign-key
        // lock too, which the DELETE would otherwise wait for while holding the devices.
        if !db::users::lock_to_delete(conn, tenant_id, user_id).await? {
            return Err(ApiError::NotFound);
        }
        // The rows go with the user (cascade); the trail says which browsers lost trust.
        devices::revoke_all_devices(conn, audit, user_id, RevokeReason::UserDeleted, now).await?;
        if !db::users::delete(conn, tenant_id, user_id).await? {
            return Err(ApiError::NotFound);
        }
        Ok(serde_json::json!({}))
    })
    .await
}

/// An admin action on one user that one audit event of `kind` records: `work` does it and
/// returns the event's details, written last in the same transaction.
async fn in_audited_admin_action(
    state: &AppState,
    on: &OnUser<'_>,
    kind: AuditType,
    work: impl AsyncFnOnce(
        &mut AsyncPgConnection,
        &AuditCtx,
        DateTime<Utc>,
    ) -> Result<serde_json::Value, ApiError>,
) -> Result<(), ApiError> {
    in_admin_action(state, on, async |conn, audit, now| {
        let details = work(conn, audit, now).await?;
        db::audit::insert(conn, audit, kind, now, details).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_cursors() {
        // Base64 of a NUL byte, of "a\0", of "\0\x01": not user ids, so 400 (never a 500).
        for crafted in ["AA", "YQA", "AAE"] {
            assert!(decode_user_cursor(crafted).is_err(), "{crafted}");
        }
        assert_eq!(
            decode_user_cursor(&encode_cursor("u-1")).unwrap().as_str(),
            "u-1"
        );
    }
}
