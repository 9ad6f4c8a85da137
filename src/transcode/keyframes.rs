//! Where the transcoded variants put their keyframes: at fixed intervals of `segment_seconds`
//! on the source's presentation timeline, counted from the session's first frame. The decoder
//! thread numbers each frame with its interval (its *epoch*); an encoder forces an IDR on the
//! first frame of each epoch it sees. So every variant starts a GOP at the same source frame,
//! and a variant that dropped that frame starts it at the next one.
//!
//! When the publisher's timestamps jump (backwards, or forward by more than 10 s), the muxers
//! re-anchor their timelines so that the next frame follows the last one; the clock shifts its
//! origin by the same amount, so the cadence (and alignment with the source's own keyframes)
//! carries on.

/// A timestamp step beyond this (or backwards) starts a new epoch at once.
const MAX_STEP_MS: i64 = 10_000;

pub struct KeyframeClock {
    interval_ms: i64,
    /// pts that epoch 0 starts at, on the publisher's (possibly re-anchored) clock.
    origin: Option<i64>,
    /// The last frame's pts and the interval to it from the one before.
    last: Option<(i64, i64)>,
}

impl KeyframeClock {
    pub fn new(segment_seconds: u32) -> Self {
        Self {
            interval_ms: i64::from(segment_seconds.max(1)) * 1000,
            origin: None,
            last: None,
        }
    }

    /// The epoch of a frame shown at `pts_ms` (frames arrive in presentation order).
    pub fn epoch(&mut self, pts_ms: i64) -> u64 {
        let origin = match (self.origin, self.last) {
            (Some(origin), Some((last_pts, step))) => {
                let delta = pts_ms - last_pts;
                if (1..=MAX_STEP_MS).contains(&delta) {
                    self.last = Some((pts_ms, delta));
                    origin
                } else {
                    // A jump: this frame is taken to follow the last one by one frame interval.
                    self.last = Some((pts_ms, step));
                    origin + delta - step
                }
            }
            _ => {
                self.last = Some((pts_ms, 33));
                pts_ms
            }
        };
        self.origin = Some(origin);
        // Timestamps are whole milliseconds: a frame 1 ms short of the boundary still opens
        // the new interval.
        ((pts_ms - origin + 1).max(0) / self.interval_ms) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_advance_every_interval_from_the_first_frame() {
        // 30 fps as RTMP rounds it: frame n at n × 1000 / 30 ms.
        let mut clock = KeyframeClock::new(2);
        let epochs: Vec<u64> = (0..130)
            .map(|frame| clock.epoch(5000 + frame * 1000 / 30))
            .collect();
        assert_eq!(epochs[0], 0);
        assert_eq!(epochs[59], 0);
        assert_eq!(epochs[60], 1, "frame 60 is at 2000 ms after the first");
        assert_eq!(epochs[119], 1);
        assert_eq!(epochs[120], 2);
    }

    #[test]
    fn the_cadence_carries_on_across_timestamp_jumps() {
        // 40 ms frames (25 fps), so that 2 s is exactly 50 frames.
        let mut clock = KeyframeClock::new(2);
        let media: Vec<u64> = (0..45).map(|frame| clock.epoch(frame * 40)).collect();
        assert!(media.iter().all(|&epoch| epoch == 0));
        // After 1.76 s the publisher's clock jumps 30 s ahead: that frame counts as 1.80 s.
        let jumped = 45 * 40 + 30_000;
        assert_eq!(clock.epoch(jumped), 0);
        assert_eq!(clock.epoch(jumped + 4 * 40), 0, "1.96 s of media");
        assert_eq!(
            clock.epoch(jumped + 5 * 40),
            1,
            "2.00 s of media: the cadence carried on"
        );
        // Then 10 s back: the next frame still counts as 2.04 s.
        let back = jumped + 5 * 40 - 10_000 + 40;
        assert_eq!(clock.epoch(back), 1);
        assert_eq!(clock.epoch(back + 48 * 40), 1, "3.96 s");
        assert_eq!(clock.epoch(back + 49 * 40), 2, "4.00 s");
    }
}
