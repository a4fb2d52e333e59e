//! `POST /v1/logins`: the primary login has checked the password; this decides what the
//! sign-in needs next and, for a challenge, issues the mfa token.

use chrono::Duration;
use diesel_async::AsyncConnection;
use uuid::Uuid;

use super::types::{LoginStarted, StartLogin, TokenType};
use crate::crypto::hashing::HashPurpose;
use crate::crypto::tokens;
use crate::db;
use crate::domain::audit::AuditType;
use crate::domain::policy::{SignInDecision, TenantPolicy};
use crate::domain::text::is_hidden;
use crate::error::ApiError;
use crate::http::extract::ClientMeta;
use crate::services::auth::ServiceKey;
use crate::services::policy::policy_of;
use crate::services::{amr, audit_ctx, mint, Subject};
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
