use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::*;
use crate::services::webhooks::client;

/// A resolver whose `*.hang.example` names block until released; `local.example` is
/// loopback, `nowhere.example` has no address, any other name a public address.
#[derive(Default)]
struct Dns {
    entered: AtomicUsize,
    released: Mutex<bool>,
    wake: Condvar,
}

impl Dns {
    fn lookup(self: &Arc<Self>) -> Arc<LookupFn> {
        let dns = self.clone();
        Arc::new(move |host: &str| {
            let ip = |a, b, c, d| {
                Ok(vec![SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                    0,
                )])
            };
            match host {
                "local.example" => ip(127, 0, 0, 1),
                "nowhere.example" => Ok(vec![]),
                h if h.ends_with(".hang.example") => {
                    dns.entered.fetch_add(1, Ordering::SeqCst);
                    let mut released = dns.released.lock().unwrap();
                    while !*released {
                        released = dns.wake.wait(released).unwrap();
                    }
                    Err(io::Error::other("released"))
                }
                _ => ip(203, 0, 113, 5),
            }
        })
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.wake.notify_all();
    }
}

/// Short, so the test is quick; nothing is asserted about time.
const DEADLINE: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_hanging_name_fails_at_the_deadline_on_one_thread_and_other_names_still_resolve() {
    let dns = Arc::new(Dns::default());
    let lookups = Lookups::new(dns.lookup(), 2, DEADLINE);
    let slow = (0..5).map(|_| lookups.resolve("a.hang.example"));
    for r in futures_util::future::join_all(slow).await {
        assert_eq!(r, Err(LookupError::Deadline));
    }
    assert_eq!(
        dns.entered.load(Ordering::SeqCst),
        1,
        "one thread for the name"
    );
    // The hanging lookup holds one of the two threads: another name resolves meanwhile.
    let fast = lookups.resolve("receiver.example").await.unwrap();
    assert_eq!(fast[0].ip(), IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
    assert_eq!(
        lookups.resolve("nowhere.example").await,
        Err(LookupError::NoAnswer)
    );
    dns.release();
}

#[tokio::test]
async fn hanging_names_take_at_most_the_threads_they_are_given() {
    let dns = Arc::new(Dns::default());
    let lookups = Lookups::new(dns.lookup(), 2, DEADLINE);
    let names: Vec<String> = (0..6).map(|i| format!("n{i}.hang.example")).collect();
    let slow = names.iter().map(|n| lookups.resolve(n));
    for r in futures_util::future::join_all(slow).await {
        assert_eq!(r, Err(LookupError::Deadline));
    }
    assert_eq!(dns.entered.load(Ordering::SeqCst), 2, "two threads in all");
    dns.release();
}

#[tokio::test]
async fn the_client_records_why_a_lookup_failed_and_still_refuses_forbidden_answers() {
    let dns = Arc::new(Dns::default());
    let lookups = Arc::new(Lookups::new(dns.lookup(), 2, DEADLINE));
    let http = client::build_with(false, lookups).unwrap();
    let why = |url: &'static str| {
        let http = http.clone();
        async move {
            let e = http.post(url).send().await.unwrap_err();
            client::refusal(&e)
        }
    };
    assert_eq!(why("http://a.hang.example/").await, Some(NO_ANSWER_IN_TIME));
    assert_eq!(why("http://local.example/").await, Some(client::FORBIDDEN));
    assert_eq!(
        why("http://nowhere.example/").await,
        Some(client::NO_ANSWER)
    );
    dns.release();
}
