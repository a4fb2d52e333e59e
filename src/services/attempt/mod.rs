//! The one gate every second-factor proof goes through (docs/API.md §6, §21): a TOTP code
//! (verify, both confirms, step-up, `X-MFA-Code`), a recovery code, a resync pair. Every
//! endpoint that takes a proof runs the same steps in the same order:
//!
//! 1. [`admit`]: the per-client-IP limit (`429`), then
//! 2. the proof's shape (`400 invalid_request`, not counted);
//! 3. the caller's own checks of the token and the login (`401`, `404`, `409`), reading
//!    the user's row *locked* (so one user's attempts run one at a time on every instance);
//! 4. [`Attempt::open`]: the lockout (`429` with `Retry-After`);
//! 5. the caller's checks of the factor or enrollment concerned (`404`, `409`);
//! 6. [`Attempt::evaluate`]: exactly one of
//!    - accept: the replay guard (or the recovery code used up), the lockout reset, and
//!      [`Verdict::Accepted`] for the use case to complete in the same transaction;
//!    - refuse: the wrong code counted (or the reuse recorded), its audit event, and
//!      [`Verdict::Refused`]: the transaction *commits*, then the request fails.
//!
//! Adding a kind of proof is one [`Proof`] variant and its check in [`check`] (WebAuthn's:
//! `webauthn`, §16 — a WebAuthn refusal is `invalid_credential`, counted like a wrong code).

pub mod check;
mod record;
mod types;
mod webauthn;

use diesel_async::AsyncPgConnection;

use crate::db::{self, audit::AuditCtx};
use crate::domain::audit::AuditType;
use crate::domain::ids::{LoginId, UserId};
use crate::domain::lockout::LockoutState;
use crate::error::ApiError;
use crate::metrics::Outcome;
use crate::services::ClientMeta;
use crate::state::AppState;

pub use check::{parse_any, parse_recovery, parse_totp};
pub use types::{Accepted, Against, Attempt, Method, Proof, Verdict};

/// Inside a transaction body returning `Result<Verdict<_>, ApiError>`: the accepted value,
/// or return the refusal (to be committed).
#[macro_export]
macro_rules! accepted {
    ($verdict:expr) => {
        match $verdict {
            $crate::services::attempt::Verdict::Accepted(v) => v,
            $crate::services::attempt::Verdict::Refused(e) => {
                return Ok($crate::services::attempt::Verdict::Refused(e))
            }
        }
    };
}

/// Steps 1 and 2: the per-client-IP limit on requests that carry a proof, then the proof's
/// shape.
pub fn admit<T>(
    state: &AppState,
    meta: &ClientMeta,
    parse: impl FnOnce() -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Some(ip) = meta.ip {
        state
            .rate_limiter
            .check(ip, state.now())
            .map_err(|retry_after_secs| {
                state.metrics.outcome(Outcome::RateLimited);
                ApiError::TooManyAttempts { retry_after_secs }
            })?;
    }
    parse()
}

/// [`admit`] for a TOTP code in the field `code` (verify, both confirms).
pub fn admit_totp(state: &AppState, meta: &ClientMeta, code: &str) -> Result<Proof, ApiError> {
    admit(state, meta, || parse_totp("code", code).map(Proof::Totp))
}

impl<'a> Attempt<'a> {
    /// Step 4: while the user is locked out no proof is evaluated. `lockout` must have been
    /// read under the user's row lock, held until the transaction ends.
    pub fn open(
        state: &AppState,
        audit: &'a AuditCtx,
        user_id: &'a UserId,
        lockout: LockoutState,
        login: Option<(LoginId, i32)>,
    ) -> Result<Self, ApiError> {
        let now = state.now();
        if let Some(until) = lockout.locked_until.filter(|_| lockout.is_locked(now)) {
            state.metrics.outcome(Outcome::Locked);
            return Err(ApiError::TooManyAttempts {
                retry_after_secs: super::secs_until(until, now),
            });
        }
        Ok(Attempt {
            audit,
            user_id,
            lockout,
            login,
            now,
        })
    }

    /// Steps 3 and 4 for a signed-in user (no sign-in in progress): locks the user's row,
    /// then [`Attempt::open`].
    #[tracing::instrument(skip_all)]
    pub async fn lock_user(
        conn: &mut AsyncPgConnection,
        state: &AppState,
        audit: &'a AuditCtx,
        user_id: &'a UserId,
    ) -> Result<Self, ApiError> {
        let lockout = db::users::lock_for_attempt(conn, &audit.tenant_id, user_id)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        Attempt::open(state, audit, user_id, lockout, None)
    }

    /// Step 6: evaluates `proof` against `factors` and leaves through exactly one door —
    /// accepted (replay guard, lockout reset) or refused (recorded, to be committed).
    #[tracing::instrument(skip_all)]
    pub async fn evaluate(
        &self,
        conn: &mut AsyncPgConnection,
        state: &AppState,
        proof: &Proof,
        factors: Against<'_>,
    ) -> Result<Verdict<Accepted>, ApiError> {
        let found = check::check(conn, state, self, proof, factors).await?;
        let verdict = match found {
            types::Found::Accepted(a) => {
                self.reset_lockout(conn).await?;
                self.accepted(state, &a);
                Verdict::Accepted(a)
            }
            types::Found::Consumed(a) => {
                self.accepted(state, &a);
                Verdict::Accepted(a)
            }
            types::Found::Reused(factor_id) => {
                if let Some(factor_id) = factor_id {
                    record::reused(conn, self, factor_id).await?;
                }
                state.metrics.outcome(Outcome::Reused);
                Verdict::Refused(ApiError::CodeReused)
            }
            types::Found::Wrong(kind) => {
                record::wrong(conn, state, self, kind).await?;
                Verdict::Refused(match kind {
                    AuditType::WebauthnVerifyFailed => ApiError::InvalidCredential,
                    _ => ApiError::InvalidCode,
                })
            }
        };
        Ok(verdict)
    }

    /// A proof accepted by other than a factor's replay guard (which does this itself): the
    /// lockout is cleared, and a sign-in's time stored in the same write.
    async fn reset_lockout(&self, conn: &mut AsyncPgConnection) -> Result<(), ApiError> {
        let (tenant_id, signed_in) = (&self.audit.tenant_id, self.login.is_some());
        db::users::reset_lockout(conn, tenant_id, self.user_id, self.now, signed_in).await?;
        Ok(())
    }

    /// A proof accepted, counted.
    fn accepted(&self, state: &AppState, a: &Accepted) {
        state.metrics.outcome(Outcome::Success);
        if a.method == Method::Totp {
            state.metrics.drift(a.drift);
        }
    }
}
