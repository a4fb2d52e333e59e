//! Load generator for the verify path, run against a live service by `bench/run.sh`.
//! Prints figures; asserts nothing about time (this machine is shared and noisy).
//!
//! usage: bench BASE_URL SERVICE_KEY [USERS] [CONCURRENCY] [SERVER_PID]

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

fn code(secret_b32: &str, offset_secs: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_b32.as_bytes())
        .unwrap_or_default();
    let t = u64::try_from(Utc::now().timestamp() + offset_secs).unwrap_or(0);
    totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &secret, t)
}

async fn post(c: &reqwest::Client, url: &str, token: &str, body: Value) -> (u16, Value) {
    match c.post(url).bearer_auth(token).json(&body).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

/// A user with an active factor; returns (login body, secret).
async fn enrolled_user(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    run: &str,
    i: usize,
) -> Option<(Value, String)> {
    let body = json!({"tenant_id": format!("bench-{run}"), "user_id": format!("u{i}"), "email": format!("u{i}@bench.example"),
        "identity_provider": "local", "surface": "app"});
    let (_, b) = post(c, &format!("{base}/v1/logins"), key, body.clone()).await;
    let token = field(&b, "access_token");
    let (_, m) = post(
        c,
        &format!("{base}/v1/me/totp-enrollment"),
        &token,
        json!({}),
    )
    .await;
    let secret = field(&m, "secret");
    let (s, _) = post(
        c,
        &format!("{base}/v1/me/totp-enrollment/confirm"),
        &token,
        json!({"code": code(&secret, 0)}),
    )
    .await;
    (s == 200).then_some((body, secret))
}

/// One sign-in: start (untimed) then verify (timed). The confirm used the current step, so
/// the next step's code (inside the default window) is fresh.
async fn verify_once(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    user: &(Value, String),
) -> Option<Duration> {
    let (_, b) = post(c, &format!("{base}/v1/logins"), key, user.0.clone()).await;
    let (login, mfa) = (field(&b, "login_id"), field(&b, "mfa_token"));
    let started = Instant::now();
    let (s, _) = post(
        c,
        &format!("{base}/v1/logins/{login}/verify"),
        &mfa,
        json!({"code": code(&user.1, 30)}),
    )
    .await;
    let took = started.elapsed();
    (s == 200).then_some(took)
}

fn report(name: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n={} ok, p50={:.2} ms, p95={:.2} ms, p99={:.2} ms, max={:.2} ms, throughput={:.0} verify/s",
        lat.len(),
        ms(pct(0.50)),
        ms(pct(0.95)),
        ms(pct(0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len() as f64 / wall.as_secs_f64()
    );
}

fn rss(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(key)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench BASE_URL SERVICE_KEY [USERS] [CONCURRENCY] [SERVER_PID]");
        std::process::exit(2);
    };
    let users: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(600);
    let conc: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(16);
    let pid = args.get(5).cloned().unwrap_or_default();
    let run = format!("{}", Utc::now().timestamp());
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap_or_default();

    let started = Instant::now();
    let mut pool = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(conc) {
        let batch = futures_util::future::join_all(
            chunk.iter().map(|i| enrolled_user(&c, base, key, &run, *i)),
        )
        .await;
        pool.extend(batch.into_iter().flatten());
    }
    println!(
        "enrolled {} users in {:.1} s (QR rendering included)",
        pool.len(),
        started.elapsed().as_secs_f64()
    );
    if !pid.is_empty() {
        println!("server memory after enrollment: {}", rss(&pid));
    }

    let (seq, par) = pool.split_at(pool.len() / 3);
    let t = Instant::now();
    let mut lat = Vec::new();
    for u in seq {
        lat.extend(verify_once(&c, base, key, u).await);
    }
    report("sequential verify", lat, t.elapsed());

    let t = Instant::now();
    let mut lat = Vec::new();
    for chunk in par.chunks(conc) {
        let batch =
            futures_util::future::join_all(chunk.iter().map(|u| verify_once(&c, base, key, u)))
                .await;
        lat.extend(batch.into_iter().flatten());
    }
    report(
        &format!("concurrent verify (x{conc}, incl. login start)"),
        lat,
        t.elapsed(),
    );
    if !pid.is_empty() {
        println!("server memory after load: {}", rss(&pid));
    }
}
