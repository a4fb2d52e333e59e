//! The retry schedule of a delivery (docs/API.md §14): when to try again after a failure,
//! what a `Retry-After` may change, and how long failures may last before the webhook is
//! disabled.

use std::time::Duration;

/// The waits after the 1st, 2nd, … failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
/// 20 h, 24 h. After the 10th attempt fails the delivery is `failed`.
pub const SCHEDULE_SECS: [u64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Failures of every delivery for this long disable the webhook.
pub const FAILING_DISABLES_AFTER: Duration = Duration::from_secs(3 * 86_400);

/// When to try again after `attempts` attempts (the one that just failed included), or
/// `None` when the delivery has failed for good. `jitter` in [-1, 1] spreads the wait by
/// ±10 %; a `Retry-After` (capped at 24 h) only ever moves the attempt later.
pub fn next_retry(attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Option<Duration> {
    let idx = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let base = *SCHEDULE_SECS.get(idx)? as f64;
    let spread = base * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
    let scheduled = Duration::from_millis((spread * 1000.0).round() as u64);
    Some(match retry_after {
        Some(ra) => scheduled.max(ra.min(MAX_RETRY_AFTER)),
        None => scheduled,
    })
}

/// The value of a `Retry-After` header: delay-seconds, or an HTTP date relative to `now`
/// (unix seconds). Anything else is ignored.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?.timestamp();
    u64::try_from(at - now_unix).ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> Option<f64> {
        d.map(|d| d.as_secs_f64())
    }

    #[test]
    fn the_schedule_is_the_documented_one_and_ends_in_failed() {
        let expected = [
            5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0,
        ];
        for (i, want) in expected.iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap();
            assert_eq!(
                secs(next_retry(n, 0.0, None)),
                Some(*want),
                "after attempt {n}"
            );
        }
        assert_eq!(
            next_retry(10, 0.0, None),
            None,
            "failed after the 10th attempt"
        );
        assert_eq!(next_retry(0, 0.0, None), None);
    }

    #[test]
    fn jitter_spreads_by_ten_percent_at_most() {
        assert_eq!(secs(next_retry(2, 1.0, None)), Some(330.0));
        assert_eq!(secs(next_retry(2, -1.0, None)), Some(270.0));
        assert_eq!(secs(next_retry(2, 7.0, None)), Some(330.0), "clamped");
    }

    #[test]
    fn retry_after_only_moves_later_and_at_most_a_day() {
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(secs(next_retry(1, 0.0, ra(120))), Some(120.0));
        assert_eq!(
            secs(next_retry(2, 0.0, ra(10))),
            Some(300.0),
            "never earlier"
        );
        assert_eq!(secs(next_retry(1, 0.0, ra(10 * 86_400))), Some(86_400.0));
        assert_eq!(
            next_retry(10, 0.0, ra(5)),
            None,
            "no attempt after the last"
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(" 120 ", 0),
            Some(Duration::from_secs(120))
        );
        let now = 1_614_265_330;
        assert_eq!(
            parse_retry_after("Thu, 25 Feb 2021 15:12:10 GMT", now),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Thu, 25 Feb 2021 14:00:00 GMT", now),
            None
        );
    }
}
