//! The live chat end to end: the real `selfcast` binary, real websocket clients (`tungstenite`,
//! blocking, every read bounded by a timeout) and the HTTP API through `ureq`.
//!
//! Issue 5, "Tests": messages reach everyone in order, names, history on join, limits (length,
//! rate, connection caps), hide, ban, admin auth refused without the password. Every test starts
//! its own server with the `[chat]` limits it needs, and ends by checking that the server still
//! answers and that a fresh client can chat (bad input never hurts the server).
//!
//! Nothing here measures time: waits poll with a deadline and fail with everything the client
//! received. The one rate-limit check that depends on the clock (tokens refill at
//! `rate_per_second`) allows for the refill of however long the burst took.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::Message;

use common::chat::*;
use common::ws::{Closed, Next, WsClient, WAIT};
use common::{agent, poll_until, Server, ServerOptions};

// ---------------------------------------------------------------------------------------------
// 1. Register and connect

#[test]
fn register_then_connect_with_or_without_a_token() {
    let mut server = start("");

    let ana = register(&server, Some("Ana"));
    assert_eq!(ana.name, "Ana");
    // CHAT.md §2, §3: ids are 16 hex digits, tokens 32 letters and digits.
    assert!(
        ana.id.len() == 16 && ana.id.chars().all(|c| c.is_ascii_hexdigit()),
        "{ana:?}"
    );
    assert!(
        ana.token.len() == 32 && ana.token.chars().all(|c| c.is_ascii_alphanumeric()),
        "{ana:?}"
    );
    let random = register(&server, None);
    let random2 = register(&server, None);
    let random3 = {
        let r = register_raw(&server, "{}");
        assert_eq!(r.status, 200, "register {{}}: {}", r.text());
        r.json()
    };
    assert!(random3["displayName"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    for other in [&random, &random2] {
        assert_ne!(other.id, ana.id);
        assert_ne!(other.token, ana.token);
    }
    assert_ne!(random.id, random2.id);
    assert_ne!(random.token, random2.token);
    for body in [r#"{"displayName":"   "}"#, r#"{"displayName":null}"#, "  "] {
        let r = register_raw(&server, body);
        assert_eq!(r.status, 200, "register {body:?}: {}", r.text());
        let name = r.json()["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!name.trim().is_empty(), "register {body:?}: a blank name");
    }
    for body in ["{not json", r#"{"displayName":5}"#] {
        let r = register_raw(&server, body);
        assert_eq!(r.status, 400, "register {body:?}: {}", r.text());
    }

    // With a token: CONNECTED_USER_INFO says who we are, and does not repeat the token.
    let (mut a, info) = join(&server, Some(&ana.token), "ana");
    assert_eq!(info["user"]["id"], ana.id.as_str(), "{info}");
    assert_eq!(info["user"]["displayName"], "Ana", "{info}");
    assert!(info["id"].is_string(), "{info}");
    check_timestamp(&info);
    assert!(info.get("accessToken").is_none(), "{info}");

    // Without one: registered on the fly, and told the token.
    let (mut b, info) = join(&server, None, "token-less");
    let token = info["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("CONNECTED_USER_INFO without accessToken: {info}"))
        .to_string();
    let b_id = info["user"]["id"].as_str().unwrap().to_string();
    let b_name = info["user"]["displayName"].as_str().unwrap().to_string();
    assert!(!b_name.is_empty() && b_id != ana.id, "{info}");
    // Ana sees the newcomer join.
    let joined = a.expect("USER_JOINED of the token-less user", |v| {
        v["type"] == "USER_JOINED" && v["user"]["id"] == b_id.as_str()
    });
    assert_eq!(joined["user"]["displayName"], b_name.as_str());
    // An empty token counts as none.
    let (empty, info) = join(&server, Some(""), "empty token");
    assert!(info["accessToken"].is_string(), "{info}");
    assert_ne!(info["user"]["id"], b_id.as_str(), "{info}");
    empty.close();
    // That token is a real user's: a second connection with it is the same user.
    let again = Registered {
        id: b_id.clone(),
        token: token.clone(),
        name: b_name.clone(),
    };
    let mut b2 = join_as(&server, &again, "token-less, second tab");
    b.chat("from the first tab");
    b2.expect_chat("from the first tab");
    let seen = a.until("the first tab's message", |v| {
        v["body"] == "from the first tab"
    });
    assert!(
        !seen
            .iter()
            .any(|v| v["type"] == "USER_JOINED" && v["user"]["id"] == b_id.as_str()),
        "a second tab of the same user was announced again: {seen:?}"
    );
    // One tab closes: the user is still here.
    b.close();
    b2.chat("from the second tab");
    let seen = a.until("the second tab's message", |v| {
        v["body"] == "from the second tab"
    });
    assert!(
        !seen.iter().any(|v| v["type"] == "USER_PARTED"),
        "the user parted with a tab still open: {seen:?}"
    );
    // The last one closes: now they left.
    b2.close();
    a.expect("USER_PARTED of the token-less user", |v| {
        v["type"] == "USER_PARTED" && v["user"]["id"] == b_id.as_str()
    });

    // An unknown token: told to register, and closed.
    let closed = refused(
        &server,
        Some("no-such-token-0123456789"),
        "ERROR_NEEDS_REGISTRATION",
        "unknown token",
    );
    assert_eq!(closed.code(), Some(1008), "{closed:?}");

    a.close();
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 2. Everyone gets every message, in one order

#[test]
fn messages_reach_everyone_in_the_same_order() {
    let mut server = start("rate_burst = 50\n");
    let users: Vec<Registered> = ["Ana", "Bo", "Cy"]
        .iter()
        .map(|n| register(&server, Some(n)))
        .collect();

    let mut a = join_as(&server, &users[0], "Ana");
    let mut b = join_as(&server, &users[1], "Bo");
    let seen = a.expect("USER_JOINED Bo", |v| {
        v["type"] == "USER_JOINED" && v["user"]["id"] == users[1].id.as_str()
    });
    assert_eq!(seen["user"]["displayName"], "Bo");
    let mut c = join_as(&server, &users[2], "Cy");
    for (client, who) in [(&mut a, "Ana"), (&mut b, "Bo")] {
        let seen = client.expect(&format!("USER_JOINED Cy (at {who})"), |v| {
            v["type"] == "USER_JOINED" && v["user"]["id"] == users[2].id.as_str()
        });
        assert_eq!(seen["user"]["displayName"], "Cy");
    }

    // Interleaved sends from three sockets: the server decides the order, and everyone must
    // see that one order.
    const EACH: usize = 6;
    for i in 0..EACH {
        a.chat(&format!("Ana says {i}"));
        b.chat(&format!("Bo says {i}"));
        c.chat(&format!("Cy says {i}"));
    }
    let mut clients = [a, b, c];
    let received: Vec<Vec<Value>> = clients
        .iter_mut()
        .map(|client| chats(client, 3 * EACH))
        .collect();

    let key = |e: &Value| {
        (
            e["id"].as_str().unwrap_or("").to_string(),
            e["body"].clone(),
        )
    };
    let first: Vec<_> = received[0].iter().map(key).collect();
    for (i, got) in received.iter().enumerate() {
        let keys: Vec<_> = got.iter().map(key).collect();
        assert_eq!(
            keys,
            first,
            "{} saw another order than Ana:\n{}\n{}",
            clients[i].label,
            clients[i].dump(),
            clients[0].dump()
        );
    }
    let mut ids = std::collections::HashSet::new();
    for event in &received[0] {
        let body = event["body"].as_str().expect("body");
        let sender = body.split(' ').next().unwrap();
        assert_eq!(event["user"]["displayName"], sender, "{event}");
        let user = users.iter().find(|u| u.name == sender).unwrap();
        assert_eq!(event["user"]["id"], user.id.as_str(), "{event}");
        assert!(
            event["id"]
                .as_str()
                .is_some_and(|id| ids.insert(id.to_string())),
            "missing or repeated id: {event}"
        );
        check_timestamp(event);
    }
    // Each sender's messages in the order it sent them.
    for user in &users {
        let mine: Vec<String> = bodies(&received[0])
            .into_iter()
            .filter(|b| b.starts_with(&format!("{} ", user.name)))
            .collect();
        let sent: Vec<String> = (0..EACH)
            .map(|i| format!("{} says {i}", user.name))
            .collect();
        assert_eq!(mine, sent);
    }
    // The order everyone saw is the order the server kept.
    assert_eq!(bodies(&history(&server)), bodies(&received[0]));

    // Cy leaves: the others see it.
    let [mut a, mut b, c] = clients;
    c.close();
    for client in [&mut a, &mut b] {
        let parted = client.expect("USER_PARTED Cy", |v| {
            v["type"] == "USER_PARTED" && v["user"]["id"] == users[2].id.as_str()
        });
        assert_eq!(parted["user"]["displayName"], "Cy");
    }
    a.close();
    b.close();
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 3. Names

#[test]
fn name_changes_are_broadcast_checked_and_survive_a_restart() {
    let data = tempfile::Builder::new()
        .prefix("selfcast-chat-data-")
        .tempdir()
        .expect("tempdir");
    let opts = ServerOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..options("rate_burst = 50\n")
    };
    let mut server = Server::start(opts.clone());

    let bob = register(&server, Some("Bob"));
    let mut b = join_as(&server, &bob, "Bob");
    let (mut watcher, _) = join(&server, None, "watcher");

    b.rename("Bobby");
    for client in [&mut b, &mut watcher] {
        let change = client.expect_type("NAME_CHANGE");
        assert_eq!(change["oldName"], "Bob", "{change}");
        assert_eq!(change["newName"], "Bobby", "{change}");
        assert_eq!(change["user"]["displayName"], "Bobby", "{change}");
        assert_eq!(change["user"]["id"], bob.id.as_str(), "{change}");
        check_timestamp(&change);
    }

    // The streamer's name, in any case and spacing, and names over 30 characters are refused.
    for name in [
        STREAMER,
        "ana streams",
        "ANA STREAMS",
        "  aNa StReAmS ",
        &"x".repeat(31),
        &"ñ".repeat(31),
        "",
    ] {
        b.rename(name);
        let error = b.expect("an error event", |v| {
            v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        assert_eq!(
            error["type"], "ERROR_INVALID_NAME",
            "rename to {name:?}: {error}"
        );
    }
    // Nobody else saw a name change, and Bob still talks as Bobby.
    b.chat("still Bobby");
    let before = watcher.until("Bobby's message", |v| {
        v["type"] == "CHAT" && v["body"] == "still Bobby"
    });
    assert!(
        !before.iter().any(|v| v["type"] == "NAME_CHANGE"),
        "a refused name was broadcast: {before:?}"
    );
    assert_eq!(before.last().unwrap()["user"]["displayName"], "Bobby");
    // 30 characters are fine (counted as characters, not bytes).
    let thirty = "ñ".repeat(30);
    b.rename(&thirty);
    let change = watcher.expect_type("NAME_CHANGE");
    assert_eq!(change["newName"], thirty.as_str(), "{change}");
    b.rename("Robert");
    let change = watcher.expect_type("NAME_CHANGE");
    assert_eq!(change["oldName"], thirty.as_str(), "{change}");
    assert_eq!(change["newName"], "Robert", "{change}");
    // The same name again (after trimming) changes nothing and sends nothing.
    b.rename("  Robert ");
    b.chat("same name");
    let seen = watcher.until("the message after", |v| v["body"] == "same name");
    assert!(!seen.iter().any(|v| v["type"] == "NAME_CHANGE"), "{seen:?}");

    // Registration follows the same rules.
    for name in ["ANA streams", &"y".repeat(31)] {
        let r = register_raw(&server, &json!({ "displayName": name }).to_string());
        assert_eq!(r.status, 400, "registered as {name:?}: {}", r.text());
    }

    b.close();
    watcher.close();

    // Restart on the same data_dir: the token is still Bob's, with his last name.
    server.interrupt();
    assert!(
        server.wait_exit(Duration::from_secs(20)).is_some(),
        "the server did not stop on SIGINT"
    );
    drop(server);
    let mut server = Server::start(opts);
    let (mut b, info) = join(&server, Some(&bob.token), "Bob after the restart");
    assert_eq!(info["user"]["id"], bob.id.as_str(), "{info}");
    assert_eq!(info["user"]["displayName"], "Robert", "{info}");
    let previous: Vec<&str> = info["user"]["previousNames"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        previous.contains(&"Bob") && previous.contains(&"Bobby"),
        "previousNames after the restart: {info}"
    );
    b.chat("back after the restart");
    let echo = b.expect_chat("back after the restart");
    assert_eq!(echo["user"]["displayName"], "Robert");
    b.close();
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 4. History

#[test]
fn joiners_get_the_newest_messages_and_never_hidden_ones() {
    let mut server = start("history_messages = 5\nrate_burst = 50\n");
    let (mut a, _) = join(&server, None, "talker");
    let sent: Vec<String> = (1..=8).map(|i| format!("message {i}")).collect();
    for body in &sent {
        a.chat(body);
    }
    let mine = chats(&mut a, 8);
    assert_eq!(bodies(&mine), sent);

    let (mut b, got) = join_with_history(&server, "joiner 1");
    assert_eq!(bodies(&got), sent[3..], "the newest 5, oldest first");
    let ids: Vec<&str> = mine.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let got_ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got_ids, ids[3..], "history events keep their ids");
    assert_eq!(bodies(&history(&server)), sent[3..]);

    // Hide message 6: everyone connected is told; it is gone from the history.
    let hidden = ids[5].to_string();
    let r = admin_ok(
        &server,
        "/chat/messagevisibility",
        json!({ "idArray": [hidden], "visible": false }),
    );
    assert_eq!(r["known"], 1, "{r}");
    for client in [&mut a, &mut b] {
        let update = client.expect_type("VISIBILITY-UPDATE");
        assert_eq!(update["ids"], json!([hidden]), "{update}");
        assert_eq!(update["visible"], false, "{update}");
    }
    let without: Vec<String> = [4, 5, 7, 8]
        .iter()
        .map(|i| format!("message {i}"))
        .collect();
    let (c, got) = join_with_history(&server, "joiner 2");
    assert_eq!(bodies(&got), without);
    assert!(!got.iter().any(|e| e["id"] == hidden.as_str()));
    let listed = history(&server);
    assert_eq!(bodies(&listed), without);
    assert!(!listed.iter().any(|e| e["id"] == hidden.as_str()));

    // Shown again: it is back, in its place.
    admin_ok(
        &server,
        "/chat/messagevisibility",
        json!({ "idArray": [hidden], "visible": true }),
    );
    let update = a.expect_type("VISIBILITY-UPDATE");
    assert_eq!(update["visible"], true, "{update}");
    let (d, got) = join_with_history(&server, "joiner 3");
    assert_eq!(bodies(&got), sent[3..]);
    // Ids the server no longer keeps (message 1) are still announced, so pages hide them too.
    let r = admin_ok(
        &server,
        "/chat/messagevisibility",
        json!({ "idArray": [ids[0], "no-such-id"], "visible": false }),
    );
    assert_eq!(r["known"], 0, "{r}");
    let update = a.expect_type("VISIBILITY-UPDATE");
    assert_eq!(update["ids"], json!([ids[0], "no-such-id"]), "{update}");
    assert_eq!(bodies(&history(&server)), sent[3..]);

    for client in [a, b, c, d] {
        client.close();
    }
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 5. Limits: length, bad frames, rate, flooding, connection caps

#[test]
fn too_long_messages_and_bad_frames_get_an_error_and_the_connection_stays() {
    let mut server = start("max_message_chars = 20\nrate_burst = 100\nrate_per_second = 50\n");
    let (mut a, _) = join(&server, None, "sender");
    let (mut b, _) = join(&server, None, "listener");

    // Counted in characters: 20 two-byte (or four-byte) characters pass, 21 do not.
    for c in ["x", "é", "🦀"] {
        let long = c.repeat(21);
        a.chat(&long);
        let error = a.expect("an error event", |v| {
            v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        assert_eq!(error["type"], "ERROR_MESSAGE_TOO_LONG", "{error}");
        let fits = c.repeat(20);
        a.chat(&fits);
        let before = b.until("the 20-character message", |v| {
            v["type"] == "CHAT" && v["body"] == fits.as_str()
        });
        assert!(
            !bodies(&before).contains(&long),
            "a too-long message was broadcast: {before:?}"
        );
        a.expect_chat(&fits);
    }

    // Not JSON, unknown types, missing or empty fields, a binary frame: an error each, and the
    // connection stays.
    let garbage: [Message; 8] = [
        Message::Text("not json at all".into()),
        Message::Text("{\"type\":\"SHOUT\",\"body\":\"hi\"}".into()),
        Message::Text("{\"type\":\"SYSTEM\",\"body\":\"I am the server\"}".into()),
        Message::Text("{\"type\":\"CHAT\"}".into()),
        Message::Text("{\"type\":\"CHAT\",\"body\":42}".into()),
        Message::Text("{\"type\":\"CHAT\",\"body\":\"   \"}".into()),
        Message::Text("[1,2,3]".into()),
        Message::Binary(vec![0xff, 0x00, 0x13, 0x37]),
    ];
    for frame in garbage {
        let shown = format!("{frame:?}");
        a.send(frame).expect("send");
        let error = a.expect("an error event", |v| {
            v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        assert_eq!(error["type"], "ERROR_INVALID_MESSAGE", "{shown}: {error}");
    }
    a.chat("still here");
    let before = b.until("still here", |v| {
        v["type"] == "CHAT" && v["body"] == "still here"
    });
    assert_eq!(
        bodies(&before).last().map(String::as_str),
        Some("still here"),
        "garbage was broadcast: {before:?}"
    );
    assert_eq!(
        bodies(&before).len(),
        1,
        "garbage was broadcast: {before:?}"
    );
    a.expect_chat("still here");
    assert!(
        !b.received.iter().any(|v| v["body"] == "I am the server"),
        "a client's SYSTEM event was broadcast"
    );

    // A frame over 64 KiB closes that connection only.
    let (mut big, _) = join(&server, None, "oversized");
    let huge = json!({ "type": "CHAT", "body": "z".repeat(70 * 1024) }).to_string();
    let _ = big.send_text(&huge); // the server may close before it has read it all
    let (events, closed) = big.expect_closed();
    assert!(
        !events.iter().any(|v| v["type"] == "CHAT"
            && v["user"]["id"].is_string()
            && v["body"].as_str().is_some_and(|b| b.len() > 60_000)),
        "the oversized message came back: {closed:?}"
    );
    // Closed without one of the refusal codes (CHAT.md §9.4): a bare close frame or the end of
    // the connection.
    assert!(
        !matches!(&closed, Closed::Frame(Some((1008 | 1013, _)))),
        "an oversized frame: {closed:?}"
    );
    // Invalid UTF-8 in a text frame ends that connection too (CHAT.md §5).
    let (mut bad_utf8, _) = join(&server, None, "invalid UTF-8");
    let frame = tungstenite::protocol::frame::Frame::message(
        vec![b'{', 0xc3, 0x28, 0xff, b'}'],
        tungstenite::protocol::frame::coding::OpCode::Data(
            tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    let _ = bad_utf8.send(Message::Frame(frame));
    bad_utf8.expect_closed();
    b.chat("after the big one");
    a.expect_chat("after the big one");
    b.expect_chat("after the big one");
    assert!(
        !b.received
            .iter()
            .any(|v| v["body"].as_str().is_some_and(|s| s.len() > 60_000)),
        "the oversized message was broadcast"
    );

    a.close();
    b.close();
    assert_still_serving(&mut server);
}

#[test]
fn a_burst_over_the_rate_is_refused_and_flooding_closes_the_connection() {
    let mut server = start("rate_burst = 3\nrate_per_second = 1\n");
    let flooder_user = register(&server, Some("Flood"));
    let mut f = join_as(&server, &flooder_user, "flooder");
    let (mut other, _) = join(&server, None, "bystander");

    // PING/PONG events take no token (CHAT.md §9.2).
    for _ in 0..5 {
        f.send_text(r#"{"type":"PING"}"#).expect("send");
        f.send_text(r#"{"type":"PONG"}"#).expect("send");
    }

    // Six at once: the burst (3) goes through, the rest is refused (plus whatever the rate
    // refilled meanwhile: one message per second the burst took to process).
    let started = Instant::now();
    for i in 0..6 {
        f.chat(&format!("burst {i}"));
    }
    let mut delivered = Vec::new();
    let mut limited = 0;
    while delivered.len() + limited < 6 {
        let v = f.expect("a CHAT or an error", |v| {
            v["type"] == "CHAT" || v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        match v["type"].as_str() {
            Some("CHAT") => delivered.push(v["body"].as_str().unwrap().to_string()),
            Some("ERROR_RATE_LIMITED") => limited += 1,
            _ => panic!("unexpected answer to the burst: {v}\n{}", f.dump()),
        }
    }
    // Tokens refill at one per second: a burst processed within a second gets exactly 3 through.
    let refill = started.elapsed().as_secs() as usize;
    assert!(
        delivered.len() >= 3 && delivered[..3] == ["burst 0", "burst 1", "burst 2"],
        "the burst did not go through (did PING/PONG take tokens?)\n{}",
        f.dump()
    );
    assert!(
        delivered.len() <= 3 + refill && limited == 6 - delivered.len(),
        "{} of 6 went through with a burst of 3 within {:?}\n{}",
        delivered.len(),
        started.elapsed(),
        f.dump()
    );
    // The bystander saw exactly what went through.
    other.chat("bystander marker");
    let seen = other.until("its own marker", |v| {
        v["type"] == "CHAT" && v["body"] == "bystander marker"
    });
    let mut seen = bodies(&seen);
    seen.pop();
    assert_eq!(seen, delivered, "{}", other.dump());

    // Keep sending after being refused (one message, then its answer): the server closes the
    // connection. An answer is the message coming back (the rate refilled) or an error.
    let mut accepted = Vec::new();
    let mut sent = 0;
    let closed = loop {
        assert!(
            sent < 200,
            "still open after {sent} refused messages\n{}",
            f.dump()
        );
        let body = format!("flood {sent}");
        if f.send_text(&json!({ "type": "CHAT", "body": body }).to_string())
            .is_err()
        {
            break f.expect_closed().1;
        }
        sent += 1;
        // Its answer, past whatever else arrives (the bystander's events).
        let ended = loop {
            match f.next(WAIT) {
                Next::Event(v) if v["type"] == "ERROR_RATE_LIMITED" => break None,
                Next::Event(v) if v["type"] == "CHAT" && v["body"] == body.as_str() => {
                    accepted.push(body.clone());
                    break None;
                }
                Next::Event(v) if v["type"].as_str().is_some_and(|t| t.starts_with("ERROR")) => {
                    panic!("unexpected answer to {body:?}: {v}\n{}", f.dump())
                }
                Next::Event(_) => {}
                Next::Closed(c) => break Some(c),
                Next::Timeout => panic!("no answer to {body:?}\n{}", f.dump()),
            }
        };
        if let Some(c) = ended {
            break c;
        }
    };
    assert_eq!(
        closed,
        Closed::Frame(Some((1008, "too many messages: disconnected".to_string()))),
        "{}",
        f.dump()
    );
    let last = f.received.last().cloned().unwrap_or_default();
    assert_eq!(
        last["type"], "ERROR_RATE_LIMITED",
        "the last word before closing: {last}"
    );
    // The others saw only what was accepted, and keep chatting.
    let parted = other.expect("the flooder's USER_PARTED", |v| {
        v["type"] == "USER_PARTED" && v["user"]["id"] == flooder_user.id.as_str()
    });
    assert_eq!(parted["user"]["displayName"], "Flood");
    other.chat("the bystander is fine");
    let seen = other.until("its message", |v| {
        v["type"] == "CHAT" && v["body"] == "the bystander is fine"
    });
    let flooded: Vec<String> = bodies(&seen)
        .into_iter()
        .filter(|b| b.starts_with("flood "))
        .collect();
    assert_eq!(flooded, accepted, "refused flood messages were broadcast");
    // Closing is not a ban: the flooder can come back (with a fresh allowance).
    let mut f = join_as(&server, &flooder_user, "flooder, back");
    f.chat("sorry");
    other.expect_chat("sorry");
    f.close();

    // Frames that are no event count too: garbage sent without pause is answered (an error
    // each, then "slow down"), and then the connection is closed like any flood.
    let (mut g, _) = join(&server, None, "garbage flooder");
    let mut answers = Vec::new();
    let closed = loop {
        assert!(
            answers.len() < 100,
            "still open after {} frames of garbage\n{}",
            answers.len(),
            g.dump()
        );
        if g.send_text("no event").is_err() {
            break g.expect_closed().1;
        }
        match g.next(WAIT) {
            Next::Event(v) if v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_")) => {
                answers.push(v["type"].as_str().unwrap_or_default().to_string())
            }
            Next::Event(_) => {}
            Next::Closed(c) => break c,
            Next::Timeout => panic!("no answer to garbage\n{}", g.dump()),
        }
    };
    assert_eq!(
        closed,
        Closed::Frame(Some((1008, "too many messages: disconnected".to_string()))),
        "{}",
        g.dump()
    );
    assert_eq!(
        answers.first().map(String::as_str),
        Some("ERROR_INVALID_MESSAGE")
    );
    assert!(
        answers.iter().any(|t| t == "ERROR_RATE_LIMITED"),
        "{answers:?}"
    );
    other.chat("still fine");
    other.expect_chat("still fine");
    other.close();
    assert_still_serving(&mut server);
}

#[test]
fn connection_caps_per_address_and_in_all() {
    for (toml, what) in [
        (
            "max_connections_per_ip = 3\nmax_connections = 100\n",
            "per address",
        ),
        (
            "max_connections_per_ip = 50\nmax_connections = 3\n",
            "in all",
        ),
    ] {
        let mut server = start(toml);
        let mut open: Vec<WsClient> = (0..3)
            .map(|i| join(&server, None, &format!("{what} #{i}")).0)
            .collect();
        let closed = refused(
            &server,
            None,
            "ERROR_MAX_CONNECTIONS_EXCEEDED",
            &format!("{what}: one too many"),
        );
        assert_eq!(closed.code(), Some(1013), "{what}: {closed:?}");
        // A registered user is refused the same way.
        let user = register(&server, Some("Late"));
        refused(
            &server,
            Some(&user.token),
            "ERROR_MAX_CONNECTIONS_EXCEEDED",
            &format!("{what}: registered, one too many"),
        );
        // The refused ones never counted: three are listed, and those three still chat.
        let clients = admin_get(&server, "/chat/clients");
        assert_eq!(clients.as_array().map(Vec::len), Some(3), "{clients}");
        open[0].chat("three is company");
        for c in &mut open {
            c.expect_chat("three is company");
        }
        // One leaves: there is room again (once the server has seen the close).
        open.remove(0).close();
        let late = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let mut c = WsClient::connect(server.http_port, Some(&user.token), "late");
            let first = c.until("a first event", |_| true).remove(0);
            (first["type"] == "CONNECTED_USER_INFO").then_some(c)
        });
        let mut late = late.unwrap_or_else(|| panic!("{what}: no room after one left"));
        late.chat("made it");
        open[0].expect_chat("made it");
        late.close();
        for c in open {
            c.close();
        }
        let empty = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let clients = admin_get(&server, "/chat/clients");
            (clients.as_array().map(Vec::len) == Some(0)).then_some(())
        });
        assert!(empty.is_some(), "{what}: closed connections still listed");
        assert_still_serving(&mut server);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Moderation

#[test]
fn the_admin_api_refuses_requests_without_the_password() {
    let mut server = start("");
    let (mut a, _) = join(&server, None, "viewer");
    let wrong = [
        None,
        Some(basic("admin", "not-the-password")),
        Some(basic("root", PASSWORD)),
        Some(basic("admin", "")),
        Some(format!("Bearer {PASSWORD}")),
        Some("Basic !!!not-base64".to_string()),
    ];
    let calls: [(&str, &str, Option<Value>); 6] = [
        ("GET", "/chat/clients", None),
        ("GET", "/chat/users/ipbans", None),
        ("POST", "/chat/send", Some(json!({ "body": "sneaky" }))),
        (
            "POST",
            "/config/chat/disable",
            Some(json!({ "value": true })),
        ),
        (
            "POST",
            "/chat/users/ipbans/create",
            Some(json!({ "value": "127.0.0.1" })),
        ),
        ("GET", "/no/such/endpoint", None),
    ];
    for auth in &wrong {
        for (method, path, body) in &calls {
            let body = body.as_ref().map(Value::to_string);
            let r = request(
                method,
                &server.url(&format!("/api/admin{path}")),
                body.as_deref(),
                auth.as_deref(),
            );
            assert_eq!(r.status, 401, "{method} {path} with {auth:?}: {}", r.text());
            let challenge = r.header("WWW-Authenticate").unwrap_or_default();
            assert!(
                challenge.to_ascii_lowercase().starts_with("basic"),
                "{method} {path}: WWW-Authenticate {challenge:?}"
            );
        }
    }
    // The refusal is JSON naming the problem.
    let r = request("GET", &server.url("/api/admin/chat/clients"), None, None);
    assert!(r.json()["error"].is_string(), "{}", r.text());
    // With the password: wrong method, unknown path, wrong or missing body.
    let auth = admin_auth();
    let r = request(
        "GET",
        &server.url("/api/admin/chat/send"),
        None,
        Some(&auth),
    );
    assert_eq!(r.status, 405, "GET on a POST endpoint: {}", r.text());
    let r = request(
        "GET",
        &server.url("/api/admin/no/such/endpoint"),
        None,
        Some(&auth),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = agent()
        .post(&server.url("/api/admin/chat/send"))
        .set("Authorization", &auth)
        .set("Content-Type", "text/plain")
        .send_string(r#"{"body":"typed wrong"}"#);
    let status = match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 415, "a text/plain body");
    let r = admin_post(&server, "/chat/send", json!({ "text": "no body field" }));
    assert_eq!(r.status, 400, "{}", r.text());

    // None of it had an effect: chat is on, nothing was posted, nobody is banned.
    let listed = admin_get(&server, "/chat/users/ipbans");
    assert_eq!(listed, json!([]));
    admin_ok(&server, "/chat/send", json!({ "body": "the real one" }));
    let before = a.until("the streamer's message", |v| {
        v["type"] == "CHAT" && v["body"] == "the real one"
    });
    assert!(
        !before
            .iter()
            .any(|v| v["body"] == "sneaky" || v["type"] == "SYSTEM"),
        "an unauthorized request took effect: {before:?}"
    );
    a.chat("chat is still on");
    a.expect_chat("chat is still on");
    a.close();
    assert_still_serving(&mut server);
}

#[test]
fn disabling_a_user_closes_their_connections_and_refuses_their_token() {
    let mut server = start("");
    let troll = register(&server, Some("Troll"));
    let ana = register(&server, Some("Ana"));
    let mut t = join_as(&server, &troll, "troll");
    let mut a = join_as(&server, &ana, "ana");
    t.chat("I am about to be banned");
    let spam_id = a.expect_chat("I am about to be banned")["id"]
        .as_str()
        .unwrap()
        .to_string();
    a.chat("ana's own words");
    a.expect_chat("ana's own words");

    let clients = admin_get(&server, "/chat/clients");
    let listed: Vec<(&str, &str)> = clients
        .as_array()
        .unwrap_or_else(|| panic!("{clients}"))
        .iter()
        .map(|c| {
            (
                c["user"]["id"].as_str().unwrap_or(""),
                c["ipAddress"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for user in [&troll, &ana] {
        assert!(
            listed.contains(&(user.id.as_str(), "127.0.0.1")),
            "{} not listed with its address: {clients}",
            user.name
        );
    }

    let r = admin_ok(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": troll.id, "enabled": false }),
    );
    assert_eq!(r["success"], true, "{r}");
    assert!(r["user"]["disabledAt"].is_string(), "{r}");
    let (events, closed) = t.expect_closed();
    assert_eq!(
        events.last().map(|v| v["type"].clone()),
        Some(json!("ERROR_USER_DISABLED")),
        "{events:?} {closed:?}"
    );
    assert_eq!(closed, Closed::Frame(Some((1008, "disabled".to_string()))));
    // Their kept messages are hidden from everyone; the user parted.
    let update = a.expect_type("VISIBILITY-UPDATE");
    assert_eq!(update["ids"], json!([spam_id]), "{update}");
    assert_eq!(update["visible"], false, "{update}");
    a.expect("the troll's USER_PARTED", |v| {
        v["type"] == "USER_PARTED" && v["user"]["id"] == troll.id.as_str()
    });
    assert_eq!(
        bodies(&history(&server)),
        ["ana's own words"],
        "the disabled user's message is still in the history"
    );
    // The token is refused; the others chat on.
    refused(
        &server,
        Some(&troll.token),
        "ERROR_USER_DISABLED",
        "troll again",
    );
    a.chat("peace at last");
    a.expect_chat("peace at last");
    let disabled = admin_get(&server, "/chat/users/disabled");
    assert!(
        disabled.as_array().is_some_and(|a| a
            .iter()
            .any(|u| u["id"] == troll.id.as_str() && u["disabledAt"].is_string())),
        "{disabled}"
    );
    let streamer = admin_post(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": "streamer", "enabled": false }),
    );
    assert_eq!(streamer.status, 404, "{}", streamer.text());
    let unknown = admin_post(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": "nobody-like-this", "enabled": false }),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text());

    // Enabled again: the token works.
    admin_ok(
        &server,
        "/chat/users/setenabled",
        json!({ "userId": troll.id, "enabled": true }),
    );
    let mut t = join_as(&server, &troll, "troll, forgiven");
    t.chat("I will behave");
    a.expect_chat("I will behave");
    // Their old message stays hidden.
    assert_eq!(
        bodies(&history(&server)),
        ["ana's own words", "peace at last", "I will behave"]
    );
    t.close();
    a.close();
    assert_still_serving(&mut server);
}

#[test]
fn an_ip_ban_closes_and_refuses_that_address() {
    let mut server = start("");
    let ana = register(&server, Some("Ana"));
    let mut a = join_as(&server, &ana, "ana");
    let (mut b, _) = join(&server, None, "bo");

    // Another address banned: nothing happens to us.
    admin_ok(
        &server,
        "/chat/users/ipbans/create",
        json!({ "value": "192.0.2.7" }),
    );
    a.chat("not us");
    b.expect_chat("not us");
    let bad = admin_post(
        &server,
        "/chat/users/ipbans/create",
        json!({ "value": "not an address" }),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());

    // Our address: every connection from it is told and closed.
    admin_ok(
        &server,
        "/chat/users/ipbans/create",
        json!({ "value": "127.0.0.1" }),
    );
    for client in [&mut a, &mut b] {
        let (events, closed) = client.expect_closed();
        assert_eq!(
            events.last().map(|v| v["type"].clone()),
            Some(json!("ERROR_USER_DISABLED")),
            "{}: {events:?} {closed:?}",
            client.label
        );
        assert_eq!(closed, Closed::Frame(Some((1008, "banned".to_string()))));
    }
    let bans = admin_get(&server, "/chat/users/ipbans");
    let banned: Vec<&str> = bans
        .as_array()
        .unwrap_or_else(|| panic!("{bans}"))
        .iter()
        .filter_map(|b| b["ipAddress"].as_str())
        .collect();
    assert!(
        banned.contains(&"127.0.0.1") && banned.contains(&"192.0.2.7"),
        "{bans}"
    );
    assert!(
        bans.as_array().unwrap().iter().all(|b| b["createdAt"]
            .as_str()
            .is_some_and(|t| humantime::parse_rfc3339(t).is_ok())),
        "{bans}"
    );
    // New connections, with or without a token, and registration are refused; video is not.
    refused(
        &server,
        Some(&ana.token),
        "ERROR_USER_DISABLED",
        "ana again",
    );
    refused(&server, None, "ERROR_USER_DISABLED", "token-less, banned");
    let r = register_raw(&server, "");
    assert_eq!(r.status, 403, "register while banned: {}", r.text());
    // The history, the status and the page still answer.
    history(&server);
    server.status();

    // Unbanned: back to normal.
    admin_ok(
        &server,
        "/chat/users/ipbans/remove",
        json!({ "value": "127.0.0.1" }),
    );
    let again = admin_post(
        &server,
        "/chat/users/ipbans/remove",
        json!({ "value": "127.0.0.1" }),
    );
    assert_eq!(again.status, 404, "{}", again.text());
    register(&server, Some("Newcomer"));
    let mut a = join_as(&server, &ana, "ana, unbanned");
    a.chat("hello again");
    a.expect_chat("hello again");
    a.close();
    assert_still_serving(&mut server);
}

#[test]
fn chat_can_be_switched_off_and_the_streamer_posts_as_a_moderator() {
    let mut server = start("max_message_chars = 40\n");
    let chat_enabled = |s: &Server| s.status()["chatEnabled"].clone();
    assert_eq!(chat_enabled(&server), true);
    let (mut a, _) = join(&server, None, "a");
    let (mut b, _) = join(&server, None, "b");
    let (mut c, _) = join(&server, None, "c");

    let r = admin_ok(
        &server,
        "/chat/send",
        json!({ "body": "hello from the streamer" }),
    );
    assert_eq!(r["success"], true, "{r}");
    for client in [&mut a, &mut b, &mut c] {
        let m = client.expect_chat("hello from the streamer");
        assert_eq!(m["user"]["displayName"], STREAMER, "{m}");
        assert_eq!(m["user"]["id"], "streamer", "{m}");
        assert_eq!(m["user"]["scopes"], json!(["MODERATOR", "STREAMER"]), "{m}");
        assert_eq!(m["id"], r["id"], "the id in the response is the message's");
    }
    // Nobody else carries a scope.
    a.chat("just a viewer");
    let m = b.expect_chat("just a viewer");
    assert!(m["user"].get("scopes").is_none(), "{m}");
    // The streamer is not held to max_message_chars; the message is kept in history.
    let long = "The streamer may say more than forty characters at once.";
    admin_ok(&server, "/chat/send", json!({ "body": long }));
    c.expect_chat(long);
    assert!(bodies(&history(&server)).contains(&long.to_string()));

    // A system message reaches everyone and is not history.
    admin_ok(&server, "/chat/system", json!({ "body": "we start soon" }));
    for client in [&mut a, &mut b, &mut c] {
        let m = client.expect("the system message", |v| {
            v["type"] == "SYSTEM" && v["body"] == "we start soon"
        });
        assert_eq!(m["user"]["displayName"], STREAMER, "{m}");
    }
    assert!(!history(&server)
        .iter()
        .any(|v| v["body"] == "we start soon"));

    // Off: everyone is told; messages are refused and go nowhere.
    let r = admin_ok(&server, "/config/chat/disable", json!({ "value": true }));
    assert_eq!(r["chatEnabled"], false, "{r}");
    for client in [&mut a, &mut b, &mut c] {
        let system = client.expect_type("SYSTEM");
        assert!(
            system["body"].as_str().is_some_and(|s| !s.is_empty()),
            "{system}"
        );
    }
    assert_eq!(chat_enabled(&server), false);
    a.chat("can anyone hear me");
    let error = a.expect("an error", |v| {
        v["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("ERROR_") || t == "CHAT_DISABLED")
    });
    assert_eq!(error["type"], "CHAT_DISABLED", "{error}");
    // Connections and registrations are still admitted, names still change, the streamer
    // still posts.
    register(&server, Some("Late Viewer"));
    let (mut d, _) = join(&server, None, "joins while off");
    d.rename("Dee");
    let change = b.expect_type("NAME_CHANGE");
    assert_eq!(change["newName"], "Dee", "{change}");
    admin_ok(&server, "/chat/send", json!({ "body": "marker while off" }));
    let before = b.until("the marker", |v| v["body"] == "marker while off");
    assert!(
        !bodies(&before).iter().any(|s| s == "can anyone hear me"),
        "a message went through while chat was off: {before:?}"
    );
    d.expect_chat("marker while off");

    // On again.
    admin_ok(&server, "/config/chat/disable", json!({ "value": false }));
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_type("SYSTEM");
    }
    assert_eq!(chat_enabled(&server), true);
    a.chat("back on");
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_chat("back on");
    }
    for client in [a, b, c, d] {
        client.close();
    }
    assert_still_serving(&mut server);
}

#[test]
fn registrations_per_address_are_limited() {
    let mut server = start("registrations_per_minute = 3\n");
    register(&server, Some("One"));
    let (two, info) = join(&server, None, "registered on the fly");
    let token = info["accessToken"].as_str().unwrap().to_string();
    register(&server, None);
    let r = register_raw(&server, "");
    assert_eq!(r.status, 429, "a 4th registration: {}", r.text());
    assert_eq!(r.header("Retry-After"), Some("60"), "{:?}", r.headers);
    let closed = refused(&server, None, "ERROR_RATE_LIMITED", "a token-less 5th");
    assert_eq!(closed.code(), Some(1013), "{closed:?}");
    // Known users still connect.
    let mut again = WsClient::connect(server.http_port, Some(&token), "a known token");
    again.expect_type("CONNECTED_USER_INFO");
    again.chat("known users are welcome");
    again.expect_chat("known users are welcome");
    again.close();
    two.close();
    server.assert_running();
    server.status();
}

// ---------------------------------------------------------------------------------------------
// 7. Viewer count

#[test]
fn open_chats_count_as_viewers() {
    let mut server = start("");
    let count = |s: &Server| s.status()["viewerCount"].as_u64().expect("viewerCount");
    let baseline = count(&server);
    let open: Vec<WsClient> = (0..3)
        .map(|i| join(&server, None, &format!("page {i}")).0)
        .collect();
    let up = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (count(&server) >= baseline + 3).then_some(())
    });
    assert!(
        up.is_some(),
        "viewerCount {} with 3 pages open",
        count(&server)
    );
    for c in open {
        c.close();
    }
    let down = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (count(&server) <= baseline).then_some(())
    });
    assert!(
        down.is_some(),
        "viewerCount {} after the pages closed (was {baseline})",
        count(&server)
    );
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 8. Bad input never hurts the server

/// A websocket handshake by hand, then raw bytes; with `wait`, until the server hangs up.
fn raw_ws(port: u16, then: &[u8], wait: bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let _ = s.write_all(then);
    if !wait {
        std::thread::sleep(Duration::from_millis(200));
        return;
    }
    let mut buf = [0u8; 4096];
    // Read until the server closes (or the timeout): whatever it says, it must not hang.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// POSTs a `len`-byte body by hand (the server may answer before reading it all, which breaks
/// an HTTP client's pipe): the status it answered, if any.
fn post_oversized(port: u16, path: &str, len: usize, authorization: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(&vec![b'x'; len]);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[test]
fn bad_input_never_hurts_the_server() {
    let mut server = start("max_connections_per_ip = 50\n");
    let (mut a, _) = join(&server, None, "bystander");
    let port = server.http_port;

    // Junk on the HTTP port.
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"\r\n\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(junk);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    // A handshake, then frames that break the protocol: unmasked, reserved bits, a huge
    // length; and a frame header cut short, the socket dropped.
    raw_ws(port, b"\x81\x05hello", true);
    raw_ws(port, b"\xf1\x85\x00\x00\x00\x00hello", true);
    raw_ws(
        port,
        b"\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00",
        true,
    );
    raw_ws(port, b"\x81", false);
    // A plain GET /ws is no websocket: the page's 404.
    let r = request("GET", &server.url("/ws"), None, None);
    assert_eq!(r.status, 404, "GET /ws without upgrade: {}", r.text());
    // Odd tokens.
    for token in ["%00%ff%fe", "'%22;DROP%20TABLE", &"t".repeat(4000)] {
        match WsClient::try_connect(port, &format!("/ws?accessToken={token}"), "odd token") {
            Ok(mut c) => {
                let (events, _) = c.expect_closed();
                assert!(
                    events.iter().all(|v| v["type"] != "CONNECTED_USER_INFO"),
                    "admitted with token {token:?}: {events:?}"
                );
            }
            Err(e) => eprintln!("token {token:?}: refused at the HTTP level: {e:?}"),
        }
    }
    // Pages that vanish without a close frame.
    for i in 0..10 {
        let (c, _) = join(&server, None, &format!("vanishing {i}"));
        drop(c);
    }
    // Bad registrations and admin bodies.
    assert_eq!(register_raw(&server, "\u{0}\u{1}garbage").status, 400);
    for (path, auth) in [
        ("/api/chat/register", None),
        ("/api/admin/chat/send", Some(admin_auth())),
    ] {
        let status = post_oversized(port, path, 100_000, auth.as_deref());
        assert!(
            // None: the server answered before reading it all and the reset overtook the answer.
            matches!(status, None | Some(413)),
            "a 100 kB body to {path}: {status:?}"
        );
    }
    let r = admin_post(
        &server,
        "/chat/messagevisibility",
        json!({ "idArray": "nope" }),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = admin_post(&server, "/chat/send", json!({ "body": "" }));
    assert_eq!(r.status, 400, "{}", r.text());

    // Everyone who vanished is gone from the list; the bystander never noticed.
    let gone = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let clients = admin_get(&server, "/chat/clients");
        (clients.as_array().map(Vec::len) == Some(1)).then_some(())
    });
    assert!(
        gone.is_some(),
        "connections left behind: {}",
        admin_get(&server, "/chat/clients")
    );
    a.chat("unbothered");
    a.expect_chat("unbothered");
    a.close();
    assert_still_serving(&mut server);
}

// ---------------------------------------------------------------------------------------------
// 9. Holes found by attacking the running server (issue 13)

/// Name changes a user may make in a minute (src/chat/limits.rs), and earlier names kept
/// (src/chat/users.rs).
const NAME_CHANGES_PER_MINUTE: usize = 5;
const MAX_PREVIOUS_NAMES: usize = 5;

fn previous_names(event: &Value) -> usize {
    event["user"]["previousNames"]
        .as_array()
        .unwrap_or_else(|| panic!("no previousNames: {event}"))
        .len()
}

/// Issue 13: 1,083 renames in 60 s made each of the user's events 50 KB, the greeting 82 KB and
/// `users.jsonl` 25 times larger. Now renames are capped per user, a user keeps only their last
/// few names, and the file grows by the accepted renames only.
#[test]
fn renames_are_capped_per_user_and_earlier_names_bounded() {
    let data = tempfile::Builder::new()
        .prefix("selfcast-chat-data-")
        .tempdir()
        .expect("tempdir");
    let mut server = Server::start(ServerOptions {
        data_dir: Some(data.path().to_path_buf()),
        // The message rate out of the way: the renamer sends as fast as the socket takes it.
        ..options("rate_burst = 1000\nrate_per_second = 1000\n")
    });
    let users_file = data.path().join("chat").join("users.jsonl");
    let file_size = || std::fs::metadata(&users_file).map_or(0, |m| m.len());
    let mallory = register(&server, Some("Mallory"));
    let mut m = join_as(&server, &mallory, "renamer");
    let (mut viewer, _) = join(&server, None, "passive viewer");
    let size_before = file_size();

    const RENAMES: usize = 200;
    let started = Instant::now();
    for n in 0..RENAMES {
        m.rename(&format!("Mallory{n}"));
    }
    // Every rename is answered: its NAME_CHANGE, or a refusal.
    let mut accepted = Vec::new();
    let mut refusals = Vec::new();
    while accepted.len() + refusals.len() < RENAMES {
        let v = m.expect("a NAME_CHANGE or an error", |v| {
            v["type"] == "NAME_CHANGE"
                || v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        match v["type"].as_str() {
            Some("NAME_CHANGE") => accepted.push(v),
            Some("ERROR_RATE_LIMITED") => refusals.push(v),
            _ => panic!("unexpected answer to a rename: {v}\n{}", m.dump()),
        }
    }
    // The cap is per minute: a run slower than a minute may see the next minute's allowance.
    let minutes = 1 + started.elapsed().as_secs() as usize / 60;
    assert!(
        !accepted.is_empty() && accepted.len() <= NAME_CHANGES_PER_MINUTE * minutes,
        "{} of {RENAMES} renames accepted in {:?}",
        accepted.len(),
        started.elapsed()
    );
    let message = refusals[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("name"), "the refusal says why: {message}");
    for change in &accepted {
        assert!(previous_names(change) <= MAX_PREVIOUS_NAMES, "{change}");
    }
    let current = accepted.last().unwrap()["newName"]
        .as_str()
        .unwrap()
        .to_string();
    // The users file grew by the accepted renames only (one short line each).
    let grown = file_size().saturating_sub(size_before);
    assert!(
        grown <= 200 * accepted.len() as u64,
        "users.jsonl grew by {grown} bytes for {} accepted renames",
        accepted.len()
    );

    // Another connection of the same user gets no new allowance.
    let (mut m2, info) = join(&server, Some(&mallory.token), "renamer, second tab");
    assert_eq!(info["user"]["displayName"], current.as_str(), "{info}");
    m2.rename("Mallory again");
    let refused = m2.expect("an error", |v| {
        v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
    });
    assert_eq!(refused["type"], "ERROR_RATE_LIMITED", "{refused}");
    m2.close();

    // What a passive viewer received for all of it: the accepted name changes, each small.
    for n in 0..10 {
        m.chat(&format!("after the renames {n}"));
    }
    let seen = viewer.until("the last message", |v| {
        v["type"] == "CHAT" && v["body"] == "after the renames 9"
    });
    let changes: Vec<&Value> = seen.iter().filter(|v| v["type"] == "NAME_CHANGE").collect();
    assert_eq!(changes.len(), accepted.len(), "{}", viewer.dump());
    let bytes: usize = seen.iter().map(|v| v.to_string().len()).sum();
    assert!(
        bytes < 16 * 1024,
        "the viewer received {bytes} bytes of events for {RENAMES} rename attempts and 10 messages"
    );
    for chat in seen.iter().filter(|v| v["type"] == "CHAT") {
        assert!(previous_names(chat) <= MAX_PREVIOUS_NAMES, "{chat}");
        assert!(chat.to_string().len() < 1024, "{chat}");
    }
    // The greeting to a new viewer and /api/chat carry those messages, as small.
    let (joiner, greeting) = join_with_history(&server, "new viewer");
    assert_eq!(greeting.len(), 10, "{}", joiner.dump());
    let greeting_bytes: usize = greeting.iter().map(|v| v.to_string().len()).sum();
    assert!(
        greeting_bytes < 10 * 1024,
        "greeting of {greeting_bytes} bytes"
    );
    joiner.close();
    let listed = history(&server);
    for message in &listed {
        assert!(previous_names(message) <= MAX_PREVIOUS_NAMES, "{message}");
    }
    eprintln!(
        "{RENAMES} rename attempts: {} accepted, {} refused; users.jsonl +{grown} bytes; the \
         viewer got {bytes} bytes for them and 10 messages; greeting {greeting_bytes} bytes; \
         /api/chat {} bytes",
        accepted.len(),
        refusals.len(),
        Value::Array(listed).to_string().len()
    );
    m.close();
    viewer.close();
    assert_still_serving(&mut server);
}

/// Issue 13: names that look exactly like the streamer's were accepted. Each of these shows as
/// "Ana Streams" (or as nothing) in a browser.
const LOOK_ALIKES_OF_THE_STREAMER: &[(&str, &str)] = &[
    ("right-to-left override", "\u{202e}smaertS anA"),
    ("right-to-left isolate", "\u{2067}Ana Streams\u{2069}"),
    ("left-to-right mark", "Ana Streams\u{200e}"),
    ("soft hyphen", "Ana Stre\u{ad}ams"),
    ("combining grapheme joiner", "Ana Str\u{34f}eams"),
    ("zero-width space", "Ana\u{200b} Streams"),
    ("tag characters", "Ana Streams\u{e0041}\u{e007f}"),
    ("variation selector 16", "Ana Streams\u{fe0f}"),
    ("variation selector 17", "Ana\u{e0100} Streams"),
    ("Cyrillic А, Ѕ, е, а", "\u{410}na \u{405}tr\u{435}\u{430}ms"),
    ("fullwidth letters", "Ａｎａ Ｓｔｒｅａｍｓ"),
    ("mathematical bold", "𝐀𝐧𝐚 𝐒𝐭𝐫𝐞𝐚𝐦𝐬"),
    ("rn for m", "Ana Strearns"),
    ("Hangul filler", "\u{3164}"),
    ("braille blank", "\u{2800}"),
    ("blank letters in a row", "\u{3164}\u{2800}\u{ffa0}"),
    ("Hangul choseong and jungseong fillers", "\u{115f}\u{1160}"),
    ("line separator", "Ana\u{2028}Streams"),
    ("paragraph separator", "Ana Streams\u{2029}!"),
];

#[test]
fn names_that_look_like_the_streamers_or_a_connected_users_are_refused() {
    let mut server = start("rate_burst = 200\n");
    let bob = register(&server, Some("Bob Builds"));
    let b = join_as(&server, &bob, "Bob");
    let (mut m, _) = join(&server, None, "impersonator");
    let (mut viewer, _) = join(&server, None, "viewer");

    let look_alikes_of_bob = [
        ("Bob's name", "Bob Builds"),
        ("in capitals", "BOB BUILDS"),
        ("Cyrillic В and о", "\u{412}\u{43e}b Builds"),
        ("mathematical bold", "𝐁𝐨𝐛 𝐁𝐮𝐢𝐥𝐝𝐬"),
    ];
    for (what, name) in LOOK_ALIKES_OF_THE_STREAMER
        .iter()
        .chain(&look_alikes_of_bob)
    {
        m.rename(name);
        let error = m.expect("an error event", |v| {
            v["type"].as_str().is_some_and(|t| t.starts_with("ERROR_"))
        });
        assert_eq!(
            error["type"], "ERROR_INVALID_NAME",
            "rename to {what} {name:?}: {error}"
        );
        let r = register_raw(&server, &json!({ "displayName": name }).to_string());
        assert_eq!(r.status, 400, "registered as {what} {name:?}: {}", r.text());
    }
    // Nobody saw a name change.
    m.chat("after the attempts");
    let seen = viewer.until("the message after", |v| {
        v["type"] == "CHAT" && v["body"] == "after the attempts"
    });
    assert!(
        !seen.iter().any(|v| v["type"] == "NAME_CHANGE"),
        "a refused name was broadcast: {seen:?}"
    );
    // Names in any script, with accents and emoji, are still names.
    for name in ["José", "Zoë 😀", "مريم", "李小龙"] {
        m.rename(name);
        let change = viewer.expect_type("NAME_CHANGE");
        assert_eq!(change["newName"], name, "{change}");
    }
    // Bob's name is free once he has left.
    b.close();
    viewer.expect("Bob's USER_PARTED", |v| {
        v["type"] == "USER_PARTED" && v["user"]["id"] == bob.id.as_str()
    });
    m.rename("Bob Builds");
    let change = viewer.expect_type("NAME_CHANGE");
    assert_eq!(change["newName"], "Bob Builds", "{change}");
    m.close();
    viewer.close();
    assert_still_serving(&mut server);
}

/// Issue 13: PING events were not rate-limited. Now they have a bucket of their own (10 at once,
/// then 1 a second), and a client that keeps sending them is closed like any flood.
#[test]
fn a_ping_flood_is_refused_and_closed() {
    let mut server = start("");
    let (mut p, _) = join(&server, None, "PING flooder");
    let (mut bystander, _) = join(&server, None, "bystander");
    let ping = || Message::Text(r#"{"type":"PING"}"#.to_string());
    let mut sent = 0;
    let closed = loop {
        assert!(
            sent < 200,
            "still open after {sent} PING events\n{}",
            p.dump()
        );
        sent += 1;
        if let Err(closed) = p.round_trip(ping()) {
            break closed;
        }
    };
    assert_eq!(
        closed,
        Closed::Frame(Some((1008, "too many messages: disconnected".to_string()))),
        "after {sent} PING events\n{}",
        p.dump()
    );
    // 10 went through (plus what the rate refilled meanwhile), then each was refused, and the
    // 20th refusal closed the connection.
    let refused: Vec<&Value> = p
        .received
        .iter()
        .filter(|v| v["type"] == "ERROR_RATE_LIMITED")
        .collect();
    assert!(refused.len() >= 20, "{}", p.dump());
    assert_eq!(
        refused.last().map(|v| &v["message"]),
        Some(&json!("too many messages: disconnected"))
    );
    assert!(sent >= 30, "closed after {sent} PING events\n{}", p.dump());
    // Keep-alives at a sane pace take nothing from what a client may say.
    let (mut q, _) = join(&server, None, "keep-alive client");
    for _ in 0..10 {
        q.round_trip(ping()).expect("open");
    }
    q.chat("keep-alives are free");
    bystander.expect_chat("keep-alives are free");
    q.close();
    bystander.close();
    assert_still_serving(&mut server);
}
