//! One publish session's thread: it splits the publisher's events into video and audio, runs
//! the audio stage ([`super::audio`]) and the passthrough variant's muxer, and hands video and
//! the transcoded variants' audio to the ladder's decoder thread ([`super::ladder`]). Until the
//! publisher goes away or the server stops; then every muxer ends its last segment.

use std::sync::Arc;

use crossbeam_channel::Receiver;

use super::audio::{self, AudioStage};
use super::ladder::Ladder;
use super::preview::{Preview, PreviewMaker};
use super::variant::{SessionOutput, Variant, VariantMuxer};
use crate::hls::{MuxerInput, SessionStart};
use crate::media::{IngestEvent, TrackKind};

/// One session of the ladder `variants` (in config order), their muxers writing to `output`:
/// the passthrough variant's muxer and the audio stage run here; transcoded variants run on the
/// ladder's threads.
pub(super) fn run(
    variants: &[Arc<Variant>],
    segment_seconds: u32,
    output: SessionOutput,
    preview: Arc<Preview>,
    incoming: &Receiver<IngestEvent>,
    stopped: &Receiver<()>,
) {
    // Every variant's next session starts at the same time on the output timeline.
    let start = SessionStart::now(variants.iter().map(|v| v.timeline_end()).max().unwrap_or(0));
    let mut audio = AudioStage::new(variants.iter().map(|v| v.config.audio_bitrate_kbps));
    let mut passthrough = variants
        .iter()
        .enumerate()
        .find(|(_, v)| v.config.passthrough)
        .map(|(index, variant)| Passthrough {
            muxer: VariantMuxer::begin(variant, start, output.clone()),
            audio_route: audio.route_of(index),
        });
    let transcoded: Vec<(Arc<Variant>, usize)> = variants
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.config.passthrough)
        .map(|(index, v)| (Arc::clone(v), audio.route_of(index)))
        .collect();
    let has_passthrough = passthrough.is_some();
    let mut ladder = (!transcoded.is_empty())
        .then(|| Ladder::start(transcoded, segment_seconds, start, output, has_passthrough));
    let mut preview = PreviewMaker::start(preview);
    loop {
        crossbeam_channel::select! {
            recv(incoming) -> event => match event {
                Ok(IngestEvent::VideoConfig(config)) => {
                    preview.video_config(&config);
                    if let Some(ladder) = &mut ladder {
                        ladder.send_video_config(&config);
                    }
                    if let Some(passthrough) = &mut passthrough {
                        passthrough.muxer.push(MuxerInput::VideoConfig(config));
                    }
                }
                Ok(IngestEvent::Packet(packet)) if packet.kind == TrackKind::Video => {
                    preview.video(&packet);
                    if let Some(ladder) = &mut ladder {
                        ladder.send_video(&packet);
                    }
                    if let Some(passthrough) = &mut passthrough {
                        passthrough.muxer.push(MuxerInput::Packet(packet));
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
    if let Some(passthrough) = passthrough {
        passthrough.muxer.end_session();
    }
    if let Some(ladder) = ladder {
        ladder.finish();
    }
    preview.finish();
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
            passthrough.muxer.push(input);
        }
    }
}

/// The passthrough variant, run by the session thread for the whole session.
struct Passthrough<'a> {
    muxer: VariantMuxer<'a>,
    /// The audio route it carries.
    audio_route: usize,
}
