//! The live pipeline: one publish session's packets, from ingest to the HLS store.
//!
//! Ingest (async, tokio) calls [`Pipeline::begin_publish`] when a publisher is accepted and gets a
//! [`Publisher`]; it pushes [`IngestEvent`]s into it without ever blocking. A dedicated OS thread
//! per session drains the bounded channel into the HLS muxer. Dropping the `Publisher` ends the
//! session: the thread flushes the last segment and the stream goes offline. The stream is
//! announced online when the session's first segment is in the playlist, not before: until
//! then the playlist only holds what an earlier session left.
//!
//! The session thread also runs the audio stage ([`audio`]): whatever the source's audio codec,
//! every variant gets AAC (copied, or encoded once per distinct `audio_bitrate_kbps`).
//!
//! One [`Segmenter`] outlives the sessions, so a reconnecting publisher continues the same
//! playlist (behind a discontinuity). Session threads run one after the other: each joins its
//! predecessor before touching the segmenter.

mod audio;
mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tracing::{error, info};

use audio::AudioStage;
pub use status::{StatusSnapshot, StreamStatus};

use crate::config::VariantConfig;
use crate::hls::{MuxerInput, MuxerOutput, Segmenter, SessionStart};
use crate::media::{IngestEvent, TrackKind};
use crate::queue::{LossySender, QueueItem, Sent};
use crate::store::HlsStore;
use crate::transcode::{Ladder, OutputSink, Variant};
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
    pipeline: Arc<Shared>,
}

impl Publisher {
    /// Queue one event for the pipeline. Never blocks: when the queue is full the event is
    /// dropped and counted, and video is skipped until the next keyframe so that the output
    /// never references a frame it did not receive.
    pub fn send(&mut self, event: IngestEvent) {
        self.pipeline.status.saw_input(&event);
        if self.events.send(event) == Sent::Dropped {
            self.pipeline.status.count_dropped();
        }
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
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<HlsStore>,
    status: Arc<StreamStatus>,
    /// The ladder, in config order; a variant's index is its URL path (`/hls/<index>/`).
    variants: Vec<Arc<Variant>>,
    segment_seconds: u32,
    slot: Mutex<Slot>,
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
        Self {
            shared: Arc::new(Shared {
                store,
                status,
                variants: ladder
                    .iter()
                    .enumerate()
                    .map(|(index, config)| {
                        Arc::new(Variant::new(
                            index.to_string(),
                            config.clone(),
                            Segmenter::new(segment_seconds),
                        ))
                    })
                    .collect(),
                segment_seconds,
                slot: Mutex::new(slot),
            }),
        }
    }

    /// Start a publish session for `peer`; refused while another publisher is live.
    pub fn begin_publish(&self, peer: SocketAddr) -> Result<Publisher, PublishRefused> {
        let mut slot = self.shared.lock_slot();
        if slot.shutting_down {
            return Err(PublishRefused::ShuttingDown);
        }
        if let Some(live) = &slot.live {
            return Err(PublishRefused::AlreadyLive(live.peer));
        }
        let session = slot.next_session;
        slot.next_session += 1;
        let (events, incoming) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        let stopped = slot.stopped.clone().ok_or(PublishRefused::ShuttingDown)?;
        let predecessor = slot.last_thread.take();
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name(format!("session-{session}"))
            .spawn(move || {
                if let Some(previous) = predecessor {
                    let _ = previous.join();
                }
                run_session(shared, session, &incoming, &stopped);
            });
        match thread {
            Ok(handle) => slot.last_thread = Some(handle),
            Err(e) => {
                error!("cannot start a pipeline thread: {e}");
                return Err(PublishRefused::ShuttingDown);
            }
        }
        slot.live = Some(LiveSession { session, peer });
        self.shared.status.publisher_connected();
        Ok(Publisher {
            session,
            events: LossySender::new(events, "ingest → pipeline"),
            pipeline: Arc::clone(&self.shared),
        })
    }

    pub fn status(&self) -> &StreamStatus {
        &self.shared.status
    }

    /// The ladder, in config order.
    pub fn variants(&self) -> &[Arc<Variant>] {
        &self.shared.variants
    }

    /// Stop accepting publishers, finish the live session's last segment and end every
    /// playlist with EXT-X-ENDLIST.
    pub fn shutdown(&self) {
        let thread = {
            let mut slot = self.shared.lock_slot();
            slot.shutting_down = true;
            slot.stop = None;
            slot.stopped = None;
            if slot.live.take().is_some() {
                self.shared.status.went_offline();
            }
            slot.last_thread.take()
        };
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.shared.store.end_all();
    }
}

impl Shared {
    fn lock_slot(&self) -> MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session's first segment is in the playlist: viewers can watch it now. Until then
    /// the playlist holds only what an earlier session left, so the page keeps waiting.
    fn announce_online(&self, session: u64) {
        let slot = self.lock_slot();
        if slot
            .live
            .as_ref()
            .is_some_and(|live| live.session == session)
            && !self.status.is_online()
        {
            self.status.went_online();
            info!("stream online");
        }
    }
}

/// One session: the passthrough variant's segmenter and the audio stage run here; transcoded
/// variants run on the ladder's threads. Until the publisher goes away or the server stops.
fn run_session(
    shared: Arc<Shared>,
    session: u64,
    incoming: &Receiver<IngestEvent>,
    stopped: &Receiver<()>,
) {
    // Every variant's next session starts at the same time on the output timeline.
    let start = SessionStart::now(
        shared
            .variants
            .iter()
            .map(|v| v.lock_segmenter().timeline_end())
            .max()
            .unwrap_or(0),
    );
    let sink: OutputSink = {
        let shared = Arc::clone(&shared);
        Arc::new(move |variant: &str, output: MuxerOutput| {
            let is_segment = matches!(output, MuxerOutput::Segment(_));
            shared.store.apply(variant, output);
            if is_segment {
                shared.announce_online(session);
            }
        })
    };
    let mut audio = AudioStage::new(shared.variants.iter().map(|v| v.config.audio_bitrate_kbps));
    let mut passthrough = shared
        .variants
        .iter()
        .enumerate()
        .find(|(_, v)| v.config.passthrough)
        .map(|(index, variant)| {
            let mut segmenter = variant.lock_segmenter();
            segmenter.begin_session(start);
            Passthrough {
                variant,
                segmenter,
                audio_route: audio.route_of(index),
                sink: Arc::clone(&sink),
            }
        });
    let transcoded: Vec<(Arc<Variant>, usize)> = shared
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.config.passthrough)
        .map(|(index, v)| (Arc::clone(v), audio.route_of(index)))
        .collect();
    let mut ladder = (!transcoded.is_empty())
        .then(|| Ladder::start(transcoded, shared.segment_seconds, start, Arc::clone(&sink)));
    loop {
        crossbeam_channel::select! {
            recv(incoming) -> event => match event {
                Ok(IngestEvent::VideoConfig(config)) => {
                    if let Some(ladder) = &mut ladder {
                        ladder.send_video_config(&config);
                    }
                    if let Some(passthrough) = &mut passthrough {
                        passthrough.push(MuxerInput::VideoConfig(config));
                    }
                }
                Ok(IngestEvent::Packet(packet)) if packet.kind == TrackKind::Video => {
                    if let Some(ladder) = &mut ladder {
                        ladder.send_video(&packet);
                    }
                    if let Some(passthrough) = &mut passthrough {
                        passthrough.push(MuxerInput::Packet(packet));
                    }
                }
                Ok(audio_event) => {
                    deliver_audio(audio.push(audio_event), &mut ladder, &mut passthrough);
                }
                Err(_) => break, // the publisher went away
            },
            recv(stopped) -> _ => break, // shutdown
        }
    }
    deliver_audio(audio.finish(), &mut ladder, &mut passthrough);
    if let Some(mut passthrough) = passthrough {
        passthrough.end_session();
    }
    if let Some(ladder) = ladder {
        ladder.finish();
    }
}

/// Audio from the stage to the variants of each route.
fn deliver_audio(
    routed: Vec<audio::Routed>,
    ladder: &mut Option<Ladder>,
    passthrough: &mut Option<Passthrough>,
) {
    for (route, input) in routed {
        if let Some(ladder) = ladder {
            ladder.send_audio(route, &input);
        }
        if let Some(passthrough) = passthrough.as_mut().filter(|p| p.audio_route == route) {
            passthrough.push(input);
        }
    }
}

/// The passthrough variant's muxer, held by the session thread for the whole session.
struct Passthrough<'a> {
    variant: &'a Variant,
    segmenter: MutexGuard<'a, Segmenter>,
    audio_route: usize,
    sink: OutputSink,
}

impl Passthrough<'_> {
    fn push(&mut self, input: MuxerInput) {
        self.variant.count_input(&input);
        for output in self.segmenter.push(input) {
            (self.sink)(&self.variant.id, output);
        }
    }

    fn end_session(&mut self) {
        for output in self.segmenter.end_session() {
            (self.sink)(&self.variant.id, output);
        }
    }
}
