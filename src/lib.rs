//! mspbots-mfa: the TOTP second factor for MSPbots, as a library so the binary and the
//! integration tests build the very same application.
//!
//! Data flows one way: `http` → `services` → (`domain`, `db`, `crypto`).
//! `domain` is pure and imports none of the others.

pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
