//! Live chat beside the video: no accounts, a websocket per open page, one hub.
//!
//! - [`events`]: the JSON events on the wire (Owncast's names and shapes; docs/CHAT.md).
//! - [`names`]: random readable names and the rules for names.
//! - [`users`]: users, tokens and bans, persisted in `data_dir/chat/`.
//! - [`limits`]: the per-connection rate limit.
//! - [`presence`]: who is connected, counted per address and per user.
//! - [`fanout`]: every event to every connection, in rounds of a few milliseconds.
//! - [`hub`]: connections, history, moderation.
//! - [`connection`]: one websocket's task.

pub mod connection;
pub mod events;
pub mod fanout;
pub mod hub;
pub mod limits;
pub mod names;
pub mod presence;
pub mod users;

pub use hub::Hub;
