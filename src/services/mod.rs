//! Use cases, one per function: each opens its transaction, calls `domain`, `db` and
//! `crypto`, and writes its audit event inside the same transaction.

pub mod admin;
pub mod assertion;
pub mod attempt;
pub mod audit_trail;
pub mod auth;
pub mod background;
pub mod devices;
pub mod enrollment;
pub mod factors;
pub mod grace;
pub mod housekeeping;
pub mod logins;
pub mod me;
pub mod ops;
pub mod paging;
pub mod policy;
pub mod reauth;
pub mod resync;
pub mod rotation;
pub mod service_keys;
pub mod step_up;
pub mod tenant;
pub mod turns;
pub mod webauthn;
pub mod webhooks;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::crypto::jwt::AccessClaims;
use crate::crypto::keyring::totp_secret_aad;
use crate::db::audit::AuditCtx;
use crate::domain::ids::{FactorId, IdentityProvider, Surface, TenantId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// The caller's address (through trusted proxies) and user agent, for audit events and
/// the per-IP limit. Filled in by the HTTP layer (`http::extract`).
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientMeta {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|i| i.to_string())
    }
}

/// Authentication method references (RFC 8176) by how the sign-in ended.
pub mod amr {
    pub const PASSWORD_ONLY: &[&str] = &["pwd"];
    pub const TOTP: &[&str] = &["pwd", "otp", "mfa"];
    pub const RECOVERY_CODE: &[&str] = &["pwd", "mfa", "rc"];
    /// A remembered browser stood in for the code (§12).
    pub const REMEMBERED: &[&str] = &["pwd", "mfa"];
    /// A WebAuthn credential that is not backup-eligible (a security key), §16.
    pub const HARDWARE_KEY: &[&str] = &["pwd", "hwk", "mfa"];
    /// A synced passkey (backup-eligible).
    pub const SOFTWARE_KEY: &[&str] = &["pwd", "swk", "mfa"];
}

/// The subject of a new access token.
pub struct Subject<'a> {
    pub tenant_id: &'a TenantId,
    pub user_id: &'a UserId,
    pub email: &'a str,
    pub roles: &'a [String],
    pub idp: IdentityProvider,
}

impl<'a> Subject<'a> {
    /// The subject of a token for this user, as their row says.
    pub fn of(
        tenant_id: &'a TenantId,
        user_id: &'a UserId,
        user: &'a crate::db::users::UserRow,
    ) -> Self {
        Subject {
            tenant_id,
            user_id,
            email: &user.email,
            roles: &user.roles,
            idp: user.identity_provider,
        }
    }
}

/// An access token and its lifetime in seconds.
pub struct Minted {
    pub token: String,
    pub expires_in: u32,
}

/// Signs an access token for `who` on `surface`; `auth_time` is when they last proved a
/// factor.
pub fn mint(
    state: &AppState,
    who: &Subject<'_>,
    surface: Surface,
    amr: &[&str],
    auth_time: DateTime<Utc>,
) -> Result<Minted, ApiError> {
    let now = state.now().timestamp();
    let ttl = state.settings.access_token_ttl;
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        aud: state.settings.audience(surface).to_owned(),
        sub: who.user_id.clone(),
        tid: who.tenant_id.clone(),
        email: who.email.to_owned(),
        roles: who.roles.to_vec(),
        idp: who.idp.as_str().to_owned(),
        amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        auth_time: auth_time.timestamp(),
        iat: now,
        exp: now + i64::from(ttl),
        jti: Uuid::new_v4().to_string(),
    };
    let token = state
        .keys
        .signing
        .sign(&claims)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing an access token: {e}")))?;
    Ok(Minted {
        token,
        expires_in: ttl,
    })
}

/// The surface a token was minted for, from its audience.
pub fn surface_of(state: &AppState, claims: &AccessClaims) -> Surface {
    if claims.aud == state.settings.audience_portal {
        Surface::Portal
    } else {
        Surface::App
    }
}

pub fn audit_ctx(
    tenant_id: &TenantId,
    user_id: Option<&UserId>,
    actor_id: Option<&str>,
    surface: Option<Surface>,
    meta: &ClientMeta,
) -> AuditCtx {
    AuditCtx {
        tenant_id: tenant_id.clone(),
        user_id: user_id.cloned(),
        actor_id: actor_id.map(str::to_owned),
        surface,
        ip: meta.ip_string(),
        user_agent: meta.user_agent.clone(),
    }
}

/// The audit context of a signed-in user acting on their own account, on the surface their
/// token was minted for.
pub fn own_audit_ctx(state: &AppState, claims: &AccessClaims, meta: &ClientMeta) -> AuditCtx {
    audit_ctx(
        &claims.tid,
        Some(&claims.sub),
        Some(claims.sub.as_str()),
        Some(surface_of(state, claims)),
        meta,
    )
}

/// An admin action on one of the tenant's users: on whom, who acts (an admin's user id or
/// `service_key:<id>`), from where. The caller has checked that `actor` may.
pub struct OnUser<'a> {
    pub tenant_id: &'a TenantId,
    pub user_id: &'a UserId,
    pub actor: &'a str,
    pub meta: &'a ClientMeta,
}

/// Runs an admin action on a user in one transaction ([`in_transaction`]), with the action's
/// audit context and its time.
#[tracing::instrument(skip_all)]
pub async fn in_admin_action<T>(
    state: &AppState,
    on: &OnUser<'_>,
    work: impl AsyncFnOnce(&mut AsyncPgConnection, &AuditCtx, DateTime<Utc>) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let audit = audit_ctx(
        on.tenant_id,
        Some(on.user_id),
        Some(on.actor),
        None,
        on.meta,
    );
    let now = state.now();
    in_transaction(state, async move |conn| work(conn, &audit, now).await).await
}

/// Runs `work` in one transaction on a pooled connection, as `AsyncConnection::transaction`
/// does (`Ok` commits, `Err` rolls back); one call instead of the pool-then-transaction pair
/// every use case opened with.
#[tracing::instrument(skip_all)]
pub async fn in_transaction<T>(
    state: &AppState,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    let mut pooled = state.pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    AnsiTransactionManager::begin_transaction(conn).await?;
    let result = work(conn).await;
    crate::db::end_transaction(conn, result).await
}

/// Locks the signed-in user's row (the one lock order) in the caller's transaction; a user
/// whose row is gone is no longer signed in (`401`).
#[tracing::instrument(skip_all)]
pub async fn lock_own_row(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> Result<crate::domain::lockout::LockoutState, ApiError> {
    crate::db::users::lock_for_attempt(conn, tenant_id, user_id)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// [`lock_own_row`], then the signed-in user's row itself.
#[tracing::instrument(skip_all)]
pub async fn lock_own_user(
    conn: &mut AsyncPgConnection,
    claims: &AccessClaims,
) -> Result<crate::db::users::UserRow, ApiError> {
    lock_own_row(conn, &claims.tid, &claims.sub).await?;
    crate::db::users::get(conn, &claims.tid, &claims.sub)
        .await?
        .ok_or(ApiError::Unauthenticated)
}

/// Parses a value the database constrains; a mismatch is a bug, not bad input.
pub fn stored<T>(value: Option<T>, what: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unexpected stored {what}")))
}

/// Decrypts a stored TOTP secret.
pub fn open_secret(
    state: &AppState,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    key_id: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let aad = totp_secret_aad(tenant_id.as_str(), user_id.as_str(), factor_id.0);
    state
        .keys
        .keyring
        .open(key_id, nonce, ciphertext, &aad)
        .map(|s| s.expose_secret().clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening a TOTP secret: {e}")))
}

/// Seconds until `until`, at least 1 (for Retry-After).
pub fn secs_until(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((until - now).num_milliseconds().max(0))
        .map(|ms| ms.div_ceil(1000).max(1))
        .unwrap_or(1)
}
