//! Sign-in (docs/API.md §3): the primary login asks what happens next (`start`); the browser
//! then enrolls, verifies or recovers with its mfa token (`challenge`).

mod challenge;
mod resync;
mod skip;
mod start;
mod types;

pub use challenge::{confirm_enrollment, get, parse_login_id, recover, start_enrollment, verify};
pub use resync::{resync, Resynced};
pub use skip::skip_enrollment;
pub use start::start;
pub use types::*;
