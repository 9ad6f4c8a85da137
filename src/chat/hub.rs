//! The one place chat state lives: who is connected, the recent messages, the users, and the
//! fan-out of every event to every connection; and moderation, by the owner or by moderators
//! (the rules: [`super::moderation`]).
//!
//! Events are serialized once and handed to the fan-out ([`super::fanout`]), which sends them
//! out in short rounds; [`Hub::run_fanout`] ends each round. Everything is behind one mutex held
//! for microseconds (no I/O under it except the user and history logs' short appends, and their
//! compacting rewrites after every so many changes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use tokio::sync::broadcast;
use tracing::info;

use super::events::{rfc3339, ErrorKind, ServerEvent, SystemUser, UserJson};
use super::fanout::{Outbound, RoundBroadcast};
use super::history::{Hidden, History, Kept};
use super::limits::{PerMinute, NAME_CHANGES_PER_MINUTE};
use super::moderation::{self, Actor, By, Denied};
use super::names::{check_name, random_name, NameError, Skeletons};
use super::presence::Presence;
use super::users::{User, UserStore};
use crate::config::ChatConfig;
use crate::secrets::{random_token, SecretError};
use crate::settings::chat::ChatValues;

const TOKEN_LENGTH: usize = 32;
/// Random names drawn before one that looks like a name in use is kept anyway.
const RANDOM_NAME_DRAWS: usize = 4;

/// `[chat] streamer_name` cannot be a chat name (the chat checks it, not the config: the rules
/// for names are the chat's).
#[derive(Debug, thiserror::Error)]
#[error("[chat] streamer_name = {name:?} in the config cannot be a chat name")]
pub struct InvalidStreamerName {
    name: String,
    #[source]
    reason: NameError,
}

/// Why a connection or a message was refused: the event type to send and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub kind: ErrorKind,
    pub message: String,
    /// For a timed-out user: when it ends.
    pub until: Option<SystemTime>,
}

impl Refused {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Refused {
            kind,
            message: message.into(),
            until: None,
        }
    }

    /// A timed-out user's message or name change.
    fn timed_out(until: SystemTime) -> Self {
        Refused {
            kind: ErrorKind::TimedOut,
            message: format!(
                "a moderator timed you out until {} (UTC): you can read the chat but not write",
                humantime::format_rfc3339_seconds(until)
            ),
            until: Some(until),
        }
    }
}

/// An accepted connection, as its task needs it.
pub struct Joined {
    pub connection: u64,
    pub user: User,
    /// Set when the user was registered for this connection (it came without a token).
    pub new_token: Option<String>,
    pub events: broadcast::Receiver<Outbound>,
    /// The newest visible messages, oldest first.
    pub history: Vec<Arc<str>>,
}

/// A connected client, for the admin API.
#[derive(Debug, Clone)]
pub struct Client {
    pub connection: u64,
    pub user: User,
    pub ip: IpAddr,
    pub connected_at: SystemTime,
    pub messages: u64,
}

struct State {
    /// `[chat]`, with the console's live settings applied ([`Hub::apply_settings`]).
    config: ChatConfig,
    /// What the streamer's name looks like: nobody else's may look the same.
    streamer: Skeletons,
    users: UserStore,
    fanout: RoundBroadcast,
    presence: Presence,
    /// The newest messages, hidden ones included (they are never sent).
    history: History,
    next_event: u64,
    /// Registrations per address, name changes per user.
    registrations: PerMinute<IpAddr>,
    renames: PerMinute<String>,
    /// Slow mode: when each user last sent a message (forgotten once the wait is over).
    last_message: HashMap<String, Instant>,
}

pub struct Hub {
    state: Mutex<State>,
    /// Message ids are `<run>-<n>`: unique across restarts.
    run: String,
    started: SystemTime,
}

impl Hub {
    /// A hub over `users` and `history` (opened with `config.history_messages` as its limit).
    pub fn new(
        config: ChatConfig,
        users: UserStore,
        history: History,
    ) -> Result<Self, InvalidStreamerName> {
        let streamer_name =
            check_name(&config.streamer_name).map_err(|reason| InvalidStreamerName {
                name: config.streamer_name.clone(),
                reason,
            })?;
        let started = SystemTime::now();
        let run = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        let now = Instant::now();
        Ok(Hub {
            state: Mutex::new(State {
                streamer: Skeletons::of(&streamer_name),
                users,
                fanout: RoundBroadcast::default(),
                presence: Presence::default(),
                history,
                next_event: 0,
                registrations: PerMinute::new(config.registrations_per_minute, now),
                renames: PerMinute::new(NAME_CHANGES_PER_MINUTE, now),
                last_message: HashMap::new(),
                config,
            }),
            run,
            started,
        })
    }

    /// A hub that persists nothing (tests, fuzzing).
    pub fn in_memory(config: ChatConfig) -> Result<Self, InvalidStreamerName> {
        let history = History::in_memory(config.history_messages);
        Hub::new(config, UserStore::in_memory(), history)
    }

    /// The configuration in force now.
    pub fn config(&self) -> ChatConfig {
        self.lock().config.clone()
    }

    /// The console's chat settings, applied at once: a new limit holds from the next message
    /// or connection (nobody connected is sent away), a new streamer name from the next
    /// message, and turning chat off or on is announced to everyone.
    pub fn apply_settings(&self, values: &ChatValues) -> Result<(), InvalidStreamerName> {
        let streamer_name =
            check_name(&values.streamer_name).map_err(|reason| InvalidStreamerName {
                name: values.streamer_name.clone(),
                reason,
            })?;
        let mut state = self.lock();
        let was_enabled = state.config.enabled;
        state.config = values.applied_to(&state.config);
        state.streamer = Skeletons::of(&streamer_name);
        if was_enabled != values.enabled {
            self.announce_enabled(&mut state);
        }
        Ok(())
    }

    /// A new user for a client at `ip` with a readable random name (or `name`, if it is
    /// allowed), and its token.
    pub fn register(&self, name: Option<&str>, ip: IpAddr) -> Result<(User, String), Refused> {
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Some(check_name(name).map_err(invalid_name)?),
            None => None,
        };
        let mut state = self.lock();
        if let Some(name) = &name {
            self.check_look_alike(&state, &Skeletons::of(name), None)?;
        }
        self.count_registration(&mut state, ip)?;
        self.register_locked(&mut state, name).map_err(|_| {
            Refused::new(
                ErrorKind::NeedsRegistration,
                "the server could not create a user (no randomness); try again",
            )
        })
    }

    /// Accept a websocket from `ip` with `token` (none: register one on the fly).
    pub fn connect(&self, token: Option<&str>, ip: IpAddr) -> Result<Joined, Refused> {
        let mut state = self.lock();
        if state.users.is_banned(ip) {
            return Err(Refused::new(
                ErrorKind::UserDisabled,
                "you are banned from this chat",
            ));
        }
        if state.presence.total() >= state.config.max_connections {
            return Err(Refused::new(
                ErrorKind::MaxConnectionsExceeded,
                "the chat is full; try again later",
            ));
        }
        if state.presence.from_ip(&ip) >= state.config.max_connections_per_ip {
            return Err(Refused::new(
                ErrorKind::MaxConnectionsExceeded,
                format!(
                    "too many chat connections from your address (at most {})",
                    state.config.max_connections_per_ip
                ),
            ));
        }
        let (user, new_token) = match token.filter(|t| !t.is_empty()) {
            Some(token) => match state.users.by_token(token) {
                Some(user) if user.disabled_at.is_some() => {
                    return Err(Refused::new(
                        ErrorKind::UserDisabled,
                        "a moderator disabled your chat user",
                    ))
                }
                Some(user) => (user.clone(), None),
                None => {
                    return Err(Refused::new(
                        ErrorKind::NeedsRegistration,
                        "unknown access token: register again (POST /api/chat/register)",
                    ))
                }
            },
            None => {
                self.count_registration(&mut state, ip)?;
                let (user, token) = self.register_locked(&mut state, None).map_err(|_| {
                    Refused::new(
                        ErrorKind::NeedsRegistration,
                        "the server could not create a user; try again",
                    )
                })?;
                (user, Some(token))
            }
        };
        let added = state
            .presence
            .add(user.id.clone(), ip, Skeletons::of(&user.display_name));
        // Subscribe under the lock: the joiner gets every event after its history.
        let events = state.fanout.subscribe();
        let history = state.history.visible();
        if added.first_of_user {
            let event = ServerEvent::UserJoined {
                id: next_id(&mut state, &self.run),
                timestamp: now(),
                user: UserJson::of(&user),
            };
            broadcast(&mut state, &event);
        }
        Ok(Joined {
            connection: added.id,
            user,
            new_token,
            events,
            history,
        })
    }

    /// At most `registrations_per_minute` new users per address: a script cannot fill the
    /// user store.
    fn count_registration(&self, state: &mut State, ip: IpAddr) -> Result<(), Refused> {
        if state.registrations.try_count(ip, Instant::now()) {
            return Ok(());
        }
        Err(Refused::new(
            ErrorKind::RateLimited,
            "too many new chat users from your address: try again in a minute",
        ))
    }

    /// A name may not look like the streamer's, nor like one a connected user other than
    /// `user_id` holds.
    fn check_look_alike(
        &self,
        state: &State,
        name: &Skeletons,
        user_id: Option<&str>,
    ) -> Result<(), Refused> {
        if name.look_alike(&state.streamer) {
            return Err(invalid_name(NameError::Reserved));
        }
        if state
            .presence
            .held_by_another(name, user_id.unwrap_or_default())
        {
            return Err(invalid_name(NameError::Taken));
        }
        Ok(())
    }

    /// A new user, with `name` or a random one that looks like no name in use (or, if every
    /// draw did, the last one: the odds are below one in a million while fewer than a thousand
    /// users are connected).
    fn register_locked(
        &self,
        state: &mut State,
        name: Option<String>,
    ) -> Result<(User, String), SecretError> {
        let token = random_token(TOKEN_LENGTH)?;
        let mut id_bytes = [0u8; 8];
        getrandom::getrandom(&mut id_bytes).map_err(SecretError::Random)?;
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let name = match name {
            Some(name) => name,
            None => {
                let mut name = String::new();
                for _ in 0..RANDOM_NAME_DRAWS {
                    let mut random = [0u8; 3];
                    getrandom::getrandom(&mut random).map_err(SecretError::Random)?;
                    name = random_name(random);
                    if self
                        .check_look_alike(state, &Skeletons::of(&name), None)
                        .is_ok()
                    {
                        break;
                    }
                }
                name
            }
        };
        let user = state.users.register(id, token.clone(), name);
        Ok((user, token))
    }

    /// The connection closed.
    pub fn disconnect(&self, connection: u64) {
        let mut state = self.lock();
        let Some(gone) = state.presence.remove(connection) else {
            return;
        };
        if !gone.last_of_user {
            return;
        }
        if let Some(user) = state.users.get(&gone.connection.user_id).cloned() {
            let event = ServerEvent::UserParted {
                id: next_id(&mut state, &self.run),
                timestamp: now(),
                user: UserJson::of(&user),
            };
            broadcast(&mut state, &event);
        }
    }

    /// A message from a connection's user, checked and sent to everyone.
    pub fn chat(&self, connection: u64, body: &str) -> Result<(), Refused> {
        let chars = body.chars().count();
        let mut state = self.lock();
        if chars > state.config.max_message_chars {
            return Err(Refused::new(
                ErrorKind::MessageTooLong,
                format!(
                    "messages are at most {} characters (this one has {chars})",
                    state.config.max_message_chars
                ),
            ));
        }
        if body.trim().is_empty() {
            return Err(Refused::new(ErrorKind::InvalidMessage, "an empty message"));
        }
        if !state.config.enabled {
            return Err(Refused::new(
                ErrorKind::ChatDisabled,
                "chat is turned off for now",
            ));
        }
        let Some(conn) = state.presence.get_mut(connection) else {
            return Err(Refused::new(ErrorKind::NeedsRegistration, "not connected"));
        };
        conn.messages += 1;
        let user_id = conn.user_id.clone();
        let Some(user) = state.users.get(&user_id).cloned() else {
            return Err(Refused::new(ErrorKind::NeedsRegistration, "unknown user"));
        };
        if let Some(until) = user.timed_out_at(SystemTime::now()) {
            return Err(Refused::timed_out(until));
        }
        if !user.moderator {
            slow_mode(&mut state, &user.id, Instant::now())?;
        }
        self.post(&mut state, UserJson::of(&user), body);
        Ok(())
    }

    /// The streamer's message (admin API), marked as such.
    pub fn post_as_streamer(&self, body: &str) -> Result<String, Refused> {
        if body.trim().is_empty() {
            return Err(Refused::new(ErrorKind::InvalidMessage, "an empty message"));
        }
        let mut state = self.lock();
        let user = UserJson::streamer(&state.config.streamer_name, self.started);
        Ok(self.post(&mut state, user, body))
    }

    /// A notice to everyone from the system (admin API), not kept in the history.
    pub fn post_system(&self, body: &str) -> Result<String, Refused> {
        if body.trim().is_empty() {
            return Err(Refused::new(ErrorKind::InvalidMessage, "an empty message"));
        }
        let mut state = self.lock();
        let id = next_id(&mut state, &self.run);
        let event = ServerEvent::System {
            id: id.clone(),
            timestamp: now(),
            user: SystemUser {
                display_name: state.config.streamer_name.clone(),
            },
            body: body.to_owned(),
        };
        broadcast(&mut state, &event);
        Ok(id)
    }

    fn post(&self, state: &mut State, user: UserJson, body: &str) -> String {
        let id = next_id(state, &self.run);
        let user_id = user.id.clone();
        let event = ServerEvent::Chat {
            id: id.clone(),
            timestamp: now(),
            user,
            body: body.to_owned(),
            visible: true,
        };
        let json: Arc<str> = event.to_json().into();
        state.history.push(id.clone(), user_id, Arc::clone(&json));
        state.fanout.push(Outbound::Events(json));
        id
    }

    /// A connection's user takes a new name: a valid one, that looks like no other in use, at most
    /// [`NAME_CHANGES_PER_MINUTE`] times a minute (refused names do not count).
    pub fn rename(&self, connection: u64, new_name: &str) -> Result<(), Refused> {
        let name = check_name(new_name).map_err(invalid_name)?;
        let looks = Skeletons::of(&name);
        let mut state = self.lock();
        let Some(user_id) = state.presence.get(connection).map(|c| c.user_id.clone()) else {
            return Err(Refused::new(ErrorKind::NeedsRegistration, "not connected"));
        };
        let Some(user) = state.users.get(&user_id) else {
            return Err(Refused::new(ErrorKind::NeedsRegistration, "unknown user"));
        };
        let old_name = user.display_name.clone();
        if old_name == name {
            return Ok(());
        }
        if let Some(until) = user.timed_out_at(SystemTime::now()) {
            return Err(Refused::timed_out(until));
        }
        self.check_look_alike(&state, &looks, Some(&user_id))?;
        let at = Instant::now();
        if !state.renames.try_count(user_id.clone(), at) {
            let wait = state.renames.next_allowed(&user_id, at).as_secs() + 1;
            return Err(Refused::new(
                ErrorKind::RateLimited,
                format!(
                    "you can change your name {NAME_CHANGES_PER_MINUTE} times a minute: \
                     try again in {wait} s"
                ),
            ));
        }
        let Some(user) = state.users.rename(&user_id, name.clone()) else {
            return Err(Refused::new(ErrorKind::NeedsRegistration, "unknown user"));
        };
        state.presence.rename(&user_id, looks);
        let event = ServerEvent::NameChange {
            id: next_id(&mut state, &self.run),
            timestamp: now(),
            user: UserJson::of(&user),
            old_name,
            new_name: name,
        };
        broadcast(&mut state, &event);
        Ok(())
    }

    // ---- moderation ---------------------------------------------------------------------------

    /// Hide (or show again) messages: every page removes (or restores) them; hidden ones are never
    /// sent to a joiner. Returns how many of `ids` were known.
    ///
    /// For the owner, everyone gets all of `ids`, known or not (Owncast: a page may hold older
    /// messages than the server keeps). A moderator may only hide, and only kept messages they
    /// may hide ([`moderation::check_hide`]; one they may not refuses the whole request); pages
    /// get the ids that were visible, if any.
    pub fn set_visibility(
        &self,
        actor: Actor<'_>,
        ids: &[String],
        visible: bool,
    ) -> Result<usize, Denied> {
        let mut state = self.lock();
        let by = self.authorize(&state, actor)?;
        moderation::check_ids(ids)?;
        if visible {
            moderation::check_owner(&by, "only the owner can show hidden messages again")?;
        }
        for message in state.history.kept(ids) {
            moderation::check_hide(&by, &message.user_id, state.users.get(&message.user_id))?;
        }
        let known = state.history.kept(ids).count();
        let changed = if visible {
            state.history.show(ids)
        } else {
            let hidden = Hidden {
                at: SystemTime::now(),
                by: by.user_id().to_owned(),
            };
            state.history.hide(ids, hidden)
        };
        if let By::Moderator(moderator) = &by {
            info!(moderator = %moderator.id, messages = changed.len(), "chat messages hidden by a moderator");
        }
        let told = if by.is_owner() { ids.to_vec() } else { changed };
        if !told.is_empty() {
            let event = ServerEvent::VisibilityUpdate {
                id: next_id(&mut state, &self.run),
                timestamp: now(),
                ids: told,
                visible,
            };
            broadcast(&mut state, &event);
        }
        Ok(known)
    }

    /// Disable (ban) or enable a user; a disabled user's connections close, their token is
    /// refused and their visible messages are hidden. Enabling is the owner's.
    pub fn set_user_enabled(
        &self,
        actor: Actor<'_>,
        user_id: &str,
        enabled: bool,
    ) -> Result<User, Denied> {
        let mut state = self.lock();
        let by = self.authorize(&state, actor)?;
        if enabled {
            moderation::check_owner(&by, "only the owner can enable a user again")?;
        }
        moderation::check_restrict(&by, user_id, state.users.get(user_id))?;
        let user = state
            .users
            .set_enabled(user_id, enabled)
            .ok_or(Denied::NoSuchUser)?;
        if !enabled {
            info!(user = %user.id, name = %user.display_name, by = %by.user_id(), "chat user disabled");
            state.fanout.push(Outbound::DisconnectUser(user.id.clone()));
            // Their messages go too, as in Owncast.
            let ids = state.history.visible_of(&user.id);
            let hidden = Hidden {
                at: SystemTime::now(),
                by: by.user_id().to_owned(),
            };
            let ids = state.history.hide(&ids, hidden);
            if !ids.is_empty() {
                let event = ServerEvent::VisibilityUpdate {
                    id: next_id(&mut state, &self.run),
                    timestamp: now(),
                    ids,
                    visible: false,
                };
                broadcast(&mut state, &event);
            }
        }
        Ok(user)
    }

    /// Time a user out for `minutes` (0: lift their timeout, the owner's): they read but cannot
    /// write or rename. Their connections are told (a new CONNECTED_USER_INFO with
    /// `timedOutUntil`, and an `ERROR_TIMED_OUT` saying until when).
    pub fn time_out(&self, actor: Actor<'_>, user_id: &str, minutes: u32) -> Result<User, Denied> {
        let at = SystemTime::now();
        let mut state = self.lock();
        let by = self.authorize(&state, actor)?;
        let until = moderation::timeout_end(minutes, at)?;
        let target = moderation::check_restrict(&by, user_id, state.users.get(user_id))?;
        let running = target.timed_out_at(at);
        let until = match until {
            None => {
                moderation::check_owner(&by, "only the owner can lift a timeout")?;
                None
            }
            // A moderator's timeout never shortens one that runs.
            Some(until) if !by.is_owner() => Some(running.map_or(until, |r| r.max(until))),
            Some(until) => Some(until),
        };
        let user = state
            .users
            .set_timeout(user_id, until)
            .ok_or(Denied::NoSuchUser)?;
        info!(user = %user.id, name = %user.display_name, by = %by.user_id(), minutes, "chat user timed out");
        self.tell_user(&mut state, &user);
        if let Some(until) = until {
            let refused = Refused::timed_out(until);
            let notice = error_event(&mut state, &self.run, &refused).to_json();
            state
                .fanout
                .push(Outbound::ToUser(user.id.clone(), notice.into()));
        }
        Ok(user)
    }

    /// Make a user a moderator or a normal user again (the owner's, from the admin API). Their
    /// connections get a new CONNECTED_USER_INFO with the scopes (as in Owncast). `None`: no such
    /// user.
    pub fn set_moderator(&self, user_id: &str, moderator: bool) -> Option<User> {
        let mut state = self.lock();
        let user = state.users.set_moderator(user_id, moderator)?;
        info!(user = %user.id, name = %user.display_name, moderator, "chat moderator changed");
        self.tell_user(&mut state, &user);
        Some(user)
    }

    pub fn moderators(&self) -> Vec<User> {
        self.lock().users.moderators()
    }

    /// Every kept message, hidden ones included, oldest first (the console's moderation view).
    pub fn kept_messages(&self) -> Vec<Kept> {
        self.lock().history.all()
    }

    /// Who `actor` is, if they may moderate now.
    fn authorize(&self, state: &State, actor: Actor<'_>) -> Result<By, Denied> {
        match actor {
            Actor::Owner => Ok(By::Owner),
            Actor::Moderator(token) => {
                let user = Some(token)
                    .filter(|t| !t.is_empty())
                    .and_then(|t| state.users.by_token(t));
                moderation::check_moderator(user, SystemTime::now())
            }
        }
    }

    /// A new CONNECTED_USER_INFO to each of `user`'s connections: who they are now.
    fn tell_user(&self, state: &mut State, user: &User) {
        let info = ServerEvent::ConnectedUserInfo {
            id: next_id(state, &self.run),
            timestamp: now(),
            user: UserJson::of(user),
            access_token: None,
        };
        state
            .fanout
            .push(Outbound::ToUser(user.id.clone(), info.to_json().into()));
    }

    pub fn ban_ip(&self, ip: IpAddr) {
        let mut state = self.lock();
        state.users.ban_ip(ip);
        info!(%ip, "chat address banned by a moderator");
        state.fanout.push(Outbound::DisconnectIp(ip));
    }

    pub fn unban_ip(&self, ip: IpAddr) -> bool {
        self.lock().users.unban_ip(ip)
    }

    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.lock().users.is_banned(ip)
    }

    pub fn banned_ips(&self) -> Vec<(IpAddr, SystemTime)> {
        self.lock().users.banned_ips()
    }

    pub fn disabled_users(&self) -> Vec<User> {
        self.lock().users.disabled_users()
    }

    pub fn clients(&self) -> Vec<Client> {
        let state = self.lock();
        let mut clients: Vec<Client> = state
            .presence
            .iter()
            .filter_map(|(id, c)| {
                Some(Client {
                    connection: id,
                    user: state.users.get(&c.user_id)?.clone(),
                    ip: c.ip,
                    connected_at: c.connected_at,
                    messages: c.messages,
                })
            })
            .collect();
        clients.sort_by_key(|c| c.connection);
        clients
    }

    /// Tells everyone that chat is on, or off.
    fn announce_enabled(&self, state: &mut State) {
        let event = ServerEvent::System {
            id: next_id(state, &self.run),
            timestamp: now(),
            user: SystemUser {
                display_name: state.config.streamer_name.clone(),
            },
            body: if state.config.enabled {
                "Chat is on again."
            } else {
                "Chat is turned off for now."
            }
            .into(),
        };
        broadcast(state, &event);
    }

    pub fn chat_enabled(&self) -> bool {
        self.lock().config.enabled
    }

    /// The newest visible messages, oldest first (`GET /api/chat`).
    pub fn history(&self) -> Vec<Arc<str>> {
        self.lock().history.visible()
    }

    /// Reads who is connected (for the viewer count) under the hub's lock.
    pub fn with_presence<R>(&self, read: impl FnOnce(&Presence) -> R) -> R {
        read(&self.lock().presence)
    }

    /// An event for one client only (its task sends it), as JSON.
    pub fn error_json(&self, refused: &Refused) -> String {
        error_event(&mut self.lock(), &self.run, refused).to_json()
    }

    /// The CONNECTED_USER_INFO for a joiner, as JSON.
    pub fn welcome_json(&self, joined: &Joined) -> String {
        let id = next_id(&mut self.lock(), &self.run);
        ServerEvent::ConnectedUserInfo {
            id,
            timestamp: now(),
            user: UserJson::of(&joined.user),
            access_token: joined.new_token.clone(),
        }
        .to_json()
    }

    /// Ends a fan-out round whenever one is due; runs for as long as the server does.
    pub async fn run_fanout(&self) {
        let mut rounds = Box::pin(self.lock().fanout.rounds());
        while rounds.next().await.is_some() {
            self.lock().fanout.flush();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn invalid_name(reason: NameError) -> Refused {
    Refused::new(ErrorKind::InvalidName, reason.to_string())
}

fn broadcast(state: &mut State, event: &ServerEvent) {
    state.fanout.push(Outbound::Events(event.to_json().into()));
}

fn error_event(state: &mut State, run: &str, refused: &Refused) -> ServerEvent {
    ServerEvent::Error(super::events::ErrorEvent {
        kind: refused.kind,
        id: next_id(state, run),
        timestamp: now(),
        message: refused.message.clone(),
        until: refused.until.map(rfc3339),
    })
}

/// Slow mode: a user's message within `slow_mode_seconds` of their last one is refused. Only
/// users who posted within the wait are remembered.
fn slow_mode(state: &mut State, user_id: &str, now: Instant) -> Result<(), Refused> {
    let wait = Duration::from_secs(u64::from(state.config.slow_mode_seconds));
    state
        .last_message
        .retain(|_, at| now.saturating_duration_since(*at) < wait);
    if wait.is_zero() {
        return Ok(());
    }
    if let Some(at) = state.last_message.get(user_id) {
        let left = wait.saturating_sub(now.saturating_duration_since(*at));
        return Err(Refused::new(
            ErrorKind::RateLimited,
            format!(
                "slow mode: one message every {} s; wait {} s",
                wait.as_secs(),
                left.as_secs() + 1
            ),
        ));
    }
    state.last_message.insert(user_id.to_owned(), now);
    Ok(())
}

fn next_id(state: &mut State, run: &str) -> String {
    state.next_event += 1;
    format!("{run}-{}", state.next_event)
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(config: ChatConfig) -> Hub {
        Hub::in_memory(config).expect("a valid streamer name")
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn registrations_are_capped_per_address() {
        let hub = hub(ChatConfig {
            registrations_per_minute: 2,
            ..ChatConfig::default()
        });
        assert!(hub.register(None, ip(1)).is_ok());
        assert!(
            hub.connect(None, ip(1)).is_ok(),
            "a token-less connect registers too"
        );
        let refused = hub.register(Some("Ana"), ip(1)).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::RateLimited);
        assert_eq!(
            hub.connect(None, ip(1)).err().map(|r| r.kind),
            Some(ErrorKind::RateLimited)
        );
        assert!(
            hub.register(None, ip(2)).is_ok(),
            "another address is not affected"
        );
    }

    #[test]
    fn history_keeps_the_newest_and_a_ban_hides_the_users_messages() {
        let hub = hub(ChatConfig {
            history_messages: 3,
            ..ChatConfig::default()
        });
        let ana = hub.connect(None, ip(1)).unwrap();
        let bob = hub.connect(None, ip(2)).unwrap();
        for (who, body) in [(&ana, "a1"), (&bob, "b1"), (&ana, "a2"), (&bob, "b2")] {
            hub.chat(who.connection, body).unwrap();
        }
        let bodies = |hub: &Hub| -> Vec<String> {
            hub.history()
                .iter()
                .map(|json| {
                    serde_json::from_str::<serde_json::Value>(json).unwrap()["body"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(bodies(&hub), ["b1", "a2", "b2"]);
        let mut events = hub.lock().fanout.subscribe();
        hub.set_user_enabled(Actor::Owner, &bob.user.id, false)
            .unwrap();
        assert_eq!(bodies(&hub), ["a2"]);
        hub.lock().fanout.flush();
        // Bob's connections are told to close, and everyone to remove his messages.
        assert!(matches!(events.try_recv(), Ok(Outbound::DisconnectUser(id)) if id == bob.user.id));
        let Ok(Outbound::Events(json)) = events.try_recv() else {
            panic!("a visibility update")
        };
        let update: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(update["type"], "VISIBILITY-UPDATE");
        assert_eq!(update["ids"].as_array().unwrap().len(), 2);
        // His token is refused from now on; the address is not banned.
        let token = bob.new_token.clone().expect("registered on connect");
        let refused = hub.connect(Some(&token), ip(2)).err().map(|r| r.kind);
        assert_eq!(refused, Some(ErrorKind::UserDisabled));
        assert!(hub.connect(None, ip(2)).is_ok());
    }

    #[test]
    fn long_empty_and_disabled() {
        let hub = hub(ChatConfig {
            max_message_chars: 5,
            ..ChatConfig::default()
        });
        let ana = hub.connect(None, ip(1)).unwrap();
        assert!(
            hub.chat(ana.connection, "héllo").is_ok(),
            "5 characters, 6 bytes"
        );
        assert_eq!(
            hub.chat(ana.connection, "héllo!").unwrap_err().kind,
            ErrorKind::MessageTooLong
        );
        assert_eq!(
            hub.chat(ana.connection, "  ").unwrap_err().kind,
            ErrorKind::InvalidMessage
        );
        let off = ChatValues {
            enabled: false,
            ..ChatValues::of_config(&hub.config())
        };
        hub.apply_settings(&off).unwrap();
        assert_eq!(
            hub.chat(ana.connection, "hi").unwrap_err().kind,
            ErrorKind::ChatDisabled
        );
        assert!(hub.post_as_streamer("still here").is_ok());
    }

    #[test]
    fn settings_apply_at_once_and_slow_mode_spares_moderators() {
        let hub = hub(ChatConfig {
            rate_burst: 1000,
            ..ChatConfig::default()
        });
        let ana = hub.connect(None, ip(1)).unwrap();
        let mo = hub.connect(None, ip(2)).unwrap();
        hub.set_moderator(&mo.user.id, true).unwrap();
        let values = ChatValues {
            slow_mode_seconds: 30,
            max_message_chars: 3,
            streamer_name: "Host".into(),
            ..ChatValues::of_config(&hub.config())
        };
        hub.apply_settings(&values).unwrap();
        assert_eq!(
            hub.chat(ana.connection, "long").unwrap_err().kind,
            ErrorKind::MessageTooLong
        );
        hub.chat(ana.connection, "a1").unwrap();
        let slowed = hub.chat(ana.connection, "a2").unwrap_err();
        assert_eq!(slowed.kind, ErrorKind::RateLimited);
        assert!(slowed.message.contains("slow mode"), "{}", slowed.message);
        for body in ["m1", "m2", "m3"] {
            hub.chat(mo.connection, body)
                .expect("moderators do not wait");
        }
        // The new streamer name is reserved; the old one is free.
        assert_eq!(
            hub.register(Some("Host"), ip(3)).unwrap_err().kind,
            ErrorKind::InvalidName
        );
        assert!(hub.register(Some("Streamer"), ip(3)).is_ok());
        // Slow mode off: Ana may post again at once.
        let off = ChatValues {
            slow_mode_seconds: 0,
            ..values.clone()
        };
        hub.apply_settings(&off).unwrap();
        hub.chat(ana.connection, "a3").unwrap();
        hub.chat(ana.connection, "a4").unwrap();
        let bad = ChatValues {
            streamer_name: " ".into(),
            ..values
        };
        assert!(hub.apply_settings(&bad).is_err());
        assert_eq!(hub.config().streamer_name, "Host", "nothing applied");
    }

    #[test]
    fn slow_mode_forgets_users_once_their_wait_is_over() {
        let hub = hub(ChatConfig {
            slow_mode_seconds: 10,
            ..ChatConfig::default()
        });
        let mut state = hub.lock();
        let start = Instant::now();
        for n in 0..100 {
            slow_mode(&mut state, &format!("user{n}"), start).unwrap();
        }
        assert_eq!(state.last_message.len(), 100);
        assert!(slow_mode(&mut state, "user1", start + Duration::from_secs(9)).is_err());
        slow_mode(&mut state, "user1", start + Duration::from_secs(10)).unwrap();
        assert_eq!(state.last_message.len(), 1, "the others' waits are over");
    }

    fn streamer_hub() -> Hub {
        hub(ChatConfig {
            streamer_name: "Streamer".into(),
            rate_burst: 1000,
            ..ChatConfig::default()
        })
    }

    #[test]
    fn a_timeout_refuses_messages_and_names_until_it_ends() {
        let hub = streamer_hub();
        let ana = hub.connect(None, ip(1)).unwrap();
        let bob = hub.connect(None, ip(2)).unwrap();
        let mut events = hub.lock().fanout.subscribe();
        hub.time_out(Actor::Owner, &ana.user.id, 5).unwrap();
        let refused = hub.chat(ana.connection, "hi").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TimedOut);
        assert!(refused.until.is_some() && refused.message.contains("until"));
        let refused = hub.rename(ana.connection, "Other").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::TimedOut);
        assert!(hub.chat(bob.connection, "bob may").is_ok());
        // Her connections were told: who she is now, and until when.
        hub.lock().fanout.flush();
        let mut told = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Outbound::ToUser(id, json) = event {
                assert_eq!(id, ana.user.id);
                told.push(json);
            }
        }
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("CONNECTED_USER_INFO") && told[0].contains("timedOutUntil"));
        assert!(told[1].contains("ERROR_TIMED_OUT") && told[1].contains("\"until\""));
        // It ends by itself (here: as if its end had come).
        let past = SystemTime::now() - std::time::Duration::from_secs(1);
        hub.lock().users.set_timeout(&ana.user.id, Some(past));
        assert!(hub.chat(ana.connection, "back").is_ok());
        assert!(hub.rename(ana.connection, "Other").is_ok());
    }

    #[test]
    fn a_moderator_loses_their_powers_the_moment_they_are_demoted() {
        let hub = streamer_hub();
        let mo = hub.connect(None, ip(1)).unwrap();
        let token = mo.new_token.clone().unwrap();
        let bob = hub.connect(None, ip(2)).unwrap();
        hub.chat(bob.connection, "rude").unwrap();
        let id = hub.kept_messages()[0].id.clone();
        let as_mo = Actor::Moderator(&token);
        let forbidden = |r: Result<usize, Denied>| matches!(r, Err(Denied::Forbidden(_)));
        assert!(forbidden(hub.set_visibility(as_mo, &[id.clone()], false)));
        hub.set_moderator(&mo.user.id, true).unwrap();
        assert_eq!(hub.set_visibility(as_mo, &[id.clone()], false), Ok(1));
        assert_eq!(
            hub.kept_messages()[0].hidden.as_ref().map(|h| h.by.clone()),
            Some(mo.user.id.clone())
        );
        assert!(forbidden(hub.set_visibility(as_mo, &[id.clone()], true)));
        hub.set_moderator(&mo.user.id, false).unwrap();
        hub.set_visibility(Actor::Owner, &[id.clone()], true)
            .unwrap();
        assert!(forbidden(hub.set_visibility(as_mo, &[id], false)));
        assert_eq!(
            hub.history().len(),
            1,
            "shown again by the owner, not hidden again"
        );
        assert_eq!(
            hub.set_visibility(Actor::Moderator("nobody's"), &[], false),
            Err(Denied::NotSignedIn)
        );
    }

    #[test]
    fn the_streamer_name_must_be_a_name() {
        for (name, reason) in [
            ("", NameError::Empty),
            ("\u{202e}remaertS", NameError::Invisible),
        ] {
            let config = ChatConfig {
                streamer_name: name.into(),
                ..ChatConfig::default()
            };
            let error = Hub::in_memory(config).err().unwrap();
            assert_eq!(error.reason, reason, "{name:?}");
            assert!(error.to_string().contains("streamer_name"), "{error}");
        }
    }

    #[test]
    fn names_that_look_like_one_in_use_are_refused() {
        let hub = streamer_hub();
        let kind = |result: Result<(), Refused>| result.err().map(|r| (r.kind, r.message));
        let reserved = Some((ErrorKind::InvalidName, NameError::Reserved.to_string()));
        let taken = Some((ErrorKind::InvalidName, NameError::Taken.to_string()));
        // Bob registered and left; Bobby is connected.
        hub.register(Some("Bob"), ip(1)).unwrap();
        let (_, bobby) = hub.register(Some("Bobby"), ip(1)).unwrap();
        hub.connect(Some(&bobby), ip(1)).unwrap();
        let m = hub.connect(None, ip(2)).unwrap().connection;
        // The streamer's name, in Cyrillic (Ѕ, е, а) or fullwidth letters.
        assert_eq!(kind(hub.rename(m, "\u{405}tr\u{435}\u{430}mer")), reserved);
        assert_eq!(kind(hub.rename(m, "Ｓｔｒｅａｍｅｒ")), reserved);
        // A connected user's name ("Bobby"), or a look-alike of it (Cyrillic В and о).
        assert_eq!(kind(hub.rename(m, "bobby")), taken);
        assert_eq!(kind(hub.rename(m, "\u{412}\u{43e}bby")), taken);
        // Registration follows the same rules.
        let refused = hub.register(Some("BOBBY"), ip(3)).unwrap_err();
        assert_eq!(refused.message, NameError::Taken.to_string());
        // "Bob" is not connected: free.
        assert_eq!(kind(hub.rename(m, "Bob")), None);
    }

    #[test]
    fn name_changes_per_user_and_minute_are_capped() {
        let hub = streamer_hub();
        let tab1 = hub.connect(None, ip(1)).unwrap();
        let token = tab1.new_token.clone().unwrap();
        let tab2 = hub.connect(Some(&token), ip(1)).unwrap();
        let mut events = hub.lock().fanout.subscribe();
        for n in 0..NAME_CHANGES_PER_MINUTE {
            let tab = if n % 2 == 0 { &tab1 } else { &tab2 };
            hub.rename(tab.connection, &format!("Name{n}")).unwrap();
        }
        // Over the cap from either tab; invalid names and the same name are answered as before.
        for tab in [&tab1, &tab2] {
            let refused = hub.rename(tab.connection, "Another").unwrap_err();
            assert_eq!(refused.kind, ErrorKind::RateLimited);
            assert!(refused.message.contains("name"), "{}", refused.message);
        }
        let last = format!("Name{}", NAME_CHANGES_PER_MINUTE - 1);
        assert!(hub.rename(tab1.connection, &last).is_ok());
        assert_eq!(
            hub.rename(tab1.connection, "").unwrap_err().kind,
            ErrorKind::InvalidName
        );
        // Another user is not affected.
        let other = hub.connect(None, ip(2)).unwrap();
        assert!(hub.rename(other.connection, "Other").is_ok());
        hub.lock().fanout.flush();
        let mut changes = 0;
        while let Ok(Outbound::Events(json)) = events.try_recv() {
            changes += json.matches("\"NAME_CHANGE\"").count();
        }
        assert_eq!(changes, NAME_CHANGES_PER_MINUTE as usize + 1);
    }
}
