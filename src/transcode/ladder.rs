//! The threads of one publish session's ladder: a decoder thread that decodes the source once
//! and hands every frame to one encoder thread per transcoded variant; each encoder thread
//! scales, encodes and muxes its variant. Created when a session starts, gone (threads joined,
//! codec contexts freed) when it ends.
//!
//! Audio (AAC, from the pipeline's audio stage, tagged with the route each variant takes) goes
//! through the decoder thread unchanged, so that each variant's muxer sees it in order with the
//! frames around it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing::{error, info, info_span, warn};

use super::decoder::{DecodedFrame, VideoDecoder};
use super::encoder::{EncoderSettings, VideoEncoder};
use super::keyframes::KeyframeClock;
use super::threads::ThreadPlan;
use super::{OutputSink, Variant};
use crate::hls::{MuxerInput, MuxerOutput, Segmenter, SessionStart};
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::media::{AvcDecoderConfig, MediaPacket};
use crate::queue::{LossySender, QueueItem, Sent};

/// Source events waiting for the decoder: several seconds of a typical stream.
const DECODER_QUEUE: usize = 512;
/// Decoded frames waiting for one encoder: two seconds at 30 fps, enough to ride out the
/// stalls of a busy machine (the queued frames are references to the decoder's pictures, shared
/// by every variant: at most ~85 MiB of 720p pictures, and only while encoders are behind). A
/// variant further behind than this drops frames instead of holding more in memory.
const ENCODER_QUEUE: usize = 60;
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
/// audio route (see [`crate::pipeline`]'s audio stage).
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

/// What an encoder thread receives.
enum EncoderInput {
    Frame {
        frame: DecodedFrame,
        epoch: u64,
        source_fps: f64,
    },
    Audio(MuxerInput),
}

impl Ladder {
    /// Start the decoder and encoder threads for `variants` (none of them passthrough, each
    /// with the audio route it takes), their muxers starting the session at `start`.
    pub fn start(
        variants: Vec<(Arc<Variant>, usize)>,
        segment_seconds: u32,
        start: SessionStart,
        sink: OutputSink,
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
                        EncoderThread::spawn(variant, audio_route, plan, Arc::clone(&sink))
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

struct EncoderThread {
    variant: Arc<Variant>,
    /// The audio route this variant carries.
    audio_route: usize,
    frames: Sender<EncoderInput>,
    handle: JoinHandle<()>,
}

impl EncoderThread {
    fn spawn(
        variant: Arc<Variant>,
        audio_route: usize,
        plan: EncoderPlan,
        sink: OutputSink,
    ) -> Option<Self> {
        let (frames, incoming) = crossbeam_channel::bounded(ENCODER_QUEUE);
        let thread_variant = Arc::clone(&variant);
        let spawned = std::thread::Builder::new()
            .name(format!("encoder-{}", variant.id))
            .spawn(move || {
                let _span = info_span!("encoder", variant = %thread_variant.config.name).entered();
                run_encoder(&thread_variant, &incoming, plan, &sink);
            });
        match spawned {
            Ok(handle) => Some(Self {
                variant,
                audio_route,
                frames,
                handle,
            }),
            Err(e) => {
                error!(variant = %variant.config.name, "cannot start an encoder thread: {e}");
                None
            }
        }
    }

    /// Never blocks: a full queue drops the input for this variant only, counted and reported
    /// (the machine cannot keep up with this variant: a lower `cpu_usage_level`, height or
    /// framerate would help).
    fn offer(&self, input: EncoderInput, warnings: &mut LogLimiter<String>) {
        if let Err(TrySendError::Full(_)) = self.frames.try_send(input) {
            self.variant
                .stats
                .frames_dropped
                .fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = warnings.allow(self.variant.id.clone(), Instant::now()) {
                warn!(
                    variant = %self.variant.config.name,
                    suppressed,
                    "encoder cannot keep up: dropping frames (try a lower cpu_usage_level, height or framerate)"
                );
            }
        }
        self.variant
            .stats
            .queue_depth
            .store(self.frames.len(), Ordering::Relaxed);
    }
}

/// Hands the decoder's output to every encoder thread.
struct FanOut {
    encoders: Vec<EncoderThread>,
    keyframes: KeyframeClock,
    /// One warning per kind every few seconds: "cannot keep up" per variant, damaged pictures.
    behind: LogLimiter<String>,
}

impl FanOut {
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
            for encoder in &self.encoders {
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
        for encoder in self.encoders.iter().filter(|e| e.audio_route == route) {
            encoder.offer(EncoderInput::Audio(input.clone()), &mut self.behind);
        }
    }

    /// End of input: each encoder drains its queue, flushes and ends.
    fn finish(self) {
        for encoder in self.encoders {
            drop(encoder.frames);
            let _ = encoder.handle.join();
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
    let mut out = FanOut {
        encoders,
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

/// What every encoder thread of a session is started with.
#[derive(Clone, Copy)]
struct EncoderPlan {
    segment_seconds: u32,
    /// Where the session begins on the output timeline.
    start: SessionStart,
    /// libx264 threads ([`ThreadPlan::encoder`]).
    threads: u32,
}

/// The encoder of the current source format (re-created when the source's size changes).
struct ActiveEncoder {
    encoder: VideoEncoder,
    source: (u32, u32, ffmpeg_next::format::Pixel),
    last_epoch: Option<u64>,
}

fn run_encoder(
    variant: &Variant,
    incoming: &Receiver<EncoderInput>,
    plan: EncoderPlan,
    sink: &OutputSink,
) {
    let mut segmenter = variant.lock_segmenter();
    segmenter.begin_session(plan.start);
    let mut active: Option<ActiveEncoder> = None;
    let mut warnings = LogLimiter::new(LOG_EVERY);
    let emit = |outputs: Vec<MuxerOutput>| {
        for output in outputs {
            sink(&variant.id, output);
        }
    };
    for input in incoming {
        variant
            .stats
            .queue_depth
            .store(incoming.len(), Ordering::Relaxed);
        match input {
            EncoderInput::Audio(input) => emit(segmenter.push(input)),
            EncoderInput::Frame {
                frame,
                epoch,
                source_fps,
            } => {
                let source = (
                    frame.frame.width(),
                    frame.frame.height(),
                    frame.frame.format(),
                );
                if active.as_ref().is_none_or(|a| a.source != source) {
                    if let Some(old) = active.take() {
                        finish_encoder(variant, old.encoder, &mut segmenter, &emit);
                        emit(segmenter.restart_output());
                    }
                    active = open_encoder(variant, source, source_fps, plan);
                    if let Some(new) = &active {
                        emit(segmenter.push(MuxerInput::VideoConfig(new.encoder.config().clone())));
                    }
                }
                let Some(current) = &mut active else { continue };
                let force_keyframe = current.last_epoch != Some(epoch);
                current.last_epoch = Some(epoch);
                match current.encoder.encode(&frame, force_keyframe) {
                    Ok(packets) => mux_video(variant, packets, &mut segmenter, &emit),
                    Err(e) => {
                        if let Some(suppressed) = warnings.allow("encode", Instant::now()) {
                            warn!(suppressed, "a frame could not be encoded: {e}");
                        }
                    }
                }
            }
        }
    }
    if let Some(last) = active.take() {
        finish_encoder(variant, last.encoder, &mut segmenter, &emit);
    }
    emit(segmenter.end_session());
    variant.stats.queue_depth.store(0, Ordering::Relaxed);
}

fn open_encoder(
    variant: &Variant,
    source: (u32, u32, ffmpeg_next::format::Pixel),
    source_fps: f64,
    plan: EncoderPlan,
) -> Option<ActiveEncoder> {
    let (source_width, source_height, format) = source;
    let settings = encoder_settings(variant, source_width, source_height, source_fps, plan);
    match VideoEncoder::new(&settings, source_width, source_height, format) {
        Ok(encoder) => {
            info!(
                width = settings.width,
                height = settings.height,
                kbps = settings.video_bitrate_kbps,
                preset = settings.preset,
                gop = settings.gop_frames,
                "encoding"
            );
            Some(ActiveEncoder {
                encoder,
                source,
                last_epoch: None,
            })
        }
        Err(e) => {
            error!(
                "cannot open the encoder: {e}; this variant gets no video until the source changes"
            );
            None
        }
    }
}

/// The variant's output for this source: its height (never above the source's), the width
/// that keeps the source's aspect ratio (even, as 4:2:0 needs), a GOP of one segment.
fn encoder_settings(
    variant: &Variant,
    source_width: u32,
    source_height: u32,
    source_fps: f64,
    plan: EncoderPlan,
) -> EncoderSettings {
    let config = &variant.config;
    let height = even(config.height.unwrap_or(source_height).min(source_height));
    let width = even(
        (f64::from(source_width) * f64::from(height) / f64::from(source_height.max(1))).round()
            as u32,
    );
    let fps = config
        .framerate
        .map_or(source_fps, |cap| cap.min(source_fps));
    EncoderSettings {
        width,
        height,
        video_bitrate_kbps: config.video_bitrate_kbps.unwrap_or(1000),
        max_framerate: config.framerate,
        preset: config.x264_preset(),
        gop_frames: ((fps * f64::from(plan.segment_seconds)).round() as u32).max(1),
        frame_rate_hint: fps,
        threads: plan.threads,
    }
}

fn even(value: u32) -> u32 {
    (value.max(2) + 1) & !1
}

fn finish_encoder(
    variant: &Variant,
    mut encoder: VideoEncoder,
    segmenter: &mut Segmenter,
    emit: &impl Fn(Vec<MuxerOutput>),
) {
    match encoder.flush() {
        Ok(packets) => mux_video(variant, packets, segmenter, emit),
        Err(e) => warn!("flushing the encoder failed: {e}"),
    }
    variant
        .stats
        .frames_dropped
        .fetch_add(encoder.dropped_by_cap(), Ordering::Relaxed);
}

fn mux_video(
    variant: &Variant,
    packets: Vec<super::encoder::EncodedVideo>,
    segmenter: &mut Segmenter,
    emit: &impl Fn(Vec<MuxerOutput>),
) {
    for packet in packets {
        variant.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        emit(segmenter.push(MuxerInput::Packet(packet.into_media_packet())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: EncoderPlan = EncoderPlan {
        segment_seconds: 2,
        start: SessionStart {
            ticks: 0,
            wall_clock: std::time::UNIX_EPOCH,
        },
        threads: 1,
    };

    #[test]
    fn sizes_follow_the_source_aspect_and_never_upscale() {
        let variant = |height: u32| {
            Variant::new(
                "1".into(),
                crate::config::VariantConfig {
                    name: "v".into(),
                    height: Some(height),
                    video_bitrate_kbps: Some(1000),
                    ..Default::default()
                },
                Segmenter::new(2),
            )
        };
        let settings = encoder_settings(&variant(480), 1280, 720, 30.0, PLAN);
        assert_eq!(
            (settings.width, settings.height, settings.gop_frames),
            (854, 480, 60)
        );
        let settings = encoder_settings(&variant(360), 1920, 1080, 60.0, PLAN);
        assert_eq!(
            (settings.width, settings.height, settings.gop_frames),
            (640, 360, 120)
        );
        let settings = encoder_settings(&variant(1080), 1280, 720, 30.0, PLAN);
        assert_eq!(
            (settings.width, settings.height),
            (1280, 720),
            "no upscaling"
        );
        let settings = encoder_settings(&variant(241), 1280, 720, 30.0, PLAN);
        assert_eq!(settings.height % 2, 0);
    }
}
