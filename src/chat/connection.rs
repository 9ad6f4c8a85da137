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
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::{debug, info};
use warp::ws::{Message, WebSocket};

use super::events::{ClientEvent, ErrorKind};
use super::fanout::{join_lines, Outbound};
use super::hub::{Hub, Refused};
use super::limits::{ConnectionLimits, Counted, Verdict};

/// A send that takes longer than this means the client is not reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings, and how long a silent client is kept.
const PING_EVERY: Duration = Duration::from_secs(20);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames larger than this end the connection: the websocket library refuses them before they
/// are buffered whole (a message is at most a few KiB of JSON).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// At most this many fan-out rounds go out in one message (the task then returns to its
/// client's frames and ticks before taking more).
const BATCH_ROUNDS: usize = 64;

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
        let mut greeting: Vec<Arc<str>> = vec![hub.welcome_json(&joined).into()];
        greeting.extend(joined.history.iter().cloned());
        if send(&mut tx, join_lines(&greeting)).await.is_err() {
            hub.disconnect(connection);
            return;
        }
        joined.events
    };
    let config = hub.config();
    let mut limits =
        ConnectionLimits::new(config.rate_burst, config.rate_per_second, Instant::now());
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
                match handle(&hub, connection, frame.to_str().ok(), &mut limits) {
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
            event = events.recv() => {
                let batch = take_batch(event, &mut events, &user_id, ip);
                if !batch.events.is_empty() && send(&mut tx, join_lines(&batch.events)).await.is_err() {
                    break "the client stopped reading"
                }
                if let Some(ending) = batch.ending {
                    break end(&hub, &mut tx, connection, ending).await;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break "silent for too long";
                }
                if send_message(&mut tx, Message::ping(Vec::new())).await.is_err() { break "the client stopped reading" }
            }
        }
    };
    let _ = tx.close().await;
    hub.disconnect(connection);
    if reason != "the client left" {
        info!(connection, %ip, reason, "chat connection closed");
    }
}

/// Events from the fan-out to send in one message, and whether the connection ends after them.
#[derive(Debug)]
struct Batch {
    events: Vec<Arc<str>>,
    ending: Option<Ending>,
}

/// Why the fan-out ends a connection.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    UserDisabled,
    AddressBanned,
    /// The client fell this many events behind.
    Lagged(u64),
    ServerStopping,
}

/// `first` and every round already waiting behind it (at most [`BATCH_ROUNDS`]): a client that
/// fell behind catches up in one write instead of one per round, which is what lets a busy
/// server keep up (the more it falls behind, the more each write carries).
fn take_batch(
    first: Result<Outbound, RecvError>,
    events: &mut broadcast::Receiver<Outbound>,
    user_id: &str,
    ip: IpAddr,
) -> Batch {
    let mut batch = Batch {
        events: Vec::new(),
        ending: None,
    };
    let mut next = Some(first);
    while let Some(event) = next.take() {
        match event {
            Ok(Outbound::Events(json)) => batch.events.push(json),
            Ok(Outbound::DisconnectUser(id)) if id == user_id => {
                batch.ending = Some(Ending::UserDisabled)
            }
            Ok(Outbound::DisconnectIp(banned)) if banned == ip => {
                batch.ending = Some(Ending::AddressBanned)
            }
            Ok(Outbound::ToUser(id, json)) if id == user_id => batch.events.push(json),
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => batch.ending = Some(Ending::Lagged(missed)),
            Err(RecvError::Closed) => batch.ending = Some(Ending::ServerStopping),
        }
        if batch.ending.is_none() && batch.events.len() < BATCH_ROUNDS {
            next = match events.try_recv() {
                Ok(event) => Some(Ok(event)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            };
        }
    }
    batch
}

/// Tells the client why it is being closed (where there is something to say); returns the
/// reason for the log.
async fn end(
    hub: &Hub,
    tx: &mut (impl SinkExt<Message> + Unpin),
    connection: u64,
    ending: Ending,
) -> &'static str {
    let (notice, close, reason) = match ending {
        Ending::UserDisabled => (
            Some("a moderator disabled your chat user"),
            Message::close_with(POLICY_VIOLATION, "disabled"),
            "disabled by a moderator",
        ),
        Ending::AddressBanned => (
            Some("you are banned from this chat"),
            Message::close_with(POLICY_VIOLATION, "banned"),
            "address banned by a moderator",
        ),
        Ending::Lagged(missed) => {
            debug!(connection, missed, "chat client too slow");
            (
                None,
                Message::close_with(TRY_AGAIN_LATER, "too slow: reconnect"),
                "too slow to keep up",
            )
        }
        Ending::ServerStopping => return "the server is stopping",
    };
    if let Some(message) = notice {
        let refused = Refused::new(ErrorKind::UserDisabled, message);
        let _ = send(tx, hub.error_json(&refused)).await;
    }
    let _ = tx.send(close).await;
    reason
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
    limits: &mut ConnectionLimits,
) -> Result<(), Reply> {
    let event = text.and_then(|text| serde_json::from_str::<ClientEvent>(text).ok());
    // Messages and name changes reach everyone, every frame that is no event gets an answer, and
    // even a keep-alive is parsed: all of them count, so none can be sent without limit.
    let counted = match event {
        Some(ClientEvent::Ping | ClientEvent::Pong) => Counted::KeepAlive,
        _ => Counted::Message,
    };
    match limits.check(counted, Instant::now()) {
        Verdict::Allow => {}
        Verdict::Refuse => {
            return Err(Reply::Refused(Refused::new(
                ErrorKind::RateLimited,
                "you are sending messages too fast: wait a moment",
            )))
        }
        Verdict::Disconnect => {
            return Err(Reply::Close(Refused::new(
                ErrorKind::RateLimited,
                "too many messages: disconnected",
            )))
        }
    }
    match event {
        Some(ClientEvent::Chat { body }) => hub.chat(connection, &body),
        Some(ClientEvent::NameChange { new_name }) => hub.rename(connection, &new_name),
        Some(ClientEvent::Ping | ClientEvent::Pong) => Ok(()),
        None => Err(Refused::new(
            ErrorKind::InvalidMessage,
            "not an event this server takes: send a text frame like \
             {\"type\":\"CHAT\",\"body\":\"...\"}",
        )),
    }
    .map_err(Reply::Refused)
}

async fn send(tx: &mut (impl SinkExt<Message> + Unpin), text: String) -> Result<(), ()> {
    send_message(tx, Message::text(text)).await
}

/// Writes and flushes `message`, giving up after [`SEND_TIMEOUT`].
async fn send_message(
    tx: &mut (impl SinkExt<Message> + Unpin),
    message: Message,
) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "me";

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn event(text: &str) -> Outbound {
        Outbound::Events(text.into())
    }

    fn texts(batch: &Batch) -> Vec<&str> {
        batch.events.iter().map(|e| &**e).collect()
    }

    #[test]
    fn waiting_events_go_out_together_up_to_the_batch_size() {
        let (fanout, mut events) = broadcast::channel(1024);
        for n in 0..BATCH_ROUNDS + 10 {
            fanout.send(event(&n.to_string())).unwrap();
        }
        let first = events.try_recv().map_err(|_| RecvError::Closed);
        let batch = take_batch(first, &mut events, ME, ip(1));
        assert_eq!(batch.events.len(), BATCH_ROUNDS);
        assert_eq!((texts(&batch)[0], &batch.ending), ("0", &None));
        let first = events.try_recv().map_err(|_| RecvError::Closed);
        let rest = take_batch(first, &mut events, ME, ip(1));
        assert_eq!(rest.events.len(), 10, "the rest on the next turn");
        assert_eq!(texts(&rest)[0], BATCH_ROUNDS.to_string());
    }

    #[test]
    fn moderation_for_others_is_skipped_and_for_this_connection_ends_it() {
        let (fanout, mut events) = broadcast::channel(16);
        fanout
            .send(Outbound::DisconnectUser("other".into()))
            .unwrap();
        fanout.send(Outbound::DisconnectIp(ip(2))).unwrap();
        fanout.send(event("a")).unwrap();
        fanout.send(Outbound::DisconnectIp(ip(1))).unwrap();
        fanout.send(event("after the ban")).unwrap();
        let first = events.try_recv().map_err(|_| RecvError::Closed);
        let batch = take_batch(first, &mut events, ME, ip(1));
        assert_eq!(texts(&batch), ["a"]);
        assert_eq!(batch.ending, Some(Ending::AddressBanned));

        let first = Ok(Outbound::DisconnectUser(ME.into()));
        let batch = take_batch(first, &mut events, ME, ip(1));
        assert_eq!(batch.ending, Some(Ending::UserDisabled));
    }

    #[test]
    fn falling_behind_the_fanout_ends_the_connection() {
        let (fanout, mut events) = broadcast::channel(2);
        fanout.send(event("a")).unwrap();
        let first = events.try_recv().map_err(|_| RecvError::Closed);
        for text in ["b", "c", "d"] {
            fanout.send(event(text)).unwrap();
        }
        let batch = take_batch(first, &mut events, ME, ip(1));
        assert_eq!(texts(&batch), ["a"]);
        assert_eq!(batch.ending, Some(Ending::Lagged(1)));
    }
}
