#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected
//! Fault suite: a Postgres cluster of its own (initdb into a temp dir, a free port), two
//! instances of the real binary on it, a bounded sign-in load from loopback, and Postgres
//! stopped (`pg_ctl stop -m fast`), restarted, frozen (SIGSTOP of the postmaster and its
//! children) and thawed under that load. Asserts: no 500 and no dropped request (nothing
//! hangs: a client gives up only after [`HANG`]), every 503 has `Retry-After`, requests are
//! answered `503` while Postgres is still frozen (the service's deadline, not the thaw, ends
//! them), `/readyz` follows Postgres, and the audit trail's `login.succeeded` rows cover every
//! success the clients saw (and nothing else beyond the answers that were in doubt). No
//! assertion is about how long something took: a loaded two-core CI machine makes those flaky.
//!
//! Needs the Postgres server binaries (`initdb`, `pg_ctl`): without them it fails, saying
//! what to install (`.ci/run` installs them). `MFA_PG_BINDIR` points at another install.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_mspbots-mfa");
/// `MFA_DB_DEADLINE_MS` of the instances under test.
const DEADLINE: Duration = Duration::from_millis(2000);
/// How long anything may take before the suite calls it hung: far beyond the deadline, so
/// a loaded machine cannot trip it. A guard against a hang, never a timing claim.
const HANG: Duration = Duration::from_secs(30);

/// The directory of `initdb` and `pg_ctl`: `MFA_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/*/bin`. Fails (never skips) when there is none: a CI run without
/// them would be green with no fault testing.
fn pg_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MFA_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").exists(),
            "MFA_PG_BINDIR={} holds no initdb",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "the fault suite needs the Postgres server binaries (initdb, pg_ctl) and found none \
             in /usr/lib/postgresql/*/bin: install the `postgresql` package \
             (apt-get install postgresql), or set MFA_PG_BINDIR to the directory holding initdb"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A Postgres cluster in a temp dir, stopped and removed on drop (thawed first).
struct Cluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    root: bool,
}

impl Cluster {
    /// A command run as the cluster's owner: initdb and postgres refuse to run as root.
    fn pg(&self, tool: &str) -> Command {
        let exe = self.bindir.join(tool);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn create(bindir: PathBuf) -> Self {
        let dir = std::env::temp_dir().join(format!("mfa-fault-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = is_root();
        if root {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Self {
            bindir,
            dir,
            port,
            root,
        };
        run(c
            .pg("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(c.data()));
        c.start();
        c
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=40",
            self.port,
            self.dir.display()
        );
        run(self
            .pg("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-o", &opts, "start"]));
    }

    fn stop_fast(&self) {
        run(self
            .pg("pg_ctl")
            .args(["-w", "-t", "30", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop"));
    }

    /// The postmaster and its children.
    fn pids(&self) -> Vec<String> {
        let Ok(pidfile) = std::fs::read_to_string(self.data().join("postmaster.pid")) else {
            return vec![];
        };
        let master = pidfile.lines().next().unwrap_or("").trim().to_owned();
        let mut pids = vec![master.clone()];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid …: the comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid == Some(master.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        pids
    }

    fn signal(&self, sig: &str) {
        let pids = self.pids();
        if !pids.is_empty() {
            let _ = Command::new("kill").arg(sig).args(&pids).status();
        }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self
            .pg("pg_ctl")
            .args(["-w", "-t", "30", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[track_caller]
fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a Postgres tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One instance of the real binary.
struct Service {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env(cmd: &mut Command, db_url: &str, data_dir: &Path) {
    cmd.env("DATABASE_URL", db_url)
        .env("MFA_DATA_DIR", data_dir)
        .env("MFA_BIND", "127.0.0.1:0")
        .env("MFA_DB_POOL_SIZE", "4")
        .env("MFA_STATEMENT_TIMEOUT_MS", "1500")
        .env("MFA_LOCK_TIMEOUT_MS", "500")
        .env("MFA_IDLE_IN_TRANSACTION_TIMEOUT_MS", "3000")
        .env("MFA_DB_DEADLINE_MS", DEADLINE.as_millis().to_string())
        .env("MFA_DB_CONNECT_TIMEOUT", "1")
        .env("MFA_DB_STARTUP_TIMEOUT", "30")
        .env("RUST_LOG", "warn,mspbots_mfa::startup=info");
}

/// The `host:port` a log line announces right after `marker`, if it does.
fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect(),
    )
}

fn start_service(db_url: &str, data_dir: &Path) -> Service {
    let mut cmd = Command::new(BIN);
    env(&mut cmd, db_url, data_dir);
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = address_after(&line, "listening on http://") {
                let _ = tx.send(addr);
            }
            if let Ok(mut l) = sink.lock() {
                l.push(line);
            }
        }
    });
    let addr = rx
        .recv_timeout(2 * HANG)
        .expect("the service becomes ready");
    Service {
        child,
        base: format!("http://{addr}"),
        log,
    }
}

/// One answer a client saw.
#[derive(Debug, Clone)]
struct Sample {
    status: u16,
    took: Duration,
    retry_after: bool,
    problem_json: bool,
    login_id: Option<String>,
    /// Set when no HTTP answer came at all (reset, timeout).
    transport_error: Option<String>,
}

async fn sign_in(client: &reqwest::Client, base: &str, key: &str, user: &str) -> Sample {
    let t = Instant::now();
    let body = json!({"tenant_id": "fault", "user_id": user, "email": format!("{user}@fault.example"),
        "identity_provider": "local", "roles": [], "surface": "app"});
    let res = client
        .post(format!("{base}/v1/logins"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            return Sample {
                status: 0,
                took: t.elapsed(),
                retry_after: false,
                problem_json: false,
                login_id: None,
                transport_error: Some(e.to_string()),
            }
        }
    };
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let problem_json = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Sample {
        status,
        took: t.elapsed(),
        retry_after,
        problem_json,
        login_id: body["login_id"].as_str().map(str::to_owned),
        transport_error: None,
    }
}

async fn readyz(client: &reqwest::Client, base: &str) -> (u16, Duration) {
    let t = Instant::now();
    let status = match client.get(format!("{base}/readyz")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    };
    (status, t.elapsed())
}

/// Polls `/readyz` of every instance until each answers `want` (each poll must be answered:
/// the client gives up only after [`HANG`]); returns how long it took, for the log.
async fn readiness_becomes(client: &reqwest::Client, bases: &[String], want: u16) -> Duration {
    let t = Instant::now();
    for base in bases {
        loop {
            let (status, took) = readyz(client, base).await;
            assert_ne!(
                status, 0,
                "{base}/readyz gave no answer ({took:?}): it hung"
            );
            if status == want {
                break;
            }
            assert!(
                t.elapsed() < HANG,
                "{base}/readyz is still {status}, not {want}, after {HANG:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    t.elapsed()
}

#[derive(diesel::QueryableByName)]
struct LoginId {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    login_id: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_frozen_and_restarted_under_load() {
    let bindir = pg_bindir();
    let suite = Instant::now();
    let cluster = Cluster::create(bindir);
    let db_url = cluster.url("mfa_fault");
    let data_dir = cluster.dir.join("service");
    std::fs::create_dir_all(&data_dir).unwrap();

    // Both instances share the development keys: the first creates them.
    let a = start_service(&db_url, &data_dir);
    let b = start_service(&db_url, &data_dir);
    let bases = vec![a.base.clone(), b.base.clone()];
    let key = {
        let mut cmd = Command::new(BIN);
        env(&mut cmd, &db_url, &data_dir);
        let out = cmd
            .args(["service-keys", "create", "--name", "fault"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let client = reqwest::Client::builder().timeout(HANG).build().unwrap();

    // The load: 4 clients, each one sign-in at a time with a short pause, alternating
    // instances, bounded by the scenario's length.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, bases, key, stop, samples) = (
                client.clone(),
                bases.clone(),
                key.clone(),
                stop.clone(),
                samples.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && n < 5000 {
                    let s = sign_in(&client, &bases[(w + n) % 2], &key, &format!("w{w}-{n}")).await;
                    samples.lock().unwrap().push(s);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            })
        })
        .collect();
    let count =
        |pred: &dyn Fn(&Sample) -> bool| samples.lock().unwrap().iter().filter(|s| pred(s)).count();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        count(&|s| s.status == 201) > 0,
        "the load works before any fault"
    );

    // 1. Postgres stopped (fast shutdown: in-flight transactions are terminated).
    let t = Instant::now();
    cluster.stop_fast();
    let not_ready_after = readiness_becomes(&client, &bases, 503).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during_stop = count(&|s| s.status == 503);
    cluster.start();
    let ready_after_start = readiness_becomes(&client, &bases, 200).await;
    eprintln!(
        "stop: /readyz 503 after {not_ready_after:?}; down for {:?}; ready again {ready_after_start:?} after the restart",
        t.elapsed() - ready_after_start
    );
    assert!(
        during_stop > 0,
        "requests were refused while Postgres was down"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // 2. Postgres frozen: connections stay open but nothing answers. The 503s counted
    // before the thaw were answered while Postgres could not answer anything: by the
    // service's deadline, not by the thaw.
    let before_freeze = count(&|s| s.status == 503);
    let t = Instant::now();
    cluster.signal("-STOP");
    let not_ready_after = readiness_becomes(&client, &bases, 503).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let frozen_for = t.elapsed();
    let during_freeze = count(&|s| s.status == 503) - before_freeze;
    cluster.signal("-CONT");
    let ready_after_thaw = readiness_becomes(&client, &bases, 200).await;
    eprintln!(
        "freeze {frozen_for:?}: /readyz 503 after {not_ready_after:?}; {during_freeze} sign-ins answered 503 before the thaw; ready {ready_after_thaw:?} after the thaw"
    );
    assert!(
        during_freeze > 0,
        "requests were answered 503 while Postgres was still frozen"
    );

    // Recovery: sign-ins succeed again on both instances.
    let successes_before = count(&|s| s.status == 201);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let samples = samples.lock().unwrap().clone();
    assert!(
        samples.iter().filter(|s| s.status == 201).count() > successes_before,
        "sign-ins succeed after the faults"
    );

    // No 500, no lost or hung request (the client gives up only after HANG), every 503 with
    // Retry-After as problem+json. How long each took is printed, not asserted.
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for s in &samples {
        *by_status.entry(s.status).or_default() += 1;
    }
    let slowest = samples.iter().map(|s| s.took).max().unwrap_or_default();
    let slowest_503 = samples
        .iter()
        .filter(|s| s.status == 503)
        .map(|s| s.took)
        .max()
        .unwrap_or_default();
    eprintln!("answers by status: {by_status:?}; slowest {slowest:?}; slowest 503 {slowest_503:?}");
    for s in &samples {
        assert!(s.transport_error.is_none(), "no answer: {s:?}");
        assert!(matches!(s.status, 201 | 503), "{s:?}");
        if s.status == 503 {
            assert!(s.retry_after && s.problem_json, "{s:?}");
        }
    }

    // The audit trail holds every success the clients saw. A 503 may hide a commit that
    // happened (the answer to COMMIT was lost with the connection or came after the
    // deadline): such rows are in doubt, never more than the 503s.
    let seen: HashSet<String> = samples.iter().filter_map(|s| s.login_id.clone()).collect();
    let audited: HashSet<String> = {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        let mut conn = diesel_async::AsyncPgConnection::establish(&db_url)
            .await
            .unwrap();
        diesel::sql_query(
            "SELECT details->>'login_id' AS login_id FROM audit_events \
             WHERE tenant_id = 'fault' AND type = 'login.succeeded'",
        )
        .load::<LoginId>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.login_id)
        .collect()
    };
    let missing: Vec<_> = seen.difference(&audited).collect();
    assert!(
        missing.is_empty(),
        "successes without an audit row: {missing:?}"
    );
    let in_doubt = audited.difference(&seen).count();
    let unavailable = by_status.get(&503).copied().unwrap_or(0);
    eprintln!(
        "audit: {} login.succeeded rows, {} successes seen, {in_doubt} committed behind a 503",
        audited.len(),
        seen.len()
    );
    assert!(in_doubt <= unavailable);
    assert_eq!(seen.len(), by_status.get(&201).copied().unwrap_or(0));

    // A frozen Postgres at start: the connection is accepted and never answered; the
    // instance still gives up (start_doomed fails on a hang), saying that Postgres accepted
    // and did not answer, and naming host, port and its start-up limit.
    cluster.signal("-STOP");
    let (status, log, lived) = start_doomed(&db_url).await;
    cluster.signal("-CONT");
    assert!(!status.success(), "{log}");
    let msg = exit_message(&log, &format!("127.0.0.1:{}", cluster.port));
    eprintln!("frozen at start: exited after {lived:?}: {msg}");
    assert!(msg.contains("did not answer within"), "{msg}");

    // Nothing was logged as an internal error.
    for svc in [&a, &b] {
        let log = svc.log.lock().unwrap().join("\n");
        assert!(!log.contains("internal error"), "{log}");
    }
    eprintln!("fault suite took {:?}", suite.elapsed());
}

/// Starts an instance that cannot prepare its database (`MFA_DB_STARTUP_TIMEOUT=3`): checks
/// `/healthz` 200 and `/readyz` 503 meanwhile, waits for it to give up (failing only if it
/// is still running after [`HANG`]), and returns its exit status, its log and how long it
/// lived (for the log).
async fn start_doomed(db_url: &str) -> (std::process::ExitStatus, String, Duration) {
    let dir = std::env::temp_dir().join(format!("mfa-fault-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(BIN);
    env(&mut cmd, db_url, &dir);
    let started = Instant::now();
    let mut child = cmd
        .env("MFA_DB_STARTUP_TIMEOUT", "3")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = address_after(&line, "serving /healthz on http://") {
                let _ = tx.send(addr);
            }
            lines.push(line);
        }
        lines
    });
    let addr = rx.recv_timeout(HANG).expect("serves /healthz");
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!(
                "the service did not give up within {HANG:?} (MFA_DB_STARTUP_TIMEOUT=3): it hung"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lived = started.elapsed();
    let log = reader.join().unwrap().join("\n");
    let _ = std::fs::remove_dir_all(&dir);
    (status, log, lived)
}

/// The operator's message: `Error: …` naming host:port, the cause and the setting.
#[track_caller]
fn exit_message(log: &str, target: &str) -> String {
    let msg = log
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("an error message: {log}"));
    assert!(
        msg.contains(target) && msg.contains("MFA_DB_STARTUP_TIMEOUT"),
        "{msg}"
    );
    msg.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_is_retried_then_named_in_the_exit_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, log, _) = start_doomed(&format!("postgres://postgres@127.0.0.1:{port}/mfa")).await;
    assert!(!status.success(), "{log}");
    let retries = log
        .lines()
        .filter(|l| l.contains("is not reachable yet"))
        .count();
    assert!(retries >= 2, "retried with backoff: {log}");
    let msg = exit_message(&log, &format!("127.0.0.1:{port}"));
    assert!(msg.contains("Connection refused"), "{msg}");
}
