//! Operations endpoints (docs/API.md §8): liveness, readiness, metrics, keys, the API document.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;
use utoipa::ToSchema;

use super::reply::{Data, Reply};
use crate::error::{ApiError, Problem};
use crate::services;

/// The rendered OpenAPI document, handed to the routes as app data by `startup` (which
/// renders it from `crate::openapi`), shared by all workers.
pub struct ApiDocument(pub String);

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 when Postgres answers, 503 when not.
#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn readyz(state: Data) -> Reply {
    services::ops::ready(&state).await?;
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}

/// Prometheus metrics: requests by route and status with latency histograms,
/// second-factor outcomes, lockouts, database pool use, webhook deliveries by outcome,
/// their queue depth and latency.
#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(state: Data) -> Reply {
    state.metrics.observe_pool(state.pool.status());
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&state.metrics.registry.gather(), &mut buf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(TextEncoder::new().format_type())
        .body(buf))
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "Operations", operation_id = "jwks",
    responses((status = 200, description = "JSON Web Key Set", body = Object,
        example = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "Tq1cqh5WbVQ3Y2Yk", "alg": "EdDSA", "use": "sig"}]}))))]
pub async fn jwks(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.signing.jwks())
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "Operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(doc: web::Data<ApiDocument>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// `/docs` → `/docs/` (the interactive reference).
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// `GET /`: where to go from here, for someone who opened the base URL (not part of the
/// API document, like `/docs` itself).
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "service": "mspbots-mfa",
        "docs": "/docs/",
        "openapi": "/openapi.json",
        "jwks": "/.well-known/jwks.json",
        "health": "/healthz",
        "ready": "/readyz",
    }))
}
