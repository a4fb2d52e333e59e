//! The `mspbots-mfa` binary: the service and its operator commands. Only wiring here.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use mspbots_mfa::config::{config_path, ConfigFile, KeyMaterial, Settings};
use mspbots_mfa::domain::ids::TenantId;
use mspbots_mfa::{crypto, db, openapi, services, startup::Application, telemetry};

/// Two-factor authentication (TOTP) service for MSPbots.
///
/// Without a command: `serve` with the settings of the environment (or `--config`).
/// `mspbots-mfa serve --help` lists the settings.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML file of settings: the variables' names in lower case. The environment and
    /// flags override it.
    #[arg(long, global = true, env = "MFA_CONFIG")]
    config: Option<PathBuf>,
}

/// The settings `serve` would run with from the environment and the file alone (no flags).
fn settings_from_environment(file: &ConfigFile) -> Result<Settings, clap::Error> {
    #[derive(Parser)]
    struct FromEnvironment {
        #[command(flatten)]
        s: Settings,
    }
    Ok(file.parse_args::<FromEnvironment>(["mspbots-mfa"])?.s)
}

/// Where an operator command finds the service's data. Keys and `MFA_ENV` are read from
/// the environment (or `--config`) exactly as `serve` reads them.
#[derive(clap::Args)]
struct Store {
    /// Postgres URL (default: as for `serve`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    /// Directory of the development keys `serve` generated; read, never created here.
    #[arg(long, env = "MFA_DATA_DIR", default_value_os_t = mspbots_mfa::config::default_data_dir(), global = true)]
    data_dir: PathBuf,
}

impl Store {
    /// The settings `serve` would run with, with this command's overrides.
    fn settings(self, file: &ConfigFile) -> Result<Settings, clap::Error> {
        let mut s = settings_from_environment(file)?;
        if let Some(url) = self.database_url {
            s.database_url = url;
        }
        s.data_dir = self.data_dir;
        Ok(s)
    }
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start; boxing buys nothing
enum Command {
    /// Run the HTTP service (the default). In development it generates missing keys once
    /// under MFA_DATA_DIR.
    Serve(Settings),
    /// Create the database if missing and apply migrations, then exit.
    Migrate(Store),
    /// Print the OpenAPI document.
    Openapi,
    /// Manage the service keys of trusted backends.
    ServiceKeys {
        #[command(subcommand)]
        cmd: ServiceKeys,
        #[command(flatten)]
        store: Store,
    },
    /// Manage the key ring that encrypts TOTP secrets.
    EncryptionKeys {
        #[command(subcommand)]
        cmd: EncryptionKeys,
        #[command(flatten)]
        store: Store,
    },
    /// Manage the Ed25519 keys that sign access tokens.
    #[command(subcommand)]
    SigningKeys(SigningKeys),
    /// Exit 0 when the service on this machine answers 200 (for container health checks;
    /// needs no shell or curl in the image).
    Healthcheck {
        /// The service's listen address; an unspecified address (0.0.0.0, [::]) is reached
        /// over loopback.
        #[arg(long = "bind", env = "MFA_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
        /// The path to GET.
        #[arg(long, default_value = "/healthz")]
        path: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value = "3")]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum ServiceKeys {
    /// Create a key; prints the key alone on standard output (it cannot be shown again).
    Create {
        /// A name for the key's holder, e.g. `login-backend` (shown by `list`).
        #[arg(long)]
        name: String,
        /// Limit the key to these tenants (repeatable); without it the key covers all.
        #[arg(long = "tenant", value_parser = |s: &str| TenantId::parse(s).map_err(|e| e.to_string()))]
        tenants: Vec<TenantId>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key id `create` reported and `list` shows.
        key_id: uuid::Uuid,
    },
}

#[derive(Subcommand)]
enum EncryptionKeys {
    /// Re-encrypt every TOTP secret under the active (first) key. Safe while the service
    /// runs and safe to re-run.
    Rotate {
        /// Secrets re-encrypted per transaction.
        #[arg(long, default_value = "500")]
        batch_size: u32,
    },
}

#[derive(Subcommand)]
enum SigningKeys {
    /// Write a new Ed25519 PKCS#8 PEM signing key (to --out, mode 0600, or standard output).
    Generate {
        /// The file to create (it must not exist).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let file = match config_path(std::env::args_os().skip(1), std::env::var_os("MFA_CONFIG")) {
        Some(path) => ConfigFile::read(&path)?,
        None => ConfigFile::default(),
    };
    let cli: Cli = file
        .parse_args(std::env::args_os())
        .unwrap_or_else(|e| e.exit());
    let command = match cli.command {
        Some(c) => c,
        None => Command::Serve(settings_from_environment(&file).unwrap_or_else(|e| e.exit())),
    };
    // The operator commands run on a plain tokio runtime; `serve` on actix's own.
    let rt = tokio::runtime::Runtime::new()?;
    match command {
        Command::Serve(settings) => {
            telemetry::init(settings.environment, &settings.rust_log);
            actix_web::rt::System::new().block_on(async move {
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await?;
                anyhow::Ok(())
            })?
        }
        Command::Migrate(store) => {
            let settings = operator(store, &file)?;
            rt.block_on(async {
                db::create_database(&settings.database_url, None).await?;
                let applied = db::migrate(&settings.database_url).await?;
                eprintln!("applied {} migration(s)", applied.len());
                anyhow::Ok(())
            })?
        }
        Command::Openapi => print!("{}", openapi::document()),
        Command::ServiceKeys { cmd, store } => {
            rt.block_on(service_keys(operator(store, &file)?, cmd))?
        }
        Command::EncryptionKeys {
            cmd: EncryptionKeys::Rotate { batch_size },
            store,
        } => {
            let settings = operator(store, &file)?;
            rt.block_on(async {
                let keys = KeyMaterial::load_existing(&settings)?;
                let mut conn = connect(&settings).await?;
                let n = services::rotation::rotate(&mut conn, &keys.keyring, batch_size).await?;
                eprintln!(
                    "re-encrypted {n} secret(s) under key {}",
                    keys.keyring.active_key_id()
                );
                anyhow::Ok(())
            })?
        }
        Command::SigningKeys(SigningKeys::Generate { out }) => {
            let pem = crypto::jwt::generate_pem();
            match out {
                Some(path) => crypto::keys::write_private(&path, pem.trim_end())?,
                None => print!("{pem}"),
            }
        }
        Command::Healthcheck {
            bind,
            path,
            timeout,
        } => healthcheck(&bind, &path, std::time::Duration::from_secs(timeout))?,
    }
    Ok(())
}

/// The settings of an operator command, with logging set up for them.
fn operator(store: Store, file: &ConfigFile) -> anyhow::Result<Settings> {
    let settings = store.settings(file).unwrap_or_else(|e| e.exit());
    telemetry::init(settings.environment, &settings.rust_log);
    Ok(settings)
}

/// Where to reach a service bound to `bind`: an unspecified address means loopback.
fn probe_addr(bind: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    let mut addr: SocketAddr = bind
        .parse()
        .with_context(|| format!("MFA_BIND {bind:?} is not an IP address and port"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

/// The status code of an HTTP/1.x status line.
fn status_of(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// GET `path` over plain HTTP/1.0; an error unless the answer is 200.
fn healthcheck(bind: &str, path: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let addr = probe_addr(bind)?;
    let mut conn = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut head = [0u8; 64];
    let n = conn
        .read(&mut head)
        .with_context(|| format!("reading from {addr}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let line = line.lines().next().unwrap_or_default();
    match status_of(line) {
        Some(200) => Ok(()),
        _ => anyhow::bail!("http://{addr}{path} answered {line:?}"),
    }
}

async fn connect(s: &Settings) -> anyhow::Result<AsyncPgConnection> {
    db::create_database(&s.database_url, None).await?;
    db::migrate(&s.database_url).await?;
    AsyncPgConnection::establish(&s.database_url)
        .await
        .context("connecting to the database")
}

async fn service_keys(settings: Settings, cmd: ServiceKeys) -> anyhow::Result<()> {
    let keys = KeyMaterial::load_existing(&settings)?;
    let mut conn = connect(&settings).await?;
    match cmd {
        ServiceKeys::Create { name, tenants } => {
            let (id, key) =
                services::service_keys::create(&mut conn, &keys.hash_key, &name, &tenants).await?;
            eprintln!("created service key {id} ({name})");
            println!("{key}");
        }
        ServiceKeys::List => {
            for k in services::service_keys::list(&mut conn).await? {
                let scope = k
                    .tenant_scope
                    .map_or("all tenants".to_owned(), |s| s.join(","));
                let state = k.revoked_at.map_or("active".to_owned(), |t| {
                    format!("revoked {}", t.to_rfc3339())
                });
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.key_id,
                    k.name,
                    scope,
                    k.created_at.to_rfc3339(),
                    state
                );
            }
        }
        ServiceKeys::Revoke { key_id } => {
            anyhow::ensure!(
                services::service_keys::revoke(&mut conn, key_id).await?,
                "no active service key {key_id}"
            );
            eprintln!("revoked service key {key_id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_healthcheck_reaches_an_unspecified_bind_over_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(probe_addr("[::]:9000").unwrap().to_string(), "[::1]:9000");
        assert_eq!(
            probe_addr("10.1.2.3:80").unwrap().to_string(),
            "10.1.2.3:80"
        );
        assert!(probe_addr("localhost:8080").is_err());
    }

    #[test]
    fn the_healthcheck_reads_the_status_line() {
        assert_eq!(status_of("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_of("HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(status_of("SSH-2.0-OpenSSH"), None);
        assert_eq!(status_of(""), None);
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
