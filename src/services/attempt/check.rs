//! Step 6's checks, one per kind of [`Proof`]: what a proof matched, with the writes that
//! make it single-use (a factor's replay guard, a recovery code used up). The door it
//! leaves through is `Attempt::evaluate`'s.

use diesel_async::AsyncPgConnection;

use super::types::{failed_kind, Accepted, Against, Attempt, Found, Method, Proof};
use crate::crypto::hashing::{ct_eq, HashPurpose};
use crate::crypto::tokens;
use crate::db::{self, factors::FactorSecret};
use crate::domain::audit::AuditType;
use crate::domain::drift::{self, Check, FactorClock};
use crate::domain::totp::{time_step, TotpCode};
use crate::error::ApiError;
use crate::state::AppState;

/// A TOTP code field: exactly six ASCII digits, else 400 `invalid_request` (not counted).
pub fn parse_totp(field: &str, code: &str) -> Result<TotpCode, ApiError> {
    TotpCode::parse(code).ok_or_else(|| ApiError::field(field, "must be exactly 6 digits"))
}

pub fn parse_recovery(field: &str, code: &str) -> Result<String, ApiError> {
    tokens::normalize_recovery_code(code)
        .ok_or_else(|| ApiError::field(field, "must be a recovery code like xxxxx-xxxxx"))
}

/// An `X-MFA-Code` value: a TOTP code or a recovery code.
pub fn parse_any(field: &str, code: &str) -> Result<Proof, ApiError> {
    if let Some(c) = TotpCode::parse(code) {
        return Ok(Proof::Totp(c));
    }
    tokens::normalize_recovery_code(code)
        .map(Proof::Recovery)
        .ok_or_else(|| ApiError::field(field, "must be a 6-digit code or a recovery code"))
}

#[tracing::instrument(skip_all)]
pub(super) async fn check(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    proof: &Proof,
    factors: Against<'_>,
) -> Result<Found, ApiError> {
    let wrong = Found::Wrong(failed_kind(proof));
    match (proof, factors) {
        (Proof::Totp(code), Against::Pending(f)) => {
            let skew = state.settings.totp_enroll_skew;
            Ok(
                match totp(state, attempt, code, f, skew, FactorClock::default())? {
                    Check::Accepted(step) => {
                        Found::Accepted(accepted_totp(state, attempt, f, step))
                    }
                    Check::Reused | Check::NoMatch => wrong,
                },
            )
        }
        (Proof::Totp(code), Against::Active(fs)) => {
            let mut reused = None;
            for f in fs {
                match totp(state, attempt, code, f, state.settings.totp_skew, f.clock)? {
                    Check::Accepted(step) => {
                        let a = accepted_totp(state, attempt, f, step);
                        return consume(conn, attempt, a, Found::Reused(Some(f.factor_id))).await;
                    }
                    Check::Reused => reused = reused.or(Some(f.factor_id)),
                    Check::NoMatch => {}
                }
            }
            Ok(reused.map_or(wrong, |id| Found::Reused(Some(id))))
        }
        (Proof::Resync(c1, c2), Against::Active(fs)) => {
            for f in fs {
                if let Some(a) = resync(state, attempt, f, c1, c2)? {
                    // A lost race is one more wrong code: a resync is stricter than a verify.
                    return consume(conn, attempt, a, wrong).await;
                }
            }
            Ok(wrong)
        }
        (Proof::Recovery(code), Against::Active(_)) => recovery(conn, state, attempt, code).await,
        (Proof::Webauthn(response, purpose), Against::Active(_)) => {
            super::webauthn::assertion(conn, state, attempt, response, *purpose).await
        }
        (Proof::WebauthnRegistration(response), Against::PendingWebauthn(factor_id)) => {
            super::webauthn::registration(conn, state, attempt, response, factor_id).await
        }
        (Proof::Totp(_), Against::PendingWebauthn(_))
        | (Proof::WebauthnRegistration(_), Against::Pending(_) | Against::Active(_))
        | (Proof::Webauthn(..), Against::Pending(_) | Against::PendingWebauthn(_))
        | (
            Proof::Recovery(_) | Proof::Resync(..),
            Against::Pending(_) | Against::PendingWebauthn(_),
        ) => Err(ApiError::Internal(anyhow::anyhow!(
            "a proof checked against factors of another kind"
        ))),
    }
}

fn totp(
    state: &AppState,
    attempt: &Attempt<'_>,
    code: &TotpCode,
    f: &FactorSecret,
    skew: u8,
    clock: FactorClock,
) -> Result<Check, ApiError> {
    let secret = open(state, attempt, f)?;
    Ok(drift::check(
        &secret,
        code,
        attempt.now.timestamp(),
        skew,
        clock,
    ))
}

fn accepted_totp(state: &AppState, attempt: &Attempt<'_>, f: &FactorSecret, step: i64) -> Accepted {
    let drift = drift::drift_of(step, attempt.now.timestamp(), state.settings.totp_max_drift);
    Accepted {
        factor_id: Some(f.factor_id),
        step,
        drift,
        method: Method::Totp,
        recovery_codes_remaining: None,
    }
}

/// The §11 rule on one factor: its new last used step (`s+1`) and drift.
fn resync(
    state: &AppState,
    attempt: &Attempt<'_>,
    f: &FactorSecret,
    c1: &TotpCode,
    c2: &TotpCode,
) -> Result<Option<Accepted>, ApiError> {
    let s = &state.settings;
    let secret = open(state, attempt, f)?;
    let now = attempt.now.timestamp();
    let step = drift::resync(
        &secret,
        c1,
        c2,
        now,
        s.totp_resync_window,
        s.totp_max_drift,
        f.clock.last_used_step,
    );
    Ok(step.map(|step| Accepted {
        factor_id: Some(f.factor_id),
        step,
        drift: i32::try_from(step - time_step(now)).unwrap_or(0),
        method: Method::Totp,
        recovery_codes_remaining: None,
    }))
}

/// The replay guard of the factor that accepted: one atomic conditional UPDATE, so the same
/// step is accepted once whatever runs at the same time; `lost` when it was used meanwhile.
/// An accepted step clears the lockout in the same statement (`Found::Consumed`).
async fn consume(
    conn: &mut AsyncPgConnection,
    attempt: &Attempt<'_>,
    a: Accepted,
    lost: Found,
) -> Result<Found, ApiError> {
    let Some(factor_id) = a.factor_id else {
        return Ok(Found::Accepted(a));
    };
    let tenant_id = &attempt.audit.tenant_id;
    let fresh = db::factors::consume_step(
        conn,
        tenant_id,
        attempt.user_id,
        factor_id,
        a.step,
        a.drift,
        attempt.now,
        attempt.login.is_some(),
    )
    .await?;
    Ok(if fresh { Found::Consumed(a) } else { lost })
}

/// A recovery code: compared in constant time with every unused one, then used up.
async fn recovery(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    attempt: &Attempt<'_>,
    code: &str,
) -> Result<Found, ApiError> {
    let (tenant_id, user_id) = (&attempt.audit.tenant_id, attempt.user_id);
    let presented = state
        .keys
        .hash_key
        .hash(HashPurpose::RecoveryCode, code.as_bytes());
    let mut matched = None;
    for h in db::recovery::unused(conn, tenant_id, user_id).await? {
        if ct_eq(&h, &presented) {
            matched = Some(h);
        }
    }
    let Some(hash) = matched else {
        return Ok(Found::Wrong(AuditType::RecoveryCodeFailed));
    };
    if !db::recovery::use_code(conn, tenant_id, user_id, &hash, attempt.now).await? {
        return Ok(Found::Reused(None));
    }
    let left = db::recovery::count_unused(conn, tenant_id, user_id).await?;
    let mut details = serde_json::json!({"recovery_codes_remaining": left});
    if let Some(id) = attempt.login_id() {
        details["login_id"] = serde_json::json!(id.0);
    }
    let used = AuditType::RecoveryCodeUsed;
    db::audit::insert(conn, attempt.audit, used, attempt.now, details).await?;
    Ok(Found::Accepted(Accepted {
        factor_id: None,
        step: 0,
        drift: 0,
        method: Method::RecoveryCode,
        recovery_codes_remaining: Some(left),
    }))
}

fn open(state: &AppState, attempt: &Attempt<'_>, f: &FactorSecret) -> Result<Vec<u8>, ApiError> {
    crate::services::open_secret(
        state,
        &attempt.audit.tenant_id,
        attempt.user_id,
        f.factor_id,
        &f.key_id,
        &f.nonce,
        &f.ciphertext,
    )
}
