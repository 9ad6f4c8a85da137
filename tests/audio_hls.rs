//! Issue 4, audio: "AAC from the source is passed through to every variant; another codec is
//! encoded to AAC", and `audio_bitrate_kbps` per variant.
//!
//! - `mp3_becomes_aac_in_every_variant`: the fixture's video with MP3 audio (FLV SoundFormat 2,
//!   what older encoders send), through the source + a 240p rendition whose audio is set to
//!   64 kbps: both variants carry AAC-LC at the source's rate, as long as their video, at 128
//!   kbps (the default for a source that is not AAC) and 64 kbps.
//! - `aac_is_copied_unless_a_bitrate_is_set`: the fixture (AAC 128 kbps) through the source with
//!   `audio_bitrate_kbps = 48` + a 240p rendition without: the passthrough variant's audio is
//!   re-encoded at 48 kbps while its video is copied; the 240p variant carries the source's AAC
//!   frames byte for byte.
//!
//! The publisher is `ffmpeg -re ... -c copy -f flv`; every variant's init + segments are
//! downloaded once the publish is over and read with ffprobe (codec, rate, channels, packet
//! sizes) and decoded with `ffmpeg -v error` (not a word allowed).
//!
//! Run: `cargo test --release --test audio_hls -- --nocapture`

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;

/// Seconds of the fixture published.
const SECONDS: &str = "8";

/// One test at a time: each transcodes in real time, on a 2-core machine.
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ladder(source_audio_kbps: Option<u32>, low_audio_kbps: Option<u32>) -> String {
    let audio =
        |kbps: Option<u32>| kbps.map_or(String::new(), |k| format!("audio_bitrate_kbps = {k}\n"));
    format!(
        "\n[[video.variants]]\nname = \"source\"\npassthrough = true\n{}\
         \n[[video.variants]]\nname = \"240p\"\nheight = 240\nvideo_bitrate_kbps = 300\ncpu_usage_level = 0\n{}",
        audio(source_audio_kbps),
        audio(low_audio_kbps)
    )
}

/// What one variant's downloaded media holds.
#[derive(Debug)]
struct Audio {
    codec: String,
    profile: String,
    sample_rate: u64,
    channels: u64,
    /// Audio packets: their sizes, and their span in seconds.
    sizes: Vec<u64>,
    seconds: f64,
    video_seconds: f64,
}

impl Audio {
    fn kbps(&self) -> f64 {
        self.sizes.iter().sum::<u64>() as f64 * 8.0 / self.seconds / 1000.0
    }
}

fn probe_audio(path: &Path) -> Audio {
    let v = ffprobe_json(
        path,
        &["-show_streams", "-select_streams", "a:0", "-show_packets"],
    )
    .unwrap_or_else(|e| panic!("ffprobe {}: {e}", path.display()));
    let stream = &v["streams"][0];
    let (video, audio) = stream_spans(path).expect("spans");
    let text = |key: &str| stream[key].as_str().unwrap_or_default().to_string();
    Audio {
        codec: text("codec_name"),
        profile: text("profile"),
        sample_rate: text("sample_rate").parse().unwrap_or(0),
        channels: stream["channels"].as_u64().unwrap_or(0),
        sizes: v["packets"]
            .as_array()
            .expect("packets")
            .iter()
            .map(|p| p["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
            .collect(),
        seconds: audio.map_or(0.0, |a| a.duration()),
        video_seconds: video.map_or(0.0, |v| v.duration()),
    }
}

/// The fixture's first seconds with their audio as MP3 (44.1 kHz stereo), in FLV.
fn mp3_input(dir: &Path) -> PathBuf {
    let out = dir.join("mp3.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&fixture().path)
        .args([
            "-t",
            SECONDS,
            "-c:v",
            "copy",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
        ])
        .args(["-ar", "44100", "-ac", "2"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "making the MP3 input failed: {status}");
    out
}

/// Publishes `input` once, waits for the stream to end, downloads each variant's init +
/// segments (one file per variant) and returns them with the master playlist.
fn publish_and_download(
    server: &Server,
    input: &Path,
    extra: &[&str],
    dir: &Path,
) -> (String, Vec<PathBuf>) {
    let mut publisher = Publisher::start("audio", input, &server.publish_url(), extra);
    server.wait_online(true, Duration::from_secs(30));
    publisher.expect_success(Duration::from_secs(60), "publish");
    server.wait_online(false, Duration::from_secs(30));
    let master = http_get(&server.master_url()).expect("master").text();
    let mut files = Vec::new();
    for index in 0..2 {
        let url = server.url(&format!("/hls/{index}/stream.m3u8"));
        let (_, fetched) = fetch_media(&url).expect("media playlist");
        let segments = &fetched.pl.segments;
        assert!(segments.len() >= 3, "variant {index}: {}", fetched.text);
        assert!(
            !segments.iter().any(|s| s.discontinuity),
            "variant {index}: one publish, one codec: no discontinuity\n{}",
            fetched.text
        );
        let map = segments[0].map.as_ref().expect("EXT-X-MAP");
        let urls: Vec<String> = segments
            .iter()
            .map(|s| hls::resolve(&url, &s.uri))
            .collect();
        let file = dir.join(format!("variant{index}.mp4"));
        let problems =
            download_concat(&hls::resolve(&url, &map.uri), &urls, &file).expect("download");
        assert!(problems.is_empty(), "{problems:?}");
        let (status, errors) = ffmpeg_decode(&file);
        assert!(
            status.success() && errors.trim().is_empty(),
            "variant {index} decodes with errors:\n{errors}"
        );
        files.push(file);
    }
    (master, files)
}

fn check_aac(variant: &str, audio: &Audio, sample_rate: u64) {
    eprintln!(
        "{variant}: {} {} {} Hz {} ch, {} frames over {:.2} s (video {:.2} s), {:.1} kbps",
        audio.codec,
        audio.profile,
        audio.sample_rate,
        audio.channels,
        audio.sizes.len(),
        audio.seconds,
        audio.video_seconds,
        audio.kbps()
    );
    assert_eq!(
        (
            audio.codec.as_str(),
            audio.profile.as_str(),
            audio.sample_rate,
            audio.channels
        ),
        ("aac", "LC", sample_rate, 2),
        "{variant}"
    );
    assert!(
        (audio.seconds - audio.video_seconds).abs() < 0.3,
        "{variant}: audio {:.2} s beside video {:.2} s",
        audio.seconds,
        audio.video_seconds
    );
}

fn assert_near(variant: &str, kbps: f64, target: f64) {
    assert!(
        (kbps / target - 1.0).abs() < 0.25,
        "{variant}: audio at {kbps:.1} kbps, configured {target}"
    );
}

#[test]
fn mp3_becomes_aac_in_every_variant() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let input = mp3_input(work.path());
    let server = Server::start(ServerOptions {
        playlist_segments: 20,
        ladder_toml: ladder(None, Some(64)),
        ..Default::default()
    });
    let (master, files) = publish_and_download(&server, &input, &[], work.path());
    let codecs: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .collect();
    assert!(
        codecs.len() == 2 && codecs.iter().all(|l| l.contains("mp4a.40.2")),
        "every variant announces AAC-LC:\n{master}"
    );
    let input_codec = server.status()["input"]["audioCodec"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        input_codec.starts_with("MP3 44100 Hz stereo"),
        "/api/status input audio: {input_codec}"
    );

    let source = probe_audio(&files[0]);
    check_aac("source", &source, 44100);
    assert_near("source", source.kbps(), 128.0);
    let low = probe_audio(&files[1]);
    check_aac("240p", &low, 44100);
    assert_near("240p", low.kbps(), 64.0);
    assert!(
        server.stderr().contains("encoding the audio to AAC"),
        "{}",
        server.logs_report()
    );
}

#[test]
fn aac_is_copied_unless_a_bitrate_is_set() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let fx = fixture();
    let server = Server::start(ServerOptions {
        playlist_segments: 20,
        ladder_toml: ladder(Some(48), None),
        ..Default::default()
    });
    let (_, files) = publish_and_download(&server, &fx.path, &["-t", SECONDS], work.path());

    let source = probe_audio(&files[0]);
    check_aac(
        "source (audio at 48 kbps)",
        &source,
        u64::from(fx.sample_rate),
    );
    assert_near("source", source.kbps(), 48.0);

    let low = probe_audio(&files[1]);
    check_aac("240p (audio copied)", &low, u64::from(fx.sample_rate));
    // The source's own AAC frames: the same sizes, in the same order, as in the fixture.
    let original = probe_audio(&fx.path).sizes;
    let start = original
        .windows(low.sizes.len().min(20))
        .position(|w| w == &low.sizes[..w.len()])
        .unwrap_or_else(|| {
            panic!(
                "the 240p audio frames are not the source's: {:?}",
                &low.sizes[..20]
            )
        });
    eprintln!("240p audio = the source's AAC frames from frame {start}");
    assert_near("240p", low.kbps(), 128.0);
}
