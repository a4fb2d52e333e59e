//! Sign-in (API.md §3): the primary login asks what happens next; the browser then enrolls,
//! verifies or recovers with its mfa token.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::attempt::{self, Proof};
use super::enrollment::{self, EnrollmentMaterial};
use super::step_up::{use_proof, FactorRef};
use super::{amr, audit_ctx, mint, stored_surface, Subject};
use crate::crypto::hashing::HashPurpose;
use crate::crypto::tokens;
use crate::db::{self, logins::LoginCtx};
use crate::domain::audit::AuditType;
use crate::domain::ids::{Email, IdentityProvider, Surface, TenantId, UserId};
use crate::domain::policy::{MfaRequirement, SignInDecision, TenantPolicy};
use crate::error::ApiError;
use crate::http::extract::ClientMeta;
use crate::metrics::Outcome;
use crate::services::auth::ServiceKey;
use crate::services::policy::policy_of;
use crate::state::AppState;

/// `POST /v1/logins`: the primary login has checked the password (or Microsoft sign-in).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"tenant_id": "acme", "user_id": "u-1001", "email": "jane@acme.example",
    "display_name": "Jane Doe", "identity_provider": "local", "roles": ["admin"], "surface": "app"}))]
pub struct StartLogin {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: Email,
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub display_name: Option<String>,
    pub identity_provider: IdentityProvider,
    /// Roles in the primary account system; `admin` may administer the tenant.
    #[serde(default)]
    #[schema(max_items = 32, value_type = Option<Vec<Role>>)]
    pub roles: Option<Vec<String>>,
    pub surface: Surface,
}

// Only documents the items of `roles`; `parse_roles` checks them.
/// A role in the primary account system: 1-64 characters, no whitespace or control characters.
#[derive(ToSchema)]
#[schema(value_type = String, min_length = 1, max_length = 64,
    pattern = r"^[^\s\x00-\x1f\x7f-\x9f]+$", example = "admin")]
pub struct Role(pub String);

/// What the sign-in needs next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LoginStarted {
    /// Signed in: no second factor needed.
    #[schema(example = json!({"status": "authenticated", "login_id": "7f0d3c2e-8a51-4c1b-9a57-5d1f0e6b2a10",
        "mfa": "not_required", "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9...", "token_type": "Bearer", "expires_in": 3600}))]
    Authenticated {
        login_id: Uuid,
        mfa: MfaRequirement,
        access_token: String,
        token_type: TokenType,
        expires_in: u32,
    },
    /// "Setup MFA": the user must enroll an authenticator app.
    EnrollmentRequired {
        login_id: Uuid,
        mfa_token: String,
        expires_at: DateTime<Utc>,
    },
    /// The user must enter a code from their authenticator app.
    VerificationRequired {
        login_id: Uuid,
        mfa_token: String,
        expires_at: DateTime<Utc>,
    },
}

/// Always `Bearer`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// Always `authenticated`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticatedStatus {
    Authenticated,
}

/// The state of a sign-in in progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginView {
    pub login_id: Uuid,
    #[schema(example = "verification_required")]
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub tenant_id: String,
    pub user_id: String,
    pub surface: Surface,
    /// Wrong codes this mfa token may still take.
    pub attempts_left: i32,
}

/// A code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"code": "123456"}))]
pub struct CodeRequest {
    /// Exactly six digits.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"recovery_code": "7kq2m-x9d4t"}))]
pub struct RecoverRequest {
    /// One of the codes shown at enrollment; case, spaces and hyphens do not matter.
    pub recovery_code: String,
}

/// Signed in after a second factor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "authenticated", "access_token": "eyJhbGciOiJFZERTQSJ9...", "token_type": "Bearer", "expires_in": 3600}))]
pub struct Verified {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
}

/// Signed in, with the recovery codes of the new factor (shown this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    #[schema(example = json!(["7kq2m-x9d4t", "3hv8p-c2w6z"]))]
    pub recovery_codes: Vec<String>,
}

/// Signed in with a recovery code, which is now used up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recovered {
    pub status: AuthenticatedStatus,
    pub access_token: String,
    pub token_type: TokenType,
    pub expires_in: u32,
    pub recovery_codes_remaining: i64,
}

fn parse_roles(roles: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let roles = roles.unwrap_or_default();
    if roles.len() > 32 {
        return Err(ApiError::field("roles", "at most 32 roles"));
    }
    for (i, r) in roles.iter().enumerate() {
        if r.is_empty()
            || r.chars().count() > 64
            || r.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ApiError::field(
                &format!("roles[{i}]"),
                "must be 1-64 characters without spaces",
            ));
        }
    }
    Ok(roles)
}

/// `POST /v1/logins`.
pub async fn start(
    state: &AppState,
    key: &ServiceKey,
    req: StartLogin,
    meta: &ClientMeta,
) -> Result<LoginStarted, ApiError> {
    key.require(req.tenant_id.as_str())?;
    let roles = parse_roles(req.roles)?;
    // Postgres text cannot hold NUL; no name needs a control character.
    if req
        .display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200 || d.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "display_name",
            "at most 200 characters, without control characters",
        ));
    }
    let now = state.now();
    let tenant_id = req.tenant_id.as_str();
    let user_id = req.user_id.as_str();
    let ctx = audit_ctx(
        tenant_id,
        Some(user_id),
        Some(user_id),
        Some(req.surface),
        meta,
    );
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
            let tenant = db::tenants::ensure(conn, tenant_id, now).await?;
            let user = db::users::upsert(
                conn,
                &db::users::UserUpsert {
                    tenant_id,
                    user_id,
                    email: req.email.as_str(),
                    display_name: req.display_name.as_deref(),
                    identity_provider: req.identity_provider.as_str(),
                    roles: &roles,
                },
                now,
            )
            .await?;
            let has_factor = db::factors::get(conn, tenant_id, user_id, "active").await?.is_some();
            let policy: TenantPolicy = policy_of(&tenant)?;
            let decision = policy.decide(req.surface, req.identity_provider, has_factor);
            let login_id = Uuid::new_v4();
            let (status, token) = match decision {
                SignInDecision::Authenticated(_) => ("authenticated", None),
                SignInDecision::EnrollmentRequired => ("enrollment_required", Some(tokens::new_mfa_token())),
                SignInDecision::VerificationRequired => ("verification_required", Some(tokens::new_mfa_token())),
            };
            let token_hash = token.as_ref().map(|t| state.keys.hash_key.hash(HashPurpose::MfaToken, t.as_bytes()));
            let expires_at = now + Duration::seconds(i64::from(state.settings.login_ttl));
            let ip = meta.ip_string();
            db::logins::insert(
                conn,
                &db::logins::NewLogin {
                    tenant_id,
                    login_id,
                    user_id,
                    surface: req.surface.as_str(),
                    status,
                    token_hash: token_hash.as_ref().map(|h| &h[..]),
                    expires_at,
                    ip: ip.as_deref(),
                    user_agent: meta.user_agent.as_deref(),
                },
                now,
            )
            .await?;
            let details = serde_json::json!({"login_id": login_id, "status": status, "identity_provider": req.identity_provider});
            db::audit::insert(conn, &ctx, AuditType::LoginStarted, now, details).await?;
            match (decision, token) {
                (SignInDecision::Authenticated(mfa), _) => {
                    db::users::touch_login(conn, tenant_id, user_id, now).await?;
                    let details = serde_json::json!({"login_id": login_id, "mfa": mfa, "method": "password"});
                    db::audit::insert(conn, &ctx, AuditType::LoginSucceeded, now, details).await?;
                    let who = Subject { tenant_id, user_id, email: &user.email, roles: &user.roles, idp: &user.identity_provider };
                    let m = mint(state, &who, req.surface, amr::PASSWORD_ONLY, now)?;
                    Ok(LoginStarted::Authenticated {
                        login_id,
                        mfa,
                        access_token: m.token,
                        token_type: TokenType::Bearer,
                        expires_in: m.expires_in,
                    })
                }
                (SignInDecision::EnrollmentRequired, Some(mfa_token)) => {
                    Ok(LoginStarted::EnrollmentRequired { login_id, mfa_token, expires_at })
                }
                (_, Some(mfa_token)) => Ok(LoginStarted::VerificationRequired { login_id, mfa_token, expires_at }),
                (_, None) => Err(ApiError::Internal(anyhow::anyhow!("challenge without an mfa token"))),
            }
    })
    .await
}

/// Parses the path's login id; anything malformed is simply not found.
pub fn parse_login_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::NotFound)
}

/// The login of this mfa token, if it is alive and the one in the path.
async fn load(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    token: &str,
    login_id: Uuid,
    factor_status: &str,
    lock: bool,
) -> Result<LoginCtx, ApiError> {
    let hash = state
        .keys
        .hash_key
        .hash(HashPurpose::MfaToken, token.as_bytes());
    let ctx = db::logins::by_token(conn, &hash, factor_status, lock)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if ctx.expires_at <= state.now() {
        return Err(ApiError::Unauthenticated);
    }
    if ctx.login_id != login_id {
        return Err(ApiError::NotFound);
    }
    Ok(ctx)
}

fn require_status(ctx: &LoginCtx, status: &str) -> Result<(), ApiError> {
    if ctx.status == status {
        return Ok(());
    }
    Err(ApiError::InvalidState(match status {
        "enrollment_required" => {
            "This sign-in does not need an enrollment: the user already has an authenticator app."
        }
        _ => "This sign-in needs an enrollment first: the user has no authenticator app yet.",
    }))
}

/// `GET /v1/logins/{login_id}`.
pub async fn get(state: &AppState, token: &str, login_id: Uuid) -> Result<LoginView, ApiError> {
    let mut conn = state.pool.get().await?;
    let ctx = load(&mut conn, state, token, login_id, "active", false).await?;
    Ok(LoginView {
        login_id: ctx.login_id,
        status: ctx.status,
        expires_at: ctx.expires_at,
        tenant_id: ctx.tenant_id,
        user_id: ctx.user_id,
        surface: stored_surface(&ctx.surface)?,
        attempts_left: crate::domain::lockout::MAX_FAILURES - ctx.login_failures,
    })
}

fn subject(ctx: &LoginCtx) -> Subject<'_> {
    Subject {
        tenant_id: &ctx.tenant_id,
        user_id: &ctx.user_id,
        email: &ctx.email,
        roles: &ctx.roles,
        idp: &ctx.identity_provider,
    }
}

fn login_audit(ctx: &LoginCtx, meta: &ClientMeta) -> Result<db::audit::AuditCtx, ApiError> {
    let surface = stored_surface(&ctx.surface)?;
    Ok(audit_ctx(
        &ctx.tenant_id,
        Some(&ctx.user_id),
        Some(&ctx.user_id),
        Some(surface),
        meta,
    ))
}

/// `POST /v1/logins/{login_id}/totp-enrollment`.
pub async fn start_enrollment(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    meta: &ClientMeta,
) -> Result<EnrollmentMaterial, ApiError> {
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let ctx = load(conn, state, token, login_id, "active", true).await?;
        require_status(&ctx, "enrollment_required")?;
        if ctx.factor_id.is_some() {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        let audit = login_audit(&ctx, meta)?;
        enrollment::start(
            conn,
            state,
            &audit,
            &ctx.user_id,
            &ctx.email,
            ctx.expires_at,
            now,
        )
        .await
    })
    .await
}

/// `POST /v1/logins/{login_id}/totp-enrollment/confirm`.
pub async fn confirm_enrollment(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Enrolled, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let ctx = load(conn, state, token, login_id, "pending", true).await?;
        require_status(&ctx, "enrollment_required")?;
        attempt::ensure_not_locked(state, ctx.locked_until, now)?;
        // A password alone never adds a device to an account that has one.
        if db::factors::get(conn, &ctx.tenant_id, &ctx.user_id, "active")
            .await?
            .is_some()
        {
            return Err(ApiError::InvalidState(
                "The user already has an authenticator app.",
            ));
        }
        let (Some(factor_id), Some(key_id), Some(nonce), Some(ct)) =
            (ctx.factor_id, &ctx.key_id, &ctx.nonce, &ctx.ciphertext)
        else {
            return Err(ApiError::InvalidState(
                "There is no pending enrollment to confirm: start one first.",
            ));
        };
        if ctx.factor_expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidState(
                "The pending enrollment expired: start a new one.",
            ));
        }
        let audit = login_audit(&ctx, meta)?;
        let secret = super::open_secret(
            state,
            &ctx.tenant_id,
            &ctx.user_id,
            factor_id,
            key_id,
            nonce,
            ct,
        )?;
        let Some(step) = attempt::check_totp(state, &secret, &code, now) else {
            attempt::record_wrong(
                conn,
                state,
                &audit,
                Some(login_id),
                AuditType::TotpVerifyFailed,
                now,
            )
            .await?;
            return Ok(Err(ApiError::InvalidCode));
        };
        let recovery_codes =
            enrollment::activate(conn, state, &audit, &ctx.user_id, factor_id, step, now).await?;
        finish_login(conn, &ctx, &audit, "totp", now).await?;
        let m = mint(
            state,
            &subject(&ctx),
            stored_surface(&ctx.surface)?,
            amr::TOTP,
            now,
        )?;
        Ok(Ok(Enrolled {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            recovery_codes,
        }))
    })
    .await?
}

async fn finish_login(
    conn: &mut AsyncPgConnection,
    ctx: &LoginCtx,
    audit: &db::audit::AuditCtx,
    method: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    db::logins::complete(conn, &ctx.tenant_id, ctx.login_id, now).await?;
    db::users::touch_login(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
    let details = serde_json::json!({"login_id": ctx.login_id, "method": method});
    db::audit::insert(conn, audit, AuditType::LoginSucceeded, now, details).await?;
    Ok(())
}

/// `POST /v1/logins/{login_id}/verify`: the hot path. One transaction: the locking read
/// and one statement that checks-and-sets the replay guard, completes the login, resets the
/// lockout and writes the audit event.
pub async fn verify(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Verified, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_totp("code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let ctx = load(conn, state, token, login_id, "active", true).await?;
        require_status(&ctx, "verification_required")?;
        attempt::ensure_not_locked(state, ctx.locked_until, now)?;
        let (Some(factor_id), Some(key_id), Some(nonce), Some(ct)) =
            (ctx.factor_id, &ctx.key_id, &ctx.nonce, &ctx.ciphertext)
        else {
            return Err(ApiError::InvalidState(
                "The user's authenticator app was removed: sign in again.",
            ));
        };
        let audit = login_audit(&ctx, meta)?;
        let secret = super::open_secret(
            state,
            &ctx.tenant_id,
            &ctx.user_id,
            factor_id,
            key_id,
            nonce,
            ct,
        )?;
        let Some(step) = attempt::check_totp(state, &secret, &code, now) else {
            attempt::record_wrong(
                conn,
                state,
                &audit,
                Some(login_id),
                AuditType::TotpVerifyFailed,
                now,
            )
            .await?;
            return Ok(Err(ApiError::InvalidCode));
        };
        if !db::logins::complete_with_totp(conn, &audit, login_id, factor_id, step, now).await? {
            state.metrics.outcome(Outcome::Reused);
            return Ok(Err(ApiError::CodeReused));
        }
        state.metrics.outcome(Outcome::Success);
        let m = mint(
            state,
            &subject(&ctx),
            stored_surface(&ctx.surface)?,
            amr::TOTP,
            now,
        )?;
        Ok(Ok(Verified {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
        }))
    })
    .await?
}

/// `POST /v1/logins/{login_id}/recover`.
pub async fn recover(
    state: &AppState,
    token: &str,
    login_id: Uuid,
    code: &str,
    meta: &ClientMeta,
) -> Result<Recovered, ApiError> {
    attempt::rate_limit(state, meta)?;
    let code = attempt::parse_recovery("recovery_code", code)?;
    let now = state.now();
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        let ctx = load(conn, state, token, login_id, "active", true).await?;
        require_status(&ctx, "verification_required")?;
        attempt::ensure_not_locked(state, ctx.locked_until, now)?;
        let Some(factor_id) = ctx.factor_id else {
            return Err(ApiError::InvalidState(
                "The user's authenticator app was removed: sign in again.",
            ));
        };
        let audit = login_audit(&ctx, meta)?;
        let factor = FactorRef {
            user_id: &ctx.user_id,
            factor_id,
            sealed: None,
        };
        let used = use_proof(
            conn,
            state,
            &audit,
            Some(login_id),
            &factor,
            &Proof::Recovery(code),
            now,
        )
        .await?;
        if let Err(e) = used {
            return Ok(Err(e));
        }
        db::users::reset_lockout(conn, &ctx.tenant_id, &ctx.user_id, now).await?;
        finish_login(conn, &ctx, &audit, "recovery_code", now).await?;
        let remaining = db::recovery::count_unused(conn, &ctx.tenant_id, factor_id).await?;
        let m = mint(
            state,
            &subject(&ctx),
            stored_surface(&ctx.surface)?,
            amr::RECOVERY_CODE,
            now,
        )?;
        Ok(Ok(Recovered {
            status: AuthenticatedStatus::Authenticated,
            access_token: m.token,
            token_type: TokenType::Bearer,
            expires_in: m.expires_in,
            recovery_codes_remaining: remaining,
        }))
    })
    .await?
}
