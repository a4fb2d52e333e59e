//! The one HTTP client of the delivery worker, built with the app: its connections and TLS
//! sessions are kept and reused across deliveries to the same receiver. It never connects to
//! a forbidden address: host names go through [`GuardedResolver`], which refuses an answer
//! holding any loopback, private, link-local or metadata address (the addresses it returns
//! are the ones connected to, so a second lookup cannot swap them); IP literals are checked
//! by the caller (`WebhookUrl::forbidden_literal`). No proxy, no redirects, 10 s per request.

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

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

/// Resolves with the system resolver and refuses forbidden answers (unless private
/// addresses are allowed: development, or `MFA_WEBHOOK_ALLOW_PRIVATE=true`).
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|_| Refused(NO_ANSWER))?
                .collect();
            if addrs.is_empty() {
                return Err(Refused(NO_ANSWER).into());
            }
            if !allow_private && addrs.iter().any(|a| is_forbidden(a.ip())) {
                return Err(Refused(FORBIDDEN).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The worker's client.
pub fn build(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent("mspbots-mfa-webhooks/1")
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
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
