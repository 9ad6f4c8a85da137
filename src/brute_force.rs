//! Guessing secrets from one address is slowed down, then stopped for a while: the admin
//! password (console and Basic-auth API) and the stream key each have one [`BruteForceGuard`].
//!
//! Per address (an IPv4 address, or an IPv6 /64, which one subscriber usually holds whole):
//! the first [`Policy::free_failures`] wrong guesses cost nothing; after that each attempt must
//! wait a delay that doubles with every further failure ([`Policy::first_delay`] up to
//! [`Policy::max_delay`]), and an attempt that comes sooner is refused without being checked.
//! After [`Policy::lockout_failures`] failures the address is locked out for
//! [`Policy::lockout`]: everything it tries is refused, even the right secret. A record is
//! forgotten when it has been quiet for as long as a lockout lasts, or when the right secret is
//! given. The owner lifts a lock-out by restarting selfcast (the records live in memory only).
//!
//! A wrong guess the address already made ([`BruteForceGuard::failed_guess`]) is not counted
//! again: it teaches the guesser nothing, and it is what a forgotten script polling with an old
//! password, or an encoder reconnecting with a mistyped key, sends over and over; counting it would
//! lock the owner out of their own address.
//!
//! Limits are per address, so a stranger can never lock the owner out from somewhere else, and
//! the table is bounded ([`Policy::max_addresses`]): when it is full the quietest record goes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::log_limit::{LogLimiter, LOG_EVERY};

/// Wrong guesses remembered per address (as keyed 64-bit fingerprints, never the guesses).
const REMEMBERED_GUESSES: usize = 8;

/// How many wrong guesses are tolerated, and what they cost.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures that cost nothing (typos).
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; doubles with each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Failures after which the address is locked out.
    pub lockout_failures: u32,
    pub lockout: Duration,
    /// Records kept at most (each is a few dozen bytes).
    pub max_addresses: usize,
}

impl Default for Policy {
    /// 5 free guesses, then 1 s, 2 s, 4 s ... 30 s between guesses, and locked out for 15 min
    /// after 20: about 20 guesses in 20 minutes at the very most.
    fn default() -> Self {
        Policy {
            free_failures: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            lockout_failures: 20,
            lockout: Duration::from_secs(15 * 60),
            max_addresses: 10_000,
        }
    }
}

/// Why an attempt is refused before its secret is even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When the address may try again.
    pub retry_after: Duration,
    /// Locked out (as opposed to only slowed down).
    pub locked_out: bool,
}

impl Refused {
    /// [`Refused::retry_after`] in whole seconds, rounded up (at least 1), for messages.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        if self.retry_after.subsec_nanos() > 0 || secs == 0 {
            secs + 1
        } else {
            secs
        }
    }
}

/// The failures of one address.
#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: Instant,
    /// No attempt is checked before this.
    next_attempt: Instant,
    /// Fingerprints of the last wrong guesses, the newest at `failures % REMEMBERED_GUESSES`.
    guesses: [Option<u64>; REMEMBERED_GUESSES],
}

/// Counts wrong guesses per address; see the module docs.
#[derive(Debug)]
pub struct BruteForceGuard {
    /// What is being guessed, for the log: "admin password", "stream key".
    secret: &'static str,
    policy: Policy,
    records: Mutex<Records>,
    /// Keys the guess fingerprints: random per process, so they cannot be looked up elsewhere.
    fingerprints: RandomState,
}

#[derive(Debug)]
struct Records {
    by_address: HashMap<IpAddr, Record>,
    /// The lock-out line, which any address can trigger, is logged at most every few seconds.
    lockout_log: LogLimiter<()>,
}

impl BruteForceGuard {
    pub fn new(secret: &'static str, policy: Policy) -> Self {
        BruteForceGuard {
            secret,
            policy,
            records: Mutex::new(Records {
                by_address: HashMap::new(),
                lockout_log: LogLimiter::new(LOG_EVERY),
            }),
            fingerprints: RandomState::new(),
        }
    }

    /// Before checking a secret from `peer`: `Err` when it must not be checked now.
    pub fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Refused> {
        let records = &mut self.lock().by_address;
        let Some(record) = records.get(&address_key(peer)).copied() else {
            return Ok(());
        };
        if self.is_stale(&record, now) {
            records.remove(&address_key(peer));
            return Ok(());
        }
        if now < record.next_attempt {
            return Err(Refused {
                retry_after: record.next_attempt - now,
                locked_out: record.failures >= self.policy.lockout_failures,
            });
        }
        Ok(())
    }

    /// `peer` gave a wrong secret. Returns what its next attempt gets, if anything.
    pub fn failed(&self, peer: IpAddr, now: Instant) -> Option<Refused> {
        self.count_failure(peer, None, now)
    }

    /// `peer` gave the wrong secret `guess` (for the admin password: the user name and the
    /// password). Counted like [`Self::failed`], unless this address made the same wrong guess
    /// before: then it costs nothing. Returns what its next attempt gets, if anything.
    pub fn failed_guess(&self, peer: IpAddr, guess: impl Hash, now: Instant) -> Option<Refused> {
        self.count_failure(peer, Some(self.fingerprints.hash_one(guess)), now)
    }

    fn count_failure(&self, peer: IpAddr, guess: Option<u64>, now: Instant) -> Option<Refused> {
        let key = address_key(peer);
        let mut records = self.lock();
        let Records {
            by_address,
            lockout_log,
        } = &mut *records;
        if !by_address.contains_key(&key) && by_address.len() >= self.policy.max_addresses {
            self.make_room(by_address, now);
        }
        let record = by_address.entry(key).or_insert(Record {
            failures: 0,
            last_failure: now,
            next_attempt: now,
            guesses: [None; REMEMBERED_GUESSES],
        });
        if self.is_stale(record, now) {
            record.failures = 0;
            record.guesses = [None; REMEMBERED_GUESSES];
        }
        if guess.is_some() && record.guesses.contains(&guess) {
            return None;
        }
        record.guesses[record.failures as usize % REMEMBERED_GUESSES] = guess;
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        let failures = record.failures;
        let wait = self.wait_after(failures)?;
        record.next_attempt = now + wait;
        let locked_out = failures >= self.policy.lockout_failures;
        if locked_out && failures == self.policy.lockout_failures {
            if let Some(suppressed) = lockout_log.allow((), now) {
                warn!(
                    %peer,
                    failures,
                    minutes = wait.as_secs() / 60,
                    lockouts_not_logged = suppressed,
                    "too many wrong {}s from this address: locked out; restart selfcast to lift \
                     it sooner",
                    self.secret
                );
            }
        }
        Some(Refused {
            retry_after: wait,
            locked_out,
        })
    }

    /// `peer` gave the right secret: its failures are forgiven.
    pub fn succeeded(&self, peer: IpAddr) {
        self.lock().by_address.remove(&address_key(peer));
    }

    /// What failure number `failures` costs: nothing, a delay, or the lock-out.
    fn wait_after(&self, failures: u32) -> Option<Duration> {
        let policy = &self.policy;
        if failures >= policy.lockout_failures {
            return Some(policy.lockout);
        }
        let beyond_free = failures.checked_sub(policy.free_failures)?.checked_sub(1)?;
        let doubled = policy
            .first_delay
            .saturating_mul(1u32.checked_shl(beyond_free).unwrap_or(u32::MAX));
        Some(doubled.min(policy.max_delay))
    }

    /// Quiet for as long as a lock-out lasts, and not waiting out a delay.
    fn is_stale(&self, record: &Record, now: Instant) -> bool {
        now >= record.next_attempt
            && now.saturating_duration_since(record.last_failure) >= self.policy.lockout
    }

    /// The table is full: drop what is stale, and if nothing is, the longest-quiet record.
    fn make_room(&self, records: &mut HashMap<IpAddr, Record>, now: Instant) {
        records.retain(|_, record| !self.is_stale(record, now));
        if records.len() >= self.policy.max_addresses {
            if let Some(quietest) = records
                .iter()
                .min_by_key(|(_, record)| record.last_failure)
                .map(|(key, _)| *key)
            {
                records.remove(&quietest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The unit an attacker holds: an IPv4 address (IPv4-mapped IPv6 included), or an IPv6 /64.
/// Every per-address limit (guessing, connection caps, log lines) counts by this.
pub fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            free_failures: 2,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            lockout_failures: 6,
            lockout: Duration::from_secs(60),
            max_addresses: 3,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn free_failures_then_doubling_delays_then_lockout() {
        let guard = BruteForceGuard::new("test secret", policy());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let peer = ip("192.0.2.1");
        assert_eq!(guard.failed(peer, at(0)), None);
        assert_eq!(guard.check(peer, at(0)), Ok(()));
        assert_eq!(guard.failed(peer, at(0)), None);
        let third = guard.failed(peer, at(0)).unwrap();
        assert_eq!(third.retry_after, Duration::from_secs(1));
        assert!(!third.locked_out);
        assert_eq!(
            guard.check(peer, at(999)),
            Err(Refused {
                retry_after: Duration::from_millis(1),
                locked_out: false
            })
        );
        assert_eq!(guard.check(peer, at(1_000)), Ok(()));
        assert_eq!(
            guard.failed(peer, at(1_000)).unwrap().retry_after,
            Duration::from_secs(2)
        );
        assert_eq!(
            guard.failed(peer, at(3_000)).unwrap().retry_after,
            Duration::from_secs(4)
        );
        let locked = guard.failed(peer, at(7_000)).unwrap();
        assert_eq!(
            locked,
            Refused {
                retry_after: Duration::from_secs(60),
                locked_out: true
            }
        );
        assert!(guard.check(peer, at(66_999)).unwrap_err().locked_out);
        assert_eq!(guard.check(peer, at(67_000)), Ok(()), "the lock-out ends");
    }

    #[test]
    fn the_same_wrong_guess_again_costs_nothing() {
        let guard = BruteForceGuard::new("test secret", policy());
        let now = Instant::now();
        let peer = ip("192.0.2.1");
        for _ in 0..50 {
            assert_eq!(
                guard.failed_guess(peer, ("admin", "old password"), now),
                None
            );
        }
        assert_eq!(
            guard.check(peer, now),
            Ok(()),
            "a script polling with an old password"
        );
        assert_eq!(
            guard.failed_guess(peer, ("admin", "typo"), now),
            None,
            "the second failure"
        );
        assert!(
            guard
                .failed_guess(peer, ("admin", "guess 3"), now)
                .is_some(),
            "a new guess counts"
        );
        assert!(guard.check(peer, now).is_err());
        assert_eq!(
            guard.failed_guess(ip("192.0.2.2"), ("admin", "old password"), now),
            None,
            "per address"
        );
        let later = now + Duration::from_secs(61);
        guard.failed_guess(peer, ("admin", "guess 3"), later);
        assert_eq!(
            guard.failed_guess(peer, ("admin", "guess 4"), later),
            None,
            "a quiet record starts again, its guesses forgotten"
        );
        assert!(guard
            .failed_guess(peer, ("admin", "old password"), later)
            .is_some());
    }

    #[test]
    fn retry_after_is_rounded_up_to_seconds() {
        let refused = |ms| Refused {
            retry_after: Duration::from_millis(ms),
            locked_out: false,
        };
        assert_eq!(refused(0).retry_after_secs(), 1);
        assert_eq!(refused(1).retry_after_secs(), 1);
        assert_eq!(refused(1_000).retry_after_secs(), 1);
        assert_eq!(refused(1_001).retry_after_secs(), 2);
    }

    #[test]
    fn the_delay_is_capped() {
        let guard = BruteForceGuard::new(
            "test secret",
            Policy {
                lockout_failures: 100,
                ..policy()
            },
        );
        let now = Instant::now();
        let peer = ip("192.0.2.1");
        let mut last = None;
        for _ in 0..50 {
            last = guard.failed(peer, now);
        }
        assert_eq!(last.unwrap().retry_after, Duration::from_secs(4));
    }

    #[test]
    fn addresses_are_independent_and_the_right_secret_forgives() {
        let guard = BruteForceGuard::new("test secret", policy());
        let now = Instant::now();
        for _ in 0..6 {
            guard.failed(ip("192.0.2.1"), now);
        }
        assert!(guard.check(ip("192.0.2.1"), now).is_err());
        assert_eq!(
            guard.check(ip("192.0.2.2"), now),
            Ok(()),
            "the owner elsewhere"
        );
        guard.failed(ip("192.0.2.2"), now);
        guard.succeeded(ip("192.0.2.2"));
        assert_eq!(
            guard.failed(ip("192.0.2.2"), now),
            None,
            "counting starts again"
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address_and_mapped_ipv4_is_ipv4() {
        let guard = BruteForceGuard::new("test secret", policy());
        let now = Instant::now();
        for host in 1..=6 {
            guard.failed(ip(&format!("2001:db8:1:2::{host}")), now);
        }
        assert!(
            guard
                .check(ip("2001:db8:1:2:ffff::1"), now)
                .unwrap_err()
                .locked_out
        );
        assert_eq!(guard.check(ip("2001:db8:1:3::1"), now), Ok(()));
        for _ in 0..6 {
            guard.failed(ip("::ffff:192.0.2.9"), now);
        }
        assert!(guard.check(ip("192.0.2.9"), now).is_err());
    }

    #[test]
    fn a_quiet_record_is_forgotten() {
        let guard = BruteForceGuard::new("test secret", policy());
        let t0 = Instant::now();
        let peer = ip("192.0.2.1");
        for _ in 0..5 {
            guard.failed(peer, t0);
        }
        let later = t0 + Duration::from_secs(61);
        assert_eq!(guard.check(peer, later), Ok(()));
        assert_eq!(guard.failed(peer, later), None, "counted from zero again");
    }

    #[test]
    fn the_table_is_bounded_and_keeps_the_busiest() {
        let guard = BruteForceGuard::new("test secret", policy());
        let t0 = Instant::now();
        for _ in 0..6 {
            guard.failed(ip("192.0.2.1"), t0 + Duration::from_secs(5));
        }
        for (i, host) in ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"]
            .iter()
            .enumerate()
        {
            guard.failed(ip(host), t0 + Duration::from_secs(i as u64));
        }
        assert_eq!(guard.lock().by_address.len(), 3);
        assert!(
            guard
                .check(ip("192.0.2.1"), t0 + Duration::from_secs(6))
                .is_err(),
            "the recent attacker is still locked out"
        );
    }
}
