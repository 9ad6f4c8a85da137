//! The muxer alone, against FFmpeg as the judge: an FLV file made by the `ffmpeg` CLI (H.264
//! with B-frames + AAC, the tags OBS sends over RTMP) is fed tag by tag through our FLV parsing
//! and segmenter; init + segments, concatenated, must probe and decode cleanly with every frame.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::{count_video_frames, ffmpeg_decode, ffprobe_json, fixture, stream_spans};
use selfcast::hls::{MuxerOutput, Segmenter};
use selfcast::media::flv::{parse_audio_tag, parse_video_tag, AudioTag, VideoTag};
use selfcast::media::{AudioSpecificConfig, AvcDecoderConfig, IngestEvent, MediaPacket, TrackKind};

/// The shared test video (1280x720 30 fps H.264 High with B-frames, 2 s GOP, AAC) remuxed to
/// FLV without re-encoding, as `ffmpeg -c copy -f flv` sends it over RTMP.
fn fixture_as_flv() -> PathBuf {
    let source = fixture();
    let path = common::fixture_dir().join("fixture-copy.flv");
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
fn flv_tags(data: &[u8]) -> Vec<(u8, i64, Bytes)> {
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

fn events(tags: Vec<(u8, i64, Bytes)>) -> Vec<IngestEvent> {
    let mut events = Vec::new();
    for (kind, dts_ms, body) in tags {
        match kind {
            9 => match parse_video_tag(&body).expect("valid video tag") {
                VideoTag::SequenceHeader(record) => events.push(IngestEvent::VideoConfig(
                    AvcDecoderConfig::parse(record).unwrap(),
                )),
                VideoTag::Frame {
                    keyframe,
                    composition_time_ms,
                    data,
                } => events.push(IngestEvent::Packet(MediaPacket {
                    kind: TrackKind::Video,
                    dts_ms,
                    pts_ms: dts_ms + i64::from(composition_time_ms),
                    keyframe,
                    data,
                })),
                VideoTag::EndOfSequence => {}
            },
            8 => match parse_audio_tag(&body).expect("valid audio tag") {
                AudioTag::SequenceHeader(raw) => events.push(IngestEvent::AudioConfig(
                    AudioSpecificConfig::parse(raw).unwrap(),
                )),
                AudioTag::Frame(data) => events.push(IngestEvent::Packet(MediaPacket {
                    kind: TrackKind::Audio,
                    dts_ms,
                    pts_ms: dts_ms,
                    keyframe: true,
                    data,
                })),
            },
            _ => {} // script data (onMetaData)
        }
    }
    events
}

#[test]
fn segments_from_an_ffmpeg_flv_probe_and_decode_cleanly() {
    let flv = std::fs::read(fixture_as_flv()).unwrap();
    let mut segmenter = Segmenter::new(2);
    segmenter.begin_session();
    let mut outputs = Vec::new();
    for event in events(flv_tags(&flv)) {
        outputs.extend(segmenter.push(event));
    }
    outputs.extend(segmenter.end_session());

    let mut joined = Vec::new();
    let mut durations = Vec::new();
    for output in &outputs {
        match output {
            MuxerOutput::Init(init) => joined.extend_from_slice(&init.data),
            MuxerOutput::Segment(segment) => {
                joined.extend_from_slice(&segment.data);
                durations.push(segment.duration.as_secs_f64());
            }
        }
    }
    let source = fixture();
    let expected_segments = (source.video_frames / u64::from(source.gop_frames)) as usize;
    assert_eq!(durations.len(), expected_segments, "{durations:?}");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("muxer-joined.mp4");
    std::fs::write(&path, &joined).unwrap();

    let probe = ffprobe_json(&path, &["-show_streams"]).unwrap();
    let streams = probe["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("an audio stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(
        count_video_frames(&path).unwrap(),
        source.video_frames,
        "every frame decodes"
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);
    let (video_span, _) = stream_spans(&path).unwrap();
    let probed = video_span.expect("video packets").duration();
    let listed: f64 = durations.iter().sum();
    assert!(
        (probed - listed).abs() / listed < 0.05,
        "ffprobe {probed} s vs EXTINF sum {listed} s"
    );

    let (status, errors) = ffmpeg_decode(&path);
    assert!(
        status.success() && errors.is_empty(),
        "decode errors: {errors}"
    );

    // Presentation order: frame pts strictly increase by one frame (B-frames reordered right).
    let frames = ffprobe_json(
        &path,
        &["-select_streams", "v", "-show_entries", "frame=pts_time"],
    )
    .unwrap();
    let pts: Vec<f64> = frames["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pts_time"].as_str().unwrap().parse().unwrap())
        .collect();
    for pair in pts.windows(2) {
        assert!(
            (pair[1] - pair[0] - 1.0 / 30.0).abs() < 0.002,
            "pts step {} → {}",
            pair[0],
            pair[1]
        );
    }
}
