//! Rate limiting for repetitive warnings: a publisher that sends thousands of bad tags gets one
//! line per kind every few seconds, with the number of lines left out.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The default spacing of two lines of the same kind.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Decides which occurrences of each kind of event get a log line.
#[derive(Debug)]
pub struct LogLimiter<K> {
    every: Duration,
    /// Per kind: when a line was last allowed, and occurrences suppressed since.
    kinds: HashMap<K, (Instant, u64)>,
}

impl<K: Eq + Hash> LogLimiter<K> {
    pub fn new(every: Duration) -> Self {
        LogLimiter {
            every,
            kinds: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when this occurrence should be logged (the first of its kind, or the
    /// first `every` after the last logged one), with the number of occurrences that were not
    /// logged in between; `None` when it should be suppressed.
    pub fn allow(&mut self, kind: K, now: Instant) -> Option<u64> {
        match self.kinds.get_mut(&kind) {
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
            Some((last, suppressed)) => {
                if now.saturating_duration_since(*last) >= self.every {
                    *last = now;
                    Some(std::mem::take(suppressed))
                } else {
                    *suppressed += 1;
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval_with_a_count() {
        let mut limiter = LogLimiter::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s);
        assert_eq!(limiter.allow("a", at(0)), Some(0));
        assert_eq!(limiter.allow("a", at(1)), None);
        assert_eq!(limiter.allow("b", at(2)), Some(0)); // kinds are independent
        assert_eq!(limiter.allow("a", at(4_999)), None);
        assert_eq!(limiter.allow("a", at(5_000)), Some(2));
        assert_eq!(limiter.allow("a", at(5_001)), None);
        assert_eq!(limiter.allow("a", at(20_000)), Some(1));
        assert_eq!(limiter.allow("a", at(30_000)), Some(0));
    }
}
