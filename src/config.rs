//! Settings from environment variables and flags (API.md §9), and the key material they
//! point to. Secrets are `SecretString` and never reach `Debug` or a log line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::{hashing::HashKey, jwt::SigningKeys, keyring::KeyRing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_owned()))
}

fn skew(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(n) if n <= crate::domain::totp::MAX_SKEW => Ok(n),
        _ => Err("must be 0, 1, 2 or 3".into()),
    }
}

fn positive(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a positive whole number".into()),
    }
}

/// Every setting of the service; each flag is also an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Postgres URL; the database is created if missing and migrated at start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/mspbots_mfa",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,
    /// Listen address (port 0 picks a free port; the bound address is logged).
    #[arg(
        long = "bind",
        env = "MFA_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// In production missing keys are a start-up error; in development they are generated
    /// once under MFA_DATA_DIR.
    #[arg(
        long = "env",
        env = "MFA_ENV",
        value_enum,
        default_value = "development",
        global = true
    )]
    pub environment: Environment,
    /// Where development keys are kept.
    #[arg(
        long,
        env = "MFA_DATA_DIR",
        default_value = "./.mfa-dev",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Key ring for TOTP secrets: `id:base64(32 bytes)` entries, comma separated; the first is active.
    #[arg(long, env = "MFA_ENCRYPTION_KEYS", value_parser = secret, hide_env_values = true, global = true)]
    pub encryption_keys: Option<SecretString>,
    /// base64(32 bytes): key of the keyed hashes of recovery codes, mfa tokens and service keys.
    #[arg(long, env = "MFA_HASH_KEY", value_parser = secret, hide_env_values = true, global = true)]
    pub hash_key: Option<SecretString>,
    /// Ed25519 PKCS#8 PEM files, comma separated; the first signs, all are published.
    #[arg(long, env = "MFA_SIGNING_KEYS", value_delimiter = ',', global = true)]
    pub signing_keys: Vec<PathBuf>,
    /// The `iss` claim of access tokens.
    #[arg(long, env = "MFA_ISSUER", default_value = "mspbots-mfa", global = true)]
    pub issuer: String,
    /// The `aud` claim of tokens for the MSPbots app.
    #[arg(
        long,
        env = "MFA_AUDIENCE_APP",
        default_value = "mspbots-app",
        global = true
    )]
    pub audience_app: String,
    /// The `aud` claim of tokens for the Client Portal.
    #[arg(
        long,
        env = "MFA_AUDIENCE_PORTAL",
        default_value = "mspbots-portal",
        global = true
    )]
    pub audience_portal: String,
    /// Access token lifetime, seconds.
    #[arg(long, env = "MFA_ACCESS_TOKEN_TTL", default_value = "3600", value_parser = positive, global = true)]
    pub access_token_ttl: u32,
    /// TOTP time steps accepted either side of now (0-3).
    #[arg(long, env = "MFA_TOTP_SKEW", default_value = "1", value_parser = skew, global = true)]
    pub totp_skew: u8,
    /// Seconds an MFA sign-in counts as recent for step-up.
    #[arg(long, env = "MFA_STEP_UP_MAX_AGE", default_value = "300", value_parser = positive, global = true)]
    pub step_up_max_age: u32,
    /// Second-factor attempts per client IP per sliding minute, per instance.
    #[arg(long, env = "MFA_RATE_LIMIT_PER_MINUTE", default_value = "30", value_parser = positive, global = true)]
    pub rate_limit_per_minute: u32,
    /// Seconds an mfa token lives.
    #[arg(long, env = "MFA_LOGIN_TTL", default_value = "600", value_parser = positive, global = true)]
    pub login_ttl: u32,
    /// Allowed browser origins, comma separated.
    #[arg(long, env = "MFA_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    /// CIDRs whose X-Forwarded-For is believed for client IPs, comma separated.
    #[arg(long, env = "MFA_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr, global = true)]
    pub trusted_proxies: Vec<IpNet>,
    /// Database connections per instance.
    #[arg(long, env = "MFA_DB_POOL_SIZE", default_value = "16", value_parser = positive, global = true)]
    pub db_pool_size: u32,
    /// Milliseconds before Postgres cancels a statement.
    #[arg(long, env = "MFA_STATEMENT_TIMEOUT_MS", default_value = "5000", value_parser = positive, global = true)]
    pub statement_timeout_ms: u32,
    /// Milliseconds Postgres lets a statement wait for a row lock; short, so requests queued
    /// behind one stuck user give their connection back quickly (503).
    #[arg(long, env = "MFA_LOCK_TIMEOUT_MS", default_value = "2000", value_parser = positive, global = true)]
    pub lock_timeout_ms: u32,
    /// Milliseconds Postgres keeps a session that is idle inside a transaction (e.g. a
    /// frozen instance holding a row lock) before ending it.
    #[arg(long, env = "MFA_IDLE_IN_TRANSACTION_TIMEOUT_MS", default_value = "10000", value_parser = positive, global = true)]
    pub idle_in_transaction_timeout_ms: u32,
    /// The service's own deadline, in milliseconds, on a request's database work (pool
    /// checkout plus transaction): past it the request answers 503 and the connection is
    /// dropped. It holds when Postgres hangs and cannot enforce its own timeouts.
    #[arg(long, env = "MFA_DB_DEADLINE_MS", default_value = "6000", value_parser = positive, global = true)]
    pub db_deadline_ms: u32,
    /// Seconds to wait for a new database connection (TCP and start-up).
    #[arg(long, env = "MFA_DB_CONNECT_TIMEOUT", default_value = "5", value_parser = positive, global = true)]
    pub db_connect_timeout: u32,
    /// Seconds the service keeps retrying an unreachable database at start before exiting.
    #[arg(long, env = "MFA_DB_STARTUP_TIMEOUT", default_value = "60", value_parser = positive, global = true)]
    pub db_startup_timeout: u32,
    /// Milliseconds a client has to send a request body (408 after).
    #[arg(long, env = "MFA_BODY_TIMEOUT_MS", default_value = "10000", value_parser = positive, global = true)]
    pub body_timeout_ms: u32,
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("not a CIDR or IP address: {s}"))
}

impl Settings {
    /// Settings with every default, for tests and tools.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            s: Settings,
        }
        // Parse from an empty command line but ignore the environment, so defaults are the
        // documented ones whatever the caller's shell holds.
        let cmd = <P as clap::CommandFactory>::command();
        let cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let m = cmd.get_matches_from(["defaults"]);
        <P as clap::FromArgMatches>::from_arg_matches(&m)
            .map(|p| p.s)
            .unwrap_or_else(|e| e.exit())
    }

    pub fn audience(&self, surface: crate::domain::ids::Surface) -> &str {
        match surface {
            crate::domain::ids::Surface::App => &self.audience_app,
            crate::domain::ids::Surface::Portal => &self.audience_portal,
        }
    }
}

/// The environment variables the settings read, from the CLI definition itself.
pub fn variables() -> Vec<String> {
    #[derive(clap::Parser)]
    struct P {
        #[command(flatten)]
        s: Settings,
    }
    <P as clap::CommandFactory>::command()
        .get_arguments()
        .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_owned))
        .chain(["RUST_LOG".to_owned()])
        .collect()
}

/// Parses a `--config FILE` TOML whose keys are the environment variables in lower case
/// (`mfa_bind = "0.0.0.0:8080"`, `mfa_cors_origins = ["https://a", "https://b"]`) into
/// `(VARIABLE, value)` pairs. An unknown key is an error, so a typo is not silently ignored.
pub fn config_file_vars(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
    let known = variables();
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    table
        .iter()
        .map(|(key, value)| {
            let var = key.to_ascii_uppercase();
            anyhow::ensure!(
                known.contains(&var) && key == &var.to_ascii_lowercase(),
                "unknown setting {key:?}"
            );
            let text = match value {
                toml::Value::Array(items) => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.join(",")),
                other => scalar(other),
            };
            let text = text.with_context(|| {
                format!("{key}: must be a string, number, boolean or a list of them")
            })?;
            Ok((var, text))
        })
        .collect()
}

/// Loads a config file under the environment: a variable already set (or a flag) wins.
/// Runs before any thread starts, so setting the process environment is sound.
pub fn apply_config_file(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --config {}", path.display()))?;
    for (var, value) in
        config_file_vars(&text).with_context(|| format!("--config {}", path.display()))?
    {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(())
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
    pub fn load(s: &Settings) -> anyhow::Result<Self> {
        let dev = s.environment == Environment::Development;
        let ring_spec = match (&s.encryption_keys, dev) {
            (Some(v), _) => v.expose_secret().to_owned(),
            (None, true) => dev_file(&s.data_dir, "encryption-keys", || {
                KeyRing::generate_spec("dev1")
            })?,
            (None, false) => {
                anyhow::bail!("MFA_ENCRYPTION_KEYS is required when MFA_ENV=production")
            }
        };
        let keyring =
            KeyRing::parse(&ring_spec).map_err(|e| anyhow::anyhow!("MFA_ENCRYPTION_KEYS: {e}"))?;
        let hash_b64 = match (&s.hash_key, dev) {
            (Some(v), _) => v.expose_secret().to_owned(),
            (None, true) => dev_file(&s.data_dir, "hash-key", HashKey::generate_b64)?,
            (None, false) => anyhow::bail!("MFA_HASH_KEY is required when MFA_ENV=production"),
        };
        let hash_key =
            HashKey::parse(hash_b64.trim()).map_err(|e| anyhow::anyhow!("MFA_HASH_KEY: {e}"))?;
        let paths = match (s.signing_keys.is_empty(), dev) {
            (false, _) => s.signing_keys.clone(),
            (true, true) => {
                dev_file(
                    &s.data_dir,
                    "signing-key.pem",
                    crate::crypto::jwt::generate_pem,
                )?;
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

/// Returns the content of `dir/name`, creating it (mode 0600) with `make()` the first time.
fn dev_file(dir: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => return Ok(s.trim().to_owned()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("reading {}", path.display()))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let value = make();
    write_private(&path, &value)?;
    tracing::warn!(file = %path.display(), "generated a development key; set MFA_ENV=production with real keys in production");
    Ok(value)
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
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::defaults();
        assert_eq!(
            s.database_url,
            "postgres://postgres@127.0.0.1:5432/mspbots_mfa"
        );
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.environment, Environment::Development);
        assert_eq!(s.data_dir, PathBuf::from("./.mfa-dev"));
        assert_eq!(s.issuer, "mspbots-mfa");
        assert_eq!(
            (s.access_token_ttl, s.totp_skew, s.step_up_max_age),
            (3600, 1, 300)
        );
        assert_eq!((s.rate_limit_per_minute, s.login_ttl), (30, 600));
        assert_eq!(
            (s.statement_timeout_ms, s.lock_timeout_ms, s.db_deadline_ms),
            (5000, 2000, 6000)
        );
        assert!(
            s.db_deadline_ms > s.statement_timeout_ms,
            "the server's timeout fires first"
        );
        assert_eq!(
            (s.idle_in_transaction_timeout_ms, s.db_connect_timeout),
            (10000, 5)
        );
        assert_eq!((s.db_startup_timeout, s.body_timeout_ms), (60, 10000));
        assert!(s.encryption_keys.is_none() && s.hash_key.is_none() && s.signing_keys.is_empty());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut s = Settings::defaults();
        s.hash_key = Some(SecretString::from(
            "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh4eHg=".to_owned(),
        ));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("c2VjcmV0"), "{dbg}");
    }

    #[test]
    fn parsers_reject_out_of_range_values() {
        assert!(skew("4").is_err() && skew("-1").is_err() && skew("3").is_ok());
        assert!(positive("0").is_err() && positive("x").is_err() && positive("30").is_ok());
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert!(parse_cidr("nope").is_err());
    }

    #[test]
    fn config_files_use_the_variable_names_in_lower_case() {
        let vars = config_file_vars(
            "mfa_bind = \"0.0.0.0:9000\"\nmfa_totp_skew = 2\nmfa_cors_origins = [\"https://a.example\", \"https://b.example\"]\nrust_log = \"debug\"\n",
        )
        .unwrap();
        assert_eq!(
            vars,
            vec![
                ("MFA_BIND".to_owned(), "0.0.0.0:9000".to_owned()),
                (
                    "MFA_CORS_ORIGINS".to_owned(),
                    "https://a.example,https://b.example".to_owned()
                ),
                ("MFA_TOTP_SKEW".to_owned(), "2".to_owned()),
                ("RUST_LOG".to_owned(), "debug".to_owned()),
            ]
        );
        let err = config_file_vars("mfa_bnid = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mfa_bnid"), "{err}");
        assert!(
            config_file_vars("MFA_BIND = \"x\"").is_err(),
            "lower case only"
        );
        assert!(config_file_vars("mfa_bind = { a = 1 }").is_err());
        assert!(config_file_vars("not toml").is_err());
        assert!(variables().contains(&"DATABASE_URL".to_owned()));
        let vars = config_file_vars(
            "mfa_db_deadline_ms = 7000\nmfa_lock_timeout_ms = 1000\nmfa_idle_in_transaction_timeout_ms = 9000\nmfa_db_connect_timeout = 3\nmfa_db_startup_timeout = 30\nmfa_body_timeout_ms = 8000\n",
        )
        .unwrap();
        assert_eq!(vars.len(), 6);
    }

    #[test]
    fn production_without_keys_names_the_variable() {
        let mut s = Settings::defaults();
        s.environment = Environment::Production;
        let err = KeyMaterial::load(&s).unwrap_err().to_string();
        assert!(err.contains("MFA_ENCRYPTION_KEYS"), "{err}");
    }

    #[test]
    fn development_keys_are_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("mfa-cfg-{}", uuid::Uuid::new_v4()));
        let mut s = Settings::defaults();
        s.data_dir = dir.clone();
        let a = KeyMaterial::load(&s).unwrap();
        let b = KeyMaterial::load(&s).unwrap();
        assert_eq!(a.keyring.key_ids(), b.keyring.key_ids());
        assert_eq!(a.signing.active_kid(), b.signing.active_kid());
        let sealed = a.keyring.seal(b"x", b"aad").unwrap();
        assert!(b
            .keyring
            .open(&sealed.key_id, &sealed.nonce, &sealed.ciphertext, b"aad")
            .is_ok());
        std::fs::remove_dir_all(dir).ok();
    }
}
