//! The threads of one publish session's ladder: a decoder thread that decodes the source once
//! ([`crate::transcode::decoder`]) and hands every picture to one encoder thread per transcoded
//! variant ([`super::encoder_thread`]), numbered with its keyframe epoch. Created when a
//! session starts, gone (threads joined, codec contexts freed) when it ends.
//!
//! Audio (AAC, from the audio stage, tagged with the route each variant takes) goes through the
//! decoder thread unchanged, so that each variant's muxer sees it in order with the frames
//! around it.
//!
//! When the session's video starts, the renditions at or above the source's height are skipped
//! ([`renditions_to_skip`]): the encoder never scales up, so each would be a second copy of the
//! source's size. A skipped variant's thread gets nothing, the store stops listing it, and
//! `/api/status` says why.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Receiver;
use tracing::{error, info, info_span, warn};

use super::encoder_thread::{EncoderInput, EncoderPlan, EncoderThread};
use super::variant::{SessionOutput, Variant};
use crate::hls::{MuxerInput, SessionStart};
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::media::{AvcDecoderConfig, MediaPacket};
use crate::queue::{LossySender, QueueItem, Sent};
use crate::transcode::decoder::{DecodedFrame, VideoDecoder};
use crate::transcode::keyframes::KeyframeClock;
use crate::transcode::threads::ThreadPlan;

/// Source events waiting for the decoder: several seconds of a typical stream.
const DECODER_QUEUE: usize = 512;
/// Frame rate assumed when the source's SPS does not say.
const DEFAULT_FRAME_RATE: f64 = 30.0;

/// A running ladder; dropping it without [`Ladder::finish`] also ends it (without waiting).
pub struct Ladder {
    input: LossySender<LadderInput>,
    decoder: Option<JoinHandle<()>>,
    /// The audio routes some encoder of this ladder takes.
    audio_routes: Vec<usize>,
    dropped: u64,
}

/// What the decoder thread receives: the source's video, or audio for the encoders of one
/// audio route (see [`super::audio`]).
enum LadderInput {
    VideoConfig(AvcDecoderConfig),
    Video(MediaPacket),
    Audio { route: usize, input: MuxerInput },
}

impl QueueItem for LadderInput {
    fn is_video(&self) -> bool {
        matches!(self, LadderInput::Video(_))
    }
    fn is_keyframe(&self) -> bool {
        matches!(self, LadderInput::Video(packet) if packet.keyframe)
    }
}

impl Ladder {
    /// Start the decoder and encoder threads for `variants` (none of them passthrough, each
    /// with the audio route it takes), their muxers starting the session at `start`;
    /// `has_passthrough`: the session also serves the source as it comes.
    pub fn start(
        variants: Vec<(Arc<Variant>, usize)>,
        segment_seconds: u32,
        start: SessionStart,
        output: SessionOutput,
        has_passthrough: bool,
    ) -> Self {
        let (events, incoming) = crossbeam_channel::bounded(DECODER_QUEUE);
        let threads = ThreadPlan::here(variants.len());
        info!(
            renditions = variants.len(),
            decoder_threads = threads.decoder,
            x264_threads = threads.encoder,
            "starting the ladder"
        );
        let plan = EncoderPlan {
            segment_seconds,
            start,
            threads: threads.encoder,
        };
        let audio_routes = variants.iter().map(|(_, route)| *route).collect();
        let decoder = std::thread::Builder::new()
            .name("decoder".into())
            .spawn(move || {
                let _span = info_span!("decoder").entered();
                let encoders = variants
                    .into_iter()
                    .filter_map(|(variant, audio_route)| {
                        variant.set_skipped(None);
                        EncoderThread::spawn(variant, audio_route, plan, output.clone())
                    })
                    .collect();
                let sizing = Sizing {
                    has_passthrough,
                    output,
                    decided: false,
                };
                run_decoder(
                    &incoming,
                    encoders,
                    sizing,
                    segment_seconds,
                    threads.decoder,
                );
            });
        let decoder = match decoder {
            Ok(handle) => Some(handle),
            Err(e) => {
                error!("cannot start the decoder thread: {e}; transcoded variants are off for this session");
                None
            }
        };
        Self {
            input: LossySender::new(events, "pipeline → decoder"),
            decoder,
            audio_routes,
            dropped: 0,
        }
    }

    /// Hand the source's H.264 sequence header to the decoder thread; never blocks.
    pub fn send_video_config(&mut self, config: &AvcDecoderConfig) {
        self.send(LadderInput::VideoConfig(config.clone()));
    }

    /// Hand one source video packet to the decoder thread; never blocks.
    pub fn send_video(&mut self, packet: &MediaPacket) {
        self.send(LadderInput::Video(packet.clone()));
    }

    /// Hand audio to the encoders of `route` (if the ladder has any); never blocks.
    pub fn send_audio(&mut self, route: usize, input: &MuxerInput) {
        if self.audio_routes.contains(&route) {
            self.send(LadderInput::Audio {
                route,
                input: input.clone(),
            });
        }
    }

    fn send(&mut self, input: LadderInput) {
        if self.input.send(input) == Sent::Dropped {
            self.dropped += 1;
        }
    }

    /// End of the session: the threads drain what is queued, flush the codecs and the last
    /// segments, and end; returns when they have.
    pub fn finish(self) {
        let Ladder {
            input,
            decoder,
            dropped,
            ..
        } = self;
        drop(input);
        if dropped > 0 {
            warn!(
                dropped,
                "the decoder fell behind: source packets were dropped this session"
            );
        }
        if let Some(decoder) = decoder {
            let _ = decoder.join();
        }
    }
}

/// Deciding, once per session, which renditions the source is too small for.
struct Sizing {
    has_passthrough: bool,
    output: SessionOutput,
    decided: bool,
}

/// The encoder threads of the ladder, as the decoder thread hands them its output.
struct Encoders {
    threads: Vec<EncoderThread>,
    /// Per thread: skipped this session (see the module docs).
    skipped: Vec<bool>,
    sizing: Sizing,
    keyframes: KeyframeClock,
    /// One warning per kind every few seconds: "cannot keep up" per variant, damaged pictures.
    behind: LogLimiter<String>,
}

impl Encoders {
    fn frames(&mut self, frames: Vec<DecodedFrame>, source_fps: f64) {
        for frame in frames {
            if frame.is_damaged() {
                if let Some(suppressed) = self.behind.allow("damaged".into(), Instant::now()) {
                    warn!(
                        suppressed,
                        "the source's video is damaged: the decoder concealed errors in a picture"
                    );
                }
            }
            let epoch = self.keyframes.epoch(frame.pts_ms);
            for encoder in encoding(&self.threads, &self.skipped) {
                // A new reference to the same picture: no pixels are copied.
                match frame.try_clone() {
                    Ok(frame) => encoder.offer(
                        EncoderInput::Frame {
                            frame,
                            epoch,
                            source_fps,
                        },
                        &mut self.behind,
                    ),
                    Err(e) => warn!("a decoded frame could not be shared: {e}"),
                }
            }
        }
    }

    fn audio(&mut self, route: usize, input: &MuxerInput) {
        for encoder in encoding(&self.threads, &self.skipped).filter(|e| e.audio_route() == route) {
            encoder.offer(EncoderInput::Audio(input.clone()), &mut self.behind);
        }
    }

    /// At the session's first video: skips the renditions a `width`x`height` source is too
    /// small for.
    fn size_for(&mut self, width: u32, height: u32) {
        if std::mem::replace(&mut self.sizing.decided, true) {
            return;
        }
        let heights: Vec<Option<u32>> = self
            .threads
            .iter()
            .map(|t| t.variant().config.height)
            .collect();
        self.skipped = renditions_to_skip(&heights, height, self.sizing.has_passthrough);
        for (thread, _) in self.threads.iter().zip(&self.skipped).filter(|(_, s)| **s) {
            let variant = thread.variant();
            let why = format!(
                "skipped: the source is {width}x{height}, so this {}p rendition would be no smaller",
                variant.config.height.unwrap_or_default()
            );
            info!(variant = %variant.config.name, "{why}");
            variant.set_skipped(Some(why));
            self.sizing.output.withdraw(&variant.id);
        }
    }

    /// End of input: each encoder drains its queue, flushes and ends.
    fn finish(self) {
        for encoder in self.threads {
            encoder.finish();
        }
    }
}

/// The threads not skipped.
fn encoding<'a>(
    threads: &'a [EncoderThread],
    skipped: &'a [bool],
) -> impl Iterator<Item = &'a EncoderThread> {
    threads
        .iter()
        .zip(skipped)
        .filter(|(_, skipped)| !**skipped)
        .map(|(thread, _)| thread)
}

/// Per rendition (their target heights; `None` keeps the source's): whether a source
/// `source_height` high makes it pointless. Those at or above it are, since the encoder does
/// not scale up; without a passthrough variant the lowest of them is kept, so the stream still
/// has the source's size.
fn renditions_to_skip(
    heights: &[Option<u32>],
    source_height: u32,
    has_passthrough: bool,
) -> Vec<bool> {
    let too_big = |height: &Option<u32>| height.is_some_and(|h| h >= source_height);
    let kept = (!has_passthrough)
        .then(|| {
            heights
                .iter()
                .enumerate()
                .filter(|(_, h)| too_big(h))
                .min_by_key(|(_, h)| **h)
                .map(|(index, _)| index)
        })
        .flatten();
    heights
        .iter()
        .enumerate()
        .map(|(index, height)| too_big(height) && Some(index) != kept)
        .collect()
}

fn run_decoder(
    incoming: &Receiver<LadderInput>,
    encoders: Vec<EncoderThread>,
    sizing: Sizing,
    segment_seconds: u32,
    threads: u32,
) {
    let mut decoder: Option<(VideoDecoder, f64)> = None;
    let mut out = Encoders {
        skipped: vec![false; encoders.len()],
        sizing,
        threads: encoders,
        keyframes: KeyframeClock::new(segment_seconds),
        behind: LogLimiter::new(LOG_EVERY),
    };
    let mut warnings = LogLimiter::new(LOG_EVERY);
    for input in incoming {
        match input {
            LadderInput::Audio { route, input } => out.audio(route, &input),
            LadderInput::VideoConfig(config) => {
                if let Some((mut old, fps)) = decoder.take() {
                    out.frames(old.flush(), fps);
                }
                out.size_for(config.sps.width, config.sps.height);
                decoder = open_decoder(&config, threads);
            }
            LadderInput::Video(packet) => {
                let Some((video, fps)) = &mut decoder else {
                    continue;
                };
                match video.decode(&packet) {
                    Ok(frames) => out.frames(frames, *fps),
                    Err(e) => {
                        if let Some(suppressed) = warnings.allow("decode", Instant::now()) {
                            warn!(
                                suppressed,
                                "skipping a video packet the decoder refused: {e}"
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some((mut video, fps)) = decoder.take() {
        out.frames(video.flush(), fps);
    }
    out.finish();
}

fn open_decoder(config: &AvcDecoderConfig, threads: u32) -> Option<(VideoDecoder, f64)> {
    let fps = config
        .sps
        .frame_rate
        .filter(|fps| fps.is_finite() && *fps > 0.0)
        .unwrap_or(DEFAULT_FRAME_RATE);
    match VideoDecoder::new(config, threads) {
        Ok(decoder) => {
            info!(
                width = config.sps.width,
                height = config.sps.height,
                fps,
                "decoding the source"
            );
            Some((decoder, fps))
        }
        Err(e) => {
            error!("cannot open the H.264 decoder: {e}; transcoded variants get no video until the next sequence header");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::renditions_to_skip;

    #[test]
    fn renditions_the_source_is_too_small_for_are_skipped() {
        // OBS sending 640x360 to the default ladder (source + 480p): the 480p copy is skipped.
        assert_eq!(renditions_to_skip(&[Some(480)], 360, true), [true]);
        assert_eq!(renditions_to_skip(&[Some(480)], 720, true), [false]);
        // At the source's height: a second copy of its size.
        assert_eq!(
            renditions_to_skip(&[Some(720), Some(360)], 720, true),
            [true, false]
        );
        // No height: the source's size at another bitrate, which is the point.
        assert_eq!(
            renditions_to_skip(&[None, Some(1080)], 720, true),
            [false, true]
        );
        // No passthrough: the lowest rendition at or above the source stays, at its size.
        assert_eq!(
            renditions_to_skip(&[Some(1080), Some(720), Some(360)], 480, false),
            [true, false, false]
        );
        assert_eq!(
            renditions_to_skip(&[Some(1080), Some(720)], 240, false),
            [true, false]
        );
    }
}
