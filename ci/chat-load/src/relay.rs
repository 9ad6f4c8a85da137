//! The chat benchmark's reference server, "the bare relay": the floor of what selfcast's chat
//! fan-out costs when written the plain way with the same libraries. selfcast's CPU and memory
//! are reported as ratios to this.
//!
//! tokio + tokio-tungstenite (the websocket stack under warp), TCP_NODELAY (as warp sets it), one
//! `tokio::sync::broadcast` channel of 1024 events (selfcast's capacity; a connection that falls
//! further behind is closed with 1013, as selfcast does), one task per connection. A text frame
//! `{"body": ...}` becomes a CHAT event shaped and sized like selfcast's (type, id, timestamp, the
//! sender's user object, body, visible), serialized once with serde_json and broadcast; each task
//! sends every event on with a plain `send` (one frame, flushed: no batching). On connect a
//! CONNECTED_USER_INFO frame tells the load client it is admitted.
//!
//! Left out on purpose (selfcast's own features, not the fan-out): users and tokens on disk,
//! rate limits, history, joins and parts, pings, caps, moderation, HTTP routing.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const FANOUT_CAPACITY: usize = 1024;

pub fn run(listen: &str) -> io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen))
}

async fn serve(listen: &str) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!("relay: listening on {}", listener.local_addr()?);
    let (fanout, _) = broadcast::channel::<Arc<str>>(FANOUT_CAPACITY);
    let ids = Arc::new(Ids {
        run: now_ms(),
        next: AtomicU64::new(0),
    });
    let mut users = 0u64;
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                // As warp does for selfcast: each event goes out when sent, not held by Nagle.
                let _ = socket.set_nodelay(true);
                users += 1;
                tokio::spawn(connection(
                    socket,
                    fanout.clone(),
                    Arc::clone(&ids),
                    User::new(users),
                ));
            }
            // Out of file descriptors, most likely: say so and keep serving the others.
            Err(e) => {
                eprintln!("relay: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Event ids as selfcast makes them: `<start ms>-<counter>`.
struct Ids {
    run: u128,
    next: AtomicU64,
}

impl Ids {
    fn next(&self) -> String {
        format!("{}-{}", self.run, self.next.fetch_add(1, Relaxed) + 1)
    }
}

/// selfcast's user object, field for field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    display_name: String,
    display_color: u8,
    created_at: String,
    previous_names: Vec<String>,
    is_bot: bool,
    authenticated: bool,
}

impl User {
    fn new(n: u64) -> Self {
        User {
            id: format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            display_name: format!("CalmOtter{}", n % 100),
            display_color: (n % 8) as u8,
            created_at: timestamp(),
            previous_names: Vec::new(),
            is_bot: false,
            authenticated: false,
        }
    }
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    user: &'a User,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visible: Option<bool>,
}

#[derive(Deserialize)]
struct Incoming {
    body: String,
}

async fn connection(
    socket: TcpStream,
    fanout: broadcast::Sender<Arc<str>>,
    ids: Arc<Ids>,
    user: User,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(socket).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut events = fanout.subscribe();
    let welcome = Event {
        kind: "CONNECTED_USER_INFO",
        id: ids.next(),
        timestamp: timestamp(),
        user: &user,
        body: None,
        visible: None,
    };
    if tx.send(Message::Text(to_json(&welcome))).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(incoming) = serde_json::from_str::<Incoming>(&text) {
                        let chat = Event { kind: "CHAT", id: ids.next(), timestamp: timestamp(), user: &user, body: Some(incoming.body), visible: Some(true) };
                        let _ = fanout.send(to_json(&chat).into());
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(json) => {
                    if tx.send(Message::Text(json.to_string())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let close = CloseFrame { code: CloseCode::Again, reason: "too slow: reconnect".into() };
                    let _ = tx.send(Message::Close(Some(close))).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}

fn to_json(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_default()
}

fn timestamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
