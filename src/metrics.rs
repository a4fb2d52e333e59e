//! The Prometheus registry: requests by route, method and status with latency histograms
//! (counted by `http::middleware::metrics`), second-factor outcomes, lockouts, the drift of
//! accepted codes, database pool use, missed database deadlines, webhook deliveries and
//! housekeeping.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub struct Metrics {
    pub registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    second_factor: IntCounterVec,
    lockouts: IntCounter,
    drift: Histogram,
    pool: IntGaugeVec,
    /// Requests answered 503 because their database work missed `MFA_DB_DEADLINE_MS`.
    pub deadline_exceeded: IntCounter,
    /// Webhook delivery attempts by outcome (`succeeded`, `retrying`, `failed`).
    pub webhook_deliveries: IntCounterVec,
    /// Pending webhook deliveries, as last counted by this instance's worker.
    pub webhook_queue_depth: IntGauge,
    /// Webhook deliveries this instance is sending now (no webhook label: §20).
    pub webhook_in_flight: IntGauge,
    /// Seconds from sending a delivery to its answer (or its failure).
    pub webhook_latency: Histogram,
    /// Rows deleted by housekeeping, by table (`services::housekeeping`).
    pub housekeeping_deleted: IntCounterVec,
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

/// `metric`, registered: each metric is made and registered in one statement.
fn registered<M>(registry: &Registry, metric: M) -> prometheus::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let r = &registry;
        let labels = &["endpoint", "method", "status"];
        let http_requests = registered(
            r,
            IntCounterVec::new(
                Opts::new("mfa_http_requests_total", "HTTP requests"),
                labels,
            )?,
        )?;
        let http_duration = registered(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "mfa_http_requests_duration_seconds",
                    "HTTP request latency until the response head, in seconds",
                ),
                labels,
            )?,
        )?;
        let second_factor = registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "mfa_second_factor_attempts_total",
                    "Second-factor attempts by outcome",
                ),
                &["outcome"],
            )?,
        )?;
        let lockouts = registered(
            r,
            IntCounter::new(
                "mfa_lockouts_total",
                "Users locked out after too many wrong codes",
            )?,
        )?;
        let pool = registered(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "mfa_db_pool_connections",
                    "Database pool connections by state",
                ),
                &["state"],
            )?,
        )?;
        let drift = registered(
            r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "mfa_totp_drift_steps",
                    "|drift_steps| of the factor at each accepted TOTP code, in 30-s steps",
                )
                .buckets(vec![0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0]),
            )?,
        )?;
        let deadline_exceeded = registered(
            r,
            IntCounter::new(
                "mfa_db_deadline_exceeded_total",
                "Requests answered 503 because their database work missed the deadline",
            )?,
        )?;
        // Every outcome is exported from the start, so rates work before the first event.
        for o in ["success", "invalid", "reused", "locked", "rate_limited"] {
            second_factor.with_label_values(&[o]);
        }
        let webhook_deliveries = registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "mfa_webhook_deliveries_total",
                    "Webhook delivery attempts by outcome: succeeded, retrying (failed, another attempt is scheduled) or failed (given up)",
                ),
                &["outcome"],
            )?,
        )?;
        for o in ["succeeded", "retrying", "failed"] {
            webhook_deliveries.with_label_values(&[o]);
        }
        let webhook_queue_depth = registered(
            r,
            IntGauge::new(
                "mfa_webhook_queue_depth",
                "Pending webhook deliveries (due or waiting for a retry)",
            )?,
        )?;
        let webhook_in_flight = registered(
            r,
            IntGauge::new(
                "mfa_webhook_deliveries_in_flight",
                "Webhook deliveries this instance is sending now",
            )?,
        )?;
        let webhook_latency = registered(
            r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "mfa_webhook_delivery_duration_seconds",
                    "Webhook delivery latency: from sending to the receiver's answer, in seconds",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
        )?;
        let housekeeping_deleted = registered(
            r,
            IntCounterVec::new(
                Opts::new(
                    "mfa_housekeeping_deleted_total",
                    "Rows housekeeping deleted (expired or finished, older than MFA_RETENTION_DAYS), by table",
                ),
                &["table"],
            )?,
        )?;
        for what in crate::db::housekeeping::Sweepable::ALL {
            housekeeping_deleted.with_label_values(&[what.table()]);
        }
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            second_factor,
            lockouts,
            drift,
            pool,
            deadline_exceeded,
            webhook_deliveries,
            webhook_queue_depth,
            webhook_in_flight,
            webhook_latency,
            housekeeping_deleted,
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

    /// A TOTP code was accepted from a factor with this drift (§11).
    pub fn drift(&self, drift_steps: i32) {
        self.drift.observe(f64::from(drift_steps.unsigned_abs()));
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

    /// Counts one request. `endpoint` is a route pattern (one of ours) and `method` one of a
    /// fixed set of labels, never what the client sent: anyone could add series otherwise.
    pub fn request(&self, endpoint: &str, method: &str, status: u16, secs: f64) {
        let status = status.to_string();
        let labels = [endpoint, method, &status];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration.with_label_values(&labels).observe(secs);
    }
}
