//! How the sink is doing, for `/api/status` and for choosing where viewers fetch video: the
//! sink's public master playlist while it works, selfcast's own `/hls/` while it does not.
//!
//! The sink is failing from a failed put (or a failed check at start-up) until the next
//! success; meanwhile selfcast keeps serving the stream itself.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::log_limit::{LogLimiter, LOG_EVERY};

/// Latencies kept for the percentiles.
const SAMPLES: usize = 200;

/// What `/api/status` shows as `storage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    /// `directory`, `s3` or `ipfs`.
    pub kind: &'static str,
    /// Where it goes, in words (no secrets).
    pub target: String,
    /// `starting` (nothing put yet), `ok` or `failing`.
    pub state: &'static str,
    /// Where viewers fetch the master playlist from the sink (when it has one).
    pub public_url: Option<String>,
    /// Whether players are sent to `public_url` now.
    pub serving_viewers: bool,
    /// Files waiting to be stored.
    pub backlog: usize,
    pub stored: u64,
    pub deleted: u64,
    /// Failed attempts (each is retried).
    pub failures: u64,
    pub last_error: Option<String>,
    /// Seconds since the sink started failing.
    pub failing_for_seconds: Option<u64>,
    /// How long storing one segment or init segment takes, milliseconds (playlists are left
    /// out: an IPFS sink keeps them in memory).
    pub put_ms: Percentiles,
    /// From a segment finished to the sink's playlist listing it, milliseconds.
    pub segment_listed_ms: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub last: Option<u64>,
}

pub struct SinkHealth {
    kind: &'static str,
    target: String,
    public_url: Option<String>,
    state: Mutex<State>,
}

struct State {
    started: bool,
    /// Failures are logged once per LOG_EVERY.
    log_limit: LogLimiter<()>,
    failing_since: Option<Instant>,
    last_error: Option<String>,
    stored: u64,
    deleted: u64,
    failures: u64,
    backlog: usize,
    master_stored: bool,
    settled: bool,
    put_ms: VecDeque<u64>,
    listed_ms: VecDeque<u64>,
}

/// What a put's success changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The sink was failing and works again: what it held may be gone.
    Recovered,
    AsBefore,
}

impl SinkHealth {
    /// `public_url`: the master playlist's URL at the sink, if viewers can be sent there.
    pub fn new(kind: &'static str, target: String, public_url: Option<String>) -> Self {
        SinkHealth {
            kind,
            target,
            public_url,
            state: Mutex::new(State {
                started: false,
                log_limit: LogLimiter::new(LOG_EVERY),
                failing_since: None,
                last_error: None,
                stored: 0,
                deleted: 0,
                failures: 0,
                backlog: 0,
                master_stored: false,
                settled: true,
                put_ms: VecDeque::new(),
                listed_ms: VecDeque::new(),
            }),
        }
    }

    /// A put succeeded; `took` is recorded for `putMs` when given.
    pub fn stored(&self, took: Option<Duration>) -> Recovery {
        let mut state = self.lock();
        state.started = true;
        state.stored += 1;
        if let Some(took) = took {
            push(&mut state.put_ms, took);
        }
        match state.failing_since.take() {
            Some(_) => {
                // What the sink had may be gone: no viewer goes there until the plan says
                // its master is back.
                state.master_stored = false;
                Recovery::Recovered
            }
            None => Recovery::AsBefore,
        }
    }

    pub fn deleted(&self) {
        self.lock().deleted += 1;
    }

    /// Records a failed attempt; `Some(n)` when it should be logged (`n` failures since the
    /// last line that were not).
    pub fn failed(&self, error: &str) -> Option<u64> {
        let mut state = self.lock();
        state.failures += 1;
        state.last_error = Some(error.to_owned());
        let now = Instant::now();
        state.failing_since.get_or_insert(now);
        state.log_limit.allow((), now)
    }

    pub fn listed(&self, latencies: &[Duration]) {
        let mut state = self.lock();
        for latency in latencies {
            push(&mut state.listed_ms, *latency);
        }
    }

    /// The plan's figures after each change.
    pub fn set_progress(&self, backlog: usize, master_stored: bool, settled: bool) {
        let mut state = self.lock();
        state.backlog = backlog;
        state.master_stored = master_stored;
        state.settled = settled;
    }

    /// Waits (at most `limit`) until nothing waits to be put; `false` if time ran out or the
    /// sink is failing (waiting would not help).
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            {
                let state = self.lock();
                if state.settled {
                    return true;
                }
                if state.failing_since.is_some() || Instant::now() >= deadline {
                    return false;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where players should fetch the master playlist: the sink's, while it works and has one.
    pub fn viewer_url(&self) -> Option<String> {
        let state = self.lock();
        let healthy = state.failing_since.is_none() && state.master_stored;
        self.public_url.clone().filter(|_| healthy)
    }

    pub fn status(&self) -> SinkStatus {
        let serving_viewers = self.viewer_url().is_some();
        let state = self.lock();
        SinkStatus {
            kind: self.kind,
            target: self.target.clone(),
            state: match (state.failing_since, state.started) {
                (Some(_), _) => "failing",
                (None, true) => "ok",
                (None, false) => "starting",
            },
            public_url: self.public_url.clone(),
            serving_viewers,
            backlog: state.backlog,
            stored: state.stored,
            deleted: state.deleted,
            failures: state.failures,
            last_error: state.last_error.clone(),
            failing_for_seconds: state.failing_since.map(|since| since.elapsed().as_secs()),
            put_ms: percentiles(&state.put_ms),
            segment_listed_ms: percentiles(&state.listed_ms),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn push(samples: &mut VecDeque<u64>, value: Duration) {
    if samples.len() == SAMPLES {
        samples.pop_front();
    }
    samples.push_back(u64::try_from(value.as_millis()).unwrap_or(u64::MAX));
}

fn percentiles(samples: &VecDeque<u64>) -> Percentiles {
    let mut sorted: Vec<u64> = samples.iter().copied().collect();
    sorted.sort_unstable();
    let at = |q: f64| {
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(index).copied()
    };
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
        last: samples.back().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_go_to_the_sink_only_while_it_works_and_has_a_master() {
        let health = SinkHealth::new(
            "s3",
            "s3://b".into(),
            Some("https://cdn/stream.m3u8".into()),
        );
        assert_eq!(health.status().state, "starting");
        health.set_progress(2, false, false);
        assert_eq!(health.viewer_url(), None, "no master in the sink yet");
        assert_eq!(
            health.stored(Some(Duration::from_millis(40))),
            Recovery::AsBefore
        );
        health.set_progress(0, true, true);
        assert_eq!(
            health.viewer_url().as_deref(),
            Some("https://cdn/stream.m3u8")
        );
        assert_eq!(health.failed("connection refused"), Some(0), "logged");
        assert_eq!(
            health.failed("connection refused"),
            None,
            "not again at once"
        );
        let status = health.status();
        assert_eq!((status.state, status.serving_viewers), ("failing", false));
        assert_eq!(status.last_error.as_deref(), Some("connection refused"));
        assert_eq!(health.viewer_url(), None);
        assert_eq!(
            health.stored(Some(Duration::from_millis(60))),
            Recovery::Recovered
        );
        assert_eq!(health.status().put_ms.p50, Some(60));
    }

    #[test]
    fn percentiles_of_few_samples() {
        let samples: VecDeque<u64> = (1..=100).collect();
        let p = percentiles(&samples);
        assert_eq!((p.p50, p.p99, p.last), (Some(51), Some(99), Some(100)));
        assert_eq!(percentiles(&VecDeque::new()).p50, None);
    }
}
