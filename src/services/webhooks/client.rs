//! The one HTTP client of the delivery worker, built with the app: its connections and TLS
//! sessions are kept and reused across deliveries to the same receiver. It never connects to
//! a forbidden address: host names go through [`GuardedResolver`], which refuses an answer
//! holding any loopback, private, link-local or metadata address (the addresses it returns
//! are the ones connected to, so a second lookup cannot swap them); IP literals are checked
//! by the caller (`WebhookUrl::forbidden_literal`). Names are looked up within the deadline
//! on a bounded set of threads (`resolver`). No proxy, no redirects, 10 s per request.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub use super::resolver::NO_ANSWER_IN_TIME;
use super::resolver::{LookupError, Lookups};
use crate::domain::webhooks::{is_forbidden, TIMEOUT};

/// Why a delivery did not connect, as the delivery's `last_error` says it.
pub const FORBIDDEN: &str =
    "the host resolves to a loopback, private, link-local or metadata address";
pub const NO_ANSWER: &str = "the host name does not resolve";

/// A lookup the resolver refused; found again in the request error's sources.
#[derive(Debug)]
pub struct Refused(pub &'static str);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Refused {}

/// Resolves through [`Lookups`] (within the deadline, on bounded threads) and refuses
/// forbidden answers (unless private addresses are allowed: development, or
/// `MFA_WEBHOOK_ALLOW_PRIVATE=true`).
struct GuardedResolver {
    allow_private: bool,
    lookups: Arc<Lookups>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (allow_private, lookups) = (self.allow_private, self.lookups.clone());
        Box::pin(async move {
            let addrs = lookups.resolve(name.as_str()).await.map_err(|e| match e {
                LookupError::NoAnswer => Refused(NO_ANSWER),
                LookupError::Deadline => Refused(NO_ANSWER_IN_TIME),
            })?;
            if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
                return Err(Refused(FORBIDDEN).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The worker's client, with the system resolver.
pub fn build(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    build_with(allow_private, Arc::new(Lookups::system()))
}

/// The worker's client with these lookups (a test's resolver).
pub fn build_with(allow_private: bool, lookups: Arc<Lookups>) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent("mspbots-mfa-webhooks/1")
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private,
            lookups,
        }))
        .build()
}

/// The resolver's reason, if a request failed in it.
pub fn refusal(e: &reqwest::Error) -> Option<&'static str> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r.0);
        }
        source = s.source();
    }
    None
}
