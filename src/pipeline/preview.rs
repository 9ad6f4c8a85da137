//! The stream's preview image (`/thumbnail.jpg`): a JPEG of the source's picture, refreshed
//! every [`EVERY_MS`] while live and kept after the stream ends (the page's offline poster).
//!
//! The session thread hands a keyframe to a small thread of its own at most every
//! [`EVERY_MS`] of stream time, without ever waiting for it (a busy preview thread misses a
//! keyframe, nothing else). That thread decodes the keyframe alone (an IDR needs no other
//! picture; the decoder is flushed after each) and encodes it as a JPEG
//! ([`crate::transcode::jpeg`]): a few milliseconds of one core every few seconds, also when
//! the ladder decodes nothing (a passthrough-only ladder).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing::{error, warn};

use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::media::{AvcDecoderConfig, MediaPacket};
use crate::transcode::decoder::VideoDecoder;
use crate::transcode::error::TranscodeError;
use crate::transcode::jpeg;

/// A new preview at most this often, in stream time (ms).
pub const EVERY_MS: i64 = 5_000;

/// The latest preview image.
#[derive(Debug, Clone)]
pub struct PreviewImage {
    pub jpeg: Bytes,
    pub width: u32,
    pub height: u32,
    pub taken_at: SystemTime,
}

/// Where the preview thread leaves its image and the web side reads it.
#[derive(Default)]
pub struct Preview {
    latest: Mutex<Option<PreviewImage>>,
}

impl Preview {
    pub fn latest(&self) -> Option<PreviewImage> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, image: PreviewImage) {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(image);
    }
}

enum PreviewInput {
    Config(AvcDecoderConfig),
    Keyframe(MediaPacket),
}

/// The session thread's side: which keyframes to hand on, and the thread.
pub(super) struct PreviewMaker {
    input: Option<Sender<PreviewInput>>,
    thread: Option<JoinHandle<()>>,
    last_pts_ms: Option<i64>,
}

impl PreviewMaker {
    pub(super) fn start(preview: Arc<Preview>) -> Self {
        // One waiting at most: a keyframe that finds the thread busy is skipped.
        let (input, incoming) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("preview".into())
            .spawn(move || run(&incoming, &preview));
        match thread {
            Ok(thread) => Self {
                input: Some(input),
                thread: Some(thread),
                last_pts_ms: None,
            },
            Err(e) => {
                error!("cannot start the preview thread: {e}; no preview image this session");
                Self {
                    input: None,
                    thread: None,
                    last_pts_ms: None,
                }
            }
        }
    }

    pub(super) fn video_config(&mut self, config: &AvcDecoderConfig) {
        if let Some(input) = &self.input {
            // The configuration must arrive: wait for the thread to take it.
            let _ = input.send(PreviewInput::Config(config.clone()));
        }
        self.last_pts_ms = None;
    }

    pub(super) fn video(&mut self, packet: &MediaPacket) {
        let due = self
            .last_pts_ms
            .is_none_or(|last| packet.pts_ms - last >= EVERY_MS || packet.pts_ms < last);
        if !packet.keyframe || !due {
            return;
        }
        let Some(input) = &self.input else {
            return;
        };
        match input.try_send(PreviewInput::Keyframe(packet.clone())) {
            Ok(()) => self.last_pts_ms = Some(packet.pts_ms),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
        }
    }

    /// End of the session: the thread finishes what it has and ends.
    pub(super) fn finish(mut self) {
        drop(self.input.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(incoming: &Receiver<PreviewInput>, preview: &Preview) {
    let mut decoder: Option<VideoDecoder> = None;
    let mut warnings = LogLimiter::new(LOG_EVERY);
    for input in incoming {
        match input {
            PreviewInput::Config(config) => {
                decoder = match VideoDecoder::new(&config, 1) {
                    Ok(decoder) => Some(decoder),
                    Err(e) => {
                        warn!("no preview image: cannot open a decoder for it: {e}");
                        None
                    }
                }
            }
            PreviewInput::Keyframe(packet) => {
                let Some(decoder) = &mut decoder else {
                    continue;
                };
                if let Err(e) = make(decoder, &packet, preview) {
                    if let Some(suppressed) = warnings.allow("preview", Instant::now()) {
                        warn!(suppressed, "no new preview image: {e}");
                    }
                }
            }
        }
    }
}

fn make(
    decoder: &mut VideoDecoder,
    keyframe: &MediaPacket,
    preview: &Preview,
) -> Result<(), TranscodeError> {
    let mut frames = decoder.decode(keyframe)?;
    // The keyframe alone: flushing hands it out now and readies the decoder for the next.
    frames.extend(decoder.flush());
    let Some(picture) = frames.first() else {
        return Ok(());
    };
    let jpeg = jpeg::encode(picture)?;
    let (width, height) = jpeg::preview_size(picture.frame.width(), picture.frame.height());
    preview.set(PreviewImage {
        jpeg: Bytes::from(jpeg),
        width,
        height,
        taken_at: SystemTime::now(),
    });
    Ok(())
}
