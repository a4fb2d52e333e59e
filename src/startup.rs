//! Builds the application: keys, pool, state, an HTTP server bound to a listener (so tests
//! run the real app on port 0), then the database (created and migrated, retried while
//! Postgres is unreachable) before it reports ready.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::config::{KeyMaterial, Settings};
use crate::domain::clock::{Clock, SystemClock};
use crate::http::middleware::{self, request::REQUEST_ID};
use crate::http::ops::ApiDocument;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::services::background::Background;
use crate::services::{housekeeping, webhooks};
use crate::state::AppState;
use crate::{db, http, openapi};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// This instance's webhook delivery worker (`MFA_WEBHOOK_DELIVERY`) and housekeeping
    /// (`MFA_HOUSEKEEPING`, `MFA_RETENTION_DAYS`), when they run.
    background: Vec<Background>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Builds the app with an injected clock (tests move time instead of sleeping).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let keys = KeyMaterial::load(&settings)?;
        let db_url = db::connection_url(&settings.database_url, settings.db_connect_timeout);
        // The pool connects lazily, so it can exist before the database answers.
        let pool = db::pool(
            &db_url,
            settings.db_pool_size,
            db::SessionLimits {
                statement_timeout_ms: settings.statement_timeout_ms,
                lock_timeout_ms: settings.lock_timeout_ms,
                idle_in_transaction_timeout_ms: settings.idle_in_transaction_timeout_ms,
            },
        )?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let webhook_client = webhooks::client::build(settings.webhooks_allow_private())
            .context("building the webhook HTTP client")?;
        let state = web::Data::new(AppState {
            rate_limiter: RateLimiter::new(settings.rate_limit_per_minute),
            metrics: Metrics::new()?,
            settings,
            keys,
            pool,
            clock,
            ready: AtomicBool::new(false),
            user_gate: Default::default(),
            webhook_client,
        });
        // Serve first: while the database is prepared /healthz is 200 and /readyz 503,
        // so an orchestrator sees a live process that is not ready yet.
        let mut server = serve(listener, state.clone())?;
        let addr = listener_addr(&state.settings.bind, port);
        tracing::info!("serving /healthz on http://{addr}; preparing the database");
        let startup_timeout = Duration::from_secs(state.settings.db_startup_timeout.into());
        // The server is polled (so it accepts) while the database is prepared.
        tokio::select! {
            stopped = &mut server => {
                stopped?;
                anyhow::bail!("the server stopped while the database was being prepared");
            }
            prepared = prepare_database(&db_url, startup_timeout) => {
                if let Err(e) = prepared {
                    // The stop command is sent at once; the server future carries it out.
                    let stopped = server.handle().stop(false);
                    let _ = server.await;
                    stopped.await;
                    return Err(e);
                }
            }
        }
        state.ready.store(true, Ordering::Release);
        tracing::info!("listening on http://{addr}");
        let browse = browsable(&addr);
        tracing::info!(
            "API reference: http://{browse}/docs; next step: mint a service key for your backend with `mspbots-mfa service-keys create --name <backend>`"
        );
        let worker = state
            .settings
            .webhook_delivery
            .then(|| webhooks::worker::spawn(state.clone()));
        let background = worker
            .into_iter()
            .chain(housekeeping::spawn(state.clone()))
            .collect();
        Ok(Self {
            port,
            server,
            state,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Runs until SIGINT/SIGTERM (graceful: stop accepting, finish in-flight requests, then
    /// let the webhook worker finish the deliveries it is sending and housekeeping its batch).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        for task in self.background {
            task.stop().await;
        }
        served
    }
}

/// Creates and migrates the database, retrying with backoff while Postgres cannot be
/// reached, for at most `limit`. Each failure is logged with host, port and cause; the
/// final error names them too.
async fn prepare_database(url: &str, limit: Duration) -> anyhow::Result<()> {
    let target = db::host_port(url);
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        // connect_timeout covers the TCP connect only: a Postgres that accepts and then
        // hangs (frozen) must not hold the start-up beyond its limit.
        let left = limit
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let result = tokio::time::timeout(left, async {
            db::create_database(url, None).await?;
            db::migrate(url).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "Postgres accepted the connection but did not answer within {} ms",
                left.as_millis()
            ))
        });
        let error = match result {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "applied migrations");
                }
                return Ok(());
            }
            Err(e) => e,
        };
        // diesel-async keeps only "error connecting to server": ask the network for the why.
        let cause = match tcp_cause(&target).await {
            Some(why) => format!("{error:#}: {why}"),
            None => format!("{error:#}"),
        };
        let waited = started.elapsed();
        if waited + backoff > limit {
            anyhow::bail!(
                "the database at {target} could not be prepared within {} s (attempt {attempt}; MFA_DB_STARTUP_TIMEOUT): {cause}",
                limit.as_secs()
            );
        }
        tracing::warn!(database = %target, attempt, retry_in_ms = backoff.as_millis() as u64, error = %cause,
            "the database at {target} is not reachable yet: {cause}");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        attempt += 1;
    }
}

/// Why a TCP connection to `host:port` fails (refused, unreachable, no such host, timed
/// out), or `None` if it succeeds.
async fn tcp_cause(target: &str) -> Option<String> {
    let connect = tokio::net::TcpStream::connect(target);
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("TCP connect timed out after 3 s".to_owned()),
    }
}

fn listener_addr(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map_or(bind, |(h, _)| h);
    format!("{host}:{port}")
}

/// `addr` as a browser can open it: an unspecified bind address (`0.0.0.0`, `[::]`) is
/// reachable as localhost.
fn browsable(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => addr.to_owned(),
    }
}

fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("x-mfa-code"),
            REQUEST_ID,
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, REQUEST_ID])
        .max_age(600)
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    // The routes serve the document as data: `http` does not reach up into `openapi`.
    let doc = web::Data::new(ApiDocument(openapi::document()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(doc.clone())
            .configure(http::routes)
            .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json")))
            .default_service(http::fallback())
            .wrap(from_fn(middleware::metrics::record))
            .wrap(cors(&state.settings.cors_origins))
            // Tokens, secrets and codes must never sit in a cache.
            .wrap(
                DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .wrap(from_fn(middleware::edge::head_and_docs))
            .wrap(from_fn(middleware::request::request_context))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
