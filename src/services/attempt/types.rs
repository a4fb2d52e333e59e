//! The attempt gate's vocabulary: the proofs, the factors they are checked against, an
//! attempt in progress and what it decides.

use chrono::{DateTime, Utc};

use crate::crypto::webauthn::{PublicKeyCredential, RegisterPublicKeyCredential};
use crate::db::webauthn::Purpose;
use crate::db::{audit::AuditCtx, factors::FactorSecret};
use crate::domain::audit::AuditType;
use crate::domain::ids::{FactorId, LoginId, UserId};
use crate::domain::lockout::LockoutState;
use crate::domain::totp::{TimeStep, TotpCode};
use crate::error::ApiError;
use crate::services::amr;

/// What the caller sent as proof of the second factor, parsed.
pub enum Proof {
    Totp(TotpCode),
    /// Canonical (normalised) recovery code.
    Recovery(String),
    /// Two codes of consecutive steps of one factor (§11).
    Resync(TotpCode, TotpCode),
    /// A WebAuthn assertion answering the user's live challenge of this purpose (§16): a
    /// sign-in's (the attempt's login) or a re-authentication's (§17). Checked against the
    /// user's active WebAuthn factors of the surface's RP ID.
    Webauthn(Box<PublicKeyCredential>, Purpose),
    /// A WebAuthn registration response confirming a pending WebAuthn factor.
    WebauthnRegistration(Box<RegisterPublicKeyCredential>),
}

/// The factors a proof is checked against.
#[derive(Clone, Copy)]
pub enum Against<'f> {
    /// The user's active factors: a sign-in's window (`MFA_TOTP_SKEW` around now or the
    /// factor's drift), the replay guard on acceptance.
    Active(&'f [FactorSecret]),
    /// A pending enrollment's factor: the enrollment window (`MFA_TOTP_ENROLL_SKEW`); its
    /// activation records the step.
    Pending(&'f FactorSecret),
    /// A pending WebAuthn factor, confirmed by a registration response.
    PendingWebauthn(FactorId),
}

/// What a transaction that evaluated a proof decided. Both commit: a refusal must be
/// recorded (a wrong code counts) although the request fails.
#[must_use]
pub enum Verdict<T> {
    Accepted(T),
    Refused(ApiError),
}

impl<T> Verdict<T> {
    /// The answer once the transaction has committed.
    pub fn answer(self) -> Result<T, ApiError> {
        match self {
            Verdict::Accepted(t) => Ok(t),
            Verdict::Refused(e) => Err(e),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verdict<U> {
        match self {
            Verdict::Accepted(t) => Verdict::Accepted(f(t)),
            Verdict::Refused(e) => Verdict::Refused(e),
        }
    }
}

/// A proof accepted: the factor it was for (none for a recovery code), the step and drift
/// recorded, and how the user proved it.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub factor_id: Option<FactorId>,
    pub step: TimeStep,
    pub drift: i32,
    pub method: Method,
    /// After a recovery code: how many are left.
    pub recovery_codes_remaining: Option<i64>,
}

/// How the second factor was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
    /// A WebAuthn credential; `synced` when it is backup-eligible (a passkey).
    Webauthn {
        synced: bool,
    },
}

impl Method {
    /// `details.method` of `login.succeeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::RecoveryCode => "recovery_code",
            Method::Webauthn { .. } => "webauthn",
        }
    }

    /// The access token's `amr` (RFC 8176).
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Method::Totp => amr::TOTP,
            Method::RecoveryCode => amr::RECOVERY_CODE,
            Method::Webauthn { synced: false } => amr::HARDWARE_KEY,
            Method::Webauthn { synced: true } => amr::SOFTWARE_KEY,
        }
    }
}

/// One attempt in progress, opened under the user's row lock: who (for audit events), the
/// lockout state read under the lock, and the sign-in it belongs to with its wrong codes.
pub struct Attempt<'a> {
    pub(super) audit: &'a AuditCtx,
    pub(super) user_id: &'a UserId,
    pub(super) lockout: LockoutState,
    pub(super) login: Option<(LoginId, i32)>,
    pub(super) now: DateTime<Utc>,
}

impl Attempt<'_> {
    pub fn audit(&self) -> &AuditCtx {
        self.audit
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The sign-in this attempt belongs to, for audit details.
    pub(super) fn login_id(&self) -> Option<LoginId> {
        self.login.map(|(id, _)| id)
    }
}

/// The audit event type of a wrong proof.
pub(super) fn failed_kind(proof: &Proof) -> AuditType {
    match proof {
        Proof::Recovery(_) => AuditType::RecoveryCodeFailed,
        Proof::Totp(_) | Proof::Resync(..) => AuditType::TotpVerifyFailed,
        Proof::Webauthn(..) | Proof::WebauthnRegistration(_) => AuditType::WebauthnVerifyFailed,
    }
}

/// What a proof matched.
pub(super) enum Found {
    Accepted(Accepted),
    /// Accepted by a factor's replay guard, which cleared the lockout in the same statement.
    Consumed(Accepted),
    /// A code of a step already used (`code_reused`, not counted), naming the factor whose
    /// replay guard refused it (none for a recovery code used meanwhile).
    Reused(Option<FactorId>),
    /// A wrong proof, counted, audited as this type.
    Wrong(AuditType),
}
