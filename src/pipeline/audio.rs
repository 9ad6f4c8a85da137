//! The audio each variant carries: the source's AAC as it is, or AAC encoded from the source
//! (a source in another codec, or a variant with its own `audio_bitrate_kbps`).
//!
//! Variants that want the same audio share a *route*: one per distinct `audio_bitrate_kbps`
//! in the ladder (absent = "as the source"), so each bitrate is encoded once whatever the number
//! of variants that carry it. The stage runs on the session thread, in the order events arrive:
//! audio codecs cost about a hundredth of what the video ones do.
//!
//! ```text
//! AudioConfig (AAC)        ─▶ route "as the source": the same AudioConfig and packets
//!                          ─▶ route "N kbps": AudioTranscoder(AAC → AAC at N kbps)
//! OtherAudioConfig (MP3…)  ─▶ every route: AudioTranscoder(… → AAC at N kbps, or 128 kbps)
//! ```
//!
//! What leaves the stage is a [`MuxerInput`], which can carry AAC only: no muxer sees another
//! codec.

use std::time::Instant;

use tracing::{error, info, warn};

use crate::config::DEFAULT_AUDIO_BITRATE_KBPS;
use crate::hls::MuxerInput;
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::media::{AudioSource, IngestEvent, MediaPacket, TrackKind};
use crate::transcode::audio::AudioTranscoder;

/// AAC for the muxers of the variants of one route (an index into the stage's routes).
pub type Routed = (usize, MuxerInput);

pub struct AudioStage {
    routes: Vec<Route>,
    /// The route of each variant, in ladder order.
    variant_routes: Vec<usize>,
    source: Option<AudioSource>,
    warnings: LogLimiter<&'static str>,
}

struct Route {
    /// `None`: the source's AAC as it is; `Some`: AAC encoded at this bitrate.
    bitrate_kbps: Option<u32>,
    transcoder: Option<AudioTranscoder>,
}

impl AudioStage {
    /// A stage for a ladder whose variants want these audio bitrates (in ladder order).
    pub fn new(variant_bitrates: impl IntoIterator<Item = Option<u32>>) -> Self {
        let mut routes: Vec<Route> = Vec::new();
        let mut variant_routes = Vec::new();
        for bitrate_kbps in variant_bitrates {
            let route = match routes.iter().position(|r| r.bitrate_kbps == bitrate_kbps) {
                Some(existing) => existing,
                None => {
                    routes.push(Route {
                        bitrate_kbps,
                        transcoder: None,
                    });
                    routes.len() - 1
                }
            };
            variant_routes.push(route);
        }
        AudioStage {
            routes,
            variant_routes,
            source: None,
            warnings: LogLimiter::new(LOG_EVERY),
        }
    }

    /// The route of the variant at `index` in the ladder.
    pub fn route_of(&self, variant_index: usize) -> usize {
        self.variant_routes.get(variant_index).copied().unwrap_or(0)
    }

    /// One audio event from the source in; what each route's variants get out, in order.
    pub fn push(&mut self, event: IngestEvent) -> Vec<Routed> {
        let mut out = Vec::new();
        match event {
            IngestEvent::AudioConfig(config) => {
                let source = AudioSource::Aac(config);
                self.source = Some(source.clone());
                for route in 0..self.routes.len() {
                    self.reopen(route, &source, &mut out);
                }
            }
            IngestEvent::OtherAudioConfig(source) => {
                self.source = Some(source.clone());
                for route in 0..self.routes.len() {
                    self.reopen(route, &source, &mut out);
                }
            }
            IngestEvent::Packet(packet) if packet.kind == TrackKind::Audio => {
                for route in 0..self.routes.len() {
                    self.packet(route, &packet, &mut out);
                }
            }
            IngestEvent::Packet(_) | IngestEvent::VideoConfig(_) => {}
        }
        out
    }

    /// End of the session: what the encoders still hold.
    pub fn finish(&mut self) -> Vec<Routed> {
        let mut out = Vec::new();
        for route in 0..self.routes.len() {
            self.flush(route, &mut out);
        }
        out
    }

    /// A new source description: the route's encoder (if any) ends, and the route starts
    /// over with a config for its variants' muxers.
    fn reopen(&mut self, route: usize, source: &AudioSource, out: &mut Vec<Routed>) {
        self.flush(route, out);
        let bitrate = match (self.routes[route].bitrate_kbps, source) {
            (None, AudioSource::Aac(config)) => {
                out.push((route, MuxerInput::AudioConfig(config.clone())));
                return;
            }
            (Some(kbps), _) => kbps,
            (None, _) => DEFAULT_AUDIO_BITRATE_KBPS,
        };
        match AudioTranscoder::new(source, bitrate) {
            Ok(transcoder) => {
                info!(
                    source = %source.describe(),
                    kbps = bitrate,
                    "encoding the audio to AAC"
                );
                out.push((route, MuxerInput::AudioConfig(transcoder.config().clone())));
                self.routes[route].transcoder = Some(transcoder);
            }
            Err(e) => match source {
                AudioSource::Aac(config) => {
                    error!("cannot re-encode the audio at {bitrate} kbps: {e}; passing the source's AAC through instead");
                    out.push((route, MuxerInput::AudioConfig(config.clone())));
                }
                _ => error!(
                    source = %source.describe(),
                    "cannot encode the audio to AAC: {e}; the stream goes on without audio"
                ),
            },
        }
    }

    fn packet(&mut self, route: usize, packet: &MediaPacket, out: &mut Vec<Routed>) {
        let Some(transcoder) = &mut self.routes[route].transcoder else {
            // No encoder: AAC goes through as it is; anything else has nowhere to go.
            if matches!(self.source, Some(AudioSource::Aac(_))) {
                out.push((route, MuxerInput::Packet(packet.clone())));
            }
            return;
        };
        match transcoder.transcode(&packet.data, packet.pts_ms) {
            Ok(packets) => emit(route, packets, out),
            Err(e) => {
                if let Some(suppressed) = self.warnings.allow("transcode", Instant::now()) {
                    warn!(
                        suppressed,
                        "skipping an audio frame the decoder refused: {e}"
                    );
                }
            }
        }
    }

    fn flush(&mut self, route: usize, out: &mut Vec<Routed>) {
        let Some(mut transcoder) = self.routes[route].transcoder.take() else {
            return;
        };
        match transcoder.flush() {
            Ok(packets) => emit(route, packets, out),
            Err(e) => warn!("the end of the audio could not be encoded: {e}"),
        }
    }
}

fn emit(route: usize, packets: Vec<MediaPacket>, out: &mut Vec<Routed>) {
    out.extend(packets.into_iter().map(|p| (route, MuxerInput::Packet(p))));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::flv::FLV_PCM_LE;
    use crate::media::AudioSpecificConfig;

    const RATE: u32 = 44100;

    fn pcm_source() -> AudioSource {
        AudioSource::Flv {
            sound_format: FLV_PCM_LE,
            sample_rate: RATE,
            channels: 2,
            sample_size_bits: 16,
        }
    }

    /// `count` tags of 1024 stereo s16le samples of a 440 Hz tone, as an FLV PCM publisher
    /// sends them (the data after the tag header), with their millisecond timestamps.
    fn pcm_tags(count: usize) -> Vec<MediaPacket> {
        (0..count)
            .map(|tag| {
                let mut data = Vec::with_capacity(4096);
                for n in tag * 1024..(tag + 1) * 1024 {
                    let t = n as f64 / f64::from(RATE);
                    let v = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
                    data.extend_from_slice(&v.to_le_bytes());
                    data.extend_from_slice(&v.to_le_bytes());
                }
                let ms = (tag * 1024 * 1000 / RATE as usize) as i64;
                audio_packet(ms, data.into())
            })
            .collect()
    }

    fn audio_packet(ms: i64, data: Bytes) -> MediaPacket {
        MediaPacket {
            kind: TrackKind::Audio,
            dts_ms: ms,
            pts_ms: ms,
            keyframe: true,
            data,
        }
    }

    /// An AAC source as a publisher would send it: its config and frames.
    fn aac_stream(tags: usize) -> (AudioSpecificConfig, Vec<MediaPacket>) {
        let mut encoder = AudioTranscoder::new(&pcm_source(), 128).expect("AAC encoder opens");
        let mut frames = Vec::new();
        for tag in pcm_tags(tags) {
            frames.extend(encoder.transcode(&tag.data, tag.pts_ms).expect("encodes"));
        }
        frames.extend(encoder.flush().expect("flushes"));
        (encoder.config().clone(), frames)
    }

    fn configs(out: &[Routed], route: usize) -> Vec<AudioSpecificConfig> {
        out.iter()
            .filter_map(|(r, event)| match event {
                MuxerInput::AudioConfig(config) if *r == route => Some(config.clone()),
                _ => None,
            })
            .collect()
    }

    fn packets(out: &[Routed], route: usize) -> Vec<MediaPacket> {
        out.iter()
            .filter_map(|(r, event)| match event {
                MuxerInput::Packet(p) if *r == route => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn variants_with_the_same_audio_share_a_route() {
        let stage = AudioStage::new([None, Some(96), None, Some(96), Some(64)]);
        let routes: Vec<usize> = (0..5).map(|v| stage.route_of(v)).collect();
        assert_eq!(routes, [0, 1, 0, 1, 2]);
        assert_eq!(
            stage.routes.len(),
            3,
            "one encoder per distinct bitrate at most"
        );
    }

    #[test]
    fn source_aac_goes_through_as_is_and_is_re_encoded_where_asked() {
        ffmpeg_next::init().expect("ffmpeg init");
        let (config, frames) = aac_stream(60);
        let mut stage = AudioStage::new([None, Some(64)]);
        let mut out = stage.push(IngestEvent::AudioConfig(config.clone()));
        for frame in &frames {
            out.extend(stage.push(IngestEvent::Packet(frame.clone())));
        }
        out.extend(stage.finish());

        // Route 0: the very same config and frames.
        assert_eq!(configs(&out, 0), std::slice::from_ref(&config));
        let copied = packets(&out, 0);
        assert_eq!(copied.len(), frames.len());
        assert!(copied
            .iter()
            .zip(&frames)
            .all(|(a, b)| a.data == b.data && a.dts_ms == b.dts_ms));
        // Route 1: AAC-LC again, at the same rate, other bytes, as many frames (± priming).
        let [encoded] = &configs(&out, 1)[..] else {
            panic!("one config for route 1")
        };
        assert_eq!(
            (
                encoded.codecs_string().as_str(),
                encoded.sample_rate,
                encoded.channels
            ),
            ("mp4a.40.2", RATE, 2)
        );
        let reencoded = packets(&out, 1);
        assert!(
            reencoded.len().abs_diff(frames.len()) <= 2,
            "{} frames re-encoded from {}",
            reencoded.len(),
            frames.len()
        );
        let bytes = |p: &[MediaPacket]| p.iter().map(|p| p.data.len()).sum::<usize>();
        assert!(
            bytes(&reencoded) < bytes(&frames) * 3 / 4,
            "64 kbps is smaller than 128 kbps: {} vs {} bytes",
            bytes(&reencoded),
            bytes(&frames)
        );
        assert!(reencoded.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
    }

    #[test]
    fn other_codecs_become_aac_on_every_route() {
        ffmpeg_next::init().expect("ffmpeg init");
        let mut stage = AudioStage::new([None, Some(64), None]);
        let mut out = stage.push(IngestEvent::OtherAudioConfig(pcm_source()));
        let tags = pcm_tags(50);
        for tag in &tags {
            out.extend(stage.push(IngestEvent::Packet(tag.clone())));
        }
        out.extend(stage.finish());
        for route in 0..2 {
            let [config] = &configs(&out, route)[..] else {
                panic!("one config for route {route}")
            };
            assert_eq!(config.codecs_string(), "mp4a.40.2");
            let aac = packets(&out, route);
            // 50 × 1024 samples in, 1024-sample frames out, plus the encoder's priming frame.
            assert!(
                (50..=52).contains(&aac.len()),
                "route {route}: {} frames",
                aac.len()
            );
            assert!(
                aac.iter().all(|p| p.data.len() < 1500),
                "AAC frames, not PCM"
            );
        }
        assert!(out.iter().all(|(route, _)| *route < 2));
        // Something else arrives (AAC from the same publisher, reconfigured): the encoders end
        // with what they held, and the "as the source" route now copies.
        let (config, frames) = aac_stream(2);
        let out = stage.push(IngestEvent::AudioConfig(config.clone()));
        assert_eq!(configs(&out, 0), [config]);
        let out = stage.push(IngestEvent::Packet(frames[0].clone()));
        assert_eq!(packets(&out, 0)[0].data, frames[0].data);
    }

    #[test]
    fn audio_that_cannot_be_decoded_leaves_the_stream_without_audio() {
        ffmpeg_next::init().expect("ffmpeg init");
        let mut stage = AudioStage::new([None, Some(96)]);
        // An Opus "identification header" that is not one.
        let bad = AudioSource::Opus {
            id_header: Bytes::from_static(b"NotOpus"),
        };
        let out = stage.push(IngestEvent::OtherAudioConfig(bad));
        assert!(out.is_empty(), "{out:?}");
        let out = stage.push(IngestEvent::Packet(audio_packet(
            0,
            Bytes::from_static(&[0xfc]),
        )));
        assert!(out.is_empty());
        // Frames the decoder refuses are skipped; the stage goes on.
        let mut stage = AudioStage::new([None]);
        stage.push(IngestEvent::OtherAudioConfig(AudioSource::Flv {
            sound_format: crate::media::flv::FLV_MP3,
            sample_rate: 44100,
            channels: 2,
            sample_size_bits: 16,
        }));
        for ms in 0..20 {
            stage.push(IngestEvent::Packet(audio_packet(
                ms * 26,
                Bytes::from_static(&[0xff; 300]),
            )));
        }
        stage.finish();
    }
}
