//! The HLS segmenter (src/hls/segmenter.rs) fed arbitrary sequences of what ingest hands on:
//! publish sessions that begin and end, codec configs that change, video and audio packets
//! with timestamps that jump, go backwards and wrap, keyframes anywhere. The input is read as
//! a list of operations (`Op::read`).
//!
//! Checked on every output, with the tests' own ISO BMFF reader (tests/common/mp4.rs, which
//! shares no code with the muxer): every init segment and fragment parses back; a segment only
//! names tracks its init declares; video decode times (`tfdt`, 90 kHz on one timeline across
//! sessions) never go backwards, nor do audio ones within an init generation; a segment's
//! `start_ticks` is its first video `tfdt`.
#![no_main]

#[path = "../../tests/common/mp4.rs"]
#[allow(dead_code)]
mod mp4;

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use selfcast::hls::MuxerInput;
use selfcast::hls::{MuxerOutput, Segmenter, SessionStart, AUDIO_TRACK_ID, VIDEO_TRACK_ID};
use selfcast::media::{AudioSpecificConfig, AvcDecoderConfig, MediaPacket, TrackKind};

/// Real avcC records: x264 High 3.1 1280x720 (src/media/avc.rs tests) and Baseline 1.3 320x240.
const AVCC: [&[u8]; 2] = [
    &[
        0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40,
        0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0,
        0xf1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8,
        0xf8, 0x00,
    ],
    &[
        0x01, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41,
        0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42,
        0xa4, 0x80, 0x01, 0x00, 0x05, 0x68, 0xcb, 0x83, 0xcb, 0x20,
    ],
];
/// AudioSpecificConfigs: AAC-LC 44.1 kHz stereo, AAC-LC 48 kHz mono, HE-AAC (SBR) 24/48 kHz
/// stereo, AAC-LC 8 kHz stereo with 960-sample frames.
const ASC: [&[u8]; 4] = [
    &[0x12, 0x10],
    &[0x11, 0x88],
    &[0x2b, 0x12, 0x08, 0x00],
    &[0x15, 0x94],
];

enum Op {
    BeginSession { ticks_after_end: u64 },
    EndSession,
    RestartOutput,
    VideoConfig(AvcDecoderConfig),
    AudioConfig(AudioSpecificConfig),
    Packet(MediaPacket),
}

impl Op {
    fn read(u: &mut Unstructured<'_>, clock_ms: &mut i64) -> Result<Option<Op>> {
        Ok(Some(match u.int_in_range(0..=9u8)? {
            0 => Op::BeginSession {
                ticks_after_end: u64::from(u.arbitrary::<u16>()?) * 90,
            },
            1 => Op::EndSession,
            2 => Op::RestartOutput,
            3 => {
                let record = if u.arbitrary()? {
                    Bytes::copy_from_slice(bytes_up_to(u, 64)?)
                } else {
                    Bytes::from_static(AVCC[usize::from(u.int_in_range(0..=1u8)?)])
                };
                match AvcDecoderConfig::parse(record) {
                    Ok(config) => Op::VideoConfig(config),
                    Err(_) => return Ok(None),
                }
            }
            4 => {
                let raw = if u.arbitrary()? {
                    Bytes::copy_from_slice(bytes_up_to(u, 8)?)
                } else {
                    Bytes::from_static(ASC[usize::from(u.int_in_range(0..=3u8)?)])
                };
                match AudioSpecificConfig::parse(raw) {
                    Ok(config) => Op::AudioConfig(config),
                    Err(_) => return Ok(None),
                }
            }
            kind => {
                // Mostly steady steps, sometimes anything (RTMP timestamps are 32-bit ms, but
                // ingest unwraps them into i64).
                *clock_ms = match u.int_in_range(0..=7u8)? {
                    0 => i64::from(u.arbitrary::<i32>()?),
                    1 => *clock_ms - i64::from(u.arbitrary::<u8>()?),
                    _ => *clock_ms + i64::from(u.int_in_range(0..=100u8)?),
                };
                let video = kind <= 7;
                let pts_ms = if video {
                    *clock_ms + i64::from(u.int_in_range(-100..=300i16)?)
                } else {
                    *clock_ms
                };
                let payload = bytes_up_to(u, 48)?;
                if payload.is_empty() {
                    return Ok(None); // ingest hands on no empty frame
                }
                let data = if video {
                    // AVCC framing, as ingest checks it before anything reaches the muxer.
                    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
                    frame.extend_from_slice(payload);
                    Bytes::from(frame)
                } else {
                    Bytes::copy_from_slice(payload)
                };
                Op::Packet(MediaPacket {
                    kind: if video {
                        TrackKind::Video
                    } else {
                        TrackKind::Audio
                    },
                    dts_ms: *clock_ms,
                    pts_ms,
                    keyframe: !video || u.ratio(1, 8)?,
                    data,
                })
            }
        }))
    }
}

/// At most `max` bytes of the input, as many as it says.
fn bytes_up_to<'a>(u: &mut Unstructured<'a>, max: usize) -> Result<&'a [u8]> {
    let len = u.int_in_range(0..=max)?;
    u.bytes(len)
}

/// What the outputs so far must agree with.
#[derive(Default)]
struct Checks {
    /// Generation and track ids of the latest init segment.
    init: Option<(u32, Vec<u32>)>,
    last_video_tfdt: Option<u64>,
    /// Per init generation (the audio timescale may change with it).
    last_audio_tfdt: Option<(u32, u64)>,
}

impl Checks {
    fn output(&mut self, output: &MuxerOutput) {
        match output {
            MuxerOutput::Init(init) => {
                let tracks = mp4::tracks(&init.data).expect("the init segment parses");
                if let Some((previous, _)) = &self.init {
                    assert!(init.generation > *previous, "init generations only grow");
                }
                self.init = Some((init.generation, tracks.iter().map(|t| t.id).collect()));
            }
            MuxerOutput::Segment(segment) => {
                let (generation, track_ids) = self.init.as_ref().expect("an init before segments");
                assert_eq!(
                    segment.init_generation, *generation,
                    "a segment names the latest init"
                );
                let trafs = mp4::trafs(&segment.data).expect("the segment parses");
                let mut first_video = None;
                for traf in trafs {
                    assert!(
                        track_ids.contains(&traf.track_id),
                        "traf {traf:?} not in the init"
                    );
                    let tfdt = traf.base_decode_time.expect("every traf has a tfdt");
                    if traf.track_id == VIDEO_TRACK_ID {
                        first_video.get_or_insert(tfdt);
                        if let Some(last) = self.last_video_tfdt {
                            assert!(tfdt >= last, "video decode time went back: {last} → {tfdt}");
                        }
                        self.last_video_tfdt = Some(tfdt);
                    } else if traf.track_id == AUDIO_TRACK_ID {
                        if let Some((last_generation, last)) = self.last_audio_tfdt {
                            if last_generation == *generation {
                                assert!(
                                    tfdt >= last,
                                    "audio decode time went back: {last} → {tfdt}"
                                );
                            }
                        }
                        self.last_audio_tfdt = Some((*generation, tfdt));
                    }
                }
                if let Some(first_video) = first_video {
                    assert_eq!(
                        segment.start_ticks, first_video,
                        "start_ticks is the first tfdt"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut segmenter = Segmenter::new(u.int_in_range(1..=4).unwrap_or(2));
    let mut checks = Checks::default();
    let mut clock_ms = 0;
    let mut in_session = false;
    let wall_clock = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    while !u.is_empty() {
        let Ok(op) = Op::read(&mut u, &mut clock_ms) else {
            break;
        };
        let outputs = match op {
            None => continue,
            Some(Op::BeginSession { ticks_after_end }) => {
                if in_session {
                    segmenter
                        .end_session()
                        .iter()
                        .for_each(|o| checks.output(o));
                }
                in_session = true;
                segmenter.begin_session(SessionStart {
                    ticks: segmenter.timeline_end() + ticks_after_end,
                    wall_clock,
                });
                continue;
            }
            // The pipeline only pushes inside a session, as it does here.
            Some(_) if !in_session => continue,
            Some(Op::EndSession) => {
                in_session = false;
                segmenter.end_session()
            }
            Some(Op::RestartOutput) => segmenter.restart_output(),
            Some(Op::VideoConfig(config)) => segmenter.push(MuxerInput::VideoConfig(config)),
            Some(Op::AudioConfig(config)) => segmenter.push(MuxerInput::AudioConfig(config)),
            Some(Op::Packet(packet)) => segmenter.push(MuxerInput::Packet(packet)),
        };
        outputs.iter().for_each(|o| checks.output(o));
    }
    if in_session {
        segmenter
            .end_session()
            .iter()
            .for_each(|o| checks.output(o));
    }
});
