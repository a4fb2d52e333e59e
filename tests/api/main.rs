//! All integration tests, one binary (real Postgres, real HTTP, real binary for e2e).

mod helpers;

mod foundation;
