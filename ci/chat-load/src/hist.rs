//! A latency histogram in fixed log-linear buckets: exact below 128 µs, then 64 buckets per power
//! of two, so every value lies within 1/64 (1.6 %) of its bucket's bounds. Counting is one
//! relaxed atomic add (a run records ~60 million samples); see counters.rs for why each worker
//! thread has its own.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any u64 (the largest index is 57 * 64 + 127).
const BUCKETS: usize = 60 * SUB as usize;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, value: u64) {
        self.counts[index(value)].fetch_add(1, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }
}

/// The counts of several histograms added up, to read percentiles from.
pub struct Snapshot {
    counts: Vec<u64>,
    pub max: u64,
    pub total: u64,
}

impl Snapshot {
    pub fn of<'a>(hists: impl Iterator<Item = &'a Histogram>) -> Self {
        let mut counts = vec![0u64; BUCKETS];
        let mut max = 0;
        for h in hists {
            for (sum, c) in counts.iter_mut().zip(h.counts.iter()) {
                *sum += c.load(Relaxed);
            }
            max = max.max(h.max.load(Relaxed));
        }
        let total = counts.iter().sum();
        Snapshot { counts, max, total }
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding that rank, never above
    /// the largest value recorded. None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(middle(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        let sum: f64 = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| c as f64 * middle(i) as f64)
            .sum();
        (self.total > 0).then(|| sum / self.total as f64)
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (u64::from(shift) * SUB + (v >> shift)) as usize
}

/// The smallest and the largest value of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, i);
    }
    let shift = i / SUB - 1;
    let low = (i - shift * SUB) << shift;
    (low, low + ((1 << shift) - 1))
}

fn middle(i: usize) -> u64 {
    let (low, high) = bounds(i);
    low + (high - low) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        for v in [
            0,
            1,
            127,
            128,
            129,
            255,
            256,
            1000,
            123_456,
            9_999_999,
            u64::MAX >> 1,
        ] {
            let i = index(v);
            let (low, high) = bounds(i);
            assert!(low <= v && v <= high, "{v} in bucket {i}");
            assert!((high - low) as f64 <= v as f64 / 64.0, "{v}");
            assert_eq!(bounds(i + 1).0, high + 1, "{v}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1 - 64);
        assert_eq!(bounds(index(u64::MAX)).1, u64::MAX);
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let s = Snapshot::of([&h].into_iter());
        assert_eq!(s.total, 1000);
        assert!((s.quantile(0.5).unwrap() as i64 - 500).abs() <= 8);
        assert!((s.quantile(0.99).unwrap() as i64 - 990).abs() <= 16);
        assert_eq!(s.quantile(1.0), Some(1000));
    }
}
