//! The chat's rate limits: per connection, token buckets (a burst, then a steady rate) for what
//! its client sends, and the rule that ends a connection which keeps flooding after being told to
//! slow down; per user or address, a count per minute (name changes, registrations).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Refused messages within [`FLOOD_WINDOW`] after which the connection is closed.
pub const FLOOD_REFUSALS: u32 = 20;
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// Keep-alive events (`PING`, `PONG`) a connection may send at once, then per second. They have
/// a bucket of their own, so that a client's keep-alives never take from what it may say; a
/// keep-alive every few seconds is far below it.
pub const KEEPALIVE_BURST: u32 = 10;
pub const KEEPALIVE_PER_SECOND: f64 = 1.0;

/// Name changes a user may make in a minute (all their connections together).
pub const NAME_CHANGES_PER_MINUTE: u32 = 5;

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

/// What a client frame counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A message, a name change, or a frame that is no event (it is answered).
    Message,
    /// A `PING` or `PONG` event.
    KeepAlive,
}

/// One connection's buckets: messages at the configured rate, keep-alives at their own.
#[derive(Debug)]
pub struct ConnectionLimits {
    messages: RateLimit,
    keepalives: RateLimit,
}

impl ConnectionLimits {
    pub fn new(message_burst: u32, messages_per_second: f64, now: Instant) -> Self {
        ConnectionLimits {
            messages: RateLimit::new(message_burst, messages_per_second, now),
            keepalives: RateLimit::new(KEEPALIVE_BURST, KEEPALIVE_PER_SECOND, now),
        }
    }

    pub fn check(&mut self, counted: Counted, now: Instant) -> Verdict {
        match counted {
            Counted::Message => self.messages.check(now),
            Counted::KeepAlive => self.keepalives.check(now),
        }
    }
}

/// At most `cap` events per key in a window of time that starts with the key's first event (0:
/// no cap). Keys whose window is over are forgotten once a window, not on every event, so the
/// map holds about the keys seen in the last window.
#[derive(Debug)]
pub struct PerMinute<K> {
    cap: u32,
    counts: HashMap<K, (Instant, u32)>,
    pruned: Instant,
}

/// The window of [`PerMinute`].
pub const MINUTE: Duration = Duration::from_secs(60);

impl<K: Hash + Eq> PerMinute<K> {
    pub fn new(cap: u32, now: Instant) -> Self {
        PerMinute {
            cap,
            counts: HashMap::new(),
            pruned: now,
        }
    }

    /// Counts one event of `key`; `false` (and not counted) when `key` is at the cap.
    pub fn try_count(&mut self, key: K, now: Instant) -> bool {
        if self.cap == 0 {
            return true;
        }
        if now.saturating_duration_since(self.pruned) >= MINUTE {
            self.counts
                .retain(|_, (since, _)| now.saturating_duration_since(*since) < MINUTE);
            self.pruned = now;
        }
        let (since, count) = self.counts.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(*since) >= MINUTE {
            (*since, *count) = (now, 0);
        }
        if *count >= self.cap {
            return false;
        }
        *count += 1;
        true
    }

    /// When `key` may count again (now if it is under the cap).
    pub fn next_allowed(&self, key: &K, now: Instant) -> Duration {
        match self.counts.get(key) {
            Some((since, count)) if *count >= self.cap && self.cap > 0 => {
                MINUTE.saturating_sub(now.saturating_duration_since(*since))
            }
            _ => Duration::ZERO,
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

    #[test]
    fn keepalives_have_a_bucket_of_their_own() {
        let t0 = Instant::now();
        let mut limits = ConnectionLimits::new(1, 0.0, t0);
        for _ in 0..KEEPALIVE_BURST {
            assert_eq!(limits.check(Counted::KeepAlive, t0), Verdict::Allow);
        }
        assert_eq!(limits.check(Counted::KeepAlive, t0), Verdict::Refuse);
        assert_eq!(
            limits.check(Counted::Message, t0),
            Verdict::Allow,
            "keep-alives took nothing from the messages"
        );
        assert_eq!(limits.check(Counted::Message, t0), Verdict::Refuse);
        // A keep-alive flood ends like any other.
        let verdicts: Vec<Verdict> = (0..FLOOD_REFUSALS)
            .map(|_| limits.check(Counted::KeepAlive, t0))
            .collect();
        assert_eq!(verdicts.last(), Some(&Verdict::Disconnect));
    }

    #[test]
    fn a_cap_per_key_and_minute() {
        let t0 = Instant::now();
        let mut renames = PerMinute::new(2, t0);
        assert!(renames.try_count("ana", t0));
        assert!(renames.try_count("ana", t0 + Duration::from_secs(10)));
        assert!(!renames.try_count("ana", t0 + Duration::from_secs(20)));
        assert_eq!(
            renames.next_allowed(&"ana", t0 + Duration::from_secs(20)),
            Duration::from_secs(40)
        );
        assert!(
            renames.try_count("bob", t0 + Duration::from_secs(20)),
            "per key"
        );
        assert_eq!(renames.next_allowed(&"bob", t0), Duration::ZERO);
        // The window started at Ana's first: a minute after it she may again.
        assert!(renames.try_count("ana", t0 + MINUTE));
        // Finished windows are forgotten.
        renames.try_count("cy", t0 + MINUTE * 3);
        assert_eq!(renames.counts.len(), 1);
        // 0: no cap.
        let mut open = PerMinute::new(0, t0);
        assert!((0..1000).all(|_| open.try_count(1, t0)));
    }
}
