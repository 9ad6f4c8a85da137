//! Where the transcoded variants put their keyframes: at fixed intervals of `segment_seconds`
//! on the source's presentation timeline, counted from the session's first frame. The decoder
//! thread numbers each frame with its interval (its *epoch*); an encoder forces an IDR on the
//! first frame of each epoch it sees. So every variant starts a GOP at the same source frame,
//! and a variant that dropped that frame starts it at the next one.

/// A timestamp step beyond this (or backwards) starts a new epoch at once.
const MAX_STEP_MS: i64 = 10_000;

pub struct KeyframeClock {
    interval_ms: i64,
    /// pts of the frame that started the current run of epochs, and that run's first epoch.
    origin: Option<(i64, u64)>,
    last: Option<(i64, u64)>,
}

impl KeyframeClock {
    pub fn new(segment_seconds: u32) -> Self {
        Self { interval_ms: i64::from(segment_seconds.max(1)) * 1000, origin: None, last: None }
    }

    /// The epoch of a frame shown at `pts_ms` (frames arrive in presentation order).
    pub fn epoch(&mut self, pts_ms: i64) -> u64 {
        let (origin_pts, first_epoch) = match (self.origin, self.last) {
            (Some(origin), Some((last_pts, _))) if (0..=MAX_STEP_MS).contains(&(pts_ms - last_pts)) => origin,
            (_, Some((_, last_epoch))) => (pts_ms, last_epoch + 1), // a jump: restart here
            _ => (pts_ms, 0),
        };
        self.origin = Some((origin_pts, first_epoch));
        // Timestamps are whole milliseconds: a frame 1 ms short of the boundary (30 fps rounds
        // 2000 ms to 1999 + 1) still opens the new interval.
        let epoch = first_epoch + ((pts_ms - origin_pts + 1).max(0) / self.interval_ms) as u64;
        self.last = Some((pts_ms, epoch));
        epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_advance_every_interval_from_the_first_frame() {
        let mut clock = KeyframeClock::new(2);
        let epochs: Vec<u64> = (0..130).map(|frame| clock.epoch(5000 + frame * 1000 / 30)).collect();
        assert_eq!(epochs[0], 0);
        assert_eq!(epochs[59], 0);
        assert_eq!(epochs[60], 1, "frame 60 is at 2000 ms after the first");
        assert_eq!(epochs[119], 1);
        assert_eq!(epochs[120], 2);
    }

    #[test]
    fn a_timestamp_jump_starts_a_new_epoch_there() {
        let mut clock = KeyframeClock::new(2);
        assert_eq!(clock.epoch(0), 0);
        assert_eq!(clock.epoch(1000), 0);
        assert_eq!(clock.epoch(200), 1, "backwards");
        assert_eq!(clock.epoch(2198), 1);
        assert_eq!(clock.epoch(2199), 2, "1 ms of rounding tolerance");
        assert_eq!(clock.epoch(60_000), 3, "far forward");
        assert_eq!(clock.epoch(62_000), 4);
    }
}
