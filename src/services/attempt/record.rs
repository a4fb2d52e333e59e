//! What a refused proof leaves behind, committed although the request fails: a wrong one
//! counts towards the lockout (and the sign-in's five attempts); a reused code is only
//! recorded.

use diesel_async::AsyncPgConnection;

use super::types::Attempt;
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::ids::FactorId;
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::services::devices::{self, RevokeReason};
use crate::state::AppState;

/// A code of a step already used (§6): `totp.code_reused` naming the factor; not counted.
#[tracing::instrument(skip_all)]
pub(super) async fn reused(
    conn: &mut AsyncPgConnection,
    attempt: &Attempt<'_>,
    factor_id: FactorId,
) -> Result<(), ApiError> {
    let mut details = serde_json::json!({"factor_id": factor_id});
    if let Some(id) = attempt.login_id() {
        details["login_id"] = serde_json::json!(id.0);
    }
    let kind = AuditType::TotpCodeReused;
    db::audit::insert(conn, attempt.audit, kind, attempt.now, details).await?;
    Ok(())
}

/// A wrong proof: the user's lockout counters (`domain::lockout`, applied to the state read
/// under the row lock), the sign-in's attempts (if any), the failure event and, when this
/// failure locks the user, `user.locked` with every remembered browser revoked (§12).
#[tracing::instrument(skip_all)]
pub(super) async fn wrong(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    kind: AuditType,
) -> Result<(), ApiError> {
    let (ctx, user_id, now) = (attempt.audit, attempt.user_id, attempt.now);
    let (next, just_locked) = attempt.lockout.after_failure(now);
    db::users::store_lockout(conn, &ctx.tenant_id, user_id, &next).await?;
    let mut details = serde_json::json!({});
    if let Some((id, failures)) = attempt.login {
        let left = db::logins::record_failure(conn, &ctx.tenant_id, id, failures, now).await?;
        details = serde_json::json!({"login_id": id.0, "attempts_left": left});
    }
    db::audit::insert(conn, ctx, kind, now, details).await?;
    if just_locked {
        devices::revoke_all_devices(conn, ctx, user_id, RevokeReason::Locked, now).await?;
        let details = serde_json::json!({"locked_until": next.locked_until});
        db::audit::insert(conn, ctx, AuditType::UserLocked, now, details).await?;
        state.metrics.lockout();
    }
    state.metrics.outcome(Outcome::Invalid);
    Ok(())
}
