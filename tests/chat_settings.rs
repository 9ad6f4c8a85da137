//! The chat's live settings (issue 14: `POST /api/admin/settings/chat`) through the real binary
//! and real websocket clients: slow mode, the message length and the streamer's name apply to
//! the chat already open, bad values are refused with their field and change nothing, Owncast's
//! on/off switch is the same setting, and all of it outlives a restart.

mod common;

use serde_json::json;

use common::chat::{self, admin_get, admin_ok, admin_post, join_as, register, register_raw};
use common::{http_get, Server, ServerOptions};

fn start(data_dir: &std::path::Path) -> Server {
    Server::start(ServerOptions {
        data_dir: Some(data_dir.to_owned()),
        ..chat::options("rate_burst = 1000")
    })
}

fn status(server: &Server) -> serde_json::Value {
    http_get(&server.url("/api/status")).unwrap().json()
}

#[test]
fn chat_settings_apply_to_the_open_chat_and_outlive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let viewer = register(&server, Some("Viewer"));
    let mut c = join_as(&server, &viewer, "viewer");

    let changed = admin_ok(
        &server,
        "/settings/chat",
        json!({"slowModeSeconds": 600, "maxMessageChars": 20, "streamerName": " Host Name "}),
    );
    assert_eq!(
        changed["chat"]["values"]["streamerName"], "Host Name",
        "{changed}"
    );
    assert_eq!(changed["chat"]["sources"]["slowModeSeconds"], "console");
    assert_eq!(changed["chat"]["sources"]["maxConnections"], "default");

    // The connection opened before the change is held to it.
    c.chat("first");
    c.expect_chat("first");
    c.chat("second");
    let slowed = c.expect_type("ERROR_RATE_LIMITED");
    assert!(
        slowed["message"].as_str().unwrap().contains("slow mode"),
        "{slowed}"
    );
    c.chat(&"x".repeat(21));
    c.expect_type("ERROR_MESSAGE_TOO_LONG");
    assert_eq!(status(&server)["chatMaxMessageChars"], 20);
    admin_ok(&server, "/chat/send", json!({"body": "hello"}));
    let own = c.expect_chat("hello");
    assert_eq!(own["user"]["displayName"], "Host Name", "{own}");
    let taken = register_raw(&server, &json!({"displayName": "Host Name"}).to_string());
    assert_eq!(
        taken.status,
        400,
        "the new streamer name is reserved: {}",
        taken.text()
    );

    // Bad values: the field at fault, nothing saved.
    for (body, field) in [
        (json!({"maxMessageChars": 0}), "maxMessageChars"),
        (json!({"slowModeSeconds": "ten"}), "slowModeSeconds"),
        (json!({"maxConnections": 2_000_000}), "maxConnections"),
        (json!({"streamerName": ""}), "streamerName"),
        (json!({"slowMode": 5}), "slowMode"),
        (json!({"slowModeSeconds": 5, "enabled": 1}), "enabled"),
    ] {
        let refused = admin_post(&server, "/settings/chat", body.clone());
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
        assert_eq!(refused.json()["field"], field, "{body}");
    }
    let not_an_object = admin_post(&server, "/settings/chat", json!([1, 2]));
    assert_eq!(not_an_object.status, 400);
    let now = admin_get(&server, "/settings");
    assert_eq!(now["chat"]["values"]["slowModeSeconds"], 600, "{now}");

    // Owncast's switch is the `enabled` setting.
    admin_ok(&server, "/config/chat/disable", json!({"value": true}));
    c.expect_type("SYSTEM");
    let now = admin_get(&server, "/settings");
    assert_eq!(now["chat"]["values"]["enabled"], false, "{now}");
    assert_eq!(now["chat"]["sources"]["enabled"], "console");
    drop(c);
    drop(server);

    let server = start(data.path());
    assert_eq!(status(&server)["chatEnabled"], false);
    assert_eq!(status(&server)["chatMaxMessageChars"], 20);
    let again = admin_get(&server, "/settings");
    assert_eq!(
        again["chat"]["values"]["streamerName"], "Host Name",
        "{again}"
    );
    assert!(again["problems"].as_array().unwrap().is_empty(), "{again}");
    // Back to config.toml's value with null.
    let reset = admin_ok(&server, "/settings/chat", json!({"maxMessageChars": null}));
    assert_eq!(reset["chat"]["values"]["maxMessageChars"], 500);
    assert_eq!(reset["chat"]["sources"]["maxMessageChars"], "default");
}
