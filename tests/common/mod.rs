//! Shared plumbing for the integration tests: the `selfcast` server as a child process with its
//! own temp dir, config and free ports (`Server`), `ffmpeg` as the RTMP publisher (`Publisher`),
//! the test video (`fixture()`), HTTP helpers, a tracker that checks what a polling HLS player
//! would see, and ffprobe helpers.
//!
//! Everything that runs a child process kills it on drop; when a test fails (the thread is
//! panicking) the guards print the tail of the child's logs and keep the temp dir, so the
//! failure comes with its context.
//!
//! `SELFCAST_BIN=/path/to/selfcast` runs the tests against another binary than the one Cargo
//! built for this test run.

#![allow(dead_code)]

pub mod chat;
pub mod flv;
pub mod hls;
pub mod ipfs;
pub mod mp4;
pub mod raw_http;
pub mod rtmp;
pub mod s3;
pub mod storage;
pub mod ws;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hls::MediaPlaylist;

// ---------------------------------------------------------------------------------------------
// Small utilities

/// The `selfcast` binary under test.
pub fn selfcast_bin() -> PathBuf {
    match std::env::var_os("SELFCAST_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_selfcast")),
    }
}

/// A port that was free a moment ago (bind to port 0, read it, drop the socket).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Calls `f` every `interval` until it returns `Some` or `timeout` has passed.
pub fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// The last `n` lines of a text file (lossy UTF-8), for failure reports.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = s.lines().collect();
            let start = lines.len().saturating_sub(n);
            let mut out = String::new();
            if start > 0 {
                out.push_str(&format!("[... {start} earlier lines ...]\n"));
            }
            for l in &lines[start..] {
                out.push_str(l);
                out.push('\n');
            }
            out
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Removes ANSI escape sequences (colours) from log text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            if it.peek() == Some(&'[') {
                it.next();
                // CSI: parameters and intermediates, then one final byte in @..~
                for d in it.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Waits for a child to exit, at most `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll_until(timeout, Duration::from_millis(50), || {
        child.try_wait().ok().flatten()
    })
}

/// A simple xorshift generator for "random" test bytes (no extra crate; the seed is printed).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn from_time() -> XorShift {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let seed = (t.as_nanos() as u64) ^ (std::process::id() as u64) << 32 | 1;
        eprintln!("XorShift seed: {seed}");
        XorShift(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The test video

/// What the fixture is, as ffprobe and its `avcC` box say.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub path: PathBuf,
    pub duration: f64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub gop_frames: u32,
    /// Number of video frames in the file.
    pub video_frames: u64,
    /// ffprobe's `profile` ("High") and `level` (31).
    pub profile: String,
    pub level: i64,
    /// `avc1.PPCCLL` from the fixture's AVCDecoderConfigurationRecord (RFC 6381).
    pub avc1_codec: String,
    pub sample_rate: u32,
    pub channels: u32,
}

impl Fixture {
    pub fn segment_seconds(&self) -> f64 {
        self.gop_frames as f64 / self.fps as f64
    }
}

const FIX_SECONDS: u32 = 12;
const FIX_W: u32 = 1280;
const FIX_H: u32 = 720;
const FIX_FPS: u32 = 30;
const FIX_GOP: u32 = 60;

/// The directory for generated fixtures: `target/test-fixtures/`.
pub fn fixture_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp);
    target.join("test-fixtures")
}

/// The ~12 s 1280x720 30 fps H.264 High (B-frames, 2 s GOP, no scene cuts) + AAC-LC 48 kHz
/// stereo test file. Generated once per test binary run, cached in `target/test-fixtures/` under
/// a name that encodes every parameter, and reused from there by later runs.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture_dir();
        fs::create_dir_all(&dir).expect("create target/test-fixtures");
        let name = format!(
            "v1_testsrc2_{FIX_W}x{FIX_H}_{FIX_FPS}fps_x264veryfast_high_bf2_g{FIX_GOP}_aaclc48k2ch_{FIX_SECONDS}s.mp4"
        );
        let path = dir.join(&name);
        let mut info = if path.exists() { probe_fixture(&path).ok() } else { None };
        if info.is_none() {
            let tmp = dir.join(format!("{name}.tmp{}.mp4", std::process::id()));
            let out = Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
                .args(["-f", "lavfi", "-i", &format!("testsrc2=size={FIX_W}x{FIX_H}:rate={FIX_FPS}")])
                .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
                .args(["-map", "0:v", "-map", "1:a", "-t", &FIX_SECONDS.to_string()])
                .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p"])
                .args(["-bf", "2", "-g", &FIX_GOP.to_string(), "-keyint_min", &FIX_GOP.to_string()])
                .args(["-sc_threshold", "0"])
                .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"])
                .args(["-movflags", "+faststart"])
                .arg(&tmp)
                .output()
                .expect("run ffmpeg (is it installed?)");
            assert!(
                out.status.success(),
                "generating the fixture failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            fs::rename(&tmp, &path).expect("rename fixture into place");
            info = Some(probe_fixture(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display())));
        }
        let f = info.unwrap();
        eprintln!("fixture: {f:?}");
        f
    })
}

fn probe_fixture(path: &Path) -> Result<Fixture, String> {
    let v = ffprobe_json(path, &["-show_streams", "-show_format"])?;
    let streams = v["streams"].as_array().ok_or("no streams")?;
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .ok_or("no video stream")?;
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .ok_or("no audio stream")?;
    let profile = video["profile"].as_str().unwrap_or("").to_string();
    let level = video["level"].as_i64().unwrap_or(-1);
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let pos = bytes
        .windows(4)
        .position(|w| w == b"avcC")
        .ok_or("no avcC box in fixture")?;
    let rec = bytes.get(pos + 4..pos + 8).ok_or("truncated avcC")?;
    let avc1_codec = format!("avc1.{:02x}{:02x}{:02x}", rec[1], rec[2], rec[3]);
    if profile != "High" || rec[1] != 0x64 || rec[3] as i64 != level {
        return Err(format!(
            "fixture is not what we asked for: profile {profile} level {level}, avcC {rec:02x?}"
        ));
    }
    let duration: f64 = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or("no duration")?;
    Ok(Fixture {
        path: path.to_path_buf(),
        duration,
        width: video["width"].as_u64().unwrap_or(0) as u32,
        height: video["height"].as_u64().unwrap_or(0) as u32,
        fps: FIX_FPS,
        gop_frames: FIX_GOP,
        video_frames: video["nb_frames"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or("no nb_frames")?,
        profile,
        level,
        avc1_codec,
        sample_rate: audio["sample_rate"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0),
        channels: audio["channels"].as_u64().unwrap_or(0) as u32,
    })
}

// ---------------------------------------------------------------------------------------------
// ffprobe / ffmpeg helpers

/// `ffprobe -v error <args> -of json <path>`, parsed.
pub fn ffprobe_json(path: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "json"])
        .arg(path)
        .output()
        .map_err(|e| format!("run ffprobe: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffprobe {args:?} {} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("ffprobe output is not JSON: {e}"))?;
    if !out.stderr.is_empty() {
        return Err(format!(
            "ffprobe {args:?} {} complained: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(v)
}

/// Decodes the whole file with `ffmpeg -v error -i FILE -f null -`: returns (exit status, stderr).
pub fn ffmpeg_decode(path: &Path) -> (ExitStatus, String) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The time span of one stream, from its packets: first presentation time and end (the
/// latest pts + duration). ffprobe's own `duration` of a fragmented MP4 is the end time on the
/// track's timeline, which includes the first fragment's decode time offset, so it is no
/// measure of how much media a set of segments holds.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: f64,
    pub end: f64,
    pub packets: u64,
}

impl Span {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// Spans of the first video and the first audio stream (`None` for a missing stream).
pub fn stream_spans(path: &Path) -> Result<(Option<Span>, Option<Span>), String> {
    let v = ffprobe_json(
        path,
        &[
            "-show_entries",
            "stream=index,codec_type:packet=stream_index,pts_time,duration_time",
        ],
    )?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let index_of = |kind: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .and_then(|s| s["index"].as_u64())
    };
    let span_of = |idx: Option<u64>| -> Option<Span> {
        let idx = idx?;
        let mut span: Option<Span> = None;
        for p in v["packets"]
            .as_array()?
            .iter()
            .filter(|p| p["stream_index"].as_u64() == Some(idx))
        {
            let pts: f64 = p["pts_time"].as_str()?.parse().ok()?;
            let dur: f64 = p["duration_time"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0);
            let s = span.get_or_insert(Span {
                start: pts,
                end: pts + dur,
                packets: 0,
            });
            s.start = s.start.min(pts);
            s.end = s.end.max(pts + dur);
            s.packets += 1;
        }
        span
    };
    Ok((span_of(index_of("video")), span_of(index_of("audio"))))
}

/// Number of decoded video frames (`ffprobe -count_frames -select_streams v:0`).
pub fn count_video_frames(path: &Path) -> Result<u64, String> {
    let v = ffprobe_json(
        path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    )?;
    v["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no nb_read_frames in {v}"))
}

// ---------------------------------------------------------------------------------------------
// HTTP

pub fn agent() -> &'static ureq::Agent {
    static A: OnceLock<ureq::Agent> = OnceLock::new();
    A.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .redirects(0)
            .build()
    })
}

/// An HTTP response with its body read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn headers_text(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("GET {}: body is not JSON ({e}): {}", self.url, self.text()))
    }
}

/// GET `url`: `Ok` with any HTTP status (4xx/5xx included), `Err` on transport errors.
pub fn http_get(url: &str) -> Result<Resp, String> {
    let r = match agent().get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(format!("GET {url}: {e}")),
    };
    let status = r.status();
    let mut headers = Vec::new();
    let mut names = r.headers_names();
    names.dedup();
    names.sort();
    names.dedup();
    for n in names {
        for v in r.all(&n) {
            headers.push((n.clone(), v.to_string()));
        }
    }
    let mut body = Vec::new();
    r.into_reader()
        .take(256 << 20)
        .read_to_end(&mut body)
        .map_err(|e| format!("GET {url}: reading body: {e}"))?;
    Ok(Resp {
        url: url.to_string(),
        status,
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// The server

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub segment_seconds: u32,
    pub playlist_segments: u32,
    /// `None`: no `stream_key` in the config (the server generates one).
    pub stream_key: Option<String>,
    pub title: String,
    /// `None`: a fresh `data` dir inside the server's temp dir.
    pub data_dir: Option<PathBuf>,
    /// `[http] static_dir`: the owner's page files.
    pub static_dir: Option<PathBuf>,
    /// More `[http]` keys (lines of TOML).
    pub http_toml: String,
    /// `[[video.variants]]` tables; by default the source only, so that tests of ingest and
    /// HLS do not spend the machine's two cores on transcoding (tests of the ladder set theirs).
    pub ladder_toml: String,
    /// More TOML, appended at the end of the config.
    pub extra_toml: String,
    /// Runs the server through this command line, e.g. `["prlimit", "--nofile=256:512", "--"]`.
    pub run_under: Vec<String>,
}

pub const PASSTHROUGH_ONLY: &str = "\n[[video.variants]]\nname = \"source\"\npassthrough = true\n";

pub const TEST_KEY: &str = "sk_test_3f9a1c7e5b2d4f60";

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            segment_seconds: 2,
            playlist_segments: 6,
            stream_key: Some(TEST_KEY.to_string()),
            title: "selfcast integration test".to_string(),
            data_dir: None,
            static_dir: None,
            http_toml: String::new(),
            ladder_toml: PASSTHROUGH_ONLY.to_string(),
            extra_toml: String::new(),
            run_under: Vec::new(),
        }
    }
}

/// A running `selfcast --config PATH` with its own temp dir and ports. Killed on drop; when the
/// test is failing, prints the tail of its logs and keeps its temp dir.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub rtmp_port: u16,
    pub http_port: u16,
    pub opts: ServerOptions,
    pub dir: PathBuf,
    tempdir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Server {
    /// Starts the server and waits (≤ 20 s) until `/api/status` answers.
    pub fn start(opts: ServerOptions) -> Server {
        let mut s = Server::spawn(opts);
        let ok = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
            if let Ok(Some(st)) = s.child.try_wait() {
                s.exit = Some(st);
                return Some(false);
            }
            match http_get(&s.url("/api/status")) {
                // Both listeners up: the RTMP port accepts a connection (closed right away).
                Ok(r) if r.status == 200 => {
                    std::net::TcpStream::connect(("127.0.0.1", s.rtmp_port))
                        .ok()
                        .map(|_| true)
                }
                _ => None,
            }
        });
        match ok {
            Some(true) => s,
            Some(false) => panic!(
                "selfcast exited during start-up with {:?}\n{}",
                s.exit, "(server log tail below)"
            ),
            None => panic!(
                "selfcast did not answer GET /api/status within 20 s (server log tail below)"
            ),
        }
    }

    /// Spawns the server without waiting for it.
    pub fn spawn(opts: ServerOptions) -> Server {
        let tempdir = tempfile::Builder::new()
            .prefix("selfcast-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tempdir.path().to_path_buf();
        let data_dir = opts.data_dir.clone().unwrap_or_else(|| dir.join("data"));
        let rtmp_port = free_port();
        let mut http_port = free_port();
        while http_port == rtmp_port {
            http_port = free_port();
        }
        let mut cfg = String::new();
        cfg.push_str("[server]\n");
        cfg.push_str(&format!(
            "data_dir = {}\n",
            toml_str(&data_dir.to_string_lossy())
        ));
        cfg.push_str(&format!("title = {}\n", toml_str(&opts.title)));
        cfg.push_str("\n[rtmp]\n");
        cfg.push_str(&format!("listen = \"127.0.0.1:{rtmp_port}\"\n"));
        cfg.push_str("app = \"live\"\n");
        if let Some(k) = &opts.stream_key {
            cfg.push_str(&format!("stream_key = {}\n", toml_str(k)));
        }
        cfg.push_str("\n[http]\n");
        cfg.push_str(&format!("listen = \"127.0.0.1:{http_port}\"\n"));
        if let Some(static_dir) = &opts.static_dir {
            cfg.push_str(&format!(
                "static_dir = {}\n",
                toml_str(&static_dir.to_string_lossy())
            ));
        }
        cfg.push_str(&opts.http_toml);
        cfg.push_str("\n[hls]\n");
        cfg.push_str(&format!("segment_seconds = {}\n", opts.segment_seconds));
        cfg.push_str(&format!("playlist_segments = {}\n", opts.playlist_segments));
        cfg.push_str(&opts.ladder_toml);
        cfg.push_str(&opts.extra_toml);
        let config_path = dir.join("config.toml");
        fs::write(&config_path, cfg).expect("write config");
        let stdout_path = dir.join("selfcast.stdout.log");
        let stderr_path = dir.join("selfcast.stderr.log");
        let child = spawn_selfcast(
            &opts.run_under,
            &config_path,
            &dir,
            &stdout_path,
            &stderr_path,
        );
        Server {
            pid: child.id(),
            child,
            rtmp_port,
            http_port,
            opts,
            dir,
            tempdir: Some(tempdir),
            data_dir,
            config_path,
            stdout_path,
            stderr_path,
            exit: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, path)
    }
    pub fn master_url(&self) -> String {
        self.url("/hls/stream.m3u8")
    }
    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{}", self.rtmp_port, key)
    }
    /// The publish URL with the configured test key.
    pub fn publish_url(&self) -> String {
        self.rtmp_url(
            self.opts
                .stream_key
                .as_deref()
                .expect("server has no configured stream key"),
        )
    }

    /// `GET /api/status` as JSON (panics with the logs if it does not answer 200 JSON).
    pub fn status(&self) -> serde_json::Value {
        match http_get(&self.url("/api/status")) {
            Ok(r) if r.status == 200 => r.json(),
            Ok(r) => panic!(
                "GET /api/status: HTTP {}: {}\n{}",
                r.status,
                r.text(),
                "(server log tail below)"
            ),
            Err(e) => panic!("GET /api/status: {e} (server log tail below)"),
        }
    }

    pub fn is_online(&self) -> bool {
        let st = self.status();
        match st["online"].as_bool() {
            Some(b) => b,
            None => panic!("/api/status has no boolean `online`: {st}"),
        }
    }

    /// Waits until `/api/status` says `online == want`; panics with context after `timeout`.
    pub fn wait_online(&self, want: bool, timeout: Duration) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let r = poll_until(timeout, Duration::from_millis(100), || {
            last = self.status();
            (last["online"].as_bool() == Some(want)).then(|| last.clone())
        });
        r.unwrap_or_else(|| {
            panic!(
                "/api/status did not say online={want} within {timeout:?}; last: {last} (server log tail below)"
            )
        })
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(st)) => {
                self.exit = Some(st);
                false
            }
            _ => true,
        }
    }

    pub fn assert_running(&mut self) {
        if !self.is_running() {
            panic!(
                "selfcast exited unexpectedly with {:?} (server log tail below)",
                self.exit
            );
        }
    }

    /// Sends SIGINT (as Ctrl-C would).
    pub fn interrupt(&self) {
        let st = Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -INT {} failed: {st}", self.pid);
    }

    /// Waits for the server to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = wait_child(&mut self.child, timeout);
        }
        self.exit
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stdout_path).unwrap_or_default()).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The config and the tail of both logs, for failure messages.
    pub fn logs_report(&self) -> String {
        format!(
            "---- selfcast config {} ----\n{}---- selfcast stderr (tail) {} ----\n{}---- selfcast stdout (tail) {} ----\n{}----",
            self.config_path.display(),
            fs::read_to_string(&self.config_path).unwrap_or_default(),
            self.stderr_path.display(),
            tail(&self.stderr_path, 80),
            self.stdout_path.display(),
            tail(&self.stdout_path, 30),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "\n==== selfcast (pid {}) at test failure ====\n{}",
                self.pid,
                self.logs_report()
            );
            if let Some(t) = self.tempdir.take() {
                let kept = t.keep();
                eprintln!("(kept the server's temp dir: {})", kept.display());
            }
        }
    }
}

fn spawn_selfcast(
    run_under: &[String],
    config: &Path,
    cwd: &Path,
    stdout: &Path,
    stderr: &Path,
) -> Child {
    let bin = selfcast_bin();
    let mut cmd = match run_under.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(&bin);
            cmd
        }
        None => Command::new(&bin),
    };
    cmd.arg("--config")
        .arg(config)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(stdout).expect("create stdout log"))
        .stderr(fs::File::create(stderr).expect("create stderr log"))
        .env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1");
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

/// Runs the server on a config file of our own text and waits (≤ `timeout`) for it to exit.
/// Returns (exit status or None if it kept running, stdout, stderr, config path).
pub fn run_with_config_text(
    text: &str,
    timeout: Duration,
) -> (Option<ExitStatus>, String, String, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("selfcast-badcfg-")
        .tempdir()
        .expect("tempdir");
    let config = dir.path().join("config.toml");
    fs::write(&config, text).expect("write config");
    let so = dir.path().join("stdout.log");
    let se = dir.path().join("stderr.log");
    let mut child = spawn_selfcast(&[], &config, dir.path(), &so, &se);
    let st = wait_child(&mut child, timeout);
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    let (o, e) = (read(&so), read(&se));
    // The temp dir goes away here; the path is only quoted in messages.
    (st, o, e, config)
}

// ---------------------------------------------------------------------------------------------
// The publisher

/// The publisher's output options (before the RTMP URL): every stream copied into FLV.
pub const PUBLISH_OUTPUT_ARGS: [&str; 8] = [
    "-map",
    "0",
    "-c",
    "copy",
    "-f",
    "flv",
    "-flvflags",
    "no_duration_filesize",
];

/// `ffmpeg -re -i FIXTURE [extra] -c copy -f flv rtmp://...`, killed on drop.
pub struct Publisher {
    child: Child,
    pub url: String,
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
    exit: Option<ExitStatus>,
    pub name: String,
}

impl Publisher {
    /// `extra` are output options (e.g. `["-t", "6"]`).
    pub fn start(name: &str, input: &Path, url: &str, extra: &[&str]) -> Publisher {
        let dir = tempfile::Builder::new()
            .prefix("selfcast-pub-")
            .tempdir()
            .expect("tempdir");
        let stderr_path = dir.path().join("ffmpeg.stderr.log");
        let child = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "warning",
                "-re",
                "-i",
            ])
            .arg(input)
            .args(extra)
            .args(PUBLISH_OUTPUT_ARGS)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr_path).expect("create ffmpeg log"))
            .spawn()
            .expect("spawn ffmpeg");
        Publisher {
            child,
            url: url.to_string(),
            stderr_path,
            _dir: dir,
            exit: None,
            name: name.to_string(),
        }
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    pub fn running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits for ffmpeg to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = wait_child(&mut self.child, timeout);
        }
        self.exit
    }

    /// Waits for ffmpeg to finish and requires a clean exit; `what` names the publish.
    pub fn expect_success(&mut self, timeout: Duration, what: &str) {
        let status = self
            .wait(timeout)
            .unwrap_or_else(|| panic!("publisher did not finish\n{}", self.log()));
        assert!(status.success(), "{what}: {status}\n{}", self.log());
    }

    pub fn kill(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    pub fn log(&self) -> String {
        tail(&self.stderr_path, 40)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "\n==== publisher {} ({}) exit {:?}; ffmpeg stderr (tail) ====\n{}",
                self.name,
                self.url,
                self.exit,
                self.log()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HLS checks

/// A fetched and parsed media playlist.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub text: String,
    pub pl: MediaPlaylist,
    pub at: Instant,
}

fn media_type(ct: Option<&str>) -> String {
    ct.unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn cache_directives(r: &Resp) -> Vec<String> {
    r.header("Cache-Control")
        .unwrap_or("")
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

fn max_age(dirs: &[String]) -> Option<u64> {
    dirs.iter().find_map(|d| {
        d.strip_prefix("max-age=")
            .and_then(|v| v.trim_matches('"').parse().ok())
    })
}

fn cors_problem(r: &Resp) -> Option<String> {
    match r.header("Access-Control-Allow-Origin") {
        Some("*") => None,
        other => Some(format!(
            "Access-Control-Allow-Origin is {other:?}, want \"*\""
        )),
    }
}

/// Response-header problems of a playlist (master or media).
pub fn playlist_header_problems(r: &Resp, segment_seconds: u32) -> Vec<String> {
    let mut p = Vec::new();
    let ct = media_type(r.header("Content-Type"));
    if ct != "application/vnd.apple.mpegurl" {
        p.push(format!(
            "Content-Type {:?}, want application/vnd.apple.mpegurl",
            r.header("Content-Type")
        ));
    }
    let dirs = cache_directives(r);
    let fresh_ok = dirs.iter().any(|d| d == "no-cache" || d == "no-store")
        || max_age(&dirs)
            .map(|a| a <= segment_seconds as u64)
            .unwrap_or(false);
    if !fresh_ok || dirs.iter().any(|d| d == "immutable") {
        p.push(format!(
            "Cache-Control {:?}: a live playlist must be short-lived (no-cache, or max-age <= {segment_seconds}), never immutable",
            r.header("Cache-Control")
        ));
    }
    p.extend(cors_problem(r));
    p
}

/// Response-header problems of a media segment (`is_init`: the EXT-X-MAP init segment).
pub fn segment_header_problems(r: &Resp, is_init: bool) -> Vec<String> {
    let mut p = Vec::new();
    let ct = media_type(r.header("Content-Type"));
    if ct != "video/mp4" && ct != "video/iso.segment" {
        p.push(format!(
            "Content-Type {:?}, want video/mp4 or video/iso.segment",
            r.header("Content-Type")
        ));
    }
    if !is_init {
        let dirs = cache_directives(r);
        let long = max_age(&dirs).map(|a| a >= 60).unwrap_or(false);
        if !long
            || !dirs.iter().any(|d| d == "immutable")
            || dirs.iter().any(|d| d == "no-store" || d == "no-cache")
        {
            p.push(format!(
                "Cache-Control {:?}: a segment never changes, want a long max-age (>= 60) and immutable",
                r.header("Cache-Control")
            ));
        }
    }
    p.extend(cors_problem(r));
    p
}

/// Checks that hold for every media playlist of a live fMP4 stream, whatever the content.
/// `window` is the configured `playlist_segments`.
pub fn media_playlist_problems(pl: &MediaPlaylist, window: usize) -> Vec<String> {
    let mut p = Vec::new();
    match pl.version {
        Some(v) if v >= 6 => {}
        v => p.push(format!(
            "EXT-X-VERSION is {v:?}: EXT-X-MAP in a media playlist needs version >= 6 (RFC 8216 §7)"
        )),
    }
    if pl.media_sequence_tag.is_none() {
        p.push("no EXT-X-MEDIA-SEQUENCE".into());
    }
    if pl.segments.is_empty() {
        p.push("no segments".into());
    }
    if pl.segments.len() > window {
        p.push(format!(
            "{} segments in the playlist, more than playlist_segments = {window}",
            pl.segments.len()
        ));
    }
    if let Some(s) = pl.segments.first() {
        if s.map.is_none() {
            p.push("no EXT-X-MAP before the first segment".into());
        }
        if s.pdt_ms.is_none() {
            p.push("no EXT-X-PROGRAM-DATE-TIME on the first segment".into());
        }
    }
    let mut last_pdt: Option<(u64, i64)> = None;
    let mut seen = std::collections::HashSet::new();
    for s in &pl.segments {
        let rounded = s.duration.round() as u64;
        if rounded > pl.target_duration {
            p.push(format!(
                "segment {} ({}) EXTINF {} rounds to {rounded} > EXT-X-TARGETDURATION {} (RFC 8216 §4.3.3.1)",
                s.msn, s.uri, s.duration, pl.target_duration
            ));
        }
        if s.duration.is_nan() || s.duration <= 0.0 {
            p.push(format!("segment {} has EXTINF {}", s.msn, s.duration));
        }
        if s.uri.contains("://") || s.uri.starts_with('/') {
            p.push(format!("segment {} URI {:?} is not relative", s.msn, s.uri));
        }
        let path = s.uri.split('?').next().unwrap_or("");
        if !path.ends_with(".m4s") {
            p.push(format!(
                "segment {} URI {:?} does not end with .m4s",
                s.msn, s.uri
            ));
        }
        if !seen.insert(s.uri.clone()) {
            p.push(format!("segment URI {:?} appears twice", s.uri));
        }
        if let Some(m) = &s.map {
            if m.uri.contains("://") || m.uri.starts_with('/') {
                p.push(format!("EXT-X-MAP URI {:?} is not relative", m.uri));
            }
        }
        if let Some(t) = s.pdt_ms {
            if let Some((pm, pt)) = last_pdt {
                if t <= pt {
                    p.push(format!(
                        "EXT-X-PROGRAM-DATE-TIME of segment {} is not after that of segment {pm}",
                        s.msn
                    ));
                }
            }
            last_pdt = Some((s.msn, t));
        }
        if s.discontinuity && s.pdt_ms.is_none() && pl.segments.iter().any(|x| x.pdt_ms.is_some()) {
            p.push(format!(
                "segment {} starts a discontinuity but has no EXT-X-PROGRAM-DATE-TIME of its own",
                s.msn
            ));
        }
    }
    p
}

/// What a player learns about one segment; must never change between playlist reloads.
#[derive(Debug, Clone, PartialEq)]
struct SegRecord {
    uri: String,
    duration: f64,
    dsn: u64,
    map_uri: Option<String>,
    pdt_ms: Option<i64>,
}

/// Follows a media playlist the way a polling player does and checks that reloads are
/// consistent (RFC 8216 §6.2.1, §6.2.2): the media sequence and the discontinuity sequence
/// never go backwards, the playlist only loses segments at its head and gains them at its
/// tail, a segment keeps its number, URI, duration, discontinuity sequence, init segment and
/// program date-time, the target duration never changes, and nothing changes after
/// EXT-X-ENDLIST.
pub struct Tracker {
    pub history: Vec<Fetched>,
    segs: BTreeMap<u64, SegRecord>,
    by_uri: BTreeMap<String, u64>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            history: Vec::new(),
            segs: BTreeMap::new(),
            by_uri: BTreeMap::new(),
        }
    }

    pub fn last(&self) -> Option<&Fetched> {
        self.history.last()
    }

    /// Records a reload. Returns the segments that left the playlist since the previous reload
    /// (msn, uri), or a description of the inconsistency.
    pub fn observe(&mut self, f: Fetched) -> Result<Vec<(u64, String)>, String> {
        let idx = self.history.len();
        let mut problems = Vec::new();
        let mut dropped = Vec::new();
        if let Some(prev) = self.history.last() {
            let (a, b) = (&prev.pl, &f.pl);
            if prev.pl.endlist && prev.text != f.text {
                problems.push("the playlist changed after it had EXT-X-ENDLIST".to_string());
            }
            if b.media_sequence() < a.media_sequence() {
                problems.push(format!(
                    "EXT-X-MEDIA-SEQUENCE went backwards: {} -> {}",
                    a.media_sequence(),
                    b.media_sequence()
                ));
            }
            if b.discontinuity_sequence() < a.discontinuity_sequence() {
                problems.push(format!(
                    "EXT-X-DISCONTINUITY-SEQUENCE went backwards: {} -> {}",
                    a.discontinuity_sequence(),
                    b.discontinuity_sequence()
                ));
            }
            if b.next_msn() < a.next_msn() {
                problems.push(format!(
                    "the playlist lost segments at its end: it ended at msn {} and now at {}",
                    a.next_msn() - 1,
                    b.next_msn() as i64 - 1
                ));
            }
            if b.target_duration != a.target_duration {
                problems.push(format!(
                    "EXT-X-TARGETDURATION changed: {} -> {} (RFC 8216 §6.2.1: MUST NOT change)",
                    a.target_duration, b.target_duration
                ));
            }
            // The number of segments that left = how far the media sequence moved.
            for s in &a.segments {
                if s.msn < b.media_sequence() {
                    dropped.push((s.msn, s.uri.clone()));
                }
            }
        }
        for s in &f.pl.segments {
            let rec = SegRecord {
                uri: s.uri.clone(),
                duration: s.duration,
                dsn: s.dsn,
                map_uri: s.map.as_ref().map(|m| m.uri.clone()),
                pdt_ms: s.pdt_ms,
            };
            if let Some(&m) = self.by_uri.get(&s.uri) {
                if m != s.msn {
                    problems.push(format!(
                        "segment URI {} was msn {m}, now msn {}",
                        s.uri, s.msn
                    ));
                }
            }
            match self.segs.get(&s.msn) {
                None => {
                    if let Some((&maxk, _)) = self.segs.iter().next_back() {
                        if s.msn < maxk && s.msn >= f.pl.media_sequence() {
                            // A new segment appearing below one already seen: an insertion.
                            problems.push(format!(
                                "segment {} ({}) appeared below the already-seen segment {maxk}",
                                s.msn, s.uri
                            ));
                        }
                    }
                    self.by_uri.insert(s.uri.clone(), s.msn);
                    self.segs.insert(s.msn, rec);
                }
                Some(old) => {
                    if old.uri != rec.uri {
                        problems.push(format!(
                            "msn {} was {} and is now {}",
                            s.msn, old.uri, rec.uri
                        ));
                    }
                    if (old.duration - rec.duration).abs() > 0.0005 {
                        problems.push(format!(
                            "segment {} duration changed {} -> {}",
                            s.msn, old.duration, rec.duration
                        ));
                    }
                    if old.dsn != rec.dsn {
                        problems.push(format!(
                            "segment {} discontinuity sequence number changed {} -> {} \
                             (EXT-X-DISCONTINUITY-SEQUENCE not incremented when a discontinuity left?)",
                            s.msn, old.dsn, rec.dsn
                        ));
                    }
                    if old.map_uri != rec.map_uri {
                        problems.push(format!(
                            "segment {} init segment changed {:?} -> {:?} (EXT-X-MAP not repeated at the head?)",
                            s.msn, old.map_uri, rec.map_uri
                        ));
                    }
                    if let (Some(x), Some(y)) = (old.pdt_ms, rec.pdt_ms) {
                        if (x - y).abs() > 1 {
                            problems.push(format!(
                                "segment {} PROGRAM-DATE-TIME changed {x} -> {y} ms",
                                s.msn
                            ));
                        }
                    }
                }
            }
        }
        let report = if problems.is_empty() {
            None
        } else {
            let prev_text = self
                .history
                .last()
                .map(|p| p.text.clone())
                .unwrap_or_default();
            Some(format!(
                "inconsistent playlist reload #{idx} of {}:\n  - {}\n---- previous ----\n{prev_text}---- now ----\n{}",
                f.url,
                problems.join("\n  - "),
                f.text
            ))
        };
        self.history.push(f);
        match report {
            Some(r) => Err(r),
            None => Ok(dropped),
        }
    }

    /// The last few playlists fetched, for failure messages.
    pub fn recent(&self, n: usize) -> String {
        let start = self.history.len().saturating_sub(n);
        let mut out = String::new();
        let t0 = self.history.first().map(|f| f.at);
        for f in &self.history[start..] {
            let dt = t0
                .map(|t| f.at.duration_since(t).as_secs_f64())
                .unwrap_or(0.0);
            out.push_str(&format!("---- {} at +{dt:.1}s ----\n{}", f.url, f.text));
        }
        out
    }
}

/// After a publisher left: polls `reload` (which fetches the playlists and returns their texts)
/// until every playlist has stayed the same for 2 s, as the ladder's threads flush their last
/// segments after the publisher has gone; panics if they keep changing for 30 s.
pub fn wait_until_playlists_settle(mut reload: impl FnMut() -> Vec<String>) {
    let mut stable_since = Instant::now();
    let mut last: Vec<String> = Vec::new();
    let settled = poll_until(Duration::from_secs(30), Duration::from_millis(400), || {
        let now = reload();
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        (stable_since.elapsed() >= Duration::from_secs(2)).then_some(())
    });
    assert!(
        settled.is_some(),
        "the playlists kept changing for 30 s after the publisher left"
    );
}

/// GETs and strictly parses a media playlist; `Err` with the text on any failure.
pub fn fetch_media(url: &str) -> Result<(Resp, Fetched), String> {
    let r = http_get(url)?;
    if r.status != 200 {
        return Err(format!("GET {url}: HTTP {}: {}", r.status, r.text()));
    }
    let text =
        String::from_utf8(r.body.clone()).map_err(|_| format!("GET {url}: body is not UTF-8"))?;
    let pl = hls::parse_media(&text)
        .map_err(|e| format!("GET {url}: {e}\n---- playlist ----\n{text}"))?;
    let f = Fetched {
        url: url.to_string(),
        text,
        pl,
        at: Instant::now(),
    };
    Ok((r, f))
}

/// Downloads `init` + `segments` (absolute URLs), checks their response headers and writes the
/// concatenation to `out`. Returns the header problems found.
pub fn download_concat(init: &str, segments: &[String], out: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let mut f = fs::File::create(out).map_err(|e| e.to_string())?;
    let mut urls = vec![(init.to_string(), true)];
    urls.extend(segments.iter().map(|s| (s.clone(), false)));
    for (u, is_init) in urls {
        let r = http_get(&u)?;
        if r.status != 200 {
            return Err(format!("GET {u}: HTTP {} ({})", r.status, r.text()));
        }
        if r.body.is_empty() {
            return Err(format!("GET {u}: empty body"));
        }
        for p in segment_header_problems(&r, is_init) {
            problems.push(format!("{u}: {p}\n{}", r.headers_text()));
        }
        f.write_all(&r.body).map_err(|e| e.to_string())?;
    }
    Ok(problems)
}
