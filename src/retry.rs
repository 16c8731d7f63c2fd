//! Retry timing: exponential backoff with jitter, and `Retry-After`. Pure.

use std::time::{Duration, SystemTime};

/// Parses a `Retry-After` value: whole seconds, or an HTTP date (relative to now).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// As [`parse_retry_after`], relative to `now`. A date in the past means "now" (zero).
pub fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The delay before attempt `attempt + 1`, after `attempt` failed attempts (1-based):
/// `initial * 2^(attempt-1)`, capped at `max`, scaled by `jitter` (a factor, e.g. 0.8..1.2,
/// that spreads retries of many deliveries apart), and capped at `max` again.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(40);
    let base = initial.saturating_mul(1u32 << exp.min(31)).min(max);
    let base = if exp > 31 { max } else { base };
    base.mul_f64(jitter.clamp(0.0, 2.0)).min(max)
}

/// A random jitter factor in 0.8..1.2.
pub fn jitter() -> f64 {
    0.8 + rand::random::<f64>() * 0.4
}

/// The delay before the next attempt: the server's `Retry-After` when it gave one (capped at
/// `max`), else [`backoff`].
pub fn next_delay(
    attempt: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    match retry_after {
        Some(d) => d.min(max),
        None => backoff(attempt, initial, max, jitter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").expect("date");
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after_at("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let i = Duration::from_secs(5);
        let m = Duration::from_secs(10 * 3600);
        let delays: Vec<u64> = (1..=14).map(|a| backoff(a, i, m, 1.0).as_secs()).collect();
        assert_eq!(delays[..5], [5, 10, 20, 40, 80]);
        assert_eq!(delays[11], 10240);
        assert_eq!(backoff(13, i, m, 1.0), Duration::from_secs(20480));
        assert_eq!(backoff(20, i, m, 1.0), m);
        assert_eq!(backoff(u32::MAX, i, m, 1.0), m);
        assert_eq!(backoff(0, i, m, 1.0), i);
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let i = Duration::from_secs(10);
        let m = Duration::from_secs(100);
        assert_eq!(backoff(1, i, m, 0.8), Duration::from_secs(8));
        assert_eq!(backoff(1, i, m, 1.2), Duration::from_secs(12));
        assert_eq!(backoff(5, i, m, 1.2), m, "jitter never exceeds the cap");
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.8..1.2).contains(&j));
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let i = Duration::from_secs(5);
        let m = Duration::from_secs(60);
        assert_eq!(
            next_delay(1, i, m, Some(Duration::from_secs(30)), 1.0),
            Duration::from_secs(30)
        );
        assert_eq!(next_delay(1, i, m, Some(Duration::from_secs(3000)), 1.0), m);
        assert_eq!(next_delay(2, i, m, None, 1.0), Duration::from_secs(10));
    }
}
