//! Moderators, timeouts and the persisted history end to end (issue 14): the real `selfcast`
//! binary, real websocket clients (`tungstenite`) and the HTTP APIs through `ureq`.
//!
//! - The owner promotes a chat user; the moderator hides another's message from the chat's own
//!   endpoint and every client gets VISIBILITY-UPDATE; a normal user's identical request is
//!   refused (403) and changes nothing; the rules of who may moderate whom hold.
//! - A timeout refuses messages and names with the time it ends, tells the user's open pages,
//!   and ends by itself (polled with a deadline, never slept on).
//! - A restart on the same data_dir keeps the history (hidden ones hidden), moderators,
//!   timeouts and bans; a torn history file is skipped past with a warning.
//! - The attacker's view: garbage, oversized and out-of-bounds requests to the moderator
//!   endpoints, and unknown ids, change nothing and tell nobody anything.
//!
//! "Nothing was broadcast" is checked with a marker: the streamer posts after the action, and
//! since every event goes out through the hub in one order, whatever the action sent would
//! arrive before the marker.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::chat::*;
use common::raw_http::announce_body;
use common::ws::WsClient;
use common::{Resp, Server, ServerOptions};

/// A moderator endpoint under `/api/chat/` with `?accessToken=token` (none: no query string).
fn moderate(server: &Server, path: &str, token: Option<&str>, body: &str) -> Resp {
    let query = token.map_or(String::new(), |t| format!("?accessToken={t}"));
    request(
        "POST",
        &server.url(&format!("/api/chat{path}{query}")),
        Some(body),
        None,
    )
}

/// `POST /api/chat/users/setenabled` as the user with `token`.
fn set_enabled_as(server: &Server, token: &str, user_id: &str, enabled: bool) -> Resp {
    let body = json!({ "userId": user_id, "enabled": enabled }).to_string();
    moderate(server, "/users/setenabled", Some(token), &body)
}

/// `POST /api/chat/users/timeout` as the user with `token`.
fn time_out_as(server: &Server, token: &str, user_id: &str, minutes: u32) -> Resp {
    let body = json!({ "userId": user_id, "minutes": minutes }).to_string();
    moderate(server, "/users/timeout", Some(token), &body)
}

fn hide_body<S: AsRef<str>>(ids: &[S]) -> String {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    json!({ "idArray": ids, "visible": false }).to_string()
}

fn promote(server: &Server, user: &Registered, moderator: bool) -> Value {
    admin_ok(
        server,
        "/chat/users/setmoderator",
        json!({ "userId": user.id, "isModerator": moderator }),
    )
}

/// The streamer posts `marker`; returns what `client` received up to it.
fn until_marker(server: &Server, clients: &mut [&mut WsClient], marker: &str) -> Vec<Vec<Value>> {
    admin_ok(server, "/chat/send", json!({ "body": marker }));
    clients
        .iter_mut()
        .map(|c| c.until(&format!("the marker {marker:?}"), |v| v["body"] == marker))
        .collect()
}

fn no_visibility_update(seen: &[Vec<Value>], what: &str) {
    for events in seen {
        assert!(
            !events.iter().any(|v| v["type"] == "VISIBILITY-UPDATE"),
            "{what}: a VISIBILITY-UPDATE went out: {events:?}"
        );
    }
}

fn history_ids(server: &Server) -> Vec<String> {
    history(server)
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

/// Posts `body` from `client` and returns the id the server gave it.
fn say(client: &mut WsClient, body: &str) -> String {
    client.chat(body);
    client.expect_chat(body)["id"]
        .as_str()
        .expect("a CHAT id")
        .to_string()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_moderator_moderates_from_the_chat_and_a_normal_users_same_request_is_refused() {
    let mut server = start("rate_burst = 100\n");
    let (mo, ann, bob) = (
        register(&server, Some("Mo")),
        register(&server, Some("Ann")),
        register(&server, Some("Bob")),
    );
    let mut m = join_as(&server, &mo, "Mo");
    let mut a = join_as(&server, &ann, "Ann");
    let mut b = join_as(&server, &bob, "Bob");
    let (mut w, _) = join(&server, None, "watcher");
    let a1 = say(&mut a, "a1");
    let b1 = say(&mut b, "b1");
    for c in [&mut m, &mut w] {
        c.expect_chat("b1");
    }

    // Not a moderator yet: refused, nothing hidden, nobody told.
    for (token, want) in [
        (Some(ann.token.as_str()), 403),
        (Some(mo.token.as_str()), 403),
    ] {
        let r = moderate(&server, "/messagevisibility", token, &hide_body(&[&b1]));
        assert_eq!(r.status, want, "{}", r.text());
        assert!(r.json()["error"].is_string(), "{}", r.text());
    }
    for token in [None, Some(""), Some("not-a-token")] {
        let r = moderate(&server, "/messagevisibility", token, &hide_body(&[&b1]));
        assert_eq!(r.status, 401, "token {token:?}: {}", r.text());
    }
    let r = set_enabled_as(&server, &ann.token, &bob.id, false);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = time_out_as(&server, &ann.token, &bob.id, 5);
    assert_eq!(r.status, 403, "{}", r.text());
    // The same over the websocket: not an event the server takes.
    a.send_text(&json!({ "type": "VISIBILITY-UPDATE", "ids": [b1], "visible": false }).to_string())
        .unwrap();
    assert_eq!(
        a.expect_type("ERROR_INVALID_MESSAGE")["type"],
        "ERROR_INVALID_MESSAGE"
    );
    let seen = until_marker(&server, &mut [&mut w, &mut b], "marker 1");
    no_visibility_update(&seen, "a normal user's requests");
    assert!(history_ids(&server).contains(&b1));
    b.chat("Bob is not banned");
    w.expect_chat("Bob is not banned");

    // Promoted: Mo's pages learn it (a new CONNECTED_USER_INFO), nobody else gets one.
    let promoted = promote(&server, &mo, true);
    assert_eq!(
        promoted["user"]["scopes"],
        json!(["MODERATOR"]),
        "{promoted}"
    );
    let info = m.expect_type("CONNECTED_USER_INFO");
    assert_eq!(info["user"]["id"], mo.id.as_str(), "{info}");
    assert_eq!(info["user"]["scopes"], json!(["MODERATOR"]), "{info}");
    assert!(info.get("accessToken").is_none(), "{info}");
    let seen = until_marker(&server, &mut [&mut w], "marker 2");
    assert!(
        !seen[0].iter().any(|v| v["type"] == "CONNECTED_USER_INFO"),
        "{:?}",
        seen[0]
    );
    let moderators = admin_get(&server, "/chat/users/moderators");
    assert_eq!(moderators.as_array().map(Vec::len), Some(1), "{moderators}");
    assert_eq!(moderators[0]["id"], mo.id.as_str());
    // Their messages carry the scope.
    say(&mut m, "mod here");
    assert_eq!(
        w.expect_chat("mod here")["user"]["scopes"],
        json!(["MODERATOR"])
    );

    // The moderator hides Bob's message: everyone is told, the history drops it, the
    // moderation view keeps it with when and by whom.
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&b1]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["known"], 1);
    for c in [&mut m, &mut a, &mut b, &mut w] {
        let update = c.expect_type("VISIBILITY-UPDATE");
        assert_eq!(update["ids"], json!([b1]), "{}: {update}", c.label);
        assert_eq!(update["visible"], false);
    }
    assert!(!history_ids(&server).contains(&b1));
    let kept = admin_get(&server, "/chat/messages");
    let hidden = kept
        .as_array()
        .and_then(|all| all.iter().find(|v| v["id"] == b1.as_str()))
        .unwrap_or_else(|| panic!("b1 not in the moderation view: {kept}"));
    assert_eq!(hidden["visible"], false, "{hidden}");
    assert_eq!(hidden["hiddenBy"], mo.id.as_str(), "{hidden}");
    assert!(humantime::parse_rfc3339(hidden["hiddenAt"].as_str().unwrap_or("")).is_ok());
    assert_eq!(hidden["body"], "b1");
    let shown = kept
        .as_array()
        .and_then(|all| all.iter().find(|v| v["id"] == a1.as_str()))
        .expect("a1 in the moderation view");
    assert_eq!(shown["visible"], true, "{shown}");
    assert!(shown.get("hiddenAt").is_none(), "{shown}");

    // Undoing is the owner's; the streamer's messages are the owner's to hide.
    let show = json!({ "idArray": [b1], "visible": true }).to_string();
    let r = moderate(&server, "/messagevisibility", Some(&mo.token), &show);
    assert_eq!(r.status, 403, "{}", r.text());
    let streamer_id = admin_ok(
        &server,
        "/chat/send",
        json!({ "body": "from the streamer" }),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&a1, &streamer_id]),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let seen = until_marker(&server, &mut [&mut w], "marker 3");
    no_visibility_update(&seen, "refused hides");
    let ids = history_ids(&server);
    assert!(ids.contains(&a1) && ids.contains(&streamer_id) && !ids.contains(&b1));

    // A timeout: Ann's pages are told until when; her messages and names are refused.
    let r = time_out_as(&server, &mo.token, &ann.id, 5);
    assert_eq!(r.status, 200, "{}", r.text());
    let until = r.json()["user"]["timedOutUntil"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no timedOutUntil: {}", r.text()));
    let left = humantime::parse_rfc3339(&until).expect("RFC 3339");
    let minutes = left
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .as_secs_f64()
        / 60.0;
    assert!((4.0..=5.1).contains(&minutes), "{minutes} minutes left");
    let info = a.expect_type("CONNECTED_USER_INFO");
    assert_eq!(info["user"]["timedOutUntil"], until.as_str(), "{info}");
    let notice = a.expect_type("ERROR_TIMED_OUT");
    assert_eq!(notice["until"], until.as_str(), "{notice}");
    a.chat("let me talk");
    let refused = a.expect_type("ERROR_TIMED_OUT");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("until"), "{refused}");
    a.rename("Annie");
    a.expect_type("ERROR_TIMED_OUT");
    let seen = until_marker(&server, &mut [&mut w], "marker 4");
    assert!(
        !seen[0]
            .iter()
            .any(|v| v["body"] == "let me talk" || v["type"] == "NAME_CHANGE"),
        "{:?}",
        seen[0]
    );
    // A moderator never shortens a timeout, and lifting one is the owner's.
    let r = time_out_as(&server, &mo.token, &ann.id, 1);
    assert_eq!(
        r.json()["user"]["timedOutUntil"],
        until.as_str(),
        "{}",
        r.text()
    );
    let r = time_out_as(&server, &mo.token, &ann.id, 0);
    assert_eq!(r.status, 403, "{}", r.text());

    // Who may be restricted: not the streamer, not oneself, not another moderator.
    let cy = register(&server, Some("Cy"));
    promote(&server, &cy, true);
    for target in ["streamer", mo.id.as_str(), cy.id.as_str()] {
        for (path, body) in [
            (
                "/users/setenabled",
                json!({ "userId": target, "enabled": false }),
            ),
            ("/users/timeout", json!({ "userId": target, "minutes": 5 })),
        ] {
            let r = moderate(&server, path, Some(&mo.token), &body.to_string());
            assert_eq!(r.status, 403, "{path} {target}: {}", r.text());
        }
    }
    let say_cy = {
        let mut c = join_as(&server, &cy, "Cy");
        let id = say(&mut c, "cy's words");
        c.close();
        id
    };
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&say_cy]),
    );
    assert_eq!(r.status, 403, "another moderator's message: {}", r.text());

    // The moderator bans Bob: his page is closed, his messages go; enabling is the owner's.
    let r = set_enabled_as(&server, &mo.token, &bob.id, false);
    assert_eq!(r.status, 200, "{}", r.text());
    let (events, closed) = b.expect_closed();
    assert!(
        events.iter().any(|v| v["type"] == "ERROR_USER_DISABLED"),
        "{events:?}"
    );
    assert_eq!(closed.code(), Some(1008), "{closed:?}");
    let r = set_enabled_as(&server, &mo.token, &bob.id, true);
    assert_eq!(r.status, 403, "{}", r.text());
    let disabled = admin_get(&server, "/chat/users/disabled");
    assert_eq!(disabled[0]["id"], bob.id.as_str(), "{disabled}");

    // Demoted, or disabled, a moderator has no powers left.
    promote(&server, &mo, false);
    let info = m.expect_type("CONNECTED_USER_INFO");
    assert!(info["user"].get("scopes").is_none(), "{info}");
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&a1]),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    admin_ok(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": cy.id, "enabled": false }),
    );
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&cy.token),
        &hide_body(&[&a1]),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(history_ids(&server).contains(&a1));

    for c in [m, a, w] {
        c.close();
    }
    assert_still_serving(&mut server);
}

#[test]
fn a_timeout_ends_by_itself_and_the_owner_can_lift_one() {
    let mut server = start("rate_burst = 100\nrate_per_second = 10.0\n");
    let (tim, ted) = (
        register(&server, Some("Tim")),
        register(&server, Some("Ted")),
    );
    let mut t = join_as(&server, &tim, "Tim");
    let mut d = join_as(&server, &ted, "Ted");
    let until = admin_ok(
        &server,
        "/chat/users/timeout",
        json!({ "userId": tim.id, "minutes": 1 }),
    )["user"]["timedOutUntil"]
        .as_str()
        .map(str::to_string)
        .expect("timedOutUntil");
    admin_ok(
        &server,
        "/chat/users/timeout",
        json!({ "userId": ted.id, "minutes": 30 }),
    );
    for c in [&mut t, &mut d] {
        c.expect_type("ERROR_TIMED_OUT");
    }
    // The owner lifts Ted's at once.
    let lifted = admin_ok(
        &server,
        "/chat/users/timeout",
        json!({ "userId": ted.id, "minutes": 0 }),
    );
    assert!(lifted["user"].get("timedOutUntil").is_none(), "{lifted}");
    let info = d.expect("the CONNECTED_USER_INFO without a timeout", |v| {
        v["type"] == "CONNECTED_USER_INFO" && v["user"].get("timedOutUntil").is_none()
    });
    assert_eq!(info["user"]["id"], ted.id.as_str());
    say(&mut d, "Ted again");

    // Tim's ends by itself: poll, once a second, until a message goes through.
    let end = humantime::parse_rfc3339(&until).expect("RFC 3339");
    let deadline = Instant::now() + Duration::from_secs(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let body = format!("try {attempt}");
        t.chat(&body);
        let answer = t.expect(&format!("an answer to {body:?}"), |v| {
            v["body"] == body.as_str() || v["type"] == "ERROR_TIMED_OUT"
        });
        if answer["type"] == "CHAT" {
            assert!(
                std::time::SystemTime::now() >= end,
                "a message went through before {until}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the 1-minute timeout (until {until}) had not ended after {attempt} tries"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    t.close();
    d.close();
    assert_still_serving(&mut server);
}

#[test]
fn history_moderators_timeouts_and_bans_survive_a_restart_and_a_torn_history_file() {
    let data = tempfile::Builder::new()
        .prefix("selfcast-chat-moderation-")
        .tempdir()
        .expect("tempdir");
    let opts = ServerOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..options("rate_burst = 100\nhistory_messages = 4\n")
    };
    let mut server = Server::start(opts.clone());
    let (mo, tim, bob) = (
        register(&server, Some("Mo")),
        register(&server, Some("Tim")),
        register(&server, Some("Bob")),
    );
    promote(&server, &mo, true);
    let mut m = join_as(&server, &mo, "Mo");
    let mut b = join_as(&server, &bob, "Bob");
    let first = say(&mut m, "falls out of the history");
    let ids: Vec<String> = ["one", "two (hidden)", "three", "four"]
        .iter()
        .map(|body| say(&mut m, body))
        .collect();
    let bobs = say(&mut b, "bob's words");
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&ids[1]]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    admin_ok(
        &server,
        "/chat/users/timeout",
        json!({ "userId": tim.id, "minutes": 60 }),
    );
    admin_ok(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": bob.id, "enabled": false }),
    );
    let before = history(&server);
    let kept_before = admin_get(&server, "/chat/messages");
    assert_eq!(bodies(&before), ["three", "four"], "{before:?}");
    m.close();

    let restart = |server: &mut Server| {
        server.interrupt();
        assert!(
            server.wait_exit(Duration::from_secs(20)).is_some(),
            "the server did not stop on SIGINT"
        );
    };
    restart(&mut server);
    drop(server);
    let mut server = Server::start(opts.clone());

    // The same history (hidden ones hidden, as the moderation view shows), by HTTP and socket.
    assert_eq!(history(&server), before);
    let kept = admin_get(&server, "/chat/messages");
    assert_eq!(kept, kept_before);
    let kept_ids: Vec<&str> = kept
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert_eq!(
        kept_ids,
        [ids[1].as_str(), &ids[2], &ids[3], &bobs],
        "{kept}"
    );
    assert!(!kept_ids.contains(&first.as_str()));
    let (mut w, pushed) = join_with_history(&server, "after the restart");
    assert_eq!(pushed, before, "the history pushed on /ws");
    // The moderator still is one; the timeout and the ban still hold.
    let moderators = admin_get(&server, "/chat/users/moderators");
    assert_eq!(moderators[0]["id"], mo.id.as_str(), "{moderators}");
    let (mut t, info) = join(&server, Some(&tim.token), "Tim");
    assert!(info["user"]["timedOutUntil"].is_string(), "{info}");
    t.chat("am I back?");
    t.expect_type("ERROR_TIMED_OUT");
    refused(&server, Some(&bob.token), "ERROR_USER_DISABLED", "Bob");
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&[&ids[2]]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    w.expect_type("VISIBILITY-UPDATE");
    let before = history(&server);
    t.close();
    w.close();

    // A crash mid-append: the last line is torn inside a character ("é" is two bytes).
    restart(&mut server);
    drop(server);
    let path = data.path().join("chat").join("history.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(b"{\"op\":\"chat\",\"id\":\"x-1\",\"user\":\"u\",\"event\":\"caf\xc3")
        .unwrap();
    drop(file);
    let mut server = Server::start(opts);
    assert_eq!(history(&server), before);
    let logs = common::strip_ansi(&format!("{}{}", server.stdout(), server.stderr()));
    assert!(
        logs.contains("skipping an unreadable record of the chat history"),
        "no warning about the torn line:\n{logs}"
    );
    assert_still_serving(&mut server);
}

#[test]
fn garbage_to_the_moderator_endpoints_harms_nothing() {
    let mut server = start("rate_burst = 100\n");
    let (mo, ann) = (
        register(&server, Some("Mo")),
        register(&server, Some("Ann")),
    );
    promote(&server, &mo, true);
    let mut a = join_as(&server, &ann, "Ann");
    let (mut w, _) = join(&server, None, "watcher");
    let a1 = say(&mut a, "a1");
    let before = admin_get(&server, "/chat/messages");

    let too_many: Vec<String> = (0..101).map(|n| format!("1-{n}")).collect();
    let long_id = "1".repeat(65);
    let cases: Vec<(&str, String, u16)> = vec![
        ("/messagevisibility", "not json".into(), 400),
        ("/messagevisibility", "{}".into(), 400),
        (
            "/messagevisibility",
            json!({ "idArray": a1, "visible": false }).to_string(),
            400,
        ),
        (
            "/messagevisibility",
            json!({ "idArray": [1, 2], "visible": false }).to_string(),
            400,
        ),
        (
            "/messagevisibility",
            json!({ "idArray": too_many, "visible": false }).to_string(),
            400,
        ),
        (
            "/messagevisibility",
            json!({ "idArray": [long_id], "visible": false }).to_string(),
            400,
        ),
        (
            "/users/setenabled",
            json!({ "userId": 7, "enabled": false }).to_string(),
            400,
        ),
        (
            "/users/setenabled",
            json!({ "userId": "nobody", "enabled": false }).to_string(),
            404,
        ),
        (
            "/users/timeout",
            json!({ "userId": ann.id, "minutes": -1 }).to_string(),
            400,
        ),
        (
            "/users/timeout",
            json!({ "userId": ann.id, "minutes": 1441 }).to_string(),
            400,
        ),
        (
            "/users/timeout",
            json!({ "userId": ann.id, "minutes": 1e9 }).to_string(),
            400,
        ),
        (
            "/users/timeout",
            json!({ "userId": ann.id, "minutes": "5" }).to_string(),
            400,
        ),
        (
            "/users/timeout",
            json!({ "userId": "nobody", "minutes": 5 }).to_string(),
            404,
        ),
        ("/users/timeout", "[".repeat(10_000), 400),
    ];
    for (path, body, want) in &cases {
        let r = moderate(&server, path, Some(&mo.token), body);
        assert_eq!(
            r.status,
            *want,
            "{path} {}: {}",
            &body[..body.len().min(80)],
            r.text()
        );
    }
    // Over 16 KiB: refused before it is read.
    let path = format!("/api/chat/messagevisibility?accessToken={}", mo.token);
    let json_type = [("Content-Type", "application/json")];
    assert_eq!(announce_body(&server, &path, &json_type, 17 * 1024), 413);
    // The admin's own endpoint is bounded the same way.
    let r = admin_post(
        &server,
        "/chat/messagevisibility",
        json!({ "idArray": (0..101).map(|n| format!("1-{n}")).collect::<Vec<_>>(), "visible": false }),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Ids the server does not keep: nothing changes, and a moderator's tell nobody anything.
    let r = moderate(
        &server,
        "/messagevisibility",
        Some(&mo.token),
        &hide_body(&["1-999999", "made-up"]),
    );
    assert_eq!(
        (r.status, r.json()["known"].clone()),
        (200, json!(0)),
        "{}",
        r.text()
    );
    let seen = until_marker(&server, &mut [&mut w], "marker");
    no_visibility_update(&seen, "garbage and unknown ids");
    let mut after = admin_get(&server, "/chat/messages");
    // The marker is the one new message.
    after.as_array_mut().unwrap().pop();
    assert_eq!(after, before);
    a.chat("Ann is fine");
    w.expect_chat("Ann is fine");
    a.close();
    w.close();
    assert_still_serving(&mut server);
}
