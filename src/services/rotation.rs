//! `encryption-keys rotate`: re-encrypts every TOTP secret under the active key, in batches.
//! Each secret is rewritten by one conditional UPDATE (only if still under its old key), so
//! the command is safe while the service runs and safe to re-run after a crash.

use diesel_async::AsyncPgConnection;

use crate::crypto::keyring::{totp_secret_aad, KeyRing};
use crate::db;

/// Returns how many secrets were re-encrypted.
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
            return Ok(done);
        }
        for f in batch {
            let aad = totp_secret_aad(f.tenant_id.as_str(), f.user_id.as_str(), f.factor_id.0);
            let secret = ring
                .open(&f.key_id, &f.nonce, &f.ciphertext, &aad)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "factor {} of tenant {}: {e} (is key {:?} in MFA_ENCRYPTION_KEYS?)",
                        f.factor_id,
                        f.tenant_id,
                        f.key_id
                    )
                })?;
            let sealed = ring.seal(secrecy::ExposeSecret::expose_secret(&secret), &aad)?;
            if db::factors::reseal(conn, &f.tenant_id, f.factor_id, &f.key_id, &sealed).await? {
                done += 1;
            }
        }
    }
}
