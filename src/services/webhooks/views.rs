//! The shapes of the webhook endpoints (docs/API.md §14): request bodies, queries, answers,
//! and the listings' cursors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::db::webhooks::{DeliveryRow, WebhookRow};
use crate::domain::audit::AuditType;
use crate::domain::ids::{DeliveryId, DeliveryState, WebhookId, WebhookStatus};
use crate::error::ApiError;
use crate::services::paging::{bad_cursor, decode_cursor, encode_cursor};
use crate::services::paging::{decode_time_cursor, encode_time_cursor};

/// `event_types`: audit type names, or `["*"]` alone for every type now and future (§20: a
/// `"*"` beside other names is `400`, so the schema offers the two forms apart).
fn event_types_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    let names: Vec<&str> = AuditType::ALL.iter().map(|t| t.as_str()).collect();
    let list = |values: Vec<&str>, max: usize| {
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(values)),
            )
            .min_items(Some(1))
            .max_items(Some(max))
    };
    let one_of = OneOfBuilder::new()
        .item(list(vec!["*"], 1).description(Some("every type, now and future")))
        .item(list(names, 50).description(Some("these audit event types")))
        .description(Some(
            "Audit event types (docs/API.md §6, §14, §16, §17), or `[\"*\"]` alone (or absent): every type, now and future",
        ))
        .build();
    Schema::OneOf(one_of)
}

/// `POST /v1/tenants/{tenant_id}/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"url": "https://hooks.example.com/mfa", "event_types": ["login.succeeded", "user.locked"], "description": "SIEM feed"}))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    // The `pattern` (here and in `UpdateWebhook`) is the documented form, a subset of what
    // `WebhookUrl::parse` accepts (tests/api/webhooks.rs checks every URL it admits is
    // accepted). A host label is `A(H?A)?`, `AHHA` or `AH(AH|-A)H{0,58}A` (A a letter or
    // digit, H also a hyphen): 1–63 characters, no hyphen at either end nor in both the
    // third and fourth places; the last label starts with a letter.
    /// `https` only (`http` and private addresses only in development or with
    /// `MFA_WEBHOOK_ALLOW_PRIVATE=true`); at most 2048 characters; no credentials, no
    /// fragment. The pattern shows the usual form, a DNS name: labels of 1–63 letters, digits
    /// and hyphens, no hyphen at either end nor in both the third and fourth places (reserved
    /// for IDNs); path and query in the characters RFC 3986 writes there (others
    /// percent-encoded). Also accepted: an IDN, a public IP literal. Stored exactly as sent;
    /// whitespace, control characters and `\` are refused, never rewritten.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]?[A-Za-z0-9])?|[A-Za-z0-9][A-Za-z0-9-][A-Za-z0-9-][A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])\.)*(?:[A-Za-z](?:[A-Za-z0-9-]?[A-Za-z0-9])?|[A-Za-z][A-Za-z0-9-][A-Za-z0-9-][A-Za-z0-9]|[A-Za-z][A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])(:[1-9][0-9]{0,3})?(/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
        example = "https://hooks.example.com/mfa"
    )]
    pub url: String,
    #[serde(default, deserialize_with = "present_list")]
    #[schema(schema_with = event_types_schema)]
    pub event_types: Option<Vec<String>>,
    /// At most 500 characters, without control or invisible formatting characters.
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub description: Option<String>,
}

/// `PATCH /v1/tenants/{tenant_id}/webhooks/{webhook_id}`: fields left out keep their values.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"status": "active"}))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// A new URL needs step-up; the same rules as at creation.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]?[A-Za-z0-9])?|[A-Za-z0-9][A-Za-z0-9-][A-Za-z0-9-][A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])\.)*(?:[A-Za-z](?:[A-Za-z0-9-]?[A-Za-z0-9])?|[A-Za-z][A-Za-z0-9-][A-Za-z0-9-][A-Za-z0-9]|[A-Za-z][A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])(:[1-9][0-9]{0,3})?(/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
    )]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "present_list")]
    #[schema(schema_with = event_types_schema)]
    pub event_types: Option<Vec<String>>,
    /// `null` removes the description. At most 500 characters, without control or invisible
    /// formatting characters.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(
        value_type = Option<String>,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*$"
    )]
    pub description: Option<Option<String>>,
    /// `disabled`: no new deliveries, pending ones wait; `active` resumes them.
    pub status: Option<WebhookStatus>,
}

/// A list that may be left out but is never `null`.
fn present_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Vec::<String>::deserialize(d).map(Some)
}

/// Present-and-null (`Some(None)`) apart from absent (`None`).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A webhook; never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub webhook_id: WebhookId,
    pub url: String,
    /// `["*"]`: every type.
    pub event_types: Vec<String>,
    #[schema(required = true)]
    pub description: Option<String>,
    pub status: WebhookStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The new webhook and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` + base64 of 32 random bytes: the HMAC key is the base64-decoded part.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub items: Vec<WebhookView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// The new secret, shown this once; the previous one signs too until the given time.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// A queued test delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    pub delivery_id: DeliveryId,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookListQuery {
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    #[param(inline)]
    pub state: Option<DeliveryState>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One delivery of one event to the webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub delivery_id: DeliveryId,
    /// The audit event's id (`webhook-id` is `evt_` + it); `null` for `webhook.test`.
    #[schema(required = true)]
    pub event_id: Option<String>,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: i32,
    /// The HTTP status of the last attempt, `null` when it got none.
    #[schema(required = true)]
    pub last_status: Option<i32>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// While `pending`.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

pub fn view(r: WebhookRow) -> WebhookView {
    WebhookView {
        webhook_id: r.webhook_id,
        url: r.url,
        event_types: r.event_types,
        description: r.description,
        status: r.status,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub fn delivery_view(r: DeliveryRow) -> DeliveryView {
    DeliveryView {
        delivery_id: r.delivery_id,
        event_id: r.event_id.map(|i| i.to_string()),
        event_type: r.event_type,
        state: r.state,
        attempts: r.attempts,
        last_status: r.last_status,
        last_error: r.last_error,
        next_attempt_at: r.next_attempt_at,
        created_at: r.created_at,
        delivered_at: r.delivered_at,
    }
}

pub fn encode_webhook_cursor(id: WebhookId) -> String {
    encode_cursor(&id.to_string())
}

pub fn decode_webhook_cursor(c: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(&decode_cursor(c)?).ok_or_else(bad_cursor)
}

pub fn encode_delivery_cursor(at: DateTime<Utc>, id: DeliveryId) -> String {
    encode_time_cursor(at, id)
}

pub fn decode_delivery_cursor(c: &str) -> Result<(DateTime<Utc>, DeliveryId), ApiError> {
    let (at, id) = decode_time_cursor(c)?;
    Ok((at, DeliveryId::parse(&id).ok_or_else(bad_cursor)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cursors_round_trip_and_reject_crafted_values() {
        let id = WebhookId::new();
        assert_eq!(
            decode_webhook_cursor(&encode_webhook_cursor(id)).unwrap(),
            id
        );
        let at = Utc.timestamp_micros(1_700_000_000_123_456).unwrap();
        let d = DeliveryId::new();
        assert_eq!(
            decode_delivery_cursor(&encode_delivery_cursor(at, d)).unwrap(),
            (at, d)
        );
        for bad in ["!!", "AA", "eDp5"] {
            assert!(decode_webhook_cursor(bad).is_err(), "{bad}");
            assert!(decode_delivery_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let absent: UpdateWebhook = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.description, None);
        let null: UpdateWebhook = serde_json::from_str(r#"{"description": null}"#).unwrap();
        assert_eq!(null.description, Some(None));
        assert!(serde_json::from_str::<UpdateWebhook>(r#"{"nope": 1}"#).is_err());
        assert!(serde_json::from_str::<UpdateWebhook>(r#"{"event_types": null}"#).is_err());
        let c = r#"{"url": "https://a.example/", "event_types": null}"#;
        assert!(serde_json::from_str::<CreateWebhook>(c).is_err());
    }
}
