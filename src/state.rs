//! What every request can reach: settings, keys, the pool, the clock, the per-instance
//! rate limiter and the metrics. Nothing in here is state that matters across instances.

use std::sync::Arc;

use crate::config::{KeyMaterial, Settings};
use crate::db::Pool;
use crate::domain::clock::Clock;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;

pub struct AppState {
    pub settings: Settings,
    pub keys: KeyMaterial,
    pub pool: Pool,
    pub clock: Arc<dyn Clock>,
    pub rate_limiter: RateLimiter,
    pub metrics: Metrics,
}

impl AppState {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
