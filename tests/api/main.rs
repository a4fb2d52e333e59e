#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected
//! All integration tests, one binary (real Postgres, real HTTP, real binary for e2e).

mod helpers;

mod admin;
mod e2e;
mod foundation;
mod me_selfservice;
mod replay_lockout;
mod resilience;
mod signin;
