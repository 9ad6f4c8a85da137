//! Several stream keys, managed live through the admin API (issue 14), against the real binary:
//! the first start's generated key is listed masked and revealed on request; a key added with a
//! comment publishes at once; revoking or regenerating a key disconnects the publisher using it
//! (ffmpeg publishing as OBS would) and the old value is refused from then on; "Disconnect the
//! publisher" ends a live publish; everything outlives a restart; bad requests change nothing.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::rtmp::RtmpPublisher;
use common::{fixture, poll_until, Publisher, Server, ServerOptions};

const PASSWORD: &str = "stream-keys-test-pw-14";

fn start(data_dir: &std::path::Path, config_key: Option<&str>) -> Server {
    Server::start(ServerOptions {
        stream_key: config_key.map(str::to_owned),
        data_dir: Some(data_dir.to_owned()),
        extra_toml: format!("\n[admin]\npassword = \"{PASSWORD}\"\n"),
        ..ServerOptions::default()
    })
}

fn admin(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent = common::agent();
    let url = server.url(&format!("/api/admin{path}"));
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{PASSWORD}")
        )
    );
    let request = agent
        .request(method, &url)
        .set("Authorization", &auth)
        .set("Content-Type", "application/json");
    let result = match body {
        Some(body) => request.send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
    (status, json)
}

fn keys(server: &Server) -> Value {
    let (status, listed) = admin(server, "GET", "/streamkeys", None);
    assert_eq!(status, 200, "{listed}");
    listed
}

fn reveal(server: &Server, id: &str) -> String {
    let (status, body) = admin(
        server,
        "POST",
        "/streamkeys/reveal",
        Some(json!({ "id": id })),
    );
    assert_eq!(status, 200, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// Polls the key list until the live publisher is `want` (its key id, or none).
fn wait_publisher(server: &Server, want: Option<&str>) -> Value {
    poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let listed = keys(server);
        let now = listed["publisher"]["keyId"].as_str().map(str::to_owned);
        (now.as_deref() == want).then_some(listed)
    })
    .unwrap_or_else(|| panic!("the publisher did not become {want:?}: {}", keys(server)))
}

#[test]
fn keys_are_added_revealed_revoked_and_outlive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), None);
    let listed = keys(&server);
    let first = &listed["keys"][0];
    let first_id = first["id"].as_str().unwrap().to_owned();
    let first_key = reveal(&server, &first_id);
    assert_eq!(first_key.len(), 32);
    assert_eq!(first["masked"], format!("{}…", &first_key[..4]));
    assert!(
        !listed.to_string().contains(&first_key),
        "listed only masked: {listed}"
    );
    assert_eq!(listed["publisher"], Value::Null);

    let (status, created) = admin(
        &server,
        "POST",
        "/streamkeys/create",
        Some(json!({ "comment": "guest" })),
    );
    assert_eq!(status, 200, "{created}");
    let guest_id = created["key"]["id"].as_str().unwrap().to_owned();
    let guest_key = created["key"]["key"].as_str().unwrap().to_owned();

    // Either key publishes; the console shows which one is in use and from where.
    let publisher = RtmpPublisher::connect(server.rtmp_port, "live", &guest_key)
        .expect("the new key publishes at once");
    let listed = wait_publisher(&server, Some(&guest_id));
    assert_eq!(listed["publisher"]["address"], "127.0.0.1");
    let in_use: Vec<bool> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["inUse"].as_bool().unwrap())
        .collect();
    assert_eq!(in_use, [false, true]);
    drop(publisher);
    wait_publisher(&server, None);

    let (status, renamed) = admin(
        &server,
        "POST",
        "/streamkeys/comment",
        Some(json!({ "id": guest_id, "comment": "guest (Ana)" })),
    );
    assert_eq!(status, 200, "{renamed}");

    // Bad requests: nothing changes.
    for (path, body, want) in [
        (
            "/streamkeys/create",
            json!({ "comment": "x".repeat(65) }),
            400,
        ),
        ("/streamkeys/create", json!({ "comment": 7 }), 400),
        ("/streamkeys/revoke", json!({ "id": "no-such-key" }), 404),
        ("/streamkeys/reveal", json!({ "id": "no-such-key" }), 404),
        ("/streamkeys/regenerate", json!({}), 400),
    ] {
        let (status, body) = admin(&server, "POST", path, Some(body.clone()));
        assert_eq!(status, want, "{path} {body}");
    }
    assert_eq!(keys(&server)["keys"].as_array().unwrap().len(), 2);
    drop(server);

    let server = start(data.path(), None);
    let listed = keys(&server);
    assert_eq!(listed["keys"][1]["comment"], "guest (Ana)", "{listed}");
    assert_eq!(
        reveal(&server, &first_id),
        first_key,
        "the first key is the same"
    );
    let (status, _) = admin(
        &server,
        "POST",
        "/streamkeys/revoke",
        Some(json!({ "id": guest_id })),
    );
    assert_eq!(status, 200);
    let refused = RtmpPublisher::connect(server.rtmp_port, "live", &guest_key)
        .err()
        .expect("a revoked key is refused");
    assert!(refused.contains("wrong stream key"), "{refused}");
    RtmpPublisher::connect(server.rtmp_port, "live", &first_key)
        .expect("the other key still publishes")
        .finish()
        .unwrap();
}

#[test]
fn revoking_the_key_in_use_disconnects_the_encoder() {
    let fx = fixture();
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), Some(common::TEST_KEY));
    let listed = keys(&server);
    assert_eq!(listed["keys"][0]["id"], "config");
    assert_eq!(listed["keys"][0]["fromConfig"], true);
    let (status, body) = admin(
        &server,
        "POST",
        "/streamkeys/revoke",
        Some(json!({ "id": "config" })),
    );
    assert_eq!(status, 409, "only config.toml changes its key: {body}");

    let (_, created) = admin(
        &server,
        "POST",
        "/streamkeys/create",
        Some(json!({ "comment": "OBS laptop" })),
    );
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let key = created["key"]["key"].as_str().unwrap().to_owned();
    let mut encoder = Publisher::start(
        "ffmpeg with the laptop key",
        &fx.path,
        &server.rtmp_url(&key),
        &[],
    );
    server.wait_online(true, Duration::from_secs(30));
    wait_publisher(&server, Some(&id));

    let (status, body) = admin(
        &server,
        "POST",
        "/streamkeys/regenerate",
        Some(json!({ "id": id })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disconnected"], true);
    let renewed = body["key"]["key"].as_str().unwrap().to_owned();
    assert_ne!(renewed, key);
    // Cut off: an error exit (a clip played to its end exits 0), and the server says why.
    let exit = encoder.wait(Duration::from_secs(20));
    let exit = exit.unwrap_or_else(|| panic!("ffmpeg is still publishing:\n{}", encoder.log()));
    assert!(
        !exit.success(),
        "ffmpeg was not cut off: {exit}\n{}",
        encoder.log()
    );
    assert!(
        server.stderr().contains("disconnecting the publisher"),
        "{}",
        server.stderr()
    );
    server.wait_online(false, Duration::from_secs(20));
    let refused = RtmpPublisher::connect(server.rtmp_port, "live", &key)
        .err()
        .expect("the old value is refused");
    assert!(refused.contains("wrong stream key"), "{refused}");

    // "Disconnect the publisher": the live publish ends, the key stays.
    let publisher = RtmpPublisher::connect(server.rtmp_port, "live", &renewed).unwrap();
    wait_publisher(&server, Some(&id));
    let (status, body) = admin(&server, "POST", "/publisher/disconnect", Some(json!({})));
    assert_eq!(
        (status, body["disconnected"].clone()),
        (200, json!(true)),
        "{body}"
    );
    wait_publisher(&server, None);
    drop(publisher);
    let (_, body) = admin(&server, "POST", "/publisher/disconnect", Some(json!({})));
    assert_eq!(body["disconnected"], false, "nobody to disconnect");
    RtmpPublisher::connect(server.rtmp_port, "live", &renewed)
        .expect("the key still publishes")
        .finish()
        .unwrap();
}
