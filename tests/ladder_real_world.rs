//! Issue 4, "Real-world input": what publishers really send, through the ladder (the source
//! passed through + a 360p rendition), judged the way a player and ffprobe see it.
//!
//! - `resolution_change_mid_stream`: one publish whose video goes from 1280x720 to 960x540 (a
//!   new AVC sequence header) at 6 s;
//! - `reconnect_with_different_settings`: 720p30 for 6 s, the publisher leaves, then 854x480 at
//!   25 fps with a 50-frame GOP;
//! - `a_source_no_bigger_than_a_rendition_skips_it`: 720p, then 426x240: the 360p rendition is
//!   not encoded for the second publish, is no longer offered, and `/api/status` says why;
//! - `stream_without_audio`: video only;
//! - `timestamps_that_jump`: the publisher's clock jumps 30 s forward at ~4.3 s and 3 s back at
//!   ~8.3 s;
//! - `truncated_packets`: video tags cut short (the NAL length then claims more than the tag
//!   holds) and AAC frames cut short.
//!
//! None of these may stop the server or a variant; the playlist gets a discontinuity (and a new
//! init segment) where the output changes. Every test follows both media playlists while live
//! (RFC 8216 reload rules, see `common::Tracker`), then downloads every init and segment and
//! checks: EXTINFs, PROGRAM-DATE-TIME and `tfdt` only grow, audio stays with the video, the
//! variants' segments line up (same `tfdt`, EXTINF and discontinuity sequence number for the
//! same media sequence number), every init + its segments decodes without a word from
//! `ffmpeg -v error`; and afterwards the server still answers `/api/status` and makes segments
//! from a new publish.
//!
//! The publisher is `ffmpeg -re ... -c copy -f flv` (as in the other tests) on FLV files that
//! the tests write tag by tag (`common::flv::write_flv`), except for the timestamp jumps: the
//! ffmpeg CLI rewrites a DTS that goes backwards ("Non-monotonous DTS ... changing to"), so that
//! test sends the FLV tags over RTMP itself (`common::rtmp`, rml_rtmp's client session).
//!
//! Like `ladder_hls.rs`, the tests transcode in real time and take a lock so that they run one
//! at a time on a 2-core machine.
//!
//! Run: `cargo test --release --test ladder_real_world -- --nocapture`

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::flv::{flv_tags, is_aac_sequence_header, is_avc_sequence_header, write_flv};
use common::hls;
use common::mp4;
use common::rtmp::{publish_in_real_time, TimedTag};
use common::*;

const POLL: Duration = Duration::from_millis(250);
/// `playlist_segments`: every segment of a test stays listed, so the end state has them all.
const WINDOW: u32 = 20;
const SEGMENT_SECONDS: f64 = 2.0;
/// The ladder: (config position = URL path segment, name).
const VARIANTS: [(usize, &str); 2] = [(0, "source"), (1, "360p")];

/// One test at a time (see the top of the file).
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start_server() -> Server {
    let ladder = format!(
        "{PASSTHROUGH_ONLY}\n[[video.variants]]\nname = \"360p\"\nheight = 360\nvideo_bitrate_kbps = 600\ncpu_usage_level = 0\n"
    );
    Server::start(ServerOptions {
        playlist_segments: WINDOW,
        ladder_toml: ladder,
        ..Default::default()
    })
}

fn log_of(server: &Server) -> String {
    strip_ansi(&format!("{}\n{}", server.stderr(), server.stdout()))
}

/// The server's log without the per-request lines of the HTTP server (the tail that `Server`
/// prints on failure is mostly those, as the tests poll).
fn log_digest(server: &Server, n: usize) -> String {
    let log = log_of(server);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.contains("warp::filters::trace"))
        .collect();
    let start = lines.len().saturating_sub(n);
    format!(
        "---- server log without HTTP request lines (last {n}) ----\n{}",
        lines[start..].join("\n")
    )
}

fn log_lines_with(server: &Server, needle: &str) -> Vec<String> {
    log_of(server)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// A generated clip (testsrc2 + a sine, H.264 High with 2 B-frames and a fixed GOP, AAC-LC 48 kHz
/// stereo) as FLV, cached in `target/test-fixtures/` under a name that encodes every parameter.
fn clip(width: u32, height: u32, fps: u32, gop: u32, seconds: u32) -> PathBuf {
    let dir = fixture_dir();
    fs::create_dir_all(&dir).unwrap();
    let name = format!(
        "rw1_testsrc2_{width}x{height}_{fps}fps_x264veryfast_high_bf2_g{gop}_aaclc48k2ch_{seconds}s.flv"
    );
    let path = dir.join(&name);
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!("{name}.tmp{}.flv", std::process::id()));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={width}x{height}:rate={fps}"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000"])
        .args(["-map", "0:v", "-map", "1:a", "-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-bf",
            "2",
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
            "-sc_threshold",
            "0",
        ])
        .args([
            "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "flv",
        ])
        .arg(&tmp)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "generating {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::rename(&tmp, &path).unwrap();
    path
}

/// The tags ffmpeg sends when it publishes `input` (`Publisher`'s output options, to a file
/// instead of RTMP): proof of what the server will receive.
fn tags_ffmpeg_sends(input: &Path, dir: &Path) -> Vec<(u8, i64, Bytes)> {
    let out_path = dir.join(format!(
        "sent-{}",
        input.file_name().unwrap().to_string_lossy()
    ));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(PUBLISH_OUTPUT_ARGS)
        .arg(&out_path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "remux {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    flv_tags(&fs::read(&out_path).unwrap())
}

/// Video frame tag (AVC NALU packet)?
fn is_avc_frame(kind: u8, body: &[u8]) -> bool {
    kind == 9 && body.len() >= 2 && body[0] & 0x0f == 7 && body[1] == 1
}

fn is_keyframe(body: &[u8]) -> bool {
    body[0] >> 4 == 1
}

// ---------------------------------------------------------------------------------------------
// Following the ladder's playlists while live

/// Reloads every variant's media playlist (checking each reload with the generic rules and the
/// reload-consistency tracker) and samples `/api/status` about once a second.
struct Follower {
    /// `http://127.0.0.1:<port>`
    base: String,
    segment_seconds: u32,
    trackers: Vec<Tracker>,
    /// (phase, seconds since the follower started, /api/status)
    statuses: Vec<(u32, f64, serde_json::Value)>,
    phase: u32,
    t0: Instant,
    last_status: Option<Instant>,
}

impl Follower {
    fn new(server: &Server) -> Self {
        Follower {
            base: server.url(""),
            segment_seconds: server.opts.segment_seconds,
            trackers: VARIANTS.iter().map(|_| Tracker::new()).collect(),
            statuses: Vec::new(),
            phase: 0,
            t0: Instant::now(),
            last_status: None,
        }
    }

    fn url(&self, index: usize) -> String {
        format!("{}/hls/{index}/stream.m3u8", self.base)
    }

    fn reload(&mut self, must_exist: bool) {
        for (i, (index, _)) in VARIANTS.iter().enumerate() {
            let url = self.url(*index);
            match fetch_media(&url) {
                Ok((resp, f)) => {
                    let hp = playlist_header_problems(&resp, self.segment_seconds);
                    assert!(hp.is_empty(), "{url} headers:\n  - {}", hp.join("\n  - "));
                    let p = media_playlist_problems(&f.pl, WINDOW as usize);
                    assert!(
                        p.is_empty(),
                        "media playlist {url}:\n  - {}\n---- playlist ----\n{}",
                        p.join("\n  - "),
                        f.text
                    );
                    if let Err(e) = self.trackers[i].observe(f) {
                        panic!("{e}\n(server log tail below)");
                    }
                }
                Err(e)
                    if !must_exist
                        && self.trackers[i].history.is_empty()
                        && e.contains("HTTP 404") => {}
                Err(e) => panic!("{e} (server log tail below)"),
            }
        }
    }

    fn sample_status(&mut self) {
        if self
            .last_status
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(900))
        {
            self.last_status = Some(Instant::now());
            let url = format!("{}/api/status", self.base);
            let st = match http_get(&url) {
                Ok(r) if r.status == 200 => r.json(),
                Ok(r) => panic!(
                    "GET {url}: HTTP {}: {} (server log tail below)",
                    r.status,
                    r.text()
                ),
                Err(e) => panic!("GET {url}: {e} (server log tail below)"),
            };
            self.statuses
                .push((self.phase, self.t0.elapsed().as_secs_f64(), st));
        }
    }

    /// Follows while `running()` says the publisher is still at it.
    fn follow_while(&mut self, mut running: impl FnMut() -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while running() {
            assert!(
                Instant::now() < deadline,
                "the publisher did not finish within {timeout:?}"
            );
            self.reload(false);
            self.sample_status();
            std::thread::sleep(POLL);
        }
    }

    /// After the publisher left: the stream goes offline, and every playlist stays unchanged
    /// for 2 s (the ladder's threads flush their last segments after the publisher has gone).
    fn settle(&mut self, server: &Server) {
        server.wait_online(false, Duration::from_secs(15));
        wait_until_playlists_settle(|| {
            self.reload(true);
            self.trackers
                .iter()
                .map(|t| t.last().unwrap().text.clone())
                .collect()
        });
    }

    fn last(&self, i: usize) -> &Fetched {
        self.trackers[i].last().expect("no playlist fetched")
    }

    /// Every variant's latest playlist, for failure messages.
    fn playlists(&self) -> String {
        self.trackers
            .iter()
            .filter_map(|t| t.last())
            .map(|f| format!("---- {} ----\n{}", f.url, f.text))
            .collect()
    }

    /// Statuses sampled while online in `phase`.
    fn online_statuses(&self, phase: u32) -> Vec<&serde_json::Value> {
        self.statuses
            .iter()
            .filter(|(p, _, s)| *p == phase && s["online"] == true)
            .map(|(_, _, s)| s)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// A variant's media, downloaded

#[derive(Debug, Clone, Copy)]
struct TrackInfo {
    id: u32,
    timescale: u32,
}

/// One listed segment, downloaded, with the decode times of its first video and audio sample
/// (90 kHz).
struct Seg {
    msn: u64,
    dsn: u64,
    discontinuity: bool,
    duration: f64,
    pdt_ms: Option<i64>,
    map: String,
    data: Vec<u8>,
    video_tfdt: u64,
    audio_tfdt: Option<u64>,
}

/// A variant's init segments and segments, as its final playlist lists them.
struct Media {
    index: usize,
    name: &'static str,
    target: u64,
    inits: BTreeMap<String, Vec<u8>>,
    segs: Vec<Seg>,
}

fn to_90k(t: u64, timescale: u32) -> u64 {
    (t as u128 * 90_000 / timescale as u128) as u64
}

fn init_tracks(init: &[u8]) -> Result<(TrackInfo, Option<TrackInfo>), String> {
    let tracks = mp4::tracks(init)?;
    let v = tracks
        .iter()
        .find(|t| t.handler == "vide")
        .ok_or("no video track")?;
    let a = tracks.iter().find(|t| t.handler == "soun");
    Ok((
        TrackInfo {
            id: v.id,
            timescale: v.timescale,
        },
        a.map(|a| TrackInfo {
            id: a.id,
            timescale: a.timescale,
        }),
    ))
}

fn download(f: &Fetched, index: usize, name: &'static str) -> Media {
    let get = |uri: &str, is_init: bool| -> Vec<u8> {
        let url = hls::resolve(&f.url, uri);
        let r = http_get(&url).unwrap_or_else(|e| panic!("{e} (server log tail below)"));
        assert_eq!(
            r.status,
            200,
            "GET {url}: {}\n---- playlist ----\n{}",
            r.text(),
            f.text
        );
        assert!(!r.body.is_empty(), "GET {url}: empty body");
        let p = segment_header_problems(&r, is_init);
        assert!(p.is_empty(), "{url}:\n  - {}", p.join("\n  - "));
        r.body
    };
    let mut inits = BTreeMap::new();
    let mut segs = Vec::new();
    for s in &f.pl.segments {
        let map = s
            .map
            .as_ref()
            .expect("segment without EXT-X-MAP")
            .uri
            .clone();
        if !inits.contains_key(&map) {
            inits.insert(map.clone(), get(&map, true));
        }
        let data = get(&s.uri, false);
        let (v, a) =
            init_tracks(&inits[&map]).unwrap_or_else(|e| panic!("variant {index} init {map}: {e}"));
        let video_tfdt = mp4::first_tfdt(&data, v.id)
            .map(|t| to_90k(t, v.timescale))
            .unwrap_or_else(|e| panic!("variant {index} segment {} ({}): {e}", s.msn, s.uri));
        let audio_tfdt = a.and_then(|a| {
            mp4::first_tfdt(&data, a.id)
                .ok()
                .map(|t| to_90k(t, a.timescale))
        });
        segs.push(Seg {
            msn: s.msn,
            dsn: s.dsn,
            discontinuity: s.discontinuity,
            duration: s.duration,
            pdt_ms: s.pdt_ms,
            map,
            data,
            video_tfdt,
            audio_tfdt,
        });
    }
    assert!(!segs.is_empty(), "{}: no segments\n{}", f.url, f.text);
    Media {
        index,
        name,
        target: f.pl.target_duration,
        inits,
        segs,
    }
}

/// A run of segments that share one init segment, concatenated on disk and probed.
struct Group {
    map: String,
    first_msn: u64,
    last_msn: u64,
    file: PathBuf,
    width: u64,
    height: u64,
    has_audio: bool,
    frames: u64,
    /// What `ffmpeg -v error` said decoding the whole group (video and audio).
    decode_errors: String,
    /// The same for the video alone.
    video_decode_errors: String,
    decode_status: ExitStatus,
}

/// Decoded video frames, counted even when the decoder complains on the way (a passthrough of
/// a damaged source); `common::count_video_frames` fails on any complaint.
fn count_frames_lenient(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "quiet", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn decode(path: &Path, video_only: bool) -> (ExitStatus, String) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path);
    if video_only {
        cmd.args(["-map", "0:v"]);
    }
    let out = cmd.args(["-f", "null", "-"]).output().expect("run ffmpeg");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Media {
    fn groups(&self, dir: &Path) -> Vec<Group> {
        let mut groups: Vec<Group> = Vec::new();
        let mut runs: Vec<Vec<&Seg>> = Vec::new();
        for s in &self.segs {
            match runs.last_mut() {
                Some(run) if run[0].map == s.map && !s.discontinuity => run.push(s),
                _ => runs.push(vec![s]),
            }
        }
        for run in runs {
            let map = run[0].map.clone();
            let file = dir.join(format!("variant{}-from{}.mp4", self.index, run[0].msn));
            let mut all = self.inits[&map].clone();
            for s in &run {
                all.extend_from_slice(&s.data);
            }
            fs::write(&file, all).unwrap();
            let probe = ffprobe_json(&file, &["-show_streams"]).unwrap_or_else(|e| {
                panic!(
                    "variant {} segments {}..: {e} (kept: {})",
                    self.index,
                    run[0].msn,
                    file.display()
                )
            });
            let streams = probe["streams"].as_array().cloned().unwrap_or_default();
            let v = streams
                .iter()
                .find(|s| s["codec_type"] == "video")
                .unwrap_or_else(|| panic!("variant {}: no video stream in {probe}", self.index));
            let (decode_status, decode_errors) = decode(&file, false);
            let (_, video_decode_errors) = decode(&file, true);
            groups.push(Group {
                map,
                first_msn: run[0].msn,
                last_msn: run[run.len() - 1].msn,
                width: v["width"].as_u64().unwrap_or(0),
                height: v["height"].as_u64().unwrap_or(0),
                has_audio: streams.iter().any(|s| s["codec_type"] == "audio"),
                frames: count_frames_lenient(&file),
                file,
                decode_errors,
                video_decode_errors,
                decode_status,
            });
        }
        for g in &groups {
            eprintln!(
                "variant {} {:>6}: msn {}..={} init {} {}x{} audio {} frames {} decode {}{}",
                self.index,
                self.name,
                g.first_msn,
                g.last_msn,
                g.map,
                g.width,
                g.height,
                g.has_audio,
                g.frames,
                g.decode_status,
                if g.decode_errors.trim().is_empty() {
                    " clean".to_string()
                } else {
                    format!(", errors:\n{}", first_lines(&g.decode_errors, 6))
                }
            );
        }
        groups
    }

    fn print_timeline(&self) {
        eprintln!(
            "variant {} {} (TARGETDURATION {}):\n  msn dsn disc  EXTINF   video tfdt (s)  audio-video (ms)  PDT (ms since first)  init",
            self.index, self.name, self.target
        );
        let pdt0 = self.segs[0].pdt_ms.unwrap_or(0);
        for s in &self.segs {
            eprintln!(
                "  {:>3} {:>3} {:>4}  {:>6.3}  {:>14.3}  {:>16}  {:>20}  {}",
                s.msn,
                s.dsn,
                if s.discontinuity { "yes" } else { "" },
                s.duration,
                s.video_tfdt as f64 / 90_000.0,
                s.audio_tfdt
                    .map(|a| format!("{:+.1}", (a as f64 - s.video_tfdt as f64) / 90.0))
                    .unwrap_or_else(|| "-".into()),
                s.pdt_ms
                    .map(|p| (p - pdt0).to_string())
                    .unwrap_or_else(|| "-".into()),
                s.map
            );
        }
    }
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let mut out = lines.iter().take(n).cloned().collect::<Vec<_>>().join("\n");
    if lines.len() > n {
        out.push_str(&format!("\n[... {} more lines]", lines.len() - n));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Checks that collect problems, so that one run reports every symptom it found

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            let m = msg();
            eprintln!("PROBLEM: {m}");
            self.0.push(m);
        }
    }

    /// Fails with every problem, the playlists and (below, from `Server`'s drop) the server log
    /// tail; keeps the downloaded media of `work` for a look.
    fn assert_none(&self, context: &str, work: tempfile::TempDir) {
        if self.0.is_empty() {
            return;
        }
        eprintln!("(kept the downloaded media: {})", work.keep().display());
        assert!(
            self.0.is_empty(),
            "{} problem(s):\n  - {}\n==== playlists ====\n{context}\n(server log tail below)",
            self.0.len(),
            self.0.join("\n  - ")
        );
    }
}

/// The timeline of one variant: every EXTINF in (0, target + 1]; the first video sample's
/// decode time (`tfdt`) strictly increasing, and each segment starting where the previous one
/// ended (± one frame); PROGRAM-DATE-TIME strictly increasing; audio starting within 250 ms of
/// the video in every segment that has both.
fn check_timeline(m: &Media, frame_ticks: u64, p: &mut Problems) {
    let v = format!("variant {} ({})", m.index, m.name);
    for (i, s) in m.segs.iter().enumerate() {
        p.check(
            s.duration > 0.0 && s.duration <= m.target as f64 + 1.0,
            || {
                format!(
                    "{v}: segment {} EXTINF {} (TARGETDURATION {})",
                    s.msn, s.duration, m.target
                )
            },
        );
        if let Some(a) = s.audio_tfdt {
            let skew_ms = (a as f64 - s.video_tfdt as f64) / 90.0;
            p.check(skew_ms.abs() <= 250.0, || {
                format!(
                    "{v}: segment {}: audio starts {skew_ms:+.0} ms from the video (tfdt audio {:.3} s, video {:.3} s): audio and video are out of sync",
                    s.msn,
                    a as f64 / 90_000.0,
                    s.video_tfdt as f64 / 90_000.0
                )
            });
        }
        let Some(prev) = i.checked_sub(1).map(|j| &m.segs[j]) else {
            continue;
        };
        p.check(s.video_tfdt > prev.video_tfdt, || {
            format!(
                "{v}: segment {} tfdt {} is not after segment {}'s {}",
                s.msn, s.video_tfdt, prev.msn, prev.video_tfdt
            )
        });
        // At a discontinuity the timeline may leave a hole (a new session starts where the
        // longest variant ended), never an overlap.
        let expected = prev.video_tfdt as f64 + prev.duration * 90_000.0;
        let off = s.video_tfdt as f64 - expected;
        let ok = if s.discontinuity {
            off >= -(frame_ticks as f64)
        } else {
            off.abs() <= frame_ticks as f64
        };
        p.check(ok, || {
            format!(
                "{v}: segment {} starts at tfdt {:.3} s, but segment {} ended at {:.3} s (tfdt + EXTINF): a {} of {:.0} ms",
                s.msn,
                s.video_tfdt as f64 / 90_000.0,
                prev.msn,
                expected / 90_000.0,
                if (s.video_tfdt as f64) > expected { "hole" } else { "overlap" },
                (s.video_tfdt as f64 - expected).abs() / 90.0
            )
        });
        if let (Some(a), Some(b)) = (prev.pdt_ms, s.pdt_ms) {
            p.check(b > a, || {
                format!(
                    "{v}: segment {} PROGRAM-DATE-TIME is not after segment {}'s",
                    s.msn, prev.msn
                )
            });
        }
        if let (Some(a0), Some(a1)) = (prev.audio_tfdt, s.audio_tfdt) {
            p.check(a1 > a0, || {
                format!(
                    "{v}: segment {} audio tfdt {a1} is not after segment {}'s {a0}",
                    s.msn, prev.msn
                )
            });
        }
    }
}

/// The variants against each other, for every media sequence number both list: the same
/// discontinuity sequence number and discontinuity tag (RFC 8216 §6.2.4: "Matching content in
/// Variant Streams MUST have matching Discontinuity Sequence Numbers"), the same `tfdt` (± one
/// frame) and EXTINF (± one frame), the same PROGRAM-DATE-TIME (± 1 ms); and both end at the
/// same segment. Returns how many were compared.
fn check_alignment(a: &Media, b: &Media, frame_ticks: u64, p: &mut Problems) -> usize {
    let by_msn: BTreeMap<u64, &Seg> = b.segs.iter().map(|s| (s.msn, s)).collect();
    let mut compared = 0;
    for s in &a.segs {
        let Some(t) = by_msn.get(&s.msn) else {
            continue;
        };
        compared += 1;
        p.check(s.dsn == t.dsn && s.discontinuity == t.discontinuity, || {
            format!(
                "segment {}: discontinuity sequence {} (EXT-X-DISCONTINUITY: {}) in {}, {} ({}) in {} (RFC 8216 §6.2.4)",
                s.msn, s.dsn, s.discontinuity, a.name, t.dsn, t.discontinuity, b.name
            )
        });
        p.check(s.video_tfdt.abs_diff(t.video_tfdt) <= frame_ticks, || {
            format!(
                "segment {}: tfdt {:.3} s in {}, {:.3} s in {}: the variants' segments do not line up",
                s.msn,
                s.video_tfdt as f64 / 90_000.0,
                a.name,
                t.video_tfdt as f64 / 90_000.0,
                b.name
            )
        });
        // The last segment of a publish (before a discontinuity or at the end) ends with a
        // frame whose duration nobody knows; each muxer guesses it (the passthrough from the
        // source's last frame interval and B-frame order, a rendition from its own frames).
        let last_of_publish = a
            .segs
            .iter()
            .find(|x| x.msn == s.msn + 1)
            .is_none_or(|n| n.discontinuity);
        let frames = if last_of_publish { 3.0 } else { 1.0 };
        let diff = (s.duration - t.duration).abs();
        p.check(
            diff <= frames * frame_ticks as f64 / 90_000.0 + 0.001,
            || {
                format!(
                    "segment {}: EXTINF {} in {}, {} in {}",
                    s.msn, s.duration, a.name, t.duration, b.name
                )
            },
        );
        if last_of_publish && diff > 0.001 {
            eprintln!(
                "note: segment {} (last of a publish): EXTINF {} in {}, {} in {}",
                s.msn, s.duration, a.name, t.duration, b.name
            );
        }
        // PROGRAM-DATE-TIME follows the segment's start, so it agrees as closely as the tfdt
        // does: within one frame (after a timestamp jump each muxer re-anchors by its own last
        // frame duration, a few ms apart).
        if let (Some(x), Some(y)) = (s.pdt_ms, t.pdt_ms) {
            p.check((x - y).abs() <= (frame_ticks / 90) as i64, || {
                format!(
                    "segment {}: PROGRAM-DATE-TIME differs by {} ms between {} and {}",
                    s.msn,
                    x - y,
                    a.name,
                    b.name
                )
            });
        }
    }
    let (ea, eb) = (a.segs.last().unwrap().msn, b.segs.last().unwrap().msn);
    p.check(ea == eb, || {
        format!("{} ends at segment {ea}, {} at {eb}", a.name, b.name)
    });
    compared
}

fn check_decodes_cleanly(m: &Media, groups: &[Group], p: &mut Problems) {
    for g in groups {
        p.check(
            g.decode_status.success() && g.decode_errors.trim().is_empty(),
            || {
                format!(
                    "variant {} ({}) segments {}..={} with {} ({}): `ffmpeg -v error` says: {} {}",
                    m.index,
                    m.name,
                    g.first_msn,
                    g.last_msn,
                    g.map,
                    g.file.display(),
                    g.decode_status,
                    first_lines(&g.decode_errors, 8)
                )
            },
        );
    }
}

/// The server still answers and makes segments: a 3 s publish of the fixture gives both
/// variants new segments.
/// A new server, `input` published to it once by `ffmpeg -re -c copy`, both playlists followed
/// while it runs and until they settle; the server must still be running.
fn publish_and_follow(what: &str, input: &Path) -> (Server, Follower) {
    let mut server = start_server();
    let mut publisher = Publisher::start(what, input, &server.publish_url(), &[]);
    let mut follower = Follower::new(&server);
    follower.follow_while(|| publisher.running(), Duration::from_secs(40));
    publisher.expect_success(Duration::from_secs(1), &format!("ffmpeg publishing {what}"));
    follower.settle(&server);
    server.assert_running();
    (server, follower)
}

/// At most `missing` of the `sent` frames may be absent from the variant's media.
fn check_frame_count(m: &Media, groups: &[Group], sent: u64, missing: u64, p: &mut Problems) {
    let frames: u64 = groups.iter().map(|g| g.frames).sum();
    p.check(frames + missing >= sent, || {
        format!("variant {}: {frames} frames of {sent}", m.index)
    });
}

/// How every test ends: the playlists and log are captured as the test left them, the server
/// must still make segments from a new publish, then every problem found is reported at once.
fn conclude(mut server: Server, follower: &Follower, p: Problems, work: tempfile::TempDir) {
    let context = format!("{}{}", follower.playlists(), log_digest(&server, 60));
    assert_still_serving(&mut server);
    p.assert_none(&context, work);
}

fn assert_still_serving(server: &mut Server) {
    server.assert_running();
    let _ = server.status();
    let next = |i: usize| -> u64 {
        match fetch_media(&server.url(&format!("/hls/{i}/stream.m3u8"))) {
            Ok((_, f)) => f.pl.next_msn(),
            Err(e) if e.contains("HTTP 404") => 0,
            Err(e) => panic!("{e}"),
        }
    };
    let before: Vec<u64> = VARIANTS.iter().map(|(i, _)| next(*i)).collect();
    let mut p = Publisher::start(
        "afterwards",
        &fixture().path,
        &server.publish_url(),
        &["-t", "3"],
    );
    p.expect_success(
        Duration::from_secs(20),
        "ffmpeg publishing 3 s after the test",
    );
    server.wait_online(false, Duration::from_secs(15));
    let grown = poll_until(Duration::from_secs(15), Duration::from_millis(250), || {
        let now: Vec<u64> = VARIANTS.iter().map(|(i, _)| next(*i)).collect();
        now.iter().zip(&before).all(|(n, b)| n > b).then_some(now)
    });
    assert!(
        grown.is_some(),
        "after the test, a new publish did not give every variant a new segment (next msn before: {before:?}) (server log tail below)"
    );
    eprintln!(
        "afterwards: a new publish added segments: next msn {before:?} → {:?}",
        grown.unwrap()
    );
    server.assert_running();
}

// ---------------------------------------------------------------------------------------------

/// One publish whose video switches from 1280x720 to 960x540 at 6 s: an FLV made of two
/// ffmpeg-made FLVs, the second's tags (its AVC sequence header first) with their timestamps
/// moved to continue the first's.
#[test]
fn resolution_change_mid_stream() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let first = flv_tags(&fs::read(clip(1280, 720, 30, 60, 6)).unwrap());
    let second = flv_tags(&fs::read(clip(960, 540, 30, 60, 6)).unwrap());
    // 180 frames at 30 fps: the second clip starts at 6000 ms.
    const CHANGE_MS: i64 = 6000;
    let mut tags: Vec<(u8, i64, Bytes)> = first
        .into_iter()
        // ffmpeg's end-of-sequence tag and the audio past the first clip's video end.
        .filter(|(k, ts, b)| !(*k == 9 && b.get(1) == Some(&2)) && !(*k == 8 && *ts >= CHANGE_MS))
        .collect();
    let second_header = second
        .iter()
        .find(|(k, _, b)| is_avc_sequence_header(*k, b))
        .expect("second clip has an AVC sequence header")
        .2
        .clone();
    for (k, ts, b) in second {
        let skip = k == 18 || is_aac_sequence_header(k, &b) || (k == 9 && b.get(1) == Some(&2));
        if !skip {
            tags.push((k, ts + CHANGE_MS, b));
        }
    }
    let joined = work.path().join("720p-then-540p.flv");
    fs::write(&joined, write_flv(&tags)).unwrap();

    // Does ffmpeg forward the second sequence header? (Its flv demuxer hands it on as new
    // extradata side data and its flv muxer writes it as a new sequence header tag.)
    let sent = tags_ffmpeg_sends(&joined, work.path());
    let headers: Vec<(i64, &Bytes)> = sent
        .iter()
        .filter(|(k, _, b)| is_avc_sequence_header(*k, b))
        .map(|(_, ts, b)| (*ts, b))
        .collect();
    eprintln!(
        "ffmpeg sends {} AVC sequence headers, at {:?} ms",
        headers.len(),
        headers.iter().map(|h| h.0).collect::<Vec<_>>()
    );
    assert!(
        headers.len() == 2 && headers[1].1 == &second_header,
        "ffmpeg -c copy -f flv does not forward the mid-stream sequence header as is"
    );

    let (server, follower) = publish_and_follow("720p then 540p", &joined);

    let mut p = Problems::default();
    let new_header = log_lines_with(&server, "new H.264 sequence header");
    let changed = log_lines_with(&server, "codec parameters changed");
    eprintln!(
        "server log:\n  {}\n  {}",
        new_header.join("\n  "),
        changed.join("\n  ")
    );
    p.check(
        new_header
            .iter()
            .any(|l| l.contains("width=960") && l.contains("height=540")),
        || "no \"new H.264 sequence header ... width=960 height=540\" in the server log".into(),
    );
    let last_live = follower
        .online_statuses(0)
        .last()
        .cloned()
        .cloned()
        .unwrap_or_default();
    eprintln!("/api/status near the end: {last_live}");
    p.check(
        last_live["input"]["width"] == 960 && last_live["input"]["height"] == 540,
        || format!("/api/status input after the change: {}", last_live["input"]),
    );

    let media: Vec<Media> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, (index, name))| download(follower.last(i), *index, *name))
        .collect();
    let mut groups = Vec::new();
    for m in &media {
        m.print_timeline();
        check_timeline(m, 3000, &mut p);
        let g = m.groups(work.path());
        check_decodes_cleanly(m, &g, &mut p);
        groups.push(g);
    }
    let compared = check_alignment(&media[0], &media[1], 3000, &mut p);
    p.check(compared >= 5, || {
        format!("only {compared} segments listed by both variants")
    });

    // The source: 720p, then a discontinuity and a new init with 960x540 at 6 s.
    let (src, src_groups) = (&media[0], &groups[0]);
    let t0 = src.segs[0].video_tfdt;
    let sizes: Vec<(u64, u64)> = src_groups.iter().map(|g| (g.width, g.height)).collect();
    p.check(sizes == [(1280, 720), (960, 540)], || {
        format!("source variant: sizes by init segment {sizes:?}, want 1280x720 then 960x540")
    });
    let disc: Vec<&Seg> = src.segs.iter().filter(|s| s.discontinuity).collect();
    p.check(disc.len() == 1, || {
        format!(
            "source variant: {} discontinuities, want exactly one (at the size change)",
            disc.len()
        )
    });
    let change_msn = disc.first().map(|s| s.msn);
    if let Some(s) = disc.first() {
        let at = (s.video_tfdt - t0) as f64 / 90_000.0;
        p.check((at - 6.0).abs() <= 0.034, || {
            format!("source variant: the discontinuity (segment {}) starts {at:.3} s into the stream, want 6.0", s.msn)
        });
        p.check(
            src.segs
                .iter()
                .filter(|x| x.msn < s.msn)
                .all(|x| x.map != s.map),
            || "source variant: no new EXT-X-MAP at the discontinuity".to_string(),
        );
    }
    let frames: u64 = src_groups.iter().map(|g| g.frames).sum();
    p.check(frames.abs_diff(360) <= 2, || {
        format!("source variant: {frames} frames, the input has 360")
    });

    // The 360p rendition: 640x360 before and after (16:9 both); its encoder is re-created for
    // the new source size. The variants must agree on the discontinuity (checked above); here:
    // where its inits change.
    let (r, r_groups) = (&media[1], &groups[1]);
    let sizes: Vec<(u64, u64)> = r_groups.iter().map(|g| (g.width, g.height)).collect();
    p.check(sizes.iter().all(|&s| s == (640, 360)), || {
        format!("360p variant: sizes {sizes:?}, want 640x360 throughout")
    });
    let maps: Vec<(u64, &String)> = r
        .segs
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || r.segs[i - 1].map != s.map)
        .map(|(_, s)| (s.msn, &s.map))
        .collect();
    let same_init = r.inits.len() == 1;
    eprintln!(
        "360p variant: init segments by first msn {maps:?}{}",
        if same_init {
            " — one init for the whole publish: the re-created encoder's SPS/PPS (avcC) are byte for byte the old ones (same output size and settings), so the segmenter sees no change"
        } else {
            ""
        }
    );
    p.check(maps.len() == 2 && Some(maps[1].0) == change_msn, || {
        format!(
            "360p variant: init segments start at {:?}; the source changed at segment {change_msn:?}, so the 360p playlist needs its EXT-X-DISCONTINUITY (and EXT-X-MAP) there too",
            maps.iter().map(|m| m.0).collect::<Vec<_>>()
        )
    });
    let frames: u64 = r_groups.iter().map(|g| g.frames).sum();
    p.check(frames >= 340, || {
        format!("360p variant: {frames} frames of 360")
    });

    // The master playlist names the source's new size.
    let master = http_get(&server.master_url()).unwrap().text();
    eprintln!("---- master playlist ----\n{master}");
    let parsed = hls::parse_master(&master).unwrap_or_else(|e| panic!("{e}\n{master}"));
    let res: Vec<Option<(u32, u32)>> = parsed.variants.iter().map(|v| v.resolution()).collect();
    p.check(
        res.contains(&Some((960, 540))) && res.contains(&Some((640, 360))),
        || {
            format!(
                "master playlist RESOLUTIONs {res:?} after the change, want 960x540 and 640x360"
            )
        },
    );

    conclude(server, &follower, p, work);
}

/// 720p30 (GOP 60) for 6 s; the publisher leaves; 854x480 at 25 fps (GOP 50) for 6 s (still
/// above the 360p rendition, which goes on: a smaller source skips it, tested below).
#[test]
fn reconnect_with_different_settings() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let fx = fixture();
    let second = clip(854, 480, 25, 50, 6);
    let mut server = start_server();
    let mut follower = Follower::new(&server);

    let mut first = Publisher::start("720p30", &fx.path, &server.publish_url(), &["-t", "6"]);
    follower.follow_while(|| first.running(), Duration::from_secs(40));
    first.expect_success(Duration::from_secs(1), "ffmpeg publishing 720p30 for 6 s");
    follower.settle(&server);
    let ends: Vec<u64> = (0..VARIANTS.len())
        .map(|i| follower.last(i).pl.next_msn())
        .collect();
    eprintln!("first publish: next msn {ends:?}");

    follower.phase = 1;
    let mut again = Publisher::start("480p25", &second, &server.publish_url(), &[]);
    follower.follow_while(|| again.running(), Duration::from_secs(40));
    again.expect_success(
        Duration::from_secs(1),
        "ffmpeg publishing 854x480 at 25 fps",
    );
    follower.settle(&server);
    server.assert_running();

    let mut p = Problems::default();
    // /api/status describes the new input.
    let live = follower.online_statuses(1);
    let st = live.last().cloned().cloned().unwrap_or_default();
    eprintln!("/api/status during the second publish: {st}");
    p.check(live.len() >= 2, || {
        format!(
            "only {} status samples while the second publish was online",
            live.len()
        )
    });
    p.check(
        st["input"]["width"] == 854 && st["input"]["height"] == 480,
        || {
            format!(
                "/api/status input during the second publish: {}, want 854x480",
                st["input"]
            )
        },
    );
    // Both variants: the media sequence continues, with a discontinuity and a new init at the
    // first segment of the new publish, and that publish's segments decode at their sizes.
    let media: Vec<Media> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, (index, name))| download(follower.last(i), *index, *name))
        .collect();
    for (m, &end) in media.iter().zip(&ends) {
        m.print_timeline();
        let v = format!("variant {} ({})", m.index, m.name);
        let msns: Vec<u64> = m.segs.iter().map(|s| s.msn).collect();
        p.check(
            m.segs[0].msn == 0 && msns.windows(2).all(|w| w[1] == w[0] + 1),
            || format!("{v}: media sequence numbers {msns:?}"),
        );
        let Some(first_new) = m.segs.iter().find(|s| s.msn == end) else {
            p.check(false, || {
                format!("{v}: no segment {end} after the reconnect")
            });
            continue;
        };
        p.check(first_new.discontinuity, || {
            format!("{v}: segment {end} (the reconnect) has no EXT-X-DISCONTINUITY")
        });
        p.check(
            m.segs.iter().filter(|s| s.discontinuity).count() == 1,
            || format!("{v}: more than one discontinuity"),
        );
        p.check(
            m.segs
                .iter()
                .filter(|s| s.msn < end)
                .all(|s| s.map != first_new.map),
            || format!("{v}: the reconnect has no new EXT-X-MAP"),
        );
        let after = m
            .segs
            .iter()
            .filter(|s| s.msn >= end)
            .map(|s| s.duration)
            .sum::<f64>();
        p.check(after >= 5.0, || {
            format!("{v}: {after:.3} s of segments after the reconnect, the publish was 6 s")
        });
        check_timeline(m, 3600, &mut p);
        let groups = m.groups(work.path());
        check_decodes_cleanly(m, &groups, &mut p);
        let sizes: Vec<(u64, u64)> = groups.iter().map(|g| (g.width, g.height)).collect();
        let want = if m.index == 0 {
            [(1280, 720), (854, 480)]
        } else {
            // 854x480 is a hair wider than 16:9: 854 × 360/480 = 640.5, made even upwards.
            [(640, 360), (642, 360)]
        };
        p.check(sizes == want, || {
            format!("{v}: sizes by publish {sizes:?}, want {want:?}")
        });
        let new_frames = groups.last().map(|g| g.frames).unwrap_or(0);
        p.check(new_frames.abs_diff(150) <= 3, || {
            format!("{v}: {new_frames} frames after the reconnect, 150 were sent")
        });
    }
    // 25 fps: one frame is 3600 ticks.
    let compared = check_alignment(&media[0], &media[1], 3600, &mut p);
    p.check(compared >= 6, || {
        format!("only {compared} segments listed by both variants")
    });
    conclude(server, &follower, p, work);
}

/// 720p for 4 s, then a 426x240 source: the 360p rendition would be no smaller than the source,
/// so the second publish does not encode it (issue 14: a second copy of the source's size for
/// nothing); the master playlist stops offering it, its playlist of the first publish ends, and
/// `/api/status` says why. The publish after that, at 720p again, encodes it again.
#[test]
fn a_source_no_bigger_than_a_rendition_skips_it() {
    let _one = exclusive();
    let fx = fixture();
    let small = clip(426, 240, 30, 60, 4);
    let server = start_server();
    let master = || {
        http_get(&server.master_url())
            .map(|r| r.text())
            .unwrap_or_default()
    };
    let variant = |status: &serde_json::Value| status["variants"][1].clone();

    let mut first = Publisher::start("720p", &fx.path, &server.publish_url(), &["-t", "4"]);
    let listed = poll_until(Duration::from_secs(30), POLL, || {
        master().contains("1/stream.m3u8").then_some(())
    });
    assert!(
        listed.is_some(),
        "the 360p rendition was never listed: {}",
        master()
    );
    first.expect_success(Duration::from_secs(30), "ffmpeg publishing 720p for 4 s");
    server.wait_online(false, Duration::from_secs(20));
    let frames_before = variant(&server.status())["framesOut"].as_u64().unwrap();

    let mut second = Publisher::start("240p", &small, &server.publish_url(), &[]);
    let skipped = poll_until(Duration::from_secs(30), POLL, || {
        let status = server.status();
        variant(&status)["skipped"].as_str().map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("not skipped: {}", server.status()));
    assert!(
        skipped.contains("the source is 426x240") && skipped.contains("360p"),
        "{skipped}"
    );
    server.wait_online(true, Duration::from_secs(30));
    second.expect_success(Duration::from_secs(30), "ffmpeg publishing 426x240 for 4 s");
    let master_now = master();
    assert!(
        master_now.contains("0/stream.m3u8") && !master_now.contains("1/stream.m3u8"),
        "the master playlist still offers the skipped rendition:\n{master_now}"
    );
    let old = http_get(&server.url("/hls/1/stream.m3u8")).unwrap().text();
    assert!(
        old.contains("#EXT-X-ENDLIST"),
        "its old playlist goes on:\n{old}"
    );
    assert_eq!(
        variant(&server.status())["framesOut"].as_u64().unwrap(),
        frames_before,
        "the skipped rendition was encoded"
    );
    assert!(
        log_of(&server).contains("would be no smaller"),
        "the log does not say why"
    );
    server.wait_online(false, Duration::from_secs(20));

    // A bigger source again: encoded and offered again.
    let mut third = Publisher::start("720p again", &fx.path, &server.publish_url(), &["-t", "4"]);
    let relisted = poll_until(Duration::from_secs(30), POLL, || {
        master().contains("1/stream.m3u8").then_some(())
    });
    assert!(relisted.is_some(), "not offered again: {}", master());
    assert!(variant(&server.status())["skipped"].is_null());
    third.expect_success(Duration::from_secs(30), "ffmpeg publishing 720p again");
}

/// Video only (`-an`): one track in every init, no `mp4a` in the master playlist's CODECS.
#[test]
fn stream_without_audio() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let fx = fixture();
    let video_only = work.path().join("video-only.flv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(&fx.path)
        .args(["-map", "0:v", "-c", "copy", "-f", "flv"])
        .arg(&video_only)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        flv_tags(&fs::read(&video_only).unwrap())
            .iter()
            .all(|(k, _, _)| *k != 8),
        "the video-only FLV has audio tags"
    );

    let (server, follower) = publish_and_follow("video only", &video_only);

    let mut p = Problems::default();
    let st = follower
        .online_statuses(0)
        .last()
        .cloned()
        .cloned()
        .unwrap_or_default();
    eprintln!("/api/status while live: {st}");
    p.check(st["input"]["audioCodec"].is_null(), || {
        format!("/api/status input.audioCodec {}", st["input"]["audioCodec"])
    });

    let master = http_get(&server.master_url()).unwrap().text();
    eprintln!("---- master playlist ----\n{master}");
    let parsed = hls::parse_master(&master).unwrap_or_else(|e| panic!("{e}\n{master}"));
    p.check(parsed.variants.len() == 2, || {
        "master playlist: want 2 variants".into()
    });
    for v in &parsed.variants {
        let codecs = v.codecs().unwrap_or_default();
        p.check(codecs.len() == 1 && codecs[0].starts_with("avc1."), || {
            format!("master playlist: {} CODECS {codecs:?}, want only the avc1 entry (no mp4a: there is no audio)", v.uri)
        });
    }
    for (i, (index, name)) in VARIANTS.iter().enumerate() {
        let m = download(follower.last(i), *index, *name);
        m.print_timeline();
        for (uri, init) in &m.inits {
            let tracks = mp4::tracks(init).unwrap_or_else(|e| panic!("variant {index} {uri}: {e}"));
            let handlers: Vec<&str> = tracks.iter().map(|t| t.handler.as_str()).collect();
            p.check(handlers == ["vide"], || {
                format!("variant {index} {uri}: tracks {handlers:?}, want one video track and no `soun`")
            });
        }
        for s in &m.segs {
            p.check(s.audio_tfdt.is_none(), || {
                format!("variant {index} segment {} has audio", s.msn)
            });
        }
        check_timeline(&m, 3000, &mut p);
        let total: f64 = m.segs.iter().map(|s| s.duration).sum();
        p.check((total - fx.duration).abs() <= 0.5, || {
            format!(
                "variant {index}: {total:.3} s listed of {:.3} s",
                fx.duration
            )
        });
        let n = m.segs.len();
        for (k, s) in m.segs.iter().enumerate() {
            p.check(
                k + 1 == n || (s.duration - SEGMENT_SECONDS).abs() <= 0.05,
                || {
                    format!(
                        "variant {index} segment {}: EXTINF {}, want {SEGMENT_SECONDS}",
                        s.msn, s.duration
                    )
                },
            );
        }
        let groups = m.groups(work.path());
        check_decodes_cleanly(&m, &groups, &mut p);
        for g in &groups {
            p.check(!g.has_audio, || {
                format!("variant {index}: ffprobe finds an audio stream")
            });
            p.check(
                g.frames.abs_diff(fx.video_frames) <= 2
                    || (*index == 1 && g.frames + 20 >= fx.video_frames),
                || {
                    format!(
                        "variant {index}: {} frames, the input has {}",
                        g.frames, fx.video_frames
                    )
                },
            );
        }
    }
    conclude(server, &follower, p, work);
}

/// The publisher's clock jumps 30 s forward at ~4.3 s (an audio tag first) and 3 s back at
/// ~8.3 s (a video tag first), in the middle of GOPs; it keeps sending in real time.
#[test]
fn timestamps_that_jump() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let fx = fixture();
    let tags = flv_tags(&fs::read(common::flv::fixture_as_flv()).unwrap());
    let forward_at = tags
        .iter()
        .position(|(k, ts, _)| *k == 8 && *ts >= 4300)
        .expect("an audio tag at 4.3 s");
    let back_at = tags
        .iter()
        .position(|(k, ts, b)| is_avc_frame(*k, b) && *ts >= 8300)
        .expect("a video tag at 8.3 s");
    assert!(
        !is_keyframe(&tags[back_at].2),
        "the jump back should be mid-GOP"
    );
    let timed: Vec<TimedTag> = tags
        .iter()
        .enumerate()
        .filter(|(_, (k, _, _))| *k == 8 || *k == 9)
        .map(|(i, (k, ts, b))| {
            let shift = match i {
                i if i >= back_at => 27_000,
                i if i >= forward_at => 30_000,
                _ => 0,
            };
            TimedTag {
                kind: *k,
                timestamp_ms: (ts + shift) as u32,
                send_at_ms: *ts as u64,
                body: b.clone(),
            }
        })
        .collect();
    eprintln!(
        "jumps: +30 s from tag {forward_at} (audio, {} ms), -3 s from tag {back_at} (video, {} ms)",
        tags[forward_at].1, tags[back_at].1
    );
    // The ffmpeg CLI would not send this (kept as the reason for the RTMP client above).
    let jumped = work.path().join("jumping.flv");
    let jumped_tags: Vec<(u8, i64, Bytes)> = timed
        .iter()
        .map(|t| (t.kind, t.timestamp_ms as i64, t.body.clone()))
        .collect();
    fs::write(&jumped, write_flv(&jumped_tags)).unwrap();
    let sent = tags_ffmpeg_sends(&jumped, work.path());
    let backwards = sent
        .iter()
        .filter(|(k, _, _)| *k == 9)
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .count();
    eprintln!("ffmpeg -c copy -f flv would send {backwards} video timestamps that go backwards (we send them ourselves)");

    let mut server = start_server();
    let handle = publish_in_real_time(server.rtmp_port, "live", TEST_KEY, timed);
    let mut follower = Follower::new(&server);
    follower.follow_while(|| !handle.is_finished(), Duration::from_secs(40));
    let sent = handle
        .join()
        .expect("publisher thread")
        .unwrap_or_else(|e| panic!("RTMP publisher: {e}"));
    eprintln!("RTMP publisher sent {sent} messages");
    follower.settle(&server);
    server.assert_running();

    let mut p = Problems::default();
    let jumped_lines = log_lines_with(&server, "video timestamps jumped");
    eprintln!(
        "server log, \"video timestamps jumped\" ({}):\n  {}",
        jumped_lines.len(),
        jumped_lines.join("\n  ")
    );
    // The step the segmenter saw, in ms (one frame more than the jump itself).
    let steps: Vec<i64> = jumped_lines
        .iter()
        .filter_map(|l| {
            l.split("step_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    p.check(steps.iter().any(|s| (29_900..=30_100).contains(s)), || {
        format!("no \"video timestamps jumped\" warning for the 30 s jump (steps {steps:?})")
    });
    p.check(steps.iter().any(|s| (-3_100..=-2_900).contains(s)), || {
        format!("no \"video timestamps jumped\" warning for the 3 s jump back (steps {steps:?})")
    });

    let media: Vec<Media> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, (index, name))| download(follower.last(i), *index, *name))
        .collect();
    for m in &media {
        m.print_timeline();
        check_timeline(m, 3000, &mut p);
        let total: f64 = m.segs.iter().map(|s| s.duration).sum();
        p.check((total - fx.duration).abs() <= 1.0, || {
            format!("variant {}: {total:.3} s of segments for {:.1} s of input (the jumps are not gaps)", m.index, fx.duration)
        });
        let groups = m.groups(work.path());
        check_decodes_cleanly(m, &groups, &mut p);
        check_frame_count(m, &groups, fx.video_frames, 10, &mut p);
    }
    check_alignment(&media[0], &media[1], 3000, &mut p);
    conclude(server, &follower, p, work);
}

/// Video tags cut short between 3 and 5 s (half the tag: the NAL length claims more than
/// follows; 7 bytes: the NAL length itself cut; 9 bytes: a length and nothing after it) and AAC
/// frames cut to half or to one byte between 6 and 8 s. Tag sizes are consistent (the FLV is
/// well-formed; the payloads are short), as a lossy link or a buggy encoder would deliver them.
#[test]
fn truncated_packets() {
    let _one = exclusive();
    let work = tempfile::tempdir().unwrap();
    let fx = fixture();
    let mut tags = flv_tags(&fs::read(common::flv::fixture_as_flv()).unwrap());
    let (mut video_cut, mut audio_cut) = (Vec::new(), Vec::new());
    let (mut nv, mut na) = (0, 0);
    for (k, ts, body) in tags.iter_mut() {
        if is_avc_frame(*k, body) && !is_keyframe(body) && (3000..5000).contains(ts) {
            nv += 1;
            if nv % 4 == 0 {
                let len = match video_cut.len() % 3 {
                    0 => body.len() / 2,
                    1 => 7,
                    _ => 9,
                };
                video_cut.push((*ts, body.len(), len));
                *body = body.slice(..len);
            }
        } else if *k == 8 && body.len() > 2 && body[1] == 1 && (6000..8000).contains(ts) {
            na += 1;
            if na % 10 == 0 {
                let len = if audio_cut.len() % 2 == 0 {
                    body.len() / 2
                } else {
                    3
                };
                audio_cut.push((*ts, body.len(), len));
                *body = body.slice(..len);
            }
        }
    }
    eprintln!("video tags cut (ms, bytes, to): {video_cut:?}\naudio tags cut (ms, bytes, to): {audio_cut:?}");
    let damaged = work.path().join("truncated.flv");
    fs::write(&damaged, write_flv(&tags)).unwrap();
    // ffmpeg forwards the short tags as they are.
    let sent = tags_ffmpeg_sends(&damaged, work.path());
    let sizes: std::collections::HashSet<(u8, i64, usize)> =
        sent.iter().map(|(k, t, b)| (*k, *t, b.len())).collect();
    let forwarded_video = video_cut
        .iter()
        .filter(|(t, _, l)| sizes.contains(&(9, *t, *l)))
        .count();
    let forwarded_audio = audio_cut
        .iter()
        .filter(|(t, _, l)| sizes.contains(&(8, *t, *l)))
        .count();
    eprintln!(
        "ffmpeg forwards {forwarded_video}/{} cut video tags and {forwarded_audio}/{} cut audio tags unchanged",
        video_cut.len(),
        audio_cut.len()
    );
    assert!(
        forwarded_video == video_cut.len() && forwarded_audio >= 4,
        "ffmpeg changes the damaged tags"
    );

    let (server, follower) = publish_and_follow("truncated tags", &damaged);

    let mut p = Problems::default();
    let log = log_of(&server);
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("publish ended"))
        .collect();
    eprintln!("{}", summary.join("\n"));
    p.check(
        summary
            .iter()
            .any(|l| l.contains(&format!("skipped_tags={}", video_cut.len()))),
        || {
            format!(
                "the end-of-publish line does not count the {} skipped video tags: {summary:?}",
                video_cut.len()
            )
        },
    );
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("WARN")
                && (l.contains("skipping") || l.contains("damaged") || l.contains("refused"))
        })
        .collect();
    eprintln!("warnings ({}):\n  {}", warns.len(), warns.join("\n  "));
    p.check(
        warns
            .iter()
            .any(|w| w.contains("skipping malformed H.264 frame")),
        || "no \"skipping malformed H.264 frame\" warning for the cut video tags".into(),
    );
    p.check(warns.len() * 2 <= video_cut.len() + audio_cut.len(), || {
        format!(
            "{} warning lines for {} damaged tags: not rate-limited",
            warns.len(),
            video_cut.len() + audio_cut.len()
        )
    });

    let media: Vec<Media> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, (index, name))| download(follower.last(i), *index, *name))
        .collect();
    for m in &media {
        m.print_timeline();
        check_timeline(m, 3000, &mut p);
        let total: f64 = m.segs.iter().map(|s| s.duration).sum();
        p.check(total >= fx.duration - 1.0, || {
            format!(
                "variant {}: {total:.3} s of segments for {:.1} s: it stopped producing segments",
                m.index, fx.duration
            )
        });
        let groups = m.groups(work.path());
        for g in &groups {
            // The cut AAC frames are passed on (nothing in a raw AAC frame says its length),
            // so the audio decoder may complain; the process must not fail.
            p.check(g.decode_status.success(), || {
                format!(
                    "variant {}: ffmpeg fails decoding: {}",
                    m.index, g.decode_errors
                )
            });
            if m.index == 1 {
                // Re-encoded: clean H.264 whatever the source was.
                p.check(g.video_decode_errors.trim().is_empty(), || {
                    format!(
                        "360p variant video does not decode cleanly:\n{}",
                        first_lines(&g.video_decode_errors, 8)
                    )
                });
            }
            if !g.decode_errors.trim().is_empty() {
                eprintln!(
                    "variant {} decode messages (expected for cut source frames):\n{}",
                    m.index,
                    first_lines(&g.decode_errors, 6)
                );
            }
        }
        check_frame_count(m, &groups, fx.video_frames, 30, &mut p);
    }
    check_alignment(&media[0], &media[1], 3000, &mut p);
    conclude(server, &follower, p, work);
}
