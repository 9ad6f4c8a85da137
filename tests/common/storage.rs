//! What the storage tests (S3, directory, IPFS) share: reading `storage` in `/api/status`,
//! waiting for a state, selfcast's own playlist next to the sink's, a longer fixture, and
//! "does a player read this master playlist".

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::hls;
use super::*;

/// The master playlist as selfcast serves it.
pub const LOCAL_MASTER: &str = "/hls/stream.m3u8";

/// The test fixture played `loops` times in a row (stream copy, so the timestamps run on), for
/// publishes longer than its 12 s. Cached next to the fixture.
pub fn looped_fixture(loops: u32) -> PathBuf {
    let fx = fixture();
    let stem = fx.path.file_stem().unwrap().to_string_lossy().into_owned();
    let path = fixture_dir().join(format!("{stem}_x{loops}.mp4"));
    if path.exists() && ffprobe_json(&path, &["-show_format"]).is_ok() {
        return path;
    }
    let tmp = fixture_dir().join(format!("{stem}_x{loops}.tmp{}.mp4", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-stream_loop", &(loops - 1).to_string(), "-i"])
        .arg(&fx.path)
        .args(["-map", "0", "-c", "copy", "-movflags", "+faststart"])
        .arg(&tmp)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "looping the fixture failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&tmp, &path).expect("rename looped fixture into place");
    path
}

pub fn storage(status: &Value) -> &Value {
    &status["storage"]
}

pub fn state(status: &Value) -> &str {
    storage(status)["state"].as_str().unwrap_or("<none>")
}

pub fn last_error(status: &Value) -> String {
    storage(status)["lastError"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn hls_url(status: &Value) -> &str {
    status["hlsUrl"].as_str().unwrap_or("<none>")
}

pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Polls `/api/status` (every 200 ms, ≤ `timeout`) until `want` holds; panics with the last
/// status and `context()` otherwise.
pub fn wait_status(
    server: &Server,
    timeout: Duration,
    what: &str,
    want: impl Fn(&Value) -> bool,
    context: impl Fn() -> String,
) -> Value {
    let started = Instant::now();
    let mut last = Value::Null;
    let got = poll_until(timeout, Duration::from_millis(200), || {
        last = server.status();
        want(&last).then(|| last.clone())
    });
    match got {
        Some(v) => {
            eprintln!("[{:.1}s] {what}", started.elapsed().as_secs_f64());
            v
        }
        None => panic!(
            "waited {timeout:?} for: {what}\n---- last /api/status ----\n{}\n{}",
            pretty(&last),
            context()
        ),
    }
}

/// The URL of selfcast's own media playlist of its first variant (waits ≤ 20 s for a master).
pub fn local_media_url(server: &Server) -> String {
    let master_url = server.master_url();
    let mut last = String::new();
    let found = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let r = http_get(&master_url).ok()?;
        last = format!("HTTP {}: {}", r.status, r.text());
        if r.status != 200 {
            return None;
        }
        let master = hls::parse_master(&r.text()).ok()?;
        let v = master.variants.first()?;
        Some(hls::resolve(&master_url, &v.uri))
    });
    found
        .unwrap_or_else(|| panic!("GET {master_url} gave no master playlist in 20 s; last: {last}"))
}

/// The next media sequence number of selfcast's own playlist at `url` (0 while it has none).
pub fn local_next_msn(url: &str) -> u64 {
    fetch_media(url).map(|(_, f)| f.pl.next_msn()).unwrap_or(0)
}

pub fn assert_no_panic(server: &Server) {
    let log = strip_ansi(&server.stderr()) + &strip_ansi(&server.stdout());
    assert!(
        !log.contains("panicked"),
        "selfcast logged a panic (server log tail below)"
    );
}

/// ffprobe reads the stream at `master_url` and finds H.264 video and AAC audio.
pub fn assert_plays_h264_aac(master_url: &str) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(master_url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {master_url}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let codecs: Vec<(String, String)> = probe["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        codecs.contains(&("video".into(), "h264".into()))
            && codecs.contains(&("audio".into(), "aac".into())),
        "ffprobe of {master_url} found {codecs:?}, want H.264 video and AAC audio"
    );
}
