//! The per-connection message rate limit: a token bucket (a burst, then a steady rate), and the
//! rule that ends a connection which keeps flooding after being told to slow down.

use std::time::{Duration, Instant};

/// Refused messages within [`FLOOD_WINDOW`] after which the connection is closed.
pub const FLOOD_REFUSALS: u32 = 20;
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the rate: refuse it (tell the sender).
    Refuse,
    /// Refused too often: close the connection.
    Disconnect,
}

#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
    refusals: u32,
    refusals_since: Instant,
}

impl RateLimit {
    /// `burst` messages at once, then `per_second` on average.
    pub fn new(burst: u32, per_second: f64, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimit {
            burst,
            per_second: per_second.max(0.0),
            tokens: burst,
            last: now,
            refusals: 0,
            refusals_since: now,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.refusals_since) > FLOOD_WINDOW {
            self.refusals = 0;
            self.refusals_since = now;
        }
        self.refusals += 1;
        if self.refusals >= FLOOD_REFUSALS {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_steady_rate() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(3, 2.0, t0);
        let verdicts: Vec<Verdict> = (0..4).map(|_| limit.check(t0)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Refuse
            ]
        );
        // Half a second later one more token (2 per second).
        assert_eq!(limit.check(t0 + Duration::from_millis(500)), Verdict::Allow);
        assert_eq!(
            limit.check(t0 + Duration::from_millis(500)),
            Verdict::Refuse
        );
        // A long pause refills the burst, never more.
        let later = t0 + Duration::from_secs(60);
        let allowed = (0..10)
            .filter(|_| limit.check(later) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn sustained_flooding_disconnects() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(1, 1.0, t0);
        assert_eq!(limit.check(t0), Verdict::Allow);
        let mut verdicts = Vec::new();
        for i in 0..FLOOD_REFUSALS {
            verdicts.push(limit.check(t0 + Duration::from_millis(u64::from(i))));
        }
        assert!(verdicts[..verdicts.len() - 1]
            .iter()
            .all(|v| *v == Verdict::Refuse));
        assert_eq!(verdicts.last(), Some(&Verdict::Disconnect));
        // Refusals spread out over more than the window do not add up.
        let mut limit = RateLimit::new(1, 0.0, t0);
        limit.check(t0);
        for i in 0..100u64 {
            let v = limit.check(t0 + Duration::from_secs(i));
            assert_ne!(v, Verdict::Disconnect, "at {i} s");
        }
    }
}
