//! One credential id, one account (docs/API.md §21), when two users confirm the same
//! credential id at the same moment: both confirms are held at their write (a raw session
//! holds both pending credential rows) until both have passed every check before it, then let
//! go together. Exactly one registers; the other is what a credential id registered already
//! gets: `400 invalid_credential`, counted, audited, its challenge used up.

use diesel_async::SimpleAsyncConnection;
use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp, User};
use crate::resilience::{eventually, lock_waiters, within_hang_guard};
use crate::synced_key::SyncedKey;

/// `u` signed in with an app, with a pending passkey: `(access token, factor id, options)`.
async fn pending_passkey(app: &TestApp, u: &User) -> (String, String, Value) {
    let token = app.enroll_via_me(u).await.access_token;
    let r = app.add_factor(&token, json!({"type": "webauthn"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["factor_id"].as_str().unwrap().to_owned();
    (token, id, r.body["public_key"].clone())
}

async fn race(other_tenant: &str) {
    let app = TestApp::spawn().await;
    let key = SyncedKey::new(&format!("http://localhost:{}", app.port));
    let users = [
        User::new("acme", "race-1"),
        User::new(other_tenant, "race-2"),
    ];
    let (ta, ia, oa) = pending_passkey(&app, &users[0]).await;
    let (tb, ib, ob) = pending_passkey(&app, &users[1]).await;
    let (ca, cb) = (key.create(&oa), key.create(&ob));

    let mut held = app.db.connect().await;
    held.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM webauthn_credentials WHERE factor_id IN ('{ia}', '{ib}') FOR UPDATE"
    ))
    .await
    .unwrap();
    let confirm = |token: &str, id: &str, credential: &Value| {
        let path = format!("/v1/me/factors/{id}/confirm");
        let body = json!({ "credential": credential });
        let token = token.to_owned();
        let app = &app;
        async move { app.post(&path, Some(&token), body).await }
    };
    let release = async {
        eventually("both confirms at their write", || async {
            lock_waiters(&app).await == 2
        })
        .await;
        held.batch_execute("COMMIT").await.unwrap();
    };
    let (a, b, ()) = within_hang_guard("two confirms", async {
        tokio::join!(confirm(&ta, &ia, &ca), confirm(&tb, &ib, &cb), release)
    })
    .await;

    let statuses = [a.status, b.status];
    assert!(statuses.contains(&200), "{} / {}", a.text, b.text);
    let (lost, loser): (&Resp, &User) = match statuses {
        [200, _] => (&b, &users[1]),
        [_, 200] => (&a, &users[0]),
        _ => unreachable!(),
    };
    lost.problem(400, "invalid_credential");
    assert_eq!(app.user_failures(&loser.tenant, &loser.id).await, 1);
    assert_eq!(
        app.audit_count(&loser.tenant, "webauthn.verify_failed")
            .await,
        1
    );
    let challenges = format!(
        "SELECT count(*) AS n FROM webauthn_challenges WHERE tenant_id = '{}' AND user_id = '{}'",
        loser.tenant, loser.id
    );
    assert_eq!(
        app.sql_count(&challenges).await,
        0,
        "the challenge is used up"
    );
    let registered =
        "SELECT count(*) AS n FROM webauthn_credentials WHERE credential_id IS NOT NULL";
    assert_eq!(app.sql_count(registered).await, 1);
}

#[tokio::test]
async fn one_credential_id_confirmed_at_once_by_users_of_two_tenants_registers_once() {
    race("globex").await;
}

#[tokio::test]
async fn one_credential_id_confirmed_at_once_by_two_users_of_a_tenant_registers_once() {
    race("acme").await;
}
