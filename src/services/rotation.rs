//! `encryption-keys rotate`: re-encrypts every TOTP secret and webhook secret under the
//! active key, in batches.
//! Each secret is rewritten by one conditional UPDATE (only if still under its old key), so
//! the command is safe while the service runs and safe to re-run after a crash.

use diesel_async::AsyncPgConnection;

use crate::crypto::keyring::{totp_secret_aad, KeyRing};
use crate::crypto::webhook::secret_aad;
use crate::db;

/// Returns how many secrets were re-encrypted.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    batch_size: u32,
) -> anyhow::Result<u64> {
    let active = ring.active_key_id().to_owned();
    let limit = i64::from(batch_size.clamp(1, 10_000));
    let mut done = 0;
    loop {
        let batch = db::factors::not_under_key(conn, &active, limit).await?;
        if batch.is_empty() {
            return Ok(done + rotate_webhooks(conn, ring, limit).await?);
        }
        for f in batch {
            // A WebAuthn factor has no secret (and `not_under_key` finds none).
            let (Some(key_id), Some(nonce), Some(ciphertext)) =
                (&f.key_id, &f.nonce, &f.ciphertext)
            else {
                continue;
            };
            let aad = totp_secret_aad(f.tenant_id.as_str(), f.user_id.as_str(), f.factor_id.0);
            let secret = ring.open(key_id, nonce, ciphertext, &aad).map_err(|e| {
                anyhow::anyhow!(
                    "factor {} of tenant {}: {e} (is key {:?} in MFA_ENCRYPTION_KEYS?)",
                    f.factor_id,
                    f.tenant_id,
                    key_id
                )
            })?;
            let sealed = ring.seal(secrecy::ExposeSecret::expose_secret(&secret), &aad)?;
            if db::factors::reseal(conn, &f.tenant_id, f.factor_id, key_id, &sealed).await? {
                done += 1;
            }
        }
    }
}

/// The webhook secrets, current and previous; returns how many were re-encrypted.
async fn rotate_webhooks(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    limit: i64,
) -> anyhow::Result<u64> {
    let active = ring.active_key_id().to_owned();
    let mut done = 0;
    loop {
        let batch = db::webhooks::not_under_key(conn, &active, limit).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for w in batch {
            let aad = secret_aad(w.tenant_id.as_str(), w.webhook_id.0);
            let reseal = |kid: &str, nonce: &[u8], ct: &[u8]| -> anyhow::Result<_> {
                let secret = ring.open(kid, nonce, ct, &aad).map_err(|e| {
                    anyhow::anyhow!(
                        "webhook {} of tenant {}: {e} (is key {kid:?} in MFA_ENCRYPTION_KEYS?)",
                        w.webhook_id,
                        w.tenant_id
                    )
                })?;
                Ok(ring.seal(secrecy::ExposeSecret::expose_secret(&secret), &aad)?)
            };
            if w.key_id != active {
                let sealed = reseal(&w.key_id, &w.nonce, &w.ciphertext)?;
                done += u64::from(db::webhooks::reseal(conn, &w, &sealed).await?);
            }
            if let (Some(kid), Some(nonce), Some(ct)) = (
                &w.previous_key_id,
                &w.previous_nonce,
                &w.previous_ciphertext,
            ) {
                if *kid != active {
                    let sealed = reseal(kid, nonce, ct)?;
                    done += u64::from(db::webhooks::reseal_previous(conn, &w, &sealed).await?);
                }
            }
        }
    }
}
