//! The `mspbots-mfa` binary: the service and its operator commands. Only wiring here.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use mspbots_mfa::config::{KeyMaterial, Settings};
use mspbots_mfa::domain::ids::TenantId;
use mspbots_mfa::{crypto, db, openapi, services, startup::Application, telemetry};

/// Two-factor authentication (TOTP) service for MSPbots.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML file of settings: the variables' names in lower case. The environment and
    /// flags override it.
    #[arg(long, global = true, env = "MFA_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

/// The `--config` path, found before the real parse so the file can fill in the
/// environment that the settings read.
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("MFA_CONFIG").map(PathBuf::from)
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Create the database if missing and apply migrations, then exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage the service keys of trusted backends.
    #[command(subcommand)]
    ServiceKeys(ServiceKeys),
    /// Manage the key ring that encrypts TOTP secrets.
    #[command(subcommand)]
    EncryptionKeys(EncryptionKeys),
    /// Manage the Ed25519 keys that sign access tokens.
    #[command(subcommand)]
    SigningKeys(SigningKeys),
}

#[derive(Subcommand)]
enum ServiceKeys {
    /// Create a key; prints the key alone on standard output (it cannot be shown again).
    Create {
        #[arg(long)]
        name: String,
        /// Limit the key to these tenants (repeatable); without it the key covers all.
        #[arg(long = "tenant", value_parser = |s: &str| TenantId::parse(s).map_err(|e| e.to_string()))]
        tenants: Vec<TenantId>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by its id.
    Revoke { key_id: uuid::Uuid },
}

#[derive(Subcommand)]
enum EncryptionKeys {
    /// Re-encrypt every TOTP secret under the active (first) key. Safe while the service
    /// runs and safe to re-run.
    Rotate {
        #[arg(long, default_value = "500")]
        batch_size: u32,
    },
}

#[derive(Subcommand)]
enum SigningKeys {
    /// Write a new Ed25519 PKCS#8 PEM signing key (to --out, mode 0600, or standard output).
    Generate {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    if let Some(path) = config_path() {
        mspbots_mfa::config::apply_config_file(&path)?;
    }
    let cli = Cli::parse();
    telemetry::init(cli.settings.environment);
    // The operator commands run on a plain tokio runtime; `serve` on actix's own.
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            Application::build(cli.settings)
                .await?
                .run_until_stopped()
                .await?;
            anyhow::Ok(())
        })?,
        Command::Migrate => rt.block_on(async {
            db::create_database(&cli.settings.database_url, None).await?;
            let applied = db::migrate(&cli.settings.database_url).await?;
            eprintln!("applied {} migration(s)", applied.len());
            anyhow::Ok(())
        })?,
        Command::Openapi => print!("{}", openapi::document()),
        Command::ServiceKeys(cmd) => rt.block_on(service_keys(cli.settings, cmd))?,
        Command::EncryptionKeys(EncryptionKeys::Rotate { batch_size }) => rt.block_on(async {
            let keys = KeyMaterial::load(&cli.settings)?;
            let mut conn = connect(&cli.settings).await?;
            let n = services::rotation::rotate(&mut conn, &keys.keyring, batch_size).await?;
            eprintln!(
                "re-encrypted {n} secret(s) under key {}",
                keys.keyring.active_key_id()
            );
            anyhow::Ok(())
        })?,
        Command::SigningKeys(SigningKeys::Generate { out }) => {
            let pem = crypto::jwt::generate_pem();
            match out {
                Some(path) => mspbots_mfa::config::write_private(&path, pem.trim_end())?,
                None => print!("{pem}"),
            }
        }
    }
    Ok(())
}

async fn connect(s: &Settings) -> anyhow::Result<AsyncPgConnection> {
    db::create_database(&s.database_url, None).await?;
    db::migrate(&s.database_url).await?;
    AsyncPgConnection::establish(&s.database_url)
        .await
        .context("connecting to the database")
}

async fn service_keys(settings: Settings, cmd: ServiceKeys) -> anyhow::Result<()> {
    let keys = KeyMaterial::load(&settings)?;
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
