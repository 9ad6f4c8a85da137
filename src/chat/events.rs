//! The chat's wire format: JSON events with a `type` field, named and shaped as Owncast's so
//! that its chat clients and bots work (docs/CHAT.md has one example of each).
//!
//! Server → client events are built here and serialized once per broadcast; client → server
//! events are parsed here, and anything else is an error for that client only.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::users::User;

/// Scopes on a user object: moderators (and the streamer) have the first, which Owncast clients
/// show as a moderator badge; the selfcast page marks the streamer by the second.
pub const MODERATOR_SCOPE: &str = "MODERATOR";
pub const STREAMER_SCOPE: &str = "STREAMER";

/// A user as events show it (Owncast's `user` object).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserJson {
    pub id: String,
    pub display_name: String,
    /// 0..=7: the page's palette index, stable per user.
    pub display_color: u8,
    pub created_at: String,
    pub previous_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_changed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<&'static str>,
    /// (selfcast) While the user is timed out: until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out_until: Option<String>,
    pub is_bot: bool,
    pub authenticated: bool,
}

impl UserJson {
    pub fn of(user: &User) -> Self {
        UserJson {
            id: user.id.clone(),
            display_name: user.display_name.clone(),
            display_color: color_of(&user.id),
            created_at: rfc3339(user.created_at),
            previous_names: user.previous_names.clone(),
            name_changed_at: user.name_changed_at.map(rfc3339),
            disabled_at: user.disabled_at.map(rfc3339),
            scopes: if user.moderator {
                vec![MODERATOR_SCOPE]
            } else {
                Vec::new()
            },
            timed_out_until: user.timed_out_at(SystemTime::now()).map(rfc3339),
            is_bot: false,
            authenticated: false,
        }
    }

    /// The streamer, posting through the admin API.
    pub fn streamer(name: &str, since: SystemTime) -> Self {
        UserJson {
            id: STREAMER_ID.to_owned(),
            display_name: name.to_owned(),
            display_color: 0,
            created_at: rfc3339(since),
            previous_names: Vec::new(),
            name_changed_at: None,
            disabled_at: None,
            scopes: vec![MODERATOR_SCOPE, STREAMER_SCOPE],
            timed_out_until: None,
            is_bot: false,
            authenticated: true,
        }
    }
}

/// The streamer's user id (no registered user can have it: ids are random hex).
pub const STREAMER_ID: &str = "streamer";

/// Server → client.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ServerEvent {
    #[serde(rename = "CHAT")]
    Chat {
        id: String,
        timestamp: String,
        user: UserJson,
        body: String,
        visible: bool,
    },
    #[serde(rename = "NAME_CHANGE")]
    NameChange {
        id: String,
        timestamp: String,
        user: UserJson,
        old_name: String,
        new_name: String,
    },
    #[serde(rename = "USER_JOINED")]
    UserJoined {
        id: String,
        timestamp: String,
        user: UserJson,
    },
    #[serde(rename = "USER_PARTED")]
    UserParted {
        id: String,
        timestamp: String,
        user: UserJson,
    },
    /// To one client when it connects: who it is. `access_token` only when the server just
    /// registered it (it connected without one), so the page can keep it.
    #[serde(rename = "CONNECTED_USER_INFO")]
    ConnectedUserInfo {
        id: String,
        timestamp: String,
        user: UserJson,
        #[serde(skip_serializing_if = "Option::is_none")]
        access_token: Option<String>,
    },
    #[serde(rename = "VISIBILITY-UPDATE")]
    VisibilityUpdate {
        id: String,
        timestamp: String,
        ids: Vec<String>,
        visible: bool,
    },
    #[serde(rename = "SYSTEM")]
    System {
        id: String,
        timestamp: String,
        user: SystemUser,
        body: String,
    },
    /// To one client: what it sent was refused. `kind` is the error's `type`.
    #[serde(untagged)]
    Error(ErrorEvent),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemUser {
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEvent {
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    pub id: String,
    pub timestamp: String,
    /// For people: what happened and what to do.
    pub message: String,
    /// (selfcast) `ERROR_TIMED_OUT`: when the timeout ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// The error events' types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorKind {
    /// The access token is unknown: register again.
    #[serde(rename = "ERROR_NEEDS_REGISTRATION")]
    NeedsRegistration,
    /// Too many connections (from this address or in all).
    #[serde(rename = "ERROR_MAX_CONNECTIONS_EXCEEDED")]
    MaxConnectionsExceeded,
    /// A moderator disabled this user (or banned the address).
    #[serde(rename = "ERROR_USER_DISABLED")]
    UserDisabled,
    /// The moderator turned chat off for now.
    #[serde(rename = "CHAT_DISABLED")]
    ChatDisabled,
    /// The message is longer than the limit.
    #[serde(rename = "ERROR_MESSAGE_TOO_LONG")]
    MessageTooLong,
    /// Too many messages: slow down.
    #[serde(rename = "ERROR_RATE_LIMITED")]
    RateLimited,
    /// The new name is not allowed.
    #[serde(rename = "ERROR_INVALID_NAME")]
    InvalidName,
    /// Not JSON, or no event the server takes.
    #[serde(rename = "ERROR_INVALID_MESSAGE")]
    InvalidMessage,
    /// (selfcast) A moderator timed this user out: no messages or name changes until `until`.
    #[serde(rename = "ERROR_TIMED_OUT")]
    TimedOut,
}

impl ServerEvent {
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail (no maps with non-string keys, no custom impls).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Client → server.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum ClientEvent {
    #[serde(rename = "CHAT")]
    Chat { body: String },
    #[serde(rename = "NAME_CHANGE", rename_all = "camelCase")]
    NameChange { new_name: String },
    #[serde(rename = "PING")]
    Ping,
    #[serde(rename = "PONG")]
    Pong,
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// A stable palette index for a user id (FNV-1a).
fn color_of(id: &str) -> u8 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (hash % 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn ana() -> User {
        User {
            id: "9f2c".into(),
            display_name: "Ana".into(),
            created_at: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
            previous_names: vec!["CalmOtter42".into()],
            name_changed_at: None,
            disabled_at: None,
            moderator: false,
            timed_out_until: None,
        }
    }

    #[test]
    fn chat_event_as_owncast_clients_read_it() {
        let event = ServerEvent::Chat {
            id: "m1".into(),
            timestamp: "2025-11-24T16:00:00.000Z".into(),
            user: UserJson::of(&ana()),
            body: "hi".into(),
            visible: true,
        };
        let color = color_of("9f2c");
        assert_eq!(
            event.to_json(),
            format!(
                r#"{{"type":"CHAT","id":"m1","timestamp":"2025-11-24T16:00:00.000Z","user":{{"id":"9f2c","displayName":"Ana","displayColor":{color},"createdAt":"2025-11-24T16:00:00.000Z","previousNames":["CalmOtter42"],"isBot":false,"authenticated":false}},"body":"hi","visible":true}}"#
            )
        );
    }

    #[test]
    fn errors_and_visibility() {
        let error = ServerEvent::Error(ErrorEvent {
            kind: ErrorKind::RateLimited,
            id: "e1".into(),
            timestamp: "t".into(),
            message: "slow down".into(),
            until: None,
        });
        assert_eq!(
            error.to_json(),
            r#"{"type":"ERROR_RATE_LIMITED","id":"e1","timestamp":"t","message":"slow down"}"#
        );
        let hide = ServerEvent::VisibilityUpdate {
            id: "v1".into(),
            timestamp: "t".into(),
            ids: vec!["m1".into()],
            visible: false,
        };
        assert_eq!(
            hide.to_json(),
            r#"{"type":"VISIBILITY-UPDATE","id":"v1","timestamp":"t","ids":["m1"],"visible":false}"#
        );
    }

    #[test]
    fn client_events() {
        let parse = |s: &str| serde_json::from_str::<ClientEvent>(s).ok();
        assert!(
            matches!(parse(r#"{"type":"CHAT","body":"hi"}"#), Some(ClientEvent::Chat { body }) if body == "hi")
        );
        assert!(matches!(
            parse(r#"{"type":"NAME_CHANGE","newName":"Bo"}"#),
            Some(ClientEvent::NameChange { new_name }) if new_name == "Bo"
        ));
        assert!(matches!(
            parse(r#"{"type":"PONG"}"#),
            Some(ClientEvent::Pong)
        ));
        assert!(parse(r#"{"type":"CHAT"}"#).is_none());
        assert!(parse(r#"{"type":"SYSTEM","body":"x"}"#).is_none());
        assert!(parse("not json").is_none());
    }
}
