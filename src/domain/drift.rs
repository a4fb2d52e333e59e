//! Which step a code is accepted for, with each factor's replay guard and clock drift
//! (docs/API.md §10, §11), and the resynchronisation rule. Pure functions of the secret, the
//! code and the time; every candidate step is computed and compared in constant time.

use subtle::ConstantTimeEq;

use super::totp::{code_at_step, time_step, TimeStep, TotpCode};

/// What a factor knows of its past codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FactorClock {
    /// The last step accepted (the replay guard); `None` before any.
    pub last_used_step: Option<TimeStep>,
    /// Learned offset, in steps, of the phone's clock.
    pub drift_steps: i32,
}

/// The outcome of checking one code against one factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Accepted for this step (the earliest matching step later than the last used one).
    Accepted(TimeStep),
    /// Matched only at steps not later than the last used one: `code_reused`.
    Reused,
    /// Matched no step in the window.
    NoMatch,
}

fn matches(secret: &[u8], code: &TotpCode, step: TimeStep) -> bool {
    bool::from(code_at_step(secret, step).as_bytes().ct_eq(code.as_bytes()))
}

/// §11: a code is accepted for the earliest step `s` later than `last_used_step` with
/// |s − now| ≤ skew or |s − (now + drift)| ≤ skew.
pub fn check(
    secret: &[u8],
    code: &TotpCode,
    unix_secs: i64,
    skew: u8,
    clock: FactorClock,
) -> Check {
    let now = time_step(unix_secs);
    let skew = i64::from(skew);
    let drifted = now + i64::from(clock.drift_steps);
    let mut steps: Vec<TimeStep> = ((now - skew)..=(now + skew))
        .chain((drifted - skew)..=(drifted + skew))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let mut accepted = None;
    let mut reused = false;
    for step in steps {
        // Every candidate is computed and compared, so timing does not tell which matched.
        let hit = matches(secret, code, step);
        let fresh = clock.last_used_step.is_none_or(|last| step > last);
        if hit && fresh && accepted.is_none() {
            accepted = Some(step);
        }
        reused |= hit && !fresh;
    }
    match accepted {
        Some(s) => Check::Accepted(s),
        None if reused => Check::Reused,
        None => Check::NoMatch,
    }
}

/// The drift a step shows at `unix_secs`, bounded by `max_drift` either way.
pub fn drift_of(step: TimeStep, unix_secs: i64, max_drift: u8) -> i32 {
    let d = (step - time_step(unix_secs)).clamp(-i64::from(max_drift), i64::from(max_drift));
    i32::try_from(d).unwrap_or(0)
}

/// §11 resynchronisation: two codes of consecutive steps `s`, `s+1`, both within `window`
/// steps of now, `s` later than the last used step and |s+1 − now| ≤ `max_drift`. Returns
/// `s+1`, the factor's new last used step (its drift is `s+1 − now`).
pub fn resync(
    secret: &[u8],
    code1: &TotpCode,
    code2: &TotpCode,
    unix_secs: i64,
    window: u8,
    max_drift: u8,
    last_used_step: Option<TimeStep>,
) -> Option<TimeStep> {
    let now = time_step(unix_secs);
    let (window, max_drift) = (i64::from(window), i64::from(max_drift));
    let mut found = None;
    for s in (now - window)..now + window {
        let both = matches(secret, code1, s) & matches(secret, code2, s + 1);
        let allowed =
            last_used_step.is_none_or(|last| s > last) && (s + 1 - now).abs() <= max_drift;
        if both && allowed && found.is_none() {
            found = Some(s + 1);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";
    const NOW: i64 = 1_800_000_015; // mid-step

    fn at(offset: i64) -> TotpCode {
        TotpCode::parse(&code_at_step(SECRET, time_step(NOW) + offset)).unwrap()
    }

    fn clock(last: Option<i64>, drift: i32) -> FactorClock {
        FactorClock {
            last_used_step: last.map(|o| time_step(NOW) + o),
            drift_steps: drift,
        }
    }

    /// The check of the code `offset` steps from now, skew 1, against this clock.
    fn checked(offset: i64, last: Option<i64>, drift: i32) -> Check {
        check(SECRET, &at(offset), NOW, 1, clock(last, drift))
    }

    #[test]
    fn accepts_within_skew_of_now_or_of_now_plus_drift() {
        let now = time_step(NOW);
        assert_eq!(checked(1, None, 0), Check::Accepted(now + 1));
        assert_eq!(checked(2, None, 0), Check::NoMatch);
        // A phone 4 steps ahead, once learned.
        assert_eq!(checked(4, None, 4), Check::Accepted(now + 4));
        assert_eq!(checked(5, None, 4), Check::Accepted(now + 5));
        assert_eq!(checked(6, None, 4), Check::NoMatch);
        // Corrected clock: still accepted around now.
        assert_eq!(checked(0, None, 4), Check::Accepted(now));
    }

    #[test]
    fn the_replay_guard_is_strict_and_reuse_is_reported() {
        let now = time_step(NOW);
        assert_eq!(checked(0, Some(0), 0), Check::Reused);
        assert_eq!(checked(-1, Some(0), 0), Check::Reused);
        assert_eq!(checked(1, Some(0), 0), Check::Accepted(now + 1));
        // A phone corrected after drifting ahead: its codes are older than the last one
        // accepted until the clock catches up.
        assert_eq!(checked(0, Some(4), 4), Check::Reused);
        assert_eq!(checked(9, Some(4), 4), Check::NoMatch);
    }

    #[test]
    fn drift_is_bounded() {
        assert_eq!(drift_of(time_step(NOW) + 4, NOW, 10), 4);
        assert_eq!(drift_of(time_step(NOW) + 12, NOW, 10), 10);
        assert_eq!(drift_of(time_step(NOW) - 12, NOW, 10), -10);
    }

    #[test]
    fn resync_needs_two_consecutive_codes_within_the_bounds() {
        let now = time_step(NOW);
        assert_eq!(
            resync(SECRET, &at(4), &at(5), NOW, 20, 10, None),
            Some(now + 5)
        );
        assert_eq!(
            resync(SECRET, &at(-7), &at(-6), NOW, 20, 10, None),
            Some(now - 6)
        );
        assert_eq!(resync(SECRET, &at(4), &at(6), NOW, 20, 10, None), None);
        assert_eq!(resync(SECRET, &at(5), &at(4), NOW, 20, 10, None), None);
        // Past MAX_DRIFT, or outside the window.
        assert_eq!(resync(SECRET, &at(11), &at(12), NOW, 20, 10, None), None);
        assert_eq!(
            resync(SECRET, &at(9), &at(10), NOW, 20, 10, None),
            Some(now + 10)
        );
        assert_eq!(resync(SECRET, &at(20), &at(21), NOW, 20, 30, None), None);
        // Not later than the last used step.
        assert_eq!(
            resync(SECRET, &at(4), &at(5), NOW, 20, 10, Some(now + 4)),
            None
        );
        assert_eq!(
            resync(SECRET, &at(4), &at(5), NOW, 20, 10, Some(now + 3)),
            Some(now + 5)
        );
    }
}
