//! The binary's command line as an operator meets it: the operator commands find the
//! keys the service uses from any directory (and never make their own), each command's
//! help shows its own options, the container health check, and `GET /`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::e2e::{spawn, BIN};
use crate::helpers::{TempDir, TestDb};

/// The binary with only a home directory to go by (no MFA_DATA_DIR, no XDG_DATA_HOME),
/// run from `cwd`.
fn at_home(db: &TestDb, home: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("MFA_DATA_DIR")
        .env_remove("MFA_ENV")
        .env_remove("MFA_HASH_KEY")
        .env_remove("MFA_ENCRYPTION_KEYS")
        .env_remove("MFA_SIGNING_KEYS")
        .env_remove("MFA_CONFIG")
        .env("DATABASE_URL", &db.url)
        .env("MFA_BIND", "127.0.0.1:0");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn operator_commands_use_the_services_keys_from_any_directory_or_say_where_they_looked() {
    let db = TestDb::new().await;
    let (home, elsewhere, server_cwd) = (TempDir::new(), TempDir::new(), TempDir::new());
    // The contract's default: `./.mfa-dev` below the directory the service runs in.
    let keys_dir = server_cwd.0.join(".mfa-dev");
    let looked_in = elsewhere.0.join(".mfa-dev");

    // Before the service ever ran: no key, no second key set, and a message saying where
    // (the absolute path, whatever the working directory).
    for args in [
        &["service-keys", "create", "--name", "early"][..],
        &["service-keys", "list"][..],
        &["encryption-keys", "rotate"][..],
    ] {
        let out = at_home(&db, &home.0, &elsewhere.0)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded without keys");
        assert!(
            stderr(&out).contains(&looked_in.display().to_string()),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a key");
    }
    assert!(!keys_dir.exists() && !looked_in.exists());

    // The service generates them below its working directory.
    let svc = spawn(at_home(&db, &home.0, &server_cwd.0));
    assert!(keys_dir.join("hash-key").exists());

    // From another directory the CLI still makes no keys of its own…
    let out = at_home(&db, &home.0, &elsewhere.0)
        .args(["service-keys", "create", "--name", "lost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&looked_in.display().to_string()));
    assert!(!looked_in.exists());

    // …and with MFA_DATA_DIR naming the service's directory, its key is one the service
    // accepts.
    let out = at_home(&db, &home.0, &elsewhere.0)
        .env("MFA_DATA_DIR", &keys_dir)
        .args(["service-keys", "create", "--name", "from-elsewhere"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/logins", svc.base))
        .bearer_auth(&key)
        .json(
            &json!({"tenant_id": "acme", "user_id": "u1", "email": "u1@acme.example",
            "identity_provider": "local", "surface": "app"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let out = at_home(&db, &home.0, &elsewhere.0)
        .env("MFA_DATA_DIR", &keys_dir)
        .args(["service-keys", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-elsewhere\tall tenants"));
    let out = at_home(&db, &home.0, &elsewhere.0)
        .env("MFA_DATA_DIR", &keys_dir)
        .args(["encryption-keys", "rotate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!elsewhere.0.join(".mfa-dev").exists());
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_commands_help_shows_its_own_options() {
    let server_only = [
        "MFA_TOTP_SKEW",
        "MFA_ISSUER",
        "MFA_CORS_ORIGINS",
        "--bind",
        "--login-ttl",
    ];
    for args in [
        &[][..],
        &["service-keys"][..],
        &["service-keys", "create"][..],
        &["service-keys", "list"][..],
        &["service-keys", "revoke"][..],
        &["encryption-keys", "rotate"][..],
        &["signing-keys", "generate"][..],
        &["migrate"][..],
        &["openapi"][..],
    ] {
        let h = help(args);
        for opt in server_only {
            assert!(!h.contains(opt), "{args:?} --help shows {opt}:\n{h}");
        }
        assert!(h.lines().count() < 30, "{args:?} --help:\n{h}");
    }
    let serve = help(&["serve"]);
    for opt in server_only {
        assert!(serve.contains(opt), "serve --help lacks {opt}");
    }
    let create = help(&["service-keys", "create"]);
    let name = create
        .lines()
        .find(|l| l.contains("--name <NAME>"))
        .unwrap();
    assert!(
        name.len() > "      --name <NAME>".len() + 10,
        "undescribed: {name}"
    );
    assert!(help(&["service-keys"]).contains("--database-url"));
    // The bare form still runs the service with flags.
    assert!(help(&[]).contains("serve --help"));
}

#[tokio::test]
async fn the_healthcheck_command_follows_the_service_and_the_root_points_to_the_docs() {
    let db = TestDb::new().await;
    let dir = TempDir::new();
    let svc = spawn(crate::e2e::command(&db, &dir));
    let addr = svc.base.trim_start_matches("http://").to_owned();
    let port = addr.rsplit(':').next().unwrap().to_owned();
    for bind in [addr.clone(), format!("0.0.0.0:{port}")] {
        let out = Command::new(BIN)
            .args(["healthcheck", "--bind", &bind])
            .output()
            .unwrap();
        assert!(out.status.success(), "{bind}: {}", stderr(&out));
    }
    let out = Command::new(BIN)
        .args(["healthcheck", "--bind", &addr, "--path", "/nope"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && stderr(&out).contains("404"),
        "{}",
        stderr(&out)
    );
    // Nothing listening: a free port (bound, then released).
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(BIN)
        .env("MFA_BIND", free.to_string())
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(!out.status.success());

    let c = reqwest::Client::new();
    let root = c.get(format!("{}/", svc.base)).send().await.unwrap();
    assert_eq!(root.status(), 200);
    let index: Value = root.json().await.unwrap();
    assert_eq!(index["docs"], "/docs/");
    assert_eq!(index["openapi"], "/openapi.json");
    for link in ["docs", "openapi", "jwks", "health", "ready"] {
        let r = c
            .get(format!("{}{}", svc.base, index[link].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{link}");
    }
}

/// Starts `cmd` and reads its log until it reports ready or exits: (ready, log).
fn start_and_wait(mut cmd: Command) -> (std::process::Child, bool, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut ready = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on http://") {
            ready = true;
            break;
        }
    }
    (child, ready, log)
}

/// docs/API.md §20: instances, `migrate` and `service-keys` started together on a database
/// that does not exist yet: one creates and migrates it, the others wait and carry on, and
/// none fails or logs the race as an outage.
#[test]
fn processes_starting_together_on_a_new_database_all_succeed() {
    let name = format!("mfa_test_{}", uuid::Uuid::new_v4().simple());
    let db = TestDb {
        url: format!("{}/{name}", crate::helpers::PG),
        name,
        owned: true, // dropped at the end; never created here
    };
    let dir = TempDir::new();
    let mut settings = mspbots_mfa::config::Settings::defaults();
    settings.data_dir = dir.0.clone();
    mspbots_mfa::crypto::keys::KeyMaterial::load(&settings).unwrap(); // the keys all of them share
    let command = |args: &[&str]| {
        let mut c = at_home(&db, &dir.0, &dir.0);
        c.env("MFA_DATA_DIR", &dir.0).args(args);
        c
    };
    let gate = &std::sync::Barrier::new(7);
    let outraged = |log: &str| {
        ["not reachable", "duplicate key", "already exists", "ERROR"]
            .into_iter()
            .find(|w| log.contains(w))
    };
    std::thread::scope(|s| {
        let serves: Vec<_> = (0..4)
            .map(|_| {
                let c = command(&["serve"]);
                s.spawn(move || {
                    gate.wait();
                    start_and_wait(c)
                })
            })
            .collect();
        let operators: Vec<_> = [
            &["service-keys", "create", "--name", "deploy-1"][..],
            &["service-keys", "create", "--name", "deploy-2"][..],
            &["migrate"][..],
        ]
        .into_iter()
        .map(|args| {
            let mut c = command(args);
            s.spawn(move || {
                gate.wait();
                (args, c.output().unwrap())
            })
        })
        .collect();
        for t in operators {
            let (args, out) = t.join().unwrap();
            let log = stderr(&out);
            assert!(out.status.success(), "{args:?} failed: {log}");
            assert_eq!(outraged(&log), None, "{args:?}: {log}");
        }
        for t in serves {
            let (mut child, ready, log) = t.join().unwrap();
            let _ = child.kill();
            let _ = child.wait();
            assert!(ready, "serve did not become ready: {log}");
            assert_eq!(outraged(&log), None, "serve: {log}");
        }
    });
}

/// docs/API.md §9 through the binary's own parsing: a flag beats the environment, which
/// beats the `--config` file; a bad value's error names the variable, never the flag. An
/// out-of-range value in each layer shows which one was read.
#[test]
fn a_flag_beats_the_environment_which_beats_the_file_and_errors_name_the_variable() {
    let dir = TempDir::new();
    let file = dir.0.join("mfa.toml");
    std::fs::write(&file, "mfa_totp_skew = 7\nmfa_login_ttl = 60\n").unwrap();
    let serve = |env: Option<&str>, flag: Option<&str>| {
        let mut c = Command::new(BIN);
        c.env_remove("MFA_TOTP_SKEW").env_remove("MFA_CONFIG");
        c.arg("serve").arg("--config").arg(&file);
        if let Some(v) = env {
            c.env("MFA_TOTP_SKEW", v);
        }
        if let Some(v) = flag {
            c.args(["--totp-skew", v]);
        }
        let out = c.output().unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains("MFA_TOTP_SKEW must be 0, 1, 2 or 3"), "{err}");
        assert!(!err.contains("--totp-skew"), "names the flag: {err}");
        err
    };
    let err = serve(None, None);
    assert!(
        err.contains("(got \"7\")") && err.contains("mfa_totp_skew"),
        "{err}"
    );
    assert!(serve(Some("8"), None).contains("(got \"8\")"));
    assert!(serve(Some("8"), Some("9")).contains("(got \"9\")"));
    // The file's values are the defaults `serve --help` shows.
    let out = Command::new(BIN)
        .args(["serve", "--help", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 60]"), "{help}");
}
