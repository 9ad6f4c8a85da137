//! The codec half of the ladder against FFmpeg as the judge: the shared fixture (1280x720 30 fps
//! High with B-frames, as FLV tags) is decoded once with `VideoDecoder`, encoded by two
//! `VideoEncoder`s (854x480 at 1000 kbps veryfast, 640x360 at 600 kbps superfast) with
//! keyframes forced where the source crosses each 2 s boundary, and muxed by one `Segmenter`
//! per variant with the source's AAC passed through. Each variant's init + segments,
//! concatenated, must probe as H.264 of its size, decode cleanly with every source frame, come
//! within 25 % of its bitrate, and cut its 6 segments at the same times as the other variant.
//!
//! The CPU time of decoding and of the whole transcode per media second is printed (run with
//! `--nocapture`); it is information for the benchmark, not asserted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::flv::{events, fixture_as_flv, flv_tags};
use common::{count_video_frames, ffmpeg_decode, ffprobe_json, fixture, stream_spans};
use selfcast::hls::{MuxerInput, MuxerOutput, Segmenter, SessionStart};
use selfcast::media::TrackKind;
use selfcast::transcode::decoder::{DecodedFrame, VideoDecoder};
use selfcast::transcode::encoder::{EncoderSettings, VideoEncoder};

const SEGMENT_SECONDS: u32 = 2;

struct Variant {
    name: &'static str,
    settings: EncoderSettings,
    encoder: Option<VideoEncoder>,
    segmenter: Segmenter,
    outputs: Vec<MuxerOutput>,
    encoded_bytes: u64,
}

impl Variant {
    fn new(name: &'static str, width: u32, height: u32, kbps: u32, preset: &'static str) -> Self {
        let mut segmenter = Segmenter::new(SEGMENT_SECONDS);
        segmenter.begin_session(SessionStart::now(0));
        Variant {
            name,
            settings: EncoderSettings {
                width,
                height,
                video_bitrate_kbps: kbps,
                max_framerate: None,
                preset,
                gop_frames: 30 * SEGMENT_SECONDS,
                frame_rate_hint: 30.0,
                threads: 0,
            },
            encoder: None,
            segmenter,
            outputs: Vec::new(),
            encoded_bytes: 0,
        }
    }

    fn push(&mut self, input: MuxerInput) {
        let outputs = self.segmenter.push(input);
        self.outputs.extend(outputs);
    }

    fn encode(&mut self, frame: &DecodedFrame, force_keyframe: bool) {
        if self.encoder.is_none() {
            let f = &frame.frame;
            let encoder = VideoEncoder::new(&self.settings, f.width(), f.height(), f.format())
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
            self.push(MuxerInput::VideoConfig(encoder.config().clone()));
            self.encoder = Some(encoder);
        }
        let encoder = self.encoder.as_mut().unwrap();
        let packets = encoder
            .encode(frame, force_keyframe)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        self.mux(packets);
    }

    fn finish(&mut self) {
        let packets = self.encoder.as_mut().expect("an encoder").flush().unwrap();
        self.mux(packets);
        let outputs = self.segmenter.end_session();
        self.outputs.extend(outputs);
    }

    fn mux(&mut self, packets: Vec<selfcast::transcode::encoder::EncodedVideo>) {
        for packet in packets {
            self.encoded_bytes += packet.data.len() as u64;
            self.push(MuxerInput::Packet(packet.into_media_packet()));
        }
    }

    fn segment_starts(&self) -> Vec<u64> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                MuxerOutput::Segment(s) => Some(s.start_ticks),
                MuxerOutput::Init(_) => None,
            })
            .collect()
    }

    fn write_joined(&self) -> PathBuf {
        let mut joined = Vec::new();
        for output in &self.outputs {
            match output {
                MuxerOutput::Init(init) => joined.extend_from_slice(&init.data),
                MuxerOutput::Segment(segment) => joined.extend_from_slice(&segment.data),
            }
        }
        let path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("transcode-{}.mp4", self.name));
        std::fs::write(&path, &joined).unwrap();
        path
    }
}

/// User + system CPU seconds of this process so far (all threads: ours, libavcodec's, x264's).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    (ticks(11) + ticks(12)) / per_second
}

/// Presentation times of the video keyframes in `path`, as ffprobe reads them.
fn keyframe_times(path: &Path) -> Vec<String> {
    let probe = ffprobe_json(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
        ],
    )
    .unwrap();
    probe["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["flags"].as_str().is_some_and(|f| f.starts_with('K')))
        .map(|p| p["pts_time"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Bytes of the video packets in `path`.
fn video_bytes(path: &Path) -> u64 {
    let probe = ffprobe_json(
        path,
        &["-select_streams", "v:0", "-show_entries", "packet=size"],
    )
    .unwrap();
    probe["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["size"].as_str()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_two_rung_ladder_probes_decodes_and_lines_up() {
    ffmpeg_next::init().expect("ffmpeg init");
    let source = fixture();
    let events = events(flv_tags(&std::fs::read(fixture_as_flv()).unwrap()));
    let media_seconds = source.video_frames as f64 / f64::from(source.fps);

    // Pass 1, informative: what decoding alone costs.
    let cpu = cpu_seconds();
    let mut decoder = None;
    let mut decoded = 0u64;
    for event in &events {
        match event {
            MuxerInput::VideoConfig(config) => {
                decoder.get_or_insert_with(|| VideoDecoder::new(config, 0).expect("decoder"));
            }
            MuxerInput::Packet(p) if p.kind == TrackKind::Video => {
                decoded += decoder.as_mut().unwrap().decode(p).unwrap().len() as u64;
            }
            _ => {}
        }
    }
    decoded += decoder.take().unwrap().flush().len() as u64;
    let decode_cpu = cpu_seconds() - cpu;
    assert_eq!(decoded, source.video_frames, "every source frame decodes");

    // Pass 2: decode once, encode twice, mux each.
    let mut variants = [
        Variant::new("480p", 854, 480, 1000, "veryfast"),
        Variant::new("360p", 640, 360, 600, "superfast"),
    ];
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut decoder = None;
    let mut first_pts = None;
    let mut last_epoch = None;
    let mut frames_in = 0u64;
    let mut encode_all = |frames: Vec<DecodedFrame>, variants: &mut [Variant]| {
        for frame in frames {
            frames_in += 1;
            // Keyframe on the first frame at or past each 2 s boundary after the first frame
            // (1 ms early counts: 30 fps in whole milliseconds puts 2 s at 1999 or 2000).
            let first = *first_pts.get_or_insert(frame.pts_ms);
            let epoch = (frame.pts_ms - first + 1).div_euclid(i64::from(SEGMENT_SECONDS) * 1000);
            let force = last_epoch != Some(epoch);
            last_epoch = Some(epoch);
            for variant in variants.iter_mut() {
                // Each encoder thread gets its own reference to the picture.
                variant.encode(&frame.clone(), force);
            }
        }
    };
    for event in events {
        match event {
            MuxerInput::VideoConfig(config) => {
                decoder.get_or_insert_with(|| VideoDecoder::new(&config, 0).expect("decoder"));
            }
            MuxerInput::Packet(p) if p.kind == TrackKind::Video => {
                let frames = decoder.as_mut().unwrap().decode(&p).expect("decodes");
                encode_all(frames, &mut variants);
            }
            audio => {
                for variant in variants.iter_mut() {
                    variant.push(audio.clone());
                }
            }
        }
    }
    encode_all(decoder.take().unwrap().flush(), &mut variants);
    for variant in variants.iter_mut() {
        variant.finish();
    }
    let transcode_cpu = cpu_seconds() - cpu;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(frames_in, source.video_frames);

    eprintln!(
        "CPU per media second: decode alone {:.3} s; decode + 2 encodes + mux {:.3} s \
         (wall {:.3} s) over {media_seconds:.1} s of 1280x720 30 fps, {} cores",
        decode_cpu / media_seconds,
        transcode_cpu / media_seconds,
        wall / media_seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let mut starts = Vec::new();
    let mut keyframes = Vec::new();
    for variant in &variants {
        let encoder = variant.encoder.as_ref().unwrap();
        eprintln!(
            "{}: {} {}x{}; x264 options as applied: {}",
            variant.name,
            encoder.config().codecs_string(),
            variant.settings.width,
            variant.settings.height,
            encoder.x264_settings().unwrap_or("(no x264 SEI)")
        );
        let path = variant.write_joined();
        let probe = ffprobe_json(&path, &["-show_streams"]).unwrap();
        let streams = probe["streams"].as_array().unwrap();
        let video = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("a video stream");
        assert_eq!(video["codec_name"], "h264", "{}", variant.name);
        assert_eq!(video["profile"], "High", "{}", variant.name);
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (
                Some(u64::from(variant.settings.width)),
                Some(u64::from(variant.settings.height))
            ),
            "{}",
            variant.name
        );
        let audio = streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .expect("the source's audio");
        assert_eq!(audio["codec_name"], "aac");

        assert_eq!(
            count_video_frames(&path).unwrap(),
            source.video_frames,
            "{}: every source frame is in the output",
            variant.name
        );
        let (status, errors) = ffmpeg_decode(&path);
        assert!(
            status.success() && errors.is_empty(),
            "{}: decode errors: {errors}",
            variant.name
        );

        let (video_span, _) = stream_spans(&path).unwrap();
        let seconds = video_span.expect("video packets").duration();
        let bytes = video_bytes(&path);
        assert_eq!(
            bytes, variant.encoded_bytes,
            "{}: muxed as encoded",
            variant.name
        );
        let kbps = bytes as f64 * 8.0 / seconds / 1000.0;
        let target = f64::from(variant.settings.video_bitrate_kbps);
        eprintln!(
            "{}: {kbps:.0} kbps over {seconds:.3} s (target {target}), {} segments",
            variant.name,
            variant.segment_starts().len()
        );
        assert!(
            (kbps - target).abs() <= 0.25 * target,
            "{}: {kbps:.0} kbps, target {target}",
            variant.name
        );

        starts.push(variant.segment_starts());
        keyframes.push(keyframe_times(&path));
    }

    let expected = (source.duration / f64::from(SEGMENT_SECONDS)).floor() as usize;
    assert_eq!(expected, 6);
    assert_eq!(
        starts[0].len(),
        expected,
        "480p segment starts {:?}",
        starts[0]
    );
    assert_eq!(starts[0], starts[1], "segments start at the same times");
    for pair in starts[0].windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            step.abs_diff(u64::from(SEGMENT_SECONDS) * 90_000) <= 3000,
            "segment of {step} ticks in {:?}",
            starts[0]
        );
    }
    // Keyframes only where segments start, at the same times in both variants.
    assert_eq!(
        keyframes[0].len(),
        expected,
        "480p keyframes at {:?}",
        keyframes[0]
    );
    assert_eq!(keyframes[0], keyframes[1]);
}
