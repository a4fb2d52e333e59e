//! `users`: the users this service has seen, with the lockout counters of their second
//! factor. A sign-in writes the row only when something the primary account system says about
//! the user changed; lockout changes happen while the row is locked (`lock_for_attempt`), so
//! every instance sees them in order, and the schedule itself is `domain::lockout`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{mfa_reset_lockout, tenants, totp_factors, users};
use super::tenants::TenantRow;
use crate::domain::ids::{FactorId, FactorStatus, IdentityProvider, TenantId, UserId};
use crate::domain::lockout::LockoutState;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    pub display_name: Option<String>,
    pub identity_provider: IdentityProvider,
    pub roles: Vec<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// What the primary account system says about a user at sign-in.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct UserUpsert<'a> {
    pub tenant_id: &'a TenantId,
    pub user_id: &'a UserId,
    pub email: &'a str,
    pub display_name: Option<&'a str>,
    pub identity_provider: IdentityProvider,
    pub roles: &'a [String],
}

impl UserUpsert<'_> {
    fn matches(&self, row: &UserRow) -> bool {
        row.email == self.email
            && row.display_name.as_deref() == self.display_name
            && row.identity_provider == self.identity_provider
            && row.roles == self.roles
    }
}

/// Creates the user on first sight; later sign-ins rewrite the row only when the e-mail,
/// name, provider or roles changed. `stored` is the row as read (`sign_in_context`).
pub async fn sync(
    conn: &mut AsyncPgConnection,
    stored: Option<UserRow>,
    u: &UserUpsert<'_>,
    now: DateTime<Utc>,
) -> QueryResult<UserRow> {
    let key = (u.tenant_id, u.user_id);
    match stored {
        Some(row) if u.matches(&row) => Ok(row),
        Some(_) => {
            diesel::update(users::table.find(key))
                .set(u)
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await
        }
        None => {
            diesel::insert_into(users::table)
                .values((u, users::created_at.eq(now)))
                .on_conflict((users::tenant_id, users::user_id))
                .do_update()
                .set(u)
                .returning(UserRow::as_returning())
                .get_result(conn)
                .await
        }
    }
}

/// What the start of a sign-in reads, in one statement: the tenant (its policy), the user
/// and whether they have an active factor. `None` when the tenant is new. Each join goes
/// through a whole key (tenant; tenant + user; tenant + user for the factors). Takes the
/// connection shared, so that it can go out together with the transaction's `BEGIN`.
pub async fn sign_in_context(
    mut conn: &AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Option<(TenantRow, Option<UserRow>, Option<FactorId>)>> {
    // Owned binds: a join's ON clause may not borrow (diesel-async wants 'static there).
    let user = users::table.on(users::tenant_id
        .eq(tenants::tenant_id)
        .and(users::user_id.eq(user_id.clone())));
    let active = totp_factors::table.on(totp_factors::tenant_id
        .eq(tenants::tenant_id)
        .and(totp_factors::user_id.eq(user_id.clone()))
        .and(totp_factors::status.eq(FactorStatus::Active)));
    type Found = (
        TenantRow,
        Option<String>,
        Option<String>,
        Option<IdentityProvider>,
        Option<Vec<String>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<FactorId>,
    );
    let found: Option<Found> = tenants::table
        .left_join(user)
        .left_join(active)
        .filter(tenants::tenant_id.eq(tenant_id.clone()))
        .select((
            TenantRow::as_select(),
            users::email.nullable(),
            users::display_name.nullable(),
            users::identity_provider.nullable(),
            users::roles.nullable(),
            users::last_login_at.nullable(),
            users::locked_until.nullable(),
            totp_factors::factor_id.nullable(),
        ))
        .first(&mut conn)
        .await
        .optional()?;
    Ok(found.map(
        |(t, email, display_name, idp, roles, last_login_at, locked_until, f)| {
            let user = match (email, idp, roles) {
                (Some(email), Some(identity_provider), Some(roles)) => Some(UserRow {
                    tenant_id: tenant_id.clone(),
                    user_id: user_id.clone(),
                    email,
                    display_name,
                    identity_provider,
                    roles,
                    last_login_at,
                    locked_until,
                }),
                _ => None,
            };
            (t, user, f)
        },
    ))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Option<UserRow>> {
    users::table
        .find((tenant_id, user_id))
        .select(UserRow::as_select())
        .get_result(conn)
        .await
        .optional()
}

/// Locks the user's row against every other lock, a foreign key's included, before the user
/// is erased: every other path then queues at its first touch of the user, before it holds
/// any other row of theirs (the one lock order). Whether the user exists.
pub async fn lock_to_delete(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<bool> {
    let read = users::table
        .find((tenant_id, user_id))
        .select(users::user_id)
        .for_update();
    super::locked::<UserId, _>(conn, read).await
}

/// Locks the user's row for the rest of the transaction, so attempts of one user are
/// evaluated one at a time across all instances; returns the lockout state.
pub async fn lock_for_attempt(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Option<LockoutState>> {
    let row: Option<(i32, i32, Option<DateTime<Utc>>)> = users::table
        .find((tenant_id, user_id))
        .select((
            users::failed_attempts,
            users::lockout_count,
            users::locked_until.nullable(),
        ))
        .for_no_key_update()
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(failed_attempts, lockout_count, locked_until)| LockoutState {
            failed_attempts,
            lockout_count,
            locked_until,
        },
    ))
}

/// Stores the lockout state `domain::lockout` computed for a wrong code. The caller holds
/// the row locked (`lock_for_attempt` or the login's locking read), so the state it read is
/// still the stored one.
pub async fn store_lockout(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    s: &LockoutState,
) -> QueryResult<()> {
    diesel::update(users::table.find((tenant_id, user_id)))
        .set((
            users::failed_attempts.eq(s.failed_attempts),
            users::lockout_count.eq(s.lockout_count),
            users::locked_until.eq(s.locked_until),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A proof accepted or an admin unlock (the rule is `mfa_reset_lockout`). With `signed_in`
/// the sign-in's time is stored in the same write (one UPDATE of the row per sign-in) and
/// the answer is `None`; otherwise whether the user was locked at `now` (`None`: no such
/// user).
pub async fn reset_lockout(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: DateTime<Utc>,
    signed_in: bool,
) -> QueryResult<Option<bool>> {
    diesel::select(mfa_reset_lockout(tenant_id, user_id, now, signed_in))
        .get_result(conn)
        .await
}

pub async fn touch_login(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(users::table.find((tenant_id, user_id)))
        .set(users::last_login_at.eq(now))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Erases the user with their factors, recovery codes and logins (cascades).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<bool> {
    diesel::delete(users::table.find((tenant_id, user_id)))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// A user of the listing, with their active factors' count and the first's activation.
#[derive(Debug)]
pub struct ListedUser {
    pub user_id: UserId,
    pub email: String,
    pub identity_provider: IdentityProvider,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub factors: i64,
    pub last_login_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub grace_started_at: Option<DateTime<Utc>>,
}

/// The users listing's grace filters (docs/API.md §13), for a policy that requires a factor of
/// users whose identity provider is not in `exempt`: users without an active factor whose
/// grace started after `cutoff` (`now - enrollment_grace_days`: running) or at or before it
/// (ended).
pub enum GraceFilter<'a> {
    InGrace {
        exempt: &'a [String],
        cutoff: DateTime<Utc>,
    },
    Overdue {
        exempt: &'a [String],
        cutoff: DateTime<Utc>,
    },
}

/// Users ordered by id after `after` (keyset on the primary key, so a page costs a page);
/// `enrolled` filters on an active factor (`EXISTS`, so several factors are still one row).
/// One statement per filter combination (boxed), so each prepared plan fits its filters; a
/// second statement counts the page's factors.
pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    enrolled: Option<bool>,
    grace: Option<GraceFilter<'_>>,
    after: Option<&UserId>,
    limit: i64,
) -> QueryResult<Vec<ListedUser>> {
    let has_active = || {
        diesel::dsl::exists(
            totp_factors::table
                .filter(totp_factors::tenant_id.eq(users::tenant_id))
                .filter(totp_factors::user_id.eq(users::user_id))
                .filter(totp_factors::status.eq(FactorStatus::Active)),
        )
    };
    let mut q = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .select((
            users::user_id,
            users::email,
            users::identity_provider,
            users::last_login_at.nullable(),
            users::locked_until.nullable(),
            users::grace_started_at,
        ))
        .order(users::user_id)
        .limit(limit)
        .into_boxed();
    match enrolled {
        Some(true) => q = q.filter(has_active()),
        Some(false) => q = q.filter(diesel::dsl::not(has_active())),
        None => {}
    }
    match grace {
        Some(GraceFilter::InGrace { exempt, cutoff }) => {
            q = q
                .filter(diesel::dsl::not(has_active()))
                .filter(users::identity_provider.ne_all(exempt.to_vec()))
                .filter(users::grace_started_at.gt(cutoff));
        }
        Some(GraceFilter::Overdue { exempt, cutoff }) => {
            q = q
                .filter(diesel::dsl::not(has_active()))
                .filter(users::identity_provider.ne_all(exempt.to_vec()))
                .filter(users::grace_started_at.le(cutoff));
        }
        None => {}
    }
    if let Some(after) = after {
        q = q.filter(users::user_id.gt(after));
    }
    type Row = (
        UserId,
        String,
        IdentityProvider,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = q.load(conn).await?;
    let ids: Vec<&UserId> = rows.iter().map(|r| &r.0).collect();
    let counts: Vec<(UserId, i64, Option<DateTime<Utc>>)> = totp_factors::table
        .filter(totp_factors::tenant_id.eq(tenant_id))
        .filter(totp_factors::user_id.eq_any(ids))
        .filter(totp_factors::status.eq(FactorStatus::Active))
        .group_by(totp_factors::user_id)
        .select((
            totp_factors::user_id,
            diesel::dsl::count(totp_factors::factor_id),
            diesel::dsl::min(totp_factors::activated_at),
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(user_id, email, identity_provider, last_login_at, locked_until, grace_started_at)| {
                let c = counts.iter().find(|c| c.0 == user_id);
                ListedUser {
                    enrolled_at: c.and_then(|c| c.2),
                    factors: c.map_or(0, |c| c.1),
                    user_id,
                    email,
                    identity_provider,
                    last_login_at,
                    locked_until,
                    grace_started_at,
                }
            },
        )
        .collect())
}
