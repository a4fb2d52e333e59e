//! The JSON request body as read: at most [`MAX_BODY`], declared `application/json` (`413`
//! and `415` come before anything else, also before routing: [`body_guard`]), then parsed
//! by `fields` into the handler's type.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::fields::parse_json;
use crate::error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// A JSON request body parsed into `T`, with field paths in its errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Whether the body is declared `application/json`, parameters (`charset`) allowed. Any other
/// media type is refused, `+json` suffixes included (docs/API.md §20): the service reads
/// plain JSON only, so nothing else is accepted as if it were.
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type)
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let raw = RawJson::from_request(req, payload);
        Box::pin(async move { raw.await?.parse().map(JsonBody) })
    }
}

/// A JSON request body, read (16 KiB, JSON only: `413`/`415` come first) but not parsed.
/// Handlers parse it once they have checked the credential and the caller's rights, so a
/// caller who may not call learns nothing from the body's validation.
#[derive(Debug)]
pub struct RawJson(BytesMut);

impl RawJson {
    /// The body as `T`, every bad field named (empty reads as `{}`).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.0)
    }

    /// Whether no body was sent (for operations whose body is required).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromRequest for RawJson {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let json = is_json(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > MAX_BODY) {
                return Err(ApiError::PayloadTooLarge);
            }
            let body = read_capped(&mut payload).await?;
            if !body.is_empty() && !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            Ok(RawJson(body))
        })
    }
}

/// The whole body, at most [`MAX_BODY`] (`413` as soon as it is more), however it is sent.
pub async fn read_capped(payload: &mut Payload) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::field("", "the request body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Checks every request before routing (and before authentication): a declared body over
/// 16 KiB is `413`, a body that is not JSON is `415`. Bodies without a declared length are
/// checked again while they are read (`JsonBody`).
pub fn body_guard(req: &actix_web::dev::ServiceRequest) -> Result<(), ApiError> {
    let h = req.headers();
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::PayloadTooLarge);
    }
    let has_body = declared.is_some_and(|n| n > 0) || h.contains_key(header::TRANSFER_ENCODING);
    if has_body && !is_json(req.request()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_application_json_with_parameters_is_json() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ; foo=bar",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for refused in [
            "",
            "application/merge-patch+json",
            "application/problem+json",
            "application/vnd.api+json; charset=utf-8",
            "text/json",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
        ] {
            assert!(!is_json_media_type(refused), "{refused}");
        }
    }
}
