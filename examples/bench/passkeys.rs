//! The passkey phase (issue 24): users `pk1`..`pkN` of the bench tenant each register a
//! passkey (the tests' software authenticator, `tests/api/synced_key.rs`: P-256, CBOR,
//! attestation `none`, counter 0), then sign in with it — a start (not measured), then the
//! measured pair `webauthn-challenge` + `webauthn`, the latency of a sign-in being the pair's.
//! It runs after the TOTP phases and pgbench, so their figures are as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::synced_key::SyncedKey;
use super::{cpu_now, error_label, print_cpu, run_workers, summarize, text, top_statements};
use super::{Ctx, Pg, Run, TENANT};

/// The origin the authenticator's browser reports: any `http://localhost` port is allowed in
/// development (docs/API.md §16).
const ORIGIN: &str = "http://localhost:8080";

fn login_body(i: usize) -> Value {
    json!({"tenant_id": TENANT, "user_id": format!("pk{i}"), "email": format!("pk{i}@bench.example"),
           "identity_provider": "local", "surface": "app"})
}

async fn post(ctx: &Ctx, path: &str, token: &str, body: &Value) -> Result<super::Reply, String> {
    ctx.raw
        .post(path, token, body.to_string().as_bytes(), true)
        .await
}

/// User `pk{i}`: signed in without a factor, registers `key` as their first factor.
async fn enroll(ctx: &Ctx, i: usize, key: &SyncedKey) -> Result<(), String> {
    let r = post(ctx, "/v1/logins", &ctx.key, &login_body(i)).await?;
    let token =
        text(&r.body, "access_token").ok_or_else(|| format!("login: {}", error_label(&r)))?;
    let r = post(ctx, "/v1/me/factors", &token, &json!({"type": "webauthn"})).await?;
    let id = text(&r.body, "factor_id").ok_or_else(|| format!("factor: {}", error_label(&r)))?;
    let credential = key.create(&r.body["public_key"]);
    let path = format!("/v1/me/factors/{id}/confirm");
    let r = post(ctx, &path, &token, &json!({ "credential": credential })).await?;
    match r.status {
        200 => Ok(()),
        _ => Err(format!("confirm: {}", error_label(&r))),
    }
}

/// A sign-in of user `pk{i}` up to its challenge: (login id, mfa token).
async fn start(ctx: &Ctx, i: usize) -> Result<(String, String), String> {
    let r = post(ctx, "/v1/logins", &ctx.key, &login_body(i)).await?;
    match (text(&r.body, "login_id"), text(&r.body, "mfa_token")) {
        (Some(id), Some(token)) => Ok((id, token)),
        _ => Err(format!("start: {}", error_label(&r))),
    }
}

/// The measured pair: a challenge, the key's assertion, and its answer.
async fn sign_in(ctx: &Ctx, key: &SyncedKey, id: &str, token: &str) -> Result<(), String> {
    let path = format!("/v1/logins/{id}/webauthn-challenge");
    let r = post(ctx, &path, token, &json!({})).await?;
    if r.status != 200 {
        return Err(format!("challenge {}", error_label(&r)));
    }
    let credential = key.get(&r.body["public_key"]);
    let path = format!("/v1/logins/{id}/webauthn");
    let r = ctx
        .raw
        .post(
            &path,
            token,
            json!({ "credential": credential }).to_string().as_bytes(),
            false,
        )
        .await?;
    match r.status {
        200 => Ok(()),
        _ => Err(format!("webauthn {}", error_label(&r))),
    }
}

/// Enrolls `users` passkey users, starts their sign-ins, then measures the passkey sign-ins
/// (bounded by `bound`), with CPU per sign-in and the top statements.
pub async fn phase(
    ctx: &Arc<Ctx>,
    pg: &Pg,
    pid: &str,
    users: usize,
    bound: Duration,
) -> anyhow::Result<Run> {
    println!("\n== phase P (passkeys, analyzed): {users} users pk1..pk{users}");
    let keys: Arc<Vec<SyncedKey>> = Arc::new((0..users).map(|_| SyncedKey::new(ORIGIN)).collect());
    let (c, k) = (ctx.clone(), keys.clone());
    let (tally, _, wall) = run_workers(ctx.conns, users, None, move |i| {
        let (c, k) = (c.clone(), k.clone());
        async move {
            let t = Instant::now();
            let Some(key) = k.get(i) else {
                return (Err("harness: no such key".to_owned()), None::<()>);
            };
            (enroll(&c, i + 1, key).await.map(|()| t.elapsed()), None)
        }
    })
    .await?;
    summarize("passkey enrollments", tally, wall, users);

    let c = ctx.clone();
    let (tally, pending, wall) = run_workers(ctx.conns, users, None, move |i| {
        let c = c.clone();
        async move {
            let t = Instant::now();
            match start(&c, i + 1).await {
                Ok((id, token)) => (Ok(t.elapsed()), Some((i, id, token))),
                Err(e) => (Err(e), None),
            }
        }
    })
    .await?;
    summarize("starts (not measured)", tally, wall, users);

    pg.query("SELECT pg_stat_statements_reset()")?;
    let pending = Arc::new(pending);
    let n = pending.len();
    let cpu_before = cpu_now(pg, pid);
    let (c, k, p) = (ctx.clone(), keys.clone(), pending.clone());
    let (tally, _, wall) = run_workers(ctx.conns, n, Some(Instant::now() + bound), move |j| {
        let (c, k, p) = (c.clone(), k.clone(), p.clone());
        async move {
            let Some((key, (_, id, token))) = p.get(j).and_then(|x| Some((k.get(x.0)?, x))) else {
                return (Err("harness: no such login".to_owned()), None::<()>);
            };
            let t = Instant::now();
            (
                sign_in(&c, key, id, token).await.map(|()| t.elapsed()),
                None,
            )
        }
    })
    .await?;
    let ok = tally.lat.len() as u64;
    let cpu_after = cpu_now(pg, pid);
    let (run, _) = summarize("passkey sign-ins (challenge + webauthn)", tally, wall, n);
    print_cpu("passkey sign-in", &cpu_before, &cpu_after, ok);
    top_statements(pg)?;
    Ok(run)
}
