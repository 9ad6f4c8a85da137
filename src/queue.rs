//! A channel sender that never blocks: when the queue is full the item is dropped (the caller
//! counts it), and video is then skipped until the next keyframe so that the receiver never gets
//! a frame whose reference it lost. Used between ingest and a session thread, and between a
//! session thread and its ladder's decoder thread; each side says what its items are
//! ([`QueueItem`]).

use crossbeam_channel::{Sender, TrySendError};
use tracing::warn;

/// What the queue needs to know about an item to drop it without breaking the video.
pub trait QueueItem {
    /// A video frame: after a drop, video waits for a keyframe.
    fn is_video(&self) -> bool;
    /// A video frame that refers to no earlier one (only asked of video).
    fn is_keyframe(&self) -> bool;
}

pub struct LossySender<T> {
    items: Sender<T>,
    awaiting_keyframe: bool,
    /// Says where the queue is, in the warning.
    queue: &'static str,
}

/// What happened to one item.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// Dropped: the queue was full, or video is waiting for a keyframe after a drop.
    Dropped,
    /// The receiver is gone (shutting down).
    Closed,
}

impl<T: QueueItem> LossySender<T> {
    pub fn new(items: Sender<T>, queue: &'static str) -> Self {
        Self {
            items,
            awaiting_keyframe: false,
            queue,
        }
    }

    pub fn send(&mut self, item: T) -> Sent {
        let is_video = item.is_video();
        if is_video && self.awaiting_keyframe {
            if !item.is_keyframe() {
                return Sent::Dropped;
            }
            self.awaiting_keyframe = false;
        }
        match self.items.try_send(item) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A video frame.
    struct Video {
        keyframe: bool,
    }

    impl QueueItem for Video {
        fn is_video(&self) -> bool {
            true
        }
        fn is_keyframe(&self) -> bool {
            self.keyframe
        }
    }

    fn video(keyframe: bool) -> Video {
        Video { keyframe }
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
