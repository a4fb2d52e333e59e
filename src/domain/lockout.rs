//! The lockout schedule for a user's second factor, shared by every endpoint that checks a
//! code (verify, confirm, recover, step-up) and by every instance (the counters live in the
//! `users` row, which every code check locks first, so the state read here is the state that
//! is written back; see `db::users`). This file is the only definition of the schedule.
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

use chrono::{DateTime, Duration, Utc};

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

/// A user's lockout counters, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutState {
    /// Consecutive wrong codes since the last success, lockout or unlock.
    pub failed_attempts: i32,
    /// Lockouts since the last success or unlock (drives the doubling).
    pub lockout_count: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl LockoutState {
    /// Whether codes are refused at `now`.
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// The state after one more wrong code at `now`, and whether that code started a
    /// lockout.
    pub fn after_failure(&self, now: DateTime<Utc>) -> (LockoutState, bool) {
        let failed = self.failed_attempts.saturating_add(1);
        if failed >= MAX_FAILURES {
            let next = LockoutState {
                failed_attempts: 0,
                lockout_count: self.lockout_count.saturating_add(1),
                locked_until: Some(now + lock_duration(self.lockout_count)),
            };
            (next, true)
        } else {
            let next = LockoutState {
                failed_attempts: failed,
                ..*self
            };
            (next, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_wrong_code_locks_and_each_lockout_doubles() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut s = LockoutState::default();
        for n in 1..MAX_FAILURES {
            let (next, locked) = s.after_failure(t0);
            assert!(!locked);
            assert_eq!(next.failed_attempts, n);
            s = next;
        }
        let (s1, locked) = s.after_failure(t0);
        assert!(locked);
        assert_eq!(s1.failed_attempts, 0);
        assert_eq!(s1.lockout_count, 1);
        assert_eq!(s1.locked_until, Some(t0 + Duration::seconds(60)));
        assert!(s1.is_locked(t0 + Duration::seconds(59)));
        assert!(!s1.is_locked(t0 + Duration::seconds(60)));
        // After it runs out, five more wrong codes lock for twice as long.
        let t1 = t0 + Duration::seconds(60);
        let mut s = s1;
        for _ in 1..MAX_FAILURES {
            s = s.after_failure(t1).0;
        }
        let (s2, locked) = s.after_failure(t1);
        assert!(locked);
        assert_eq!(s2.lockout_count, 2);
        assert_eq!(s2.locked_until, Some(t1 + Duration::seconds(120)));
    }

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
