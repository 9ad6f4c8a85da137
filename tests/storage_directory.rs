//! Issue 6, `[storage] kind = "directory"`: a real publish (ffmpeg in real time) into a real
//! selfcast that writes the stream into a directory for another web server. While it runs, the
//! directory is read over and over as a web server would: every playlist lists only files that
//! are there, whole (never a half-written file, never a temporary name served), playlists carry
//! absolute URLs under `public_base_url`, old segments go, and `/api/status` sends players to the
//! public URL.
//!
//! Run: `cargo test --release --test storage_directory -- --nocapture`

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const PUBLIC: &str = "https://cdn.example.test/live";

/// File names in `dir` (not recursive), sorted.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every URI a playlist lists (segments and EXT-X-MAP).
fn uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                return rest.split('"').next().map(str::to_owned);
            }
            (!line.starts_with('#') && !line.trim().is_empty()).then(|| line.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_stream_is_written_whole_into_the_directory_and_players_are_sent_there() {
    let out = tempfile::tempdir().expect("tempdir");
    let root = out.path().join("www");
    let server = Server::start(ServerOptions {
        extra_toml: format!(
            "\n[storage]\nkind = \"directory\"\n[storage.directory]\npath = {:?}\npublic_base_url = \"{PUBLIC}\"\n",
            root.display().to_string()
        ),
        playlist_segments: 3,
        ..ServerOptions::default()
    });
    let fx = fixture();
    let mut publisher = Publisher::start("dir", &fx.path, &server.publish_url(), &[]);

    // Read the directory as a web server would, every 50 ms, for 24 s of stream (the fixture is
    // published again when it ends, as a streamer reconnecting would).
    let started = Instant::now();
    let mut checked_playlists = 0;
    let mut first_segments: Option<BTreeSet<String>> = None;
    let mut last_segments = BTreeSet::new();
    while started.elapsed() < Duration::from_secs(24) {
        if !publisher.running() {
            publisher = Publisher::start("dir again", &fx.path, &server.publish_url(), &[]);
        }
        let variant_dir = root.join("0");
        let present = names(&variant_dir);
        if let Ok(text) = std::fs::read_to_string(variant_dir.join("stream.m3u8")) {
            assert!(text.starts_with("#EXTM3U\n"), "a whole playlist: {text:?}");
            let listed = uris(&text);
            assert!(!listed.is_empty(), "{text}");
            // Read what the playlist lists right after it: every file is there, whole.
            for uri in &listed {
                let name = uri
                    .strip_prefix(&format!("{PUBLIC}/0/"))
                    .unwrap_or_else(|| panic!("{uri} is not under {PUBLIC}/0/:\n{text}"));
                assert!(
                    !name.ends_with(".tmp"),
                    "a temporary name is listed: {text}"
                );
                let bytes = std::fs::read(variant_dir.join(name)).unwrap_or_else(|e| {
                    panic!("{name} is listed but cannot be read ({e}):\n{text}")
                });
                assert!(bytes.len() > 8, "{name}: {} bytes", bytes.len());
                let kind = &bytes[4..8];
                let expected: &[u8] = if name.starts_with("init-") {
                    b"ftyp"
                } else {
                    b"styp"
                };
                assert!(
                    kind == expected || kind == b"moof",
                    "{name} starts with {kind:?}: not a whole fMP4 file"
                );
            }
            let segments: BTreeSet<String> = present
                .iter()
                .filter(|n| n.starts_with("seg-") && n.ends_with(".m4s"))
                .cloned()
                .collect();
            first_segments.get_or_insert_with(|| segments.clone());
            last_segments = segments;
            checked_playlists += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        checked_playlists > 50,
        "only {checked_playlists} playlists read"
    );

    // The master lists the variant playlist by its public URL; players are sent there.
    let master = std::fs::read_to_string(root.join("stream.m3u8")).expect("master playlist");
    assert!(
        master.contains(&format!("\n{PUBLIC}/0/stream.m3u8\n")),
        "{master}"
    );
    let status = server.status();
    assert_eq!(
        status["hlsUrl"],
        format!("{PUBLIC}/stream.m3u8"),
        "players go to the directory's server: {status:#}"
    );
    assert_eq!(status["storage"]["state"], "ok", "{status:#}");
    assert_eq!(status["storage"]["kind"], "directory");
    assert!(
        status["storage"]["segmentListedMs"]["p50"].is_u64(),
        "{status:#}"
    );

    // Old segments were deleted: the first ones seen are gone by now, and the directory holds
    // at most the window plus the retired window (3 + 3).
    let first = first_segments.expect("segments were seen");
    assert!(
        first.iter().any(|n| !last_segments.contains(n)),
        "no segment was ever deleted: first {first:?}, last {last_segments:?}"
    );
    assert!(last_segments.len() <= 6, "{last_segments:?}");

    // A clean shutdown ends the directory's copy too.
    publisher.kill();
    let mut server = server;
    server.interrupt();
    let exit = server.wait_exit(Duration::from_secs(30));
    assert!(exit.is_some_and(|e| e.success()), "exit: {exit:?}");
    let last = std::fs::read_to_string(root.join("0/stream.m3u8")).expect("playlist");
    assert!(last.ends_with("#EXT-X-ENDLIST\n"), "{last}");
}

#[test]
fn an_unwritable_directory_is_reported_and_the_server_serves_itself() {
    let out = tempfile::tempdir().expect("tempdir");
    // A file where the directory should be: nothing can be written under it.
    let blocked = out.path().join("not-a-directory");
    std::fs::write(&blocked, b"in the way").unwrap();
    let server = Server::start(ServerOptions {
        extra_toml: format!(
            "\n[storage]\nkind = \"directory\"\n[storage.directory]\npath = {:?}\npublic_base_url = \"{PUBLIC}\"\n",
            blocked.join("live").display().to_string()
        ),
        ..ServerOptions::default()
    });
    let status = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let status = server.status();
        (status["storage"]["state"] == "failing").then_some(status)
    })
    .unwrap_or_else(|| panic!("not failing: {:#}", server.status()));
    let error = status["storage"]["lastError"].as_str().unwrap_or_default();
    assert!(error.starts_with("cannot create "), "{error}");
    assert_eq!(status["hlsUrl"], "/hls/stream.m3u8", "{status:#}");

    // Publishing still works: selfcast serves the stream itself.
    let fx = fixture();
    let mut publisher = Publisher::start("blocked", &fx.path, &server.publish_url(), &[]);
    let master = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        http_get(&server.master_url())
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(master.is_some(), "no local master playlist");
    let status = server.status();
    assert_eq!(status["hlsUrl"], "/hls/stream.m3u8", "{status:#}");
    assert!(status["storage"]["failures"].as_u64().unwrap_or(0) >= 1);
    publisher.kill();
}
