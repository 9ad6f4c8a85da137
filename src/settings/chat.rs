//! The chat's live settings: on/off, the longest message, slow mode, how many may connect and
//! the streamer's name, as the console edits them (the first values are `config.toml`'s
//! `[chat]`), with the limits both are held to. The chat applies them at once
//! ([`crate::chat::Hub::apply_settings`]).

use serde::{Deserialize, Serialize};

use super::section::{field_error, FieldError, Section};
use crate::chat::names::check_name;
use crate::config::ChatConfig;

/// The longest message anyone may set, in characters.
pub const MAX_MESSAGE_CHARS: usize = 10_000;
/// Chat connections in all, at most.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// The slowest slow mode: one message an hour.
pub const MAX_SLOW_MODE_SECONDS: u32 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatValues {
    pub enabled: bool,
    pub streamer_name: String,
    pub max_message_chars: usize,
    /// Seconds a user waits between two messages (0: no slow mode). Moderators and the
    /// streamer do not wait.
    pub slow_mode_seconds: u32,
    pub max_connections: usize,
}

impl ChatValues {
    pub fn of_config(config: &ChatConfig) -> Self {
        ChatValues {
            enabled: config.enabled,
            streamer_name: config.streamer_name.clone(),
            max_message_chars: config.max_message_chars,
            slow_mode_seconds: config.slow_mode_seconds,
            max_connections: config.max_connections,
        }
    }

    /// `config` with these values in place of its own.
    pub fn applied_to(&self, config: &ChatConfig) -> ChatConfig {
        ChatConfig {
            enabled: self.enabled,
            streamer_name: self.streamer_name.clone(),
            max_message_chars: self.max_message_chars,
            slow_mode_seconds: self.slow_mode_seconds,
            max_connections: self.max_connections,
            ..config.clone()
        }
    }
}

impl Default for ChatValues {
    fn default() -> Self {
        ChatValues::of_config(&ChatConfig::default())
    }
}

impl Section for ChatValues {
    fn cleaned(self) -> Self {
        ChatValues {
            streamer_name: self.streamer_name.trim().to_owned(),
            ..self
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        check_name(&self.streamer_name)
            .map_err(|reason| field_error("streamerName", reason.to_string()))?;
        let ranges = [
            (
                "maxMessageChars",
                self.max_message_chars,
                1,
                MAX_MESSAGE_CHARS,
            ),
            (
                "slowModeSeconds",
                self.slow_mode_seconds as usize,
                0,
                MAX_SLOW_MODE_SECONDS as usize,
            ),
            ("maxConnections", self.max_connections, 1, MAX_CONNECTIONS),
        ];
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(field_error(
                    field,
                    format!("from {min} to {max} ({value} given)"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::section::Overrides;
    use super::*;

    fn patched(json: &str) -> Result<ChatValues, FieldError> {
        let config = ChatValues::default();
        let patch = serde_json::from_str(json).unwrap();
        Overrides::default()
            .patched(&config, patch)
            .map(|(_, values)| values)
    }

    #[test]
    fn limits_are_checked_by_field() {
        for (json, field) in [
            (r#"{"maxMessageChars": 0}"#, "maxMessageChars"),
            (r#"{"maxMessageChars": 10001}"#, "maxMessageChars"),
            (r#"{"slowModeSeconds": 3601}"#, "slowModeSeconds"),
            (r#"{"slowModeSeconds": -5}"#, "slowModeSeconds"),
            (r#"{"maxConnections": 0}"#, "maxConnections"),
            (r#"{"streamerName": "   "}"#, "streamerName"),
            (r#"{"streamerName": "a\nb"}"#, "streamerName"),
            (r#"{"enabled": "yes"}"#, "enabled"),
        ] {
            assert_eq!(patched(json).unwrap_err().field, field, "{json}");
        }
    }

    #[test]
    fn good_values_apply_over_the_config() {
        let values = patched(r#"{"streamerName": " Host ", "slowModeSeconds": 10}"#).unwrap();
        assert_eq!(values.streamer_name, "Host");
        let config = values.applied_to(&ChatConfig::default());
        assert_eq!(
            (config.slow_mode_seconds, config.streamer_name.as_str()),
            (10, "Host")
        );
        assert_eq!(
            config.rate_burst,
            ChatConfig::default().rate_burst,
            "others kept"
        );
    }
}
