//! `GET /api/admin/health`: what the console's stream health shows beyond `/api/status`: this
//! process's CPU and memory, and the viewers over the broadcast (the live one, else the last),
//! sampled every [`SAMPLE_EVERY`] by [`sample_until`].
//!
//! The viewer history is bounded however long a broadcast runs: at [`MAX_SAMPLES`] every other
//! sample is dropped and samples are taken half as often from then on.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use warp::Filter;

use super::ok;
use crate::chat::events::rfc3339;
use crate::process_usage::{self, Usage};
use crate::web::status::viewer_count;
use crate::web::Routes;
use crate::web::WebState;

pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// An hour at [`SAMPLE_EVERY`] before the history thins out.
const MAX_SAMPLES: usize = 720;

/// The latest readings, shared by the sampler and the endpoint.
pub struct Health {
    /// The cores the CPU share is of (read once: the machine does not change under us).
    cores: usize,
    inner: Mutex<Readings>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            inner: Mutex::default(),
        }
    }
}

#[derive(Default)]
struct Readings {
    usage: Option<(Instant, Usage)>,
    cpu_percent: Option<f64>,
    /// The broadcast the history is of (its publish time).
    broadcast: Option<SystemTime>,
    viewers: ViewerHistory,
}

/// Viewers over one broadcast.
#[derive(Debug, Default)]
struct ViewerHistory {
    samples: Vec<(SystemTime, usize)>,
    peak: usize,
    /// Keep one sample in `stride`; `skipped` since the last one kept.
    stride: usize,
    skipped: usize,
}

impl ViewerHistory {
    fn record(&mut self, time: SystemTime, viewers: usize) {
        self.peak = self.peak.max(viewers);
        self.stride = self.stride.max(1);
        if self.skipped + 1 < self.stride && !self.samples.is_empty() {
            self.skipped += 1;
            return;
        }
        self.skipped = 0;
        self.samples.push((time, viewers));
        if self.samples.len() > MAX_SAMPLES {
            let mut index = 0;
            self.samples.retain(|_| {
                index += 1;
                index % 2 == 1
            });
            self.stride *= 2;
        }
    }
}

impl Health {
    /// One sample: the CPU since the last one, and, while `live_since` is a broadcast, its
    /// viewers now (a new broadcast starts a new history).
    fn sample(&self, now: (Instant, SystemTime), live_since: Option<SystemTime>, viewers: usize) {
        let usage = process_usage::read();
        let mut readings = self.lock();
        if let (Some((then, before)), Some(after)) = (readings.usage, usage) {
            readings.cpu_percent = Some(process_usage::cpu_percent(
                before,
                after,
                now.0.duration_since(then),
                self.cores,
            ));
        }
        readings.usage = usage.map(|usage| (now.0, usage));
        if let Some(since) = live_since {
            if readings.broadcast != Some(since) {
                readings.broadcast = Some(since);
                readings.viewers = ViewerHistory::default();
            }
            readings.viewers.record(now.1, viewers);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Readings> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Samples every [`SAMPLE_EVERY`] until `stop` resolves.
pub async fn sample_until(state: Arc<WebState>, stop: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {
                let live_since = state.pipeline.live_publisher().map(|p| p.since);
                let viewers = viewer_count(&state);
                state
                    .health
                    .sample((Instant::now(), SystemTime::now()), live_since, viewers);
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthJson {
    /// Of every core together, over the last [`SAMPLE_EVERY`]; `null` before two readings.
    cpu_percent: Option<f64>,
    cores: usize,
    memory_bytes: Option<u64>,
    viewers: ViewersJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ViewersJson {
    now: usize,
    peak: usize,
    broadcast_start: Option<String>,
    sample_seconds: u64,
    samples: Vec<SampleJson>,
}

#[derive(Serialize)]
struct SampleJson {
    time: String,
    viewers: usize,
}

pub fn routes(state: Arc<WebState>) -> Routes {
    warp::path!("health")
        .and(warp::get())
        .map(move || {
            let now = viewer_count(&state);
            let readings = state.health.lock();
            let history = &readings.viewers;
            ok(HealthJson {
                cpu_percent: readings.cpu_percent,
                cores: state.health.cores,
                memory_bytes: readings.usage.map(|(_, usage)| usage.memory_bytes),
                viewers: ViewersJson {
                    now,
                    peak: history.peak,
                    broadcast_start: readings.broadcast.map(rfc3339),
                    sample_seconds: SAMPLE_EVERY.as_secs() * history.stride.max(1) as u64,
                    samples: history
                        .samples
                        .iter()
                        .map(|&(time, viewers)| SampleJson {
                            time: rfc3339(time),
                            viewers,
                        })
                        .collect(),
                },
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_thins_out_instead_of_growing() {
        let mut history = ViewerHistory::default();
        let start = SystemTime::UNIX_EPOCH;
        for i in 0..(MAX_SAMPLES * 4) {
            history.record(start + Duration::from_secs(i as u64 * 5), i % 7);
        }
        assert!(
            history.samples.len() <= MAX_SAMPLES,
            "{}",
            history.samples.len()
        );
        assert!(history.samples.len() >= MAX_SAMPLES / 2);
        assert_eq!(history.peak, 6);
        assert_eq!(history.samples[0].0, start, "the start is kept");
        let times: Vec<_> = history.samples.iter().map(|s| s.0).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "in order");
    }

    #[test]
    fn a_new_broadcast_starts_a_new_history_and_offline_keeps_the_last() {
        let health = Health::default();
        let first = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s| (Instant::now(), first + Duration::from_secs(s));
        health.sample(at(0), Some(first), 3);
        health.sample(at(5), Some(first), 9);
        health.sample(at(10), None, 0);
        assert_eq!(health.lock().viewers.samples.len(), 2);
        assert_eq!(health.lock().viewers.peak, 9);
        let second = first + Duration::from_secs(60);
        health.sample(at(60), Some(second), 1);
        let readings = health.lock();
        assert_eq!(readings.broadcast, Some(second));
        assert_eq!(
            readings.viewers.samples,
            [(first + Duration::from_secs(60), 1)]
        );
        assert_eq!(readings.viewers.peak, 1);
    }
}
