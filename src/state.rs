//! What every request can reach: settings, keys, the pool, the clock, the per-instance
//! rate limiter and the metrics. Nothing in here is state that matters across instances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::config::{KeyMaterial, Settings};
use crate::db::Pool;
use crate::domain::clock::Clock;
use crate::metrics::Metrics;
use crate::rate_limit::{RateLimiter, UserGate};

pub struct AppState {
    pub settings: Settings,
    pub keys: KeyMaterial,
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub rate_limiter: RateLimiter,
    pub metrics: Metrics,
    /// Set once the database is created and migrated; until then `/v1` and `/readyz`
    /// answer 503.
    pub ready: AtomicBool,
    /// Per-user turns (`rate_limit::UserGate`): one stuck user cannot take the pool.
    pub user_gate: UserGate,
    /// The webhook worker's HTTP client (`services::webhooks::client`): one per app, so
    /// deliveries to a receiver reuse its connections.
    pub webhook_client: reqwest::Client,
    /// The WebAuthn relying party of each surface (§16), `None` where it is unavailable.
    pub webauthn: crate::crypto::webauthn::RelyingParties,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
