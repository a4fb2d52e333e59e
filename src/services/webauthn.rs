//! Registering a passkey or security key (docs/API.md §16, §21): the start checks in §21's
//! order, the pending WebAuthn factor with its creation options and challenge, and the
//! signed-in user's `POST /v1/me/factors {type: "webauthn"}` and its confirm. The response is
//! checked by the attempt gate (`attempt::webauthn`); sign-in's calls are `logins::webauthn`.

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::attempt::{self, Against, Attempt, Proof, Verdict};
use super::enrollment::own::{self, Confirmed};
use super::enrollment::{self, Activation};
use super::tenant::{allow_new, policy_of};
use super::{lock_own_user, own_audit_ctx, step_up, surface_of, ClientMeta};
use crate::accepted;
use crate::crypto::jwt::AccessClaims;
use crate::crypto::webauthn::{self as wa, RelyingParty, CHALLENGE_SECONDS};
use crate::db::{self, audit::AuditCtx, users::UserRow, webauthn::Purpose};
use crate::domain::audit::AuditType;
use crate::domain::factor::{self, FactorName};
use crate::domain::ids::{FactorId, FactorType, LoginId, Surface, UserVerification};
use crate::domain::policy::TenantPolicy;
use crate::error::ApiError;
use crate::services::in_transaction;
use crate::state::AppState;

/// A pending WebAuthn factor and the creation options to pass to
/// `PublicKeyCredential.parseCreationOptionsFromJSON()`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"factor_id": "0b7f3c7e-8a4b-4c1e-9d55-3f1f0b2f9a10", "type": "webauthn",
    "name": "Passkey", "expires_at": "2026-11-28T10:05:00Z", "public_key": {
    "rp": {"id": "mspbots.ai", "name": "MSPbots"},
    "user": {"id": "3q2-7wAAAAAAAAAAAAAAAA", "name": "jane@acme.example", "displayName": "Jane"},
    "challenge": "…", "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    "timeout": 300000, "excludeCredentials": [], "attestation": "none",
    "authenticatorSelection": {"residentKey": "discouraged", "requireResidentKey": false,
    "userVerification": "preferred"}}}))]
pub struct WebauthnEnrollment {
    pub factor_id: FactorId,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "webauthn")]
    pub kind: FactorType,
    pub name: FactorName,
    /// `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub public_key: serde_json::Value,
    /// The challenge, and the pending factor, end at this time.
    pub expires_at: DateTime<Utc>,
}

/// §21's start checks 3 and 4: the tenant allows WebAuthn, and the surface has an RP ID.
pub fn preflight<'s>(
    state: &'s AppState,
    policy: &TenantPolicy,
    surface: Surface,
) -> Result<&'s RelyingParty, ApiError> {
    allow_new(policy, FactorType::Webauthn)?;
    state
        .webauthn
        .get(surface)
        .ok_or(ApiError::WebauthnUnavailable)
}

/// What a new WebAuthn enrollment needs besides the connection.
pub struct Start<'a> {
    pub user: &'a UserRow,
    pub rp: &'a RelyingParty,
    pub uv: UserVerification,
    pub name: Option<FactorName>,
    /// The sign-in it belongs to (`webauthn-enrollment`), or none (signed in).
    pub login_id: Option<LoginId>,
    /// When it ends: 5 min, and never past the sign-in.
    pub expires_at: DateTime<Utc>,
}

/// §21's start checks 6 and 7 (`factor_limit`, `name_taken`) and the new pending factor with
/// its challenge, replacing any pending enrollment. The caller did checks 1-5 and holds the
/// user's row lock.
#[tracing::instrument(skip_all)]
pub async fn start(
    conn: &mut AsyncPgConnection,
    ctx: &AuditCtx,
    policy: &TenantPolicy,
    s: Start<'_>,
    now: DateTime<Utc>,
) -> Result<WebauthnEnrollment, ApiError> {
    let (tenant_id, user_id) = (&ctx.tenant_id, &s.user.user_id);
    db::factors::discard_pending(conn, tenant_id, user_id).await?;
    let existing = db::factors::list(conn, tenant_id, user_id).await?;
    if existing.len() as i64 >= i64::from(policy.max_factors_per_user.get()) {
        return Err(ApiError::FactorLimit);
    }
    let taken = existing.iter().map(|f| f.name.as_str());
    let name = match s.name {
        Some(n) if taken.clone().any(|t| n.clashes(t)) => return Err(ApiError::NameTaken),
        Some(n) => n,
        None => factor::default_name_from(factor::DEFAULT_WEBAUTHN_NAME, taken),
    };
    let mut fresh = [0u8; 16];
    rand::fill(&mut fresh);
    let handle = db::webauthn::user_handle(conn, tenant_id, user_id, &fresh).await?;
    let exclude = db::webauthn::of_user(conn, tenant_id, user_id)
        .await?
        .into_iter()
        .filter(|c| c.rp_id == s.rp.rp_id())
        .filter_map(|c| c.credential_id)
        .collect();
    let display = s.user.display_name.as_deref().unwrap_or(&s.user.email);
    let (public_key, state) =
        s.rp.start_registration(&handle, &s.user.email, display, exclude, s.uv)
            .map_err(ApiError::Internal)?;
    let factor_id = FactorId::new();
    db::factors::insert_pending(
        conn,
        tenant_id,
        user_id,
        factor_id,
        &name,
        None,
        now,
        s.expires_at,
    )
    .await?;
    db::webauthn::insert_pending(conn, tenant_id, user_id, factor_id, s.rp.rp_id()).await?;
    db::webauthn::put_challenge(
        conn,
        tenant_id,
        user_id,
        Purpose::Registration,
        s.rp.rp_id(),
        s.login_id,
        Some(factor_id),
        &state,
        s.expires_at,
    )
    .await?;
    let details =
        serde_json::json!({"factor_id": factor_id, "name": name.as_str(), "rp_id": s.rp.rp_id()});
    let kind = AuditType::WebauthnEnrollmentStarted;
    db::audit::insert(conn, ctx, kind, now, details).await?;
    Ok(WebauthnEnrollment {
        factor_id,
        kind: FactorType::Webauthn,
        name,
        public_key,
        expires_at: s.expires_at,
    })
}

/// `factor_types` of a sign-in (§21): the types of the user's active factors usable on
/// `surface` — a WebAuthn factor only when its RP ID is the surface's — in the order
/// `["totp","webauthn"]`; not filtered by `allowed_factor_types`, and possibly empty.
#[tracing::instrument(skip_all)]
pub async fn factor_types(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    tenant_id: &crate::domain::ids::TenantId,
    user_id: &crate::domain::ids::UserId,
    surface: Surface,
) -> Result<Vec<FactorType>, ApiError> {
    let active = db::factors::active(conn, tenant_id, user_id).await?;
    let mut types = Vec::new();
    if active.iter().any(|f| f.factor_type == FactorType::Totp) {
        types.push(FactorType::Totp);
    }
    let webauthn: Vec<FactorId> = active
        .iter()
        .filter(|f| f.factor_type == FactorType::Webauthn)
        .map(|f| f.factor_id)
        .collect();
    if let (false, Some(rp)) = (webauthn.is_empty(), state.webauthn.get(surface)) {
        let creds = db::webauthn::of_user(conn, tenant_id, user_id).await?;
        if creds
            .iter()
            .any(|c| c.rp_id == rp.rp_id() && webauthn.contains(&c.factor_id))
        {
            types.push(FactorType::Webauthn);
        }
    }
    Ok(types)
}

/// A `credential` field holding a registration response, or `400 invalid_request`.
pub fn parse_registration(credential: Option<&serde_json::Value>) -> Result<Proof, ApiError> {
    credential
        .and_then(wa::parse_registration)
        .map(|r| Proof::WebauthnRegistration(Box::new(r)))
        .ok_or_else(|| {
            ApiError::field(
                "credential",
                "must be a RegistrationResponseJSON (PublicKeyCredential.toJSON())",
            )
        })
}

/// `POST /v1/me/factors {type: "webauthn"}`: §21's start checks in order (policy refusals
/// before step-up), then the pending factor.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn start_own(
    state: &AppState,
    claims: &AccessClaims,
    name: Option<FactorName>,
    step_up_code: Option<&str>,
    meta: &ClientMeta,
) -> Result<WebauthnEnrollment, ApiError> {
    let now = state.now();
    let audit = own_audit_ctx(state, claims, meta);
    let surface = surface_of(state, claims);
    in_transaction(state, async move |conn| {
        let user = lock_own_user(conn, claims).await?;
        let tenant = db::tenants::get(conn, &claims.tid)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let policy = policy_of(&tenant)?;
        let rp = preflight(state, &policy, surface)?;
        if step_up::is_enrolled(conn, claims).await? {
            accepted!(step_up::require_in(conn, state, claims, step_up_code, meta).await?);
        }
        let s = Start {
            user: &user,
            rp,
            uv: policy.webauthn_user_verification,
            name,
            login_id: None,
            expires_at: now + Duration::seconds(CHALLENGE_SECONDS),
        };
        start(conn, &audit, &policy, s, now)
            .await
            .map(Verdict::Accepted)
    })
    .await?
    .answer()
}

/// `POST /v1/me/factors/{factor_id}/confirm {credential}`: the registration response through
/// the gate; on acceptance the factor is added and a token minted with its `amr`.
#[tracing::instrument(skip_all, fields(tenant_id = %claims.tid, user_id = %claims.sub))]
pub async fn confirm_own(
    state: &AppState,
    claims: &AccessClaims,
    factor: &str,
    credential: Option<&serde_json::Value>,
    meta: &ClientMeta,
) -> Result<Confirmed, ApiError> {
    let proof = attempt::admit(state, meta, || parse_registration(credential))?;
    // §21 step 3, before the lockout: not counted.
    if state.webauthn.get(surface_of(state, claims)).is_none() {
        return Err(ApiError::WebauthnUnavailable);
    }
    let audit = own_audit_ctx(state, claims, meta);
    let (tenant_id, user_id) = (&claims.tid, &claims.sub);
    in_transaction(state, async move |conn| {
        let attempt = Attempt::lock_user(conn, state, &audit, user_id).await?;
        let now = attempt.now();
        let p = own::pending_by_id(conn, tenant_id, user_id, factor).await?;
        let id = p.factor_id;
        enrollment::pending_of_type(Some(p), FactorType::Webauthn, now)?;
        let against = Against::PendingWebauthn(id);
        let accepted = accepted!(attempt.evaluate(conn, state, &proof, against).await?);
        let how = Activation::Add;
        let amr = accepted.method.amr();
        let recovery_codes =
            enrollment::activate(conn, state, &audit, user_id, accepted, how, now).await?;
        own::confirmed_own(conn, state, claims, id, recovery_codes, amr, now).await
    })
    .await?
    .answer()
}
