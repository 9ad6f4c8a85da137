//! The muxer alone, against FFmpeg as the judge: an FLV file made by the `ffmpeg` CLI (H.264
//! with B-frames + AAC, the tags OBS sends over RTMP) is fed tag by tag through our FLV parsing
//! and segmenter; init + segments, concatenated, must probe and decode cleanly with every frame.

mod common;

use std::path::Path;

use common::flv::{events, fixture_as_flv, flv_tags};
use common::{count_video_frames, ffmpeg_decode, ffprobe_json, fixture, stream_spans};
use selfcast::hls::{MuxerOutput, Segmenter, SessionStart};

#[test]
fn segments_from_an_ffmpeg_flv_probe_and_decode_cleanly() {
    let flv = std::fs::read(fixture_as_flv()).unwrap();
    let mut segmenter = Segmenter::new(2);
    segmenter.begin_session(SessionStart::now(0));
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
