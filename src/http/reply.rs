//! What every handler takes and gives: the application state, and its answer.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// The application state, as handlers take it.
pub type Data = web::Data<AppState>;

/// What a handler answers: a response, or an error sent as problem+json.
pub type Reply = Result<HttpResponse, ApiError>;
