//! Every chat event to every connection, gathered into short rounds.
//!
//! [`RoundBroadcast`]: events wait in [`RoundBroadcast::push`] for at most [`ROUND`], then go
//! out together as one item of a `tokio::sync::broadcast` channel, their JSON joined by newlines
//! (as Owncast frames several events in one websocket message). So each connection's task wakes
//! and writes once per round, not once per event: with thousands of readers the cost of a busy chat is set by the rounds
//! per second, not by the messages per second, and a message waits at most one round.
//!
//! A send never waits for any receiver: a connection whose client cannot keep up falls more than
//! [`CAPACITY`] rounds behind, gets `Lagged`, and is closed by its task; nobody else notices.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

/// How long an event waits for others to go out with it.
pub const ROUND: Duration = Duration::from_millis(25);
/// Rounds a connection's client has not read yet, at most; more and it is dropped.
pub const CAPACITY: usize = 1024;

/// What every connection task receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// One or more events, already JSON, one per line.
    Events(Arc<str>),
    /// Close the connections of this user (disabled by a moderator).
    DisconnectUser(String),
    /// Close the connections from this address (banned).
    DisconnectIp(IpAddr),
    /// Events for this user's connections only (who they are now, a timeout), as JSON.
    ToUser(String, Arc<str>),
}

/// A broadcast channel whose sends are gathered into rounds: the channel and the events waiting
/// for the next round. Kept under the hub's lock, so what is pushed, sent and subscribed to is in
/// one order.
pub struct RoundBroadcast {
    sender: broadcast::Sender<Outbound>,
    waiting: Vec<Outbound>,
    /// Woken by the first event of a round (see [`RoundBroadcast::rounds`]).
    wake: Arc<Notify>,
}

impl Default for RoundBroadcast {
    fn default() -> Self {
        RoundBroadcast {
            sender: broadcast::channel(CAPACITY).0,
            waiting: Vec::new(),
            wake: Arc::new(Notify::new()),
        }
    }
}

impl RoundBroadcast {
    /// Queues `item` for the next round.
    pub fn push(&mut self, item: Outbound) {
        if self.waiting.is_empty() {
            self.wake.notify_one();
        }
        self.waiting.push(item);
    }

    /// Sends what is waiting now: events in a row become one item.
    pub fn flush(&mut self) {
        let mut events: Vec<Arc<str>> = Vec::new();
        for item in std::mem::take(&mut self.waiting) {
            match item {
                Outbound::Events(json) => events.push(json),
                other => {
                    self.send_events(&mut events);
                    let _ = self.sender.send(other);
                }
            }
        }
        self.send_events(&mut events);
    }

    fn send_events(&self, events: &mut Vec<Arc<str>>) {
        match events.len() {
            0 => return,
            1 => drop(self.sender.send(Outbound::Events(events[0].clone()))),
            _ => drop(
                self.sender
                    .send(Outbound::Events(join_lines(events).into())),
            ),
        }
        events.clear();
    }

    /// A receiver of everything pushed from now on. What is waiting goes out first, so a joiner
    /// that was given the history gets no message twice.
    pub fn subscribe(&mut self) -> broadcast::Receiver<Outbound> {
        self.flush();
        self.sender.subscribe()
    }

    /// Waits until something is pushed, then for the rest of the round; the caller then takes
    /// its lock and calls [`RoundBroadcast::flush`]. Runs for as long as the server does.
    pub fn rounds(&self) -> impl futures::Stream<Item = ()> {
        let wake = Arc::clone(&self.wake);
        futures::stream::unfold(wake, |wake| async move {
            wake.notified().await;
            tokio::time::sleep(ROUND).await;
            Some(((), wake))
        })
    }
}

/// Events as one websocket text message: one per line (JSON never holds a raw newline).
pub fn join_lines(events: &[impl AsRef<str>]) -> String {
    let mut text = String::with_capacity(events.iter().map(|e| e.as_ref().len() + 1).sum());
    for (n, event) in events.iter().enumerate() {
        if n > 0 {
            text.push('\n');
        }
        text.push_str(event.as_ref());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Outbound {
        Outbound::Events(text.into())
    }

    #[test]
    fn a_round_sends_events_in_a_row_as_one_item_in_order() {
        let mut fanout = RoundBroadcast::default();
        let mut rx = fanout.subscribe();
        let ban = Outbound::DisconnectIp(IpAddr::from([192, 0, 2, 1]));
        for item in [
            events("{\"a\":1}"),
            events("{\"b\":2}"),
            ban.clone(),
            events("{}"),
        ] {
            fanout.push(item);
        }
        assert!(rx.try_recv().is_err(), "nothing before the round ends");
        fanout.flush();
        assert_eq!(rx.try_recv().ok(), Some(events("{\"a\":1}\n{\"b\":2}")));
        assert_eq!(rx.try_recv().ok(), Some(ban));
        assert_eq!(rx.try_recv().ok(), Some(events("{}")));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_new_subscriber_gets_only_what_comes_after() {
        let mut fanout = RoundBroadcast::default();
        let mut early = fanout.subscribe();
        fanout.push(events("before"));
        let mut late = fanout.subscribe();
        fanout.push(events("after"));
        fanout.flush();
        assert_eq!(early.try_recv().ok(), Some(events("before")));
        assert_eq!(early.try_recv().ok(), Some(events("after")));
        assert_eq!(late.try_recv().ok(), Some(events("after")));
        assert!(late.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_push_starts_a_round() {
        use futures::StreamExt;
        let mut fanout = RoundBroadcast::default();
        let mut rounds = Box::pin(fanout.rounds());
        let started = tokio::time::Instant::now();
        fanout.push(events("x"));
        fanout.push(events("y"));
        rounds.next().await;
        assert_eq!(started.elapsed(), ROUND, "one round for both");
    }

    #[test]
    fn lines_are_joined_without_a_trailing_newline() {
        assert_eq!(join_lines(&["{}", "[]"]), "{}\n[]");
        assert_eq!(join_lines(&["{}"]), "{}");
        let none: [&str; 0] = [];
        assert_eq!(join_lines(&none), "");
    }
}
