//! `webauthn_credentials` and `webauthn_challenges` (docs/API.md §16): a WebAuthn factor's
//! credential (created with the pending factor, filled in at its confirmation, its counter and
//! backup flags kept current), a user's live challenges (one per purpose, taken — deleted — by
//! the transaction that checks the answer), and the user's WebAuthn user handle. Every lookup
//! names the tenant first. A credential id registers once per RP ID in every tenant: the
//! unique index `webauthn_credentials_credential_id_key` refuses [`register`] otherwise.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::schema::{users, webauthn_challenges, webauthn_credentials};
use crate::domain::ids::{FactorId, LoginId, TenantId, UserId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webauthn_credentials, check_for_backend(diesel::pg::Pg))]
pub struct CredentialRow {
    pub factor_id: FactorId,
    pub rp_id: String,
    pub credential_id: Option<Vec<u8>>,
    pub credential: Option<serde_json::Value>,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: Vec<String>,
    pub user_verified: bool,
}

/// What a challenge is for; one live challenge per user and purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A pending WebAuthn factor's registration (at sign-in or signed in).
    Registration,
    /// A sign-in's assertion (`webauthn-challenge`).
    SignIn,
    /// A signed-in user's re-authentication (§17).
    Reauthentication,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Registration => "registration",
            Purpose::SignIn => "sign_in",
            Purpose::Reauthentication => "reauthentication",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webauthn_challenges, check_for_backend(diesel::pg::Pg))]
pub struct ChallengeRow {
    pub rp_id: String,
    pub login_id: Option<LoginId>,
    pub factor_id: Option<FactorId>,
    pub state: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// The user's credentials (pending ones too), through `webauthn_credentials_by_user`.
pub async fn of_user(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
) -> QueryResult<Vec<CredentialRow>> {
    webauthn_credentials::table
        .filter(webauthn_credentials::tenant_id.eq(tenant_id))
        .filter(webauthn_credentials::user_id.eq(user_id))
        .select(CredentialRow::as_select())
        .load(conn)
        .await
}

/// The credential row of a new pending factor.
pub async fn insert_pending(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    factor_id: FactorId,
    rp_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(webauthn_credentials::table)
        .values((
            webauthn_credentials::tenant_id.eq(tenant_id),
            webauthn_credentials::factor_id.eq(factor_id),
            webauthn_credentials::user_id.eq(user_id),
            webauthn_credentials::rp_id.eq(rp_id),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A registered credential, as its registration showed it.
pub struct Registered<'a> {
    pub credential_id: &'a [u8],
    pub credential: serde_json::Value,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub transports: &'a [String],
    pub user_verified: bool,
}

/// Fills in the pending factor's credential; a unique violation when its id is registered
/// under this RP ID already (by anyone, in any tenant).
pub async fn register(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
    r: Registered<'_>,
) -> QueryResult<bool> {
    diesel::update(webauthn_credentials::table.find((tenant_id, factor_id)))
        .set((
            webauthn_credentials::credential_id.eq(r.credential_id),
            webauthn_credentials::credential.eq(r.credential),
            webauthn_credentials::counter.eq(r.counter),
            webauthn_credentials::backup_eligible.eq(r.backup_eligible),
            webauthn_credentials::backed_up.eq(r.backed_up),
            webauthn_credentials::transports.eq(r.transports),
            webauthn_credentials::user_verified.eq(r.user_verified),
        ))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// An accepted assertion: the counter it showed and the backup state now.
pub async fn record_use(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    factor_id: FactorId,
    counter: i64,
    backed_up: bool,
) -> QueryResult<()> {
    diesel::update(webauthn_credentials::table.find((tenant_id, factor_id)))
        .set((
            webauthn_credentials::counter.eq(counter),
            webauthn_credentials::backed_up.eq(backed_up),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The user's WebAuthn user handle, made (from `fresh`) on first use and kept. The caller
/// holds the user's row lock.
pub async fn user_handle(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    fresh: &[u8],
) -> QueryResult<Vec<u8>> {
    let current: Option<Vec<u8>> = users::table
        .find((tenant_id, user_id))
        .select(users::webauthn_user_handle)
        .get_result(conn)
        .await?;
    if let Some(h) = current {
        return Ok(h);
    }
    diesel::update(users::table.find((tenant_id, user_id)))
        .set(users::webauthn_user_handle.eq(fresh))
        .execute(conn)
        .await?;
    Ok(fresh.to_vec())
}

/// Stores a challenge, replacing the user's live one of the same purpose.
#[allow(clippy::too_many_arguments)]
pub async fn put_challenge(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    purpose: Purpose,
    rp_id: &str,
    login_id: Option<LoginId>,
    factor_id: Option<FactorId>,
    state: &serde_json::Value,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    use webauthn_challenges as c;
    diesel::insert_into(c::table)
        .values((
            c::tenant_id.eq(tenant_id),
            c::user_id.eq(user_id),
            c::purpose.eq(purpose.as_str()),
            c::rp_id.eq(rp_id),
            c::login_id.eq(login_id),
            c::factor_id.eq(factor_id),
            c::state.eq(state),
            c::expires_at.eq(expires_at),
        ))
        .on_conflict((c::tenant_id, c::user_id, c::purpose))
        .do_update()
        .set((
            c::rp_id.eq(rp_id),
            c::login_id.eq(login_id),
            c::factor_id.eq(factor_id),
            c::state.eq(state),
            c::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Takes (deletes) the user's live challenge of `purpose`, whatever comes of its answer.
pub async fn take_challenge(
    conn: &mut AsyncPgConnection,
    tenant_id: &TenantId,
    user_id: &UserId,
    purpose: Purpose,
) -> QueryResult<Option<ChallengeRow>> {
    use webauthn_challenges as c;
    diesel::delete(c::table.find((tenant_id, user_id, purpose.as_str())))
        .returning(ChallengeRow::as_returning())
        .get_result(conn)
        .await
        .optional()
}
