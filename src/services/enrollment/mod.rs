//! TOTP enrollment, shared by sign-in ("Setup MFA"), voluntary (re-)enrollment and adding a
//! factor (§10): the "Set Up Authentication" material, and the activation that the
//! confirming code triggers (a v1 replacement, or one more factor). The signed-in user's
//! own enrollments are in `own`.

pub mod own;

use crate::crypto::hashing::HashPurpose;
use crate::crypto::{keyring::totp_secret_aad, qr, tokens};
use crate::db::factors::{FactorRow, Removal};
use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::factor::{self, FactorName};
use crate::domain::ids::{FactorId, FactorStatus, FactorType, UserId};
use crate::domain::totp;
use crate::error::ApiError;
use crate::services::attempt::{Accepted, Method};
use crate::services::factors::removal::{remove_factors, Why};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::ToSchema;

/// What the "Set Up Authentication" window shows: a QR code to scan, or the secret to type.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    "otpauth_uri": "otpauth://totp/MSPbots:jane%40acme.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=MSPbots&algorithm=SHA1&digits=6&period=30",
    "qr_svg": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 45 45\">…</svg>",
    "qr_png": "data:image/png;base64,iVBORw0KGgo…",
    "issuer": "MSPbots", "account_name": "jane@acme.example",
    "algorithm": "SHA1", "digits": 6, "period": 30, "expires_at": "2026-11-28T10:10:00Z",
    "factor_id": "0b7f3c7e-8a4b-4c1e-9d55-3f1f0b2f9a10", "name": "Authenticator"}))]
pub struct EnrollmentMaterial {
    /// Base32 without padding, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// An SVG document encoding `otpauth_uri`.
    pub qr_svg: String,
    /// A `data:image/png;base64,` URI encoding `otpauth_uri`.
    pub qr_png: String,
    pub issuer: String,
    /// The user's e-mail address.
    pub account_name: String,
    #[schema(value_type = String, example = "SHA1")]
    pub algorithm: &'static str,
    #[schema(example = 6)]
    pub digits: u32,
    #[schema(example = 30)]
    pub period: u64,
    /// The pending enrollment must be confirmed before this.
    pub expires_at: DateTime<Utc>,
    /// The pending factor (§10), e.g. for `POST /v1/me/factors/{factor_id}/confirm`.
    pub factor_id: FactorId,
    pub name: FactorName,
}

/// What a confirmed enrollment does to the user's other factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// v1: the new factor replaces every active factor, with new recovery codes.
    Replace,
    /// §10: one more factor; recovery codes only if it is the user's first.
    Add,
}

pub const NO_PENDING: &str = "There is no pending enrollment to confirm: start one first.";

/// §21 step 5 of every confirm: a pending enrollment (`409 invalid_state`), not expired
/// (`409`), of the type the proof is for — `{code}` to a passkey's enrollment or
/// `{credential}` to an app's is `400 invalid_request`, not counted.
pub fn pending_of_type(
    p: Option<FactorRow>,
    wanted: FactorType,
    now: DateTime<Utc>,
) -> Result<FactorRow, ApiError> {
    let Some(p) = p.filter(|p| p.status == FactorStatus::Pending) else {
        return Err(ApiError::InvalidState(NO_PENDING));
    };
    if p.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::InvalidState(
            "The pending enrollment expired: start a new one.",
        ));
    }
    match (p.factor_type, wanted) {
        (FactorType::Webauthn, FactorType::Totp) => Err(ApiError::field(
            "code",
            "this enrollment is a passkey or security key: confirm it with `credential`",
        )),
        (FactorType::Totp, FactorType::Webauthn) => Err(ApiError::field(
            "credential",
            "this enrollment is an authenticator app: confirm it with `code`",
        )),
        _ => Ok(p),
    }
}

/// The start of an enrollment: a name, and whether the tenant's factor limit applies.
pub struct NewFactor<'a> {
    pub user_id: &'a UserId,
    pub email: &'a str,
    pub name: Option<FactorName>,
    pub enforce_limit: bool,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new pending factor (discarding any previous pending one) and returns its
/// material: `409 factor_limit` when the limit applies and the user has as many active
/// factors as the tenant allows, `409 name_taken` for a name the user already uses. The
/// caller owns the transaction (and holds the user's row locked).
#[tracing::instrument(skip_all)]
pub async fn start(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &AuditCtx,
    new: NewFactor<'_>,
    now: DateTime<Utc>,
) -> Result<EnrollmentMaterial, ApiError> {
    let (user_id, email, expires_at) = (new.user_id, new.email, new.expires_at);
    let tenant = db::tenants::get(conn, &ctx.tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    db::factors::discard_pending(conn, &ctx.tenant_id, user_id).await?;
    let existing = db::factors::list(conn, &ctx.tenant_id, user_id).await?;
    if new.enforce_limit && existing.len() as i64 >= i64::from(tenant.max_factors_per_user) {
        return Err(ApiError::FactorLimit);
    }
    let taken = existing.iter().map(|f| f.name.as_str());
    let name = match new.name {
        Some(n) if taken.clone().any(|t| n.clashes(t)) => return Err(ApiError::NameTaken),
        Some(n) => n,
        None => factor::default_name(taken),
    };
    let secret = tokens::new_totp_secret();
    let factor_id = FactorId::new();
    let aad = totp_secret_aad(ctx.tenant_id.as_str(), user_id.as_str(), factor_id.0);
    let sealed = state
        .keys
        .keyring
        .seal(&secret, &aad)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("sealing a TOTP secret: {e}")))?;
    db::factors::insert_pending(
        conn,
        &ctx.tenant_id,
        user_id,
        factor_id,
        &name,
        Some(&sealed),
        now,
        expires_at,
    )
    .await?;
    let details = serde_json::json!({"factor_id": factor_id, "name": name.as_str()});
    db::audit::insert(conn, ctx, AuditType::TotpEnrollmentStarted, now, details).await?;

    let uri = totp::otpauth_uri(&tenant.issuer, email, &secret);
    // Rendering a QR code is CPU work: keep it off the async executor.
    let uri_for_qr = uri.clone();
    let (qr_svg, qr_png) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::crypto::CryptoError>((
            qr::qr_svg(&uri_for_qr)?,
            qr::qr_png_data_uri(&uri_for_qr)?,
        ))
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR task: {e}")))?
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("rendering the QR code: {e}")))?;
    Ok(EnrollmentMaterial {
        secret: totp::encode_secret(&secret),
        otpauth_uri: uri,
        qr_svg,
        qr_png,
        issuer: tenant.issuer,
        account_name: email.to_owned(),
        algorithm: totp::ALGORITHM,
        digits: totp::DIGITS,
        period: totp::PERIOD_SECS,
        expires_at,
        factor_id,
        name,
    })
}

/// Makes the confirmed pending factor active (a v1 replacement removes the others now,
/// through `factors::removal`), stores ten new recovery codes when the activation calls for
/// them and writes `totp.enrolled`. (The gate that accepted the code cleared the lockout.) Returns the codes to show
/// once (`None`: the user's existing codes stay valid).
#[tracing::instrument(skip_all)]
pub async fn activate(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &AuditCtx,
    user_id: &UserId,
    accepted: Accepted,
    how: Activation,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Accepted {
        factor_id: Some(factor_id),
        step,
        drift,
        method,
        ..
    } = accepted
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "an enrollment accepted without its factor"
        )));
    };
    let had_active = !db::factors::active(conn, &ctx.tenant_id, user_id)
        .await?
        .is_empty();
    if !db::factors::activate(conn, &ctx.tenant_id, user_id, factor_id, step, drift, now).await? {
        return Err(ApiError::InvalidState(
            "There is no pending enrollment to confirm.",
        ));
    }
    let mut replaced = false;
    if how == Activation::Replace {
        let others = Removal::ActiveExcept(factor_id);
        let gone = remove_factors(conn, ctx, user_id, others, Why::Replaced, now).await?;
        replaced = !gone.is_empty();
    }
    let codes = if how == Activation::Replace || !had_active {
        let (codes, hashes) = new_recovery_codes(state);
        db::recovery::replace(conn, &ctx.tenant_id, user_id, &hashes, now).await?;
        Some(codes)
    } else {
        None
    };
    let kind = match method {
        Method::Webauthn { .. } => AuditType::WebauthnEnrolled,
        Method::Totp | Method::RecoveryCode => AuditType::TotpEnrolled,
    };
    let details = serde_json::json!({"factor_id": factor_id, "replaced": replaced});
    db::audit::insert(conn, ctx, kind, now, details).await?;
    Ok(codes)
}

/// Ten fresh recovery codes: what the user sees once, and the hashes that are stored.
pub fn new_recovery_codes(state: &AppState) -> (Vec<String>, Vec<Vec<u8>>) {
    (0..10)
        .map(|_| {
            let shown = tokens::new_recovery_code();
            let canonical = tokens::normalize_recovery_code(&shown).unwrap_or_default();
            let hash = state
                .keys
                .hash_key
                .hash(HashPurpose::RecoveryCode, canonical.as_bytes())
                .to_vec();
            (shown, hash)
        })
        .unzip()
}
