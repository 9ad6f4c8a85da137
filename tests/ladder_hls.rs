//! Issue 4, "Adaptive bitrate ladder", end to end: ffmpeg publishes the fixture over RTMP to a
//! server configured with a `[[video.variants]]` ladder, and every rendition is judged the way a
//! player and ffprobe see it: the master playlist (one entry per variant, highest BANDWIDTH
//! first, with RESOLUTION, FRAME-RATE and CODECS), each media playlist (live reloads, RFC 8216
//! rules, 2 s segments), each variant's init + segments (size, codecs, clean decode, every frame,
//! bitrate near its target), segment boundaries that line up across the ladder (`tfdt` and
//! EXTINF of each media sequence number), `/api/status` while live, twenty publish cycles
//! without leaking threads or memory, and corrupt packets in the source.
//!
//! The tests transcode in real time, so they take a lock and run one at a time (two at once on
//! a 2-core machine would make each other's encoders drop frames).
//!
//! Run: `cargo test --release --test ladder_hls -- --nocapture`

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::hls::{self, MasterPlaylist};
use common::*;

const POLL: Duration = Duration::from_millis(250);
/// One frame of the 30 fps fixture, in 90 kHz ticks and in seconds.
const FRAME_TICKS_90K: u64 = 3000;
const FRAME_SECONDS: f64 = 1.0 / 30.0;

/// One test at a time (see the top of the file).
fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The ladder in the config

const SOURCE_TOML: &str = "\n[[video.variants]]\nname = \"source\"\npassthrough = true\n";

fn variant_toml(name: &str, height: u32, kbps: u32, cpu_usage_level: u32) -> String {
    format!(
        "\n[[video.variants]]\nname = \"{name}\"\nheight = {height}\nvideo_bitrate_kbps = {kbps}\ncpu_usage_level = {cpu_usage_level}\n"
    )
}

/// What one configured variant should turn out as.
#[derive(Debug, Clone)]
struct Expect {
    /// Position in the config = URL path segment.
    index: usize,
    name: &'static str,
    width: u32,
    height: u32,
    /// `None`: passthrough.
    target_kbps: Option<u32>,
}

impl Expect {
    fn source() -> Expect {
        let fx = fixture();
        Expect {
            index: 0,
            name: "source",
            width: fx.width,
            height: fx.height,
            target_kbps: None,
        }
    }
    /// A transcoded variant of the 1280x720 fixture: width = 1280 × height / 720, rounded to even.
    fn scaled(index: usize, name: &'static str, height: u32, kbps: u32) -> Expect {
        let fx = fixture();
        let exact = fx.width as f64 * height as f64 / fx.height as f64;
        let width = ((exact / 2.0).round() * 2.0) as u32;
        Expect {
            index,
            name,
            width,
            height,
            target_kbps: Some(kbps),
        }
    }
    fn media_url(&self, server: &Server) -> String {
        server.url(&format!("/hls/{}/stream.m3u8", self.index))
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// A `Key:  value [kB]` field of `/proc/PID/status`, as a number.
fn proc_status(pid: u32, key: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status:\n{text}"))
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS")
}

fn threads(pid: u32) -> u64 {
    proc_status(pid, "Threads")
}

/// The names of the process's threads with how many of each, for failure messages.
fn thread_names(pid: u32) -> String {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            *names.entry(comm.trim().to_string()).or_default() += 1;
        }
    }
    names
        .iter()
        .map(|(n, c)| format!("{n} ×{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Following a live ladder

/// What was seen while a publish ran: one tracker per variant and `/api/status` samples.
struct Live {
    trackers: Vec<Tracker>,
    /// (seconds since publish, /api/status) while the publisher was running.
    statuses: Vec<(f64, serde_json::Value)>,
}

/// Follows every variant's media playlist and samples `/api/status` (about once a second)
/// while `publisher` runs, checking each reload with the generic playlist rules; then requires
/// a clean publisher exit, waits for the stream to go offline, and for every playlist to settle
/// (the ladder's threads flush their last segments after the publisher has gone).
fn follow(server: &Server, publisher: &mut Publisher, expects: &[Expect]) -> Live {
    let fx = fixture();
    let window = server.opts.playlist_segments as usize;
    let mut trackers: Vec<Tracker> = expects.iter().map(|_| Tracker::new()).collect();
    let mut statuses = Vec::new();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(fx.duration + 40.0);
    let mut last_status = t0 - Duration::from_secs(10);
    let reload = |tracker: &mut Tracker, e: &Expect, must_exist: bool| {
        let url = e.media_url(server);
        match fetch_media(&url) {
            Ok((resp, f)) => {
                let hp = playlist_header_problems(&resp, server.opts.segment_seconds);
                assert!(
                    hp.is_empty(),
                    "{url} response headers:\n  - {}\n{}",
                    hp.join("\n  - "),
                    resp.headers_text()
                );
                let p = media_playlist_problems(&f.pl, window);
                assert!(
                    p.is_empty(),
                    "media playlist {url}:\n  - {}\n---- playlist ----\n{}",
                    p.join("\n  - "),
                    f.text
                );
                if let Err(e) = tracker.observe(f) {
                    panic!("{e}");
                }
            }
            // A variant's playlist appears with its first segment.
            Err(e) if !must_exist && tracker.history.is_empty() => {
                if e.contains("HTTP 404") {
                    return;
                }
                panic!("{e} (server log tail below)")
            }
            Err(e) => panic!("{e} (server log tail below)"),
        }
    };
    while publisher.running() {
        assert!(
            Instant::now() < deadline,
            "the publisher did not finish in time"
        );
        for (tracker, e) in trackers.iter_mut().zip(expects) {
            reload(tracker, e, false);
        }
        if last_status.elapsed() >= Duration::from_millis(900) {
            last_status = Instant::now();
            let st = server.status();
            statuses.push((t0.elapsed().as_secs_f64(), st));
        }
        std::thread::sleep(POLL);
    }
    publisher.expect_success(Duration::from_secs(1), "ffmpeg publishing the fixture");
    server.wait_online(false, Duration::from_secs(15));
    wait_until_playlists_settle(|| {
        for (tracker, e) in trackers.iter_mut().zip(expects) {
            reload(tracker, e, true);
        }
        trackers
            .iter()
            .map(|t| t.last().unwrap().text.clone())
            .collect()
    });
    Live { trackers, statuses }
}

/// The master playlist, fetched and parsed strictly, with its response headers checked.
fn fetch_master(server: &Server) -> (String, MasterPlaylist) {
    let r = http_get(&server.master_url()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 200, "GET {}: {}", server.master_url(), r.text());
    let hp = playlist_header_problems(&r, server.opts.segment_seconds);
    assert!(
        hp.is_empty(),
        "master playlist headers:\n  - {}\n{}",
        hp.join("\n  - "),
        r.headers_text()
    );
    let text = r.text();
    let master = hls::parse_master(&text)
        .unwrap_or_else(|e| panic!("{e}\n---- master playlist ----\n{text}"));
    (text, master)
}

/// The master playlist rules of the issue; returns each variant's CODECS avc1 entry, by index.
fn check_master(
    text: &str,
    master: &MasterPlaylist,
    expects: &[Expect],
) -> BTreeMap<usize, String> {
    let fx = fixture();
    let ctx = format!("---- master playlist ----\n{text}");
    assert_eq!(
        master.variants.len(),
        expects.len(),
        "one EXT-X-STREAM-INF per configured variant\n{ctx}"
    );
    let bandwidths: Vec<u64> = master
        .variants
        .iter()
        .map(|v| {
            v.bandwidth()
                .unwrap_or_else(|| panic!("{} has no BANDWIDTH\n{ctx}", v.uri))
        })
        .collect();
    assert!(
        bandwidths.windows(2).all(|w| w[0] >= w[1]) && bandwidths.iter().all(|&b| b > 0),
        "BANDWIDTHs {bandwidths:?}: want > 0 and highest first\n{ctx}"
    );
    let mut want_order: Vec<&Expect> = expects.iter().collect();
    want_order.sort_by_key(|e| std::cmp::Reverse(e.width * e.height));
    let mut avc1 = BTreeMap::new();
    for (v, want) in master.variants.iter().zip(&want_order) {
        assert_eq!(
            v.resolution(),
            Some((want.width, want.height)),
            "{}: RESOLUTION (variants in BANDWIDTH order should be {:?})\n{ctx}",
            v.uri,
            want_order
                .iter()
                .map(|e| format!("{}x{}", e.width, e.height))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            v.uri,
            format!("{}/stream.m3u8", want.index),
            "the {}x{} variant is config position {}\n{ctx}",
            want.width,
            want.height,
            want.index
        );
        let fr = v
            .frame_rate()
            .unwrap_or_else(|| panic!("{}: no FRAME-RATE\n{ctx}", v.uri));
        assert!(
            (fr - fx.fps as f64).abs() < 0.1,
            "{}: FRAME-RATE={fr}, the fixture is {} fps\n{ctx}",
            v.uri,
            fx.fps
        );
        let codecs = v
            .codecs()
            .unwrap_or_else(|| panic!("{}: no CODECS\n{ctx}", v.uri));
        assert!(
            codecs.len() == 2
                && codecs[0].starts_with("avc1.64")
                && codecs[0].len() == 11
                && codecs[1] == "mp4a.40.2",
            "{}: CODECS {codecs:?}, want [\"avc1.64xxxx\" (H.264 High), \"mp4a.40.2\"]\n{ctx}",
            v.uri
        );
        if want.target_kbps.is_none() {
            assert_eq!(
                codecs[0], fx.avc1_codec,
                "{}: the passthrough variant's CODECS are the source's\n{ctx}",
                v.uri
            );
        }
        avc1.insert(want.index, codecs[0].clone());
    }
    avc1
}

/// Every segment but the last (and any before a discontinuity) lasts segment_seconds ± 0.1:
/// the source has a keyframe every 2 s and the transcoded variants are forced to, too.
fn check_extinfs(f: &Fetched) {
    let seg = fixture().segment_seconds();
    let n = f.pl.segments.len();
    for (i, s) in f.pl.segments.iter().enumerate() {
        let last_of_publish = i + 1 == n || f.pl.segments[i + 1].discontinuity;
        let ok = if last_of_publish {
            s.duration > 0.0 && s.duration <= seg + 0.1
        } else {
            (seg - 0.1..=seg + 0.1).contains(&s.duration)
        };
        assert!(
            ok,
            "{}: segment {} EXTINF {}, want {seg} ± 0.1\n{}",
            f.url, s.msn, s.duration, f.text
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A variant's media

/// A variant's init segment and segments, downloaded (response headers checked), and their
/// concatenation on disk.
struct Media {
    init: Vec<u8>,
    /// (msn, EXTINF, bytes)
    segments: Vec<(u64, f64, Vec<u8>)>,
    file: PathBuf,
}

fn download(f: &Fetched, dir: &Path, name: &str) -> Media {
    let segs = &f.pl.segments;
    assert!(!segs.is_empty(), "{}: no segments\n{}", f.url, f.text);
    let map = segs[0].map.clone().expect("segment without EXT-X-MAP");
    assert!(
        segs.iter().all(|s| s.map.as_ref() == Some(&map)),
        "{}: one publish session, yet segments with different init segments\n{}",
        f.url,
        f.text
    );
    let get = |uri: &str, is_init: bool| -> Vec<u8> {
        let url = hls::resolve(&f.url, uri);
        let r = http_get(&url).unwrap_or_else(|e| panic!("{e} (server log tail below)"));
        assert_eq!(r.status, 200, "GET {url}: {}", r.text());
        assert!(!r.body.is_empty(), "GET {url}: empty body");
        let p = segment_header_problems(&r, is_init);
        assert!(
            p.is_empty(),
            "{url}:\n  - {}\n{}",
            p.join("\n  - "),
            r.headers_text()
        );
        r.body
    };
    let init = get(&map.uri, true);
    let segments: Vec<(u64, f64, Vec<u8>)> = segs
        .iter()
        .map(|s| (s.msn, s.duration, get(&s.uri, false)))
        .collect();
    let file = dir.join(name);
    let mut all = init.clone();
    for (_, _, b) in &segments {
        all.extend_from_slice(b);
    }
    fs::write(&file, all).unwrap();
    Media {
        init,
        segments,
        file,
    }
}

/// Bytes and time span of the video packets of a file: (bytes, seconds).
fn video_bytes_and_span(path: &Path) -> (u64, f64) {
    let v = ffprobe_json(
        path,
        &["-select_streams", "v:0", "-show_entries", "packet=size"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bytes: u64 = v["packets"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["size"].as_str()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let (vspan, _) = stream_spans(path).unwrap_or_else(|e| panic!("{e}"));
    let span = vspan.expect("no video packets").duration();
    (bytes, span)
}

/// What one variant's media measured.
#[derive(Debug)]
struct Measured {
    frames: u64,
    kbps: f64,
}

/// ffprobe/ffmpeg checks of one variant's init + segments: H.264 High of the expected size +
/// AAC-LC, clean decode, every fixture frame (± 2), video bitrate within ±30 % of the target
/// (transcoded variants), and the init's avcC = the CODECS of the master playlist.
fn check_media(e: &Expect, m: &Media, codecs_avc1: Option<&str>) -> Measured {
    let fx = fixture();
    let keep = || {
        let kept = std::env::temp_dir().join(format!(
            "selfcast-failed-{}-{}",
            std::process::id(),
            m.file.file_name().unwrap().to_string_lossy()
        ));
        let _ = fs::copy(&m.file, &kept);
        format!(
            "(variant {} {:?}; init + segments kept at {})",
            e.index,
            e.name,
            kept.display()
        )
    };
    let probe =
        ffprobe_json(&m.file, &["-show_streams"]).unwrap_or_else(|err| panic!("{err}\n{}", keep()));
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    let v = streams.iter().find(|s| s["codec_type"] == "video");
    let a = streams.iter().find(|s| s["codec_type"] == "audio");
    let (Some(v), Some(a)) = (v, a) else {
        panic!("want one video and one audio stream: {probe:#}\n{}", keep());
    };
    assert_eq!(v["codec_name"], "h264", "video codec\n{}", keep());
    assert_eq!(v["profile"], "High", "video profile\n{}", keep());
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(e.width as u64), Some(e.height as u64)),
        "video size\n{}",
        keep()
    );
    assert_eq!(a["codec_name"], "aac", "audio codec\n{}", keep());
    assert_eq!(a["profile"], "LC", "audio profile\n{}", keep());
    assert_eq!(
        a["sample_rate"],
        fx.sample_rate.to_string(),
        "audio sample rate\n{}",
        keep()
    );
    assert_eq!(
        a["channels"].as_u64(),
        Some(fx.channels as u64),
        "audio channels\n{}",
        keep()
    );

    let (st, err) = ffmpeg_decode(&m.file);
    assert!(
        st.success() && err.trim().is_empty(),
        "`ffmpeg -v error -i FILE -f null -` must decode cleanly: {st}\n{err}\n{}",
        keep()
    );
    let frames = count_video_frames(&m.file).unwrap_or_else(|err| panic!("{err}\n{}", keep()));
    assert!(
        frames.abs_diff(fx.video_frames) <= 2,
        "{frames} video frames, the fixture has {} (± 2): frames lost or duplicated\n{}",
        fx.video_frames,
        keep()
    );
    let (bytes, span) = video_bytes_and_span(&m.file);
    let kbps = bytes as f64 * 8.0 / span / 1000.0;
    if let Some(target) = e.target_kbps {
        let ratio = kbps / target as f64;
        assert!(
            (0.7..=1.3).contains(&ratio),
            "video bitrate {kbps:.0} kbps ({bytes} bytes over {span:.3} s) is {:.0} % of the target {target} kbps (want ±30 %)\n{}",
            ratio * 100.0,
            keep()
        );
    }
    let init_codec =
        common::mp4::avc1_codec(&m.init).unwrap_or_else(|err| panic!("{err}\n{}", keep()));
    if let Some(c) = codecs_avc1 {
        assert_eq!(
            init_codec,
            c,
            "the master playlist's CODECS differ from the init segment's avcC\n{}",
            keep()
        );
    }
    Measured { frames, kbps }
}

/// Segment boundaries across the ladder: for every media sequence number that all variants
/// list, the first video sample's decode time (`tfdt`) and the EXTINF agree within one frame.
/// Returns the number of sequence numbers compared.
fn check_alignment(expects: &[Expect], media: &[Media]) -> usize {
    let mut per_msn: BTreeMap<u64, Vec<(u64, f64)>> = BTreeMap::new();
    for (e, m) in expects.iter().zip(media) {
        let track = common::mp4::video_track(&m.init)
            .unwrap_or_else(|err| panic!("variant {} init: {err}", e.index));
        for (msn, extinf, bytes) in &m.segments {
            let tfdt = common::mp4::first_tfdt(bytes, track.id)
                .unwrap_or_else(|err| panic!("variant {} segment {msn}: {err}", e.index));
            let ticks_90k = (tfdt as u128 * 90_000 / track.timescale as u128) as u64;
            per_msn.entry(*msn).or_default().push((ticks_90k, *extinf));
        }
    }
    let names: Vec<String> = expects.iter().map(|e| format!("{:>22}", e.name)).collect();
    eprintln!(
        "  msn  {}   (tfdt in 90 kHz ticks / EXTINF)",
        names.join("")
    );
    let mut compared = 0;
    let mut worst = (0u64, 0.0f64);
    for (msn, v) in &per_msn {
        let row: Vec<String> = v.iter().map(|(t, d)| format!("{t:>13} / {d:.3}")).collect();
        eprintln!("  {msn:>3}  {}", row.join("  "));
        if v.len() != expects.len() {
            continue;
        }
        compared += 1;
        let (tmin, tmax) = (
            v.iter().map(|x| x.0).min().unwrap(),
            v.iter().map(|x| x.0).max().unwrap(),
        );
        let dmin = v.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let dmax = v.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        worst = (worst.0.max(tmax - tmin), worst.1.max(dmax - dmin));
        assert!(
            tmax - tmin <= FRAME_TICKS_90K,
            "segment {msn}: the first video sample's tfdt differs by {} ticks across the ladder (more than one frame = {FRAME_TICKS_90K}): {v:?}",
            tmax - tmin
        );
        assert!(
            dmax - dmin <= FRAME_SECONDS + 0.001,
            "segment {msn}: EXTINFs differ by {:.4} s across the ladder (more than one frame): {v:?}",
            dmax - dmin
        );
    }
    eprintln!(
        "alignment: {compared} segments compared; largest tfdt spread {} ticks ({:.1} ms), largest EXTINF spread {:.4} s",
        worst.0,
        worst.0 as f64 / 90.0,
        worst.1
    );
    compared
}

/// `/api/status` while the stream was live: every variant listed with its config, `framesOut`
/// growing for each, and the input described as the fixture.
fn check_live_status(live: &Live, expects: &[Expect]) {
    let fx = fixture();
    let online: Vec<&(f64, serde_json::Value)> = live
        .statuses
        .iter()
        .filter(|(_, s)| s["online"] == true)
        .collect();
    assert!(
        online.len() >= 3,
        "fewer than 3 /api/status samples while online: {:#?}",
        live.statuses
    );
    let (t_first, first) = online[1]; // the first one may come before every encoder has output
    let (t_last, last) = online[online.len() - 1];
    eprintln!("/api/status at +{t_last:.1}s: {last}");
    let input = &last["input"];
    assert_eq!(
        input["videoCodec"],
        fx.avc1_codec.as_str(),
        "/api/status input.videoCodec: {last}"
    );
    assert_eq!(
        input["audioCodec"], "mp4a.40.2",
        "/api/status input.audioCodec: {last}"
    );
    assert_eq!(
        (input["width"].as_u64(), input["height"].as_u64()),
        (Some(1280), Some(720)),
        "/api/status input size: {last}"
    );
    assert!(
        input["bitrateKbps"].as_u64().unwrap_or(0) > 0,
        "/api/status input.bitrateKbps: {last}"
    );
    let variants = last["variants"]
        .as_array()
        .unwrap_or_else(|| panic!("/api/status has no variants array: {last}"));
    assert_eq!(
        variants.len(),
        expects.len(),
        "/api/status variants: {last}"
    );
    for e in expects {
        let v = &variants[e.index];
        let v0 = &first["variants"][e.index];
        assert_eq!(
            v["id"],
            e.index.to_string(),
            "/api/status variants[{}].id: {last}",
            e.index
        );
        assert_eq!(
            v["name"], e.name,
            "/api/status variants[{}].name: {last}",
            e.index
        );
        assert_eq!(
            v["passthrough"],
            e.target_kbps.is_none(),
            "/api/status variants[{}].passthrough: {last}",
            e.index
        );
        if let Some(k) = e.target_kbps {
            assert_eq!(
                v["targetBitrateKbps"], k,
                "/api/status variants[{}].targetBitrateKbps: {last}",
                e.index
            );
        }
        let (n0, n1) = (
            v0["framesOut"].as_u64().unwrap_or(0),
            v["framesOut"].as_u64().unwrap_or(0),
        );
        assert!(
            n1 > n0,
            "/api/status variants[{}].framesOut did not grow between +{t_first:.1}s ({n0}) and +{t_last:.1}s ({n1})",
            e.index
        );
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(e.width as u64), Some(e.height as u64)),
            "/api/status variants[{}] size: {last}",
            e.index
        );
        eprintln!(
            "  variant {} {:>6}: framesOut {n0} → {n1} (+{t_first:.1}s → +{t_last:.1}s), framesDropped {}, queueDepth {}, bitrateKbps {}",
            e.index, e.name, v["framesDropped"], v["queueDepth"], v["bitrateKbps"]
        );
    }
}

/// Publishes the fixture once to a server with `expects` as its ladder and runs every check of
/// the issue on the result.
fn publish_and_check(ladder_toml: String, expects: &[Expect]) {
    let fx = fixture();
    let server = Server::start(ServerOptions {
        playlist_segments: 10,
        ladder_toml,
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut publisher = Publisher::start("fixture", &fx.path, &server.publish_url(), &[]);
    let live = follow(&server, &mut publisher, expects);
    eprintln!(
        "published {:.1} s of fixture; settled after {:.1} s",
        fx.duration,
        t0.elapsed().as_secs_f64()
    );
    check_live_status(&live, expects);

    let (text, master) = fetch_master(&server);
    eprintln!("---- master playlist ----\n{text}");
    let avc1 = check_master(&text, &master, expects);

    let mut media = Vec::new();
    for (e, tracker) in expects.iter().zip(&live.trackers) {
        let f = tracker.last().unwrap();
        check_extinfs(f);
        let m = download(f, work.path(), &format!("variant{}.mp4", e.index));
        let measured = check_media(e, &m, avc1.get(&e.index).map(String::as_str));
        eprintln!(
            "variant {} {:>6}: {}x{}, {} segments, {} frames, video {:.0} kbps{}",
            e.index,
            e.name,
            e.width,
            e.height,
            m.segments.len(),
            measured.frames,
            measured.kbps,
            match e.target_kbps {
                Some(t) => format!(
                    " (target {t}, {:+.1} %)",
                    (measured.kbps / t as f64 - 1.0) * 100.0
                ),
                None => " (passthrough)".to_string(),
            }
        );
        media.push(m);
    }
    if expects.len() > 1 {
        let compared = check_alignment(expects, &media);
        assert!(
            compared >= 5,
            "only {compared} media sequence numbers are listed by every variant"
        );
    }
    // Every variant's playlist lists the same sequence numbers (they are cut at the same times).
    let msns: Vec<Vec<u64>> = media
        .iter()
        .map(|m| m.segments.iter().map(|s| s.0).collect())
        .collect();
    assert!(
        msns.windows(2).all(|w| w[0] == w[1]),
        "variants list different segments: {msns:?}"
    );
}

// ---------------------------------------------------------------------------------------------

#[test]
fn every_variant_plays_at_its_size_and_bitrate() {
    let _one = exclusive();
    let ladder = format!(
        "{SOURCE_TOML}{}{}",
        variant_toml("480p", 480, 1000, 2),
        variant_toml("360p", 360, 600, 2)
    );
    let expects = [
        Expect::source(),
        Expect::scaled(1, "480p", 480, 1000),
        Expect::scaled(2, "360p", 360, 600),
    ];
    assert_eq!((expects[1].width, expects[2].width), (854, 640));
    publish_and_check(ladder, &expects);
}

#[test]
fn a_ladder_without_passthrough_works() {
    let _one = exclusive();
    publish_and_check(
        variant_toml("360p", 360, 600, 2),
        &[Expect::scaled(0, "360p", 360, 600)],
    );
}

/// The next media sequence number of a variant's playlist (0 before it exists).
fn next_msn(server: &Server, index: usize) -> u64 {
    match fetch_media(&server.url(&format!("/hls/{index}/stream.m3u8"))) {
        Ok((_, f)) => f.pl.next_msn(),
        Err(e) if e.contains("HTTP 404") => 0,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn twenty_publish_cycles_do_not_leak() {
    let _one = exclusive();
    const CYCLES: usize = 20;
    // 3 s, not 2: the stream is announced online when its first segment is listed, and the
    // first segment of a 2 s clip (keyframes every 2 s) is only cut when the publisher leaves,
    // so a 2 s publish is never seen online. With 3 s, segment 0 is cut at the keyframe at 2 s.
    const CLIP_SECONDS: &str = "3";
    let fx = fixture();
    let ladder = format!("{SOURCE_TOML}{}", variant_toml("360p", 360, 600, 0));
    let server = Server::start(ServerOptions {
        ladder_toml: ladder,
        ..Default::default()
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle_threads = threads(server.pid);
    let idle_rss = rss_kib(server.pid);
    eprintln!(
        "idle: {idle_threads} threads ({}), VmRSS {} MiB",
        thread_names(server.pid),
        idle_rss / 1024
    );
    let t_all = Instant::now();
    let mut rss_after = BTreeMap::new();
    for cycle in 1..=CYCLES {
        let t0 = Instant::now();
        let before = next_msn(&server, 1);
        let mut p = Publisher::start(
            &format!("cycle {cycle}"),
            &fx.path,
            &server.publish_url(),
            &["-t", CLIP_SECONDS],
        );
        let mut saw_online = false;
        let mut peak_threads = 0;
        while p.running() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "cycle {cycle}: the publisher did not finish"
            );
            saw_online |= server.is_online();
            peak_threads = peak_threads.max(threads(server.pid));
            std::thread::sleep(Duration::from_millis(50));
        }
        p.expect_success(
            Duration::from_secs(1),
            &format!("cycle {cycle}: ffmpeg publishing {CLIP_SECONDS} s"),
        );
        assert!(
            saw_online,
            "cycle {cycle}: /api/status never said online while publishing {CLIP_SECONDS} s"
        );
        server.wait_online(false, Duration::from_secs(10));
        // The encoder, decoder and session threads end once the session is over.
        let back = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
            (threads(server.pid) == idle_threads).then_some(())
        });
        assert!(
            back.is_some(),
            "cycle {cycle}: {} threads 15 s after the stream went offline, {idle_threads} when idle \
             (encoder/decoder threads left behind?): {}",
            threads(server.pid),
            thread_names(server.pid)
        );
        // The transcoded variant really ran this cycle.
        let after = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            let n = next_msn(&server, 1);
            (n > before).then_some(n)
        });
        assert!(
            after.is_some(),
            "cycle {cycle}: the 360p variant got no new segment (still {before})"
        );
        let rss = rss_kib(server.pid);
        rss_after.insert(cycle, rss);
        eprintln!(
            "cycle {cycle:>2}: {:.1} s, 360p segments {before} → {}, peak {peak_threads} threads, back to {idle_threads}, VmRSS {:.1} MiB",
            t0.elapsed().as_secs_f64(),
            after.unwrap(),
            rss as f64 / 1024.0
        );
    }
    let (r3, r20) = (rss_after[&3], rss_after[&CYCLES]);
    eprintln!(
        "VmRSS: idle {:.1} MiB, after cycle 3 {:.1} MiB, after cycle {CYCLES} {:.1} MiB ({:+.1} MiB); {CYCLES} cycles in {:.0} s",
        idle_rss as f64 / 1024.0,
        r3 as f64 / 1024.0,
        r20 as f64 / 1024.0,
        (r20 as f64 - r3 as f64) / 1024.0,
        t_all.elapsed().as_secs_f64()
    );
    // The margin: RSS is not a precise leak meter. glibc keeps freed memory in its per-thread
    // arenas (every new encoder/decoder thread may get one, reused later but not returned), and
    // the segment window in the store holds up to playlist_segments segments of every variant
    // (a few MiB that fills up over the first cycles). A decoder or an x264 encoder leaked per
    // cycle would be tens of MiB each (frame pools, lookahead, reference frames at 720p/360p),
    // i.e. hundreds of MiB over 17 cycles: 40 MiB separates the two.
    assert!(
        r20 <= r3 + 40 * 1024,
        "VmRSS grew from {} KiB after cycle 3 to {} KiB after cycle {CYCLES}: more than 40 MiB (a leak per publish?)",
        r3,
        r20
    );
}

// ---------------------------------------------------------------------------------------------
// Corrupt packets

/// How a video packet of the FLV was damaged.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Damage {
    /// Random bytes over part of the first NAL unit's payload (framing intact): what bit errors
    /// on the way do; the H.264 decoder sees a broken slice.
    Payload,
    /// The first NAL unit's 4-byte length claims more than the packet holds: broken framing.
    Framing,
}

/// The fixture remuxed to FLV (as `-c copy -f flv` publishes it), with some inter-frame video
/// packets between 3 and 5 s damaged in place (tag sizes unchanged), alternating the two kinds
/// of damage. All within one 5 s log-rate-limit interval, so a rate-limited warning shows as a
/// line or two, not one per packet. Returns the file and the damaged (timestamp ms, kind).
fn corrupted_fixture(dir: &Path) -> (PathBuf, Vec<(u32, Damage)>) {
    let fx = fixture();
    let clean = dir.join("clean.flv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(&fx.path)
        .args(["-map", "0", "-c", "copy", "-f", "flv"])
        .arg(&clean)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "remux to FLV: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut data = fs::read(&clean).unwrap();
    assert_eq!(&data[0..3], b"FLV", "not an FLV file");
    let mut rng = XorShift(0x5e1f_ca57_0bad_f00d);
    let mut damaged = Vec::new();
    let mut at = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize + 4;
    let mut candidates = 0;
    while at + 11 <= data.len() {
        let kind = data[at] & 0x1f;
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let ts = u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let body = at + 11;
        assert!(body + size <= data.len(), "truncated FLV tag at {at}");
        // Video (9), AVC (codec 7), inter frame (frame type 2), NALU packet (AVCPacketType 1).
        if kind == 9
            && size > 64
            && data[body] == 0x27
            && data[body + 1] == 1
            && (3000..5000).contains(&ts)
        {
            candidates += 1;
            if candidates % 5 == 0 {
                let nal_len =
                    u32::from_be_bytes(data[body + 5..body + 9].try_into().unwrap()) as usize;
                let d = if damaged.len() % 2 == 0 {
                    Damage::Payload
                } else {
                    Damage::Framing
                };
                match d {
                    Damage::Payload if nal_len >= 32 && 9 + nal_len <= size => {
                        // Leave the NAL header and the start of the slice header alone.
                        let from = body + 9 + nal_len / 4;
                        let n = (nal_len / 2).min(256);
                        data[from..from + n].copy_from_slice(&rng.bytes(n));
                        damaged.push((ts, d));
                    }
                    Damage::Framing => {
                        data[body + 5..body + 9].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
                        damaged.push((ts, d));
                    }
                    _ => {}
                }
            }
        }
        at = body + size + 4;
    }
    assert!(
        damaged.len() >= 6,
        "only {} packets damaged ({candidates} candidates)",
        damaged.len()
    );
    let path = dir.join("corrupt.flv");
    fs::write(&path, data).unwrap();
    (path, damaged)
}

#[test]
fn corrupt_packets_are_skipped() {
    let _one = exclusive();
    let fx = fixture();
    let work = tempfile::tempdir().unwrap();
    let (corrupt, damaged) = corrupted_fixture(work.path());
    eprintln!(
        "damaged {} video packets (ms, kind): {damaged:?}",
        damaged.len()
    );
    let ladder = format!("{SOURCE_TOML}{}", variant_toml("360p", 360, 600, 2));
    let expects = [Expect::source(), Expect::scaled(1, "360p", 360, 600)];
    let mut server = Server::start(ServerOptions {
        playlist_segments: 10,
        ladder_toml: ladder,
        ..Default::default()
    });
    let mut publisher = Publisher::start("corrupt", &corrupt, &server.publish_url(), &[]);
    let live = follow(&server, &mut publisher, &expects);
    server.assert_running();
    let st = server.status();
    eprintln!("/api/status after the stream: {st}");

    // Both variants went on producing segments through the damage and after it, to the end.
    let mut ends = Vec::new();
    for (e, tracker) in expects.iter().zip(&live.trackers) {
        let f = tracker.last().unwrap();
        let total = f.pl.total_duration();
        eprintln!(
            "variant {} {}: {} segments, {total:.3} s",
            e.index,
            e.name,
            f.pl.segments.len()
        );
        assert!(
            total >= fx.duration - 1.0,
            "variant {} lists {total:.3} s of the {:.1} s stream: it stopped producing segments\n{}",
            e.index,
            fx.duration,
            f.text
        );
        check_extinfs(f);
        ends.push(f.pl.next_msn());
    }
    assert!(
        ends.windows(2).all(|w| w[0] == w[1]),
        "the variants end at different segments: {ends:?}"
    );
    // A re-encoded variant is clean H.264 whatever the source was.
    let f = live.trackers[1].last().unwrap();
    let m = download(f, work.path(), "360p.mp4");
    let (status, err) = ffmpeg_decode(&m.file);
    assert!(
        status.success() && err.trim().is_empty(),
        "the 360p variant does not decode cleanly: {status}\n{err}"
    );
    let frames = count_video_frames(&m.file).unwrap();
    eprintln!(
        "360p: {frames} frames decoded (fixture: {}; {} packets damaged)",
        fx.video_frames,
        damaged.len()
    );
    assert!(
        frames as f64 >= 0.9 * fx.video_frames as f64,
        "360p has {frames} of the fixture's {} frames",
        fx.video_frames
    );

    // A warning about it, rate-limited.
    let log = strip_ansi(&format!("{}\n{}", server.stderr(), server.stdout()));
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("WARN") && {
                let l = l.to_ascii_lowercase();
                l.contains("skip")
                    || l.contains("decod")
                    || l.contains("corrupt")
                    || l.contains("malformed")
            }
        })
        .collect();
    let libav: Vec<&str> = log.lines().filter(|l| l.starts_with("[h264 @")).collect();
    eprintln!("warnings about the damage ({}):", warns.len());
    for w in &warns {
        eprintln!("  {w}");
    }
    eprintln!(
        "raw libavcodec lines in the log: {}{}",
        libav.len(),
        libav
            .first()
            .map(|l| format!(", e.g. {l}"))
            .unwrap_or_default()
    );
    assert!(
        !warns.is_empty(),
        "no WARN line about skipping/decoding the {} damaged packets (server log tail below)",
        damaged.len()
    );
    assert!(
        warns.len() * 2 <= damaged.len(),
        "{} warning lines for {} damaged packets within 2 s: not rate-limited",
        warns.len(),
        damaged.len()
    );
    // Damage inside correctly framed NAL units passes ingest; the decoder conceals it, and
    // says so (the packets with broken lengths are the ones ingest skips).
    assert!(
        warns.iter().any(|w| w.contains("video is damaged")),
        "no warning about the damaged pictures the decoder concealed: {warns:#?}"
    );
    server.assert_running();
}

#[test]
fn mp4_box_walker_reads_tfdt() {
    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }
    use common::mp4::{boxes, first_tfdt, trafs};
    let tfhd = bx(b"tfhd", &[0, 0x02, 0, 0, 0, 0, 0, 1]);
    let tfdt = bx(b"tfdt", &[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    let traf = bx(b"traf", &[tfhd, tfdt].concat());
    let tfhd2 = bx(b"tfhd", &[0, 0x02, 0, 0, 0, 0, 0, 2]);
    let tfdt2 = bx(b"tfdt", &[0, 0, 0, 0, 0, 0, 0xbb, 0x80]);
    let traf2 = bx(b"traf", &[tfhd2, tfdt2].concat());
    let moof = bx(b"moof", &[bx(b"mfhd", &[0; 8]), traf, traf2].concat());
    let seg = [bx(b"styp", b"msdh"), moof, bx(b"mdat", &[1, 2, 3])].concat();
    assert_eq!(first_tfdt(&seg, 1).unwrap(), (1u64 << 32) + 2);
    assert_eq!(first_tfdt(&seg, 2).unwrap(), 48000);
    assert!(first_tfdt(&seg, 3).is_err());
    // Bad input is an error, never a panic.
    assert!(trafs(&seg[..seg.len() - 1]).is_err());
    assert!(boxes(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']).is_err());
    assert!(boxes(&[0, 0, 0, 1, b'f', b'r', b'e', b'e', 0, 0]).is_err());
}
