//! The adaptive bitrate ladder: the source decoded once, then scaled and re-encoded per variant
//! with libavcodec/libx264 (through `ffmpeg-next`), each variant into its own HLS muxer.
//!
//! ```text
//! session thread ──LossySender──▶ decoder thread ──try_send──▶ encoder thread per variant
//!   (passthrough                   VideoDecoder                 VideoEncoder (swscale + x264)
//!    variant muxed here)           keyframe epochs              Segmenter → store
//! ```
//!
//! Nothing upstream ever waits on a codec: every hop is a bounded channel written with
//! `try_send`; a variant that falls behind drops frames (counted in [`VariantStats`]) and the
//! others are unaffected. Keyframes are forced at the same source timestamps in every variant
//! ([`keyframes`]), so segment N of every variant starts at the same time.
//!
//! - [`decoder`]: H.264 decoding of the source packets.
//! - [`encoder`]: scaling and x264 encoding of one variant.
//! - [`ladder`]: the threads and channels above.
//! - [`keyframes`]: where keyframes go.
//! - [`threads`]: how many threads the codecs run behind the ladder's own.

pub mod audio;
mod codec_io;
pub mod decoder;
pub mod encoder;
pub mod keyframes;
pub mod ladder;
pub mod threads;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use ladder::Ladder;

use crate::config::VariantConfig;
use crate::hls::{MuxerOutput, Segmenter};
use crate::media::{IngestEvent, TrackKind};

/// Where muxer output goes: `(variant id, output)`.
pub type OutputSink = Arc<dyn Fn(&str, MuxerOutput) + Send + Sync>;

/// One rendition as the pipeline runs it. Lives as long as the server: its segmenter carries
/// the variant's playlist timeline from one publish session to the next.
pub struct Variant {
    /// URL path segment and store key: the variant's index in the config.
    pub id: String,
    pub config: VariantConfig,
    segmenter: Mutex<Segmenter>,
    pub stats: VariantStats,
}

/// Health counters shown in `/api/status`.
#[derive(Default)]
pub struct VariantStats {
    /// Video frames handed to the muxer.
    pub frames_out: AtomicU64,
    /// Frames this variant dropped because it could not keep up (or the framerate cap).
    pub frames_dropped: AtomicU64,
    /// Frames waiting for its encoder.
    pub queue_depth: AtomicUsize,
}

impl Variant {
    pub fn new(id: String, config: VariantConfig, segmenter: Segmenter) -> Self {
        Self {
            id,
            config,
            segmenter: Mutex::new(segmenter),
            stats: VariantStats::default(),
        }
    }

    /// The variant's muxer; held by the thread that runs the variant for a whole session.
    pub fn lock_segmenter(&self) -> MutexGuard<'_, Segmenter> {
        self.segmenter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a source video frame going to a passthrough muxer.
    pub fn count_input(&self, event: &IngestEvent) {
        if matches!(event, IngestEvent::Packet(p) if p.kind == TrackKind::Video) {
            self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        }
    }
}
