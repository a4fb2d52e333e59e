//! `POST /v1/logins`: the primary login has checked the password; this decides what the
//! sign-in needs next and, for a challenge, issues the mfa token.

use chrono::Duration;
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;

use super::types::{LoginStarted, StartLogin, TokenType};
use crate::crypto::hashing::HashPurpose;
use crate::crypto::tokens;
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::ids::{LoginId, LoginStatus};
use crate::domain::policy::{MfaRequirement, SignInDecision, TenantPolicy};
use crate::domain::text::is_hidden;
use crate::error::ApiError;
use crate::services::auth::ServiceKey;
use crate::services::tenant::policy_of;
use crate::services::{amr, audit_ctx, devices, grace, mint, ClientMeta, Subject};
use crate::state::AppState;

fn parse_roles(roles: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let roles = roles.unwrap_or_default();
    if roles.len() > 32 {
        return Err(ApiError::field("roles", "at most 32 roles"));
    }
    for (i, r) in roles.iter().enumerate() {
        if r.is_empty()
            || r.chars().count() > 64
            || r.chars().any(|c| is_hidden(c) || c.is_whitespace())
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
#[tracing::instrument(skip_all)]
pub async fn start(
    state: &AppState,
    key: &ServiceKey,
    req: StartLogin,
    meta: &ClientMeta,
) -> Result<LoginStarted, ApiError> {
    key.require(req.tenant_id.as_str())?;
    let roles = parse_roles(req.roles)?;
    // Postgres text cannot hold NUL; no name needs a control or an invisible format character.
    if req
        .display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200 || d.chars().any(is_hidden))
    {
        return Err(ApiError::field(
            "display_name",
            "at most 200 characters, without control or invisible formatting characters",
        ));
    }
    // Any device token is judged only by lookup (no oracle); one longer than ours ever are
    // is no token at all.
    if req.device_token.as_ref().is_some_and(|t| t.len() > 100) {
        return Err(ApiError::field("device_token", "at most 100 characters"));
    }
    let now = state.now();
    let (tenant_id, user_id) = (&req.tenant_id, &req.user_id);
    let ctx = audit_ctx(
        tenant_id,
        Some(user_id),
        Some(user_id.as_str()),
        Some(req.surface),
        meta,
    );
    let mut pooled = state.pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    // Reads the tenant and the user, writes neither unless new or changed: sign-ins of one
    // tenant share no row, so they never queue on each other. BEGIN goes out with that read.
    let found = db::begin_with(conn, |c| {
        db::users::sign_in_context(c, tenant_id, user_id).boxed()
    })
    .await;
    let result = async {
        let (tenant, stored, factor) = match found? {
            Some(found) => found,
            None => (db::tenants::ensure(conn, tenant_id, now).await?, None, None),
        };
        let user = db::users::sync(
            conn,
            stored,
            &db::users::UserUpsert {
                tenant_id,
                user_id,
                email: req.email.as_str(),
                display_name: req.display_name.as_deref(),
                identity_provider: req.identity_provider,
                roles: &roles,
            },
            now,
        )
        .await?;
        let has_factor = factor.is_some();
        let policy: TenantPolicy = policy_of(&tenant)?;
        let mut decision = policy.decide(req.surface, req.identity_provider, has_factor);
        // A live remembered browser stands in for the code (§12); only looked up when sent.
        let mut remembered = None;
        if let (SignInDecision::VerificationRequired, Some(device_token)) =
            (decision, req.device_token.as_deref())
        {
            let who = (tenant_id, user_id, req.surface);
            let days = policy.remember_device_days;
            remembered = devices::live_device(conn, state, device_token, who, days, now).await?;
            if remembered.is_some() {
                decision = SignInDecision::Authenticated(MfaRequirement::Remembered);
            }
        }
        let grace_ends_at = match decision {
            SignInDecision::EnrollmentRequired => {
                let days = policy.enrollment_grace_days;
                grace::on_enrollment_required(conn, tenant_id, user_id, days, now).await?
            }
            _ => None,
        };
        let login_id = LoginId::new();
        let expires_at = now + Duration::seconds(i64::from(state.settings.login_ttl));
        let key = &state.keys.hash_key;
        let mfa_token = || {
            let owner = key.user_turn(tenant_id.as_str(), user_id.as_str());
            Some(tokens::new_mfa_token(key, &owner, expires_at.timestamp()))
        };
        let (status, token) = match decision {
            SignInDecision::Authenticated(_) => (LoginStatus::Authenticated, None),
            SignInDecision::EnrollmentRequired => (LoginStatus::EnrollmentRequired, mfa_token()),
            SignInDecision::VerificationRequired => {
                (LoginStatus::VerificationRequired, mfa_token())
            }
        };
        let token_hash = token
            .as_ref()
            .map(|t| key.hash(HashPurpose::MfaToken, t.as_bytes()));
        let ip = meta.ip_string();
        let login = db::logins::NewLogin {
            tenant_id,
            login_id,
            user_id,
            surface: req.surface,
            status,
            token_hash: token_hash.as_ref().map(|h| &h[..]),
            created_at: now,
            expires_at,
            completed_at: (status == LoginStatus::Authenticated).then_some(now),
            ip: ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
        };
        let details = serde_json::json!({"login_id": login_id.0, "status": status.as_str(),
            "identity_provider": req.identity_provider});
        // The login and its event in one round trip: neither reads the other.
        db::pipelined(
            db::logins::insert(conn, &login),
            db::audit::insert(conn, &ctx, AuditType::LoginStarted, now, details),
        )
        .await?;
        match (decision, token) {
            (SignInDecision::Authenticated(mfa), _) => {
                db::users::touch_login(conn, tenant_id, user_id, now).await?;
                let mut details = serde_json::json!({"login_id": login_id.0, "mfa": mfa,
                    "method": "password"});
                let (amr, auth_time) = match &remembered {
                    Some(d) => {
                        db::devices::touch(conn, tenant_id, d.device_id, now, ip.as_deref())
                            .await?;
                        details["method"] = "remembered_device".into();
                        details["device_id"] = serde_json::json!(d.device_id);
                        // The code was typed on this device then: step-up judges by that.
                        (amr::REMEMBERED, d.auth_time)
                    }
                    None => (amr::PASSWORD_ONLY, now),
                };
                db::audit::insert(conn, &ctx, AuditType::LoginSucceeded, now, details).await?;
                let who = Subject::of(tenant_id, user_id, &user);
                let m = mint(state, &who, req.surface, amr, auth_time)?;
                Ok(LoginStarted::Authenticated {
                    login_id: login_id.0,
                    mfa,
                    access_token: m.token,
                    token_type: TokenType::Bearer,
                    expires_in: m.expires_in,
                })
            }
            (SignInDecision::EnrollmentRequired, Some(mfa_token)) => {
                Ok(LoginStarted::EnrollmentRequired {
                    login_id: login_id.0,
                    mfa_token,
                    expires_at,
                    grace_ends_at,
                })
            }
            (_, Some(mfa_token)) => Ok(LoginStarted::VerificationRequired {
                login_id: login_id.0,
                mfa_token,
                expires_at,
                factor_types: crate::services::webauthn::factor_types(
                    conn,
                    state,
                    tenant_id,
                    user_id,
                    req.surface,
                )
                .await?,
            }),
            (_, None) => Err(ApiError::Internal(anyhow::anyhow!(
                "challenge without an mfa token"
            ))),
        }
    }
    .await;
    db::end_transaction(conn, result).await
}
