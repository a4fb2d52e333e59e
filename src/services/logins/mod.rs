//! Sign-in (docs/API.md §3): the primary login asks what happens next (`start`); the browser
//! then enrolls, verifies or recovers with its mfa token (`challenge`).

mod challenge;
mod enroll;
mod passkey_enroll;
mod skip;
mod start;
mod types;
mod verify;
mod webauthn;

pub use challenge::{get, parse_login_id, SignInAt};
pub use enroll::{confirm_enrollment, start_enrollment};
pub use passkey_enroll::{confirm_webauthn_enrollment, start_webauthn_enrollment};
pub use skip::skip_enrollment;
pub use start::start;
pub use types::*;
pub use verify::{recover, resync, verify, webauthn, Resynced};
pub use webauthn::{
    challenge as webauthn_challenge, WebauthnChallenge, WebauthnEnrollRequest,
    WebauthnSignInRequest,
};
