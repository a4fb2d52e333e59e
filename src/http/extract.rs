//! Request extractors that answer in problem+json: the JSON body (16 KiB, JSON only, empty
//! reads as `{}`, every bad or unknown field named), query strings, the client's address and user agent, bearer credentials.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, LocalBoxFuture, Ready};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// A JSON request body parsed into `T`, with field paths in its errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(ct) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Turns a serde error into a 400 naming the field.
pub fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let mut message = inner.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    let mut field = e.path().to_string();
    if field == "." || field == "?" {
        field = String::new();
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        field = if field.is_empty() {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        };
    }
    if inner.is_syntax() || inner.is_eof() {
        message = format!("malformed JSON: {message}");
    }
    let detail = if field.is_empty() {
        message.clone()
    } else {
        format!("{field}: {message}")
    };
    ApiError::InvalidRequest {
        detail,
        errors: vec![FieldError { field, message }],
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: serde_json::Value =
        serde_path_to_error::deserialize(&mut *de).map_err(json_error)?;
    de.end()
        .map_err(|e| ApiError::field("", format!("malformed JSON: trailing characters ({e})")))?;
    // Every request body of the API is an object (or, where it is optional, null). serde's
    // derive also fills a struct from an array, field by field in order, which would take
    // `["123456"]` for `{"code": "123456"}` and `[]` for an optional body.
    if !(value.is_object() || value.is_null()) {
        return Err(ApiError::field("", "the body must be a JSON object"));
    }
    if let (Some(fields), serde_json::Value::Object(object)) = (struct_fields::<T>(), &value) {
        let known = object.keys().all(|k| fields.contains(&k.as_str()));
        if let (true, Ok(body)) = (known, T::deserialize(&value)) {
            return Ok(body);
        }
        let errors = field_errors::<T>(fields, object);
        if !errors.is_empty() {
            let detail = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::InvalidRequest { detail, errors });
        }
    }
    serde_path_to_error::deserialize(&value).map_err(json_error)
}

/// The field names of a struct body (what serde's derive passes to `deserialize_struct`),
/// or `None` when `T` is not a struct.
fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    use serde::de::{Error, Visitor};
    struct Grab<'a>(&'a mut Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for Grab<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = Some(fields);
            Err(Error::custom("fields taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = None;
    let _ = T::deserialize(Grab(&mut fields));
    fields
}

/// Every bad field of a body, not only the first serde meets: each known field is
/// deserialized on its own (absent ones as missing), and every other key is unknown.
fn field_errors<T: DeserializeOwned>(
    fields: &'static [&'static str],
    object: &serde_json::Map<String, serde_json::Value>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in fields {
        let probe = Probe {
            field,
            value: object.get(*field),
        };
        if let Err(e) = serde_path_to_error::deserialize::<_, T>(probe) {
            // The probe yields only `field`; errors about other fields are theirs to report.
            let on_field = e.path().iter().next().is_some_and(
                |s| matches!(s, serde_path_to_error::Segment::Map { key } if key == field),
            );
            if on_field && probe_absent(object, field) {
                errors.push(FieldError {
                    field: (*field).to_owned(),
                    message: format!("missing field `{field}`"),
                });
            } else if on_field {
                if let ApiError::InvalidRequest { errors: mut e, .. } = json_error(e) {
                    errors.append(&mut e);
                }
            }
        }
    }
    errors.extend(
        object
            .keys()
            .filter(|k| !fields.contains(&k.as_str()))
            .map(|k| FieldError {
                field: k.clone(),
                message: "unknown field".to_owned(),
            }),
    );
    errors
}

fn probe_absent(object: &serde_json::Map<String, serde_json::Value>, field: &str) -> bool {
    !object.contains_key(field)
}

/// A body of one field, to deserialize a struct just far enough to judge that field.
struct Probe<'a> {
    field: &'static str,
    value: Option<&'a serde_json::Value>,
}

impl<'de> serde::Deserializer<'de> for Probe<'de> {
    type Error = serde_json::Error;
    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_map(ProbeMap {
            probe: Some(self),
            value: None,
        })
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
}

struct ProbeMap<'a> {
    probe: Option<Probe<'a>>,
    value: Option<Probe<'a>>,
}

impl<'de> serde::de::MapAccess<'de> for ProbeMap<'de> {
    type Error = serde_json::Error;
    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some(p) = self.probe.take() else {
            return Ok(None);
        };
        let key = seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(p.field))?;
        self.value = Some(p);
        Ok(Some(key))
    }
    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(Probe { value: Some(v), .. }) => seed.deserialize(v),
            Some(Probe { field, value: None }) => seed.deserialize(Missing(field)),
            None => Err(serde::de::Error::custom("value before key")),
        }
    }
}

/// An absent field: `None` for an optional one, else "missing field". (A body field with
/// `#[serde(default)]` must therefore be an `Option`: the probe cannot see the default.)
struct Missing(&'static str);

impl<'de> serde::Deserializer<'de> for Missing {
    type Error = serde_json::Error;
    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::missing_field(self.0))
    }
    fn deserialize_option<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_none()
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct
        enum identifier ignored_any
    }
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
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|_| ApiError::field("", "the request body could not be read"))?;
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ApiError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            if !body.is_empty() && !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            Ok(RawJson(body))
        })
    }
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

pub use crate::services::ClientMeta;

/// The client IP: the peer, unless the peer is a trusted proxy, in which case the nearest
/// untrusted address in `X-Forwarded-For` (read right to left, so a client cannot spoof
/// it by sending its own header).
pub fn client_ip(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    match peer {
        Some(p) if is_trusted(&p) => {
            let xff: Vec<IpAddr> = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            xff.iter()
                .rev()
                .find(|ip| !is_trusted(ip))
                .copied()
                .or(xff.first().copied())
                .or(Some(p))
        }
        other => other,
    }
}

impl FromRequest for ClientMeta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = req
            .app_data::<actix_web::web::Data<AppState>>()
            .map(|s| s.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        ready(Ok(ClientMeta {
            ip: client_ip(req, &trusted),
            user_agent,
        }))
    }
}

/// The bearer credential of the request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        n: u8,
    }

    fn problem(e: ApiError) -> (String, String) {
        match e {
            ApiError::InvalidRequest { errors, .. } => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let (f, m) = problem(parse_json::<Body>(b"{}").unwrap_err());
        assert_eq!((f.as_str(), m.as_str()), ("name", "missing field `name`"));
        let (f, _) = problem(parse_json::<Body>(br#"{"name":"a","inner":{"n":300}}"#).unwrap_err());
        assert_eq!(f, "inner.n");
        let (f, m) = problem(parse_json::<Body>(b"{bad json").unwrap_err());
        assert_eq!(f, "");
        assert!(m.starts_with("malformed JSON"), "{m}");
        assert!(parse_json::<Body>(br#"{"name":"a"} x"#).is_err());
    }

    #[test]
    fn bodies_are_objects_not_arrays() {
        for body in [&br#"["a"]"#[..], b"[]", b"\"a\"", b"1"] {
            let (f, m) = problem(parse_json::<Body>(body).unwrap_err());
            assert_eq!(
                (f.as_str(), m.as_str()),
                ("", "the body must be a JSON object")
            );
            let (_, m) = problem(parse_json::<Option<Body>>(body).unwrap_err());
            assert_eq!(m, "the body must be a JSON object");
        }
        assert!(matches!(parse_json::<Option<Body>>(b"null"), Ok(None)));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Change {
        enforce: bool,
        surfaces: Option<Vec<u8>>,
        issuer: Option<String>,
        name: String,
    }

    fn all_errors(body: &str) -> Vec<(String, String)> {
        match parse_json::<Change>(body.as_bytes()).unwrap_err() {
            ApiError::InvalidRequest { errors, .. } => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_reported_unknown_ones_by_name() {
        let errors = all_errors(r#"{"enforce":"yes","surfaces":[1,"x"],"foo":1,"bar":null}"#);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["enforce", "surfaces[1]", "name", "bar", "foo"],
            "{errors:?}"
        );
        assert_eq!(errors[2].1, "missing field `name`");
        assert_eq!(errors[3].1, "unknown field");
        assert!(errors[0].1.starts_with("invalid type"), "{errors:?}");
        let errors = all_errors(r#"{"enforce":true,"name":"n","foo":1}"#);
        assert_eq!(errors, [("foo".to_owned(), "unknown field".to_owned())]);
        let ok = parse_json::<Change>(br#"{"enforce":true,"name":"n","issuer":null}"#).unwrap();
        assert!(ok.enforce && ok.issuer.is_none());
        // Not an object: one error for the body as a whole.
        assert_eq!(all_errors("[1]").len(), 1);
    }

    #[test]
    fn empty_body_reads_as_an_empty_object() {
        #[derive(Deserialize)]
        struct Empty {}
        assert!(parse_json::<Empty>(b"").is_ok());
        assert!(parse_json::<Empty>(b"  \n").is_ok());
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
        use actix_web::test::TestRequest;
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let req = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.7"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        let direct = TestRequest::default()
            .peer_addr("198.51.100.1:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "6.6.6.6"))
            .to_http_request();
        assert_eq!(
            client_ip(&direct, &trusted),
            Some("198.51.100.1".parse().unwrap())
        );
    }

    #[test]
    fn bearer_takes_the_token() {
        use actix_web::test::TestRequest;
        let r = TestRequest::default()
            .insert_header(("authorization", "bearer sk_abc"))
            .to_http_request();
        assert_eq!(bearer(&r), Some("sk_abc"));
        let r = TestRequest::default()
            .insert_header(("authorization", "Basic x"))
            .to_http_request();
        assert_eq!(bearer(&r), None);
    }
}
