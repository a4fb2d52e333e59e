//! `totp_factors`: every factor of every type (§16: a WebAuthn factor has no secret; its
//! credential is `db::webauthn`); for TOTP, encrypted secrets, pending until confirmed, then active; several
//! active ones per user (§10), each named and with its own replay guard and drift (§11).
//! Every lookup names the tenant and the user (index `totp_factors_by_user`), and the replay
//! guard is `mfa_accept_step` (one conditional UPDATE, which then clears the lockout; `db/functions/`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{mfa_accept_step, totp_factors};
use crate::crypto::keyring::Sealed;
use crate::domain::drift::FactorClock;
use crate::domain::factor::FactorName;
use crate::domain::ids::{FactorId, FactorStatus, FactorType, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors, check_for_backend(diesel::pg::Pg))]
pub struct FactorRow {
    pub factor_id: FactorId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub key_id: Option<String>,
    pub nonce: Option<Vec<u8>>,
    pub ciphertext: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub status: FactorStatus,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_step: Option<i64>,
    pub drift_steps: i32,
    #[diesel(column_name = type_)]
    pub factor_type: FactorType,
}

impl FactorRow {
    /// What a code check needs of this factor; `None` for a WebAuthn factor (no secret).
    pub fn secret(&self) -> Option<FactorSecret> {
        let (Some(key_id), Some(nonce), Some(ciphertext)) =
            (&self.key_id, &self.nonce, &self.ciphertext)
        else {
            return None;
        };
        Some(FactorSecret {
            factor_id: self.factor_id,
            key_id: key_id.clone(),
            nonce: nonce.clone(),
            ciphertext: ciphertext.clone(),
            clock: FactorClock {
                last_used_step: self.last_used_step,
                drift_steps: self.drift_steps,
            },
        })
    }
}

/// A factor's sealed secret and its replay guard and drift: what a code check needs.
#[derive(Debug, Clone)]
pub struct FactorSecret {
    pub factor_id: FactorId,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub clock: FactorClock,
}

/// Which factors a removal takes (`services::factors::remove_factors` is the one caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Every factor of the user, active and pending.
    All,
    /// One factor, active or pending.
    One(FactorId),
    /// Every active factor but this one (a v1 replacement, at its confirmation).
    ActiveExcept(FactorId),
}

/// The user's factors: the prefix of `totp_factors_by_user`, so a lookup costs the same in
/// a tenant of ten users or of a million, with or without planner statistics.
#[diesel::dsl::auto_type]
fn of_user<'a>(tenant_id: &'a TenantId, user_id: &'a UserId) -> _ {
    totp_factors::table.filter(
        totp_factors::tenant_id
            .eq(tenant_id)
            .and(totp_factors::user_id.eq(user_id)),
    )
}

/// The user's factors in `status`.
#[diesel::dsl::auto_type]
fn in_status<'a>(tenant_id: &'a TenantId, user_id: &'a UserId, status: FactorStatus) -> _ {
    let q: of_user<'a> = of_user(tenant_id, user_id);
    q.filter(totp_factors::status.eq(status))
}

/// One factor of the user, whatever its status.
#[diesel::dsl::auto_type]
fn one<'a>(tenant_id: &'a TenantId, user_id: &'a UserId, factor_id: FactorId) -> _ {
    let q: of_user<'a> = of_user(tenant_id, user_id);
    q.filter(totp_factors::factor_id.eq(factor_id))
}

/// The user's factor in `status`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    status: FactorStatus,
) -> QueryResult<Option<FactorRow>> {
    in_status(tenant_id, user_id, status)
        .select(FactorRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Every factor of the user (active and pending), oldest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Vec<FactorRow>> {
    of_user(tenant_id, user_id)
        .order((totp_factors::created_at, totp_factors::factor_id))
        .select(FactorRow::as_select())
        .load(conn)
        .await
}

/// The user's active factors, oldest first.
pub async fn active(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Vec<FactorRow>> {
    in_status(tenant_id, user_id, FactorStatus::Active)
        .order((totp_factors::activated_at, totp_factors::factor_id))
        .select(FactorRow::as_select())
        .load(conn)
        .await
}

/// One factor of the user, active or pending.
pub async fn by_id(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
) -> QueryResult<Option<FactorRow>> {
    one(tenant_id, user_id, factor_id)
        .select(FactorRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Discards the user's pending enrollment, if any.
pub async fn discard_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<()> {
    diesel::delete(in_status(tenant_id, user_id, FactorStatus::Pending))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Stores a new pending factor: an authenticator app's with its sealed secret, or a WebAuthn
/// one (no secret) when `sealed` is `None`. The caller discarded the previous pending one
/// (`discard_pending`) and checked the name.
#[allow(clippy::too_many_arguments)]
pub async fn insert_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    name: &FactorName,
    sealed: Option<&Sealed>,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    let kind = if sealed.is_some() {
        FactorType::Totp
    } else {
        FactorType::Webauthn
    };
    diesel::insert_into(totp_factors::table)
        .values((
            totp_factors::tenant_id.eq(tenant_id),
            totp_factors::factor_id.eq(factor_id),
            totp_factors::user_id.eq(user_id),
            totp_factors::status.eq(FactorStatus::Pending),
            totp_factors::name.eq(name.as_str()),
            totp_factors::type_.eq(kind),
            totp_factors::key_id.eq(sealed.map(|s| &s.key_id)),
            totp_factors::nonce.eq(sealed.map(|s| &s.nonce)),
            totp_factors::ciphertext.eq(sealed.map(|s| &s.ciphertext)),
            totp_factors::created_at.eq(now),
            totp_factors::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Makes the pending factor active beside the user's other factors. The confirming code's
/// step counts as used, and seeds the drift.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    step: i64,
    drift: i32,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let pending =
        one(tenant_id, user_id, factor_id).filter(totp_factors::status.eq(FactorStatus::Pending));
    diesel::update(pending)
        .set((
            totp_factors::status.eq(FactorStatus::Active),
            totp_factors::activated_at.eq(now),
            totp_factors::expires_at.eq(None::<DateTime<Utc>>),
            totp_factors::last_used_step.eq(step),
            totp_factors::drift_steps.eq(drift),
            totp_factors::last_used_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// The replay guard: records `step` as used (and `drift` as the factor's drift) only if it
/// is later than the last used step, and then clears the user's lockout (`signed_in` as
/// `users::reset_lockout` takes it) in the same statement. False means the code (or a later
/// one) was already used, and nothing was written.
#[allow(clippy::too_many_arguments)]
pub async fn consume_step(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    step: i64,
    drift: i32,
    now: DateTime<Utc>,
    signed_in: bool,
) -> QueryResult<bool> {
    diesel::select(mfa_accept_step(
        tenant_id, user_id, factor_id, step, drift, now, signed_in,
    ))
    .get_result(conn)
    .await
}

/// A WebAuthn factor used now (a TOTP factor's use is recorded by its replay guard).
pub async fn mark_used(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(one(tenant_id, user_id, factor_id))
        .set(totp_factors::last_used_at.eq(now))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Renames a factor; `None` when the user has no such factor.
pub async fn rename(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    name: &FactorName,
) -> QueryResult<Option<FactorRow>> {
    diesel::update(one(tenant_id, user_id, factor_id))
        .set(totp_factors::name.eq(name.as_str()))
        .returning(FactorRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deletes the factors `which` names; returns the ones that went with their status. Only
/// `services::factors::remove_factors` calls this (recovery codes, open sign-ins and
/// whatever else dies with a factor are handled there).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    which: Removal,
) -> QueryResult<Vec<(FactorId, FactorStatus, FactorType)>> {
    let out = (
        totp_factors::factor_id,
        totp_factors::status,
        totp_factors::type_,
    );
    match which {
        Removal::All => {
            let q = of_user(tenant_id, user_id);
            diesel::delete(q).returning(out).get_results(conn).await
        }
        Removal::One(id) => {
            let q = one(tenant_id, user_id, id);
            diesel::delete(q).returning(out).get_results(conn).await
        }
        Removal::ActiveExcept(id) => {
            let q = in_status(tenant_id, user_id, FactorStatus::Active)
                .filter(totp_factors::factor_id.ne(id));
            diesel::delete(q).returning(out).get_results(conn).await
        }
    }
}

/// A batch of factors not yet under `active_key_id`, for `encryption-keys rotate`.
pub async fn not_under_key(
    conn: &mut AsyncPgConnection,
    active_key_id: &str,
    limit: i64,
) -> QueryResult<Vec<FactorRow>> {
    totp_factors::table
        .filter(totp_factors::key_id.ne(active_key_id))
        .order((totp_factors::tenant_id, totp_factors::factor_id))
        .limit(limit)
        .select(FactorRow::as_select())
        .load(conn)
        .await
}

/// Replaces one ciphertext if it is still under `old_key_id` (a concurrent re-enrollment
/// or rotation wins; this then changes nothing).
pub async fn reseal(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
    old_key_id: &str,
    sealed: &Sealed,
) -> QueryResult<bool> {
    diesel::update(
        totp_factors::table
            .find((tenant_id, factor_id))
            .filter(totp_factors::key_id.eq(old_key_id)),
    )
    .set((
        totp_factors::key_id.eq(&sealed.key_id),
        totp_factors::nonce.eq(&sealed.nonce),
        totp_factors::ciphertext.eq(&sealed.ciphertext),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
