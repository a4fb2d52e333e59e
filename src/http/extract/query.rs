//! Query strings, parsed like `web::Query` but failing with a problem+json `400`.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Query strings: like `web::Query`, with problem+json errors.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let de = serde_urlencoded_de(req.query_string());
        ready(de.map(Query))
    }
}

fn serde_urlencoded_de<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    actix_web::web::Query::<T>::from_query(q)
        .map(|q| q.into_inner())
        .map_err(|e| {
            let msg = match &e {
                actix_web::error::QueryPayloadError::Deserialize(d) => d.to_string(),
                other => other.to_string(),
            };
            ApiError::field("query", msg)
        })
}
