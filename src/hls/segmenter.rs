//! Turns the packets of successive publish sessions into init segments and media segments.
//!
//! - Every segment starts with a video keyframe and is cut at the first keyframe at or after
//!   the target duration; a segment is built as one or more fragments (`moof`+`mdat`), so
//!   Low-Latency HLS parts can later be flushed from the same builder.
//! - One continuous output timeline across sessions: a publisher that reconnects continues where
//!   the last segment ended, behind a discontinuity and a new init segment, so decode times in
//!   the playlist never go backwards. Timestamps that jump or go backwards inside a session are
//!   re-anchored the same way.
//! - Video decode times are in 90 kHz ticks; audio in its sample rate, advanced by the AAC
//!   frame length per frame and only re-synchronised to the incoming timestamps on a real gap,
//!   so millisecond rounding of RTMP timestamps never makes audio jitter.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tracing::{info, warn};

use super::fragment::{write_fragment, Sample, TrackRun};
use super::init::{write_init_segment, TrackConfigs};
use super::{AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use crate::media::{AudioSpecificConfig, AvcDecoderConfig, MediaPacket, TrackKind};

/// 90 kHz ticks per RTMP millisecond.
const TICKS_PER_MS: i64 = (VIDEO_TIMESCALE / 1000) as i64;
/// A keyframe this close below the target still cuts (RTMP timestamps are rounded to 1 ms).
const CUT_TOLERANCE_TICKS: u64 = 10 * TICKS_PER_MS as u64;
/// A video timestamp step beyond this is a jump, not a frame interval.
const MAX_FRAME_INTERVAL_TICKS: i64 = 10 * VIDEO_TIMESCALE as i64;
/// Frame duration assumed until two frames have been seen (30 fps).
const DEFAULT_FRAME_TICKS: u32 = VIDEO_TIMESCALE / 30;

/// What a muxer takes, in decode order: H.264 and AAC only, each track's config before its
/// packets (a new config mid-stream starts a new init segment). Other audio codecs are encoded
/// to AAC upstream ([`crate::pipeline`]'s audio stage), so they have no way in here.
#[derive(Debug, Clone)]
pub enum MuxerInput {
    /// The H.264 sequence header (an `avcC`), at the start or when it changes.
    VideoConfig(AvcDecoderConfig),
    /// The AAC `AudioSpecificConfig`, at the start or when it changes.
    AudioConfig(AudioSpecificConfig),
    /// One H.264 access unit (AVCC framing) or one raw AAC frame.
    Packet(MediaPacket),
}

/// What the segmenter produced.
#[derive(Debug, Clone)]
pub enum MuxerOutput {
    /// A new init segment; the segments after it reference it.
    Init(InitSegment),
    Segment(MediaSegment),
}

#[derive(Debug, Clone)]
pub struct InitSegment {
    /// Counts init segments of this output, from 0.
    pub generation: u32,
    pub data: Bytes,
    pub tracks: TrackConfigs,
}

#[derive(Debug, Clone)]
pub struct MediaSegment {
    pub data: Bytes,
    pub init_generation: u32,
    /// The first segment after a new init: the timeline or the codec parameters changed.
    pub discontinuity: bool,
    /// Decode time of the first video sample, 90 kHz.
    pub start_ticks: u64,
    pub duration: Duration,
    pub video_frames: u32,
    /// Wall-clock time of the first sample (EXT-X-PROGRAM-DATE-TIME).
    pub program_date_time: SystemTime,
}

/// A video frame whose duration is known only when the next one arrives.
struct PendingFrame {
    dts: u64,
    composition_offset: i32,
    keyframe: bool,
    data: Bytes,
}

/// The segment being built.
struct SegmentBuilder {
    start_ticks: u64,
    discontinuity: bool,
    fragments: Vec<u8>,
    video: Vec<Sample>,
    video_base: u64,
    audio: Vec<Sample>,
    audio_base: u64,
    video_frames: u32,
    /// Where the segment's pictures end: the latest decode or presentation end of its frames
    /// (with B-frames the last frame decoded is not the last one shown).
    end_ticks: u64,
}

impl SegmentBuilder {
    /// Append a video frame decoded at `dts`.
    fn add_video(&mut self, dts: u64, sample: Sample) {
        let decoded_until = dts + u64::from(sample.duration);
        let shown_until = decoded_until as i64 + i64::from(sample.composition_offset);
        self.end_ticks = self
            .end_ticks
            .max(decoded_until)
            .max(shown_until.max(0) as u64);
        self.video.push(sample);
        self.video_frames += 1;
    }
}

/// Maps one session's RTMP milliseconds onto the output timeline.
///
/// Presentation times keep their distance to audio (lip sync); video *decode* times are moved
/// later by the encoder's reordering delay (the first keyframe's composition time, 67 ms for
/// x264 with 2 B-frames at 30 fps) so that each keyframe, and so each segment, starts at its
/// presentation time: `tfdt` is where the segment's picture starts, with no hole before it.
/// Frames displayed before their decode time then get negative composition offsets (`trun`
/// version 1).
struct SessionClock {
    /// Output presentation ticks = pts_ms * 90 + offset (audio: pts == dts).
    offset_ticks: i64,
    /// Video decode times are this much later than the mapped RTMP dts.
    video_delay_ticks: i64,
    /// Wall clock and output time of the session's start.
    wall_anchor: SystemTime,
    ticks_anchor: u64,
}

/// Where a publish session starts, shared by every variant of a ladder so that their segments
/// start at the same times and carry the same EXT-X-PROGRAM-DATE-TIME.
#[derive(Debug, Clone, Copy)]
pub struct SessionStart {
    /// On the output timeline, 90 kHz; a variant whose timeline already ends later starts there.
    pub ticks: u64,
    /// The wall-clock time of `ticks`.
    pub wall_clock: SystemTime,
}

impl SessionStart {
    /// A session starting now at `ticks`.
    pub fn now(ticks: u64) -> Self {
        Self {
            ticks,
            wall_clock: SystemTime::now(),
        }
    }
}

pub struct Segmenter {
    target_ticks: u64,
    fragment_sequence: u32,
    next_generation: u32,
    /// Configs of the current session, as last received.
    video_config: Option<AvcDecoderConfig>,
    audio_config: Option<AudioSpecificConfig>,
    /// The init segment the open segment refers to.
    init: Option<(u32, TrackConfigs)>,
    /// A segment referring to `init` has been output.
    init_used: bool,
    /// The next segment begins a new timeline or uses a new init.
    discontinuity_pending: bool,
    clock: Option<SessionClock>,
    session_wall_clock: SystemTime,
    /// End of the output timeline so far (where the next session continues), 90 kHz.
    timeline_end: u64,
    pending: Option<PendingFrame>,
    last_frame_ticks: u32,
    segment: Option<SegmentBuilder>,
    /// Next audio decode time in the audio timescale, while audio is flowing.
    audio_next: Option<u64>,
}

impl Segmenter {
    pub fn new(segment_seconds: u32) -> Self {
        Self {
            target_ticks: u64::from(segment_seconds) * u64::from(VIDEO_TIMESCALE),
            fragment_sequence: 1,
            next_generation: 0,
            video_config: None,
            audio_config: None,
            init: None,
            init_used: false,
            discontinuity_pending: false,
            clock: None,
            session_wall_clock: SystemTime::now(),
            timeline_end: 0,
            pending: None,
            last_frame_ticks: DEFAULT_FRAME_TICKS,
            segment: None,
            audio_next: None,
        }
    }

    /// Where the output timeline ends so far (90 kHz): the next session starts at or after it.
    pub fn timeline_end(&self) -> u64 {
        self.timeline_end
    }

    /// A new publisher: forget its predecessor's configs; its first segment is a discontinuity
    /// if anything was output before.
    pub fn begin_session(&mut self, start: SessionStart) {
        self.timeline_end = self.timeline_end.max(start.ticks);
        self.session_wall_clock = start.wall_clock;
        self.video_config = None;
        self.audio_config = None;
        self.clock = None;
        self.audio_next = None;
        self.last_frame_ticks = DEFAULT_FRAME_TICKS;
        self.discontinuity_pending = self.next_generation > 0;
        self.init = None;
    }

    /// The publisher went away: output what is buffered.
    pub fn end_session(&mut self) -> Vec<MuxerOutput> {
        let mut out = Vec::new();
        self.finish_segment(&mut out);
        self.clock = None;
        out
    }

    pub fn push(&mut self, input: MuxerInput) -> Vec<MuxerOutput> {
        let mut out = Vec::new();
        match input {
            MuxerInput::VideoConfig(config) => {
                let changed = self
                    .video_config
                    .as_ref()
                    .is_some_and(|old| old.record != config.record);
                self.video_config = Some(config);
                if changed {
                    self.restart_on_new_config(&mut out, "video");
                }
            }
            MuxerInput::AudioConfig(config) => {
                let changed = self
                    .audio_config
                    .as_ref()
                    .is_some_and(|old| old.raw != config.raw);
                let late = self.audio_config.is_none()
                    && self
                        .init
                        .as_ref()
                        .is_some_and(|(_, tracks)| tracks.audio.is_none());
                self.audio_config = Some(config);
                if changed {
                    self.restart_on_new_config(&mut out, "audio");
                } else if late {
                    self.add_audio_track(&mut out);
                }
            }
            MuxerInput::Packet(packet) => match packet.kind {
                TrackKind::Video => self.push_video(packet, &mut out),
                TrackKind::Audio => self.push_audio(packet),
            },
        }
        out
    }

    /// The output changes here although its codec parameters may read the same (a transcoded
    /// variant whose source changed size): like a new sequence header, a new init segment behind
    /// a discontinuity, so that every variant of the ladder has its discontinuity at the same
    /// place (RFC 8216 §6.2.4).
    pub fn restart_output(&mut self) -> Vec<MuxerOutput> {
        let mut out = Vec::new();
        self.restart_on_new_config(&mut out, "source");
        out
    }

    /// Codec parameters changed mid-session: close the segment; the next keyframe starts a new
    /// init segment behind a discontinuity.
    fn restart_on_new_config(&mut self, out: &mut Vec<MuxerOutput>, which: &str) {
        if self.init.is_some() {
            info!(
                which,
                "codec parameters changed mid-stream: new init segment"
            );
            self.finish_segment(out);
            self.init = None;
            self.discontinuity_pending = true;
        }
    }

    fn push_video(&mut self, packet: MediaPacket, out: &mut Vec<MuxerOutput>) {
        if self.segment.is_none() && !packet.keyframe {
            return; // a segment must start with a keyframe
        }
        if self.init.is_none() && !self.start_init(out) {
            return;
        }
        let (dts, composition_offset) = self.video_ticks(&packet);
        if let Some(previous) = self.pending.take() {
            let duration = (dts - previous.dts) as u32;
            self.last_frame_ticks = duration;
            // A pending frame always belongs to the open segment.
            if let Some(segment) = &mut self.segment {
                segment.add_video(
                    previous.dts,
                    Sample {
                        duration,
                        composition_offset: previous.composition_offset,
                        keyframe: previous.keyframe,
                        data: previous.data,
                    },
                );
            }
        }
        let cut = self.segment.as_ref().is_some_and(|s| {
            packet.keyframe && dts + CUT_TOLERANCE_TICKS >= s.start_ticks + self.target_ticks
        });
        if cut {
            self.finish_segment(out);
        }
        if self.segment.is_none() {
            self.open_segment(dts);
        }
        self.pending = Some(PendingFrame {
            dts,
            composition_offset,
            keyframe: packet.keyframe,
            data: packet.data,
        });
    }

    /// Output decode ticks and composition offset of a video frame; keeps decode times
    /// strictly increasing by re-anchoring the session clock when the publisher's timestamps
    /// jump or go backwards.
    fn video_ticks(&mut self, packet: &MediaPacket) -> (u64, i32) {
        let composition_ms = packet.pts_ms - packet.dts_ms;
        let clock = match &mut self.clock {
            Some(clock) => clock,
            None => {
                // The session starts here: this keyframe's picture continues the timeline.
                let clock = SessionClock {
                    offset_ticks: self.timeline_end as i64 - packet.pts_ms * TICKS_PER_MS,
                    video_delay_ticks: composition_ms.clamp(0, 1000) * TICKS_PER_MS,
                    wall_anchor: self.session_wall_clock,
                    ticks_anchor: self.timeline_end,
                };
                self.clock.insert(clock)
            }
        };
        let composition_offset = (composition_ms * TICKS_PER_MS - clock.video_delay_ticks)
            .clamp(i64::from(i32::MIN), i64::from(i32::MAX))
            as i32;
        let ticks = packet.dts_ms * TICKS_PER_MS + clock.offset_ticks + clock.video_delay_ticks;
        let Some(previous) = &self.pending else {
            // The first frame of the session, or the first after a codec change closed the
            // segment mid-session: it may not start before the timeline ends (found by
            // fuzz/fuzz_targets/segmenter.rs: timestamps reset along with a new sequence header).
            let end = self.timeline_end as i64;
            if ticks < end {
                clock.offset_ticks += end - ticks;
                return (self.timeline_end, composition_offset);
            }
            return (ticks as u64, composition_offset);
        };
        let step = ticks - previous.dts as i64;
        if step <= 0 || step > MAX_FRAME_INTERVAL_TICKS {
            warn!(
                step_ms = step / TICKS_PER_MS,
                "video timestamps jumped: re-anchoring the timeline"
            );
            let wanted = previous.dts as i64 + i64::from(self.last_frame_ticks);
            clock.offset_ticks += wanted - ticks;
            return (wanted as u64, composition_offset);
        }
        (ticks as u64, composition_offset)
    }

    fn push_audio(&mut self, packet: MediaPacket) {
        let (Some(segment), Some(clock), Some((_, tracks))) =
            (&mut self.segment, &self.clock, &self.init)
        else {
            return; // audio before the first keyframe has nothing to play against
        };
        let Some(audio) = &tracks.audio else { return };
        let rate = u64::from(audio.sample_rate);
        let frame = u64::from(audio.frame_length);
        let ticks_90k = packet.dts_ms * TICKS_PER_MS + clock.offset_ticks;
        if self.audio_next.is_none() && ticks_90k < clock.ticks_anchor as i64 {
            // Sound from before the session's first picture: the previous session (or
            // nothing) plays there.
            return;
        }
        let from_timestamp = ticks_90k.max(0) as u64 * rate / u64::from(VIDEO_TIMESCALE);
        let decode_time = match self.audio_next {
            // A gap of more than 100 ms (lost audio, a pause): follow the timestamps. A jump
            // beyond what a frame interval can be is the publisher's clock jumping, which the
            // video side re-anchors too: stay contiguous, as for anything else; never go back.
            Some(next)
                if from_timestamp > next + rate / 10
                    && from_timestamp - next
                        <= MAX_FRAME_INTERVAL_TICKS as u64 * rate / u64::from(VIDEO_TIMESCALE) =>
            {
                if !segment.audio.is_empty() {
                    self.fragment_sequence = flush_fragment(segment, self.fragment_sequence);
                }
                from_timestamp
            }
            Some(next) => next,
            None => from_timestamp,
        };
        if segment.audio.is_empty() {
            segment.audio_base = decode_time;
        }
        segment.audio.push(Sample {
            duration: frame as u32,
            composition_offset: 0,
            keyframe: true,
            data: packet.data,
        });
        self.audio_next = Some(decode_time + frame);
    }

    /// The audio's first config came after the video had started (an encoder's first audio
    /// frame a few milliseconds after the first keyframe; audio from a transcoder): the init
    /// segment gains an audio track. Before any segment refers to the init it is simply
    /// replaced; after, it is a change of codec parameters like any other.
    fn add_audio_track(&mut self, out: &mut Vec<MuxerOutput>) {
        if self.init_used {
            self.restart_on_new_config(out, "audio");
        } else {
            self.init = None;
            self.start_init(out);
        }
    }

    /// Build the init segment for the current configs; false while the video config is missing.
    fn start_init(&mut self, out: &mut Vec<MuxerOutput>) -> bool {
        let Some(video) = self.video_config.clone() else {
            return false;
        };
        let tracks = TrackConfigs {
            video,
            audio: self.audio_config.clone(),
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let data = Bytes::from(write_init_segment(&tracks));
        out.push(MuxerOutput::Init(InitSegment {
            generation,
            data,
            tracks: tracks.clone(),
        }));
        self.init = Some((generation, tracks));
        self.init_used = false;
        true
    }

    fn open_segment(&mut self, start_ticks: u64) {
        self.segment = Some(SegmentBuilder {
            start_ticks,
            discontinuity: std::mem::take(&mut self.discontinuity_pending),
            fragments: Vec::new(),
            video: Vec::new(),
            video_base: start_ticks,
            audio: Vec::new(),
            audio_base: 0,
            video_frames: 0,
            end_ticks: start_ticks,
        });
    }

    /// Close the open segment, including a frame still waiting for its duration.
    fn finish_segment(&mut self, out: &mut Vec<MuxerOutput>) {
        let Some(mut segment) = self.segment.take() else {
            return;
        };
        if let Some(last) = self.pending.take() {
            segment.add_video(
                last.dts,
                Sample {
                    duration: self.last_frame_ticks,
                    composition_offset: last.composition_offset,
                    keyframe: last.keyframe,
                    data: last.data,
                },
            );
        }
        let end = segment.end_ticks;
        self.fragment_sequence = flush_fragment(&mut segment, self.fragment_sequence);
        self.timeline_end = self.timeline_end.max(end);
        let (Some((generation, _)), Some(clock)) = (&self.init, &self.clock) else {
            return;
        };
        self.init_used = true;
        let since_anchor = segment.start_ticks.saturating_sub(clock.ticks_anchor);
        out.push(MuxerOutput::Segment(MediaSegment {
            data: Bytes::from(segment.fragments),
            init_generation: *generation,
            discontinuity: segment.discontinuity,
            start_ticks: segment.start_ticks,
            duration: ticks_to_duration(end - segment.start_ticks),
            video_frames: segment.video_frames,
            program_date_time: clock.wall_anchor + ticks_to_duration(since_anchor),
        }));
    }
}

/// Write the buffered samples of `segment` as one fragment; returns the next sequence number.
fn flush_fragment(segment: &mut SegmentBuilder, sequence: u32) -> u32 {
    if segment.video.is_empty() && segment.audio.is_empty() {
        return sequence;
    }
    let fragment = write_fragment(
        sequence,
        &[
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                base_decode_time: segment.video_base,
                samples: &segment.video,
                per_sample_flags: true,
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                base_decode_time: segment.audio_base,
                samples: &segment.audio,
                per_sample_flags: false,
            },
        ],
    );
    segment.fragments.extend_from_slice(&fragment);
    segment.video_base += segment
        .video
        .iter()
        .map(|s| u64::from(s.duration))
        .sum::<u64>();
    segment.video.clear();
    // The audio base is set again by the next audio sample pushed.
    segment.audio.clear();
    sequence.wrapping_add(1)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let timescale = u64::from(VIDEO_TIMESCALE);
    // Seconds apart: ticks × 10⁹ overflows u64 past 2⁶⁴ / 10⁹ / 90,000 s ≈ 57 hours, which a
    // session's PROGRAM-DATE-TIME reaches (found by the segmenter fuzz target).
    Duration::from_secs(ticks / timescale)
        + Duration::from_nanos(ticks % timescale * 1_000_000_000 / timescale)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// avcC of x264 1280x720 High@3.1 (see media::avc tests for the field by field reading):
    /// header, the 26-byte SPS, the 6-byte PPS, the High-profile extension.
    pub(crate) const AVCC_720P: [u8; 47] = [
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, //
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60, //
        0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, //
        0xfd, 0xf8, 0xf8, 0x00,
    ];

    pub(crate) fn video_config() -> AvcDecoderConfig {
        AvcDecoderConfig::parse(Bytes::from_static(&AVCC_720P)).expect("valid avcC")
    }

    /// AAC-LC, 48 kHz, stereo: 00010 0011 0010 000 (ISO 14496-3 §1.6.2.1).
    pub(crate) fn audio_config() -> AudioSpecificConfig {
        AudioSpecificConfig::parse(Bytes::from_static(&[0x11, 0x90])).expect("valid ASC")
    }

    fn video(dts_ms: i64, keyframe: bool) -> MuxerInput {
        MuxerInput::Packet(MediaPacket {
            kind: TrackKind::Video,
            dts_ms,
            pts_ms: dts_ms + 66,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        })
    }

    fn audio(dts_ms: i64) -> MuxerInput {
        MuxerInput::Packet(MediaPacket {
            kind: TrackKind::Audio,
            dts_ms,
            pts_ms: dts_ms,
            keyframe: true,
            data: Bytes::from_static(&[0x21]),
        })
    }

    /// `seconds` of 30 fps video with a keyframe every 2 s and 48 kHz AAC, timestamps rounded
    /// to milliseconds as RTMP carries them, starting at `start_ms`.
    fn session(segmenter: &mut Segmenter, start_ms: i64, seconds: i64) -> Vec<MuxerOutput> {
        let mut out = segmenter.push(MuxerInput::VideoConfig(video_config()));
        out.extend(segmenter.push(MuxerInput::AudioConfig(audio_config())));
        let frames = seconds * 30;
        let mut audio_frame = 0i64;
        for frame in 0..frames {
            let dts = start_ms + frame * 1000 / 30;
            out.extend(segmenter.push(video(dts, frame % 60 == 0)));
            while start_ms + audio_frame * 1024 * 1000 / 48000 < dts + 33 {
                out.extend(segmenter.push(audio(start_ms + audio_frame * 1024 * 1000 / 48000)));
                audio_frame += 1;
            }
        }
        out
    }

    fn segments(outputs: &[MuxerOutput]) -> Vec<&MediaSegment> {
        outputs
            .iter()
            .filter_map(|o| {
                if let MuxerOutput::Segment(s) = o {
                    Some(s)
                } else {
                    None
                }
            })
            .collect()
    }

    /// baseMediaDecodeTime of the first traf (video) of a segment's first fragment:
    /// moof(8) mfhd(16) traf(8) tfhd(16), then tfdt: header(12) + u64.
    fn first_video_tfdt(segment: &MediaSegment) -> u64 {
        assert_eq!(&segment.data[52..56], b"tfdt");
        u64::from_be_bytes(segment.data[60..68].try_into().unwrap())
    }

    #[test]
    fn segments_are_cut_on_keyframes_at_the_target() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        let mut out = session(&mut segmenter, 1000, 6);
        out.extend(segmenter.end_session());
        assert!(
            matches!(&out[0], MuxerOutput::Init(init) if init.generation == 0 && init.tracks.audio.is_some())
        );
        let segments = segments(&out);
        assert_eq!(segments.len(), 3);
        for (index, segment) in segments.iter().enumerate() {
            assert_eq!(segment.video_frames, 60);
            assert!(!segment.discontinuity);
            assert_eq!(segment.start_ticks, index as u64 * 180_000);
            assert_eq!(first_video_tfdt(segment), index as u64 * 180_000);
            let millis = segment.duration.as_millis();
            assert!(
                (1999..=2001).contains(&millis),
                "segment {index}: {millis} ms"
            );
        }
    }

    #[test]
    fn audio_that_starts_after_the_first_keyframe_gets_a_track() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        let mut out = segmenter.push(MuxerInput::VideoConfig(video_config()));
        out.extend(segmenter.push(video(0, true)));
        // The audio config 20 ms after the first keyframe: the init (not used yet) is replaced.
        out.extend(segmenter.push(MuxerInput::AudioConfig(audio_config())));
        for frame in 1..130 {
            out.extend(segmenter.push(video(frame * 1000 / 30, frame % 60 == 0)));
            out.extend(segmenter.push(audio(frame * 1000 / 30)));
        }
        let inits: Vec<(u32, bool)> = out
            .iter()
            .filter_map(|o| match o {
                MuxerOutput::Init(init) => Some((init.generation, init.tracks.audio.is_some())),
                _ => None,
            })
            .collect();
        assert_eq!(inits, [(0, false), (1, true)]);
        let first = segments(&out);
        assert!(first
            .iter()
            .all(|s| s.init_generation == 1 && !s.discontinuity));

        // Audio that starts after segments went out: a new init behind a discontinuity.
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        let mut out = segmenter.push(MuxerInput::VideoConfig(video_config()));
        for frame in 0..70 {
            out.extend(segmenter.push(video(frame * 1000 / 30, frame % 60 == 0)));
        }
        out.extend(segmenter.push(MuxerInput::AudioConfig(audio_config())));
        for frame in 70..190 {
            out.extend(segmenter.push(video(frame * 1000 / 30, frame % 60 == 0)));
            out.extend(segmenter.push(audio(frame * 1000 / 30)));
        }
        let segments = segments(&out);
        assert_eq!(
            segments
                .iter()
                .map(|s| (s.init_generation, s.discontinuity))
                .collect::<Vec<_>>(),
            [(0, false), (0, false), (1, true)]
        );
    }

    #[test]
    fn a_reconnect_continues_the_timeline_behind_a_discontinuity() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        let mut out = session(&mut segmenter, 0, 4);
        out.extend(segmenter.end_session());
        let first_end = segments(&out)
            .iter()
            .map(|s| s.start_ticks + (s.duration.as_nanos() * 9 / 100_000) as u64)
            .max()
            .unwrap();
        // The new publisher's clock starts at 0 again.
        segmenter.begin_session(SessionStart::now(0));
        let mut out = session(&mut segmenter, 0, 4);
        out.extend(segmenter.end_session());
        assert!(matches!(&out[0], MuxerOutput::Init(init) if init.generation == 1));
        let segments = segments(&out);
        assert!(segments[0].discontinuity && segments[0].init_generation == 1);
        assert!(!segments[1].discontinuity);
        assert_eq!(segments[0].start_ticks, first_end);
        assert_eq!(first_video_tfdt(segments[0]), first_end);
    }

    #[test]
    fn timestamps_going_backwards_are_reanchored() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        segmenter.push(MuxerInput::VideoConfig(video_config()));
        let mut out = Vec::new();
        for (dts, key) in [
            (5000, true),
            (5033, false),
            (100, false),
            (133, false),
            (166, true),
        ] {
            out.extend(segmenter.push(video(dts, key)));
        }
        out.extend(segmenter.end_session());
        let segments = segments(&out);
        assert_eq!(
            segments.len(),
            1,
            "no cut: the keyframe came 4 frames after the start"
        );
        assert_eq!(segments[0].video_frames, 5);
        // 5 frames of (at most) 33 ms: the jump back did not create a negative or huge duration.
        assert!(
            segments[0].duration.as_millis() <= 5 * 34,
            "{:?}",
            segments[0].duration
        );
    }

    #[test]
    fn durations_past_57_hours() {
        // 2.5 s = 225,000 ticks at 90 kHz; 100 h = 32,400,000,000 ticks (×10⁹ overflowed).
        assert_eq!(ticks_to_duration(225_000), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1), Duration::from_nanos(11_111));
        assert_eq!(
            ticks_to_duration(32_400_000_000),
            Duration::from_secs(100 * 3600)
        );
    }

    /// From the segmenter fuzz target: the publisher's clock went back (to 0) right after a
    /// codec change closed the segment; the next segment started at tfdt 0, before the one
    /// already in the playlist.
    #[test]
    fn timestamps_going_back_after_a_codec_change_continue_the_timeline() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        segmenter.push(MuxerInput::VideoConfig(video_config()));
        let mut out = Vec::new();
        for dts in [5000, 5033] {
            out.extend(segmenter.push(video(dts, dts == 5000)));
        }
        out.extend(segmenter.restart_output());
        for dts in [0, 33] {
            out.extend(segmenter.push(video(dts, dts == 0)));
        }
        out.extend(segmenter.end_session());
        let segments = segments(&out);
        assert_eq!(segments.len(), 2);
        // The first segment: two frames of 33 ms (2,970 ticks each) from tfdt 0.
        assert_eq!(segments[0].start_ticks, 0);
        let first_end = 2 * 2970;
        assert!(segments[1].discontinuity);
        assert_eq!(segments[1].start_ticks, first_end);
        assert_eq!(first_video_tfdt(segments[1]), first_end);
    }

    #[test]
    fn a_new_sequence_header_starts_a_new_init() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        let mut out = session(&mut segmenter, 0, 1);
        let mut changed = AVCC_720P.to_vec();
        changed[3] = 0x28; // level 4.0
        out.extend(segmenter.push(MuxerInput::VideoConfig(
            AvcDecoderConfig::parse(Bytes::from(changed)).unwrap(),
        )));
        out.extend(segmenter.push(video(1000, true)));
        out.extend(segmenter.end_session());
        let generations: Vec<u32> = out
            .iter()
            .filter_map(|o| {
                if let MuxerOutput::Init(i) = o {
                    Some(i.generation)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(generations, [0, 1]);
        let segments = segments(&out);
        assert_eq!(segments.len(), 2);
        assert!(segments[1].discontinuity && segments[1].init_generation == 1);
    }

    #[test]
    fn the_last_segment_lasts_until_its_last_picture_is_shown() {
        // I P B (decode order) at 25 fps, the publisher gone before the second B: the P frame
        // is shown last, at 160 ms, although it is decoded second.
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        segmenter.push(MuxerInput::VideoConfig(video_config()));
        for (dts, pts, keyframe) in [(0, 40, true), (40, 160, false), (80, 80, false)] {
            let packet = MediaPacket {
                kind: TrackKind::Video,
                dts_ms: dts,
                pts_ms: pts,
                keyframe,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            };
            segmenter.push(MuxerInput::Packet(packet));
        }
        let out = segmenter.end_session();
        let segments = segments(&out);
        // Shown from 40 ms to 160 + 40 ms: 160 ms, not the 3 × 40 ms of decode times.
        assert_eq!(segments[0].duration.as_millis(), 160);
    }

    #[test]
    fn nothing_is_output_before_a_keyframe_and_a_config() {
        let mut segmenter = Segmenter::new(2);
        segmenter.begin_session(SessionStart::now(0));
        assert!(
            segmenter.push(video(0, true)).is_empty(),
            "no sequence header yet"
        );
        segmenter.push(MuxerInput::VideoConfig(video_config()));
        assert!(
            segmenter.push(video(33, false)).is_empty(),
            "not a keyframe"
        );
        assert!(segmenter.push(audio(40)).is_empty());
        assert!(segmenter.end_session().is_empty());
    }
}
