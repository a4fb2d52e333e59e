//! Whose turn a request takes (`rate_limit::UserGate`): the user named by the request,
//! resolved the cheapest way its route allows. A request that names nobody, or whose
//! credential does not check out (a service key of another tenant, an access token that does
//! not verify, an mfa token the service did not issue or that expired), takes no turn: its
//! handler refuses it before it touches a row.

use crate::crypto::tokens;
use crate::error::ApiError;
use crate::rate_limit::{GateKey, Whose};
use crate::services::auth::{self, ServiceKey};
use crate::state::AppState;

/// A request's turn key, and the service key it was checked with (the handler takes it
/// from there instead of looking it up again).
#[derive(Default)]
pub struct Resolved {
    pub key: Option<GateKey>,
    pub service_key: Option<ServiceKey>,
}

/// Resolves `whose`. A user named in the path or a start's body counts only for a service
/// key that covers the tenant or an access token of that tenant; an mfa token names its
/// user's turn key itself, under a keyed tag and an expiry (`tokens::mfa_token_owner`; its
/// sign-in is looked up under the turn), so the only read here is a service key's. Errors are the database's (`503`).
#[tracing::instrument(skip_all)]
pub async fn key(state: &AppState, whose: Whose) -> Result<Resolved, ApiError> {
    let hash_key = &state.keys.hash_key;
    let user = |t: &str, u: &str| GateKey::user(hash_key.user_turn(t, u));
    Ok(match whose {
        Whose::Named {
            tenant_id,
            user_id,
            credential: Some(cred),
        } if cred.starts_with("sk_") => match auth::service_key(state, &cred).await {
            Ok(k) => Resolved {
                key: k.covers(&tenant_id).then(|| user(&tenant_id, &user_id)),
                service_key: Some(k),
            },
            Err(ApiError::Unauthenticated) => Resolved::default(),
            Err(e) => return Err(e),
        },
        Whose::Named {
            tenant_id,
            user_id,
            credential: Some(cred),
        } => Resolved {
            key: auth::access_token(state, &cred)
                .ok()
                .filter(|c| c.tid.as_str() == tenant_id)
                .map(|_| user(&tenant_id, &user_id)),
            service_key: None,
        },
        Whose::Named { .. } => Resolved::default(),
        Whose::AccessToken(token) => Resolved {
            key: auth::access_token(state, &token)
                .ok()
                .map(|c| user(c.tid.as_str(), c.sub.as_str())),
            service_key: None,
        },
        Whose::MfaToken(token) => Resolved {
            key: tokens::mfa_token_owner(hash_key, &token, state.now().timestamp())
                .map(GateKey::user),
            service_key: None,
        },
    })
}
