//! The console's video settings (issue 14: `POST /api/admin/settings/video`) through the real
//! binary and real publishes with the `ffmpeg` CLI: a ladder set while offline is in use at
//! once; one set while live waits for the next publish (the live one keeps its renditions) and
//! the next publish encodes it, at its size; a bad ladder is refused at its field; the ladder
//! outlives a restart.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::chat::{self, admin_get, admin_ok, admin_post};
use common::{fixture, poll_until, Publisher, Server, ServerOptions};

fn start(data_dir: &std::path::Path) -> Server {
    Server::start(ServerOptions {
        data_dir: Some(data_dir.to_owned()),
        ..chat::options("")
    })
}

fn rendition_names(server: &Server) -> Vec<String> {
    server.status()["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

fn rung(name: &str, height: u32) -> Value {
    json!({"name": name, "height": height, "videoBitrateKbps": 400, "cpuUsageLevel": 0})
}

/// Publishes the fixture for `seconds` and waits until every rendition of `names` has a segment
/// of its own; returns `/api/status` then.
fn publish_until_served(server: &Server, seconds: &str, names: &[&str]) -> (Publisher, Value) {
    let publisher = Publisher::start(
        "ffmpeg",
        &fixture().path,
        &server.publish_url(),
        &["-t", seconds],
    );
    let status = poll_until(Duration::from_secs(40), Duration::from_millis(300), || {
        let status = server.status();
        let variants = status["variants"].as_array()?;
        let served = names.iter().all(|name| {
            variants
                .iter()
                .any(|v| v["name"] == *name && v["segments"].as_u64().is_some_and(|n| n > 0))
        });
        (status["online"] == true && served).then_some(status)
    })
    .unwrap_or_else(|| panic!("{names:?} not served: {}", server.status()));
    (publisher, status)
}

fn height_of(status: &Value, name: &str) -> u64 {
    status["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .and_then(|v| v["height"].as_u64())
        .unwrap_or_else(|| panic!("no height for {name}: {status}"))
}

#[test]
fn a_ladder_applies_offline_at_once_and_live_at_the_next_publish() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    assert_eq!(rendition_names(&server), ["source"]);

    // Offline: in use at once.
    let source = json!({"name": "source", "passthrough": true});
    let set = admin_ok(
        &server,
        "/settings/video",
        json!({"variants": [source, rung("360p", 360)]}),
    );
    assert_eq!(set["pending"], false, "{set}");
    assert_eq!(set["video"]["sources"]["variants"], "console", "{set}");
    assert_eq!(rendition_names(&server), ["source", "360p"]);

    let (mut first, live) = publish_until_served(&server, "10", &["source", "360p"]);
    assert_eq!(height_of(&live, "360p"), 360);

    // Live: the publish keeps its renditions; the next one runs the new ladder.
    let set = admin_ok(
        &server,
        "/settings/video",
        json!({"variants": [source, rung("360p", 360), rung("240p", 240)]}),
    );
    assert_eq!(set["pending"], true, "{set}");
    assert_eq!(rendition_names(&server), ["source", "360p"]);
    assert_eq!(admin_get(&server, "/settings")["videoPending"], true);
    first.expect_success(Duration::from_secs(60), "ffmpeg publishing for 10 s");
    server.wait_online(false, Duration::from_secs(30));

    let (mut second, live) = publish_until_served(&server, "6", &["source", "360p", "240p"]);
    assert_eq!(height_of(&live, "240p"), 240);
    assert_eq!(admin_get(&server, "/settings")["videoPending"], false);
    second.expect_success(Duration::from_secs(60), "ffmpeg publishing for 6 s");

    // Refused at the field, nothing saved.
    for (body, field) in [
        (
            json!({"variants": [rung("huge", 9000)]}),
            "variants[0].height",
        ),
        (json!({"variants": []}), "variants"),
        (
            json!({"variants": [{"name": "a", "height": "tall"}]}),
            "variants",
        ),
        (json!({"segmentSeconds": 0}), "segmentSeconds"),
    ] {
        let refused = admin_post(&server, "/settings/video", body.clone());
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
        assert_eq!(refused.json()["field"], field, "{body}");
    }
    assert_eq!(rendition_names(&server), ["source", "360p", "240p"]);
    drop(server);

    let server = start(data.path());
    assert_eq!(rendition_names(&server), ["source", "360p", "240p"]);
}

/// "Apply now": a ladder set while live is put in use by restarting the live publish's
/// pipeline; the same ffmpeg publish goes on, the stream stays online, the new rendition is
/// encoded at its size, and the kept renditions' playlists continue behind a discontinuity.
#[test]
fn apply_now_restarts_the_live_pipeline_with_the_new_ladder() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path());
    let offline = admin_ok(&server, "/publisher/restart", json!({}));
    assert_eq!(offline["restarted"], false, "nothing live: {offline}");

    let source = json!({"name": "source", "passthrough": true});
    let (mut publisher, _) = publish_until_served(&server, "12", &["source"]);
    let set = admin_ok(
        &server,
        "/settings/video",
        json!({"variants": [source, rung("240p", 240)]}),
    );
    assert_eq!(set["pending"], true, "{set}");

    let restart = admin_ok(&server, "/publisher/restart", json!({}));
    assert_eq!(restart["restarted"], true, "{restart}");
    assert_eq!(admin_get(&server, "/settings")["videoPending"], false);
    assert_eq!(rendition_names(&server), ["source", "240p"]);
    // The same publish: online the whole time, and the new rendition is served.
    let live = poll_until(Duration::from_secs(40), Duration::from_millis(200), || {
        let status = server.status();
        assert_eq!(
            status["online"], true,
            "went offline during the restart: {status}"
        );
        let served = status["variants"]
            .as_array()?
            .iter()
            .any(|v| v["name"] == "240p" && v["segments"].as_u64().is_some_and(|n| n > 0));
        served.then_some(status)
    })
    .unwrap_or_else(|| panic!("240p not served after the restart: {}", server.status()));
    assert_eq!(height_of(&live, "240p"), 240);
    let playlist = common::http_get(&server.url("/hls/0/stream.m3u8")).expect("source playlist");
    assert!(
        playlist.text().contains("#EXT-X-DISCONTINUITY"),
        "the source playlist goes on behind a discontinuity:\n{}",
        playlist.text()
    );
    publisher.expect_success(
        Duration::from_secs(60),
        "ffmpeg publishing for 12 s, restarted",
    );
    server.wait_online(false, Duration::from_secs(30));
    server.assert_running();
}
