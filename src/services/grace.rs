//! Enrollment grace and the tenant's 2FA summary (docs/API.md §13). A user's grace starts at
//! their first `enrollment_required` and ends `enrollment_grace_days` later under the policy
//! in force when it is asked about (so lowering the days ends it at once).

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::policy::{Days, TenantPolicy};
use crate::error::ApiError;
use crate::services::devices::created_after;
use crate::services::tenant::policy_of;
use crate::state::AppState;

/// When a grace that started at `started` ends under `days`.
pub fn ends_at(started: DateTime<Utc>, days: Days) -> DateTime<Utc> {
    started + Duration::days(i64::from(days.get()))
}

/// The end of a grace that is still running at `now`.
pub fn running(
    started: Option<DateTime<Utc>>,
    days: Days,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    started.map(|s| ends_at(s, days)).filter(|e| now < *e)
}

/// A sign-in answered `enrollment_required`: starts the user's grace if it has not started
/// (the user row is written only then) and returns its end while it runs.
#[tracing::instrument(skip_all)]
pub async fn on_enrollment_required(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    days: Days,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let started = db::grace::start(conn, tenant_id, user_id, now).await?;
    Ok(running(Some(started), days, now))
}

/// The exempt providers of a policy as stored text, and whether it requires a factor of
/// the others at all (enforced on some surface).
pub fn requirement(p: &TenantPolicy) -> (Vec<String>, bool) {
    let exempt = p
        .exempt_identity_providers
        .iter()
        .map(|i| i.as_str().to_owned())
        .collect();
    (exempt, p.enforce_mfa && !p.surfaces.is_empty())
}

/// "How far is my tenant with 2FA?"
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"users": 400, "enrolled": 310, "not_enrolled": 90, "exempt": 40,
    "in_grace": 35, "overdue": 10, "locked": 1, "remembered_devices": 120}))]
pub struct MfaSummary {
    /// `enrolled + not_enrolled`.
    pub users: i64,
    /// Users with at least one active factor (the users listing with `mfa=enrolled`).
    pub enrolled: i64,
    /// Users without an active factor (`mfa=not_enrolled`).
    pub not_enrolled: i64,
    /// Of `not_enrolled`, those whose identity provider the policy exempts.
    pub exempt: i64,
    /// Required to enroll, grace running (`mfa=in_grace`).
    pub in_grace: i64,
    /// Required to enroll, asked to and grace over (`mfa=overdue`).
    pub overdue: i64,
    /// Users whose lockout runs now.
    pub locked: i64,
    /// Live remembered devices in the tenant.
    pub remembered_devices: i64,
}

/// `GET /v1/tenants/{tenant_id}/mfa-summary` (authorization is the caller's): one
/// aggregate statement after the tenant's policy.
#[tracing::instrument(skip_all)]
pub async fn summary(state: &AppState, tenant_id: &TenantId) -> Result<MfaSummary, ApiError> {
    let now = state.now();
    let mut conn = state.pool.get().await?;
    let tenant = db::tenants::get(&mut conn, tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let policy = policy_of(&tenant)?;
    let (exempt, required) = requirement(&policy);
    let params = db::grace::SummaryParams {
        exempt: &exempt,
        required,
        grace_cutoff: now - Duration::days(i64::from(policy.enrollment_grace_days.get())),
        // With the days at 0 no device is live: a cut-off at `now` matches none.
        device_cutoff: created_after(policy.remember_device_days, now).unwrap_or(now),
        now,
    };
    let r = db::grace::summary(&mut conn, tenant_id, &params).await?;
    Ok(MfaSummary {
        users: r.users,
        enrolled: r.enrolled,
        not_enrolled: r.users - r.enrolled,
        exempt: r.exempt,
        in_grace: r.in_grace,
        overdue: r.overdue,
        locked: r.locked,
        remembered_devices: r.remembered_devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn grace_runs_until_its_days_are_over() {
        let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let seven = Days::parse(7).unwrap();
        assert_eq!(running(Some(t0), seven, t0), Some(ends_at(t0, seven)));
        let day8 = t0 + Duration::days(8);
        assert_eq!(running(Some(t0), seven, day8), None);
        assert_eq!(running(Some(t0), Days::default(), t0), None);
        assert_eq!(running(None, seven, t0), None);
        let exactly = ends_at(t0, seven);
        assert_eq!(running(Some(t0), seven, exactly), None);
    }
}
