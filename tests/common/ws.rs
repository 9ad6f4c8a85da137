//! A blocking websocket client for the chat tests (`tungstenite`), one per simulated page.
//!
//! Every socket has short read and write timeouts, so nothing here can hang: a wait gives up
//! after its deadline and panics with everything this client received, which is what one needs
//! to see when a chat test fails. Events are JSON objects; the ones read past while waiting for
//! another stay queued (`inbox`) in arrival order, so no wait loses an event another one needs.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

/// How long a wait for an expected event lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// The socket's read timeout: how often a blocked read comes back to look at the clock.
const TICK: Duration = Duration::from_millis(50);

/// How the server ended a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame, with its code and reason if it had them.
    Frame(Option<(u16, String)>),
    /// The TCP connection ended (or was reset) without a close frame.
    Dropped(String),
}

impl Closed {
    pub fn code(&self) -> Option<u16> {
        match self {
            Closed::Frame(Some((code, _))) => Some(*code),
            _ => None,
        }
    }
}

/// What the next read gave.
#[derive(Debug)]
pub enum Next {
    Event(Value),
    Closed(Closed),
    Timeout,
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered the upgrade with another HTTP status.
    Http(u16, String),
    Other(String),
}

pub struct WsClient {
    ws: WebSocket<TcpStream>,
    /// For messages: which simulated page this is.
    pub label: String,
    inbox: VecDeque<Value>,
    /// Events of a message already read whose turn has not come (a message may carry several,
    /// one per line).
    unread: VecDeque<Value>,
    /// Everything received, in order (for failure messages).
    pub received: Vec<Value>,
    pub closed: Option<Closed>,
    /// Websocket pings sent by [`WsClient::round_trip`] (each carries its number).
    pings: u64,
}

/// What one read from the socket gave.
enum Frame {
    Event(Value),
    Pong(Vec<u8>),
    Closed(Closed),
    Timeout,
}

impl WsClient {
    /// Opens `ws://127.0.0.1:<port><path_and_query>`; the handshake too is bounded by `WAIT`.
    pub fn try_connect(
        port: u16,
        path_and_query: &str,
        label: &str,
    ) -> Result<WsClient, ConnectError> {
        let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), WAIT)
            .map_err(|e| ConnectError::Other(format!("connect to port {port}: {e}")))?;
        stream
            .set_read_timeout(Some(TICK))
            .and_then(|()| stream.set_write_timeout(Some(WAIT)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        let url = format!("ws://127.0.0.1:{port}{path_and_query}");
        let deadline = Instant::now() + WAIT;
        let mut attempt = tungstenite::client(url.as_str(), stream);
        let ws = loop {
            match attempt {
                Ok((ws, _response)) => break ws,
                Err(HandshakeError::Interrupted(mid)) => {
                    if Instant::now() > deadline {
                        return Err(ConnectError::Other(format!(
                            "{url}: no handshake answer within {WAIT:?}"
                        )));
                    }
                    attempt = mid.handshake();
                }
                Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                    let body = response
                        .body()
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default()
                        .into_owned();
                    return Err(ConnectError::Http(response.status().as_u16(), body));
                }
                Err(HandshakeError::Failure(e)) => {
                    return Err(ConnectError::Other(format!("{url}: {e}")))
                }
            }
        };
        Ok(WsClient {
            ws,
            label: label.to_string(),
            inbox: VecDeque::new(),
            unread: VecDeque::new(),
            received: Vec::new(),
            closed: None,
            pings: 0,
        })
    }

    /// `/ws`, with `?accessToken=` when `token` is given; panics if the upgrade fails.
    pub fn connect(port: u16, token: Option<&str>, label: &str) -> WsClient {
        let path = match token {
            Some(t) => format!("/ws?accessToken={t}"),
            None => "/ws".to_string(),
        };
        WsClient::try_connect(port, &path, label)
            .unwrap_or_else(|e| panic!("{label}: websocket {path}: {e:?}"))
    }

    // ---- sending ------------------------------------------------------------------------------

    /// Sends a frame; `Err` when the connection is gone (the server may close it at any time in
    /// the tests that provoke it).
    pub fn send(&mut self, message: Message) -> Result<(), String> {
        self.ws.send(message).map_err(|e| e.to_string())
    }

    pub fn send_text(&mut self, text: &str) -> Result<(), String> {
        self.send(Message::Text(text.to_string()))
    }

    /// `{"type":"CHAT","body":body}`; panics if the connection is gone.
    pub fn chat(&mut self, body: &str) {
        let text = json!({ "type": "CHAT", "body": body }).to_string();
        if let Err(e) = self.send_text(&text) {
            panic!(
                "{}: sending CHAT {body:?}: {e}\n{}",
                self.label,
                self.dump()
            );
        }
    }

    /// `{"type":"NAME_CHANGE","newName":name}`.
    pub fn rename(&mut self, name: &str) {
        let text = json!({ "type": "NAME_CHANGE", "newName": name }).to_string();
        if let Err(e) = self.send_text(&text) {
            panic!("{}: sending NAME_CHANGE: {e}\n{}", self.label, self.dump());
        }
    }

    /// Sends `message` and a websocket ping in one write, then reads until the server's pong:
    /// by then the server has dealt with `message` and sent whatever it answers (queued, like any
    /// event read past). For messages that may get no answer. One write, so the server never
    /// closes with part of it unread: closing with unread data resets the connection, and what
    /// the server sent last (its reason for closing) could be lost. `Err`: how the server ended
    /// the connection before its pong.
    pub fn round_trip(&mut self, message: Message) -> Result<(), Closed> {
        if let Some(closed) = &self.closed {
            return Err(closed.clone());
        }
        self.pings += 1;
        let marker = self.pings.to_be_bytes().to_vec();
        let written = self
            .ws
            .write(message)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let ping = Message::Ping(marker.clone());
                self.ws.write(ping).map_err(|e| e.to_string())
            })
            .and_then(|()| self.ws.flush().map_err(|e| e.to_string()));
        if let Err(e) = written {
            // Gone while writing: what it sent before is still to be read.
            let (events, closed) = self.expect_closed_after(e);
            self.inbox.extend(events);
            return Err(closed);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Frame::Pong(payload) if payload == marker => return Ok(()),
                Frame::Pong(_) => {}
                Frame::Event(v) => self.inbox.push_back(v),
                Frame::Closed(closed) => return Err(closed),
                Frame::Timeout => self.gave_up("the pong to our ping", Next::Timeout),
            }
        }
    }

    /// After a failed write: the events still readable and how the connection ended.
    fn expect_closed_after(&mut self, error: String) -> (Vec<Value>, Closed) {
        let mut events = Vec::new();
        loop {
            match self.read_frame(TICK) {
                Frame::Event(v) => events.push(v),
                Frame::Pong(_) => {}
                Frame::Closed(closed) => return (events, closed),
                Frame::Timeout => {
                    let closed = Closed::Dropped(error);
                    self.closed = Some(closed.clone());
                    return (events, closed);
                }
            }
        }
    }

    // ---- receiving ----------------------------------------------------------------------------

    /// The next event (queued first), waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        if let Some(v) = self.inbox.pop_front() {
            return Next::Event(v);
        }
        self.read(timeout)
    }

    /// Reads one event from the socket (not the inbox).
    fn read(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Frame::Event(v) => return Next::Event(v),
                Frame::Pong(_) => {}
                Frame::Closed(closed) => return Next::Closed(closed),
                Frame::Timeout => return Next::Timeout,
            }
        }
    }

    /// Reads one event or pong from the socket (not the inbox).
    fn read_frame(&mut self, timeout: Duration) -> Frame {
        if let Some(v) = self.unread.pop_front() {
            return Frame::Event(v);
        }
        if let Some(closed) = &self.closed {
            return Frame::Closed(closed.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    for line in text.split('\n') {
                        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                            panic!(
                                "{}: the server sent a line that is not JSON ({e}): {line:?}",
                                self.label
                            )
                        });
                        assert!(
                            value.is_object() && value["type"].is_string(),
                            "{}: an event without a string `type`: {line}",
                            self.label
                        );
                        self.received.push(value.clone());
                        self.unread.push_back(value);
                    }
                    if let Some(v) = self.unread.pop_front() {
                        return Frame::Event(v);
                    }
                }
                Ok(Message::Binary(b)) => {
                    panic!(
                        "{}: the server sent a binary frame of {} bytes",
                        self.label,
                        b.len()
                    )
                }
                Ok(Message::Close(frame)) => {
                    let closed =
                        Closed::Frame(frame.map(|f| (u16::from(f.code), f.reason.into_owned())));
                    self.closed = Some(closed.clone());
                    return Frame::Closed(closed);
                }
                Ok(Message::Pong(payload)) => return Frame::Pong(payload),
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if Instant::now() >= deadline {
                        return Frame::Timeout;
                    }
                }
                Err(e) => {
                    let closed = Closed::Dropped(e.to_string());
                    self.closed = Some(closed.clone());
                    return Frame::Closed(closed);
                }
            }
        }
    }

    /// Every event up to and including the first one `pred` accepts (queued events first);
    /// panics, naming `what`, if the connection closes or `WAIT` passes first.
    pub fn until(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Next::Event(v) => {
                    let hit = pred(&v);
                    seen.push(v);
                    if hit {
                        return seen;
                    }
                }
                other => self.gave_up(what, other),
            }
        }
    }

    /// Fails the test: the connection closed, or nothing came, while waiting for `what`.
    fn gave_up(&self, what: &str, next: Next) -> ! {
        match next {
            Next::Closed(c) => panic!(
                "{}: closed ({c:?}) while waiting for {what}\n{}",
                self.label,
                self.dump()
            ),
            _ => panic!("{}: no {what} within {WAIT:?}\n{}", self.label, self.dump()),
        }
    }

    /// The first event `pred` accepts; the ones before it stay queued, in order.
    pub fn expect(&mut self, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
        if let Some(i) = self.inbox.iter().position(&mut pred) {
            return self.inbox.remove(i).unwrap_or_default();
        }
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left) {
                Next::Event(v) if pred(&v) => break v,
                Next::Event(v) => skipped.push(v),
                other => self.gave_up(what, other),
            }
        };
        self.inbox.extend(skipped);
        found
    }

    /// The first event of type `kind`.
    pub fn expect_type(&mut self, kind: &str) -> Value {
        self.expect(kind, |v| v["type"] == kind)
    }

    /// The CHAT with this body.
    pub fn expect_chat(&mut self, body: &str) -> Value {
        self.expect(&format!("CHAT {body:?}"), |v| {
            v["type"] == "CHAT" && v["body"] == body
        })
    }

    /// Reads until the server ends the connection; returns the events before the end and how it
    /// ended. Panics if it is still open after `WAIT`.
    pub fn expect_closed(&mut self) -> (Vec<Value>, Closed) {
        let deadline = Instant::now() + WAIT;
        let mut events: Vec<Value> = self.inbox.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read(left) {
                Next::Event(v) => events.push(v),
                Next::Closed(c) => return (events, c),
                Next::Timeout => panic!(
                    "{}: the server did not close the connection within {WAIT:?}\n{}",
                    self.label,
                    self.dump()
                ),
            }
        }
    }

    /// Everything this client received, for failure messages.
    pub fn dump(&self) -> String {
        let mut out = format!(
            "---- {} received {} events (closed: {:?}) ----\n",
            self.label,
            self.received.len(),
            self.closed
        );
        for v in &self.received {
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out
    }

    /// Closes from our side (a page closing) and waits briefly for the server's answer.
    pub fn close(mut self) {
        if self.closed.is_some() {
            return;
        }
        if self.ws.close(None).is_err() {
            return;
        }
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
    }
}
