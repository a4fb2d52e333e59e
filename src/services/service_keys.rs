//! Service keys for trusted backends: created, listed and revoked with the CLI.

use chrono::Utc;
use uuid::Uuid;

use crate::crypto::hashing::{HashKey, HashPurpose};
use crate::crypto::tokens;
use crate::db::{self, service_keys::ServiceKeyRow, PgConn};
use crate::domain::ids::TenantId;

/// Creates a key and returns it: the only time it is seen in clear.
#[tracing::instrument(skip_all)]
pub async fn create(
    conn: &mut PgConn,
    hash_key: &HashKey,
    name: &str,
    tenants: &[TenantId],
) -> anyhow::Result<(Uuid, String)> {
    anyhow::ensure!(
        !name.trim().is_empty() && name.len() <= 100,
        "--name must be 1-100 characters"
    );
    let key = tokens::new_service_key();
    let id = Uuid::new_v4();
    let scope: Option<Vec<String>> =
        (!tenants.is_empty()).then(|| tenants.iter().map(|t| t.as_str().to_owned()).collect());
    let hash = hash_key.hash(HashPurpose::ServiceKey, key.as_bytes());
    db::service_keys::insert(conn, id, name.trim(), &hash, scope.as_deref(), Utc::now()).await?;
    Ok((id, key))
}

#[tracing::instrument(skip_all)]
pub async fn list(conn: &mut PgConn) -> anyhow::Result<Vec<ServiceKeyRow>> {
    Ok(db::service_keys::list(conn).await?)
}

#[tracing::instrument(skip_all)]
pub async fn revoke(conn: &mut PgConn, id: Uuid) -> anyhow::Result<bool> {
    Ok(db::service_keys::revoke(conn, id, Utc::now()).await?)
}
