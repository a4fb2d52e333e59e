//! What every handler takes and gives: the application state, and its answer.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

/// The application state, as handlers take it.
pub type Data = web::Data<AppState>;

/// What a handler answers: a response, or an error sent as problem+json.
pub type Reply = Result<HttpResponse, ApiError>;

/// `200 OK` with this JSON body.
pub fn ok(body: impl Serialize) -> Reply {
    Ok(HttpResponse::Ok().json(body))
}

/// `201 Created` with this JSON body.
pub fn created(body: impl Serialize) -> Reply {
    Ok(HttpResponse::Created().json(body))
}

/// `204 No Content`: done, nothing to show.
pub fn no_content() -> Reply {
    Ok(HttpResponse::NoContent().finish())
}
