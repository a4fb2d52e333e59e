//! Keyset pagination of the admin listings (users, audit events, webhooks, deliveries): the
//! page size, the opaque cursors (base64url of the last row's key) and the page cut from a
//! fetch of one row more than asked, which tells whether there is a next page.

use chrono::{DateTime, TimeZone, Utc};
use data_encoding::BASE64URL_NOPAD;

use crate::error::ApiError;

/// Page size: 1-200, default 50.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::field("limit", "must be between 1 and 200")),
    }
}

/// A listing's page size and its decoded cursor, in that order of checks.
pub fn page_args<K>(
    limit: Option<i64>,
    cursor: Option<&str>,
    decode: impl FnOnce(&str) -> Result<K, ApiError>,
) -> Result<(i64, Option<K>), ApiError> {
    Ok((page_limit(limit)?, cursor.map(decode).transpose()?))
}

pub fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "is not a cursor this API returned")
}

pub fn decode_cursor(c: &str) -> Result<String, ApiError> {
    let bytes = BASE64URL_NOPAD
        .decode(c.as_bytes())
        .map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

pub fn encode_cursor(s: &str) -> String {
    BASE64URL_NOPAD.encode(s.as_bytes())
}

/// The cursor of a newest-first listing: the last row's time (in microseconds) and id.
pub fn encode_time_cursor(at: DateTime<Utc>, id: impl std::fmt::Display) -> String {
    encode_cursor(&format!("{}:{id}", at.timestamp_micros()))
}

/// The time and the id (still to parse) of an [`encode_time_cursor`] cursor.
pub fn decode_time_cursor(c: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let s = decode_cursor(c)?;
    let (micros, id) = s.split_once(':').ok_or_else(bad_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    let at = Utc
        .timestamp_micros(micros)
        .single()
        .ok_or_else(bad_cursor)?;
    Ok((at, id.to_owned()))
}

/// The page in `rows`, fetched with `limit + 1`, and the next page's cursor (made from the
/// page's last row) when that extra row came.
pub fn cut_page<R>(
    mut rows: Vec<R>,
    limit: i64,
    cursor: impl FnOnce(&R) -> String,
) -> (Vec<R>, Option<String>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(cursor)).flatten();
    (rows, next_cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert_eq!(page_limit(Some(200)).unwrap(), 200);
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(201)).is_err());
        let c = encode_cursor("u-1");
        assert_eq!(decode_cursor(&c).unwrap(), "u-1");
        assert!(decode_cursor("!!").is_err());
        let at = Utc.timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = encode_time_cursor(at, 42);
        assert_eq!(decode_time_cursor(&c).unwrap(), (at, "42".to_owned()));
        assert!(decode_time_cursor(&encode_cursor("x:y")).is_err());
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_the_extra_row_came() {
        let key = |r: &i32| r.to_string();
        assert_eq!(
            cut_page(vec![1, 2, 3], 2, key),
            (vec![1, 2], Some("2".into()))
        );
        assert_eq!(cut_page(vec![1, 2], 2, key), (vec![1, 2], None));
        assert_eq!(cut_page(Vec::new(), 2, key), (vec![], None));
    }
}
