//! Loading the key material the service runs with (docs/API.md §9): the encryption key
//! ring, the hash key and the Ed25519 signing keys, from the configured values or, in
//! development, from files generated once under `MFA_DATA_DIR`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use super::{hashing::HashKey, jwt::SigningKeys, keyring::KeyRing};

/// Where the keys come from: the configured values, and whether missing ones may come from
/// the development files under `data_dir` (never in production).
#[derive(Debug, Clone, Copy)]
pub struct KeySources<'a> {
    pub development: bool,
    pub data_dir: &'a Path,
    pub encryption_keys: Option<&'a SecretString>,
    pub hash_key: Option<&'a SecretString>,
    pub signing_keys: &'a [PathBuf],
}

/// The keys the running service needs, parsed once at start-up.
pub struct KeyMaterial {
    pub keyring: KeyRing,
    pub hash_key: HashKey,
    pub signing: SigningKeys,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("keyring", &self.keyring)
            .field("hash_key", &"[redacted]")
            .field("signing", &self.signing)
            .finish()
    }
}

impl KeyMaterial {
    /// Reads the configured keys. In development a missing key is generated once under the
    /// data dir and reused (so a restart keeps stored secrets readable); in production it
    /// is an error naming the variable.
    pub fn load<'a>(s: impl Into<KeySources<'a>>) -> anyhow::Result<Self> {
        Self::load_with(s.into(), true)
    }

    /// As [`load`](Self::load) but never generates: the operator commands must use the
    /// keys the service uses, so a missing development key is an error naming where it was
    /// looked for (a second key set would make keys and secrets the service rejects).
    pub fn load_existing<'a>(s: impl Into<KeySources<'a>>) -> anyhow::Result<Self> {
        Self::load_with(s.into(), false)
    }

    fn load_with(s: KeySources<'_>, generate: bool) -> anyhow::Result<Self> {
        let dev_file =
            |name: &str, make: fn() -> String| dev_file(s.data_dir, name, generate.then_some(make));
        let ring_spec = match (s.encryption_keys, s.development) {
            (Some(v), _) => v.expose_secret().to_owned(),
            (None, true) => dev_file("encryption-keys", || KeyRing::generate_spec("dev1"))?,
            (None, false) => {
                anyhow::bail!("MFA_ENCRYPTION_KEYS is required when MFA_ENV=production")
            }
        };
        let keyring =
            KeyRing::parse(&ring_spec).map_err(|e| anyhow::anyhow!("MFA_ENCRYPTION_KEYS: {e}"))?;
        let hash_b64 = match (s.hash_key, s.development) {
            (Some(v), _) => v.expose_secret().to_owned(),
            (None, true) => dev_file("hash-key", HashKey::generate_b64)?,
            (None, false) => anyhow::bail!("MFA_HASH_KEY is required when MFA_ENV=production"),
        };
        let hash_key =
            HashKey::parse(hash_b64.trim()).map_err(|e| anyhow::anyhow!("MFA_HASH_KEY: {e}"))?;
        let paths = match (s.signing_keys.is_empty(), s.development) {
            (false, _) => s.signing_keys.to_vec(),
            (true, true) => {
                dev_file("signing-key.pem", super::jwt::generate_pem)?;
                vec![s.data_dir.join("signing-key.pem")]
            }
            (true, false) => anyhow::bail!("MFA_SIGNING_KEYS is required when MFA_ENV=production"),
        };
        let signing = SigningKeys::from_pem_files(&paths).context("MFA_SIGNING_KEYS")?;
        Ok(Self {
            keyring,
            hash_key,
            signing,
        })
    }
}

/// Returns the content of `dir/name`, creating it (mode 0600) with `make()` the first time;
/// without `make`, a missing file is an error that says where it looked. Processes starting
/// together on one data dir agree on one key: the first link wins, the others read it.
fn dev_file(
    dir: &Path,
    name: &str,
    make: Option<impl FnOnce() -> String>,
) -> anyhow::Result<String> {
    let path = dir.join(name);
    if let Some(found) = read_if_present(&path)? {
        return Ok(found);
    }
    let Some(make) = make else {
        anyhow::bail!(
            "no development key at {} (MFA_DATA_DIR={}): start the service once with this \
             MFA_DATA_DIR (`mspbots-mfa serve` generates the keys), or set MFA_DATA_DIR to the \
             directory the service uses, or configure the keys (MFA_ENCRYPTION_KEYS, \
             MFA_HASH_KEY, MFA_SIGNING_KEYS)",
            std::path::absolute(&path).unwrap_or(path.clone()).display(),
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let value = make();
    // Written whole under a private name, then linked into place: a reader never sees half
    // a key, and a link fails rather than replace another process's key.
    let draft = dir.join(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    write_private(&draft, &value)?;
    let linked = std::fs::hard_link(&draft, &path);
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => {
            tracing::warn!(file = %path.display(), "generated a development key; set MFA_ENV=production with real keys in production");
            Ok(value)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_if_present(&path)?
            .with_context(|| format!("{} vanished while it was created", path.display())),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

fn read_if_present(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a file readable by its owner only; fails if it already exists.
pub fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
