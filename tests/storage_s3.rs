//! `[storage] kind = "s3"` against a real S3 server (moto), with the real `selfcast` binary and
//! a real publisher (ffmpeg over RTMP): what lands in the bucket and with which headers, that
//! the bucket's playlists only list stored objects, that old segments are deleted, that a bad
//! destination is reported in plain words while selfcast serves viewers itself, and that the
//! stream survives the storage going away and catches up when it is back.
//!
//! Needs `moto_server` (see `common::s3::moto_server_bin`; `ci/test` installs it).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::hls::{self, MediaPlaylist};
use common::s3::{s3_storage_toml, Moto};
use common::storage::*;
use common::*;

const PREFIX: &str = "live";
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const PLAYLIST_CACHE: &str = "public, max-age=1";
const SEGMENT_TYPE: &str = "video/iso.segment";
const INIT_TYPE: &str = "video/mp4";
const SEGMENT_CACHE: &str = "public, max-age=31536000, immutable";

// ---------------------------------------------------------------------------------------------
// Helpers

/// The public URL of `key` (under the prefix).
fn public_url(public_base: &str, key: &str) -> String {
    format!("{public_base}/{PREFIX}/{key}")
}

/// What the bucket serves for one playlist, checked: status, headers, parse.
struct BucketMedia {
    url: String,
    text: String,
    pl: MediaPlaylist,
}

/// GETs the bucket's master playlist, checks its headers and that each variant is an absolute
/// URL under `public_base`; returns the media playlists' URLs.
fn bucket_master(moto: &Moto, bucket: &str, public_base: &str) -> Result<Vec<String>, String> {
    let r = moto.get(bucket, &format!("{PREFIX}/stream.m3u8"))?;
    if r.status != 200 {
        return Err(format!("master: HTTP {}: {}", r.status, r.text()));
    }
    header_problems(&r, PLAYLIST_TYPE, PLAYLIST_CACHE)?;
    let text = r.text();
    let master =
        hls::parse_master(&text).map_err(|e| format!("master does not parse: {e}\n{text}"))?;
    if master.variants.is_empty() {
        return Err(format!("master lists no variant:\n{text}"));
    }
    let mut urls = Vec::new();
    for v in &master.variants {
        if !v.uri.starts_with(&format!("{public_base}/{PREFIX}/"))
            || !v.uri.ends_with("/stream.m3u8")
        {
            return Err(format!(
                "master lists {:?}, want an absolute URL under {public_base}/{PREFIX}/\n{text}",
                v.uri
            ));
        }
        urls.push(v.uri.clone());
    }
    Ok(urls)
}

/// GETs a media playlist from the bucket (by its public URL), checks its headers, parses it,
/// and checks every URI in it is an absolute URL under `<public_base>/<prefix>/<variant>/`.
fn bucket_media(url: &str) -> Result<BucketMedia, String> {
    let r = http_get(url)?;
    if r.status != 200 {
        return Err(format!("GET {url}: HTTP {}: {}", r.status, r.text()));
    }
    header_problems(&r, PLAYLIST_TYPE, PLAYLIST_CACHE).map_err(|e| format!("{url}: {e}"))?;
    let text = r.text();
    let pl = hls::parse_media(&text).map_err(|e| format!("{url} does not parse: {e}\n{text}"))?;
    let dir = url.trim_end_matches("stream.m3u8");
    if pl.segments.is_empty() {
        return Err(format!("{url} lists no segment:\n{text}"));
    }
    for s in &pl.segments {
        let map = s
            .map
            .as_ref()
            .ok_or_else(|| format!("segment {} has no EXT-X-MAP\n{text}", s.msn))?;
        for uri in [&s.uri, &map.uri] {
            if !uri.starts_with(dir) {
                return Err(format!(
                    "{url} lists {uri:?}, want an absolute URL under {dir}\n{text}"
                ));
            }
        }
        let name = &s.uri[dir.len()..];
        if !(name.starts_with("seg-") && name.ends_with(&format!("-{}.m4s", s.msn))) {
            return Err(format!(
                "segment {} is named {name:?}, want seg-<run>-{}.m4s",
                s.msn, s.msn
            ));
        }
        if !map.uri[dir.len()..].starts_with("init-") || !map.uri.ends_with(".mp4") {
            return Err(format!(
                "EXT-X-MAP URI {:?} is not init-<run>-<n>.mp4",
                map.uri
            ));
        }
    }
    Ok(BucketMedia {
        url: url.to_string(),
        text,
        pl,
    })
}

/// Every init and segment the playlist lists GETs 200 from the bucket with the right headers.
/// Returns how many objects were fetched.
fn check_listed_objects(media: &BucketMedia) -> Result<usize, String> {
    let mut urls: Vec<(String, bool)> =
        media.pl.map_uris().into_iter().map(|u| (u, true)).collect();
    urls.extend(media.pl.segments.iter().map(|s| (s.uri.clone(), false)));
    for (url, init) in &urls {
        let r = http_get(url)?;
        if r.status != 200 {
            return Err(format!(
                "{} lists {url}, which the bucket answers HTTP {}: {}\n---- playlist ----\n{}",
                media.url,
                r.status,
                r.text(),
                media.text
            ));
        }
        if r.body.is_empty() {
            return Err(format!("{url}: empty body"));
        }
        let want_type = if *init { INIT_TYPE } else { SEGMENT_TYPE };
        header_problems(&r, want_type, SEGMENT_CACHE).map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(urls.len())
}

fn header_problems(r: &Resp, content_type: &str, cache_control: &str) -> Result<(), String> {
    let ct = r.header("Content-Type");
    let cc = r.header("Cache-Control");
    if ct != Some(content_type) || cc != Some(cache_control) {
        return Err(format!(
            "{}: Content-Type {ct:?} / Cache-Control {cc:?}, want {content_type:?} / {cache_control:?}\n{}",
            r.url,
            r.headers_text()
        ));
    }
    Ok(())
}

/// `(msn, key)` of the segment keys in a listing.
fn segment_keys(keys: &[String]) -> Vec<(u64, String)> {
    keys.iter()
        .filter_map(|k| {
            let name = k.rsplit('/').next()?;
            let msn = name
                .strip_prefix("seg-")?
                .strip_suffix(".m4s")?
                .rsplit('-')
                .next()?;
            Some((msn.parse().ok()?, k.clone()))
        })
        .collect()
}

/// A server storing to `bucket` at `endpoint`, viewers sent to `public_base`.
fn s3_server(
    endpoint: &str,
    bucket: &str,
    public_base: &str,
    keys: (&str, &str),
    playlist_segments: u32,
) -> Server {
    Server::start(ServerOptions {
        playlist_segments,
        extra_toml: s3_storage_toml(endpoint, bucket, PREFIX, public_base, keys.0, keys.1),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn uploads_reach_the_bucket_with_the_right_headers_and_playlists_list_only_stored_segments() {
    let test_started = Instant::now();
    let moto = Moto::start("uploads");
    let bucket = "selfcast-uploads";
    moto.create_bucket(bucket);
    let public_base = moto.bucket_url(bucket);
    let public_master = public_url(&public_base, "stream.m3u8");
    let window = 3;
    let mut server = s3_server(
        &moto.endpoint(),
        bucket,
        &public_base,
        ("test", "test"),
        window,
    );
    let st = server.status();
    assert_eq!(
        hls_url(&st),
        LOCAL_MASTER,
        "before anything is stored: {}",
        pretty(&st)
    );
    assert_eq!(storage(&st)["kind"], "s3", "{}", pretty(&st));
    assert_eq!(
        storage(&st)["publicUrl"].as_str(),
        Some(public_master.as_str()),
        "{}",
        pretty(&st)
    );

    let input = looped_fixture(4);
    let _publisher = Publisher::start("uploads", &input, &server.publish_url(), &["-t", "44"]);
    let context = || moto.listing_report(bucket, PREFIX);
    let st = wait_status(
        &server,
        Duration::from_secs(30),
        "storage ok and viewers sent to the bucket",
        |s| state(s) == "ok" && hls_url(s) == public_master,
        context,
    );
    assert_eq!(storage(&st)["servingViewers"], true, "{}", pretty(&st));

    // The master and the media playlist: headers, absolute URLs, every listed object stored.
    let media_urls =
        bucket_master(&moto, bucket, &public_base).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    assert_eq!(
        media_urls.len(),
        1,
        "one variant (passthrough only): {media_urls:?}"
    );
    let media = bucket_media(&media_urls[0]).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    let fetched = check_listed_objects(&media).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    eprintln!(
        "bucket playlist OK, {fetched} objects fetched:\n{}",
        media.text
    );
    assert!(media.pl.segments.len() <= window as usize, "{}", media.text);

    // A player reads the stream from the bucket.
    assert_plays_h264_aac(&public_master);

    // As the window moves on, segments that left it are deleted from the bucket.
    let first_keys = moto.list_keys(bucket, PREFIX).expect("list the bucket");
    let first_segments = segment_keys(&first_keys);
    let oldest = first_segments
        .iter()
        .map(|(m, _)| *m)
        .min()
        .expect("segments in the bucket");
    eprintln!("bucket at first: {first_keys:?}");
    let mut checked_playlists = 0;
    let mut last_report = String::new();
    let done = poll_until(Duration::from_secs(40), Duration::from_millis(500), || {
        let media = match bucket_media(&media_urls[0]) {
            Ok(m) => m,
            Err(e) => panic!("{e}\n{}", context()),
        };
        // Every time: what the playlist lists is there.
        check_listed_objects(&media).unwrap_or_else(|e| panic!("{e}\n{}", context()));
        checked_playlists += 1;
        let keys = moto.list_keys(bucket, PREFIX).ok()?;
        let segments = segment_keys(&keys);
        let bucket_ms = media.pl.media_sequence();
        // Deleted one window after leaving the playlist: nothing older may stay for long.
        let stale: Vec<&(u64, String)> = segments
            .iter()
            .filter(|(msn, _)| msn + (window as u64) < bucket_ms)
            .collect();
        last_report = format!(
            "bucket playlist media sequence {bucket_ms}; stale keys {stale:?}; keys {keys:?}"
        );
        let oldest_gone = !segments.iter().any(|(m, _)| *m == oldest);
        (oldest_gone && stale.is_empty()).then_some(segments)
    });
    let segments = done.unwrap_or_else(|| {
        panic!(
            "segments that left the window stayed in the bucket (oldest at first: {oldest}); {last_report}\n{}",
            pretty(&server.status())
        )
    });
    eprintln!("checked {checked_playlists} bucket playlists; {last_report}");
    assert!(
        segments.len() <= 2 * window as usize + 2,
        "the bucket keeps more than the window and the retired segments: {segments:?}"
    );

    let st = server.status();
    let s = storage(&st);
    eprintln!("storage status: {}", pretty(s));
    assert!(s["deleted"].as_u64().unwrap_or(0) >= 1, "{}", pretty(s));
    assert!(s["stored"].as_u64().unwrap_or(0) >= 5, "{}", pretty(s));
    assert_eq!(s["failures"].as_u64(), Some(0), "{}", pretty(s));
    assert!(s["lastError"].is_null(), "{}", pretty(s));
    assert!(s["putMs"]["p50"].is_u64(), "putMs.p50: {}", pretty(s));
    assert!(
        s["segmentListedMs"]["p50"].is_u64(),
        "segmentListedMs.p50: {}",
        pretty(s)
    );
    assert!(
        s["segmentListedMs"]["p99"].is_u64(),
        "segmentListedMs.p99: {}",
        pretty(s)
    );
    assert_eq!(state(&st), "ok");
    server.assert_running();
    assert_no_panic(&server);
    eprintln!("test took {:.1}s", test_started.elapsed().as_secs_f64());
}

#[test]
fn bad_storage_is_reported_and_the_server_serves_itself() {
    let test_started = Instant::now();
    // (a) nothing listens at the endpoint
    let closed = format!("http://127.0.0.1:{}", free_port());
    // (b) moto without the bucket
    let moto_b = Moto::start("no-bucket");
    // (c) moto checking signatures; our key with a wrong secret
    let moto_c = Moto::start("auth");
    moto_c.create_bucket("signed");
    let (access_key, secret) = moto_c.enable_auth();
    let wrong = format!("not-{secret}");

    let cases = [
        (
            "unreachable endpoint",
            s3_server(
                &closed,
                "nowhere",
                &format!("{closed}/nowhere"),
                ("test", "test"),
                4,
            ),
            "cannot reach",
        ),
        (
            "missing bucket",
            s3_server(
                &moto_b.endpoint(),
                "no-such-bucket",
                &moto_b.bucket_url("no-such-bucket"),
                ("test", "test"),
                4,
            ),
            "the bucket \"no-such-bucket\" does not exist",
        ),
        (
            "wrong secret key",
            s3_server(
                &moto_c.endpoint(),
                "signed",
                &moto_c.bucket_url("signed"),
                (&access_key, &wrong),
                4,
            ),
            "the secret key does not match the access key: check secret_key",
        ),
    ];

    // The start-up check reports each in plain words; the server runs and serves itself.
    for (what, server, expected) in &cases {
        let st = wait_status(
            server,
            Duration::from_secs(15),
            &format!("{what}: storage failing at start-up"),
            |s| state(s) == "failing" && !last_error(s).is_empty(),
            String::new,
        );
        let error = last_error(&st);
        eprintln!("{what}: start-up lastError = {error:?}");
        assert!(
            error.contains(expected),
            "{what}: lastError {error:?} should contain {expected:?}"
        );
        assert_eq!(hls_url(&st), LOCAL_MASTER, "{what}: {}", pretty(&st));
        assert_eq!(storage(&st)["servingViewers"], false, "{what}");
    }

    // Publishing: the uploads fail the same way, and selfcast serves the stream itself.
    let fx = fixture();
    let publishers: Vec<Publisher> = cases
        .iter()
        .map(|(what, server, _)| Publisher::start(what, &fx.path, &server.publish_url(), &[]))
        .collect();
    let after_puts = [
        format!("cannot reach {closed}"),
        "the bucket \"no-such-bucket\" does not exist".to_string(),
        "the secret key does not match the access key: check secret_key".to_string(),
    ];
    for ((what, server, _), expected) in cases.iter().zip(&after_puts) {
        let local = local_media_url(server);
        let mut last = String::new();
        let ok = poll_until(Duration::from_secs(20), Duration::from_millis(300), || {
            let st = server.status();
            assert_eq!(hls_url(&st), LOCAL_MASTER, "{what}: {}", pretty(&st));
            assert_eq!(state(&st), "failing", "{what}: {}", pretty(&st));
            let segments = fetch_media(&local)
                .map(|(_, f)| f.pl.segments.len())
                .unwrap_or(0);
            last = format!("{segments} local segments; {}", pretty(&st));
            let put_failed = st["storage"]["backlog"].as_u64().unwrap_or(0) > 0
                && last_error(&st).starts_with("uploading ");
            (segments >= 2 && put_failed).then_some(st)
        });
        let st =
            ok.unwrap_or_else(|| panic!("{what}: no local segments or no failed upload: {last}"));
        let error = last_error(&st);
        eprintln!("{what}: lastError while publishing = {error:?}");
        assert!(
            error.contains(expected.as_str()),
            "{what}: lastError {error:?} should contain {expected:?}"
        );
        let (r, f) = fetch_media(&local).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status, 200);
        let seg = hls::resolve(&local, &f.pl.segments[0].uri);
        let r = http_get(&seg).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status, 200, "{what}: GET {seg}");
    }
    drop(publishers);
    for (what, server, _) in cases {
        let mut server = server;
        if !server.is_running() {
            panic!("{what}: selfcast exited (server log tail below)");
        }
        assert_no_panic(&server);
    }
    eprintln!("test took {:.1}s", test_started.elapsed().as_secs_f64());
}

#[test]
fn the_stream_survives_the_storage_going_away_and_catches_up() {
    let test_started = Instant::now();
    let mut moto = Moto::start("outage");
    let bucket = "selfcast-outage";
    moto.create_bucket(bucket);
    let public_base = moto.bucket_url(bucket);
    let public_master = public_url(&public_base, "stream.m3u8");
    let mut server = s3_server(&moto.endpoint(), bucket, &public_base, ("test", "test"), 4);
    let input = looped_fixture(5);
    let _publisher = Publisher::start("outage", &input, &server.publish_url(), &["-t", "58"]);

    wait_status(
        &server,
        Duration::from_secs(30),
        "storage ok and viewers sent to the bucket",
        |s| state(s) == "ok" && hls_url(s) == public_master,
        || moto.listing_report(bucket, PREFIX),
    );
    let local = local_media_url(&server);

    // The storage goes away.
    moto.stop();
    let down = Instant::now();
    let st = wait_status(
        &server,
        Duration::from_secs(8),
        "storage failing and viewers sent to selfcast after moto stopped",
        |s| state(s) == "failing" && hls_url(s) == LOCAL_MASTER,
        String::new,
    );
    let error = last_error(&st);
    eprintln!(
        "failing {:.1}s after moto stopped: {error:?}",
        down.elapsed().as_secs_f64()
    );
    assert!(error.contains("cannot reach"), "lastError {error:?}");

    // selfcast keeps serving the stream itself.
    let before = local_next_msn(&local);
    let mut last = Value::Null;
    let advanced = poll_until(Duration::from_secs(15), Duration::from_millis(300), || {
        last = server.status();
        assert_eq!(
            hls_url(&last),
            LOCAL_MASTER,
            "storage is down: {}",
            pretty(&last)
        );
        assert_eq!(
            state(&last),
            "failing",
            "storage is down: {}",
            pretty(&last)
        );
        (local_next_msn(&local) >= before + 3).then_some(())
    });
    assert!(
        advanced.is_some(),
        "selfcast's own playlist did not advance while the storage was down (from {before}): {}",
        pretty(&last)
    );
    server.assert_running();
    eprintln!(
        "local playlist advanced while down; backlog {}, failures {}",
        storage(&last)["backlog"],
        storage(&last)["failures"]
    );

    // It comes back empty (moto forgets everything); the bucket is made again.
    moto.restart();
    moto.create_bucket(bucket);
    let back = Instant::now();
    // Until viewers are sent back, and at that moment: whenever /api/status sends them to the
    // bucket, the master and the media playlists it lists, and what those list, are there.
    let mut timeline = Vec::new();
    let mut first: Option<BucketMedia> = None;
    while back.elapsed() < Duration::from_secs(30) {
        let st = server.status();
        let line = format!(
            "{} {} backlog {}",
            state(&st),
            hls_url(&st),
            storage(&st)["backlog"]
        );
        if timeline
            .last()
            .map(|(_, l): &(f64, String)| l != &line)
            .unwrap_or(true)
        {
            timeline.push((back.elapsed().as_secs_f64(), line));
        }
        if hls_url(&st) == public_master {
            let checked = bucket_master(&moto, bucket, &public_base).and_then(|urls| {
                let media = bucket_media(&urls[0])?;
                check_listed_objects(&media)?;
                Ok(media)
            });
            match checked {
                Ok(media) if state(&st) == "ok" => {
                    first = Some(media);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    let timeline_text: String = timeline
                        .iter()
                        .map(|(t, l)| format!("  +{t:.2}s {l}\n"))
                        .collect();
                    panic!(
                        "+{:.2}s: /api/status sends viewers to the bucket ({}, backlog {}), but: {e}\n\
                         ---- status since the bucket is back ----\n{timeline_text}{}\n{}",
                        back.elapsed().as_secs_f64(),
                        state(&st),
                        storage(&st)["backlog"],
                        pretty(&st),
                        moto.listing_report(bucket, PREFIX)
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let timeline_text: String = timeline
        .iter()
        .map(|(t, l)| format!("  +{t:.2}s {l}\n"))
        .collect();
    let Some(first) = first else {
        panic!(
            "storage not ok with viewers sent to the bucket 30 s after it was back:\n{timeline_text}{}\n{}",
            pretty(&server.status()),
            moto.listing_report(bucket, PREFIX)
        )
    };
    eprintln!(
        "recovered {:.1}s after the bucket was back:\n{timeline_text}",
        back.elapsed().as_secs_f64()
    );
    let media_urls = [first.url.clone()];

    // And the bucket's playlist moves on, listing only what is stored.
    let mut latest = String::new();
    let moved = poll_until(Duration::from_secs(20), Duration::from_millis(500), || {
        let media = bucket_media(&media_urls[0])
            .unwrap_or_else(|e| panic!("{e}\n{}", moto.listing_report(bucket, PREFIX)));
        check_listed_objects(&media)
            .unwrap_or_else(|e| panic!("{e}\n{}", moto.listing_report(bucket, PREFIX)));
        latest = media.text.clone();
        (media.pl.next_msn() >= first.pl.next_msn() + 2).then_some(media)
    });
    let moved = moved.unwrap_or_else(|| {
        panic!(
            "the bucket's playlist did not advance after recovery; first:\n{}\nlatest:\n{latest}\n{}",
            first.text,
            pretty(&server.status())
        )
    });
    let listed: BTreeSet<u64> = moved.pl.segments.iter().map(|s| s.msn).collect();
    let keys = moto.list_keys(bucket, PREFIX).expect("list");
    let stored: BTreeSet<u64> = segment_keys(&keys).into_iter().map(|(m, _)| m).collect();
    assert!(
        listed.is_subset(&stored),
        "listed {listed:?}, stored {stored:?}"
    );
    let st = server.status();
    eprintln!("storage status after recovery: {}", pretty(storage(&st)));
    assert_eq!(state(&st), "ok");
    assert!(storage(&st)["failures"].as_u64().unwrap_or(0) >= 1);
    server.assert_running();
    assert_no_panic(&server);
    eprintln!("test took {:.1}s", test_started.elapsed().as_secs_f64());
}
