//! Live chat beside the video: no accounts, a websocket per open page, one hub.
//!
//! - [`events`]: the JSON events on the wire (Owncast's names and shapes; docs/CHAT.md).
//! - [`names`]: random readable names, the rules for names, and when two look alike.
//! - [`users`]: users, tokens, moderators, timeouts and bans, persisted in `data_dir/chat/`.
//! - [`history`]: the newest messages and whether they are hidden, persisted there too.
//! - [`journal`]: the append-only, compacted file both are persisted in.
//! - [`moderation`]: who may moderate whom (the owner, moderators).
//! - [`limits`]: the per-connection rate limits, and the caps per user or address and minute.
//! - [`presence`]: who is connected, counted per address and per user, and the names they hold.
//! - [`fanout`]: every event to every connection, in rounds of a few milliseconds
//!   ([`fanout::RoundBroadcast`]).
//! - [`hub`]: connections, history, moderation.
//! - [`connection`]: one websocket's task.

pub mod connection;
pub mod events;
pub mod fanout;
pub mod history;
pub mod hub;
pub mod journal;
pub mod limits;
pub mod moderation;
pub mod names;
pub mod presence;
pub mod users;

pub use hub::Hub;
