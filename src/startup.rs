//! Builds the application: keys, database (created and migrated), pool, state, and an HTTP
//! server bound to a listener, so tests run the real app on port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::config::{KeyMaterial, Settings};
use crate::domain::clock::{Clock, SystemClock};
use crate::metrics::{self, Metrics};
use crate::openapi::{document, Document};
use crate::rate_limit::RateLimiter;
use crate::state::AppState;
use crate::{db, http, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
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
        db::create_database(&settings.database_url, None).await?;
        let applied = db::migrate(&settings.database_url).await?;
        if !applied.is_empty() {
            tracing::info!(migrations = ?applied, "applied migrations");
        }
        let pool = db::pool(
            &settings.database_url,
            settings.db_pool_size,
            settings.statement_timeout_ms,
        )?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            rate_limiter: RateLimiter::new(settings.rate_limit_per_minute),
            metrics: Metrics::new()?,
            settings,
            keys,
            pool,
            clock,
        });
        let server = serve(listener, state.clone())?;
        tracing::info!(
            "listening on http://{}",
            listener_addr(&state.settings.bind, port)
        );
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Runs until SIGINT/SIGTERM (graceful: stop accepting, finish in-flight requests).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn listener_addr(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map_or(bind, |(h, _)| h);
    format!("{host}:{port}")
}

fn cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |c, o| c.allowed_origin(o))
        .allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("x-mfa-code"),
            telemetry::REQUEST_ID,
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, telemetry::REQUEST_ID])
        .max_age(600)
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let doc = web::Data::new(Document(document()));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(doc.clone())
            .configure(http::routes)
            .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json")))
            .default_service(http::fallback())
            .wrap(from_fn(metrics::record))
            .wrap(cors(&state.settings.cors_origins))
            // Tokens, secrets and codes must never sit in a cache.
            .wrap(
                DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .wrap(from_fn(http::edge::head_and_docs))
            .wrap(from_fn(telemetry::request_context))
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
