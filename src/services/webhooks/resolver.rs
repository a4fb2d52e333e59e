//! Host names of receivers, resolved within the delivery's deadline and on a bounded number
//! of threads. The system resolver (`getaddrinfo`) blocks its thread, and nothing can cut it
//! short: a name whose DNS never answers holds its thread for as long as the system's resolver
//! retries, whatever our deadline says. So each lookup first takes a turn of its host (one
//! lookup of a name at a time), then one of [`THREADS`] thread permits, and only then a
//! blocking thread, which keeps both until `getaddrinfo` returns. The caller stops waiting at
//! the deadline ([`Lookups::resolve`] then fails with [`NO_ANSWER_IN_TIME`]); a hanging name
//! holds one thread however many deliveries go to it, and a slow DNS at most [`THREADS`]
//! threads in all, never tokio's whole blocking pool.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::rate_limit::KeyedTurns;

/// Blocking lookups running at once per instance.
pub const THREADS: usize = 8;
/// Why a lookup failed at the deadline (a delivery's `last_error`).
pub const NO_ANSWER_IN_TIME: &str = "the host name did not resolve within 10 s";

/// How a name becomes addresses (blocking). The system's in the service; a test's in tests.
pub type LookupFn = dyn Fn(&str) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// The system resolver.
pub fn system_lookup(host: &str) -> io::Result<Vec<SocketAddr>> {
    (host, 0).to_socket_addrs().map(Iterator::collect)
}

/// The resolver's threads and turns.
pub struct Lookups {
    lookup: Arc<LookupFn>,
    threads: Arc<Semaphore>,
    /// One lookup of a name at a time.
    hosts: KeyedTurns<String>,
    deadline: Duration,
}

/// Why a lookup gave no addresses.
#[derive(Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The name has no address (or the resolver said so).
    NoAnswer,
    /// No answer within the deadline (the lookup may still be running on its thread).
    Deadline,
}

impl Lookups {
    pub fn new(lookup: Arc<LookupFn>, threads: usize, deadline: Duration) -> Self {
        Self {
            lookup,
            threads: Arc::new(Semaphore::new(threads)),
            hosts: KeyedTurns::new(1),
            deadline,
        }
    }

    /// The system resolver, [`THREADS`] threads, the delivery's deadline.
    pub fn system() -> Self {
        Self::new(
            Arc::new(system_lookup),
            THREADS,
            crate::domain::webhooks::TIMEOUT,
        )
    }

    /// `host`'s addresses, or why not, within the deadline (waiting for a turn included).
    #[tracing::instrument(skip_all)]
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, LookupError> {
        let work = async {
            let turn = self
                .hosts
                .enter(host.to_owned())
                .await
                .ok_or(LookupError::NoAnswer)?;
            let thread = self
                .threads
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| LookupError::NoAnswer)?;
            let (lookup, name) = (self.lookup.clone(), host.to_owned());
            tokio::task::spawn_blocking(move || {
                let _held = (turn, thread);
                lookup(&name)
            })
            .await
            .map_err(|_| LookupError::NoAnswer)?
            .map_err(|_| LookupError::NoAnswer)
        };
        match tokio::time::timeout(self.deadline, work).await {
            Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
            Ok(Ok(_)) | Ok(Err(LookupError::NoAnswer)) => Err(LookupError::NoAnswer),
            Ok(Err(LookupError::Deadline)) | Err(_) => Err(LookupError::Deadline),
        }
    }

    /// Hosts with a lookup running or waiting (for tests).
    pub fn hosts_in_flight(&self) -> usize {
        self.hosts.len()
    }
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
