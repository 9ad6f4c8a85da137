//! What a publish session's FLV tags mean: turns the audio/video message bodies RTMP delivers
//! into [`IngestEvent`]s for the pipeline. No I/O here.
//!
//! - Sequence headers become `VideoConfig` / `AudioConfig` (only when they change: some encoders
//!   repeat them before every keyframe).
//! - Frames become `Packet`s: `dts_ms` is the RTMP timestamp extended past its 32-bit wrap,
//!   `pts_ms` = dts + the FLV composition time. Timestamps are passed on as the publisher sent
//!   them, even when they go backwards: the muxer re-anchors its timeline.
//! - Anything unusable (a frame before its sequence header, a malformed tag, bad NAL framing) is
//!   skipped with a rate-limited warning and counted.
//! - Audio that is not AAC (MP3, PCM, Nellymoser, G.711, Speex; Opus over enhanced RTMP) is
//!   described by an `OtherAudioConfig` (from its tag header or sequence start) and passed on
//!   for the pipeline to convert.
//! - A video codec other than H.264 from the start makes the stream unusable: [`Fatal`]. An
//!   unsupported audio codec is logged once and the stream continues without audio.

use std::time::Instant;

use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;
use tracing::{debug, error, info, warn};

use super::clock::TimestampExtender;
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::media::aac::AacError;
use crate::media::avc::AvcError;
use crate::media::flv::{self, AudioTag, FlvError, VideoTag};
use crate::media::{
    AudioSource, AudioSpecificConfig, AvcDecoderConfig, IngestEvent, MediaPacket, TrackKind,
};

/// The stream cannot go on (e.g. it is HEVC): the publish must end, for this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct Fatal(pub(super) String);

/// Kinds of skipped tags, each rate-limited and counted on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Skip {
    VideoBeforeConfig,
    AudioBeforeConfig,
    BadVideoConfig,
    BadAudioConfig,
    MalformedVideo,
    MalformedAudio,
    BadNalFraming,
    UnsupportedVideo,
    UnsupportedAudio,
}

impl Skip {
    fn message(self) -> &'static str {
        match self {
            Skip::VideoBeforeConfig => {
                "skipping video frame: no valid H.264 sequence header received yet"
            }
            Skip::AudioBeforeConfig => {
                "skipping audio frame: no valid sequence header for its codec received yet"
            }
            Skip::BadVideoConfig => "ignoring invalid H.264 sequence header",
            Skip::BadAudioConfig => "ignoring invalid AAC sequence header",
            Skip::MalformedVideo => "skipping malformed video tag",
            Skip::MalformedAudio => "skipping malformed audio tag",
            Skip::BadNalFraming => "skipping malformed H.264 frame",
            Skip::UnsupportedVideo => "skipping video tag in an unsupported codec",
            Skip::UnsupportedAudio => "skipping audio: unsupported codec",
        }
    }
}

/// Counters for the end-of-publish log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PublishStats {
    pub(super) video_frames: u64,
    pub(super) audio_frames: u64,
    pub(super) skipped: u64,
}

/// What describes the audio codec, as last passed on.
#[derive(Debug, PartialEq, Eq)]
enum AudioHeader {
    /// An AAC sequence header (AudioSpecificConfig).
    Aac(Bytes),
    /// A legacy FLV tag's first byte (format, rate, size, channels).
    Flv(u8),
    /// An Opus sequence start (OpusHead).
    Opus(Bytes),
}

/// Per-publish conversion state.
#[derive(Debug)]
pub(super) struct TagConverter {
    clock: TimestampExtender,
    /// The raw sequence headers last passed on, to pass on only changes.
    video_config: Option<Bytes>,
    audio_header: Option<AudioHeader>,
    /// The audio codec is unsupported: audio is dropped for the rest of the publish.
    audio_refused: bool,
    warnings: LogLimiter<Skip>,
    pub(super) stats: PublishStats,
    /// Skipped tags per kind, for tests and the summary line.
    skipped: Vec<(Skip, u64)>,
}

impl Default for TagConverter {
    fn default() -> Self {
        TagConverter {
            clock: TimestampExtender::default(),
            video_config: None,
            audio_header: None,
            audio_refused: false,
            warnings: LogLimiter::new(LOG_EVERY),
            stats: PublishStats::default(),
            skipped: Vec::new(),
        }
    }
}

impl TagConverter {
    /// One RTMP video message: `timestamp` is its 32-bit RTMP timestamp, `body` the FLV
    /// `VIDEODATA`.
    pub(super) fn video(
        &mut self,
        timestamp: u32,
        body: &Bytes,
    ) -> Result<Option<IngestEvent>, Fatal> {
        let error = match flv::parse_video_tag(body) {
            Ok(VideoTag::SequenceHeader(record)) => return self.video_config(record),
            Ok(VideoTag::Frame {
                keyframe,
                composition_time_ms,
                data,
            }) => {
                if self.video_config.is_none() {
                    self.skip(Skip::VideoBeforeConfig, &"");
                    return Ok(None);
                }
                let dts_ms = self.clock.extend(timestamp);
                self.stats.video_frames += 1;
                return Ok(Some(IngestEvent::Packet(MediaPacket {
                    kind: TrackKind::Video,
                    dts_ms,
                    pts_ms: dts_ms + i64::from(composition_time_ms),
                    keyframe,
                    data,
                })));
            }
            Ok(VideoTag::EndOfSequence) => {
                debug!("video end of sequence");
                return Ok(None);
            }
            Err(error) => error,
        };
        match error {
            FlvError::NoMedia(what) => debug!("ignoring video tag: {what}"),
            FlvError::UnsupportedVideoCodec(_) if self.video_config.is_none() => {
                return Err(Fatal(error.to_string()));
            }
            FlvError::UnsupportedVideoCodec(_) => self.skip(Skip::UnsupportedVideo, &error),
            FlvError::TruncatedNalLength { .. }
            | FlvError::NalLengthOverrun { .. }
            | FlvError::ZeroLengthNal { .. }
            | FlvError::AnnexB => self.skip(Skip::BadNalFraming, &error),
            _ => self.skip(Skip::MalformedVideo, &error),
        }
        Ok(None)
    }

    fn video_config(&mut self, record: Bytes) -> Result<Option<IngestEvent>, Fatal> {
        if self.video_config.as_ref() == Some(&record) {
            return Ok(None); // repeated, unchanged
        }
        match AvcDecoderConfig::parse(record.clone()) {
            Ok(config) => {
                info!(
                    codecs = %config.codecs_string(),
                    width = config.sps.width,
                    height = config.sps.height,
                    fps = config
                        .sps
                        .frame_rate
                        .map_or_else(|| "unknown".into(), |f| format!("{f:.3}")),
                    "{} H.264 sequence header",
                    if self.video_config.is_some() { "new" } else { "received" },
                );
                self.video_config = Some(record);
                Ok(Some(IngestEvent::VideoConfig(config)))
            }
            // Legal H.264 we cannot carry: the whole stream is unusable.
            Err(error @ AvcError::UnsupportedNalLengthSize(_)) if self.video_config.is_none() => {
                Err(Fatal(error.to_string()))
            }
            Err(error) => {
                self.skip(Skip::BadVideoConfig, &error);
                Ok(None)
            }
        }
    }

    /// One RTMP audio message: `timestamp` is its 32-bit RTMP timestamp, `body` the FLV
    /// `AUDIODATA`. Its events, in order: a config when the codec's description arrived or
    /// changed, then the frame.
    pub(super) fn audio(&mut self, timestamp: u32, body: &Bytes) -> Vec<IngestEvent> {
        if self.audio_refused {
            self.count(Skip::UnsupportedAudio);
            return Vec::new();
        }
        let tag = match flv::parse_audio_tag(body) {
            Ok(tag) => tag,
            Err(error) => {
                self.audio_error(error);
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        match tag {
            AudioTag::SequenceHeader(raw) => events.extend(self.aac_config(raw)),
            AudioTag::OpusHeader(id_header) => {
                let header = AudioHeader::Opus(id_header.clone());
                events.extend(self.other_config(header, AudioSource::Opus { id_header }));
            }
            AudioTag::Frame(data) => {
                let configured = matches!(self.audio_header, Some(AudioHeader::Aac(_)));
                events.extend(self.audio_frame(timestamp, data, configured));
            }
            AudioTag::OpusFrame(data) => {
                let configured = matches!(self.audio_header, Some(AudioHeader::Opus(_)));
                events.extend(self.audio_frame(timestamp, data, configured));
            }
            AudioTag::Legacy { header, data } => {
                // The tag header is the codec's whole description: a new one is a new config.
                if self.audio_header != Some(AudioHeader::Flv(header)) {
                    match AudioSource::from_flv_tag(body) {
                        Ok(source) => {
                            events.extend(self.other_config(AudioHeader::Flv(header), source))
                        }
                        Err(error) => {
                            self.audio_error(error);
                            return events;
                        }
                    }
                }
                events.extend(self.audio_frame(timestamp, data, true));
            }
        }
        events
    }

    fn audio_error(&mut self, error: FlvError) {
        match error {
            FlvError::NoMedia(what) => debug!("ignoring audio tag: {what}"),
            FlvError::UnsupportedAudioCodec(_) if self.audio_header.is_none() => {
                self.refuse_audio(&error);
            }
            FlvError::UnsupportedAudioCodec(_) => self.skip(Skip::UnsupportedAudio, &error),
            _ => self.skip(Skip::MalformedAudio, &error),
        }
    }

    /// An audio frame; `configured`: its codec's description was passed on before it.
    fn audio_frame(
        &mut self,
        timestamp: u32,
        data: Bytes,
        configured: bool,
    ) -> Option<IngestEvent> {
        if !configured {
            self.skip(Skip::AudioBeforeConfig, &"");
            return None;
        }
        let dts_ms = self.clock.extend(timestamp);
        self.stats.audio_frames += 1;
        Some(IngestEvent::Packet(MediaPacket {
            kind: TrackKind::Audio,
            dts_ms,
            pts_ms: dts_ms,
            keyframe: true,
            data,
        }))
    }

    /// Audio that is not AAC: described to the pipeline, which converts it.
    fn other_config(&mut self, header: AudioHeader, source: AudioSource) -> Option<IngestEvent> {
        if self.audio_header.as_ref() == Some(&header) {
            return None;
        }
        info!(
            source = %source.describe(),
            "{} audio that is not AAC: converting it to AAC",
            if self.audio_header.is_some() { "new" } else { "received" },
        );
        self.audio_header = Some(header);
        Some(IngestEvent::OtherAudioConfig(source))
    }

    fn aac_config(&mut self, raw: Bytes) -> Option<IngestEvent> {
        if matches!(&self.audio_header, Some(AudioHeader::Aac(old)) if *old == raw) {
            return None;
        }
        match AudioSpecificConfig::parse(raw.clone()) {
            Ok(config) => {
                info!(
                    codecs = %config.codecs_string(),
                    sample_rate = config.sample_rate,
                    channels = config.channels,
                    "{} AAC sequence header",
                    if self.audio_header.is_some() { "new" } else { "received" },
                );
                self.audio_header = Some(AudioHeader::Aac(raw));
                Some(IngestEvent::AudioConfig(config))
            }
            Err(
                error @ (AacError::ChannelConfigurationZero
                | AacError::UnsupportedChannelConfiguration(_)
                | AacError::UnsupportedObjectType { .. }),
            ) if self.audio_header.is_none() => {
                self.refuse_audio(&error);
                None
            }
            Err(error) => {
                self.skip(Skip::BadAudioConfig, &error);
                None
            }
        }
    }

    fn refuse_audio(&mut self, reason: &dyn std::fmt::Display) {
        error!("{reason}; the stream continues without audio");
        self.audio_refused = true;
        self.count(Skip::UnsupportedAudio);
    }

    /// Count a skipped tag and log it, at most once per kind every few seconds.
    fn skip(&mut self, kind: Skip, detail: &dyn std::fmt::Display) {
        self.count(kind);
        if let Some(suppressed) = self.warnings.allow(kind, Instant::now()) {
            let detail = detail.to_string();
            let separator = if detail.is_empty() { "" } else { ": " };
            if suppressed > 0 {
                warn!(
                    suppressed,
                    "{}{separator}{detail} (and {suppressed} more since the last warning)",
                    kind.message()
                );
            } else {
                warn!("{}{separator}{detail}", kind.message());
            }
        }
    }

    fn count(&mut self, kind: Skip) {
        self.stats.skipped += 1;
        match self.skipped.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.skipped.push((kind, 1)),
        }
    }

    /// How many tags of `kind` were skipped.
    #[cfg(test)]
    pub(super) fn skipped(&self, kind: Skip) -> u64 {
        self.skipped
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// `"12 × skipping malformed H.264 frame, ..."` for the end-of-publish line; empty if none.
    pub(super) fn skipped_summary(&self) -> String {
        self.skipped
            .iter()
            .map(|(kind, n)| format!("{n} × {}", kind.message()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// FLV `videocodecid` 7: AVC.
const METADATA_CODEC_AVC: u32 = 7;

/// The encoder's `@setDataFrame onMetaData` in one human line, e.g. "encoder: obs-output module
/// (libobs version 30.2.3), video: 1920x1080 @ 60 fps 6000 kbps, audio: 160 kbps 48000 Hz
/// stereo". Strings from the peer are cut and stripped of control characters.
pub(super) fn describe_metadata(m: &StreamMetadata) -> String {
    let mut parts = Vec::new();
    if let Some(encoder) = &m.encoder {
        let clean: String = encoder
            .chars()
            .filter(|c| !c.is_control())
            .take(80)
            .collect();
        parts.push(format!("encoder: {clean}"));
    }
    let mut video = Vec::new();
    if let (Some(w), Some(h)) = (m.video_width, m.video_height) {
        video.push(format!("{w}x{h}"));
    }
    // Encoders write 0 for "unknown" (ffmpeg does for the bitrates): leave those out.
    if let Some(fps) = m.video_frame_rate.filter(|&f| f > 0.0) {
        video.push(format!("@ {fps} fps"));
    }
    if let Some(kbps) = m.video_bitrate_kbps.filter(|&k| k > 0) {
        video.push(format!("{kbps} kbps"));
    }
    if !video.is_empty() {
        parts.push(format!("video: {}", video.join(" ")));
    }
    let mut audio = Vec::new();
    if let Some(kbps) = m.audio_bitrate_kbps.filter(|&k| k > 0) {
        audio.push(format!("{kbps} kbps"));
    }
    if let Some(rate) = m.audio_sample_rate.filter(|&r| r > 0) {
        audio.push(format!("{rate} Hz"));
    }
    match (m.audio_channels, m.audio_is_stereo) {
        (Some(1), _) | (None, Some(false)) => audio.push("mono".into()),
        (Some(2), _) | (None, Some(true)) => audio.push("stereo".into()),
        (Some(n), _) => audio.push(format!("{n} channels")),
        (None, None) => {}
    }
    if !audio.is_empty() {
        parts.push(format!("audio: {}", audio.join(" ")));
    }
    if parts.is_empty() {
        "no details".into()
    } else {
        parts.join(", ")
    }
}

/// A warning worth giving as soon as the metadata announces a video codec we will refuse.
pub(super) fn metadata_codec_warning(m: &StreamMetadata) -> Option<String> {
    let id = m.video_codec_id?;
    if id == METADATA_CODEC_AVC {
        return None;
    }
    // Enhanced RTMP puts a FourCC there, as a number.
    let fourcc = id.to_be_bytes();
    let codec = if fourcc.iter().all(|b| b.is_ascii_alphanumeric()) {
        format!("'{}'", String::from_utf8_lossy(&fourcc))
    } else {
        format!("id {id}")
    };
    Some(format!(
        "the encoder announces video codec {codec}; only H.264 is supported"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_bytes::hex;

    /// The first video tag ffmpeg/x264 sends for 1280x720 High@3.1: `17 00 000000` + avcC.
    fn avc_sequence_header() -> Bytes {
        Bytes::from(hex(
            "17 00 00 00 00 01 64 00 1f ff e1 00 1a 67 64 00 1f ac d9 40 50 05 bb 01 10 00 00 03 \
             00 10 00 00 03 03 c0 f1 83 19 60 01 00 06 68 eb e3 cb 22 c0 fd f8 f8 00",
        ))
    }

    /// ffmpeg's AAC sequence header: `af 00` + AudioSpecificConfig 12 10 56 e5 00 (LC 44.1 kHz).
    fn aac_sequence_header() -> Bytes {
        Bytes::from(hex("af 00 12 10 56 e5 00"))
    }

    /// `17 01 <ct>`/`27 01 <ct>` + one 2-byte NAL unit.
    fn video_frame(keyframe: bool, ct: [u8; 3]) -> Bytes {
        let first = if keyframe { 0x17 } else { 0x27 };
        Bytes::from(vec![
            first, 0x01, ct[0], ct[1], ct[2], 0, 0, 0, 2, 0x65, 0x88,
        ])
    }

    /// The one packet among `events` (an Option or a Vec).
    fn packet(events: impl IntoIterator<Item = IngestEvent>) -> MediaPacket {
        let events: Vec<IngestEvent> = events.into_iter().collect();
        match &events[..] {
            [IngestEvent::Packet(p)] => p.clone(),
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    #[test]
    fn a_typical_publish() {
        let mut c = TagConverter::default();
        // Video first, then audio, as ffmpeg does.
        let Ok(Some(IngestEvent::VideoConfig(v))) = c.video(0, &avc_sequence_header()) else {
            panic!()
        };
        assert_eq!(
            (v.codecs_string().as_str(), v.sps.width, v.sps.height),
            ("avc1.64001f", 1280, 720)
        );
        let [IngestEvent::AudioConfig(a)] = &c.audio(0, &aac_sequence_header())[..] else {
            panic!()
        };
        assert_eq!(
            (a.codecs_string().as_str(), a.sample_rate, a.channels),
            ("mp4a.40.2", 44100, 2)
        );

        // Keyframe at 0 ms with a composition time of 67 ms (00 00 43).
        let p = packet(
            c.video(0, &video_frame(true, [0, 0, 0x43]))
                .expect("not fatal"),
        );
        assert_eq!(
            (p.kind, p.dts_ms, p.pts_ms, p.keyframe),
            (TrackKind::Video, 0, 67, true)
        );
        assert_eq!(&p.data[..], &[0, 0, 0, 2, 0x65, 0x88]);

        // An audio frame at 23 ms: pts = dts, always a sync sample.
        let p = packet(c.audio(23, &Bytes::from_static(&[0xaf, 0x01, 0x21, 0x10])));
        assert_eq!(
            (p.kind, p.dts_ms, p.pts_ms, p.keyframe),
            (TrackKind::Audio, 23, 23, true)
        );
        assert_eq!(&p.data[..], &[0x21, 0x10]);

        // An inter frame at 33 ms with a negative composition time (ff ff f6 = −10).
        let p = packet(
            c.video(33, &video_frame(false, [0xff, 0xff, 0xf6]))
                .expect("not fatal"),
        );
        assert_eq!((p.dts_ms, p.pts_ms, p.keyframe), (33, 23, false));

        // A repeated, unchanged sequence header is not passed on again.
        assert_eq!(
            c.video(66, &avc_sequence_header()).map(|e| e.is_none()),
            Ok(true)
        );
        assert!(c.audio(66, &aac_sequence_header()).is_empty());
        assert_eq!(
            c.stats,
            PublishStats {
                video_frames: 2,
                audio_frames: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn frames_before_their_sequence_header_are_skipped() {
        let mut c = TagConverter::default();
        assert!(matches!(c.video(0, &video_frame(true, [0; 3])), Ok(None)));
        assert!(matches!(c.video(33, &video_frame(false, [0; 3])), Ok(None)));
        assert!(c
            .audio(0, &Bytes::from_static(&[0xaf, 0x01, 0x21]))
            .is_empty());
        assert_eq!(c.skipped(Skip::VideoBeforeConfig), 2);
        assert_eq!(c.skipped(Skip::AudioBeforeConfig), 1);
        assert!(matches!(
            c.video(66, &avc_sequence_header()),
            Ok(Some(IngestEvent::VideoConfig(_)))
        ));
        assert!(c
            .video(66, &video_frame(true, [0; 3]))
            .expect("not fatal")
            .is_some());
        assert_eq!(c.stats.skipped, 3);
        assert!(
            c.skipped_summary().contains("2 × skipping video frame"),
            "{}",
            c.skipped_summary()
        );
    }

    #[test]
    fn malformed_tags_are_skipped_and_counted() {
        let mut c = TagConverter::default();
        c.video(0, &avc_sequence_header()).expect("not fatal");
        // Length prefix says 5 bytes, 2 follow.
        let bad = Bytes::from_static(&[0x27, 0x01, 0, 0, 0, 0, 0, 0, 5, 0x41, 0x9a]);
        assert!(matches!(c.video(33, &bad), Ok(None)));
        assert_eq!(c.skipped(Skip::BadNalFraming), 1);
        // Truncated header, unknown AVC packet type, empty tag.
        for body in [&[0x27, 0x01][..], &[0x17, 0x09, 0, 0, 0], &[]] {
            assert!(matches!(
                c.video(33, &Bytes::copy_from_slice(body)),
                Ok(None)
            ));
        }
        assert_eq!(c.skipped(Skip::MalformedVideo), 3);
        // A broken sequence header after a good one is ignored; the good one stays in force.
        assert!(matches!(
            c.video(40, &Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 0x01, 0x64])),
            Ok(None)
        ));
        assert_eq!(c.skipped(Skip::BadVideoConfig), 1);
        assert!(c
            .video(66, &video_frame(true, [0; 3]))
            .expect("not fatal")
            .is_some());
        // Audio: a truncated AAC header.
        assert!(c.audio(0, &Bytes::from_static(&[0xaf])).is_empty());
        assert_eq!(c.skipped(Skip::MalformedAudio), 1);
        // Video command frames are not worth a warning.
        assert!(matches!(
            c.video(0, &Bytes::from_static(&[0x57, 0x00])),
            Ok(None)
        ));
        assert_eq!(c.stats.skipped, 6);
    }

    #[test]
    fn unsupported_video_codec_is_fatal_at_the_start() {
        let mut c = TagConverter::default();
        // Enhanced RTMP HEVC sequence start: 90 'hvc1' ...
        let hevc = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 0x01, 0x01]);
        let Err(Fatal(reason)) = c.video(0, &hevc) else {
            panic!()
        };
        assert!(
            reason.contains("HEVC") && reason.contains("only H.264"),
            "{reason}"
        );
        // FLV codec id 2 (Sorenson H.263, ffmpeg's default for -f flv without -c:v).
        let Err(Fatal(reason)) = c.video(0, &Bytes::from_static(&[0x22, 0x00])) else {
            panic!()
        };
        assert!(reason.contains("Sorenson H.263"), "{reason}");
        // 2-byte NAL lengths are legal H.264 but unsupported: fatal too.
        let mut record = avc_sequence_header().to_vec();
        record[5 + 4] = 0xfd;
        let Err(Fatal(reason)) = c.video(0, &Bytes::from(record)) else {
            panic!()
        };
        assert!(reason.contains("NAL length size 2"), "{reason}");
    }

    #[test]
    fn a_stray_foreign_video_tag_mid_stream_is_only_skipped() {
        let mut c = TagConverter::default();
        c.video(0, &avc_sequence_header()).expect("not fatal");
        assert!(matches!(
            c.video(33, &Bytes::from_static(&[0x22, 0x00])),
            Ok(None)
        ));
        assert_eq!(c.skipped(Skip::UnsupportedVideo), 1);
    }

    #[test]
    fn unsupported_audio_is_dropped_for_the_whole_publish() {
        let mut c = TagConverter::default();
        // f2: SoundFormat 15 = device-specific sound.
        assert!(c
            .audio(0, &Bytes::from_static(&[0xf2, 0x01, 0x02]))
            .is_empty());
        // Even an AAC header afterwards does not revive audio: the encoder is misconfigured.
        assert!(c.audio(0, &aac_sequence_header()).is_empty());
        assert_eq!(c.skipped(Skip::UnsupportedAudio), 2);
        // Video is unaffected.
        assert!(matches!(c.video(0, &avc_sequence_header()), Ok(Some(_))));

        // An AAC config we cannot carry (channelConfiguration 0) refuses audio the same way.
        let mut c = TagConverter::default();
        assert!(c
            .audio(0, &Bytes::from_static(&[0xaf, 0x00, 0x11, 0x80]))
            .is_empty());
        assert!(c
            .audio(0, &Bytes::from_static(&[0xaf, 0x01, 0x21]))
            .is_empty());
        assert_eq!(c.skipped(Skip::UnsupportedAudio), 2);
    }

    #[test]
    fn audio_in_other_codecs_is_described_then_passed_on() {
        let mut c = TagConverter::default();
        // 2f: MP3, 44 kHz, 16-bit, stereo; the payload starts with an MPEG-1 Layer III frame
        // header for 48 kHz stereo (ff fb 94 44), which is what the source is.
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb, 0x94, 0x44, 0x00]);
        let events = c.audio(0, &mp3);
        let [IngestEvent::OtherAudioConfig(source), IngestEvent::Packet(p)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(
            source,
            &AudioSource::Flv {
                sound_format: 2,
                sample_rate: 48000,
                channels: 2,
                sample_size_bits: 16
            }
        );
        assert_eq!((p.kind, p.dts_ms, p.keyframe), (TrackKind::Audio, 0, true));
        assert_eq!(
            &p.data[..],
            &mp3[1..],
            "the codec data after the tag header"
        );
        // The same header again: only the frame. A frame split mid-MP3-frame (no syncword)
        // says nothing new either.
        assert_eq!(packet(c.audio(26, &mp3)).dts_ms, 26);
        assert_eq!(
            packet(c.audio(52, &Bytes::from_static(&[0x2f, 0x12, 0x34]))).dts_ms,
            52
        );
        // A different header byte (mono: 2e) is a new description.
        let events = c.audio(78, &Bytes::from_static(&[0x2e, 0xff, 0xfb, 0x94, 0xc4]));
        assert!(
            matches!(
                &events[..],
                [
                    IngestEvent::OtherAudioConfig(AudioSource::Flv { channels: 1, .. }),
                    IngestEvent::Packet(_)
                ]
            ),
            "{events:?}"
        );
        // An empty legacy frame is malformed, and skipped.
        assert!(c.audio(100, &Bytes::from_static(&[0x2f])).is_empty());
        assert_eq!(c.skipped(Skip::MalformedAudio), 1);

        // Opus over enhanced RTMP: 9 0 'Opus' OpusHead..., then 9 1 'Opus' packet.
        let mut c = TagConverter::default();
        assert!(c
            .audio(
                0,
                &Bytes::from_static(&[0x91, b'O', b'p', b'u', b's', 0xfc])
            )
            .is_empty());
        assert_eq!(
            c.skipped(Skip::AudioBeforeConfig),
            1,
            "an Opus frame before its header"
        );
        let head = Bytes::from_static(b"\x90OpusOpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0");
        let [IngestEvent::OtherAudioConfig(AudioSource::Opus { id_header })] =
            &c.audio(0, &head)[..]
        else {
            panic!()
        };
        assert_eq!(&id_header[..8], b"OpusHead");
        assert!(
            c.audio(0, &head).is_empty(),
            "unchanged: not passed on again"
        );
        let p = packet(c.audio(
            20,
            &Bytes::from_static(&[0x91, b'O', b'p', b'u', b's', 0xfc]),
        ));
        assert_eq!((p.dts_ms, &p.data[..]), (20, &[0xfc][..]));
        // AAC frames are not Opus frames.
        assert!(c
            .audio(40, &Bytes::from_static(&[0xaf, 0x01, 0x21]))
            .is_empty());
    }

    #[test]
    fn timestamps_wrap_into_i64() {
        let mut c = TagConverter::default();
        c.video(0, &avc_sequence_header()).expect("not fatal");
        c.audio(0, &aac_sequence_header());
        let p = packet(
            c.video(u32::MAX - 9, &video_frame(true, [0, 0, 0x21]))
                .expect("not fatal"),
        );
        assert_eq!((p.dts_ms, p.pts_ms), (4_294_967_286, 4_294_967_319));
        let p = packet(c.audio(u32::MAX - 2, &Bytes::from_static(&[0xaf, 0x01, 0x21])));
        assert_eq!(p.dts_ms, 4_294_967_293);
        let p = packet(
            c.video(24, &video_frame(false, [0, 0, 0]))
                .expect("not fatal"),
        );
        assert_eq!(p.dts_ms, 4_294_967_296 + 24);
        let p = packet(c.audio(20, &Bytes::from_static(&[0xaf, 0x01, 0x21])));
        assert_eq!(p.dts_ms, 4_294_967_296 + 20);
    }

    #[test]
    fn a_changed_sequence_header_is_passed_on() {
        let mut c = TagConverter::default();
        c.video(0, &avc_sequence_header()).expect("not fatal");
        // The 1080p record (x264 High@4.0).
        let hd = Bytes::from(hex(
            "17 00 00 00 00 01 64 00 28 ff e1 00 1b 67 64 00 28 ac d9 40 78 02 27 e5 c0 44 00 00 03 \
             00 04 00 00 03 00 f0 3c 60 c6 58 01 00 06 68 eb e3 cb 22 c0 fd f8 f8 00",
        ));
        let Ok(Some(IngestEvent::VideoConfig(v))) = c.video(5000, &hd) else {
            panic!()
        };
        assert_eq!((v.sps.width, v.sps.height), (1920, 1080));
    }

    #[test]
    fn metadata_lines() {
        let mut m = StreamMetadata::new();
        assert_eq!(describe_metadata(&m), "no details");
        m.encoder = Some("obs-output module (libobs version 30.2.3)\n\u{1b}[31m".into());
        m.video_width = Some(1920);
        m.video_height = Some(1080);
        m.video_frame_rate = Some(60.0);
        m.video_bitrate_kbps = Some(6000);
        m.audio_bitrate_kbps = Some(160);
        m.audio_sample_rate = Some(48000);
        m.audio_is_stereo = Some(true);
        m.video_codec_id = Some(7);
        assert_eq!(
            describe_metadata(&m),
            "encoder: obs-output module (libobs version 30.2.3)[31m, video: 1920x1080 @ 60 fps \
             6000 kbps, audio: 160 kbps 48000 Hz stereo"
        );
        assert_eq!(metadata_codec_warning(&m), None);
        // ffmpeg sends 0 for bitrates it does not know.
        m.video_bitrate_kbps = Some(0);
        assert!(describe_metadata(&m).contains("video: 1920x1080 @ 60 fps, audio"));
        m.video_codec_id = Some(u32::from_be_bytes(*b"hvc1"));
        assert_eq!(
            metadata_codec_warning(&m).as_deref(),
            Some("the encoder announces video codec 'hvc1'; only H.264 is supported")
        );
        m.video_codec_id = Some(2);
        assert!(metadata_codec_warning(&m).is_some_and(|w| w.contains("id 2")));
    }
}
