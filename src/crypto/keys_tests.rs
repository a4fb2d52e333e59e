//! Tests for [`super`] (kept apart so `keys.rs` stays readable).

use super::*;

/// A data dir removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("mfa-keys-{}", uuid::Uuid::new_v4().simple())))
    }

    fn development(&self) -> KeySources<'_> {
        KeySources {
            development: true,
            data_dir: &self.0,
            encryption_keys: None,
            hash_key: None,
            signing_keys: &[],
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn production_without_keys_names_the_variable() {
    let dir = Dir::new();
    let s = KeySources {
        development: false,
        ..dir.development()
    };
    let err = KeyMaterial::load(s).unwrap_err().to_string();
    assert!(err.contains("MFA_ENCRYPTION_KEYS"), "{err}");
    assert!(!dir.0.exists(), "nothing may be generated in production");
}

#[test]
fn operator_commands_find_the_keys_or_say_where_they_looked() {
    let dir = Dir::new();
    let err = format!(
        "{:#}",
        KeyMaterial::load_existing(dir.development()).unwrap_err()
    );
    assert!(err.contains(&dir.0.display().to_string()), "{err}");
    assert!(!dir.0.exists(), "nothing may be generated");
    let made = KeyMaterial::load(dir.development()).unwrap();
    let found = KeyMaterial::load_existing(dir.development()).unwrap();
    assert_eq!(made.signing.active_kid(), found.signing.active_kid());
    assert_eq!(made.keyring.key_ids(), found.keyring.key_ids());
}

#[test]
fn development_keys_are_generated_once_and_reused() {
    let dir = Dir::new();
    let a = KeyMaterial::load(dir.development()).unwrap();
    let b = KeyMaterial::load(dir.development()).unwrap();
    assert_eq!(a.keyring.key_ids(), b.keyring.key_ids());
    assert_eq!(a.signing.active_kid(), b.signing.active_kid());
    let sealed = a.keyring.seal(b"x", b"aad").unwrap();
    assert!(b
        .keyring
        .open(&sealed.key_id, &sealed.nonce, &sealed.ciphertext, b"aad")
        .is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("hash-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn processes_starting_together_on_one_data_dir_agree_on_the_keys() {
    let dir = Dir::new();
    let gate = &std::sync::Barrier::new(8);
    let loaded: Vec<KeyMaterial> = std::thread::scope(|s| {
        let dir = &dir;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(move || {
                    gate.wait();
                    KeyMaterial::load(dir.development())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect()
    });
    let secret = loaded[0].keyring.seal(b"x", b"aad").unwrap();
    for k in &loaded {
        assert_eq!(k.signing.active_kid(), loaded[0].signing.active_kid());
        assert!(k
            .keyring
            .open(&secret.key_id, &secret.nonce, &secret.ciphertext, b"aad")
            .is_ok());
        assert_eq!(
            k.hash_key
                .hash(super::super::hashing::HashPurpose::ServiceKey, b"v"),
            loaded[0]
                .hash_key
                .hash(super::super::hashing::HashPurpose::ServiceKey, b"v"),
            "one hash key"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert_eq!(left.len(), 3, "no draft is left behind: {left:?}");
}
