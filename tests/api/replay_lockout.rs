//! Replay, concurrency, clock drift, lockout and the per-IP limit (docs/API.md §6), all on the
//! injected clock: nothing sleeps and nothing depends on the wall clock.

use chrono::Duration;
use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{
    code_at, login_of, ok_and_reused, retry_after, wrong_code, Enrolled, Resp, TestApp, User,
};

/// A user with an active factor (voluntary enrollment, policy off), with the clock moved
/// one step on so the next code is fresh.
async fn enrolled(app: &TestApp, tenant: &str, id: &str) -> (User, Enrolled) {
    let u = User::new(tenant, id);
    let e = app.enroll_via_me(&u).await;
    app.advance(30);
    (u, e)
}

/// Five wrong codes on a new sign-in lock the user: the fifth is still `invalid_code` and
/// kills the mfa token. Then a *correct* code on another new sign-in gets 429; returns its
/// `Retry-After`.
async fn lock_out(app: &TestApp, u: &User, e: &Enrolled) -> u64 {
    let (login_id, token) = app.challenge(u).await;
    for i in 1..=5 {
        app.verify_wrong(&login_id, &token, &e.secret).await;
        if i < 5 {
            assert_eq!(app.attempts_left(&login_id, &token).await, 5 - i);
        }
    }
    app.login_view(&login_id, &token)
        .await
        .problem(401, "unauthenticated");
    app.verify_now(&login_id, &token, &e.secret)
        .await
        .problem(401, "unauthenticated");
    let (login_id, token) = app.challenge(u).await;
    let r = app.verify_now(&login_id, &token, &e.secret).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(
        app.attempts_left(&login_id, &token).await,
        5,
        "a locked attempt is not evaluated, so not counted"
    );
    retry_after(&r)
}

// ---------------------------------------------------------------------------------------
// Replay

/// A code that signed in cannot sign in again (another sign-in, same step): `code_reused`,
/// audited, and counted nowhere. Nor can a code of an earlier step than the last used.
#[tokio::test]
async fn a_used_code_or_an_earlier_one_is_code_reused_and_not_counted() {
    let app = TestApp::spawn().await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let code = code_at(&e.secret, app.now());
    let (l1, t1) = app.challenge(&u).await;
    let r = app.verify_code(&l1, &t1, &code).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let (l2, t2) = app.challenge(&u).await;
    let r = app.verify_code(&l2, &t2, &code).await;
    r.problem(400, "code_reused");
    assert_eq!(app.attempts_left(&l2, &t2).await, 5, "not counted");
    assert_eq!(app.user_failures("acme", "jane").await, 0);
    assert_eq!(app.audit_count("acme", "totp.code_reused").await, 1);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 0);
    // Even sent again and again it never locks anything.
    for _ in 0..6 {
        app.verify_code(&l2, &t2, &code)
            .await
            .problem(400, "code_reused");
    }
    assert_eq!(app.attempts_left(&l2, &t2).await, 5);
    assert_eq!(app.user_failures("acme", "jane").await, 0);

    // Next step's code (accepted by the skew) moves the guard forward; the current step's
    // code, valid by the clock but earlier than the last used, is then reused.
    app.advance(30);
    let next = code_at(&e.secret, app.now() + Duration::seconds(30));
    let current = code_at(&e.secret, app.now());
    assert_ne!(next, current, "two steps share a code (p = 1e-6); rerun");
    let r = app.verify_code(&l2, &t2, &next).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (l3, t3) = app.challenge(&u).await;
    app.verify_code(&l3, &t3, &current)
        .await
        .problem(400, "code_reused");
    // The reused code did not kill the sign-in: a fresh code still works.
    app.advance(60);
    let r = app.verify_now(&l3, &t3, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.audit_count("acme", "totp.code_reused").await, 8);
}

/// The code that confirmed an enrollment counts as used: it cannot sign in.
#[tokio::test]
async fn the_code_that_confirmed_an_enrollment_cannot_sign_in() {
    let (app, _, admin) = TestApp::with_enforced_tenant("acme").await;
    let u = User::new("acme", "jane");
    let e = app.enroll_at_login(&u).await;
    let confirming = code_at(&e.secret, app.now());
    let (login_id, token) = app.challenge(&u).await;
    app.verify_code(&login_id, &token, &confirming)
        .await
        .problem(400, "code_reused");
    assert_eq!(app.attempts_left(&login_id, &token).await, 5);
    // Same for the voluntary enrollment of the admin.
    let (login_id, token) = app.challenge(&User::first_admin("acme")).await;
    app.verify_now(&login_id, &token, &admin.secret)
        .await
        .problem(400, "code_reused");
    assert_eq!(app.audit_count("acme", "totp.code_reused").await, 2);
}

// ---------------------------------------------------------------------------------------
// Concurrency

/// One valid code sent at once to twenty sign-ins of the same user succeeds exactly once.
#[tokio::test]
async fn one_code_sent_to_twenty_sign_ins_at_once_succeeds_exactly_once() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 1000).await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let mut logins = vec![];
    for _ in 0..20 {
        logins.push(app.challenge(&u).await);
    }
    let code = code_at(&e.secret, app.now());
    let results: Vec<Resp> = join_all(
        logins
            .iter()
            .map(|(id, token)| app.verify_code(id, token, &code)),
    )
    .await;
    let (ok, reused) = ok_and_reused(&results);
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r.status, r.body["code"].clone()))
        .collect();
    assert_eq!((ok, reused), (1, 19), "{statuses:?}");
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM logins WHERE user_id = 'jane' AND status = 'authenticated' \
             AND completed_at IS NOT NULL AND token_hash IS NULL AND failed_attempts = 0 \
             AND login_id IN (SELECT (details->>'login_id')::uuid FROM audit_events WHERE type = 'login.succeeded')"
        )
        .await,
        2,
        "the password sign-in before enrolling, and exactly one of the twenty"
    );
    assert_eq!(app.audit_count("acme", "totp.code_reused").await, 19);
    assert_eq!(app.user_failures("acme", "jane").await, 0);
    // The nineteen losers are alive and uncounted; the winner's token is dead.
    let mut alive = 0;
    for (id, token) in &logins {
        let r = app.get(&format!("/v1/logins/{id}"), Some(token)).await;
        if r.status == 200 {
            assert_eq!(r.body["attempts_left"], 5);
            assert_eq!(r.body["status"], "verification_required");
            alive += 1;
        } else {
            r.problem(401, "unauthenticated");
        }
    }
    assert_eq!(alive, 19);
}

/// Twenty submissions of one code on one sign-in: one success; the rest find the token
/// dead (401) or the code used.
#[tokio::test]
async fn twenty_submissions_on_one_sign_in_succeed_exactly_once() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 1000).await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let (login_id, token) = app.challenge(&u).await;
    let code = code_at(&e.secret, app.now());
    let results: Vec<Resp> =
        join_all((0..20).map(|_| app.verify_code(&login_id, &token, &code))).await;
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r.status, r.body["code"].clone()))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.status == 200).count(),
        1,
        "{statuses:?}"
    );
    for r in results.iter().filter(|r| r.status != 200) {
        assert!(
            (r.status == 401 && r.body["code"] == "unauthenticated")
                || (r.status == 400 && r.body["code"] == "code_reused"),
            "{statuses:?}"
        );
    }
    let tokens: Vec<&str> = results
        .iter()
        .filter_map(|r| r.body["access_token"].as_str())
        .collect();
    assert_eq!(tokens.len(), 1, "one access token minted");
    app.login_view(&login_id, &token)
        .await
        .problem(401, "unauthenticated");
    assert_eq!(app.user_failures("acme", "jane").await, 0);
}

/// Two instances on one database (same keys): one code sent to both at once succeeds
/// exactly once, and wrong codes sent to either count towards one lockout.
#[tokio::test]
async fn two_instances_share_the_replay_guard_and_the_lockout() {
    let (app, app2) = TestApp::two_instances(|s| s.rate_limit_per_minute = 1000).await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let logins = app.alternating_challenges(&app2, &u).await;
    let code = code_at(&e.secret, app.now());
    let results: Vec<Resp> = join_all(
        logins
            .iter()
            .map(|(inst, id, token)| inst.verify_code(id, token, &code)),
    )
    .await;
    let statuses: Vec<_> = results
        .iter()
        .map(|r| (r.status, r.body["code"].clone()))
        .collect();
    assert_eq!(ok_and_reused(&results), (1, 19), "{statuses:?}");
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    // Either instance accepts the other's access token.
    let token = ok[0].body["access_token"].as_str().unwrap();
    for inst in [&app, &app2] {
        assert_eq!(inst.get("/v1/me", Some(token)).await.status, 200);
    }

    // Three wrong codes on one instance and two on the other lock the user on both.
    app.advance(30);
    app2.advance(30);
    let (l1, t1) = app.challenge(&u).await;
    for _ in 0..3 {
        app.verify_wrong(&l1, &t1, &e.secret).await;
    }
    let (l2, t2) = app2.challenge(&u).await;
    for _ in 0..2 {
        app2.verify_code(&l2, &t2, &wrong_code(&e.secret, app2.now()))
            .await
            .problem(400, "invalid_code");
    }
    for inst in [&app, &app2] {
        let (l, t) = inst.challenge(&u).await;
        let r = inst
            .verify_code(&l, &t, &code_at(&e.secret, inst.now()))
            .await;
        r.problem(429, "too_many_attempts");
        assert_eq!(retry_after(&r), 60);
    }
}

// ---------------------------------------------------------------------------------------
// Clock drift

/// The code of `step_offset` steps from now, checked not to equal any code in `window`
/// steps around now (so a "must fail" code cannot pass by coincidence).
fn code_off(e: &Enrolled, app: &TestApp, step_offset: i64, window: i64) -> String {
    let c = code_at(&e.secret, app.now() + Duration::seconds(30 * step_offset));
    for s in -window..=window {
        if s != step_offset {
            assert_ne!(
                c,
                code_at(&e.secret, app.now() + Duration::seconds(30 * s)),
                "two steps share a code (p ≈ 1e-6); rerun"
            );
        }
    }
    c
}

/// On a new sign-in, the codes `steps` before and after now are refused (two wrong codes,
/// counted) and the current step's code is accepted.
async fn only_the_current_step(app: &TestApp, u: &User, e: &Enrolled, steps: i64) {
    let (l, t) = app.challenge(u).await;
    for off in [-steps, steps] {
        app.verify_code(&l, &t, &code_off(e, app, off, steps))
            .await
            .problem(400, "invalid_code");
    }
    assert_eq!(app.attempts_left(&l, &t).await, 3, "two wrong codes");
    let r = app.verify_code(&l, &t, &code_off(e, app, 0, steps)).await;
    assert_eq!(r.status, 200, "current step: {}", r.text);
}

/// With the default skew of one step, codes of the previous and next steps are accepted;
/// two steps away are wrong codes.
#[tokio::test]
async fn codes_one_step_off_are_accepted_two_steps_off_are_not() {
    let app = TestApp::spawn().await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    app.advance(300);

    // One step late (the phone is behind).
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &code_off(&e, &app, -1, 1)).await;
    assert_eq!(r.status, 200, "previous step: {}", r.text);
    // One step early (the phone is ahead).
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &code_off(&e, &app, 1, 1)).await;
    assert_eq!(r.status, 200, "next step: {}", r.text);

    // That code taught the factor a drift of one step (§11); a code of the current step
    // (the phone corrected) brings it back to none.
    app.advance(120);
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &code_off(&e, &app, 0, 1)).await;
    assert_eq!(r.status, 200, "current step: {}", r.text);

    app.advance(120);
    only_the_current_step(&app, &u, &e, 2).await;
    // The step boundary: at the last second of a step the next step's code still works
    // only thanks to the skew.
    let into_step = app.now().timestamp().rem_euclid(30);
    app.advance(30 - into_step + 30 + 29); // last second of the step after next
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_code(&l, &t, &code_off(&e, &app, 1, 1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// With `totp_skew = 0` only the current step is accepted.
#[tokio::test]
async fn with_skew_zero_only_the_current_step_is_accepted() {
    let app = TestApp::spawn_with(|s| s.totp_skew = 0).await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    app.advance(300);
    only_the_current_step(&app, &u, &e, 1).await;
}

// ---------------------------------------------------------------------------------------
// Lockout

/// Five wrong codes lock the user for a minute: even a correct code gets 429 with
/// Retry-After; after the minute a correct code works and resets everything, so the next
/// lockout is one minute again.
#[tokio::test]
async fn five_wrong_codes_lock_for_a_minute_and_a_success_resets() {
    let app = TestApp::spawn().await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let ra = lock_out(&app, &u, &e).await;
    assert!((1..=60).contains(&ra), "Retry-After {ra}");
    assert_eq!(ra, 60, "the clock stands still: exactly the first lockout");
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 5);
    let locked_until = app
        .sql_count(
            "SELECT extract(epoch FROM locked_until)::bigint AS n FROM users WHERE user_id = 'jane'",
        )
        .await;
    assert_eq!(locked_until, app.now().timestamp() + 60);

    // While locked, a wrong code is not evaluated or counted either.
    let (l, t) = app.challenge(&u).await;
    let r = app
        .verify_code(&l, &t, &wrong_code(&e.secret, app.now()))
        .await;
    r.problem(429, "too_many_attempts");
    app.advance(30);
    let r = app.verify_now(&l, &t, &e.secret).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(retry_after(&r), 30);
    assert_eq!(app.attempts_left(&l, &t).await, 5);

    // The minute is over: a correct code works (and resets the count and the doubling).
    app.advance(31);
    let r = app.verify_now(&l, &t, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.user_failures("acme", "jane").await, 0);
    // The same write cleared the doubling and the lock and recorded the sign-in.
    let cleared = app
        .sql_count(&format!(
            "SELECT count(*) AS n FROM users WHERE user_id = 'jane' AND lockout_count = 0 \
             AND locked_until IS NULL AND last_login_at = to_timestamp({})",
            app.now().timestamp()
        ))
        .await;
    assert_eq!(cleared, 1);

    // Four wrong codes and a success: the count restarts.
    app.advance(30);
    let (l, t) = app.challenge(&u).await;
    for _ in 0..4 {
        app.verify_wrong(&l, &t, &e.secret).await;
    }
    let r = app.verify_now(&l, &t, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
    app.advance(30);
    let (l, t) = app.challenge(&u).await;
    for _ in 0..4 {
        app.verify_wrong(&l, &t, &e.secret).await;
    }
    assert_eq!(app.attempts_left(&l, &t).await, 1, "not locked after 4");
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);

    // Locked again: one minute, not two, because a success came in between.
    app.verify_wrong(&l, &t, &e.secret).await;
    let (l, t) = app.challenge(&u).await;
    let r = app.verify_now(&l, &t, &e.secret).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(retry_after(&r), 60);
    assert_eq!(app.audit_count("acme", "user.locked").await, 2);
}

/// Without a success in between each lockout doubles: 1, 2, 4, 8, then 15, 15 minutes.
#[tokio::test]
async fn lockouts_double_up_to_fifteen_minutes_without_a_success() {
    let app = TestApp::spawn().await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let mut seen = vec![];
    for (i, expected) in [60, 120, 240, 480, 900, 900].into_iter().enumerate() {
        let ra = lock_out(&app, &u, &e).await;
        let lower = if i == 0 { 1 } else { seen[i - 1] };
        assert!(
            (lower..=expected).contains(&ra),
            "lockout {}: Retry-After {ra}",
            i + 1
        );
        assert_eq!(ra, expected, "lockout {}: the clock stands still", i + 1);
        seen.push(ra);
        // Just before the end it is still locked; at the end it is open.
        app.advance(ra as i64 - 1);
        let (l, t) = app.challenge(&u).await;
        let r = app.verify_now(&l, &t, &e.secret).await;
        r.problem(429, "too_many_attempts");
        assert_eq!(retry_after(&r), 1);
        app.advance(1);
    }
    assert_eq!(app.audit_count("acme", "user.locked").await, 6);
    // Finally a correct code works and resets the doubling.
    app.signs_in_now(&u, &e.secret).await;
    app.advance(30);
    assert_eq!(lock_out(&app, &u, &e).await, 60);
}

/// An admin with fresh 2FA ends a lockout, and the doubling starts over.
#[tokio::test]
async fn admin_unlock_ends_a_lockout_and_resets_the_doubling() {
    let (app, _, admin) = TestApp::with_admin("acme").await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let unlock = "/v1/tenants/acme/users/jane/unlock";

    assert_eq!(lock_out(&app, &u, &e).await, 60);
    // The user cannot unlock themself; another tenant's admin cannot either.
    let mine = app.post(unlock, Some(&e.access_token), json!({})).await;
    mine.problem(403, "forbidden");
    let (_, other) = app.admin("other").await;
    app.post(unlock, Some(&other.access_token), json!({}))
        .await
        .problem(403, "forbidden");
    let r = app.post(unlock, Some(&admin.access_token), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(app.audit_count("acme", "user.unlocked").await, 1);
    assert_eq!(
        app.sql_count(
            "SELECT count(*) AS n FROM users WHERE user_id = 'jane' AND locked_until IS NULL"
        )
        .await,
        1
    );

    // Locked again right away: one minute, not two.
    assert_eq!(lock_out(&app, &u, &e).await, 60);
    let r = app
        .send(
            reqwest::Method::POST,
            unlock,
            Some(&admin.access_token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204, "an empty POST reads as {{}}: {}", r.text);
    // And the user signs in at once with a correct code.
    app.signs_in_now(&u, &e.secret).await;
    assert_eq!(app.audit_count("acme", "user.unlocked").await, 2);
}

/// The lockout is the user's, shared by every endpoint: wrong recovery codes count with
/// wrong TOTP codes, and while locked `recover` and an `X-MFA-Code` step-up get 429 too.
#[tokio::test]
async fn wrong_recovery_codes_count_and_a_lock_gates_recover_and_step_up() {
    let app = TestApp::spawn().await;
    let (u, e) = enrolled(&app, "acme", "jane").await;
    let (l, t) = app.challenge(&u).await;
    for _ in 0..3 {
        app.verify_wrong(&l, &t, &e.secret).await;
    }
    for bad in ["zzzzz-zzzzz", "yyyyy-yyyyy"] {
        app.recover_code(&l, &t, bad)
            .await
            .problem(400, "invalid_code");
    }
    app.login_view(&l, &t).await.problem(401, "unauthenticated");
    assert_eq!(app.audit_count("acme", "recovery_code.failed").await, 2);
    assert_eq!(app.audit_count("acme", "totp.verify_failed").await, 3);
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);

    // Locked: a valid recovery code is not evaluated (and not used up).
    let (l, t) = app.challenge(&u).await;
    let r = app.recover_code(&l, &t, &e.recovery_codes[0]).await;
    r.problem(429, "too_many_attempts");
    assert!((1..=60).contains(&retry_after(&r)));
    // Step-up with a code (TOTP or recovery) on a sensitive call: 429 as well.
    for code in [code_at(&e.secret, app.now()), e.recovery_codes[1].clone()] {
        let r = app.new_recovery_codes(&e.access_token, Some(&code)).await;
        r.problem(429, "too_many_attempts");
        assert!((1..=60).contains(&retry_after(&r)));
    }
    assert_eq!(
        app.audit_count("acme", "recovery_codes.regenerated").await,
        0
    );

    app.advance(61);
    let r = app.recover_code(&l, &t, &e.recovery_codes[0]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["recovery_codes_remaining"], 9,
        "nothing used while locked"
    );

    // The sign-in is over: its token no longer reaches the code check at all.
    for _ in 0..4 {
        app.verify_code(&l, &t, "000000")
            .await
            .problem(401, "unauthenticated");
    }
    assert_eq!(app.user_failures("acme", "jane").await, 0);

    // A wrong step-up code counts towards the same lockout as wrong sign-in codes.
    let (l, t) = app.challenge(&u).await;
    for _ in 0..4 {
        app.verify_wrong(&l, &t, &e.secret).await;
    }
    let r = app
        .new_recovery_codes(&e.access_token, Some(&wrong_code(&e.secret, app.now())))
        .await;
    r.problem(400, "invalid_code");
    assert_eq!(app.audit_count("acme", "user.locked").await, 2);
    app.verify_now(&l, &t, &e.secret)
        .await
        .problem(429, "too_many_attempts");
}

/// Wrong codes at the sign-in's enrollment count too, and a lock stops the confirmation.
#[tokio::test]
async fn wrong_confirm_codes_count_and_a_lock_gates_confirm() {
    let (app, u, (l, t)) = TestApp::with_enrollment_login("acme", "jane").await;
    let m = app.login_post(&l, &t, "totp-enrollment", json!({})).await;
    let secret = m.body["secret"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.confirm_at_login(&l, &t, &wrong_code(&secret, app.now()))
            .await
            .problem(400, "invalid_code");
    }
    app.login_view(&l, &t).await.problem(401, "unauthenticated");
    assert_eq!(app.audit_count("acme", "user.locked").await, 1);

    let started = app.start_login(&u).await;
    assert_eq!(started.body["status"], "enrollment_required");
    let (l, t) = login_of(&started);
    let m = app.enrollment_started(&l, &t, "totp").await;
    let secret = m.body["secret"].as_str().unwrap().to_owned();
    let r = app
        .confirm_at_login(&l, &t, &code_at(&secret, app.now()))
        .await;
    r.problem(429, "too_many_attempts");
    assert_eq!(retry_after(&r), 60);
    app.advance(60);
    let r = app
        .confirm_at_login(&l, &t, &code_at(&secret, app.now()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.user_failures("acme", "jane").await, 0);
}

// ---------------------------------------------------------------------------------------
// Per-IP limit

/// Requests that carry a code are limited per client IP over a sliding minute (of the
/// injected clock); requests without a code are not.
#[tokio::test]
async fn the_per_ip_limit_counts_code_carrying_requests_per_minute() {
    let app = TestApp::spawn_with(|s| s.rate_limit_per_minute = 3).await;
    let (u, e) = enrolled(&app, "acme", "jane").await; // its confirmation was one
    app.advance(60);
    let (l, t) = app.challenge(&u).await;

    // Three code-carrying requests of three kinds.
    app.verify_wrong(&l, &t, &e.secret).await;
    app.recover_code(&l, &t, "zzzzz-zzzzz")
        .await
        .problem(400, "invalid_code");
    app.new_recovery_codes(&e.access_token, Some(&wrong_code(&e.secret, app.now())))
        .await
        .problem(400, "invalid_code");

    // The fourth within the minute is refused, correct or not, and not evaluated.
    app.advance(10);
    let r = app.verify_now(&l, &t, &e.secret).await;
    r.problem(429, "too_many_attempts");
    assert_eq!(
        retry_after(&r),
        50,
        "the first attempt leaves the window in 50 s"
    );
    let r = app.recover_code(&l, &t, &e.recovery_codes[0]).await;
    r.problem(429, "too_many_attempts");
    assert!((1..=60).contains(&retry_after(&r)));
    // Requests without a code pass.
    assert_eq!(
        app.attempts_left(&l, &t).await,
        3,
        "the 429s were not counted"
    );
    assert_eq!(app.user_failures("acme", "jane").await, 3);
    assert_eq!(app.start_login(&u).await.status, 201);

    // A minute after the first attempt, it passes.
    app.advance(50);
    let r = app.verify_now(&l, &t, &e.secret).await;
    assert_eq!(r.status, 200, "{}", r.text);
}
