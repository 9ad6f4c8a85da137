//! A channel sender for [`IngestEvent`]s that never blocks: when the queue is full the event is
//! dropped (the caller counts it), and video is then skipped until the next keyframe so that the
//! receiver never gets a frame whose reference it lost. Used between ingest and a session
//! thread, and between a session thread and its transcoding ladder.

use crossbeam_channel::{Sender, TrySendError};
use tracing::warn;

use crate::media::{IngestEvent, TrackKind};

/// Sends `T`: an [`IngestEvent`], or something that carries one.
pub struct LossySender<T: AsRef<IngestEvent> = IngestEvent> {
    events: Sender<T>,
    awaiting_keyframe: bool,
    /// Says where the queue is, in the warning.
    queue: &'static str,
}

/// What happened to one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// Dropped: the queue was full, or video is waiting for a keyframe after a drop.
    Dropped,
    /// The receiver is gone (shutting down).
    Closed,
}

impl<T: AsRef<IngestEvent>> LossySender<T> {
    pub fn new(events: Sender<T>, queue: &'static str) -> Self {
        Self {
            events,
            awaiting_keyframe: false,
            queue,
        }
    }

    pub fn send(&mut self, event: T) -> Sent {
        let is_video =
            matches!(event.as_ref(), IngestEvent::Packet(p) if p.kind == TrackKind::Video);
        if is_video && self.awaiting_keyframe {
            if !matches!(event.as_ref(), IngestEvent::Packet(p) if p.keyframe) {
                return Sent::Dropped;
            }
            self.awaiting_keyframe = false;
        }
        match self.events.try_send(event) {
            Ok(()) => Sent::Queued,
            Err(TrySendError::Full(_)) => {
                if is_video && !self.awaiting_keyframe {
                    warn!(
                        queue = self.queue,
                        "queue full: dropping video until the next keyframe"
                    );
                    self.awaiting_keyframe = true;
                }
                Sent::Dropped
            }
            Err(TrySendError::Disconnected(_)) => Sent::Closed,
        }
    }

    /// Events waiting in the queue.
    pub fn depth(&self) -> usize {
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::MediaPacket;

    fn video(keyframe: bool) -> IngestEvent {
        IngestEvent::Packet(MediaPacket {
            kind: TrackKind::Video,
            dts_ms: 0,
            pts_ms: 0,
            keyframe,
            data: Bytes::new(),
        })
    }

    #[test]
    fn after_a_drop_video_waits_for_a_keyframe() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut sender = LossySender::new(tx, "test");
        assert_eq!(sender.send(video(true)), Sent::Queued);
        assert_eq!(sender.send(video(false)), Sent::Dropped, "full");
        rx.recv().unwrap();
        assert_eq!(
            sender.send(video(false)),
            Sent::Dropped,
            "references the dropped frame"
        );
        assert_eq!(sender.send(video(true)), Sent::Queued);
        rx.recv().unwrap();
        assert_eq!(sender.send(video(false)), Sent::Queued);
        drop(rx);
        assert_eq!(sender.send(video(true)), Sent::Closed);
    }
}
