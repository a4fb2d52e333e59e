#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected
//! All integration tests, one binary (real Postgres, real HTTP, real binary for e2e).

mod helpers;

mod admin;
mod allowed_types;
mod cli;
mod devices;
pub mod e2e;
mod e2e_passkeys;
mod factors;
mod foundation;
mod gate;
mod grace;
mod hostile;
mod housekeeping;
mod lock_order;
mod me_selfservice;
mod openings;
mod passkey_id_race;
mod passkeys;
mod passkeys_more;
pub mod passkeys_rules;
mod pipelined;
mod reauth;
mod reauth_passkey;
mod replay_lockout;
mod repo_files;
mod resilience;
mod schema;
mod security_rules;
mod signin;
mod stuck_user;
mod synced_key;
mod templates;
mod tokens;
mod totp_vectors;
mod ui;
mod webhook_fairness;
mod webhook_limits;
mod webhook_plans;
mod webhook_receiver;
mod webhooks;
