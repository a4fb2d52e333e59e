//! `totp_factors`: encrypted TOTP secrets, pending until confirmed, then active. Every
//! lookup names the tenant and the user (index `totp_factors_by_user`), and the replay guard
//! is `mfa_consume_step` (one conditional UPDATE, defined once in the migrations).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{mfa_consume_step, totp_factors};
use crate::crypto::keyring::Sealed;
use crate::domain::ids::{FactorId, FactorStatus, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors, check_for_backend(diesel::pg::Pg))]
pub struct FactorRow {
    pub factor_id: FactorId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The user's factors: the prefix of `totp_factors_by_user`, so a lookup costs the same in
/// a tenant of ten users or of a million, with or without planner statistics.
#[diesel::dsl::auto_type]
fn of_user<'a>(tenant_id: &'a TenantId, user_id: &'a UserId) -> _ {
    totp_factors::tenant_id
        .eq(tenant_id)
        .and(totp_factors::user_id.eq(user_id))
}

/// The user's factor in `status`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    status: FactorStatus,
) -> QueryResult<Option<FactorRow>> {
    totp_factors::table
        .filter(of_user(tenant_id, user_id))
        .filter(totp_factors::status.eq(status))
        .select(FactorRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores a new pending factor, discarding the previous pending one.
#[allow(clippy::too_many_arguments)]
pub async fn replace_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    sealed: &Sealed,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(
        totp_factors::table
            .filter(of_user(tenant_id, user_id))
            .filter(totp_factors::status.eq(FactorStatus::Pending)),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(totp_factors::table)
        .values((
            totp_factors::tenant_id.eq(tenant_id),
            totp_factors::factor_id.eq(factor_id),
            totp_factors::user_id.eq(user_id),
            totp_factors::status.eq(FactorStatus::Pending),
            totp_factors::key_id.eq(&sealed.key_id),
            totp_factors::nonce.eq(&sealed.nonce),
            totp_factors::ciphertext.eq(&sealed.ciphertext),
            totp_factors::created_at.eq(now),
            totp_factors::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Makes the pending factor the user's active one, replacing any previous active factor
/// (whose recovery codes go with it). The confirming code's step counts as used.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::delete(
        totp_factors::table
            .filter(of_user(tenant_id, user_id))
            .filter(totp_factors::status.eq(FactorStatus::Active)),
    )
    .execute(conn)
    .await?;
    diesel::update(
        totp_factors::table
            .filter(of_user(tenant_id, user_id))
            .filter(totp_factors::factor_id.eq(factor_id))
            .filter(totp_factors::status.eq(FactorStatus::Pending)),
    )
    .set((
        totp_factors::status.eq(FactorStatus::Active),
        totp_factors::activated_at.eq(now),
        totp_factors::expires_at.eq(None::<DateTime<Utc>>),
        totp_factors::last_used_step.eq(step),
        totp_factors::last_used_at.eq(now),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// The replay guard: records `step` as used only if it is later than the last used step.
/// False means the code (or an earlier one) was already used.
pub async fn consume_step(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    step: i64,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(mfa_consume_step(tenant_id, user_id, factor_id, step, now))
        .get_result(conn)
        .await
}

/// Removes the user's active and pending factors (and, by cascade, recovery codes).
/// Returns how many active factors went.
pub async fn delete_for_user(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<usize> {
    let gone: Vec<FactorStatus> =
        diesel::delete(totp_factors::table.filter(of_user(tenant_id, user_id)))
            .returning(totp_factors::status)
            .get_results(conn)
            .await?;
    Ok(gone.iter().filter(|s| **s == FactorStatus::Active).count())
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
