//! Whether the stream is live and since when: the pipeline says when a publisher comes and goes,
//! the session's [`super::variant::SessionOutput`] when its first segment is stored (the stream
//! is online from then on); `/api/status` reads it.

use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use tracing::info;

use crate::media::{IngestEvent, TrackKind};

#[derive(Debug, Clone, Default)]
pub struct StatusSnapshot {
    pub online: bool,
    pub last_connect_time: Option<SystemTime>,
    pub last_disconnect_time: Option<SystemTime>,
    /// Packets dropped because the pipeline could not keep up, this session.
    pub dropped_packets: u64,
    pub input: InputSummary,
}

/// What the publisher sends, this session.
#[derive(Debug, Clone, Default)]
pub struct InputSummary {
    /// RFC 6381 codec and size, e.g. `avc1.64001f` 1280x720.
    pub video_codec: Option<String>,
    pub width: u32,
    pub height: u32,
    pub audio_codec: Option<String>,
    pub media_bytes: u64,
    /// Video frames received, and the decode times of the first and the latest (ms).
    pub video_frames: u64,
    pub video_span_ms: Option<(i64, i64)>,
    pub since: Option<Instant>,
    /// When the publisher left (the bitrate is then that of the whole publish).
    pub until: Option<Instant>,
}

impl InputSummary {
    /// Average media bitrate since the publish began.
    pub fn bitrate_kbps(&self) -> u64 {
        let end = self.until.unwrap_or_else(Instant::now);
        let seconds = self.since.map_or(0.0, |since| {
            end.saturating_duration_since(since).as_secs_f64()
        });
        if seconds < 0.5 {
            return 0;
        }
        (self.media_bytes as f64 * 8.0 / seconds / 1000.0) as u64
    }

    /// Average video frame rate since the publish began, by the frames' own timestamps;
    /// `None` before two frames a millisecond or more apart.
    pub fn frame_rate(&self) -> Option<f64> {
        let (first, latest) = self.video_span_ms?;
        let span_ms = latest.checked_sub(first).filter(|&span| span > 0)?;
        let rate = (self.video_frames - 1) as f64 * 1000.0 / span_ms as f64;
        Some((rate * 100.0).round() / 100.0)
    }

    fn saw_video_frame(&mut self, dts_ms: i64) {
        self.video_frames += 1;
        self.video_span_ms = Some(match self.video_span_ms {
            Some((first, _)) => (first, dts_ms),
            None => (dts_ms, dts_ms),
        });
    }
}

#[derive(Default)]
pub struct StreamStatus {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    snapshot: StatusSnapshot,
    /// The publish session that is live, if one is.
    live_session: Option<u64>,
}

impl StreamStatus {
    pub fn snapshot(&self) -> StatusSnapshot {
        self.lock().snapshot.clone()
    }

    /// A publisher was accepted for `session` (the stream is online once its first segment is
    /// stored).
    pub(super) fn publisher_connected(&self, session: u64) {
        let mut state = self.lock();
        state.live_session = Some(session);
        let status = &mut state.snapshot;
        status.last_connect_time = Some(SystemTime::now());
        status.dropped_packets = 0;
        status.input = InputSummary {
            since: Some(Instant::now()),
            ..InputSummary::default()
        };
    }

    /// Notes what an event says about the input.
    pub(super) fn saw_input(&self, event: &IngestEvent) {
        let mut state = self.lock();
        let input = &mut state.snapshot.input;
        match event {
            IngestEvent::VideoConfig(config) => {
                input.video_codec = Some(config.codecs_string());
                (input.width, input.height) = (config.sps.width, config.sps.height);
            }
            IngestEvent::AudioConfig(config) => input.audio_codec = Some(config.codecs_string()),
            IngestEvent::OtherAudioConfig(source) => input.audio_codec = Some(source.describe()),
            IngestEvent::Packet(packet) => {
                input.media_bytes += packet.data.len() as u64;
                if packet.kind == TrackKind::Video {
                    input.saw_video_frame(packet.dts_ms);
                }
            }
        }
    }

    /// A segment of `session` is stored: if that session is still live, viewers can watch it
    /// now. Until then the playlist holds only what an earlier session left, so the page keeps
    /// waiting.
    pub(super) fn segment_stored(&self, session: u64) {
        let mut state = self.lock();
        if state.live_session == Some(session) && !state.snapshot.online {
            state.snapshot.online = true;
            info!("stream online");
        }
    }

    pub(super) fn went_offline(&self) {
        let mut state = self.lock();
        state.live_session = None;
        let status = &mut state.snapshot;
        status.online = false;
        status.last_disconnect_time = Some(SystemTime::now());
        status.input.until = Some(Instant::now());
    }

    pub(super) fn count_dropped(&self) {
        self.lock().snapshot.dropped_packets += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_frame_rate_is_counted_from_the_frames_timestamps() {
        let mut input = InputSummary::default();
        assert_eq!(input.frame_rate(), None);
        input.saw_video_frame(1000);
        assert_eq!(input.frame_rate(), None, "one frame is no rate");
        // 30 fps in whole milliseconds: 33, 33, 34, ... 90 more frames over 3 s.
        for frame in 1..=90 {
            input.saw_video_frame(1000 + frame * 1000 / 30);
        }
        assert_eq!(input.frame_rate(), Some(30.0));
        let mut stuck = InputSummary::default();
        stuck.saw_video_frame(5);
        stuck.saw_video_frame(5);
        assert_eq!(stuck.frame_rate(), None, "no time between them");
    }
}
