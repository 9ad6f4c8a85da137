//! The threads of one publish session's ladder: a decoder thread that decodes the source once
//! ([`crate::transcode::decoder`]) and hands every picture to one encoder thread per transcoded
//! variant ([`super::encoder_thread`]), numbered with its keyframe epoch. Created when a
//! session starts, gone (threads joined, codec contexts freed) when it ends.
//!
//! Audio (AAC, from the audio stage, tagged with the route each variant takes) goes through the
//! decoder thread unchanged, so that each variant's muxer sees it in order with the frames
//! around it.

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
    /// with the audio route it takes), their muxers starting the session at `start`.
    pub fn start(
        variants: Vec<(Arc<Variant>, usize)>,
        segment_seconds: u32,
        start: SessionStart,
        output: SessionOutput,
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
                        EncoderThread::spawn(variant, audio_route, plan, output.clone())
                    })
                    .collect();
                run_decoder(&incoming, encoders, segment_seconds, threads.decoder);
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

/// The encoder threads of the ladder, as the decoder thread hands them its output.
struct Encoders {
    threads: Vec<EncoderThread>,
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
            for encoder in &self.threads {
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
        for encoder in self.threads.iter().filter(|e| e.audio_route() == route) {
            encoder.offer(EncoderInput::Audio(input.clone()), &mut self.behind);
        }
    }

    /// End of input: each encoder drains its queue, flushes and ends.
    fn finish(self) {
        for encoder in self.threads {
            encoder.finish();
        }
    }
}

fn run_decoder(
    incoming: &Receiver<LadderInput>,
    encoders: Vec<EncoderThread>,
    segment_seconds: u32,
    threads: u32,
) {
    let mut decoder: Option<(VideoDecoder, f64)> = None;
    let mut out = Encoders {
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
