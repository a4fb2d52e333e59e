//! The sign-in benchmark's load generator (issue 8), run by `bench/run.sh` against a live
//! service and the private Postgres cluster that script started. It prints figures and asserts
//! nothing about time; it fails (exit 1) only when the harness itself cannot go on (enrollment
//! failed, psql or pgbench could not run).
//!
//! usage: bench BASE_URL SERVICE_KEY [USERS] [CONNECTIONS]
//!
//! Environment (set by `bench/run.sh`): `BENCH_PGPORT`, `BENCH_DB` (the private cluster and the
//! service's database, user `postgres` on 127.0.0.1), `BENCH_PGBIN` (Postgres binaries),
//! `BENCH_PID` (the service's pid, for its memory), `BENCH_TMP` (a scratch directory),
//! `BENCH_PHASE_SECS` (bound of each starts / verifies run, default 15),
//! `BENCH_PGBENCH_SECS` (default 15).
//!
//! Steps: enroll USERS users of the tenant `bench` (ids `u1`..`uN`) through the API; phase A on
//! the database as the service left it (no ANALYZE; autovacuum is off in the cluster), then
//! ANALYZE and phase B. A phase resets `pg_stat_statements`, then runs the starts
//! (`POST /v1/logins`, each user at most once) and the verifies of those logins
//! (`POST /v1/logins/{id}/verify`, a distinct valid code each), each with CONNECTIONS workers on
//! one shared queue and bounded in time, and reports throughput, latency, errors by status and
//! problem code, the server's peak RSS and the top statements. Every request goes through
//! `RawHttp` (keep-alive HTTP/1.1, as `wrk`). Then `pgbench` of a minimal
//! verification transaction on the same cluster, and a summary line.
//!
//! Codes: the replay guard accepts only a step later than the factor's last accepted one and the
//! server accepts ±1 step of its clock. Enrollment confirmed with the then-current step, so a
//! verify sends the code of (current step + 1), computed when it is sent; between the phases the
//! harness waits for the next 30-s boundary so that phase B's steps are later than phase A's.
//!
//! Then phase P (`bench/passkeys.rs`): as many users sign in with a passkey (challenge +
//! assertion per sign-in), after pgbench so that nothing above changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};

#[path = "bench/passkeys.rs"]
mod passkeys;
/// The tests' software authenticator, shared as it is.
#[allow(clippy::unwrap_used, dead_code)]
#[path = "../tests/api/synced_key.rs"]
mod synced_key;

const TENANT: &str = "bench";
const STEP_SECS: u64 = 30;

// ----------------------------------------------------------------------------------------------
// TOTP

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn current_step() -> u64 {
    unix_now() as u64 / STEP_SECS
}

fn code_at_step(secret: &[u8], step: u64) -> String {
    totp_lite::totp_custom::<totp_lite::Sha1>(STEP_SECS, 6, secret, step * STEP_SECS)
}

/// Sleeps until just after the next time-step boundary.
async fn wait_next_step() {
    let now = unix_now();
    let next = ((now / STEP_SECS as f64).floor() + 1.0) * STEP_SECS as f64 + 0.25;
    let wait = (next - now).max(0.0);
    println!("waiting {wait:.1} s for the next {STEP_SECS}-s step (replay guard)");
    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
}

// ----------------------------------------------------------------------------------------------
// HTTP

struct Reply {
    status: u16,
    body: Value,
}

/// The harness's HTTP client: HTTP/1.1 over plain keep-alive connections, request bytes
/// written in one go and responses read by `Content-Length`, as `wrk` does (the issue's own
/// measurement). reqwest, used before, cost 0.06–0.09 ms of CPU per request on the same 2
/// cores as the service: a fifth of what the service itself spent. `Err` is a transport
/// failure, labelled for the error table.
struct RawHttp {
    addr: String,
    idle: std::sync::Mutex<Vec<RawConn>>,
}

struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawHttp {
    fn new(base: &str) -> anyhow::Result<RawHttp> {
        let addr = base
            .strip_prefix("http://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .context("the base URL must be http://host:port, without a path")?
            .to_owned();
        Ok(RawHttp {
            addr,
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// One POST of a JSON body. The body of a 2xx answer is parsed only when `want_body`.
    async fn post(
        &self,
        path: &str,
        bearer: &str,
        body: &[u8],
        want_body: bool,
    ) -> Result<Reply, String> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        // A pooled connection the server has closed since (its keep-alive timeout, e.g. while
        // the harness waits between phases) reads as end of file before anything is sent; it
        // is dropped, never retried after the request went out (a POST is not repeated).
        let reused = loop {
            let Some(conn) = self.idle.lock().ok().and_then(|mut v| v.pop()) else {
                break None;
            };
            match conn.stream.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Some(conn),
                _ => continue,
            }
        };
        let conn = match reused {
            Some(conn) => conn,
            None => {
                let stream = tokio::net::TcpStream::connect(&self.addr)
                    .await
                    .map_err(|_| "transport (connect)".to_owned())?;
                stream
                    .set_nodelay(true)
                    .map_err(|_| "transport (connect)".to_owned())?;
                RawConn {
                    stream,
                    buf: Vec::with_capacity(4096),
                }
            }
        };
        let (conn, reply) = tokio::time::timeout(
            Duration::from_secs(60),
            Self::exchange(conn, &req, want_body),
        )
        .await
        .unwrap_or_else(|_| Err("transport (timeout)".to_owned()))?;
        if let (Some(conn), Ok(mut idle)) = (conn, self.idle.lock()) {
            idle.push(conn);
        }
        Ok(reply)
    }

    async fn exchange(
        mut conn: RawConn,
        req: &[u8],
        want_body: bool,
    ) -> Result<(Option<RawConn>, Reply), String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let failed = |what: &str| format!("transport ({what})");
        if conn.stream.write_all(req).await.is_err() {
            return Err(failed("closed"));
        }
        conn.buf.clear();
        let head_end = loop {
            if let Some(i) = conn.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(failed("closed")),
                Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&conn.buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| failed("bad status line"))?;
        if head.contains("\r\ntransfer-encoding:") {
            return Err(failed("chunked answer"));
        }
        let len: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| failed("no content-length"))?;
        while conn.buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match conn.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(failed("closed")),
                Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body_bytes = &conn.buf[head_end..head_end + len];
        let body = if want_body || !(200..300).contains(&status) {
            serde_json::from_slice(body_bytes).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let close = head.contains("\r\nconnection: close");
        Ok((
            if close { None } else { Some(conn) },
            Reply { status, body },
        ))
    }
}

/// `"<status> <problem code>"`, the key of the error table.
fn error_label(r: &Reply) -> String {
    format!("{} {}", r.status, r.body["code"].as_str().unwrap_or("-"))
}

fn text(v: &Value, k: &str) -> Option<String> {
    v[k].as_str().map(str::to_owned)
}

fn login_body(i: usize) -> Value {
    json!({"tenant_id": TENANT, "user_id": format!("u{i}"), "email": format!("u{i}@bench.example"),
           "identity_provider": "local", "surface": "app"})
}

// ----------------------------------------------------------------------------------------------
// Tallies

#[derive(Default)]
struct Tally {
    lat: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.lat.extend(other.lat);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Figures of one run of one kind of request (starts or verifies).
struct Run {
    ok: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summarize(name: &str, mut t: Tally, wall: Duration, offered: usize) -> (Run, Tally) {
    t.lat.sort_unstable();
    let pct = |p: f64| {
        let i = ((t.lat.len() as f64 - 1.0) * p).round().max(0.0) as usize;
        t.lat.get(i).copied().map_or(f64::NAN, ms)
    };
    let run = Run {
        ok: t.lat.len(),
        rate: t.lat.len() as f64 / wall.as_secs_f64().max(1e-9),
        p50: pct(0.50),
        p99: pct(0.99),
        max: t.lat.last().copied().map_or(f64::NAN, ms),
        errors: t.error_count(),
    };
    println!(
        "  {name}: {} ok of {offered} queued in {:.2} s = {:.0}/s | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (successful requests) | errors {}",
        run.ok,
        wall.as_secs_f64(),
        run.rate,
        run.p50,
        run.p99,
        run.max,
        run.errors
    );
    for (label, n) in &t.errors {
        println!("    error {label}: {n}");
    }
    (run, t)
}

// ----------------------------------------------------------------------------------------------
// Postgres (psql and pgbench on the private cluster)

struct Pg {
    bin: PathBuf,
    port: String,
    db: String,
}

impl Pg {
    fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            bin: PathBuf::from(
                std::env::var("BENCH_PGBIN")
                    .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
            ),
            port: std::env::var("BENCH_PGPORT")
                .context("BENCH_PGPORT is not set (run the benchmark with bench/run.sh)")?,
            db: std::env::var("BENCH_DB").unwrap_or_else(|_| "mfa_bench".into()),
        })
    }

    /// Runs `sql` with psql; rows as fields split on the unit separator.
    fn query(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-F",
                "\x1f",
            ])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port,
                "-U",
                "postgres",
                "-d",
                &self.db,
            ])
            .args(["-c", sql])
            .output()
            .with_context(|| format!("running {}", self.bin.join("psql").display()))?;
        if !out.status.success() {
            bail!(
                "psql failed on {sql:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\x1f').map(str::to_owned).collect())
            .collect())
    }

    fn value(&self, sql: &str) -> anyhow::Result<String> {
        Ok(self
            .query(sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or_default())
    }
}

/// The statements of the phase, most expensive first.
fn top_statements(pg: &Pg) -> anyhow::Result<()> {
    let rows = pg.query(
        "SELECT calls, plans, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), \
                round(mean_plan_time::numeric, 3), CASE WHEN toplevel THEN 'top' ELSE 'nested' END, \
                left(regexp_replace(query, '\\s+', ' ', 'g'), 100) \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query !~* 'pg_stat_statements|pg_stat_user_tables|pg_stats|^analyze' \
         ORDER BY total_exec_time DESC LIMIT 12",
    )?;
    let totals = pg.query(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(plans), 0), round(coalesce(sum(total_exec_time), 0)::numeric, 1), \
                round(coalesce(sum(total_plan_time), 0)::numeric, 1) \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query !~* 'pg_stat_statements|pg_stat_user_tables|pg_stats|^analyze'",
    )?;
    println!("  top statements (pg_stat_statements, this phase, by total exec time):");
    println!(
        "    {:>8} {:>8} {:>10} {:>9} {:>9} {:>6}  query",
        "calls", "plans", "total ms", "mean ms", "plan ms", "level"
    );
    for r in rows {
        if let [calls, plans, total, mean, plan, level, q] = r.as_slice() {
            println!("    {calls:>8} {plans:>8} {total:>10} {mean:>9} {plan:>9} {level:>6}  {q}");
        }
    }
    if let Some([calls, plans, exec, plan]) = totals.first().map(Vec::as_slice) {
        println!(
            "    all statements: calls {calls}, plans {plans}, exec {exec} ms, planning {plan} ms"
        );
    }
    Ok(())
}

/// Cumulative write counters: per table (inserts, updates, HOT updates) and the cluster's
/// WAL (records, full-page images, bytes).
struct Writes {
    tables: BTreeMap<String, [i64; 3]>,
    wal: [i64; 3],
}

const WRITTEN_TABLES: &str = "'users','logins','totp_factors','audit_events'";

async fn writes(pg: &Pg) -> anyhow::Result<Writes> {
    // Backends flush their table counters at most once a second when idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let num = |s: &str| s.parse::<i64>().unwrap_or(0);
    let mut tables = BTreeMap::new();
    for r in pg.query(&format!(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables \
         WHERE relname IN ({WRITTEN_TABLES})"
    ))? {
        if let [name, ins, upd, hot] = r.as_slice() {
            tables.insert(name.clone(), [num(ins), num(upd), num(hot)]);
        }
    }
    let wal = match pg
        .query("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")?
        .first()
        .map(Vec::as_slice)
    {
        Some([r, f, b]) => [num(r), num(f), num(b)],
        _ => [0; 3],
    };
    Ok(Writes { tables, wal })
}

/// What the verifies wrote, per successful verify: rows by table, the share of updates that
/// were HOT (no index entry written), and WAL.
fn print_writes(before: &Writes, after: &Writes, ok: u64) {
    let per = |d: i64| d as f64 / ok.max(1) as f64;
    println!("  rows written per verify (pg_stat_user_tables) and WAL per verify (pg_stat_wal):");
    for (name, a) in &after.tables {
        let b = before.tables.get(name).copied().unwrap_or([0; 3]);
        let (ins, upd, hot) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
        let hot_share = if upd > 0 {
            format!("{:.0} % HOT", 100.0 * hot as f64 / upd as f64)
        } else {
            "-".to_owned()
        };
        println!(
            "    {name:<14} inserts {:.2}  updates {:.2} ({hot_share})",
            per(ins),
            per(upd)
        );
    }
    let w = |i: usize| after.wal[i] - before.wal[i];
    println!(
        "    WAL            {:.1} records, {:.2} full-page images, {:.0} bytes",
        per(w(0)),
        per(w(1)),
        per(w(2))
    );
}

/// The bench tenant's row: its xmin and the table's update counters.
#[derive(PartialEq)]
struct TenantsState {
    xmin: String,
    n_tup_upd: i64,
    n_tup_hot_upd: i64,
    n_dead_tup: i64,
}

async fn tenants_state(pg: &Pg) -> anyhow::Result<TenantsState> {
    // Backends flush their table counters at most once a second when idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = pg.query(&format!(
        "SELECT coalesce((SELECT xmin::text FROM tenants WHERE tenant_id = '{TENANT}'), '-'), \
                n_tup_upd, n_tup_hot_upd, n_dead_tup \
         FROM pg_stat_user_tables WHERE relname = 'tenants'"
    ))?;
    let num = |s: &str| s.parse::<i64>().unwrap_or(-1);
    match rows.first().map(Vec::as_slice) {
        Some([xmin, upd, hot, dead]) => Ok(TenantsState {
            xmin: xmin.clone(),
            n_tup_upd: num(upd),
            n_tup_hot_upd: num(hot),
            n_dead_tup: num(dead),
        }),
        _ => bail!("no statistics row for the table tenants"),
    }
}

/// pgbench of a minimal verification transaction on the benchmark's own tables; its TPS.
fn pgbench(pg: &Pg, tmp: &std::path::Path, users: usize, secs: u64) -> anyhow::Result<f64> {
    let script = format!(
        "\\set n random(1, {users})\n\
         BEGIN;\n\
         SELECT factor_id, key_id, nonce, ciphertext, last_used_step FROM totp_factors WHERE tenant_id = '{TENANT}' AND user_id = 'u' || :n::text AND status = 'active';\n\
         UPDATE totp_factors SET last_used_step = last_used_step + 1, last_used_at = now() WHERE tenant_id = '{TENANT}' AND user_id = 'u' || :n::text AND status = 'active';\n\
         INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id, details) VALUES ('{TENANT}', 'login.succeeded', now(), 'u' || :n::text, 'u' || :n::text, '{{}}');\n\
         COMMIT;\n"
    );
    let path = tmp.join("pgbench-verify.sql");
    std::fs::write(&path, &script).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "\n== pgbench: minimal verification transaction (SELECT factor, guarded UPDATE, INSERT audit, COMMIT), 16 clients, 2 threads, -M prepared, {secs} s"
    );
    let out = Command::new(pg.bin.join("pgbench"))
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            "16",
            "-j",
            "2",
            "-T",
            &secs.to_string(),
        ])
        .args(["-h", "127.0.0.1", "-p", &pg.port, "-U", "postgres", "-f"])
        .arg(&path)
        .arg(&pg.db)
        .output()
        .with_context(|| format!("running {}", pg.bin.join("pgbench").display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    for l in stdout.lines().filter(|l| {
        l.starts_with("number of transactions actually processed")
            || l.starts_with("number of failed")
            || l.starts_with("latency average")
            || l.starts_with("tps")
    }) {
        println!("  {l}");
    }
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .context("no `tps = ` line in pgbench's output")
}

// ----------------------------------------------------------------------------------------------
// Server memory

fn status_kb(pid: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak RSS of the service in MB (VmHWM).
fn peak_rss_mb(pid: &str) -> Option<f64> {
    status_kb(pid, "VmHWM:").map(|kb| kb as f64 / 1024.0)
}

/// Resets the service's VmHWM to its current RSS (Linux `clear_refs` 5), so the next reading is
/// the peak of the phase alone. False when not permitted (then readings are cumulative).
fn reset_peak_rss(pid: &str) -> bool {
    !pid.is_empty() && std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time (user + system) a process has used so far, in seconds (`/proc/PID/stat`, the
/// fields after the command name: utime and stime are the 12th and 13th).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux (the kernel's ABI for /proc, whatever HZ is).
    Some(ticks as f64 / 100.0)
}

/// CPU seconds used so far by the service, by the cluster's processes (its backends and
/// background processes, from `pg_stat_activity`) and by this load generator.
struct Cpu {
    service: f64,
    postgres: f64,
    generator: f64,
}

fn cpu_now(pg: &Pg, service_pid: &str) -> Cpu {
    let pids = pg
        .query("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()")
        .unwrap_or_default();
    Cpu {
        service: cpu_secs(service_pid).unwrap_or(f64::NAN),
        postgres: pids
            .iter()
            .filter_map(|r| r.first())
            .filter_map(|pid| cpu_secs(pid))
            .sum(),
        generator: cpu_secs("self").unwrap_or(f64::NAN),
    }
}

/// CPU per successful request (`what`: start or verify), in ms: what the machine's two cores
/// spent on each, by process.
fn print_cpu(what: &str, before: &Cpu, after: &Cpu, ok: u64) {
    let per = |a: f64, b: f64| 1000.0 * (a - b) / ok.max(1) as f64;
    let (s, p, g) = (
        per(after.service, before.service),
        per(after.postgres, before.postgres),
        per(after.generator, before.generator),
    );
    println!(
        "  CPU per {what}: service {s:.3} ms, Postgres {p:.3} ms, load generator {g:.3} ms (service + Postgres {:.3} ms)",
        s + p
    );
}

fn fmt_mb(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |v| format!("{v:.1}"))
}

// ----------------------------------------------------------------------------------------------
// Load

struct Ctx {
    raw: RawHttp,
    key: String,
    conns: usize,
}

/// Runs `conns` workers over the items `0..n` of a shared queue until it is empty or
/// `deadline` passes; each worker gets its own tally and output vector, merged at the end.
async fn run_workers<T, F, Fut>(
    conns: usize,
    n: usize,
    deadline: Option<Instant>,
    job: F,
) -> anyhow::Result<(Tally, Vec<T>, Duration)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Result<Duration, String>, Option<T>)> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let started = Instant::now();
    let mut handles = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (next, job) = (next.clone(), job.clone());
        handles.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut out = Vec::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (result, item) = job(i).await;
                match result {
                    Ok(d) => tally.lat.push(d),
                    Err(label) => tally.error(label),
                }
                out.extend(item);
            }
            (tally, out)
        }));
    }
    let mut tally = Tally::default();
    let mut out = Vec::new();
    for h in handles {
        let (t, o) = h.await.context("a load worker panicked")?;
        tally.merge(t);
        out.extend(o);
    }
    Ok((tally, out, started.elapsed()))
}

/// Enrolls user `i` (login → access token → enrollment → confirm); returns its secret.
async fn enroll(ctx: &Ctx, i: usize) -> Result<Vec<u8>, String> {
    let r = ctx
        .raw
        .post(
            "/v1/logins",
            &ctx.key,
            login_body(i).to_string().as_bytes(),
            true,
        )
        .await?;
    let token = match (r.status, r.body["status"].as_str()) {
        (201 | 200, Some("authenticated")) => text(&r.body, "access_token"),
        (201 | 200, s) => return Err(format!("login: status {}", s.unwrap_or("-"))),
        _ => return Err(format!("login: {}", error_label(&r))),
    }
    .ok_or("login: no access_token")?;
    let r = ctx
        .raw
        .post(
            "/v1/me/totp-enrollment",
            &token,
            json!({}).to_string().as_bytes(),
            true,
        )
        .await?;
    if r.status != 201 && r.status != 200 {
        return Err(format!("enrollment: {}", error_label(&r)));
    }
    let secret = text(&r.body, "secret")
        .and_then(|s| data_encoding::BASE32_NOPAD.decode(s.as_bytes()).ok())
        .ok_or("enrollment: no base32 secret")?;
    let code = code_at_step(&secret, current_step());
    let r = ctx
        .raw
        .post(
            "/v1/me/totp-enrollment/confirm",
            &token,
            json!({ "code": code }).to_string().as_bytes(),
            true,
        )
        .await?;
    if r.status != 200 {
        return Err(format!("confirm: {}", error_label(&r)));
    }
    Ok(secret)
}

/// A login waiting for its code: (user index, login id, mfa token).
type Pending = (usize, String, String);

struct Phase {
    starts: Run,
    verifies: Run,
    peak_rss_mb: Option<f64>,
}

async fn phase(
    ctx: &Arc<Ctx>,
    pg: &Pg,
    pid: &str,
    name: &str,
    secrets: &Arc<Vec<Vec<u8>>>,
    bound: Duration,
) -> anyhow::Result<Phase> {
    println!("\n== phase {name}");
    let stats_rows = pg.value("SELECT count(*) FROM pg_stats WHERE schemaname = 'public'")?;
    println!("  planner statistics: {stats_rows} column rows in pg_stats (0 = never analyzed)");
    pg.query("SELECT pg_stat_statements_reset()")?;
    let rss_reset = reset_peak_rss(pid);

    // Starts: every user at most once.
    let users = secrets.len();
    let cpu_before = cpu_now(pg, pid);
    let c = ctx.clone();
    let (tally, pending, wall) =
        run_workers(ctx.conns, users, Some(Instant::now() + bound), move |i| {
            let c = c.clone();
            async move {
                let body = login_body(i + 1).to_string();
                let t = Instant::now();
                let r = c
                    .raw
                    .post("/v1/logins", &c.key, body.as_bytes(), true)
                    .await;
                let took = t.elapsed();
                match r {
                    Ok(r) if r.status == 201 || r.status == 200 => {
                        match (
                            r.body["status"].as_str(),
                            text(&r.body, "login_id"),
                            text(&r.body, "mfa_token"),
                        ) {
                            (Some("verification_required"), Some(id), Some(tok)) => {
                                (Ok(took), Some((i, id, tok)))
                            }
                            (s, _, _) => (
                                Err(format!("{} status={}", r.status, s.unwrap_or("-"))),
                                None,
                            ),
                        }
                    }
                    Ok(r) => (Err(error_label(&r)), None),
                    Err(e) => (Err(e), None),
                }
            }
        })
        .await?;
    let started_ok = tally.lat.len() as u64;
    let cpu_after = cpu_now(pg, pid);
    let (starts, _) = summarize("starts  ", tally, wall, users);
    print_cpu("start", &cpu_before, &cpu_after, started_ok);

    // Verifies of those logins, each with a fresh valid code computed at send time.
    let pending: Arc<Vec<Pending>> = Arc::new(pending);
    let n = pending.len();
    let written_before = writes(pg).await?;
    let cpu_before = cpu_now(pg, pid);
    let (c, s, p) = (ctx.clone(), secrets.clone(), pending.clone());
    let (tally, _, wall) = run_workers(ctx.conns, n, Some(Instant::now() + bound), move |k| {
        let (c, s, p) = (c.clone(), s.clone(), p.clone());
        async move {
            let Some((i, id, tok)) = p.get(k) else {
                return (Err("harness: no such login".to_owned()), None::<()>);
            };
            let Some(secret) = s.get(*i) else {
                return (Err("harness: no such user".to_owned()), None);
            };
            let t = Instant::now();
            let code = code_at_step(secret, current_step() + 1);
            let body = format!(r#"{{"code":"{code}"}}"#);
            let path = format!("/v1/logins/{id}/verify");
            let r = c.raw.post(&path, tok, body.as_bytes(), false).await;
            let took = t.elapsed();
            match r {
                Ok(r) if r.status == 200 => (Ok(took), None),
                Ok(r) => (Err(error_label(&r)), None),
                Err(e) => (Err(e), None),
            }
        }
    })
    .await?;
    let verified_ok = tally.lat.len() as u64;
    let cpu_after = cpu_now(pg, pid);
    let (verifies, tally) = summarize("verifies", tally, wall, n);
    print_cpu("verify", &cpu_before, &cpu_after, verified_ok);
    print_writes(&written_before, &writes(pg).await?, verified_ok);
    let reused: u64 = tally
        .errors
        .iter()
        .filter(|(k, _)| k.contains("code_reused"))
        .map(|(_, v)| v)
        .sum();
    if reused > 0 {
        eprintln!(
            "\n!!!!!!!! {reused} verifies answered code_reused: the HARNESS sent a code of a step \
             already used (its step arithmetic or the wait between phases is wrong); the verify \
             figures of phase {name} are not valid !!!!!!!!\n"
        );
    }

    let peak = peak_rss_mb(pid);
    println!(
        "  server peak RSS (VmHWM) {} MB{}",
        fmt_mb(peak),
        if rss_reset {
            " during this phase"
        } else {
            " since start (could not reset VmHWM)"
        }
    );
    top_statements(pg)?;
    Ok(Phase {
        starts,
        verifies,
        peak_rss_mb: peak,
    })
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "n/a".to_owned()
    }
}

fn phase_line(p: &Phase) -> String {
    format!(
        "starts/s={:.0} p50={:.1}ms p99={:.1}ms errors={} | verifies/s={:.0} p50={:.1}ms p99={:.1}ms errors={}",
        p.starts.rate,
        p.starts.p50,
        p.starts.p99,
        p.starts.errors,
        p.verifies.rate,
        p.verifies.p50,
        p.verifies.p99,
        p.verifies.errors
    )
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!(
            "usage: bench BASE_URL SERVICE_KEY [USERS] [CONNECTIONS]  (run it with bench/run.sh)"
        );
        std::process::exit(2);
    };
    let users: usize = args
        .get(3)
        .map_or(Ok(20_000), |s| s.parse())
        .context("USERS")?;
    let conns: usize = args
        .get(4)
        .map_or(Ok(32), |s| s.parse())
        .context("CONNECTIONS")?;
    anyhow::ensure!(
        users >= 1 && conns >= 1,
        "USERS and CONNECTIONS must be >= 1"
    );
    let pid = std::env::var("BENCH_PID").unwrap_or_default();
    let tmp = PathBuf::from(std::env::var("BENCH_TMP").unwrap_or_else(|_| "/tmp".into()));
    let bound = Duration::from_secs(env_secs("BENCH_PHASE_SECS", 15));
    let pgbench_secs = env_secs("BENCH_PGBENCH_SECS", 15);
    let pg = Pg::from_env()?;

    let ctx = Arc::new(Ctx {
        raw: RawHttp::new(base)?,
        key: key.clone(),
        conns,
    });

    // Enrollment: users u1..uN of one tenant, CONNECTIONS at a time (QR rendering included).
    println!("== enrollment: {users} users of tenant {TENANT}, {conns} connections");
    let done = Arc::new(AtomicUsize::new(0));
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                println!(
                    "  … {} / {users} enrolled after {:.0} s",
                    done.load(Ordering::Relaxed),
                    t.elapsed().as_secs_f64()
                );
            }
        })
    };
    let (c, d) = (ctx.clone(), done.clone());
    let enrolled = run_workers(conns, users, None, move |i| {
        let (c, d) = (c.clone(), d.clone());
        async move {
            let t = Instant::now();
            let mut last = String::new();
            for _attempt in 0..3 {
                match enroll(&c, i + 1).await {
                    Ok(secret) => {
                        d.fetch_add(1, Ordering::Relaxed);
                        return (Ok(t.elapsed()), Some((i, secret)));
                    }
                    Err(e) => last = e,
                }
            }
            (Err(last), None)
        }
    })
    .await;
    progress.abort();
    let (tally, list, wall) = enrolled?;
    println!(
        "  enrolled {} of {users} users in {:.1} s ({:.0} users/s, 3 requests each)",
        list.len(),
        wall.as_secs_f64(),
        list.len() as f64 / wall.as_secs_f64().max(1e-9)
    );
    if !tally.errors.is_empty() {
        for (label, n) in &tally.errors {
            eprintln!("  enrollment failed (after 3 attempts) {label}: {n}");
        }
        bail!("enrollment failed for {} users", tally.error_count());
    }
    let mut secrets = vec![Vec::new(); users];
    for (i, s) in list {
        if let Some(slot) = secrets.get_mut(i) {
            *slot = s;
        }
    }
    let secrets = Arc::new(secrets);
    let enroll_rss = peak_rss_mb(&pid);
    println!("  server peak RSS (VmHWM) so far {} MB", fmt_mb(enroll_rss));

    let before = tenants_state(&pg).await?;
    let a = phase(&ctx, &pg, &pid, "A (no ANALYZE)", &secrets, bound).await?;

    println!("\n== ANALYZE");
    let t = Instant::now();
    pg.query("ANALYZE")?;
    println!("  took {:.2} s", t.elapsed().as_secs_f64());
    wait_next_step().await;
    let b = phase(&ctx, &pg, &pid, "B (analyzed)", &secrets, bound).await?;
    let after = tenants_state(&pg).await?;

    let tps = pgbench(&pg, &tmp, users, pgbench_secs);
    let tps_num = tps.as_ref().map_or(f64::NAN, |v| *v);
    if let Err(e) = &tps {
        eprintln!("pgbench: {e:#}");
    }

    let p = passkeys::phase(&ctx, &pg, &pid, users, bound).await?;

    let written = before != after;
    println!("\n== tenants row during the phases");
    println!(
        "  xmin {} -> {}; n_tup_upd {} -> {}; n_tup_hot_upd {} -> {}; n_dead_tup {} -> {}",
        before.xmin,
        after.xmin,
        before.n_tup_upd,
        after.n_tup_upd,
        before.n_tup_hot_upd,
        after.n_tup_hot_upd,
        before.n_dead_tup,
        after.n_dead_tup
    );
    let tenants_note = if written {
        format!(
            "WRITTEN ({} updates)",
            after.n_tup_upd.saturating_sub(before.n_tup_upd)
        )
    } else {
        "not written".to_owned()
    };
    let peak = [a.peak_rss_mb, b.peak_rss_mb]
        .into_iter()
        .flatten()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));

    println!("\n== summary");
    println!(
        "summary: users={users} conn={conns} | A(no analyze): {} | B(analyzed): {} | pgbench={} tps | verify/pgbench A={} B={} | A/B={} | starts/verifies A={} B={} | peak RSS={} MB (A {} B {}; enrollment {}) | tenants row {tenants_note} during the phases",
        phase_line(&a),
        phase_line(&b),
        if tps_num.is_finite() { format!("{tps_num:.0}") } else { "n/a".to_owned() },
        ratio(a.verifies.rate, tps_num),
        ratio(b.verifies.rate, tps_num),
        ratio(a.verifies.rate, b.verifies.rate),
        ratio(a.starts.rate, a.verifies.rate),
        ratio(b.starts.rate, b.verifies.rate),
        fmt_mb(peak),
        fmt_mb(a.peak_rss_mb),
        fmt_mb(b.peak_rss_mb),
        fmt_mb(enroll_rss),
    );
    println!(
        "summary-passkey: users={users} conn={conns} | passkey sign-ins/s={:.0} p50={:.1}ms p99={:.1}ms errors={} | B verifies/passkey sign-ins={}",
        p.rate,
        p.p50,
        p.p99,
        p.errors,
        ratio(b.verifies.rate, p.rate),
    );
    if a.verifies.ok == 0 || b.verifies.ok == 0 {
        eprintln!("note: a phase verified nothing; see its error table above");
    }
    tps.map(|_| ())
}
