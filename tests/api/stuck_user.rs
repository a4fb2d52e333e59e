//! One user's row held by another session, and a burst of that user's requests of every
//! kind that waits on the row — sign-in starts, steps of sign-ins (two of them), self-service
//! with two access tokens, an admin action on the user: the per-user gate holds them all to
//! `PER_USER` connections, so other users sign in and `/readyz` answers `200` meanwhile.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, User};
use crate::resilience::{
    assert_unavailable, at_most_per_user_waiting, eventually, hold_row, lock_waiters,
    ready_and_all_started, released_then_signs_in, spawn_request, waits,
};

#[actix_web::test]
async fn a_burst_of_every_kind_for_one_stuck_user_leaves_other_users_and_readiness_alone() {
    let app = TestApp::spawn_with(|s| {
        s.db_pool_size = 8;
        // Only the service's deadline ends a wait on the row, so each waiter holds its
        // connection as long as it can.
        waits(s, 60_000, 60_000, 5_000);
        s.rate_limit_per_minute = 10_000;
    })
    .await;
    let stuck = User::new("acme", "stuck");
    let enrolled = app.enroll_via_me(&stuck).await;
    let second_token = app.sign_in_with_code(&stuck, &enrolled.secret).await;
    let logins = [app.challenge(&stuck).await, app.challenge(&stuck).await];
    let held = hold_row(&app, &stuck).await;

    let svc = app.service_key.clone();
    let mut burst = Vec::new();
    for _ in 0..3 {
        burst.push(spawn_request(
            &app,
            Method::POST,
            "/v1/logins",
            &svc,
            Some(stuck.login_body()),
        ));
        for (login_id, mfa_token) in &logins {
            let path = format!("/v1/logins/{login_id}/verify");
            let body = json!({"code": "000000"});
            burst.push(spawn_request(
                &app,
                Method::POST,
                &path,
                mfa_token,
                Some(body),
            ));
        }
        for token in [&enrolled.access_token, &second_token] {
            let path = "/v1/me/totp-enrollment";
            burst.push(spawn_request(
                &app,
                Method::POST,
                path,
                token,
                Some(json!({})),
            ));
        }
        let path = format!("/v1/tenants/{}/users/{}", stuck.tenant, stuck.id);
        burst.push(spawn_request(&app, Method::DELETE, &path, &svc, None));
    }
    let cap = mspbots_mfa::rate_limit::PER_USER as i64;
    eventually("the stuck user's requests to wait on the row", || async {
        lock_waiters(&app).await >= cap
    })
    .await;
    // However the user is named (service-key body, mfa token, access token, admin path),
    // the pile-up holds at most PER_USER connections; the rest wait without one.
    at_most_per_user_waiting(&app, 10).await;
    let others: Vec<_> = [User::new("acme", "neighbour")]
        .into_iter()
        .chain((0..6).map(|i| User::new(&format!("globex-{i}"), "user")))
        .map(|u| spawn_request(&app, Method::POST, "/v1/logins", &svc, Some(u.login_body())))
        .collect();
    ready_and_all_started(&app, others).await;
    // A caller whose credential does not check out queues in nobody's turns: its answer does
    // not wait behind the stuck user's requests.
    let r = app
        .post("/v1/logins", Some("sk_not_a_key"), stuck.login_body())
        .await;
    r.problem(401, "unauthenticated");
    for s in burst {
        let r = s.await.unwrap();
        assert_unavailable(&r);
    }
    released_then_signs_in(&app, held, &stuck).await;
}
