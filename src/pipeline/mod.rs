//! The live pipeline: one publish session's packets, from ingest to the HLS store.
//!
//! Ingest (async, tokio) calls [`Pipeline::begin_publish`] when a publisher is accepted and gets a
//! [`Publisher`]; it pushes [`IngestEvent`]s into it without ever blocking. A dedicated OS thread
//! per session drains the bounded channel into the HLS muxer. Dropping the `Publisher` ends the
//! session: the thread flushes the last segment and the stream goes offline. The stream is
//! announced online when the session's first segment is in the playlist, not before: until
//! then the playlist only holds what an earlier session left.
//!
//! One [`Segmenter`] outlives the sessions, so a reconnecting publisher continues the same
//! playlist (behind a discontinuity). Session threads run one after the other: each joins its
//! predecessor before touching the segmenter.

mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing::{error, info, warn};

pub use status::{StatusSnapshot, StreamStatus};

use crate::hls::{MuxerOutput, Segmenter};
use crate::media::{IngestEvent, TrackKind};
use crate::store::HlsStore;

/// The name (and URL path segment) of the rendition that copies the source.
pub const SOURCE_VARIANT: &str = "0";
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
    events: Sender<IngestEvent>,
    /// Video is skipped until the next keyframe after a drop.
    awaiting_keyframe: bool,
    pipeline: Arc<Shared>,
}

impl Publisher {
    /// Queue one event for the pipeline. Never blocks: when the queue is full the event is
    /// dropped and counted, and video is skipped until the next keyframe so that the output
    /// never references a frame it did not receive.
    pub fn send(&mut self, event: IngestEvent) {
        if let IngestEvent::Packet(packet) = &event {
            if packet.kind == TrackKind::Video && self.awaiting_keyframe {
                if !packet.keyframe {
                    self.pipeline.status.count_dropped();
                    return;
                }
                self.awaiting_keyframe = false;
            }
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(dropped)) => {
                self.pipeline.status.count_dropped();
                if matches!(&dropped, IngestEvent::Packet(p) if p.kind == TrackKind::Video) {
                    if !self.awaiting_keyframe {
                        warn!("pipeline queue full: dropping video until the next keyframe");
                    }
                    self.awaiting_keyframe = true;
                }
            }
            Err(TrySendError::Disconnected(_)) => {} // shutting down
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

/// Owns the single live stream slot.
pub struct Pipeline {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<HlsStore>,
    status: Arc<StreamStatus>,
    segmenter: Arc<Mutex<Segmenter>>,
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
    pub fn new(store: Arc<HlsStore>, status: Arc<StreamStatus>, segment_seconds: u32) -> Self {
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
                segmenter: Arc::new(Mutex::new(Segmenter::new(segment_seconds))),
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
                run_session(&shared, session, &incoming, &stopped);
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
            events,
            awaiting_keyframe: false,
            pipeline: Arc::clone(&self.shared),
        })
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
        {
            self.status.went_online();
            info!("stream online");
        }
    }
}

/// One session: events into the segmenter, its output into the store, until the publisher
/// goes away or the server stops.
fn run_session(
    shared: &Shared,
    session: u64,
    incoming: &Receiver<IngestEvent>,
    stopped: &Receiver<()>,
) {
    let mut segmenter = shared
        .segmenter
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    segmenter.begin_session();
    let mut online = false;
    loop {
        crossbeam_channel::select! {
            recv(incoming) -> event => match event {
                Ok(event) => {
                    for output in segmenter.push(event) {
                        let is_segment = matches!(output, MuxerOutput::Segment(_));
                        shared.store.apply(SOURCE_VARIANT, output);
                        if is_segment && !online {
                            online = true;
                            shared.announce_online(session);
                        }
                    }
                }
                Err(_) => break, // the publisher went away
            },
            recv(stopped) -> _ => break, // shutdown
        }
    }
    for output in segmenter.end_session() {
        shared.store.apply(SOURCE_VARIANT, output);
    }
}
