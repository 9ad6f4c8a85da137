//! Output timestamps from the sample count: each AAC frame's time is worked out from how many
//! samples came before it, anchored on the input timestamps, so millisecond rounding and RTMP
//! jitter never reach the output; an input more than 100 ms away from the count (lost audio, a
//! pause, a timestamp reset) re-anchors the timeline on it, forwards or backwards.

use std::collections::VecDeque;

/// An input timestamp this far (ms) from the sample count re-anchors the timeline.
const REANCHOR_MS: i64 = 100;

/// Output timestamps from the sample count, anchored on input timestamps.
///
/// Samples are numbered in the order they enter the FIFO (which is also the pts the encoder
/// gets, in 1/rate units). An anchor says "sample `sample` is at `ms`"; a sample's time is that
/// of the latest anchor at or before it (or the first anchor, for the encoder's priming before
/// sample 0) plus the samples since, floored to the millisecond.
#[derive(Debug, Clone)]
pub(super) struct SampleClock {
    rate: i64,
    anchors: VecDeque<Anchor>,
    /// The number of the next sample to enter.
    position: i64,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    sample: i64,
    ms: i64,
}

impl Anchor {
    fn ms_of(&self, sample: i64, rate: i64) -> i64 {
        self.ms + ((sample - self.sample) * 1000).div_euclid(rate)
    }
}

impl SampleClock {
    pub(super) fn new(rate: u32) -> Self {
        SampleClock {
            rate: i64::from(rate.max(1)),
            anchors: VecDeque::new(),
            position: 0,
        }
    }

    /// An input frame stamped `pts_ms`, whose samples will be the next to enter: anchors the
    /// timeline on it if it is the first, or if it is more than 100 ms away from the time the
    /// sample count gives.
    pub(super) fn input(&mut self, pts_ms: i64) {
        let (rate, position) = (self.rate, self.position);
        let Some(last) = self.anchors.back_mut() else {
            self.anchors.push_back(Anchor {
                sample: position,
                ms: pts_ms,
            });
            return;
        };
        let expected = last.ms_of(position, rate);
        if (pts_ms.saturating_sub(expected)).abs() <= REANCHOR_MS {
            return;
        }
        if last.sample == position {
            // Nothing came out since the last anchor: it was not right, replace it.
            last.ms = pts_ms;
        } else {
            self.anchors.push_back(Anchor {
                sample: position,
                ms: pts_ms,
            });
        }
    }

    /// `samples` more entered.
    pub(super) fn advance(&mut self, samples: usize) {
        self.position += samples as i64;
    }

    /// The time of sample `sample`. Called with increasing samples: anchors older than the one
    /// `sample` falls under are dropped.
    pub(super) fn ms(&mut self, sample: i64) -> i64 {
        while self.anchors.len() > 1 && self.anchors[1].sample <= sample {
            self.anchors.pop_front();
        }
        match self.anchors.front() {
            Some(anchor) => anchor.ms_of(sample, self.rate),
            None => (sample * 1000).div_euclid(self.rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock's anchors as (sample, ms).
    fn anchors(clock: &SampleClock) -> Vec<(i64, i64)> {
        clock.anchors.iter().map(|a| (a.sample, a.ms)).collect()
    }

    #[test]
    fn clock_follows_the_sample_count_not_the_jitter() {
        // 44.1 kHz, 1152-sample MP3 frames (26.12 ms) stamped with ±3 ms of jitter.
        let mut clock = SampleClock::new(44100);
        for i in 0..100i64 {
            let stamp = 1000 + (i * 1152 * 1000) / 44100 + [0, 3, -3, 2][i as usize % 4];
            clock.input(stamp);
            assert_eq!(anchors(&clock), [(0, 1000)], "input {i} re-anchored");
            clock.advance(1152);
        }
        // AAC frames: 1024 samples; the priming one is a frame before the first input.
        let times: Vec<i64> = (-1..5).map(|k| clock.ms(k * 1024)).collect();
        assert_eq!(times, [976, 1000, 1023, 1046, 1069, 1092]);
        assert_eq!(clock.anchors.len(), 1);
    }

    #[test]
    fn clock_reanchors_on_jumps_of_more_than_100_ms() {
        let mut clock = SampleClock::new(48000);
        clock.input(0);
        clock.advance(4800); // 100 ms of samples
                             // 100 ms later as the samples say, + 100 ms of drift: tolerated.
        clock.input(200);
        assert_eq!(anchors(&clock), [(0, 0)]);
        clock.advance(4800);
        // A gap: the input says 700 ms, the samples 200 ms.
        clock.input(700);
        assert_eq!(anchors(&clock), [(0, 0), (9600, 700)]);
        clock.advance(4800);
        // A reset backwards.
        clock.input(50);
        assert_eq!(anchors(&clock), [(0, 0), (9600, 700), (14400, 50)]);
        clock.advance(4800);
        assert_eq!(clock.ms(0), 0);
        assert_eq!(clock.ms(4800), 100);
        assert_eq!(clock.ms(9599), 199); // the last sample before the gap
        assert_eq!(clock.ms(9600), 700);
        assert_eq!(clock.ms(14399), 799);
        assert_eq!(clock.ms(14400), 50); // passed on, like the source video's timestamps
        assert_eq!(clock.ms(19200), 150);
        assert_eq!(clock.anchors.len(), 1, "older anchors are dropped");
    }

    #[test]
    fn clock_anchors_on_the_first_input_even_when_it_produced_nothing() {
        // A parser or decoder that outputs one frame late: the anchor stays on the first
        // timestamp, the lag is under the 100 ms tolerance.
        let mut clock = SampleClock::new(44100);
        clock.input(5000);
        clock.input(5026);
        clock.advance(1152);
        clock.input(5052);
        assert_eq!(anchors(&clock), [(0, 5000)]);
        assert_eq!(clock.ms(0), 5000);
        // A first frame that was garbage far off in time is replaced by the next, as nothing
        // came out of it.
        let mut clock = SampleClock::new(44100);
        clock.input(999_999);
        clock.input(5000);
        assert_eq!(anchors(&clock), [(0, 5000)]);
    }
}
