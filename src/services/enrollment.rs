//! TOTP enrollment, shared by sign-in ("Setup MFA") and voluntary enrollment: the "Set Up
//! Authentication" material, and the activation that the confirming code triggers.

use crate::crypto::{keyring::totp_secret_aad, qr, tokens};
use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, FactorStatus, UserId};
use crate::domain::totp;
use crate::error::ApiError;
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
    "algorithm": "SHA1", "digits": 6, "period": 30, "expires_at": "2026-11-28T10:10:00Z"}))]
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
}

/// Stores a new pending factor (discarding any previous pending one) and returns its
/// material. The caller owns the transaction.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &AuditCtx,
    user_id: &UserId,
    email: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<EnrollmentMaterial, ApiError> {
    let tenant = db::tenants::get(conn, &ctx.tenant_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let secret = tokens::new_totp_secret();
    let factor_id = FactorId::new();
    let aad = totp_secret_aad(ctx.tenant_id.as_str(), user_id.as_str(), factor_id.0);
    let sealed = state
        .keys
        .keyring
        .seal(&secret, &aad)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("sealing a TOTP secret: {e}")))?;
    db::factors::replace_pending(
        conn,
        &ctx.tenant_id,
        user_id,
        factor_id,
        &sealed,
        now,
        expires_at,
    )
    .await?;
    db::audit::insert(
        conn,
        ctx,
        AuditType::TotpEnrollmentStarted,
        now,
        serde_json::json!({"factor_id": factor_id}),
    )
    .await?;

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
    })
}

/// Makes the confirmed pending factor active (replacing any previous one), stores ten new
/// recovery codes, clears the lockout and writes `totp.enrolled`. Returns the codes to
/// show once.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    ctx: &AuditCtx,
    user_id: &UserId,
    factor_id: FactorId,
    step: totp::TimeStep,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let replaced = db::factors::get(conn, &ctx.tenant_id, user_id, FactorStatus::Active)
        .await?
        .is_some();
    if !db::factors::activate(conn, &ctx.tenant_id, user_id, factor_id, step, now).await? {
        return Err(ApiError::InvalidState(
            "There is no pending enrollment to confirm.",
        ));
    }
    if replaced {
        let reason = super::devices::RevokeReason::FactorReplaced;
        super::devices::revoke_all_devices(conn, ctx, user_id, reason, now).await?;
    }
    let (codes, hashes) = super::attempt::new_recovery_codes(state);
    db::recovery::replace(conn, &ctx.tenant_id, factor_id, &hashes, now).await?;
    db::users::reset_lockout(conn, &ctx.tenant_id, user_id, now).await?;
    db::audit::insert(
        conn,
        ctx,
        AuditType::TotpEnrolled,
        now,
        serde_json::json!({"factor_id": factor_id, "replaced": replaced}),
    )
    .await?;
    state.metrics.outcome(crate::metrics::Outcome::Success);
    Ok(codes)
}
