//! Clock-drift resynchronisation (docs/API.md §11): two codes of consecutive steps teach a
//! factor its phone's offset. The rule is the attempt gate's (`attempt::check`); this file
//! holds the request and the signed-in user's call (the sign-in's is `logins::resync`).

use serde::Deserialize;
use utoipa::ToSchema;

use super::attempt::{self, Against, Attempt, Proof, Verdict};
use super::factors::FactorView;
use super::{own_audit_ctx, ClientMeta};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::db;
use crate::domain::ids::{FactorId, FactorStatus};
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

/// Two codes shown one after the other by the same authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code1": "123456", "code2": "654321"}))]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// A code, exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code1: String,
    /// The code the app shows next, exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code2: String,
}

impl ResyncRequest {
    /// Both codes (not six digits: `400 invalid_request`, not counted).
    pub fn parse(&self) -> Result<Proof, ApiError> {
        Ok(Proof::Resync(
            attempt::parse_totp("code1", &self.code1)?,
            attempt::parse_totp("code2", &self.code2)?,
        ))
    }
}

/// `POST /v1/me/factors/{factor_id}/resync`: no step-up (the two codes are the proof).
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn for_me(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    req: &ResyncRequest,
    meta: &ClientMeta,
) -> Result<FactorView, ApiError> {
    let proof = attempt::admit(state, meta, || req.parse())?;
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    let audit = own_audit_ctx(state, claims, meta);
    in_transaction(state, async move |conn| {
        let attempt = Attempt::lock_user(conn, state, &audit, user_id).await?;
        let factor_id = FactorId::parse(factor).ok_or(ApiError::NotFound)?;
        let Some(f) = db::factors::by_id(conn, tenant_id, user_id, factor_id).await? else {
            return Err(ApiError::NotFound);
        };
        if f.status != FactorStatus::Active {
            return Err(ApiError::InvalidState(
                "Only an active factor can be resynchronised: confirm it first.",
            ));
        }
        let Some(secret) = f.secret() else {
            return Err(ApiError::InvalidState(
                "A passkey or security key has no clock to resynchronise.",
            ));
        };
        let secrets = [secret];
        let against = Against::Active(&secrets);
        accepted!(attempt.evaluate(conn, state, &proof, against).await?);
        let row = db::factors::by_id(conn, tenant_id, user_id, factor_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Verdict::Accepted(row.into()))
    })
    .await?
    .answer()
}
