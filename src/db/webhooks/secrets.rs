//! The webhook secrets: a rotation (the current secret kept, sealed, for the overlap) and
//! the re-sealing of `encryption-keys rotate`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::WebhookRow;
use crate::crypto::keyring::Sealed;
use crate::db::schema::webhooks as w;

/// A new secret; the current one stays valid (sealed) until `previous_until`.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    current: &WebhookRow,
    sealed: &Sealed,
    previous_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(w::table.find((&current.tenant_id, current.webhook_id)))
        .set((
            w::key_id.eq(&sealed.key_id),
            w::nonce.eq(&sealed.nonce),
            w::ciphertext.eq(&sealed.ciphertext),
            w::previous_key_id.eq(&current.key_id),
            w::previous_nonce.eq(&current.nonce),
            w::previous_ciphertext.eq(&current.ciphertext),
            w::previous_expires_at.eq(previous_until),
            w::updated_at.eq(now),
        ))
        .execute(conn)
        .await
}

/// Webhooks with a secret (current or previous) not under the active key, for
/// `encryption-keys rotate`.
pub async fn not_under_key(
    conn: &mut AsyncPgConnection,
    active_key_id: &str,
    limit: i64,
) -> QueryResult<Vec<WebhookRow>> {
    w::table
        .filter(
            w::key_id
                .ne(active_key_id)
                .or(w::previous_key_id.ne(active_key_id)),
        )
        .order((w::tenant_id, w::webhook_id))
        .limit(limit)
        .select(WebhookRow::as_select())
        .load(conn)
        .await
}

/// Replaces the current secret's ciphertext if it is still under `old_key_id`.
pub async fn reseal(
    conn: &mut AsyncPgConnection,
    r: &WebhookRow,
    sealed: &Sealed,
) -> QueryResult<bool> {
    diesel::update(
        w::table
            .find((&r.tenant_id, r.webhook_id))
            .filter(w::key_id.eq(&r.key_id))
            .filter(w::nonce.eq(&r.nonce)),
    )
    .set((
        w::key_id.eq(&sealed.key_id),
        w::nonce.eq(&sealed.nonce),
        w::ciphertext.eq(&sealed.ciphertext),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}

/// Replaces the previous secret's ciphertext if it is still the one read.
pub async fn reseal_previous(
    conn: &mut AsyncPgConnection,
    r: &WebhookRow,
    sealed: &Sealed,
) -> QueryResult<bool> {
    diesel::update(
        w::table
            .find((&r.tenant_id, r.webhook_id))
            .filter(w::previous_key_id.eq(r.previous_key_id.as_deref()))
            .filter(w::previous_nonce.eq(r.previous_nonce.as_deref())),
    )
    .set((
        w::previous_key_id.eq(&sealed.key_id),
        w::previous_nonce.eq(&sealed.nonce),
        w::previous_ciphertext.eq(&sealed.ciphertext),
    ))
    .execute(conn)
    .await
    .map(|n| n == 1)
}
