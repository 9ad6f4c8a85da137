//! The live pipeline: one publish session's packets, from ingest to the HLS store. It owns the
//! threads and the variants; the codecs ([`crate::transcode`]), the muxer ([`crate::hls`]) and
//! the store are called by it and hand back values.
//!
//! ```text
//! Publisher ──queue──▶ session thread ─┬─ audio stage (AAC per route)
//!  (ingest,             (session)      ├─▶ passthrough variant: VariantMuxer ─▶ store
//!   never blocks)                      └─queue─▶ decoder thread ──▶ encoder thread per variant:
//!                                                 (ladder)           VideoEncoder, VariantMuxer ─▶ store
//! ```
//!
//! Ingest (async, tokio) calls [`Pipeline::begin_publish`] when a publisher is accepted and gets a
//! [`Publisher`]; it pushes [`IngestEvent`]s into it without ever blocking. A dedicated OS thread
//! per session ([`session`]) drains the bounded channel. Dropping the `Publisher` ends the
//! session: every muxer flushes its last segment and the stream goes offline. The stream is
//! online once the session's first segment is stored, not before ([`status`]): until then the
//! playlist only holds what an earlier session left.
//!
//! - [`session`]: the session thread: video to the passthrough and the ladder, audio through
//!   [`audio`] (whatever the source's codec, every variant gets AAC: copied, or encoded once per
//!   distinct `audio_bitrate_kbps`).
//! - [`ladder`]: the decoder thread; [`encoder_thread`]: a transcoded variant's thread.
//! - [`variant`]: a [`Variant`] (its [`Segmenter`] outlives the sessions, so a reconnecting
//!   publisher continues the same playlist, behind a discontinuity) and the session's hold on it.
//!   The ladder is swapped between sessions ([`Pipeline::set_ladder`]): each session runs the
//!   renditions in use when it began; rendition N keeps its segmenter across ladders.
//! - [`status`]: online/offline and what the publisher sends, for `/api/status`.
//! - [`preview`]: the preview image (`/thumbnail.jpg`), from a keyframe every few seconds.
//!
//! Session threads run one after the other: each joins its predecessor before touching the
//! segmenters. "Apply now" ([`Pipeline::restart_live`]) starts a new session thread under the
//! live publish: the publisher follows it at its next event, replaying the codec configs and
//! resuming video at a keyframe; viewers continue behind a discontinuity, the stream stays
//! online.

mod audio;
mod encoder_thread;
mod ladder;
mod preview;
mod session;
mod status;
mod variant;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::watch;
use tracing::{error, info};

pub use preview::{Preview, PreviewImage};
pub use status::{StatusSnapshot, StreamStatus};
pub use variant::{Variant, VariantStats};

use variant::{SessionOutput, SharedSegmenter};

use crate::config::VariantConfig;
use crate::hls::Segmenter;
use crate::media::{IngestEvent, TrackKind};
use crate::queue::{LossySender, QueueItem, Sent};
use crate::store::HlsStore;

/// Events queued between ingest and the session thread: several seconds of a typical stream.
const QUEUE_CAPACITY: usize = 2048;

/// Why a publish request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishRefused {
    #[error("a publisher is already live (from {0})")]
    AlreadyLive(SocketAddr),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// The handle ingest holds while a publisher is live. Sending never blocks; dropping it ends the
/// session.
pub struct Publisher {
    session: u64,
    events: LossySender<IngestEvent>,
    /// The queue of a session thread started by [`Pipeline::restart_live`], to follow.
    restarted: Receiver<Sender<IngestEvent>>,
    /// What a restarted session thread is told first.
    configs: LastConfigs,
    /// After a restart, until the next video keyframe: earlier frames refer to ones the new
    /// session never got.
    awaiting_keyframe: bool,
    pipeline: Arc<PipelineState>,
    /// Becomes `true` when the owner disconnects this publisher ([`Pipeline::disconnect`]).
    disconnect: watch::Receiver<bool>,
}

impl Publisher {
    /// Queue one event for the pipeline. Never blocks: when the queue is full the event is
    /// dropped and counted, and video is skipped until the next keyframe so that the output
    /// never references a frame it did not receive.
    pub fn send(&mut self, event: IngestEvent) {
        self.pipeline.status.saw_input(&event);
        while let Ok(events) = self.restarted.try_recv() {
            self.follow(events);
        }
        self.configs.remember(&event);
        if self.awaiting_keyframe && event.is_video() {
            if !event.is_keyframe() {
                return;
            }
            self.awaiting_keyframe = false;
        }
        if self.events.send(event) == Sent::Dropped {
            self.pipeline.status.count_dropped();
        }
    }

    /// From now on events go to a new session thread (the old one ends its segments when its
    /// queue is dropped here): it gets the codec configs again, and video from a keyframe.
    fn follow(&mut self, events: Sender<IngestEvent>) {
        self.events = LossySender::new(events, "ingest → pipeline");
        for config in self.configs.to_replay() {
            self.events.send(config);
        }
        self.awaiting_keyframe = true;
    }

    /// Resolves when the owner disconnects this publisher; ingest then closes its connection.
    pub fn disconnect_requested(&self) -> watch::Receiver<bool> {
        self.disconnect.clone()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut slot = self.pipeline.lock_slot();
        if slot
            .live
            .as_ref()
            .is_some_and(|live| live.session == self.session)
        {
            slot.live = None;
            self.pipeline.status.went_offline();
            info!("stream offline");
        }
    }
}

/// The latest video and audio configs a publisher sent: a restarted session thread needs them
/// before the packets.
#[derive(Default)]
struct LastConfigs {
    video: Option<IngestEvent>,
    audio: Option<IngestEvent>,
}

impl LastConfigs {
    fn remember(&mut self, event: &IngestEvent) {
        match event {
            IngestEvent::VideoConfig(_) => self.video = Some(event.clone()),
            IngestEvent::AudioConfig(_) | IngestEvent::OtherAudioConfig(_) => {
                self.audio = Some(event.clone());
            }
            IngestEvent::Packet(_) => {}
        }
    }

    fn to_replay(&self) -> impl Iterator<Item = IngestEvent> + '_ {
        self.video.iter().chain(&self.audio).cloned()
    }
}

impl QueueItem for IngestEvent {
    fn is_video(&self) -> bool {
        matches!(self, IngestEvent::Packet(p) if p.kind == TrackKind::Video)
    }
    fn is_keyframe(&self) -> bool {
        matches!(self, IngestEvent::Packet(p) if p.keyframe)
    }
}

/// Owns the single live stream slot.
pub struct Pipeline {
    state: Arc<PipelineState>,
}

/// What the pipeline, its publishers and its session threads share.
struct PipelineState {
    store: Arc<HlsStore>,
    status: Arc<StreamStatus>,
    ladder: Mutex<LadderState>,
    segment_seconds: u32,
    slot: Mutex<Slot>,
    preview: Arc<Preview>,
}

/// The renditions sessions run, in the ladder's order; a variant's index is its URL path
/// (`/hls/<index>/`).
struct LadderState {
    /// The live session's renditions, or, while offline, the next session's.
    in_use: Arc<[Arc<Variant>]>,
    /// A ladder set while a session runs another: the next session takes it.
    next: Option<Vec<VariantConfig>>,
    /// One segmenter per rendition index ever used ([`variant::SharedSegmenter`]).
    segmenters: Vec<SharedSegmenter>,
}

impl LadderState {
    /// The variants of `ladder`: a rendition that did not change keeps its variant (and its
    /// counters), every index keeps its segmenter.
    fn build(&mut self, ladder: &[VariantConfig], segment_seconds: u32) -> Arc<[Arc<Variant>]> {
        let mut variants = Vec::with_capacity(ladder.len());
        for (index, config) in ladder.iter().enumerate() {
            if let Some(same) = self.in_use.get(index).filter(|v| v.config == *config) {
                variants.push(Arc::clone(same));
                continue;
            }
            if index == self.segmenters.len() {
                self.segmenters
                    .push(Arc::new(Mutex::new(Segmenter::new(segment_seconds))));
            }
            variants.push(Arc::new(Variant::new(
                index.to_string(),
                config.clone(),
                Arc::clone(&self.segmenters[index]),
            )));
        }
        variants.into()
    }

    /// Puts `ladder` in use; the renditions it no longer has leave the master playlist.
    fn install(&mut self, ladder: &[VariantConfig], segment_seconds: u32, store: &HlsStore) {
        let variants = self.build(ladder, segment_seconds);
        for gone in self.in_use.iter().skip(variants.len()) {
            store.withdraw(&gone.id);
        }
        self.in_use = variants;
        self.next = None;
    }
}

/// When a new ladder applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LadderChange {
    /// Offline: in use at once (the next publish runs it).
    Applied,
    /// A publish is live with the old one: the next publish runs it.
    AtNextPublish,
}

#[derive(Default)]
struct Slot {
    live: Option<LiveSession>,
    next_session: u64,
    /// The most recent session thread; the next one waits for it.
    last_thread: Option<JoinHandle<()>>,
    /// Dropped at shutdown: session threads stop at once.
    stop: Option<Sender<()>>,
    stopped: Option<Receiver<()>>,
    shutting_down: bool,
}

struct LiveSession {
    session: u64,
    peer: SocketAddr,
    key_id: String,
    since: SystemTime,
    disconnect: watch::Sender<bool>,
    /// Hands the publisher the queue of a restarted session thread.
    restart: Sender<Sender<IngestEvent>>,
}

/// Who is publishing now, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePublisher {
    pub peer: SocketAddr,
    /// The stream key it publishes with ([`crate::stream_keys`]).
    pub key_id: String,
    pub since: SystemTime,
}

impl Pipeline {
    pub fn new(
        store: Arc<HlsStore>,
        status: Arc<StreamStatus>,
        segment_seconds: u32,
        ladder: &[VariantConfig],
    ) -> Self {
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let slot = Slot {
            stop: Some(stop),
            stopped: Some(stopped),
            ..Slot::default()
        };
        let mut renditions = LadderState {
            in_use: Arc::new([]),
            next: None,
            segmenters: Vec::new(),
        };
        renditions.in_use = renditions.build(ladder, segment_seconds);
        Self {
            state: Arc::new(PipelineState {
                store,
                status,
                ladder: Mutex::new(renditions),
                segment_seconds,
                slot: Mutex::new(slot),
                preview: Arc::default(),
            }),
        }
    }

    /// Start a publish session for `peer`, publishing with stream key `key_id`; refused while
    /// another publisher is live.
    pub fn begin_publish(
        &self,
        peer: SocketAddr,
        key_id: &str,
    ) -> Result<Publisher, PublishRefused> {
        let mut slot = self.state.lock_slot();
        if slot.shutting_down {
            return Err(PublishRefused::ShuttingDown);
        }
        if let Some(live) = &slot.live {
            return Err(PublishRefused::AlreadyLive(live.peer));
        }
        let session = slot.next_session;
        slot.next_session += 1;
        let variants = self.state.renditions_for_a_new_session();
        let events = self
            .state
            .start_session_thread(&mut slot, session, variants)?;
        let (disconnect, disconnect_requested) = watch::channel(false);
        let (restart, restarted) = crossbeam_channel::unbounded();
        slot.live = Some(LiveSession {
            session,
            peer,
            key_id: key_id.to_owned(),
            since: SystemTime::now(),
            disconnect,
            restart,
        });
        self.state.status.publisher_connected(session);
        Ok(Publisher {
            session,
            events: LossySender::new(events, "ingest → pipeline"),
            restarted,
            configs: LastConfigs::default(),
            awaiting_keyframe: false,
            pipeline: Arc::clone(&self.state),
            disconnect: disconnect_requested,
        })
    }

    /// "Apply now": the live publish goes on in a new session thread that runs the renditions
    /// set for the next publish ([`Self::set_ladder`]); the old one ends its segments, viewers
    /// continue behind a discontinuity and the stream stays online. Returns whether a publish
    /// was live.
    pub fn restart_live(&self) -> bool {
        let mut slot = self.state.lock_slot();
        let Some((session, peer, restart)) = slot
            .live
            .as_ref()
            .map(|live| (live.session, live.peer, live.restart.clone()))
        else {
            return false;
        };
        let variants = self.state.renditions_for_a_new_session();
        let Ok(events) = self
            .state
            .start_session_thread(&mut slot, session, variants)
        else {
            return false;
        };
        info!(%peer, "restarting the live publish's pipeline (asked by the admin)");
        // The publisher takes it at its next event; if it has just gone, so has the thread.
        let _ = restart.send(events);
        true
    }

    /// The live publisher, if any.
    pub fn live_publisher(&self) -> Option<LivePublisher> {
        let slot = self.state.lock_slot();
        slot.live.as_ref().map(|live| LivePublisher {
            peer: live.peer,
            key_id: live.key_id.clone(),
            since: live.since,
        })
    }

    /// Ends the live publish (its connection is closed), if there is one and, with `key_id`,
    /// it publishes with that key. Returns whether one was told to end.
    pub fn disconnect(&self, key_id: Option<&str>) -> bool {
        let slot = self.state.lock_slot();
        match &slot.live {
            Some(live) if key_id.is_none_or(|id| id == live.key_id) => {
                info!(peer = %live.peer, "disconnecting the publisher (asked by the admin)");
                live.disconnect.send_replace(true);
                true
            }
            _ => false,
        }
    }

    pub fn status(&self) -> &StreamStatus {
        &self.state.status
    }

    /// The stream's latest preview image.
    pub fn preview(&self) -> &Preview {
        &self.state.preview
    }

    /// The renditions in use: the live publish's, or, offline, the next one's.
    pub fn variants(&self) -> Arc<[Arc<Variant>]> {
        Arc::clone(&self.state.lock_ladder().in_use)
    }

    /// Whether the live publish runs another ladder than the one set for the next.
    pub fn ladder_pending(&self) -> bool {
        self.state.lock_ladder().next.is_some()
    }

    /// The console's new ladder: in use at once while offline, else from the next publish.
    pub fn set_ladder(&self, ladder: &[VariantConfig]) -> LadderChange {
        let slot = self.state.lock_slot();
        let mut renditions = self.state.lock_ladder();
        if slot.live.is_some() {
            let same = renditions.in_use.len() == ladder.len()
                && renditions
                    .in_use
                    .iter()
                    .zip(ladder)
                    .all(|(v, c)| v.config == *c);
            renditions.next = (!same).then(|| ladder.to_vec());
            return if same {
                LadderChange::Applied
            } else {
                LadderChange::AtNextPublish
            };
        }
        renditions.install(ladder, self.state.segment_seconds, &self.state.store);
        LadderChange::Applied
    }

    /// Stop accepting publishers, finish the live session's last segment and end every
    /// playlist with EXT-X-ENDLIST.
    pub fn shutdown(&self) {
        let thread = {
            let mut slot = self.state.lock_slot();
            slot.shutting_down = true;
            slot.stop = None;
            slot.stopped = None;
            if slot.live.take().is_some() {
                self.state.status.went_offline();
            }
            slot.last_thread.take()
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.state.store.end_all();
    }
}

impl PipelineState {
    /// The renditions a session starting now runs: a ladder set for the next publish is put in
    /// use first.
    fn renditions_for_a_new_session(&self) -> Arc<[Arc<Variant>]> {
        let mut ladder = self.lock_ladder();
        if let Some(next) = ladder.next.take() {
            ladder.install(&next, self.segment_seconds, &self.store);
            info!(renditions = next.len(), "this session runs the new ladder");
        }
        Arc::clone(&ladder.in_use)
    }

    /// Starts the thread of one session of `session`'s publish, running `variants`, after the
    /// threads before it; returns its queue.
    fn start_session_thread(
        self: &Arc<Self>,
        slot: &mut Slot,
        session: u64,
        variants: Arc<[Arc<Variant>]>,
    ) -> Result<Sender<IngestEvent>, PublishRefused> {
        let (events, incoming) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        let stopped = slot.stopped.clone().ok_or(PublishRefused::ShuttingDown)?;
        let predecessor = slot.last_thread.take();
        let state = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name(format!("session-{session}"))
            .spawn(move || {
                if let Some(previous) = predecessor {
                    let _ = previous.join();
                }
                let output = SessionOutput::new(
                    Arc::clone(&state.store),
                    Arc::clone(&state.status),
                    session,
                );
                session::run(
                    &variants,
                    state.segment_seconds,
                    output,
                    Arc::clone(&state.preview),
                    &incoming,
                    &stopped,
                );
            });
        match thread {
            Ok(handle) => {
                slot.last_thread = Some(handle);
                Ok(events)
            }
            Err(e) => {
                error!("cannot start a pipeline thread: {e}");
                Err(PublishRefused::ShuttingDown)
            }
        }
    }

    /// Taken after the slot's lock when both are needed.
    fn lock_ladder(&self) -> MutexGuard<'_, LadderState> {
        self.ladder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_slot(&self) -> MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
