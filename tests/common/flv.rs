//! The test video as an FLV file, read tag by tag into what our RTMP ingest would hand on from
//! the same tags, as the muxer takes it (`MuxerInput`: the fixture's audio is AAC; the FLV file
//! format is the RTMP message stream with a file header and tag headers around it).

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use selfcast::hls::MuxerInput;
use selfcast::media::flv::{parse_audio_tag, parse_video_tag, AudioTag, VideoTag};
use selfcast::media::{AudioSpecificConfig, AvcDecoderConfig, MediaPacket, TrackKind};

use super::{fixture, fixture_dir};

/// The shared test video (1280x720 30 fps H.264 High with B-frames, 2 s GOP, AAC) remuxed to
/// FLV without re-encoding, as `ffmpeg -c copy -f flv` sends it over RTMP.
pub fn fixture_as_flv() -> PathBuf {
    let source = fixture();
    let path = fixture_dir().join("fixture-copy.flv");
    if !path.exists() {
        let tmp = path.with_extension(format!("tmp{}.flv", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-y", "-i"])
            .arg(&source.path)
            .args(["-c", "copy", "-f", "flv"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs");
        assert!(
            status.success(),
            "ffmpeg could not remux the fixture to FLV"
        );
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// FLV file tags (FLV spec E.4.1): (type, timestamp ms, body).
pub fn flv_tags(data: &[u8]) -> Vec<(u8, i64, Bytes)> {
    assert_eq!(&data[0..3], b"FLV");
    let mut at = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize + 4;
    let mut tags = Vec::new();
    while at + 11 <= data.len() {
        let kind = data[at] & 0x1f;
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let timestamp = i64::from(u32::from_be_bytes([
            data[at + 7],
            data[at + 4],
            data[at + 5],
            data[at + 6],
        ]));
        tags.push((
            kind,
            timestamp,
            Bytes::copy_from_slice(&data[at + 11..at + 11 + size]),
        ));
        at += 11 + size + 4;
    }
    tags
}

/// The tags as muxer input, in file order.
pub fn events(tags: Vec<(u8, i64, Bytes)>) -> Vec<MuxerInput> {
    let mut events = Vec::new();
    for (kind, dts_ms, body) in tags {
        match kind {
            9 => match parse_video_tag(&body).expect("valid video tag") {
                VideoTag::SequenceHeader(record) => events.push(MuxerInput::VideoConfig(
                    AvcDecoderConfig::parse(record).unwrap(),
                )),
                VideoTag::Frame {
                    keyframe,
                    composition_time_ms,
                    data,
                } => events.push(MuxerInput::Packet(MediaPacket {
                    kind: TrackKind::Video,
                    dts_ms,
                    pts_ms: dts_ms + i64::from(composition_time_ms),
                    keyframe,
                    data,
                })),
                VideoTag::EndOfSequence => {}
            },
            8 => match parse_audio_tag(&body).expect("valid audio tag") {
                AudioTag::SequenceHeader(raw) => events.push(MuxerInput::AudioConfig(
                    AudioSpecificConfig::parse(raw).unwrap(),
                )),
                AudioTag::Frame(data) => events.push(MuxerInput::Packet(MediaPacket {
                    kind: TrackKind::Audio,
                    dts_ms,
                    pts_ms: dts_ms,
                    keyframe: true,
                    data,
                })),
                other => panic!("these tests read AAC audio only, not {other:?}"),
            },
            _ => {} // script data (onMetaData)
        }
    }
    events
}

/// Writes an FLV file from tags in the form [`flv_tags`] reads them (type, timestamp ms, body):
/// the 9-byte header (FLV spec E.2; the audio/video flags say which kinds of tags follow),
/// `PreviousTagSize0` = 0, then per tag (E.3, E.4.1) the type, the 24-bit body size, the
/// timestamp's low 24 bits and its extension byte (bits 24-31), stream id 0, the body, and the
/// `PreviousTagSize` (11 + body size). A timestamp is written modulo 2^32, as RTMP carries it.
pub fn write_flv(tags: &[(u8, i64, Bytes)]) -> Vec<u8> {
    let total: usize = tags.iter().map(|(_, _, b)| b.len() + 15).sum();
    let mut out = Vec::with_capacity(13 + total);
    let has_audio = tags.iter().any(|(k, _, _)| *k == 8);
    let has_video = tags.iter().any(|(k, _, _)| *k == 9);
    out.extend_from_slice(b"FLV\x01");
    out.push(u8::from(has_audio) << 2 | u8::from(has_video));
    out.extend_from_slice(&9u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for (kind, timestamp, body) in tags {
        assert!(body.len() < 1 << 24, "FLV tag body of {} bytes", body.len());
        let ts = *timestamp as u32;
        out.push(*kind);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&ts.to_be_bytes()[1..]);
        out.push((ts >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(body);
        out.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    out
}

/// An AVC sequence header tag body (FLV video tag, `AVCPacketType` 0)?
pub fn is_avc_sequence_header(kind: u8, body: &[u8]) -> bool {
    kind == 9 && body.len() >= 2 && body[0] & 0x0f == 7 && body[1] == 0
}

/// An AAC sequence header tag body (FLV audio tag, `AACPacketType` 0)?
pub fn is_aac_sequence_header(kind: u8, body: &[u8]) -> bool {
    kind == 8 && body.len() >= 2 && body[0] >> 4 == 10 && body[1] == 0
}
