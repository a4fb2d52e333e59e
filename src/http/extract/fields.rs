//! JSON body parsing into a handler's type: an empty body reads as `{}`, only objects (or
//! `null` where the body is optional) are bodies, and every bad or unknown field is named in
//! the `400`, not only the first one serde meets.

use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Turns a serde error into a 400 naming the field.
fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
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

pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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
}
