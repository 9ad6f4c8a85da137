//! Rate limiting for repetitive warnings: a publisher that sends thousands of bad tags gets one
//! line per kind every few seconds, with the number of lines left out.
//!
//! A kind may carry the peer's address (one line per address and reason), so the table is
//! bounded ([`MAX_KINDS`]): when it is full, kinds with nothing pending that could log again
//! anyway are forgotten first, then the one quiet the longest (its suppressed count is lost).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The default spacing of two lines of the same kind.
pub const LOG_EVERY: Duration = Duration::from_secs(5);
/// Kinds remembered at most (each is a few dozen bytes).
pub const MAX_KINDS: usize = 4096;

/// Decides which occurrences of each kind of event get a log line.
#[derive(Debug)]
pub struct LogLimiter<K> {
    every: Duration,
    /// Per kind: when a line was last allowed, and occurrences suppressed since.
    kinds: HashMap<K, (Instant, u64)>,
}

impl<K: Eq + Hash + Clone> LogLimiter<K> {
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
                if self.kinds.len() >= MAX_KINDS {
                    self.make_room(now);
                }
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

    /// Forget kinds that would be logged at once anyway with nothing suppressed; if none, the
    /// kind logged the longest ago.
    fn make_room(&mut self, now: Instant) {
        let every = self.every;
        self.kinds.retain(|_, (last, suppressed)| {
            *suppressed > 0 || now.saturating_duration_since(*last) < every
        });
        if self.kinds.len() >= MAX_KINDS {
            let oldest = self.kinds.iter().min_by_key(|(_, (last, _))| *last);
            if let Some(oldest) = oldest.map(|(kind, _)| kind.clone()) {
                self.kinds.remove(&oldest);
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

    #[test]
    fn the_table_is_bounded() {
        let mut limiter = LogLimiter::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(limiter.allow(u32::MAX, t0), Some(0));
        assert_eq!(limiter.allow(u32::MAX, t0), None); // one suppressed: kept while others go
        for kind in 0..2 * MAX_KINDS as u32 {
            limiter.allow(kind, t0 + Duration::from_secs(10));
        }
        assert!(limiter.kinds.len() <= MAX_KINDS);
        // Every kind logged within 5 s: the oldest goes, new kinds still get their line.
        assert_eq!(
            limiter.allow(u32::MAX - 1, t0 + Duration::from_secs(10)),
            Some(0)
        );
        assert!(limiter.kinds.len() <= MAX_KINDS);
    }
}
