//! Fair delivery (docs/API.md §20): a receiver that never answers, with a backlog of 100,
//! holds at most two of an instance's sends, and another webhook's due delivery is sent
//! while those two still hang (the background worker, on the injected clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestApp;
use crate::webhook_receiver::Receiver;
use crate::webhooks::event;

/// Accepts connections on 127.0.0.1 and never reads nor answers: `(url, connections)`.
async fn hanging_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://127.0.0.1:{port}/hook"), accepted)
}

/// Polls (no time passes for the service: its clock is fixed) until `done` or 30 s.
async fn until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test]
async fn webhook_a_hanging_receiver_with_a_backlog_does_not_delay_another_webhook() {
    let app = TestApp::spawn_with(|s| s.webhook_delivery = true).await;
    let (_, admin) = app.admin("acme").await;
    let (slow_url, slow) = hanging_receiver().await;
    let rx = Receiver::start().await;
    for (url, kind) in [(&slow_url, "user.locked"), (&rx.url, "user.unlocked")] {
        let r = app
            .post(
                "/v1/tenants/acme/webhooks",
                Some(&admin.access_token),
                json!({"url": url, "event_types": [kind]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    event(&app, "acme", "user.locked", 100).await;
    assert!(
        until(|| slow.load(Ordering::SeqCst) >= 2).await,
        "the slow receiver gets its first sends"
    );

    let due = Instant::now();
    event(&app, "acme", "user.unlocked", 1).await;
    assert!(
        until(|| !rx.received().is_empty()).await,
        "the healthy receiver got nothing"
    );
    let delay = due.elapsed();
    eprintln!("healthy delivery started {delay:?} after it was due");
    // Sent while the slow webhook's first two sends still hang (they last 10 s): at most two
    // of one webhook in flight, and the other webhook's turn did not wait for them.
    assert_eq!(slow.load(Ordering::SeqCst), 2, "two in flight, none more");
    let m = app.get("/metrics", None).await.text;
    assert!(m.contains("mfa_webhook_deliveries_in_flight "), "{m}");
}
