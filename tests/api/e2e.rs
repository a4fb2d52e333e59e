//! End to end through the real binary on port 0, over loopback, with the wall clock: the
//! CLI creates the service key, codes come from the secret the API returned, and the access
//! token is verified with the JWKS alone, as the Client Portal backend would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{code_at, TempDir, TestDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_mspbots-mfa");

pub struct Service {
    pub child: Child,
    pub base: String,
    /// Every log line the service wrote so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn command(db: &TestDb, dir: &TempDir) -> Command {
    let mut c = Command::new(BIN);
    // Debug level: even the most verbose logs must not carry a secret.
    c.env("DATABASE_URL", &db.url)
        .env("MFA_DATA_DIR", &dir.0)
        .env("MFA_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "debug");
    c
}

/// Starts the binary and waits for its "listening on" line.
fn start(db: &TestDb, dir: &TempDir) -> Service {
    spawn(command(db, dir))
}

/// Starts `serve` as `cmd` says and waits for its "listening on" line.
pub fn spawn(mut cmd: Command) -> Service {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                l.push(line.clone());
            }
            if let Some(i) = line.find("listening on http://") {
                let addr: String = line[i + 20..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the service reports its address");
    Service {
        child,
        base: format!("http://{addr}"),
        log,
    }
}

pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = c.request(method, url).bearer_auth(token).json(&body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let res = r.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A client of one running service.
#[derive(Clone)]
pub struct Api {
    c: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Api {
            c: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` with `token` and a JSON body: `(status, body)`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.post_with(path, token, body, &[]).await
    }

    /// `POST path` with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (method, url) = (reqwest::Method::POST, self.url(path));
        call(&self.c, method, url, token, body, headers).await
    }

    /// `POST /v1/logins` for `user` with the service key: `201` with this `status`; the login
    /// id and its mfa token.
    pub async fn start_login(&self, key: &str, user: &Value, status: &str) -> (String, String) {
        let (s, b) = self.post("/v1/logins", key, user.clone()).await;
        assert_eq!((s, b["status"].as_str()), (201, Some(status)), "{b}");
        (
            b["login_id"].as_str().unwrap().to_owned(),
            b["mfa_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Waits (bounded) until the service refuses new connections, after a SIGTERM.
    pub async fn wait_refusing(&self) {
        let started = Instant::now();
        while reqwest::get(self.url("/healthz")).await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "still accepting after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The claims of a token verified with the JWKS alone, by the wall clock.
fn verify_with_jwks(token: &str, jwks: &Value, aud: &str) -> Value {
    crate::tokens::verify(jwks, token, aud, Utc::now().timestamp())
        .expect("valid with the JWKS alone")
}

#[tokio::test]
async fn the_three_procedures_through_the_real_binary() {
    let db = TestDb::new().await;
    let dir = TempDir::new();
    // The service generates the development keys; the CLI then uses the same ones and
    // prints the new key alone on standard output.
    let svc = start(&db, &dir);
    let out = command(&db, &dir)
        .args(["service-keys", "create", "--name", "login-backend"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.trim_end_matches('\n');
    assert!(
        key.starts_with("sk_") && !key.contains('\n') && key.len() >= 46,
        "{stdout:?}"
    );

    let api = Api::new(&svc.base);
    let c = &api.c;
    let url = |p: &str| api.url(p);
    assert_eq!(c.get(url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(url("/readyz")).send().await.unwrap().status(), 200);
    let jwks: Value = c
        .get(url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // An admin signs in (2FA off), sets up an authenticator app voluntarily, turns 2FA on.
    let admin = json!({"tenant_id": "acme", "user_id": "admin", "email": "admin@acme.example",
        "identity_provider": "microsoft", "roles": ["admin"], "surface": "app"});
    let ViaMe {
        pwd_token,
        secret: admin_secret,
        code: admin_code,
        token: admin_token,
    } = enrolled_via_me(&api, key, &admin).await;
    assert_eq!(
        verify_with_jwks(&admin_token, &jwks, "mspbots-app")["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    let policy = c
        .get(url("/v1/tenants/acme/policy"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    let etag = policy.headers()["etag"].to_str().unwrap().to_owned();
    let (s, b) = call(
        c,
        reqwest::Method::PUT,
        url("/v1/tenants/acme/policy"),
        &admin_token,
        json!({"enforce_mfa": true}),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!((s, &b["enforce_mfa"]), (200, &json!(true)), "{b}");

    // A local user's first sign-in on the portal: Setup MFA, scan, type the code.
    let user = json!({"tenant_id": "acme", "user_id": "jane", "email": "jane@acme.example",
        "identity_provider": "local", "surface": "portal"});
    let (login, mfa) = api.start_login(key, &user, "enrollment_required").await;
    let (s, m) = api
        .post(
            &format!("/v1/logins/{login}/totp-enrollment"),
            &mfa,
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let secret = m["secret"].as_str().unwrap().to_owned();
    let jane_code = code_at(&secret, Utc::now());
    let (s, b) = api
        .post(
            &format!("/v1/logins/{login}/totp-enrollment/confirm"),
            &mfa,
            json!({"code": jane_code}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["recovery_codes"].as_array().unwrap().len(), 10);
    let mut recovery_codes: Vec<String> = b["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let claims = verify_with_jwks(b["access_token"].as_str().unwrap(), &jwks, "mspbots-portal");
    assert_eq!(
        (claims["sub"].as_str(), claims["tid"].as_str()),
        (Some("jane"), Some("acme"))
    );

    // Every later sign-in asks for a code. The confirming code is used up, so the app's next
    // code (accepted within the default one-step window) signs in, without waiting.
    let (login, mfa) = api.start_login(key, &user, "verification_required").await;
    // First a wrong code (the invalid_code path logs too): the app's code of an hour ago,
    // a number no log line holds by chance.
    let wrong = code_at(&secret, Utc::now() - chrono::Duration::hours(1));
    let (s, b) = api
        .post(
            &format!("/v1/logins/{login}/verify"),
            &mfa,
            json!({"code": wrong}),
        )
        .await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_code")), "{b}");
    let next = code_at(&secret, Utc::now() + chrono::Duration::seconds(30));
    let (s, b) = api
        .post(
            &format!("/v1/logins/{login}/verify"),
            &mfa,
            json!({"code": next}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let user_token = b["access_token"].as_str().unwrap().to_owned();
    let claims = verify_with_jwks(&user_token, &jwks, "mspbots-portal");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 3600);

    // A sensitive call with a code in X-MFA-Code (the admin's next code) and a sign-in
    // with a recovery code, so the log below has seen both kinds.
    let step_up = code_at(&admin_secret, Utc::now() + chrono::Duration::seconds(30));
    let (s, b) = api
        .post_with(
            "/v1/me/recovery-codes",
            &admin_token,
            json!({}),
            &[("X-MFA-Code", step_up.as_str())],
        )
        .await;
    assert_eq!(s, 200, "{b}");
    recovery_codes.extend(
        b["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned()),
    );
    let (login, recover_token) = api.start_login(key, &user, "verification_required").await;
    let recover = format!("/v1/logins/{login}/recover");
    // A wrong recovery code first (one of another user's: well-formed, never issued here),
    // then a right one typed in lower case.
    let wrong_recovery = "7k3mq-x9d2p".to_owned();
    let body = json!({"recovery_code": wrong_recovery});
    let (s, b) = api.post(&recover, &recover_token, body).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("invalid_code")), "{b}");
    let body = json!({"recovery_code": recovery_codes[0].to_lowercase()});
    let (s, b) = api.post(&recover, &recover_token, body).await;
    assert_eq!(s, 200, "{b}");
    recovery_codes.push(wrong_recovery);

    // Nothing secret reached a log line, even at debug level.
    let log = svc.log_text();
    assert!(
        log.contains("request finished"),
        "the access log is there:\n{log}"
    );
    // (Six-digit codes are left out: any timestamp may contain six digits by chance.)
    let secrets = [
        key,
        &admin_secret,
        &secret,
        &pwd_token,
        &admin_token,
        &user_token,
        &mfa,
    ];
    for s in secrets {
        assert!(!log.contains(s), "a secret, code or token was logged");
    }
    // Recovery codes in every form they could be logged in: as issued, without the dash,
    // in upper or lower case (searched in the log folded to lower case).
    let folded = log.to_lowercase();
    for rc in &recovery_codes {
        let rc = rc.to_lowercase();
        for form in [rc.clone(), rc.replace('-', "")] {
            assert!(
                !folded.contains(&form),
                "a recovery code was logged: {form}"
            );
        }
    }
    // Six-digit codes: looked for as whole numbers after each line's leading timestamp (whose
    // microseconds could match by chance).
    let words: Vec<&str> = log
        .lines()
        .flat_map(|l| {
            l.split_once(' ')
                .map_or("", |(_, rest)| rest)
                .split(|c: char| !c.is_ascii_digit())
        })
        .collect();
    for (what, code) in [
        ("the admin's confirmation code", &admin_code),
        ("the user's confirmation code", &jane_code),
        ("the wrong code", &wrong),
        ("the sign-in code", &next),
        ("the X-MFA-Code value", &step_up),
    ] {
        assert!(!words.contains(&code.as_str()), "{what} {code} was logged");
    }
}

/// Waits (bounded) until the service's process has exited.
async fn wait_exit(svc: &mut Service) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = svc.child.try_wait().unwrap() {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(svc: &Service) {
    let pid = svc.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
}

/// SIGTERM: the service stops accepting, finishes the request in flight, and exits 0. The
/// request is held in flight by a row lock taken from outside, so nothing depends on timing.
#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::new().await;
    let dir = TempDir::new();
    let mut svc = start(&db, &dir);
    let out = command(&db, &dir)
        .args(["service-keys", "create", "--name", "k"])
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let api = Api::new(&svc.base);
    let user = json!({"tenant_id": "acme", "user_id": "jane", "email": "jane@acme.example",
        "identity_provider": "local", "surface": "app"});
    let ViaMe { secret, .. } = enrolled_via_me(&api, &key, &user).await;
    let (_, b) = api.post("/v1/logins", &key, user).await;
    let (login, mfa) = (
        b["login_id"].as_str().unwrap().to_owned(),
        b["mfa_token"].as_str().unwrap().to_owned(),
    );

    // Hold the user's row: the verify below blocks on it inside the service.
    let mut blocker = db.connect().await;
    blocker
        .batch_execute(
            "BEGIN; SELECT 1 FROM users WHERE tenant_id = 'acme' AND user_id = 'jane' FOR UPDATE",
        )
        .await
        .unwrap();
    let in_flight = {
        let (api, mfa) = (api.clone(), mfa.clone());
        let code = code_at(&secret, Utc::now() + chrono::Duration::seconds(30));
        let path = format!("/v1/logins/{login}/verify");
        tokio::spawn(async move { api.post(&path, &mfa, json!({"code": code})).await })
    };
    // Wait until Postgres shows the service's statement waiting for the lock.
    let started = Instant::now();
    loop {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let waiting: N = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(format!("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'", db.name)),
            &mut blocker,
        )
        .await
        .unwrap();
        if waiting.n > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the verify never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    sigterm(&svc);
    // New connections are refused once the listener is closed.
    api.wait_refusing().await;
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "must wait for the request in flight"
    );
    // Release the row: the request in flight completes normally.
    blocker.batch_execute("COMMIT").await.unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "authenticated");
    assert!(wait_exit(&mut svc).await.success());
}

#[test]
fn production_without_keys_refuses_to_start_and_names_the_variable() {
    let out = Command::new(BIN)
        .env("MFA_ENV", "production")
        .env_remove("MFA_ENCRYPTION_KEYS")
        .env(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/never_created_here",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MFA_ENCRYPTION_KEYS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cli_prints_the_committed_spec_and_documents_every_variable() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
    let help = String::from_utf8(
        Command::new(BIN)
            .args(["serve", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for var in [
        "DATABASE_URL",
        "MFA_BIND",
        "MFA_ENV",
        "MFA_DATA_DIR",
        "MFA_ENCRYPTION_KEYS",
        "MFA_HASH_KEY",
        "MFA_SIGNING_KEYS",
        "MFA_ISSUER",
        "MFA_ACCESS_TOKEN_TTL",
        "MFA_TOTP_SKEW",
        "MFA_STEP_UP_MAX_AGE",
        "MFA_RATE_LIMIT_PER_MINUTE",
        "MFA_LOGIN_TTL",
        "MFA_CORS_ORIGINS",
        "MFA_TRUSTED_PROXIES",
    ] {
        assert!(help.contains(var), "serve --help lacks {var}:\n{help}");
    }
    assert!(
        help.contains("[default: 30]") && help.contains("[default: 127.0.0.1:8080]"),
        "{help}"
    );
}

#[tokio::test]
async fn a_config_file_fills_in_settings_the_environment_leaves_out() {
    use diesel_async::SimpleAsyncConnection;
    let dir = TempDir::new();
    let name = format!("mfa_cfgfile_{}", uuid::Uuid::new_v4().simple());
    let file = dir.0.join("mfa.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = \"{}/{name}\"\nmfa_data_dir = \"{}\"\n",
            crate::helpers::PG,
            dir.0.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .env_remove("DATABASE_URL")
        .args(["--config"])
        .arg(&file)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The database named only in the file was created and migrated.
    let url = format!("{}/{name}", crate::helpers::PG);
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
            .await
            .expect("created from the file's URL");
    conn.batch_execute("SELECT 1 FROM tenants LIMIT 1")
        .await
        .expect("migrated");
    drop(conn);
    let mut admin = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &format!("{}/postgres", crate::helpers::PG),
    )
    .await
    .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();
    // A typo is an error that names the key, not a silently ignored line.
    std::fs::write(&file, "mfa_bnid = \"0.0.0.0:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&file)
        .arg("openapi")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mfa_bnid"));
}

/// A service key made by the CLI against the running service's database and keys.
pub fn cli_service_key(db: &TestDb, dir: &TempDir) -> String {
    let out = command(db, dir)
        .args(["service-keys", "create", "--name", "k"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A user enrolled through `/v1/me`: the first token (`amr: ["pwd"]`), the secret, the code
/// that confirmed it, and the fresh token that confirmation returned.
struct ViaMe {
    pwd_token: String,
    secret: String,
    code: String,
    token: String,
}

/// A user of a tenant without 2FA signs in and sets up an authenticator through `/v1/me`.
async fn enrolled_via_me(api: &Api, key: &str, user: &Value) -> ViaMe {
    let (s, b) = api.post("/v1/logins", key, user.clone()).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (201, Some("authenticated")),
        "{b}"
    );
    let pwd_token = b["access_token"].as_str().unwrap().to_owned();
    let (s, m) = api
        .post("/v1/me/totp-enrollment", &pwd_token, json!({}))
        .await;
    assert_eq!(s, 201, "{m}");
    let secret = m["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, Utc::now());
    let body = json!({ "code": code });
    let (s, b) = api
        .post("/v1/me/totp-enrollment/confirm", &pwd_token, body)
        .await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_owned();
    ViaMe {
        pwd_token,
        secret,
        code,
        token,
    }
}

/// A webhook receiver that holds its first request until told: says when the request has
/// arrived, answers `200` once released.
async fn held_receiver() -> (
    String,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        // The whole request: headers, then Content-Length bytes of body.
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if req.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let _ = arrived_tx.send(());
        let _ = released.await;
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let _ = sock.shutdown().await;
    });
    (url, arrived, release)
}

/// The worker every instance runs (`MFA_WEBHOOK_DELIVERY`, on by default) is started with
/// the server, delivers without being asked, and stops with it: on SIGTERM the process
/// waits for the delivery in flight, records it, and only then exits 0. The delivery is held
/// in flight by the receiver, so nothing depends on timing.
#[tokio::test]
async fn the_webhook_worker_stops_with_the_server_after_recording_the_delivery_in_flight() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::new().await;
    let dir = TempDir::new();
    let mut svc = spawn({
        let mut cmd = command(&db, &dir);
        cmd.env("MFA_HOUSEKEEPING", "false");
        cmd
    });
    let key = cli_service_key(&db, &dir);
    let api = Api::new(&svc.base);
    let admin = json!({"tenant_id": "acme", "user_id": "admin", "email": "admin@acme.example",
        "identity_provider": "local", "roles": ["admin"], "surface": "app"});
    let admin_token = enrolled_via_me(&api, &key, &admin).await.token;
    let (hook, arrived, release) = held_receiver().await;
    let body = json!({"url": hook, "event_types": ["user.unlocked"]});
    let (s, b) = api
        .post("/v1/tenants/acme/webhooks", &admin_token, body)
        .await;
    assert_eq!(s, 201, "{b}");

    // An event, as the services write them: the worker delivers it unasked.
    let mut conn = db.connect().await;
    conn.batch_execute(&format!(
        "INSERT INTO audit_events (tenant_id, type, at, details) \
         VALUES ('acme', 'user.unlocked', '{}', '{{}}')",
        Utc::now().to_rfc3339()
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(60), arrived)
        .await
        .expect("the worker delivers without being asked (no request after 60 s)")
        .unwrap();

    // Stop the server while the delivery is in flight.
    sigterm(&svc);
    api.wait_refusing().await;
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "must wait for the delivery in flight"
    );
    release.send(()).unwrap();
    assert!(wait_exit(&mut svc).await.success(), "{}", svc.log_text());
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
    }
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT state, attempts FROM webhook_deliveries"),
        &mut conn,
    )
    .await
    .unwrap();
    let rows: Vec<(&str, i32)> = rows
        .iter()
        .map(|r| (r.state.as_str(), r.attempts))
        .collect();
    assert_eq!(
        rows,
        vec![("succeeded", 1)],
        "the round in flight was finished and recorded before the exit"
    );
}
