//! Issue "From OBS to a playing browser": RTMP in (ffmpeg as the encoder, publishing a real
//! H.264 High + AAC-LC file with B-frames in real time), HLS out (fMP4), checked the way a player
//! and RFC 8216 see it: playlists polled while live, segments downloaded and decoded with
//! ffprobe/ffmpeg, status API, refusals, reconnects, shutdown, bad config, generated key, garbage
//! on the RTMP port.
//!
//! Every test runs its own server (free ports, temp data dir). Failures print the playlists that
//! were seen and the tail of the server's log (see `common`).
//!
//! Run: `cargo test --release --test ingest_hls -- --nocapture`

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::hls::{self, MasterPlaylist, Variant};
use common::*;

const POLL: Duration = Duration::from_millis(200);

/// Fails the test with `msg` plus everything a human needs to see.
#[track_caller]
fn fail(msg: impl AsRef<str>, tracker: Option<&Tracker>) -> ! {
    let recent = tracker.map(|t| t.recent(4)).unwrap_or_default();
    panic!("{}\n==== recent playlists ====\n{recent}", msg.as_ref());
}

/// Waits for the master playlist to appear (after a publish started), checks its headers and
/// parses it strictly. Returns its text, the parsed playlist and the chosen variant (the one at
/// the source resolution) with its absolute media playlist URL.
fn wait_master(
    server: &Server,
    publisher: &mut Publisher,
) -> (String, MasterPlaylist, Variant, String) {
    let url = server.master_url();
    let mut last = String::new();
    let resp = poll_until(Duration::from_secs(20), POLL, || {
        if let Some(st) = publisher.try_wait() {
            panic!(
                "publisher exited with {st} before the master playlist appeared (last: {last})\n{} (server log tail below)",
                publisher.log(),
            );
        }
        match http_get(&url) {
            Ok(r) if r.status == 200 => Some(r),
            Ok(r) => {
                last = format!("HTTP {}", r.status);
                None
            }
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .unwrap_or_else(|| panic!("no master playlist at {url} within 20 s of publishing (last: {last}) (server log tail below)"));
    let text = resp.text();
    let hp = playlist_header_problems(&resp, server.opts.segment_seconds);
    assert!(
        hp.is_empty(),
        "master playlist response headers:\n  - {}\n{}",
        hp.join("\n  - "),
        resp.headers_text()
    );
    let master = hls::parse_master(&text)
        .unwrap_or_else(|e| panic!("{e}\n---- master playlist ----\n{text}"));
    let fx = fixture();
    let variant = master
        .variants
        .iter()
        .find(|v| v.resolution() == Some((fx.width, fx.height)))
        .unwrap_or_else(|| {
            panic!(
                "no variant with RESOLUTION={}x{}\n---- master playlist ----\n{text}",
                fx.width, fx.height
            )
        })
        .clone();
    let media_url = hls::resolve(&url, &variant.uri);
    (text, master, variant, media_url)
}

/// The master playlist checks of the issue.
fn check_master(text: &str, master: &MasterPlaylist, variant: &Variant) {
    let fx = fixture();
    let ctx = format!("---- master playlist ----\n{text}");
    for v in &master.variants {
        assert!(
            v.bandwidth().unwrap_or(0) > 0,
            "variant {} has no BANDWIDTH > 0\n{ctx}",
            v.uri
        );
        assert!(
            v.codecs().is_some(),
            "variant {} has no CODECS\n{ctx}",
            v.uri
        );
        assert!(
            !v.uri.contains("://") && !v.uri.starts_with('/'),
            "variant URI {:?} is not relative\n{ctx}",
            v.uri
        );
    }
    let fr = variant
        .frame_rate()
        .unwrap_or_else(|| panic!("no FRAME-RATE on the source variant\n{ctx}"));
    assert!(
        (fr - fx.fps as f64).abs() < 0.1,
        "FRAME-RATE={fr}, the stream is {} fps\n{ctx}",
        fx.fps
    );
    let mut codecs: Vec<String> = variant
        .codecs()
        .unwrap()
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    codecs.sort();
    let mut want = vec![fx.avc1_codec.to_ascii_lowercase(), "mp4a.40.2".to_string()];
    want.sort();
    assert_eq!(
        codecs, want,
        "CODECS of the source variant (fixture: H.264 profile {} level {} = {}, AAC-LC = mp4a.40.2)\n{ctx}",
        fx.profile, fx.level, fx.avc1_codec
    );
}

/// Fetches the media playlist, checks headers and generic rules, records it in the tracker.
/// Returns the segments that left the window since the previous fetch.
fn reload(server: &Server, url: &str, tracker: &mut Tracker) -> Vec<(u64, String)> {
    let (resp, f) = match fetch_media(url) {
        Ok(x) => x,
        Err(e) => fail(format!("{e} (server log tail below)"), Some(tracker)),
    };
    let hp = playlist_header_problems(&resp, server.opts.segment_seconds);
    if !hp.is_empty() {
        fail(
            format!(
                "media playlist response headers:\n  - {}\n{}",
                hp.join("\n  - "),
                resp.headers_text()
            ),
            None,
        );
    }
    let problems = media_playlist_problems(&f.pl, server.opts.playlist_segments as usize);
    if !problems.is_empty() {
        fail(
            format!(
                "media playlist {url}:\n  - {}\n---- playlist ----\n{}",
                problems.join("\n  - "),
                f.text
            ),
            Some(tracker),
        );
    }
    match tracker.observe(f) {
        Ok(dropped) => dropped,
        Err(e) => fail(e, None),
    }
}

/// EXTINF bounds for segments cut on the fixture's 2 s keyframes: each one but the last of
/// `pl` within 1.9..=2.1 s (the last may be the stream's last, shorter one).
fn check_extinf_bounds(tracker: &Tracker) {
    let f = tracker.last().unwrap();
    let seg = fixture().segment_seconds();
    let n = f.pl.segments.len();
    for (i, s) in f.pl.segments.iter().enumerate() {
        if i + 1 == n {
            assert!(
                s.duration > 0.0 && s.duration <= seg + 0.1,
                "last segment {} EXTINF {}\n{}",
                s.msn,
                s.duration,
                f.text
            );
            continue;
        }
        // A segment right before a discontinuity is the last of its publish.
        let before_disc =
            f.pl.segments
                .get(i + 1)
                .map(|x| x.discontinuity)
                .unwrap_or(false);
        let ok = if before_disc {
            s.duration > 0.0 && s.duration <= seg + 0.1
        } else {
            (seg - 0.1..=seg + 0.1).contains(&s.duration)
        };
        if !ok {
            fail(
                format!(
                    "segment {} ({}) EXTINF {}: the stream has a keyframe every {seg} s and segment_seconds = {seg}, \
                     so every segment but the last must be {seg} s ± 0.1",
                    s.msn, s.uri, s.duration
                ),
                Some(tracker),
            );
        }
    }
}

fn rfc3339(st: &serde_json::Value, key: &str) -> i64 {
    let v = st[key]
        .as_str()
        .unwrap_or_else(|| panic!("/api/status {key} is not a string: {st}"));
    hls::parse_date_time(v, true).unwrap_or_else(|e| panic!("/api/status {key}: {e}: {st}"))
}

/// Downloads init + segments of `segs` (all sharing one init segment), concatenates, and checks
/// the result with ffprobe/ffmpeg like a player's decoder would see it. Returns the number of
/// decoded video frames.
fn check_media_file(
    playlist_url: &str,
    segs: &[hls::Segment],
    dir: &Path,
    name: &str,
    tracker: &Tracker,
) -> u64 {
    let fx = fixture();
    assert!(!segs.is_empty());
    let map = segs[0].map.clone().expect("segment without EXT-X-MAP");
    assert!(
        segs.iter().all(|s| s.map.as_ref() == Some(&map)),
        "segments with different init segments"
    );
    let init_url = hls::resolve(playlist_url, &map.uri);
    let urls: Vec<String> = segs
        .iter()
        .map(|s| hls::resolve(playlist_url, &s.uri))
        .collect();
    let out = dir.join(name);
    let header_problems = download_concat(&init_url, &urls, &out).unwrap_or_else(|e| {
        fail(
            format!("downloading segments: {e} (server log tail below)"),
            Some(tracker),
        )
    });
    if !header_problems.is_empty() {
        fail(
            format!(
                "segment response headers:\n  - {}",
                header_problems.join("\n  - ")
            ),
            None,
        );
    }
    let ctx = || {
        let keep =
            std::env::temp_dir().join(format!("selfcast-failed-{}-{name}", std::process::id()));
        let _ = std::fs::copy(&out, &keep);
        format!(
            "(concatenated file kept at {})\n==== playlists ====\n{}",
            keep.display(),
            tracker.recent(2)
        )
    };
    let probe = ffprobe_json(&out, &["-show_streams", "-show_format"])
        .unwrap_or_else(|e| panic!("ffprobe of init + segments: {e}\n{}", ctx()));
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    let v = streams.iter().find(|s| s["codec_type"] == "video");
    let a = streams.iter().find(|s| s["codec_type"] == "audio");
    let (Some(v), Some(a)) = (v, a) else {
        panic!(
            "init + segments should hold one video and one audio stream: {probe:#}\n{}",
            ctx()
        );
    };
    assert_eq!(v["codec_name"], "h264", "video codec: {probe:#}\n{}", ctx());
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(fx.width as u64), Some(fx.height as u64)),
        "video size: {probe:#}\n{}",
        ctx()
    );
    assert_eq!(v["profile"], "High", "video profile: {probe:#}\n{}", ctx());
    assert_eq!(a["codec_name"], "aac", "audio codec: {probe:#}\n{}", ctx());
    assert_eq!(a["profile"], "LC", "audio profile: {probe:#}\n{}", ctx());
    assert_eq!(
        a["sample_rate"],
        fx.sample_rate.to_string(),
        "audio sample rate: {probe:#}\n{}",
        ctx()
    );
    assert_eq!(
        a["channels"].as_u64(),
        Some(fx.channels as u64),
        "audio channels: {probe:#}\n{}",
        ctx()
    );

    let (st, err) = ffmpeg_decode(&out);
    assert!(
        st.success() && err.trim().is_empty(),
        "decoding init + segments with `ffmpeg -v error -i FILE -f null -` must be clean: {st}\n{err}\n{}",
        ctx()
    );

    let extinf: f64 = segs.iter().map(|s| s.duration).sum();
    let (vspan, aspan) = stream_spans(&out).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    let (Some(vspan), Some(aspan)) = (vspan, aspan) else {
        panic!("no video or no audio packets in init + segments\n{}", ctx());
    };
    for (what, d) in [
        ("video", vspan.duration()),
        (
            "audio + video",
            vspan.end.max(aspan.end) - vspan.start.min(aspan.start),
        ),
    ] {
        assert!(
            (d - extinf).abs() <= 0.05 * extinf,
            "the {what} of init + segments lasts {d:.3} s (packets: video {vspan:?}, audio {aspan:?}), \
             the EXTINFs add up to {extinf:.3} s: more than 5% apart\n{}",
            ctx()
        );
    }
    assert!(
        (vspan.start - aspan.start).abs() <= 0.1,
        "audio starts at {:.3} s and video at {:.3} s: out of sync\n{}",
        aspan.start,
        vspan.start,
        ctx()
    );
    let frames = count_video_frames(&out).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    let expected = fx.fps as f64 * vspan.duration();
    assert!(
        (frames as f64 - expected).abs() <= 2.0,
        "decoded {frames} video frames spanning {:.3} s at {} fps (expected {expected:.0} ± 2): frames lost, \
         duplicated or mis-timed (B-frame ordering / composition offsets?)\n{}",
        vspan.duration(),
        fx.fps,
        ctx()
    );
    frames
}

// ---------------------------------------------------------------------------------------------

#[test]
fn publish_produces_valid_hls() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions {
        playlist_segments: 10,
        ..Default::default()
    });

    // Nothing has ever been live.
    let r = http_get(&server.master_url()).unwrap();
    assert_eq!(
        r.status,
        404,
        "master playlist before anything was live: {} (server log tail below)",
        r.text()
    );
    let st = server.status();
    assert_eq!(st["online"], false, "/api/status before publishing: {st}");
    assert!(
        st["viewerCount"].is_number(),
        "/api/status viewerCount: {st}"
    );
    assert_eq!(
        st["streamTitle"],
        server.opts.title.as_str(),
        "/api/status streamTitle: {st}"
    );
    assert!(
        st["version"]
            .as_str()
            .map(|v| !v.is_empty())
            .unwrap_or(false),
        "/api/status version: {st}"
    );
    assert!(
        st["lastConnectTime"].is_null(),
        "/api/status lastConnectTime before any publish: {st}"
    );
    assert!(
        st["lastDisconnectTime"].is_null(),
        "/api/status lastDisconnectTime before any publish: {st}"
    );

    let t_publish = Instant::now();
    let mut publisher = Publisher::start("A", &fx.path, &server.publish_url(), &[]);
    let (master_text, master, variant, media_url) = wait_master(&server, &mut publisher);
    check_master(&master_text, &master, &variant);

    let st = server.wait_online(true, Duration::from_secs(10));
    let connect_ms = rfc3339(&st, "lastConnectTime");

    // Follow the live playlist like a player while the publisher runs.
    let mut tracker = Tracker::new();
    let deadline = t_publish + Duration::from_secs_f64(fx.duration + 40.0);
    let mut checked_online_mid_stream = false;
    while publisher.running() {
        if Instant::now() > deadline {
            fail("the publisher did not finish in time", Some(&tracker));
        }
        reload(&server, &media_url, &mut tracker);
        check_extinf_bounds(&tracker);
        let pl = &tracker.last().unwrap().pl;
        if !checked_online_mid_stream && pl.segments.len() >= 2 && publisher.running() {
            let st = server.status();
            if publisher.running() {
                assert_eq!(st["online"], true, "/api/status while publishing: {st}");
            }
            checked_online_mid_stream = true;
        }
        std::thread::sleep(POLL);
    }
    let pst = publisher.wait(Duration::from_secs(1)).unwrap();
    assert!(
        pst.success(),
        "ffmpeg publishing the fixture exited with {pst}\n{}",
        publisher.log()
    );

    let st = server.wait_online(false, Duration::from_secs(10));
    let disconnect_ms = rfc3339(&st, "lastDisconnectTime");
    assert!(
        disconnect_ms >= connect_ms,
        "lastDisconnectTime before lastConnectTime: {st}"
    );
    assert_eq!(
        rfc3339(&st, "lastConnectTime"),
        connect_ms,
        "lastConnectTime changed: {st}"
    );

    // The final playlist still holds the whole stream (10 × 2 s window, 12 s stream).
    reload(&server, &media_url, &mut tracker);
    check_extinf_bounds(&tracker);
    let last = tracker.last().unwrap().clone();
    assert!(
        tracker.history.len() >= 3,
        "only {} playlist reloads during a {} s stream",
        tracker.history.len(),
        fx.duration
    );
    assert_eq!(
        last.pl.media_sequence(),
        0,
        "the first segment left a 10-segment window of a 12 s stream\n{}",
        last.text
    );
    assert!(
        !last.pl.has_discontinuity(),
        "a discontinuity in a single publish\n{}",
        last.text
    );
    assert_eq!(
        last.pl.map_uris().len(),
        1,
        "more than one init segment for one publish\n{}",
        last.text
    );
    let total = last.pl.total_duration();
    assert!(
        (total - fx.duration).abs() <= 0.5,
        "the final playlist covers {total} s of the {} s stream (segments lost, e.g. the last one not flushed at disconnect?)\n{}",
        fx.duration,
        last.text
    );

    let work = tempfile::tempdir().unwrap();
    let frames = check_media_file(
        &media_url,
        &last.pl.segments,
        work.path(),
        "cat.mp4",
        &tracker,
    );
    assert!(
        frames.abs_diff(fx.video_frames) <= 2,
        "the stream had {} video frames, the HLS output decodes to {frames}\n{}",
        fx.video_frames,
        last.text
    );

    // Informative only (live servers estimate BANDWIDTH before the segments exist).
    let mut peak = 0.0f64;
    for s in &last.pl.segments {
        if let Ok(r) = http_get(&hls::resolve(&media_url, &s.uri)) {
            peak = peak.max(r.body.len() as f64 * 8.0 / s.duration);
        }
    }
    let final_master = http_get(&server.master_url())
        .map(|r| r.text())
        .unwrap_or_default();
    eprintln!(
        "BANDWIDTH={} AVERAGE-BANDWIDTH={:?} while live; measured peak segment bit rate {:.0} b/s; \
         master playlist after the stream:\n{final_master}",
        variant.bandwidth().unwrap(),
        variant.average_bandwidth(),
        peak
    );
    server.assert_running();
}

#[test]
fn wrong_key_is_refused() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions::default());

    let refused = |server: &mut Server, label: &str, url: String| {
        let mut p = Publisher::start(label, &fx.path, &url, &[]);
        let st = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
            let s = server.status();
            assert_eq!(
                s["online"], false,
                "/api/status while {label} tries to publish to {url}: {s}"
            );
            p.try_wait()
        });
        match st {
            None => panic!(
                "ffmpeg publishing to {url} ({label}) was still running after 15 s: the server did not refuse it\n{} (server log tail below)",
                p.log(),
            ),
            Some(st) => assert!(!st.success(), "ffmpeg publishing to {url} ({label}) exited successfully\n{}", p.log()),
        }
        server.assert_running();
        let r = http_get(&server.master_url()).unwrap();
        assert_eq!(
            r.status,
            404,
            "master playlist after a refused publish ({label}): {}",
            r.text()
        );
        assert_eq!(server.status()["online"], false);
    };
    let attempts = [
        ("wrong key", server.rtmp_url("not-the-key-0123456789")),
        (
            "key with a suffix",
            server.rtmp_url(&format!("{TEST_KEY}x")),
        ),
        (
            "key prefix",
            server.rtmp_url(&TEST_KEY[..TEST_KEY.len() - 1]),
        ),
        (
            "wrong app",
            format!("rtmp://127.0.0.1:{}/other/{TEST_KEY}", server.rtmp_port),
        ),
    ];
    for (label, url) in attempts {
        refused(&mut server, label, url);
    }
    assert!(
        server.status()["lastConnectTime"].is_null(),
        "a refused publisher counted as a connect: {}",
        server.status()
    );

    // The right key works.
    let mut p = Publisher::start("right key", &fx.path, &server.publish_url(), &["-t", "4"]);
    server.wait_online(true, Duration::from_secs(10));
    p.expect_success(Duration::from_secs(30), "publishing with the right key");
    server.assert_running();
}

#[test]
fn second_publisher_is_refused_and_first_continues() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions::default());
    let mut a = Publisher::start("A", &fx.path, &server.publish_url(), &[]);
    let (_, _, _, media_url) = wait_master(&server, &mut a);
    server.wait_online(true, Duration::from_secs(10));
    let mut tracker = Tracker::new();
    reload(&server, &media_url, &mut tracker);

    let mut b = Publisher::start("B", &fx.path, &server.publish_url(), &[]);
    let bst = poll_until(Duration::from_secs(15), POLL, || {
        reload(&server, &media_url, &mut tracker);
        b.try_wait()
    })
    .unwrap_or_else(|| {
        fail(
            format!(
                "second publisher B still running after 15 s: not refused\n{}",
                b.log()
            ),
            Some(&tracker),
        )
    });
    assert!(
        !bst.success(),
        "second publisher B exited successfully\n{}",
        b.log()
    );
    assert!(
        a.running(),
        "publisher A stopped when B tried to publish: {:?}\n{}",
        a.try_wait(),
        a.log()
    );
    assert_eq!(
        server.status()["online"],
        true,
        "not online after B's refusal"
    );

    // A's stream keeps growing.
    let n0 = tracker.last().unwrap().pl.next_msn();
    let grown = poll_until(Duration::from_secs(20), POLL, || {
        reload(&server, &media_url, &mut tracker);
        (tracker.last().unwrap().pl.next_msn() >= n0 + 2).then_some(())
    });
    if grown.is_none() {
        fail(format!("A's playlist did not grow by 2 segments after B's refusal (A: {:?}) (server log tail below)", a.try_wait()), Some(&tracker));
    }
    let ast = a
        .wait(Duration::from_secs_f64(fx.duration + 30.0))
        .unwrap_or_else(|| panic!("A did not finish\n{}", a.log()));
    assert!(ast.success(), "publisher A exited with {ast}\n{}", a.log());
    reload(&server, &media_url, &mut tracker);
    for f in &tracker.history {
        if f.pl.has_discontinuity() {
            fail(
                "a discontinuity in A's playlist: B's attempt disturbed A's stream",
                Some(&tracker),
            );
        }
    }
    server.assert_running();
}

#[test]
fn reconnect_continues_with_discontinuity() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions {
        playlist_segments: 3,
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let mut tracker = Tracker::new();
    let mut dropped_checked = 0usize;
    let mut check_dropped = |dropped: Vec<(u64, String)>, url: &str, tracker: &Tracker| {
        // RFC 8216 §6.2.2: a segment removed from the playlist stays available for at least its
        // duration plus the playlist's; we ask right after we noticed its removal.
        for (msn, uri) in dropped {
            let u = hls::resolve(url, &uri);
            match http_get(&u) {
                Ok(r) if r.status == 200 => dropped_checked += 1,
                other => fail(
                    format!(
                        "segment {msn} ({u}) left the playlist a moment ago and is already gone ({:?}); RFC 8216 §6.2.2 \
                         wants it available for its duration plus the playlist duration (server log tail below)",
                        other.map(|r| r.status),
                    ),
                    Some(tracker),
                ),
            }
        }
    };

    // First publish: 6 s.
    let mut a = Publisher::start("A (6 s)", &fx.path, &server.publish_url(), &["-t", "6"]);
    let (_, _, _, media_url) = wait_master(&server, &mut a);
    while a.running() {
        let d = reload(&server, &media_url, &mut tracker);
        check_dropped(d, &media_url, &tracker);
        check_extinf_bounds(&tracker);
        std::thread::sleep(POLL);
    }
    let ast = a.wait(Duration::from_secs(1)).unwrap();
    assert!(ast.success(), "A exited with {ast}\n{}", a.log());
    server.wait_online(false, Duration::from_secs(10));
    let d = reload(&server, &media_url, &mut tracker);
    check_dropped(d, &media_url, &tracker);
    let before = tracker.last().unwrap().clone();
    if before.pl.endlist {
        fail("the playlist got EXT-X-ENDLIST when the publisher left: a reconnecting streamer could not continue it", Some(&tracker));
    }
    let old_next = before.pl.next_msn();
    let old_map = before
        .pl
        .segments
        .last()
        .and_then(|s| s.map.clone())
        .expect("no segments after the first publish");
    assert!(
        old_next >= 2,
        "a 6 s publish with 2 s keyframes made only {old_next} segments\n{}",
        before.text
    );

    // Second publish: the whole fixture.
    let mut b = Publisher::start("B (reconnect)", &fx.path, &server.publish_url(), &[]);
    server.wait_online(true, Duration::from_secs(15));
    let mut downloaded = false;
    let mut saw_disc_in_window = false;
    let done = poll_until(Duration::from_secs_f64(fx.duration + 30.0), POLL, || {
        let d = reload(&server, &media_url, &mut tracker);
        check_dropped(d, &media_url, &tracker);
        check_extinf_bounds(&tracker);
        let f = tracker.last().unwrap().clone();
        let pl = &f.pl;
        if let Some(first_new) = pl.segment_by_msn(old_next) {
            // The first segment of the new publish.
            if !first_new.discontinuity {
                fail(format!("segment {old_next}, the first after the reconnect, has no EXT-X-DISCONTINUITY"), Some(&tracker));
            }
            let map = first_new.map.clone().unwrap();
            if !first_new.map_tag_here || map.uri == old_map.uri {
                fail(
                    format!(
                        "the first segment after the reconnect needs a new EXT-X-MAP (new URI: the old init \
                         segment {} is still referenced) at the discontinuity",
                        old_map.uri
                    ),
                    Some(&tracker),
                );
            }
            saw_disc_in_window = true;
            if pl.discontinuity_sequence() != 0 {
                fail("EXT-X-DISCONTINUITY-SEQUENCE is not 0 while the only discontinuity is still in the playlist", Some(&tracker));
            }
            let new: Vec<hls::Segment> = pl
                .segments
                .iter()
                .filter(|s| s.msn >= old_next)
                .cloned()
                .collect();
            if !downloaded && new.len() >= 2 {
                check_media_file(&media_url, &new, work.path(), "reconnect.mp4", &tracker);
                downloaded = true;
            }
        } else if pl.media_sequence() > old_next {
            // The discontinuity segment has left the window.
            if !saw_disc_in_window {
                fail(
                    "never saw the first segment after the reconnect in the playlist",
                    Some(&tracker),
                );
            }
            if pl.discontinuity_sequence_tag != Some(1) {
                fail(
                    "the segment with EXT-X-DISCONTINUITY left the playlist: EXT-X-DISCONTINUITY-SEQUENCE:1 is required \
                     (RFC 8216 §6.2.2)",
                    Some(&tracker),
                );
            }
            if pl.segments.iter().any(|s| s.discontinuity) {
                fail("a second discontinuity during one publish", Some(&tracker));
            }
            return Some(());
        } else if pl.next_msn() > old_next {
            fail(format!("the new publish's first segment is not msn {old_next} (media sequence not continued?)"), Some(&tracker));
        }
        if let Some(st) = b.try_wait() {
            fail(
                format!(
                    "publisher B ended ({st}) before the discontinuity left the window\n{}",
                    b.log()
                ),
                Some(&tracker),
            );
        }
        None
    });
    if done.is_none() {
        fail(
            "the discontinuity did not leave the 3-segment window in time (server log tail below)",
            Some(&tracker),
        );
    }
    assert!(
        downloaded,
        "never had two new segments in the window to download"
    );
    eprintln!(
        "checked {dropped_checked} segments right after they left the window: all still served"
    );
    b.kill();
    server.assert_running();
}

#[test]
fn clean_shutdown_ends_playlist() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions::default());
    let mut a = Publisher::start("A", &fx.path, &server.publish_url(), &[]);
    let (_, _, _, media_url) = wait_master(&server, &mut a);
    let mut tracker = Tracker::new();
    let two = poll_until(Duration::from_secs(20), POLL, || {
        reload(&server, &media_url, &mut tracker);
        (tracker.last().unwrap().pl.segments.len() >= 2).then_some(())
    });
    if two.is_none() {
        fail(
            "the playlist did not get 2 segments within 20 s",
            Some(&tracker),
        );
    }

    server.interrupt();
    let t0 = Instant::now();
    let mut ended = None;
    let mut errors = Vec::new();
    while t0.elapsed() < Duration::from_secs(10) && ended.is_none() {
        match fetch_media(&media_url) {
            Ok((_, f)) => {
                let endlist = f.pl.endlist;
                if let Err(e) = tracker.observe(f) {
                    fail(e, None);
                }
                if endlist {
                    ended = Some(tracker.last().unwrap().clone());
                }
            }
            Err(e) => {
                errors.push(format!("+{:.2}s: {e}", t0.elapsed().as_secs_f64()));
                if !server.is_running() {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(f) = ended else {
        fail(
            format!(
                "after SIGINT the media playlist never got EXT-X-ENDLIST (server running: {}, exit {:?}); errors: {errors:#?} (server log tail below)",
                server.is_running(),
                server.wait_exit(Duration::ZERO),
            ),
            Some(&tracker),
        );
    };
    assert!(
        f.pl.segments.len() >= 2,
        "the ended playlist lost its segments\n{}",
        f.text
    );
    let problems = media_playlist_problems(&f.pl, server.opts.playlist_segments as usize);
    assert!(
        problems.is_empty(),
        "ended playlist: {problems:?}\n{}",
        f.text
    );

    let st = server.wait_exit(Duration::from_secs(10));
    match st {
        Some(st) => assert!(
            st.success(),
            "selfcast exited with {st} after SIGINT (server log tail below)"
        ),
        None => {
            panic!("selfcast still running 10 s after ENDLIST (SIGINT) (server log tail below)")
        }
    }
}

#[test]
fn bad_config_is_refused() {
    let (r, h) = (free_port(), free_port());
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "typo in a key",
            format!(
                "[server]\ntitle = \"t\"\n\n[rtmp]\nlisten = \"127.0.0.1:{r}\"\n\n[http]\nlisten = \"127.0.0.1:{h}\"\n\n[hls]\nsegment_second = 2\n"
            ),
            11,
            "segment_second",
        ),
        (
            "wrong type",
            format!(
                "[server]\ntitle = \"t\"\n\n[rtmp]\nlisten = \"127.0.0.1:{r}\"\n\n[http]\nlisten = \"127.0.0.1:{h}\"\n\n[hls]\nsegment_seconds = 2\nplaylist_segments = \"six\"\n"
            ),
            12,
            "playlist_segments",
        ),
        (
            "bad address",
            format!("[server]\ntitle = \"t\"\n\n[rtmp]\nlisten = \"127.0.0.1:{r}\"\n\n[http]\nlisten = \"nonsense\"\n"),
            8,
            "listen",
        ),
    ];
    let mut failures = Vec::new();
    for (label, text, line, key) in cases {
        assert_eq!(
            text.lines().nth(line - 1).map(|l| l.contains(key)),
            Some(true),
            "test bug: line {line} of {label}"
        );
        let (st, out, err, path) = run_with_config_text(&text, Duration::from_secs(10));
        let path_s = path.to_string_lossy().to_string();
        let mut why = Vec::new();
        match st {
            None => why.push("did not exit within 10 s".to_string()),
            Some(s) if s.success() => why.push("exited with status 0".to_string()),
            Some(_) => {}
        }
        if !err.contains(&path_s) {
            why.push(format!("stderr does not name the file {path_s}"));
        }
        if !mentions_line(&err, line) {
            why.push(format!("stderr does not name line {line}"));
        }
        if !err.contains(key) {
            why.push(format!("stderr does not name the key `{key}`"));
        }
        if !why.is_empty() {
            failures.push(format!(
                "{label} (exit {st:?}): {}\n---- config ----\n{text}---- stderr ----\n{err}---- stdout ----\n{out}",
                why.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "bad configs:\n\n{}",
        failures.join("\n\n")
    );
}

/// Whether `s` names line `n` ("line 5", "line: 5", "config.toml:5:5", ...).
fn mentions_line(s: &str, n: usize) -> bool {
    let n = n.to_string();
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find(&n).map(|i| i + from) {
        let end = i + n.len();
        let digit_before = i > 0 && b[i - 1].is_ascii_digit();
        let digit_after = end < b.len() && b[end].is_ascii_digit();
        if !digit_before && !digit_after {
            let before = s[..i].to_ascii_lowercase();
            let before = before.trim_end();
            if before.ends_with(':')
                || before.ends_with("line")
                || before.ends_with("line:")
                || before.ends_with('|')
            {
                return true;
            }
        }
        from = end;
    }
    false
}

/// Every file under `dir` (recursively) and its contents.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// The server's stdout + stderr without ANSI colour codes.
fn output(server: &Server) -> String {
    strip_ansi(&format!("{}\n{}", server.stdout(), server.stderr()))
}

/// The stream key printed at start-up: the first key-like word (16+ of `[A-Za-z0-9_-]`) after
/// "Stream Key" (or `stream_key`) on that line, or on the next non-empty line.
fn printed_key(server: &Server) -> Option<String> {
    let all = output(server);
    let lines: Vec<&str> = all.lines().collect();
    let (i, at) = lines.iter().enumerate().find_map(|(i, l)| {
        let low = l.to_ascii_lowercase();
        low.find("stream key")
            .or_else(|| low.find("stream_key"))
            .map(|at| (i, at + "stream key".len()))
    })?;
    let words = |s: &str| -> Option<String> {
        s.split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ':' | '=' | '"' | '\'' | '`' | ',' | '<' | '>' | '(' | ')' | '[' | ']'
                )
        })
        .find(|w| {
            w.len() >= 16
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
    };
    words(&lines[i][at..]).or_else(|| {
        lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| words(l))
    })
}

#[test]
fn generated_stream_key_is_persisted() {
    let fx = fixture();
    let data = tempfile::tempdir().unwrap();
    let opts = ServerOptions {
        stream_key: None,
        data_dir: Some(data.path().join("data")),
        ..Default::default()
    };
    let key = {
        let server = Server::start(opts.clone());
        let key = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
            printed_key(&server)
        })
        .unwrap_or_else(|| {
            panic!(
                "no `Stream Key` line with a key (16+ characters of [A-Za-z0-9_-]) in the server output (server log tail below)"
            )
        });
        let all = output(&server);
        assert!(
            all.contains("rtmp://") && all.contains("/live") && all.to_ascii_lowercase().contains("stream key"),
            "the start-up output should tell the OBS settings (Server rtmp://HOST:PORT/live, Stream Key) (server log tail below)",
        );
        assert!(
            key.len() >= 20,
            "generated key {key:?} is shorter than 20 characters"
        );
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "generated key {key:?} has characters OBS users will mistype or URLs must escape"
        );
        let files = files_under(&server.data_dir);
        assert!(
            files.iter().any(|(_, b)| b.windows(key.len()).any(|w| w == key.as_bytes())),
            "no file in data_dir {} contains the generated key (files: {:?}) (server log tail below)",
            server.data_dir.display(),
            files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        );
        key
    };

    // Another fresh data dir gets another key.
    {
        let other = Server::start(ServerOptions {
            stream_key: None,
            ..Default::default()
        });
        let k2 = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
            printed_key(&other)
        })
        .unwrap_or_else(|| panic!("no generated key printed (server log tail below)"));
        assert_ne!(
            k2, key,
            "two fresh data dirs generated the same key: not random"
        );
    }

    // A restart with the same data_dir keeps the key.
    let mut server = Server::start(opts);
    std::thread::sleep(Duration::from_millis(300));
    if let Some(k) = printed_key(&server) {
        assert_eq!(k, key, "the restarted server printed a different key");
    }
    let mut wrong = Publisher::start(
        "wrong key",
        &fx.path,
        &server.rtmp_url("definitely-not-the-key-000"),
        &["-t", "2"],
    );
    let wst = wrong
        .wait(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("wrong key not refused\n{}", wrong.log()));
    assert!(
        !wst.success(),
        "a wrong key was accepted by the server with a generated key"
    );
    let mut p = Publisher::start(
        "generated key",
        &fx.path,
        &server.rtmp_url(&key),
        &["-t", "3"],
    );
    let st = server.wait_online(true, Duration::from_secs(15));
    assert_eq!(st["online"], true);
    p.expect_success(
        Duration::from_secs(30),
        "publishing with the persisted key after a restart",
    );
    server.assert_running();
}

/// Sends `bytes` on a fresh connection to the RTMP port, then reads whatever comes back for up
/// to `linger`, then closes. Errors are expected and ignored.
fn garbage(port: u16, bytes: &[u8], linger: Duration) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(bytes);
    let _ = s.set_read_timeout(Some(linger));
    let mut buf = [0u8; 8192];
    let t0 = Instant::now();
    while t0.elapsed() < linger {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

/// Does a plain RTMP handshake (C0 C1, read S0 S1 S2, send C2) and then sends `after`.
/// A completed RTMP handshake (C0 C1 → S0 S1 S2 → C2) on a new connection.
fn rtmp_handshake(port: u16, rng: &mut XorShift) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    c0c1.extend(rng.bytes(1528));
    s.write_all(&c0c1).ok()?;
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    s.read_exact(&mut s0s1s2).ok()?;
    s.write_all(&s0s1s2[1..1537]).ok()?;
    Some(s)
}

fn handshake_then(port: u16, rng: &mut XorShift, after: &[u8]) {
    let Some(mut s) = rtmp_handshake(port, rng) else {
        return;
    };
    let _ = s.write_all(after);
    let mut buf = [0u8; 8192];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(500) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Before a publish is accepted (before the stream key is checked) a peer cannot make the
/// server buffer a big message: it is disconnected after a few hundred KiB.
#[test]
fn unauthenticated_peer_cannot_send_much() {
    let server = Server::start(ServerOptions::default());
    let mut rng = XorShift::from_time();
    let mut s = rtmp_handshake(server.rtmp_port, &mut rng).expect("RTMP handshake");
    // Set Chunk Size 0x7fffffff (chunk stream 2, message type 1), then one chunk that starts
    // an AMF0 command message (type 20) announced as 16 MiB.
    let mut start = vec![
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ];
    start.extend_from_slice(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    s.write_all(&start).expect("write the message start");
    let block = rng.bytes(64 * 1024);
    let mut sent = 0usize;
    let cut_off = poll_until(
        Duration::from_secs(20),
        Duration::from_millis(1),
        || match s.write_all(&block) {
            Ok(()) => {
                sent += block.len();
                (sent >= 16 * 1024 * 1024).then_some(false)
            }
            Err(_) => Some(true),
        },
    );
    assert_eq!(
        cut_off,
        Some(true),
        "the server accepted {sent} bytes from a peer that never published"
    );
    assert!(sent < 4 * 1024 * 1024, "cut off only after {sent} bytes");
    let log = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let log = server.stderr();
        log.contains("without publishing").then_some(log)
    });
    assert!(
        log.is_some(),
        "no log line saying why:\n{}",
        server.stderr()
    );
}

#[test]
fn malformed_rtmp_does_not_harm_live_stream() {
    let fx = fixture();
    let mut server = Server::start(ServerOptions::default());
    let mut a = Publisher::start("A", &fx.path, &server.publish_url(), &[]);
    let (_, _, _, media_url) = wait_master(&server, &mut a);
    server.wait_online(true, Duration::from_secs(10));
    let mut tracker = Tracker::new();
    reload(&server, &media_url, &mut tracker);
    let port = server.rtmp_port;
    let mut rng = XorShift::from_time();
    let short = Duration::from_millis(300);

    // An idle connection that only sent C0, kept open during the rest.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect to the RTMP port");
    idle.write_all(&[3]).unwrap();

    // Random bytes.
    garbage(port, &rng.bytes(4096), short);
    // A valid-looking C0 and a truncated C1.
    let mut c = vec![3u8];
    c.extend(rng.bytes(700));
    garbage(port, &c, short);
    // An unsupported RTMP version.
    let mut c = vec![6u8];
    c.extend(rng.bytes(1536));
    garbage(port, &c, short);
    // Nothing at all.
    garbage(port, &[], Duration::from_millis(50));
    // An HTTP request on the RTMP port.
    garbage(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", short);
    // After a handshake: a chunk announcing a 16 MiB AMF0 command, then noise.
    let mut chunk = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
    chunk.extend(rng.bytes(64 * 1024));
    handshake_then(port, &mut rng, &chunk);
    // After a handshake: Set Chunk Size 0x7fffffff, then a huge message header.
    let mut chunk = vec![
        0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
    ];
    chunk.extend_from_slice(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    chunk.extend(rng.bytes(4096));
    handshake_then(port, &mut rng, &chunk);
    // After a handshake: an AMF0 "connect" that is cut off mid-string, then pure noise.
    let mut chunk = vec![0x03, 0, 0, 0, 0, 0, 0x40, 20, 0, 0, 0, 0, 0x02, 0x00, 0x07];
    chunk.extend_from_slice(b"conn");
    chunk.extend(rng.bytes(2048));
    handshake_then(port, &mut rng, &chunk);
    // Many garbage connections at once.
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let bytes = XorShift(0x9e3779b97f4a7c15 ^ (i as u64 + 1)).bytes(2048 + i * 100);
            std::thread::spawn(move || garbage(port, &bytes, Duration::from_millis(300)))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }

    server.assert_running();
    assert_eq!(
        server.status()["online"],
        true,
        "not online any more after garbage on the RTMP port"
    );
    assert!(
        a.running(),
        "publisher A stopped after garbage on the RTMP port: {:?}\n{}",
        a.try_wait(),
        a.log()
    );

    // A's stream keeps growing.
    reload(&server, &media_url, &mut tracker);
    let n0 = tracker.last().unwrap().pl.next_msn();
    let grown = poll_until(Duration::from_secs(20), POLL, || {
        reload(&server, &media_url, &mut tracker);
        (tracker.last().unwrap().pl.next_msn() >= n0 + 2).then_some(())
    });
    if grown.is_none() {
        fail(
            format!(
                "A's playlist stopped growing after the garbage (A: {:?}) (server log tail below)",
                a.try_wait()
            ),
            Some(&tracker),
        );
    }
    drop(idle);
    let ast = a
        .wait(Duration::from_secs_f64(fx.duration + 30.0))
        .unwrap_or_else(|| panic!("A did not finish\n{}", a.log()));
    assert!(ast.success(), "publisher A exited with {ast}\n{}", a.log());
    reload(&server, &media_url, &mut tracker);
    if tracker.history.iter().any(|f| f.pl.has_discontinuity()) {
        fail(
            "a discontinuity in A's playlist after the garbage",
            Some(&tracker),
        );
    }
    server.assert_running();
    assert_eq!(
        http_get(&server.url("/api/status")).map(|r| r.status).ok(),
        Some(200)
    );
}
