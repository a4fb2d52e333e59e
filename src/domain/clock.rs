//! Time as a dependency: the service reads "now" only through [`Clock`], so tests of
//! drift, replay and lockout set the time exactly instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

/// The source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        // Postgres keeps microseconds: times we return then match times we stored.
        chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
    }
}

/// A clock that stands still until moved; shared by clones so a test can move the time
/// of a running application.
#[derive(Debug, Clone)]
pub struct FixedClock {
    millis: Arc<AtomicI64>,
}

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(at.timestamp_millis())),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.millis.store(at.timestamp_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.millis
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        let ms = self.millis.load(Ordering::SeqCst);
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told_and_clones_share_time() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let c = FixedClock::new(t0);
        let c2 = c.clone();
        assert_eq!(c.now(), t0);
        c2.advance(chrono::Duration::seconds(90));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(90));
        c.set(t0);
        assert_eq!(c2.now(), t0);
    }
}
