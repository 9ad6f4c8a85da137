//! The console's stream health (`GET /api/admin/health`, issue 14) through the real binary:
//! the server's own memory and CPU from /proc, and the viewers over a broadcast with a real
//! HLS client (this test, loading the media playlist as a player does) watching an `ffmpeg`
//! publish; the history is kept once the stream ends, for the owner to look back at.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;

use common::raw_http::{basic, send};
use common::{fixture, http_get, poll_until, Publisher, Server, ServerOptions};

const PASSWORD: &str = "stream-health-test-pw-14";

fn health(server: &Server) -> Value {
    let reply = send(
        server,
        Ipv4Addr::LOCALHOST,
        "GET",
        "/api/admin/health",
        &[("Authorization", &basic("admin", PASSWORD))],
        "",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

#[test]
fn health_reports_the_process_and_the_viewers_over_the_broadcast() {
    let server = Server::start(ServerOptions {
        extra_toml: format!("\n[admin]\npassword = \"{PASSWORD}\"\n"),
        ..ServerOptions::default()
    });
    let before = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        Some(health(&server)).filter(|h| h["memoryBytes"].is_u64())
    })
    .expect("a memory reading within a sample");
    assert!(
        before["memoryBytes"].as_u64().unwrap() > 4 << 20,
        "{before}"
    );
    assert!(before["cores"].as_u64().unwrap() >= 1, "{before}");
    assert_eq!(
        before["viewers"]["samples"],
        Value::Array(vec![]),
        "{before}"
    );
    assert_eq!(before["viewers"]["broadcastStart"], Value::Null, "{before}");

    let mut publisher = Publisher::start(
        "ffmpeg",
        &fixture().path,
        &server.publish_url(),
        &["-t", "12"],
    );
    server.wait_online(true, Duration::from_secs(30));
    let media_playlist = server.url("/hls/0/stream.m3u8");
    // Watch (reload the media playlist) until a sample has counted this viewer and the CPU
    // of transcoding has been measured.
    let live = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        let _ = http_get(&media_playlist);
        let h = health(&server);
        let watched = h["viewers"]["samples"]
            .as_array()
            .is_some_and(|samples| samples.iter().any(|s| s["viewers"] == 1));
        (watched && h["cpuPercent"].as_f64().is_some_and(|cpu| cpu > 0.0)).then_some(h)
    })
    .unwrap_or_else(|| panic!("no viewer sample and CPU reading: {}", health(&server)));
    assert_eq!(live["viewers"]["now"], 1, "{live}");
    assert_eq!(live["viewers"]["peak"], 1, "{live}");
    assert!(live["cpuPercent"].as_f64().unwrap() <= 100.0, "{live}");
    assert!(live["viewers"]["broadcastStart"].is_string(), "{live}");
    assert_eq!(live["viewers"]["sampleSeconds"], 5);
    // The input's frame rate, by the source's timestamps (ffmpeg -re sends it as it plays).
    let input = &server.status()["input"];
    let fps = input["frameRate"]
        .as_f64()
        .unwrap_or_else(|| panic!("{input}"));
    assert!(
        (fps - f64::from(fixture().fps)).abs() < 0.5,
        "input frame rate {fps}, the fixture's {}",
        fixture().fps
    );

    publisher.expect_success(Duration::from_secs(60), "ffmpeg publishing for 12 s");
    server.wait_online(false, Duration::from_secs(30));
    let after = health(&server);
    assert_eq!(
        after["viewers"]["broadcastStart"], live["viewers"]["broadcastStart"],
        "the last broadcast's history is kept: {after}"
    );
    assert!(
        after["viewers"]["samples"].as_array().unwrap().len()
            >= live["viewers"]["samples"].as_array().unwrap().len()
    );
    assert_eq!(after["viewers"]["peak"], 1);
}
