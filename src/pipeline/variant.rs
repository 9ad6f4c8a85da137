//! One rendition of the ladder as the pipeline runs it. A [`Variant`] (its config, its muxer and
//! its counters) lives as long as the ladder it is in; its segmenter as long as the server: it
//! carries the variant's playlist timeline from one publish session to the next. For a session, the thread that runs the
//! variant holds its [`VariantMuxer`]: the session thread for the passthrough (the source's
//! packets as they are), the variant's encoder thread otherwise ([`super::encoder_thread`]).
//! Whatever the muxer makes goes to the store through the session's [`SessionOutput`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::VariantConfig;
use crate::hls::{MuxerInput, MuxerOutput, Segmenter, SessionStart};
use crate::media::TrackKind;
use crate::store::HlsStore;

use super::status::StreamStatus;

/// A rendition's segmenter, shared by the variants that rendition index has had: its playlist
/// (`/hls/<index>/`) continues across ladder changes, and its segment numbers never repeat.
pub type SharedSegmenter = Arc<Mutex<Segmenter>>;

pub struct Variant {
    /// URL path segment and store key: the variant's index in the ladder.
    pub id: String,
    pub config: VariantConfig,
    segmenter: SharedSegmenter,
    pub stats: VariantStats,
    /// Why this session does not encode it (the source is no bigger), if it does not.
    skipped: Mutex<Option<String>>,
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
    pub fn new(id: String, config: VariantConfig, segmenter: SharedSegmenter) -> Self {
        Self {
            id,
            config,
            segmenter,
            stats: VariantStats::default(),
            skipped: Mutex::new(None),
        }
    }

    /// Where the variant's output timeline ends so far (90 kHz).
    pub(super) fn timeline_end(&self) -> u64 {
        self.lock_segmenter().timeline_end()
    }

    fn lock_segmenter(&self) -> MutexGuard<'_, Segmenter> {
        self.segmenter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A variant's muxer for one session, and where its output goes; held by the thread that runs
/// the variant until the session ends.
pub(super) struct VariantMuxer<'a> {
    variant: &'a Variant,
    segmenter: MutexGuard<'a, Segmenter>,
    output: SessionOutput,
}

impl<'a> VariantMuxer<'a> {
    /// The variant's session starts at `start` on the output timeline.
    pub(super) fn begin(variant: &'a Variant, start: SessionStart, output: SessionOutput) -> Self {
        let mut segmenter = variant.lock_segmenter();
        segmenter.begin_session(start);
        Self {
            variant,
            segmenter,
            output,
        }
    }

    pub(super) fn variant(&self) -> &'a Variant {
        self.variant
    }

    /// Mux one config or packet.
    pub(super) fn push(&mut self, input: MuxerInput) {
        if matches!(&input, MuxerInput::Packet(p) if p.kind == TrackKind::Video) {
            self.variant
                .stats
                .frames_out
                .fetch_add(1, Ordering::Relaxed);
        }
        let outputs = self.segmenter.push(input);
        self.store(outputs);
    }

    /// A new init segment behind a discontinuity (see [`Segmenter::restart_output`]).
    pub(super) fn restart_output(&mut self) {
        let outputs = self.segmenter.restart_output();
        self.store(outputs);
    }

    /// The session is over: the last segment.
    pub(super) fn end_session(mut self) {
        let outputs = self.segmenter.end_session();
        self.store(outputs);
    }

    fn store(&self, outputs: Vec<MuxerOutput>) {
        for output in outputs {
            self.output.store(&self.variant.id, output);
        }
    }
}

/// Where the muxers of one publish session put what they make: the store. The session's first
/// segment there also turns the stream online ([`StreamStatus::segment_stored`]).
#[derive(Clone)]
pub(super) struct SessionOutput {
    store: Arc<HlsStore>,
    status: Arc<StreamStatus>,
    session: u64,
}

impl Variant {
    /// Why the current session does not encode this variant; `None` when it does.
    pub fn skipped(&self) -> Option<String> {
        self.skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_skipped(&self, why: Option<String>) {
        *self.skipped.lock().unwrap_or_else(PoisonError::into_inner) = why;
    }
}

impl SessionOutput {
    /// The store stops offering `variant` to players for this session ([`HlsStore::withdraw`]).
    pub(super) fn withdraw(&self, variant: &str) {
        self.store.withdraw(variant);
    }

    pub(super) fn new(store: Arc<HlsStore>, status: Arc<StreamStatus>, session: u64) -> Self {
        Self {
            store,
            status,
            session,
        }
    }

    fn store(&self, variant: &str, output: MuxerOutput) {
        let is_segment = matches!(output, MuxerOutput::Segment(_));
        self.store.apply(variant, output);
        if is_segment {
            self.status.segment_stored(self.session);
        }
    }
}
