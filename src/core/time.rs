//! Saturating time arithmetic for durations that come from the user (`delay=`, `--timeout`, `--interval`): a
//! deadline far in the future, never a panic on overflow. Does not own parsing durations or their limits.

use std::time::{Duration, Instant};

/// About a century: later than any deadline phoebe could wait for, and still representable as an `Instant`.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `start + after`, or a deadline about a century after `start` when the sum does not fit.
pub fn deadline(start: Instant, after: Duration) -> Instant {
    start
        .checked_add(after)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

/// `d × n`, or `Duration::MAX` when the product does not fit.
pub fn times(d: Duration, n: u32) -> Duration {
    d.checked_mul(n).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 13, item 5): `delay=9223372036854775807s` panicked adding to an `Instant`.
    #[test]
    fn delay_of_9223372036854775807s_overflowed_an_instant() {
        let now = Instant::now();
        let huge = Duration::from_secs(9_223_372_036_854_775_807);
        assert!(deadline(now, huge) > now + Duration::from_secs(3600 * 24 * 365));
        assert!(deadline(now, Duration::MAX) > now);
        assert_eq!(
            deadline(now, Duration::from_millis(10)),
            now + Duration::from_millis(10)
        );
        assert_eq!(times(huge, 3), Duration::MAX);
        assert_eq!(times(Duration::from_secs(2), 3), Duration::from_secs(6));
    }
}
