//! Prometheus metrics: requests by route, method and status with latency histograms (the
//! [`record`] middleware), second-factor outcomes, lockouts, the drift of accepted codes,
//! database pool use and missed database deadlines.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::state::AppState;

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

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new();
        let labels = &["endpoint", "method", "status"];
        let http_requests = IntCounterVec::new(
            Opts::new("mfa_http_requests_total", "HTTP requests"),
            labels,
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "mfa_http_requests_duration_seconds",
                "HTTP request latency until the response head, in seconds",
            ),
            labels,
        )?;
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
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(second_factor.clone()))?;
        registry.register(Box::new(lockouts.clone()))?;
        let drift = Histogram::with_opts(
            HistogramOpts::new(
                "mfa_totp_drift_steps",
                "|drift_steps| of the factor at each accepted TOTP code, in 30-s steps",
            )
            .buckets(vec![0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0]),
        )?;
        registry.register(Box::new(drift.clone()))?;
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
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "mfa_webhook_deliveries_total",
                "Webhook delivery attempts by outcome: succeeded, retrying (failed, another attempt is scheduled) or failed (given up)",
            ),
            &["outcome"],
        )?;
        for o in ["succeeded", "retrying", "failed"] {
            webhook_deliveries.with_label_values(&[o]);
        }
        let webhook_queue_depth = IntGauge::new(
            "mfa_webhook_queue_depth",
            "Pending webhook deliveries (due or waiting for a retry)",
        )?;
        let webhook_in_flight = IntGauge::new(
            "mfa_webhook_deliveries_in_flight",
            "Webhook deliveries this instance is sending now",
        )?;
        let webhook_latency = Histogram::with_opts(
            HistogramOpts::new(
                "mfa_webhook_delivery_duration_seconds",
                "Webhook delivery latency: from sending to the receiver's answer, in seconds",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(webhook_queue_depth.clone()))?;
        registry.register(Box::new(webhook_in_flight.clone()))?;
        registry.register(Box::new(webhook_latency.clone()))?;
        let housekeeping_deleted = IntCounterVec::new(
            Opts::new(
                "mfa_housekeeping_deleted_total",
                "Rows housekeeping deleted (expired or finished, older than MFA_RETENTION_DAYS), by table",
            ),
            &["table"],
        )?;
        for what in crate::db::housekeeping::Sweepable::ALL {
            housekeeping_deleted.with_label_values(&[what.table()]);
        }
        registry.register(Box::new(housekeeping_deleted.clone()))?;
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
}

/// The label of an unmatched path: any path may be requested, so none becomes a label.
pub const UNMATCHED: &str = "UNKNOWN";

/// The `method` label: the standard methods by name, every other token as `OTHER` (a method
/// is any token a client sends; copying it would let anyone add series).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Counts one request. `endpoint` is the route pattern (one of ours), never the path.
    pub fn request(&self, endpoint: Option<&str>, method: &Method, status: u16, secs: f64) {
        let status = status.to_string();
        let labels = [endpoint.unwrap_or(UNMATCHED), method_label(method), &status];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration.with_label_values(&labels).observe(secs);
    }
}

/// Middleware: counts every request under its route pattern, method label and status.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let endpoint = res.request().match_pattern();
        let status = res.status().as_u16();
        let secs = started.elapsed().as_secs_f64();
        state
            .metrics
            .request(endpoint.as_deref(), &method, status, secs);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for m in ["FOO", "get", &"X".repeat(3000)] {
            let m = Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "OTHER");
        }
    }
}
