//! Prometheus metrics beyond the per-route request counters and latency histograms that
//! `actix-web-prom` records: second-factor outcomes, lockouts, database pool use and missed database deadlines.

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

pub struct Metrics {
    pub registry: Registry,
    second_factor: IntCounterVec,
    lockouts: IntCounter,
    pool: IntGaugeVec,
    /// Requests answered 503 because their database work missed `MFA_DB_DEADLINE_MS`.
    pub deadline_exceeded: IntCounter,
}

/// The result of one second-factor attempt.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Success,
    Invalid,
    Reused,
    Locked,
    RateLimited,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let second_factor = IntCounterVec::new(
            Opts::new(
                "mfa_second_factor_attempts_total",
                "Second-factor attempts by outcome",
            ),
            &["outcome"],
        )?;
        let lockouts = IntCounter::new(
            "mfa_lockouts_total",
            "Users locked out after too many wrong codes",
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "mfa_db_pool_connections",
                "Database pool connections by state",
            ),
            &["state"],
        )?;
        registry.register(Box::new(second_factor.clone()))?;
        registry.register(Box::new(lockouts.clone()))?;
        let deadline_exceeded = IntCounter::new(
            "mfa_db_deadline_exceeded_total",
            "Requests answered 503 because their database work missed the deadline",
        )?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(deadline_exceeded.clone()))?;
        // Every outcome is exported from the start, so rates work before the first event.
        for o in ["success", "invalid", "reused", "locked", "rate_limited"] {
            second_factor.with_label_values(&[o]);
        }
        Ok(Self {
            registry,
            second_factor,
            lockouts,
            pool,
            deadline_exceeded,
        })
    }

    pub fn outcome(&self, o: Outcome) {
        let label = match o {
            Outcome::Success => "success",
            Outcome::Invalid => "invalid",
            Outcome::Reused => "reused",
            Outcome::Locked => "locked",
            Outcome::RateLimited => "rate_limited",
        };
        self.second_factor.with_label_values(&[label]).inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    pub fn observe_pool(&self, status: deadpool::Status) {
        let size = i64::try_from(status.size).unwrap_or(i64::MAX);
        let available = i64::try_from(status.available).unwrap_or(i64::MAX);
        self.pool
            .with_label_values(&["max"])
            .set(i64::try_from(status.max_size).unwrap_or(i64::MAX));
        self.pool.with_label_values(&["open"]).set(size);
        self.pool.with_label_values(&["idle"]).set(available);
        self.pool
            .with_label_values(&["in_use"])
            .set(size - available);
        self.pool
            .with_label_values(&["waiting"])
            .set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
    }
}
