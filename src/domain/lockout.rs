//! The lockout schedule for a user's second factor, shared by every endpoint that checks a
//! code (verify, confirm, recover, step-up) and by every instance (the counters live in the
//! `users` row and change in single SQL statements; see `db::users`).
//!
//! ```text
//!            wrong code (n < 5)            5th consecutive wrong code
//!   ┌────────┐ ────────────────► ┌───────┐ ─────────────────────────► ┌────────┐
//!   │ open   │                   │ open, │                            │ locked │
//!   │ n = 0  │ ◄──────────────── │ n > 0 │        lockouts += 1       │ until  │
//!   └────────┘   success/unlock  └───────┘        n = 0               └────────┘
//!       ▲  ▲                                                             │
//!       │  └──── time passes: locked_until ≤ now (n = 0, lockouts kept) ─┘
//!       └─────── success or admin unlock: n = 0, lockouts = 0
//! ```
//!
//! While locked no code is evaluated. A reused code and a malformed code count as nothing.

use chrono::Duration;

/// Consecutive wrong codes that lock the factor (also kills an mfa token).
pub const MAX_FAILURES: i32 = 5;
/// The first lockout lasts this long…
pub const BASE_LOCK_SECS: i64 = 60;
/// …and each further one doubles, up to this.
pub const MAX_LOCK_SECS: i64 = 15 * 60;

/// How long the `(previous_lockouts + 1)`-th lockout lasts.
pub fn lock_duration(previous_lockouts: i32) -> Duration {
    let doublings = previous_lockouts.clamp(0, 30) as u32;
    let secs = BASE_LOCK_SECS.saturating_mul(1_i64 << doublings);
    Duration::seconds(secs.min(MAX_LOCK_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_minute_and_caps_at_fifteen() {
        let mins: Vec<i64> = (0..8).map(|n| lock_duration(n).num_seconds()).collect();
        assert_eq!(mins, vec![60, 120, 240, 480, 900, 900, 900, 900]);
    }

    #[test]
    fn absurd_counts_do_not_overflow() {
        assert_eq!(lock_duration(i32::MAX).num_seconds(), MAX_LOCK_SECS);
        assert_eq!(lock_duration(-3).num_seconds(), BASE_LOCK_SECS);
    }
}
