//! `[storage] kind = "ipfs"` against a real IPFS node (js-ipfs from npm, serving the same RPC API
//! and gateway as Kubo), with the real `selfcast` binary and a real publisher (ffmpeg over
//! RTMP): segments are added and pinned, the playlists selfcast serves at `/hls-ipfs/` name them
//! by gateway URL and CID, a player reads the stream that way, segments that leave the window
//! are unpinned, and the stream survives the node going away and coming back.
//!
//! Needs the node (see `common::ipfs::ipfs_cli_js`; `ci/test` installs it).

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::hls::{self, MediaPlaylist};
use common::ipfs::IpfsNode;
use common::storage::*;
use common::*;

const IPFS_MASTER: &str = "/hls-ipfs/stream.m3u8";

/// A server adding its segments to `node`, `window` segments per playlist.
fn ipfs_server(api_url: &str, gateway_url: &str, window: u32) -> Server {
    Server::start(ServerOptions {
        playlist_segments: window,
        extra_toml: format!(
            "\n[storage]\nkind = \"ipfs\"\n\n[storage.ipfs]\napi_url = \"{api_url}\"\n\
             gateway_url = \"{gateway_url}\"\n"
        ),
        ..Default::default()
    })
}

/// Publishes the fixture `loops` times in a row and waits until viewers are sent to
/// `/hls-ipfs/`.
fn publish_until_served_from_ipfs(server: &Server, node: &IpfsNode, loops: u32) -> Publisher {
    let input = looped_fixture(loops);
    let seconds = (loops * 12 - 2).to_string();
    let publisher = Publisher::start("ipfs", &input, &server.publish_url(), &["-t", &seconds]);
    wait_status(
        server,
        Duration::from_secs(30),
        "storage ok and viewers sent to /hls-ipfs/",
        |s| state(s) == "ok" && hls_url(s) == IPFS_MASTER,
        || node.log(),
    );
    publisher
}

/// One segment (or init segment) as the IPFS playlist names it.
struct Listed {
    url: String,
    cid: String,
    /// The store's name for it (`seg-<run>-<msn>.m4s`, `init-<run>-<n>.mp4`).
    name: String,
}

/// The IPFS media playlist of the first variant, from selfcast, checked: headers, parse, every
/// URI `<gateway>/ipfs/<cid>?filename=<name>`.
fn ipfs_media(server: &Server, gateway: &str) -> Result<(MediaPlaylist, Vec<Listed>), String> {
    let master_url = server.url(IPFS_MASTER);
    let r = http_get(&master_url)?;
    if r.status != 200 {
        return Err(format!("GET {master_url}: HTTP {}: {}", r.status, r.text()));
    }
    check_playlist_headers(&r)?;
    let master = hls::parse_master(&r.text()).map_err(|e| format!("{master_url}: {e}"))?;
    let variant = master
        .variants
        .first()
        .ok_or_else(|| format!("{master_url} lists no variant:\n{}", r.text()))?;
    if variant.uri != "0/stream.m3u8" {
        return Err(format!(
            "{master_url} lists {:?}, want the relative 0/stream.m3u8",
            variant.uri
        ));
    }
    let media_url = hls::resolve(&master_url, &variant.uri);
    let r = http_get(&media_url)?;
    if r.status != 200 {
        return Err(format!("GET {media_url}: HTTP {}: {}", r.status, r.text()));
    }
    check_playlist_headers(&r)?;
    let text = r.text();
    let pl = hls::parse_media(&text).map_err(|e| format!("{media_url}: {e}\n{text}"))?;
    if pl.segments.is_empty() {
        return Err(format!("{media_url} lists no segment:\n{text}"));
    }
    let mut listed = Vec::new();
    for uri in pl
        .map_uris()
        .into_iter()
        .chain(pl.segments.iter().map(|s| s.uri.clone()))
    {
        let rest = uri
            .strip_prefix(&format!("{gateway}/ipfs/"))
            .ok_or_else(|| format!("{media_url} lists {uri:?}, want {gateway}/ipfs/...\n{text}"))?;
        let (cid, name) = rest
            .split_once("?filename=")
            .ok_or_else(|| format!("{uri:?} has no ?filename=\n{text}"))?;
        if !cid.starts_with("baf") || !(name.ends_with(".m4s") || name.ends_with(".mp4")) {
            return Err(format!(
                "{uri:?}: want a CIDv1 and a .m4s/.mp4 file name\n{text}"
            ));
        }
        listed.push(Listed {
            url: uri.clone(),
            cid: cid.to_string(),
            name: name.to_string(),
        });
    }
    Ok((pl, listed))
}

fn check_playlist_headers(r: &Resp) -> Result<(), String> {
    let want = [
        ("Content-Type", "application/vnd.apple.mpegurl"),
        ("Cache-Control", "public, max-age=1"),
        ("Access-Control-Allow-Origin", "*"),
    ];
    for (name, value) in want {
        if r.header(name) != Some(value) {
            return Err(format!(
                "{}: {name} {:?}, want {value:?}\n{}",
                r.url,
                r.header(name),
                r.headers_text()
            ));
        }
    }
    Ok(())
}

/// Every listed file is pinned and the gateway serves it with the same bytes selfcast serves
/// at `/hls/0/<name>` (which keeps a segment one window after it left its playlist).
fn check_listed_on_the_node(
    node: &IpfsNode,
    server: &Server,
    listed: &[Listed],
) -> Result<(), String> {
    let pins = node.pins();
    for file in listed {
        if !pins.contains(&file.cid) {
            return Err(format!(
                "{} ({}) is listed but not pinned",
                file.cid, file.name
            ));
        }
        let from_gateway = node
            .try_cat(&file.cid, Duration::from_secs(10))
            .map_err(|e| format!("{}: {e}", file.url))?;
        let local_url = server.url(&format!("/hls/0/{}", file.name));
        let local = http_get(&local_url)?;
        if local.status == 200 && local.body != from_gateway {
            return Err(format!(
                "{} from the gateway ({} bytes) differs from {local_url} ({} bytes)",
                file.url,
                from_gateway.len(),
                local.body.len()
            ));
        }
    }
    Ok(())
}

fn status_report(server: &Server) -> String {
    pretty(&server.status())
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn segments_are_added_to_the_node_and_players_read_them_through_the_gateway() {
    let test_started = Instant::now();
    let node = IpfsNode::start("uploads");
    let gateway = node.gateway_url();
    let window = 3;
    let server = ipfs_server(&node.api_url(), &gateway, window);
    let st = server.status();
    assert_eq!(
        hls_url(&st),
        LOCAL_MASTER,
        "nothing added yet: {}",
        pretty(&st)
    );
    assert_eq!(storage(&st)["kind"], "ipfs", "{}", pretty(&st));
    assert_eq!(storage(&st)["publicUrl"], IPFS_MASTER, "{}", pretty(&st));

    let _publisher = publish_until_served_from_ipfs(&server, &node, 4);

    let (pl, listed) =
        ipfs_media(&server, &gateway).unwrap_or_else(|e| panic!("{e}\n{}", status_report(&server)));
    check_listed_on_the_node(&node, &server, &listed).unwrap_or_else(|e| panic!("{e}"));
    assert!(pl.segments.len() <= window as usize);
    eprintln!(
        "IPFS playlist OK, {} files pinned and fetched through the gateway",
        listed.len()
    );

    // A player reads the stream: playlists from selfcast, video from the gateway.
    assert_plays_h264_aac(&server.url(IPFS_MASTER));

    // As the window moves on, what left it is unpinned; what is listed stays pinned.
    let first_segment_cids: Vec<String> = listed
        .iter()
        .filter(|f| f.name.starts_with("seg-"))
        .map(|f| f.cid.clone())
        .collect();
    let mut last_report = String::new();
    let unpinned = poll_until(Duration::from_secs(40), Duration::from_millis(500), || {
        let (_, listed) = ipfs_media(&server, &gateway).unwrap_or_else(|e| panic!("{e}"));
        check_listed_on_the_node(&node, &server, &listed).unwrap_or_else(|e| panic!("{e}"));
        let pins = node.pins();
        let still: Vec<&String> = first_segment_cids
            .iter()
            .filter(|cid| pins.contains(cid))
            .collect();
        last_report = format!(
            "{} pins; first segments still pinned: {still:?}",
            pins.len()
        );
        still.is_empty().then_some(pins)
    });
    let pins = unpinned.unwrap_or_else(|| {
        panic!(
            "segments that left the window stayed pinned: {last_report}\n{}",
            status_report(&server)
        )
    });
    // The window, the segments that just left it, and an init segment.
    assert!(
        pins.len() <= 2 * window as usize + 2,
        "the node keeps more pinned than the window: {pins:?}"
    );

    let st = server.status();
    let s = storage(&st);
    eprintln!("storage status: {}", pretty(s));
    assert!(s["deleted"].as_u64().unwrap_or(0) >= 1, "{}", pretty(s));
    assert_eq!(s["failures"].as_u64(), Some(0), "{}", pretty(s));
    assert!(s["segmentListedMs"]["p99"].is_u64(), "{}", pretty(s));
    assert_no_panic(&server);
    eprintln!("test took {:.1}s", test_started.elapsed().as_secs_f64());
}

#[test]
fn a_node_that_goes_away_is_reported_and_the_stream_catches_up_when_it_is_back() {
    let test_started = Instant::now();

    let mut node = IpfsNode::start("outage");
    // At start-up: nothing listens at api_url; or the API works and the gateway does not.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let cases = [
        (
            "unreachable node",
            ipfs_server(&closed, &node.gateway_url(), 4),
            format!("cannot reach the IPFS node at {closed}"),
        ),
        (
            "unreachable gateway",
            ipfs_server(&node.api_url(), &closed, 4),
            format!("cannot reach the IPFS gateway at {closed}"),
        ),
    ];
    for (what, server, expected) in &cases {
        let st = wait_status(
            server,
            Duration::from_secs(15),
            &format!("{what} reported at start-up"),
            |s| state(s) == "failing",
            String::new,
        );
        let error = last_error(&st);
        eprintln!("{what}: lastError {error:?}");
        assert!(
            error.contains(expected.as_str()),
            "{what}: lastError {error:?}"
        );
        assert_eq!(hls_url(&st), LOCAL_MASTER, "{what}");
    }
    drop(cases);

    let gateway = node.gateway_url();
    let mut server = ipfs_server(&node.api_url(), &gateway, 4);
    let _publisher = publish_until_served_from_ipfs(&server, &node, 5);
    let local = local_media_url(&server);

    // The node goes away: viewers are sent back to selfcast, which keeps serving the stream.
    node.stop();
    let down = Instant::now();
    let st = wait_status(
        &server,
        Duration::from_secs(8),
        "storage failing and viewers sent to selfcast after the node stopped",
        |s| state(s) == "failing" && hls_url(s) == LOCAL_MASTER,
        String::new,
    );
    let error = last_error(&st);
    eprintln!(
        "failing {:.1}s after the node stopped: {error:?}",
        down.elapsed().as_secs_f64()
    );
    assert!(
        error.contains("cannot reach the IPFS node at"),
        "lastError {error:?}"
    );
    let before = local_next_msn(&local);
    let advanced = poll_until(Duration::from_secs(15), Duration::from_millis(300), || {
        let st = server.status();
        assert_eq!(hls_url(&st), LOCAL_MASTER, "node is down: {}", pretty(&st));
        (local_next_msn(&local) >= before + 3).then_some(())
    });
    assert!(
        advanced.is_some(),
        "selfcast's own playlist did not advance while the node was down (from {before})"
    );

    // Back (same repository): viewers return once the window is added again, and at that
    // moment everything the IPFS playlist lists is pinned and served by the gateway.
    node.restart();
    let back = Instant::now();
    let recovered = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let st = server.status();
        (state(&st) == "ok" && hls_url(&st) == IPFS_MASTER).then_some(())
    });
    assert!(
        recovered.is_some(),
        "viewers not sent back to /hls-ipfs/ 30 s after the node was back: {}",
        status_report(&server)
    );
    eprintln!(
        "recovered {:.1}s after the node was back",
        back.elapsed().as_secs_f64()
    );
    let (first, listed) = ipfs_media(&server, &gateway).unwrap_or_else(|e| panic!("{e}"));
    check_listed_on_the_node(&node, &server, &listed).unwrap_or_else(|e| panic!("{e}"));

    // And the IPFS playlist moves on.
    let moved = poll_until(Duration::from_secs(20), Duration::from_millis(500), || {
        let (pl, listed) = ipfs_media(&server, &gateway).unwrap_or_else(|e| panic!("{e}"));
        check_listed_on_the_node(&node, &server, &listed).unwrap_or_else(|e| panic!("{e}"));
        (pl.next_msn() >= first.next_msn() + 2).then_some(())
    });
    assert!(
        moved.is_some(),
        "the IPFS playlist did not advance after recovery: {}",
        status_report(&server)
    );
    let st: Value = server.status();
    assert_eq!(state(&st), "ok");
    assert!(storage(&st)["failures"].as_u64().unwrap_or(0) >= 1);
    server.assert_running();
    assert_no_panic(&server);
    eprintln!("test took {:.1}s", test_started.elapsed().as_secs_f64());
}
