//! Limits one instance keeps in memory: per client IP, requests that carry a code over a
//! sliding minute (docs/API.md §6; a sliding log of each IP's recent attempts); per user,
//! requests at once ([`UserGate`]).

mod keyed;
mod user_gate;

pub use keyed::{KeyedTurn, KeyedTurns};

pub use user_gate::{GateKey, Turn, UserGate, Whose, PER_USER};

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

const WINDOW_MS: i64 = 60_000;
/// Past this many tracked IPs, idle ones are swept on the next attempt.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    log: Mutex<HashMap<IpAddr, VecDeque<i64>>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            limit: per_minute as usize,
            log: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `ip` at `now`; `Err(retry_after_secs)` if the IP already
    /// made `limit` attempts in the last minute (a refused attempt is not counted).
    pub fn check(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        let now = now.timestamp_millis();
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= SWEEP_AT {
            log.retain(|_, times| times.back().is_some_and(|t| now - t < WINDOW_MS));
        }
        let times = log.entry(ip).or_default();
        while times.front().is_some_and(|t| now - t >= WINDOW_MS) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times.front().copied().unwrap_or(now);
            let wait_ms = (oldest + WINDOW_MS - now).max(1);
            return Err(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn allows_the_limit_per_sliding_minute_then_tells_when_to_retry() {
        let rl = RateLimiter::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(rl.check(ip, t0).is_ok());
        assert!(rl.check(ip, t0 + Duration::seconds(10)).is_ok());
        assert!(rl.check(ip, t0 + Duration::seconds(20)).is_ok());
        assert_eq!(rl.check(ip, t0 + Duration::seconds(30)), Err(30));
        assert!(
            rl.check(other, t0 + Duration::seconds(30)).is_ok(),
            "limits are per IP"
        );
        // The first attempt leaves the window at t0+60s.
        assert_eq!(rl.check(ip, t0 + Duration::milliseconds(59_999)), Err(1));
        assert!(rl.check(ip, t0 + Duration::seconds(60)).is_ok());
        assert!(rl.check(ip, t0 + Duration::seconds(61)).is_err());
    }
}
