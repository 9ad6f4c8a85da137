//! The thread of one transcoded variant: decoded pictures in (shared with the other variants),
//! scaled and encoded ([`crate::transcode::encoder`]), muxed with the audio of the variant's
//! route into its [`VariantMuxer`]. An IDR is forced on the first frame of every keyframe epoch
//! the decoder thread numbered, so the variants' segments line up; a change of the source's
//! size or pixel format opens a new encoder behind a discontinuity.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing::{error, info, info_span, warn};

use super::variant::{SessionOutput, Variant, VariantMuxer};
use crate::hls::{MuxerInput, SessionStart};
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::transcode::decoder::DecodedFrame;
use crate::transcode::encoder::{EncodedVideo, EncoderSettings, VideoEncoder};

/// Decoded frames waiting for one encoder: two seconds at 30 fps, enough to ride out the
/// stalls of a busy machine (the queued frames are references to the decoder's pictures, shared
/// by every variant: at most ~85 MiB of 720p pictures, and only while encoders are behind). A
/// variant further behind than this drops frames instead of holding more in memory.
const ENCODER_QUEUE: usize = 60;
/// What an encoder thread receives.
pub(super) enum EncoderInput {
    Frame {
        frame: DecodedFrame,
        epoch: u64,
        source_fps: f64,
    },
    Audio(MuxerInput),
}

/// A running encoder thread, as the decoder thread sees it.
pub(super) struct EncoderThread {
    variant: Arc<Variant>,
    /// The audio route this variant carries.
    audio_route: usize,
    frames: Sender<EncoderInput>,
    handle: JoinHandle<()>,
}

impl EncoderThread {
    pub(super) fn spawn(
        variant: Arc<Variant>,
        audio_route: usize,
        plan: EncoderPlan,
        output: SessionOutput,
    ) -> Option<Self> {
        let (frames, incoming) = crossbeam_channel::bounded(ENCODER_QUEUE);
        let thread_variant = Arc::clone(&variant);
        let spawned = std::thread::Builder::new()
            .name(format!("encoder-{}", variant.id))
            .spawn(move || {
                let _span = info_span!("encoder", variant = %thread_variant.config.name).entered();
                run_encoder(&thread_variant, &incoming, plan, output);
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
    pub(super) fn offer(&self, input: EncoderInput, warnings: &mut LogLimiter<String>) {
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

    pub(super) fn variant(&self) -> &Variant {
        &self.variant
    }

    /// The audio route this variant carries.
    pub(super) fn audio_route(&self) -> usize {
        self.audio_route
    }

    /// End of input: the thread drains its queue, flushes and ends; returns when it has.
    pub(super) fn finish(self) {
        drop(self.frames);
        let _ = self.handle.join();
    }
}

/// What every encoder thread of a session is started with.
#[derive(Clone, Copy)]
pub(super) struct EncoderPlan {
    pub(super) segment_seconds: u32,
    /// Where the session begins on the output timeline.
    pub(super) start: SessionStart,
    /// libx264 threads ([`crate::transcode::threads::ThreadPlan::encoder`]).
    pub(super) threads: u32,
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
    output: SessionOutput,
) {
    let mut muxer = VariantMuxer::begin(variant, plan.start, output);
    let mut active: Option<ActiveEncoder> = None;
    let mut warnings = LogLimiter::new(LOG_EVERY);
    for input in incoming {
        variant
            .stats
            .queue_depth
            .store(incoming.len(), Ordering::Relaxed);
        match input {
            EncoderInput::Audio(input) => muxer.push(input),
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
                        finish_encoder(old.encoder, &mut muxer);
                        muxer.restart_output();
                    }
                    active = open_encoder(variant, source, source_fps, plan);
                    if let Some(new) = &active {
                        muxer.push(MuxerInput::VideoConfig(new.encoder.config().clone()));
                    }
                }
                let Some(current) = &mut active else { continue };
                let force_keyframe = current.last_epoch != Some(epoch);
                current.last_epoch = Some(epoch);
                match current.encoder.encode(&frame, force_keyframe) {
                    Ok(packets) => mux_video(packets, &mut muxer),
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
        finish_encoder(last.encoder, &mut muxer);
    }
    muxer.end_session();
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

fn finish_encoder(mut encoder: VideoEncoder, muxer: &mut VariantMuxer<'_>) {
    match encoder.flush() {
        Ok(packets) => mux_video(packets, muxer),
        Err(e) => warn!("flushing the encoder failed: {e}"),
    }
    muxer
        .variant()
        .stats
        .frames_dropped
        .fetch_add(encoder.dropped_by_cap(), Ordering::Relaxed);
}

fn mux_video(packets: Vec<EncodedVideo>, muxer: &mut VariantMuxer<'_>) {
    for packet in packets {
        muxer.push(MuxerInput::Packet(packet.into_media_packet()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::Segmenter;

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
                std::sync::Arc::new(std::sync::Mutex::new(Segmenter::new(2))),
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
