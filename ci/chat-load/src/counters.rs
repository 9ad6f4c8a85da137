//! What every client counts for every event it receives: ~1,000,000 events/s at the real load.
//! One shared counter would bounce its cache line between the two cores on every event, so each
//! worker thread counts into its own set (registered once, added up when read).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::hist::{Histogram, Snapshot};

#[derive(Default)]
pub struct Counters {
    /// Delivery latency of the benchmark's CHAT messages, µs.
    pub latency_us: Histogram,
    pub joins: AtomicU64,
    pub parts: AtomicU64,
    /// Every other event (CHAT without the benchmark's marker, welcome, errors, ...).
    pub other: AtomicU64,
}

static ALL: Mutex<Vec<Arc<Counters>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Arc<Counters> = {
        let mine = Arc::new(Counters::default());
        ALL.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&mine));
        mine
    };
}

/// This thread's counters.
pub fn with<R>(f: impl FnOnce(&Counters) -> R) -> R {
    MINE.with(|c| f(c))
}

/// Every thread's counters added up.
pub struct Totals {
    pub latency: Snapshot,
    pub joins: u64,
    pub parts: u64,
    pub other: u64,
}

impl Totals {
    pub fn now() -> Self {
        let all = ALL.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let sum = |f: fn(&Counters) -> &AtomicU64| all.iter().map(|c| f(c).load(Relaxed)).sum();
        Totals {
            latency: Snapshot::of(all.iter().map(|c| &c.latency_us)),
            joins: sum(|c| &c.joins),
            parts: sum(|c| &c.parts),
            other: sum(|c| &c.other),
        }
    }

    /// Events received so far (a text frame may carry several, one per line).
    pub fn events(&self) -> u64 {
        self.latency.total + self.joins + self.parts + self.other
    }
}
