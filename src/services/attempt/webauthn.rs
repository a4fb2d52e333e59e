//! Step 6 for WebAuthn (docs/API.md §16, §21): a registration response or an assertion
//! checked against the user's live challenge, which is taken (deleted) first, whatever comes
//! of the check — so one response succeeds at most once, on every instance. The user's row
//! lock (held since step 3) orders this with every other attempt of the user. The counter and
//! the backup flags are checked against the credential as stored now, not the copy a state
//! took at the challenge, and written here when the assertion is accepted.

use diesel::result::{DatabaseErrorKind, Error::DatabaseError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use webauthn_rs_core::proto::UserVerificationPolicy;

use super::types::{Accepted, Attempt, Found, Method};
use crate::crypto::webauthn::{
    short_id, transports_from_text, transports_text, Credential, PublicKeyCredential, Refusal,
    RegisterPublicKeyCredential, RelyingParty,
};
use crate::db::{self, webauthn::Purpose};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, UserVerification};
use crate::error::ApiError;
use crate::services::tenant::policy_of;
use crate::state::AppState;

const WRONG: Found = Found::Wrong(AuditType::WebauthnVerifyFailed);

/// The surface's relying party and the tenant's user-verification policy now (§21: the
/// policy in force when the response arrives).
async fn context<'s>(
    conn: &mut AsyncPgConnection,
    state: &'s AppState,
    attempt: &Attempt<'_>,
) -> Result<(Option<&'s RelyingParty>, UserVerification), ApiError> {
    let tenant_id = &attempt.audit.tenant_id;
    let tenant = db::tenants::get(conn, tenant_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let uv = policy_of(&tenant)?.webauthn_user_verification;
    let rp = attempt.audit.surface.and_then(|s| state.webauthn.get(s));
    Ok((rp, uv))
}

/// A registration response for the pending WebAuthn factor `factor_id`.
#[tracing::instrument(skip_all)]
pub(super) async fn registration(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    response: &RegisterPublicKeyCredential,
    factor_id: FactorId,
) -> Result<Found, ApiError> {
    let (tenant_id, user_id) = (&attempt.audit.tenant_id, attempt.user_id);
    let challenge = db::webauthn::take_challenge(conn, tenant_id, user_id, Purpose::Registration)
        .await?
        .filter(|c| c.factor_id == Some(factor_id) && c.expires_at > attempt.now);
    let (rp, uv) = context(conn, state, attempt).await?;
    let (Some(challenge), Some(rp)) = (challenge, rp) else {
        return Ok(WRONG);
    };
    if rp.rp_id() != challenge.rp_id {
        return Ok(WRONG);
    }
    let Ok(credential) = rp.finish_registration(response, &challenge.state)? else {
        return Ok(WRONG);
    };
    if uv == UserVerification::Required && !credential.user_verified {
        return Ok(WRONG);
    }
    let transports = transports_text(&credential.transports);
    let stored = serde_json::to_value(&credential)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serialising a credential: {e}")))?;
    let registered = db::webauthn::Registered {
        credential_id: &credential.cred_id,
        credential: stored,
        counter: i64::from(credential.counter),
        backup_eligible: credential.backup_eligible,
        backed_up: credential.backup_state,
        transports: &transports,
        user_verified: credential.user_verified,
    };
    // A credential id registered under this RP ID by anyone, in any tenant (§21), committed
    // or not yet: the unique index refuses the write, once the other transaction has ended.
    // In a savepoint, so the refusal is still counted and committed.
    let written = conn
        .transaction(async |c| db::webauthn::register(c, tenant_id, factor_id, registered).await)
        .await;
    match written {
        Ok(true) => {}
        Ok(false) | Err(DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => return Ok(WRONG),
        Err(e) => return Err(e.into()),
    }
    Ok(Found::Accepted(Accepted {
        factor_id: Some(factor_id),
        step: 0,
        drift: 0,
        method: Method::Webauthn {
            synced: credential.backup_eligible,
        },
        recovery_codes_remaining: None,
    }))
}

/// An assertion answering the user's live challenge of `purpose`.
#[tracing::instrument(skip_all)]
pub(super) async fn assertion(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    response: &PublicKeyCredential,
    purpose: Purpose,
) -> Result<Found, ApiError> {
    let (tenant_id, user_id) = (&attempt.audit.tenant_id, attempt.user_id);
    let challenge = db::webauthn::take_challenge(conn, tenant_id, user_id, purpose)
        .await?
        .filter(|c| c.expires_at > attempt.now && c.login_id == attempt.login_id());
    let (rp, uv) = context(conn, state, attempt).await?;
    let (Some(challenge), Some(rp)) = (challenge, rp) else {
        return Ok(WRONG);
    };
    if rp.rp_id() != challenge.rp_id {
        return Ok(WRONG);
    }
    // The user's active WebAuthn factor of this RP ID with the response's credential id:
    // an unknown, removed or other user's credential finds none.
    let active = db::factors::active(conn, tenant_id, user_id).await?;
    let credentials = db::webauthn::of_user(conn, tenant_id, user_id).await?;
    let found = credentials.into_iter().find(|c| {
        c.rp_id == rp.rp_id()
            && c.credential_id.as_deref() == Some(response.raw_id.as_slice())
            && active.iter().any(|f| {
                f.factor_id == c.factor_id
                    && f.factor_type == FactorType::Webauthn
                    && f.status == FactorStatus::Active
            })
    });
    let Some(row) = found else {
        return Ok(WRONG);
    };
    let Some(stored) = row.credential.clone() else {
        return Ok(WRONG);
    };
    let mut credential: Credential = serde_json::from_value(stored)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored credential: {e}")))?;
    // As stored now: the counter and flags of the last accepted assertion; "must keep doing
    // UV" comes from `user_verified`, the rest of the policy is the tenant's (below).
    credential.counter = u32::try_from(row.counter).unwrap_or(u32::MAX);
    credential.backup_eligible = row.backup_eligible;
    credential.backup_state = row.backed_up;
    credential.user_verified = row.user_verified;
    credential.transports = transports_from_text(&row.transports);
    credential.registration_policy = UserVerificationPolicy::Preferred;
    let result = match rp.finish_authentication(response, &challenge.state, &credential)? {
        Ok(r) => r,
        Err(Refusal::CounterRegressed) => {
            let details = serde_json::json!({
                "factor_id": row.factor_id,
                "credential": short_id(&credential.cred_id),
                "stored_counter": row.counter,
            });
            let kind = AuditType::WebauthnCounterRegressed;
            db::audit::insert(conn, attempt.audit, kind, attempt.now, details).await?;
            return Ok(WRONG);
        }
        Err(Refusal::Invalid) => return Ok(WRONG),
    };
    if uv == UserVerification::Required && !result.user_verified() {
        return Ok(WRONG);
    }
    let counter = i64::from(result.counter());
    db::webauthn::record_use(
        conn,
        tenant_id,
        row.factor_id,
        counter,
        result.backup_state(),
    )
    .await?;
    db::factors::mark_used(conn, tenant_id, user_id, row.factor_id, attempt.now).await?;
    Ok(Found::Accepted(Accepted {
        factor_id: Some(row.factor_id),
        step: 0,
        drift: 0,
        method: Method::Webauthn {
            synced: row.backup_eligible,
        },
        recovery_codes_remaining: None,
    }))
}
