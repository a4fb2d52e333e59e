//! Tests for [`super`] (kept apart so `file.rs` stays readable).

use super::*;
use crate::config::Settings;

#[test]
fn config_files_use_the_variable_names_in_lower_case() {
    let vars = ConfigFile::parse(
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
    let err = ConfigFile::parse("mfa_bnid = \"x\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("mfa_bnid"), "{err}");
    assert!(
        ConfigFile::parse("MFA_BIND = \"x\"").is_err(),
        "lower case only"
    );
    assert!(ConfigFile::parse("mfa_bind = { a = 1 }").is_err());
    assert!(ConfigFile::parse("not toml").is_err());
    assert!(variables().contains(&"DATABASE_URL".to_owned()));
    let vars = ConfigFile::parse(
        "mfa_db_deadline_ms = 7000\nmfa_lock_timeout_ms = 1000\nmfa_idle_in_transaction_timeout_ms = 9000\nmfa_db_connect_timeout = 3\nmfa_db_startup_timeout = 30\nmfa_body_timeout_ms = 8000\n",
    )
    .unwrap();
    assert_eq!(vars.len(), 6);
}

#[derive(clap::Parser)]
struct P {
    #[command(flatten)]
    s: Settings,
}

/// The settings from `file` and `args` alone: the environment of the test process is left
/// out (the binary's tests in tests/api/cli.rs cover it).
fn settings(file: &str, args: &[&str]) -> Settings {
    let file = ConfigFile {
        path: Some("test.toml".into()),
        values: ConfigFile::parse(file).unwrap(),
    };
    let cmd = <P as clap::CommandFactory>::command();
    let cmd = file.apply(cmd).mut_args(|a| a.env(None::<&str>));
    let m = cmd
        .try_get_matches_from(std::iter::once("mfa").chain(args.iter().copied()))
        .unwrap();
    <P as clap::FromArgMatches>::from_arg_matches(&m).unwrap().s
}

#[test]
fn the_file_fills_in_the_defaults_and_a_flag_beats_it() {
    let file = "mfa_totp_skew = 2\nmfa_cors_origins = [\"https://a.example\", \"https://b.example\"]\nmfa_housekeeping = false\n";
    let s = settings(file, &[]);
    assert_eq!(s.totp_skew, 2);
    assert_eq!(s.cors_origins, ["https://a.example", "https://b.example"]);
    assert!(!s.housekeeping);
    assert_eq!(
        s.login_ttl, 600,
        "what the file leaves out keeps its default"
    );
    let s = settings(
        file,
        &["--totp-skew", "3", "--cors-origins", "https://c.example"],
    );
    assert_eq!(
        (s.totp_skew, s.cors_origins),
        (3, vec!["https://c.example".to_owned()])
    );
}

#[test]
fn the_config_path_comes_from_the_flag_else_the_variable() {
    let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let env = Some(OsString::from("env.toml"));
    assert_eq!(
        config_path(args(&["serve", "--config", "a.toml"]), env.clone()),
        Some(PathBuf::from("a.toml"))
    );
    assert_eq!(
        config_path(args(&["--config=b.toml", "serve"]), env.clone()),
        Some(PathBuf::from("b.toml"))
    );
    assert_eq!(
        config_path(args(&["serve"]), env),
        Some(PathBuf::from("env.toml"))
    );
    assert_eq!(config_path(args(&["serve"]), None), None);
}
