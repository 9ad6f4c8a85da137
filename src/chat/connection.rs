//! One chat websocket: what its client sends (checked, rate-limited, handed to the hub) and
//! what everyone says (from the hub's fan-out, sent on). One task per connection.
//!
//! ```text
//! connect ─▶ CONNECTED_USER_INFO, the history ─▶ loop { client frame │ hub event │ ping tick }
//! ```
//!
//! A client that cannot keep up (its socket does not drain, so the task falls more than the
//! fan-out's capacity behind, or one send takes longer than [`SEND_TIMEOUT`]) is closed; so is one
//! that keeps flooding after being refused, one whose user or address a moderator bans, and one
//! that sends nothing (not even a pong) for [`IDLE_TIMEOUT`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};
use warp::ws::{Message, WebSocket};

use super::events::{ClientEvent, ErrorKind};
use super::hub::{Hub, Outbound, Refused};
use super::limits::{RateLimit, Verdict};

/// A send that takes longer than this means the client is not reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings, and how long a silent client is kept.
const PING_EVERY: Duration = Duration::from_secs(20);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames larger than this end the connection: the websocket library refuses them before they
/// are buffered whole (a message is at most a few KiB of JSON).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Websocket close codes (RFC 6455 §7.4.1).
const POLICY_VIOLATION: u16 = 1008;
const TRY_AGAIN_LATER: u16 = 1013;

/// Runs the connection until either side ends it.
pub async fn run(hub: Arc<Hub>, socket: WebSocket, token: Option<String>, ip: IpAddr) {
    let (mut tx, mut rx) = socket.split();
    let joined = match hub.connect(token.as_deref(), ip) {
        Ok(joined) => joined,
        Err(refused) => {
            debug!(%ip, kind = ?refused.kind, "chat connection refused");
            let _ = send(&mut tx, hub.error_json(&refused)).await;
            let code = match refused.kind {
                ErrorKind::MaxConnectionsExceeded | ErrorKind::RateLimited => TRY_AGAIN_LATER,
                _ => POLICY_VIOLATION,
            };
            let _ = tx.send(Message::close_with(code, refused.message)).await;
            return;
        }
    };
    let connection = joined.connection;
    let user_id = joined.user.id.clone();
    let mut events = {
        let welcome = hub.welcome_json(&joined);
        let mut greeting = vec![welcome];
        greeting.extend(joined.history.iter().map(|m| m.to_string()));
        let mut ok = true;
        for text in greeting {
            if send(&mut tx, text).await.is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            hub.disconnect(connection);
            return;
        }
        joined.events
    };
    let config = hub.config().clone();
    let mut limit = RateLimit::new(config.rate_burst, config.rate_per_second, Instant::now());
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = Instant::now();
    let reason: &str = loop {
        tokio::select! {
            frame = rx.next() => {
                let Some(Ok(frame)) = frame else { break "the client left" };
                last_heard = Instant::now();
                if frame.is_close() {
                    break "the client left";
                }
                if frame.is_ping() || frame.is_pong() || frame.is_binary() && frame.as_bytes().is_empty() {
                    continue;
                }
                match handle(&hub, connection, frame.to_str().ok(), &mut limit) {
                    Ok(()) => {}
                    Err(Reply::Refused(refused)) => {
                        if send(&mut tx, hub.error_json(&refused)).await.is_err() { break "the client stopped reading" }
                    }
                    Err(Reply::Close(refused)) => {
                        let _ = send(&mut tx, hub.error_json(&refused)).await;
                        let _ = tx.send(Message::close_with(POLICY_VIOLATION, refused.message)).await;
                        break "flooding";
                    }
                }
            }
            event = events.recv() => match event {
                Ok(Outbound::Event(json)) => {
                    if send(&mut tx, json.to_string()).await.is_err() { break "the client stopped reading" }
                }
                Ok(Outbound::DisconnectUser(id)) if id == user_id => {
                    let refused = Refused { kind: ErrorKind::UserDisabled, message: "a moderator disabled your chat user".into() };
                    let _ = send(&mut tx, hub.error_json(&refused)).await;
                    let _ = tx.send(Message::close_with(POLICY_VIOLATION, "disabled")).await;
                    break "disabled by a moderator";
                }
                Ok(Outbound::DisconnectIp(banned)) if banned == ip => {
                    let refused = Refused { kind: ErrorKind::UserDisabled, message: "you are banned from this chat".into() };
                    let _ = send(&mut tx, hub.error_json(&refused)).await;
                    let _ = tx.send(Message::close_with(POLICY_VIOLATION, "banned")).await;
                    break "address banned by a moderator";
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    debug!(connection, missed, "chat client too slow");
                    let _ = tx.send(Message::close_with(TRY_AGAIN_LATER, "too slow: reconnect")).await;
                    break "too slow to keep up";
                }
                Err(RecvError::Closed) => break "the server is stopping",
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break "silent for too long";
                }
                if send_frame(&mut tx, Message::ping(Vec::new())).await.is_err() { break "the client stopped reading" }
            }
        }
    };
    let _ = tx.close().await;
    hub.disconnect(connection);
    if reason != "the client left" {
        info!(connection, %ip, reason, "chat connection closed");
    }
}

enum Reply {
    Refused(Refused),
    Close(Refused),
}

/// One frame from the client: `text` is `None` for a binary frame (or text that is not UTF-8).
fn handle(
    hub: &Hub,
    connection: u64,
    text: Option<&str>,
    limit: &mut RateLimit,
) -> Result<(), Reply> {
    let event = text.and_then(|text| serde_json::from_str::<ClientEvent>(text).ok());
    if matches!(event, Some(ClientEvent::Ping | ClientEvent::Pong)) {
        return Ok(());
    }
    // Messages and name changes reach everyone, and every frame that is no event gets an answer:
    // all of them count against the rate, so none can be sent without limit.
    match limit.check(Instant::now()) {
        Verdict::Allow => {}
        Verdict::Refuse => {
            return Err(Reply::Refused(Refused {
                kind: ErrorKind::RateLimited,
                message: "you are sending messages too fast: wait a moment".into(),
            }))
        }
        Verdict::Disconnect => {
            return Err(Reply::Close(Refused {
                kind: ErrorKind::RateLimited,
                message: "too many messages: disconnected".into(),
            }))
        }
    }
    match event {
        Some(ClientEvent::Chat { body }) => hub.chat(connection, &body),
        Some(ClientEvent::NameChange { new_name }) => hub.rename(connection, &new_name),
        Some(ClientEvent::Ping | ClientEvent::Pong) => Ok(()),
        None => Err(Refused {
            kind: ErrorKind::InvalidMessage,
            message: "not an event this server takes: send a text frame like \
                      {\"type\":\"CHAT\",\"body\":\"...\"}"
                .into(),
        }),
    }
    .map_err(Reply::Refused)
}

async fn send(tx: &mut (impl SinkExt<Message> + Unpin), text: String) -> Result<(), ()> {
    send_frame(tx, Message::text(text)).await
}

async fn send_frame(tx: &mut (impl SinkExt<Message> + Unpin), message: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
