//! What the chat tests share (tests/chat_ws.rs, tests/chat_moderation.rs): a server with a known
//! admin password and streamer name, the chat's HTTP API and the admin API through `ureq`, and
//! joining the websocket as a registered user ([`super::ws::WsClient`]).

use std::io::Read;

use base64::Engine as _;
use serde_json::{json, Value};

use super::ws::{Closed, WsClient};
use super::{agent, Resp, Server, ServerOptions};

pub const PASSWORD: &str = "chat-test-admin-pw-7";
pub const STREAMER: &str = "Ana Streams";

/// A server whose `[chat]` section is `chat_toml`, with a known admin password and streamer name.
pub fn start(chat_toml: &str) -> Server {
    Server::start(options(chat_toml))
}

pub fn options(chat_toml: &str) -> ServerOptions {
    ServerOptions {
        extra_toml: format!(
            "\n[admin]\npassword = \"{PASSWORD}\"\n\n[chat]\nstreamer_name = \"{STREAMER}\"\n{chat_toml}\n"
        ),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

pub fn basic(user: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}").as_bytes());
    format!("Basic {encoded}")
}

pub fn admin_auth() -> String {
    basic("admin", PASSWORD)
}

/// Any method, optional body and Authorization header; any HTTP status comes back as `Resp`.
pub fn request(method: &str, url: &str, body: Option<&str>, authorization: Option<&str>) -> Resp {
    let req = with_authorization(agent().request(method, url), authorization);
    let result = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    into_resp(method, url, result)
}

/// `body` sent as `content_type` (an upload), any HTTP status back as `Resp`.
pub fn request_bytes(
    method: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
    authorization: Option<&str>,
) -> Resp {
    let req = with_authorization(agent().request(method, url), authorization);
    let result = req.set("Content-Type", content_type).send_bytes(body);
    into_resp(method, url, result)
}

fn with_authorization(req: ureq::Request, authorization: Option<&str>) -> ureq::Request {
    match authorization {
        Some(a) => req.set("Authorization", a),
        None => req,
    }
}

fn into_resp(method: &str, url: &str, result: Result<ureq::Response, ureq::Error>) -> Resp {
    let r = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = r.status();
    let mut names = r.headers_names();
    names.sort();
    names.dedup();
    let mut headers = Vec::new();
    for n in names {
        for v in r.all(&n) {
            headers.push((n.clone(), v.to_string()));
        }
    }
    let mut bytes = Vec::new();
    r.into_reader()
        .take(16 << 20)
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
    Resp {
        url: url.to_string(),
        status,
        headers,
        body: bytes,
    }
}

/// A registered chat user.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: String,
    pub token: String,
    pub name: String,
}

/// `POST /api/chat/register` with this body; the raw response.
pub fn register_raw(server: &Server, body: &str) -> Resp {
    request("POST", &server.url("/api/chat/register"), Some(body), None)
}

/// Registers, with `displayName` when given; checks the response's shape.
pub fn register(server: &Server, name: Option<&str>) -> Registered {
    let body = match name {
        Some(n) => json!({ "displayName": n }).to_string(),
        None => String::new(),
    };
    let r = register_raw(server, &body);
    assert_eq!(r.status, 200, "register {name:?}: {}", r.text());
    let v = r.json();
    let field = |k: &str| -> String {
        match v[k].as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => panic!("register response without a non-empty string {k:?}: {v}"),
        }
    };
    Registered {
        id: field("id"),
        token: field("accessToken"),
        name: field("displayName"),
    }
}

pub fn admin_post(server: &Server, path: &str, body: Value) -> Resp {
    request(
        "POST",
        &server.url(&format!("/api/admin{path}")),
        Some(&body.to_string()),
        Some(&admin_auth()),
    )
}

/// An admin POST that must succeed (200, JSON).
pub fn admin_ok(server: &Server, path: &str, body: Value) -> Value {
    let r = admin_post(server, path, body.clone());
    assert_eq!(r.status, 200, "POST /api/admin{path} {body}: {}", r.text());
    r.json()
}

pub fn admin_get(server: &Server, path: &str) -> Value {
    let r = request(
        "GET",
        &server.url(&format!("/api/admin{path}")),
        None,
        Some(&admin_auth()),
    );
    assert_eq!(r.status, 200, "GET /api/admin{path}: {}", r.text());
    r.json()
}

/// `GET /api/chat`: the history as the server lists it.
pub fn history(server: &Server) -> Vec<Value> {
    let r = request("GET", &server.url("/api/chat"), None, None);
    assert_eq!(r.status, 200, "GET /api/chat: {}", r.text());
    assert_eq!(r.header("Cache-Control"), Some("no-store"), "GET /api/chat");
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("GET /api/chat is not an array: {}", r.text()))
        .clone()
}

pub fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "CHAT")
        .map(|e| e["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Websocket helpers

/// Connects with `token` and reads CONNECTED_USER_INFO, which must be the first event.
pub fn join(server: &Server, token: Option<&str>, label: &str) -> (WsClient, Value) {
    let mut c = WsClient::connect(server.http_port, token, label);
    let info = c.until("CONNECTED_USER_INFO", |_| true).remove(0);
    assert_eq!(
        info["type"], "CONNECTED_USER_INFO",
        "{label}: the first event is not CONNECTED_USER_INFO: {info}"
    );
    (c, info)
}

/// Connects as a registered user and checks who the server says it is.
pub fn join_as(server: &Server, user: &Registered, label: &str) -> WsClient {
    let (c, info) = join(server, Some(&user.token), label);
    assert_eq!(info["user"]["id"], user.id.as_str(), "{label}: {info}");
    assert_eq!(
        info["user"]["displayName"],
        user.name.as_str(),
        "{label}: {info}"
    );
    c
}

/// The next `n` CHAT events (other events stay queued).
pub fn chats(c: &mut WsClient, n: usize) -> Vec<Value> {
    (0..n).map(|_| c.expect_type("CHAT")).collect()
}

/// Connecting is refused: the first event has type `kind`, then the server closes.
pub fn refused(server: &Server, token: Option<&str>, kind: &str, label: &str) -> Closed {
    let mut c = WsClient::connect(server.http_port, token, label);
    let (events, closed) = c.expect_closed();
    assert!(
        events.len() == 1 && events[0]["type"] == kind,
        "{label}: want exactly one {kind} before the close, got {events:?} then {closed:?}"
    );
    let message = events[0]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "{label}: the error event has no message: {}",
        events[0]
    );
    // The close frame gives the same reason (CHAT.md §9.4).
    if let Closed::Frame(Some((_, reason))) = &closed {
        assert_eq!(reason, message, "{label}: close reason");
    } else {
        panic!("{label}: no close frame with a code: {closed:?}");
    }
    closed
}

/// The server still answers `/api/status`, and a fresh client can join and chat.
pub fn assert_still_serving(server: &mut Server) {
    server.assert_running();
    let status = server.status();
    assert!(status["viewerCount"].is_number(), "{status}");
    let (mut fresh, _) = join(server, None, "fresh client");
    let body = "fresh hello";
    fresh.chat(body);
    let echo = fresh.expect_chat(body);
    assert!(echo["id"].is_string(), "{echo}");
    fresh.close();
}

pub fn check_timestamp(event: &Value) {
    let ts = event["timestamp"].as_str().unwrap_or_default();
    assert!(
        humantime::parse_rfc3339(ts).is_ok(),
        "timestamp {ts:?} is not RFC 3339 UTC: {event}"
    );
}

/// Joins and returns the CHAT events sent as history: everything between CONNECTED_USER_INFO
/// and the joiner's own USER_JOINED (the first live event it gets).
pub fn join_with_history(server: &Server, label: &str) -> (WsClient, Vec<Value>) {
    let (mut c, info) = join(server, None, label);
    let me = info["user"]["id"].as_str().unwrap().to_string();
    let mut before = c.until("its own USER_JOINED", |v| {
        v["type"] == "USER_JOINED" && v["user"]["id"] == me.as_str()
    });
    before.pop();
    assert!(
        before.iter().all(|v| v["type"] == "CHAT"),
        "{label}: history holds more than CHAT events: {before:?}"
    );
    (c, before)
}
