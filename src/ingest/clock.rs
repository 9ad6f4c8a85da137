//! RTMP timestamps → one monotonic `i64` millisecond timeline.
//!
//! RTMP carries 32-bit millisecond timestamps (RTMP spec 1.0 §5.3.1.2) that wrap after
//! 2^32 ms ≈ 49.7 days; they are the FLV DTS. Successive timestamps on a connection are close
//! to each other, so the difference of two consecutive ones, taken modulo 2^32 as a signed
//! 32-bit number, is the real step even across a wrap. Summing those steps gives a timeline that
//! never jumps back by 2^32.
//!
//! Audio and video share one clock: their steps interleave slightly out of order (a few ms back
//! and forth), which is the truth and is kept. A step of 2^31 ms (24.8 days) or more cannot be
//! told from a step backwards; no encoder does that between two frames.

/// Extends 32-bit RTMP timestamps to `i64` across wraps.
#[derive(Debug, Default)]
pub(super) struct TimestampExtender {
    /// The last raw timestamp and its extended value.
    last: Option<(u32, i64)>,
}

impl TimestampExtender {
    /// The extended value of `raw`: the first timestamp as is, then each one as the previous
    /// extended value plus the signed 32-bit step from the previous raw value.
    pub(super) fn extend(&mut self, raw: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(raw),
            Some((last_raw, last_extended)) => {
                last_extended + i64::from(raw.wrapping_sub(last_raw) as i32)
            }
        };
        self.last = Some((raw, extended));
        extended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_from_the_first_timestamp() {
        let mut clock = TimestampExtender::default();
        assert_eq!(clock.extend(0), 0);
        assert_eq!(clock.extend(33), 33);
        assert_eq!(clock.extend(23), 23); // audio interleaved slightly behind video: kept
        assert_eq!(clock.extend(67), 67);
        let mut late_start = TimestampExtender::default();
        assert_eq!(late_start.extend(3_000_000_000), 3_000_000_000);
    }

    #[test]
    fn wraps_forward_past_u32_max() {
        let mut clock = TimestampExtender::default();
        assert_eq!(clock.extend(u32::MAX - 20), 4_294_967_275);
        assert_eq!(clock.extend(u32::MAX), 4_294_967_295);
        assert_eq!(clock.extend(12), 4_294_967_308); // 2^32 + 12
        assert_eq!(clock.extend(u32::MAX - 5), 4_294_967_290); // a late audio frame before the wrap
        assert_eq!(clock.extend(40), 4_294_967_336);
        // A second wrap, ~49.7 days later, in steps of 2^30 ms.
        let mut t = 40u32;
        let mut expected = 4_294_967_336i64;
        for _ in 0..4 {
            t = t.wrapping_add(1 << 30);
            expected += 1 << 30;
            assert_eq!(clock.extend(t), expected);
        }
        assert_eq!(expected, 2 * 4_294_967_296 + 40);
    }

    #[test]
    fn goes_backwards_when_the_publisher_does() {
        // The publisher's clock jumped back: reported as is, the muxer re-anchors.
        let mut clock = TimestampExtender::default();
        assert_eq!(clock.extend(10_000), 10_000);
        assert_eq!(clock.extend(0), 0);
        assert_eq!(clock.extend(u32::MAX), -1); // just "before" 0, not 49 days later
    }
}
