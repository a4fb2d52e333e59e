//! `remembered_devices` (docs/API.md §12): browsers a user asked us to remember. A device is
//! *live* while it is not revoked, not past `expires_at`, and created after the cut-off the
//! tenant's current `remember_device_days` implies (the caller computes it). Revocation sets
//! `revoked_at` and is final. Lookups go through the unique `token_hash`, the user's
//! `remembered_devices_by_user` index, or the primary key's tenant prefix.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::remembered_devices as rd;
use crate::domain::ids::{Surface, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rd, check_for_backend(diesel::pg::Pg))]
pub struct DeviceRow {
    pub device_id: Uuid,
    pub user_id: UserId,
    pub surface: Surface,
    pub name: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_ip: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = rd)]
pub struct NewDevice<'a> {
    pub tenant_id: &'a TenantId,
    pub device_id: Uuid,
    pub user_id: &'a UserId,
    pub surface: Surface,
    pub token_hash: &'a [u8],
    pub name: &'a str,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, d: &NewDevice<'_>) -> QueryResult<()> {
    diesel::insert_into(rd::table)
        .values(d)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The live device of this token, if it belongs to this tenant, user and surface.
pub async fn live_by_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    who: (&TenantId, &UserId, Surface),
    now: DateTime<Utc>,
    created_after: DateTime<Utc>,
) -> QueryResult<Option<DeviceRow>> {
    rd::table
        .filter(rd::token_hash.eq(token_hash))
        .filter(rd::tenant_id.eq(who.0))
        .filter(rd::user_id.eq(who.1))
        .filter(rd::surface.eq(who.2))
        .filter(rd::revoked_at.is_null())
        .filter(rd::expires_at.gt(now))
        .filter(rd::created_at.gt(created_after))
        .select(DeviceRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records a remembered sign-in from `ip`.
pub async fn touch(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    device_id: Uuid,
    now: DateTime<Utc>,
    ip: Option<&str>,
) -> QueryResult<()> {
    diesel::update(rd::table.find((tenant_id, device_id)))
        .set((rd::last_used_at.eq(now), rd::last_ip.eq(ip)))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The user's live devices, oldest first.
pub async fn live_for_user(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: DateTime<Utc>,
    created_after: DateTime<Utc>,
) -> QueryResult<Vec<DeviceRow>> {
    rd::table
        .filter(rd::tenant_id.eq(tenant_id))
        .filter(rd::user_id.eq(user_id))
        .filter(rd::revoked_at.is_null())
        .filter(rd::expires_at.gt(now))
        .filter(rd::created_at.gt(created_after))
        .order((rd::created_at, rd::device_id))
        .select(DeviceRow::as_select())
        .load(conn)
        .await
}

/// Revokes the user's unrevoked, unexpired devices (only `device_id` when given); returns
/// the ids revoked.
pub async fn revoke_for_user(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    device_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Uuid>> {
    let mut q = diesel::update(rd::table)
        .filter(rd::tenant_id.eq(tenant_id))
        .filter(rd::user_id.eq(user_id))
        .filter(rd::revoked_at.is_null())
        .filter(rd::expires_at.gt(now))
        .into_boxed();
    if let Some(id) = device_id {
        q = q.filter(rd::device_id.eq(id));
    }
    q.set(rd::revoked_at.eq(now))
        .returning(rd::device_id)
        .get_results(conn)
        .await
}

/// Revokes every unrevoked, unexpired device of the tenant; returns `(user, device)` pairs.
pub async fn revoke_for_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(UserId, Uuid)>> {
    diesel::update(rd::table)
        .filter(rd::tenant_id.eq(tenant_id))
        .filter(rd::revoked_at.is_null())
        .filter(rd::expires_at.gt(now))
        .set(rd::revoked_at.eq(now))
        .returning((rd::user_id, rd::device_id))
        .get_results(conn)
        .await
}
