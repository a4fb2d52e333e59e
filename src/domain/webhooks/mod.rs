//! Webhooks (docs/API.md §14) as pure rules: the retry schedule, which event types a webhook
//! takes, what a webhook URL may be, and which addresses a delivery may never reach.
//!
//! A delivery's life:
//!
//! ```text
//!   pending --2xx--> succeeded
//!      |  \--other / timeout--> pending (next attempt after SCHEDULE[n] ± 10 %, or later
//!      |                        when Retry-After says so, at most 24 h)
//!      \--10th failure--> failed        410 Gone: the webhook is disabled at once
//! ```
//!
//! The numbers of §14 and §20 that more than one layer needs are here, in one place.

mod event_types;
mod schedule;
mod url;

use std::time::Duration;

pub use self::event_types::EventTypes;
pub use self::schedule::{
    next_retry, parse_retry_after, FAILING_DISABLES_AFTER, MAX_RETRY_AFTER, SCHEDULE_SECS,
};
pub use self::url::{is_forbidden, WebhookUrl};

/// A receiver has this long to answer, the name's lookup included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
