//! `config.toml`: the one file an owner edits. Every key has a default that works; unknown keys,
//! wrong types and bad values are errors that name the file, the line and the key, so a typo
//! never silently falls back to a default.
//!
//! Secrets have no defaults: a missing stream key is generated and persisted (see [`crate::secrets`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub rtmp: RtmpConfig,
    pub http: HttpConfig,
    pub hls: HlsConfig,
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where generated secrets (and later chat state) are kept.
    pub data_dir: PathBuf,
    /// Shown on the page and in `/api/status` as `streamTitle`.
    pub title: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            title: "selfcast".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    pub listen: SocketAddr,
    /// RTMP application name: `rtmp://HOST:PORT/<app>`.
    pub app: String,
    /// Absent: generated, saved in `data_dir`, printed at start-up.
    pub stream_key: Option<String>,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 1935).into(),
            app: "live".into(),
            stream_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The owner's page files; each overrides the built-in file of the same path.
    pub static_dir: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 8080).into(),
            static_dir: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Target segment length; segments are cut on the first keyframe at or after it.
    pub segment_seconds: u32,
    /// Segments in the rolling live playlist.
    pub playlist_segments: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            segment_seconds: 2,
            playlist_segments: 6,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
}

/// Where video is distributed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Served by selfcast from memory.
    #[default]
    Memory,
}

/// A config file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl Config {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check config text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                ConfigError::Invalid {
                    file: file.to_owned(),
                    line: inner.span().map_or(0, |span| line_of(text, span.start)),
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: inner.message().trim().to_owned(),
                }
            })?;
        config.validate(text, file)?;
        Ok(config)
    }

    /// Range checks that types alone cannot express.
    fn validate(&self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            line: line_of_key(text, key),
            key: key.to_owned(),
            message,
        };
        if !(1..=30).contains(&self.hls.segment_seconds) {
            return Err(invalid(
                "hls.segment_seconds",
                format!(
                    "{} is out of range: use 1 to 30 (2 is usual)",
                    self.hls.segment_seconds
                ),
            ));
        }
        if !(3..=100).contains(&self.hls.playlist_segments) {
            return Err(invalid(
                "hls.playlist_segments",
                format!(
                    "{} is out of range: use 3 to 100 (RFC 8216 asks for at least 3 segments)",
                    self.hls.playlist_segments
                ),
            ));
        }
        if let Some(key) = &self.rtmp.stream_key {
            if key.len() < 8
                || !key
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '/' && c != '?')
            {
                return Err(invalid(
                    "rtmp.stream_key",
                    "must be at least 8 printable characters without '/', '?' or spaces; \
                     remove it to have a strong one generated"
                        .into(),
                ));
            }
        }
        let app = self.rtmp.app.trim_matches('/');
        if app.is_empty() || app.contains('/') {
            return Err(invalid(
                "rtmp.app",
                "must be one path segment, like \"live\"".into(),
            ));
        }
        Ok(())
    }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line of `section.key` for errors found after parsing (0 when not written).
fn line_of_key(text: &str, dotted: &str) -> usize {
    let Some((section, key)) = dotted.rsplit_once('.') else {
        return 0;
    };
    let mut in_section = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line.trim_matches(|c| c == '[' || c == ']').trim() == section;
        } else if in_section
            && line
                .split('=')
                .next()
                .is_some_and(|name| name.trim() == key)
        {
            return index + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("config.toml"))
    }

    #[test]
    fn the_shipped_config_is_the_default() {
        let shipped = Config::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config.toml"
        )))
        .expect("shipped config.toml parses");
        let default = Config::default();
        assert_eq!(shipped.rtmp.listen, default.rtmp.listen);
        assert_eq!(shipped.http.listen, default.http.listen);
        assert_eq!(shipped.hls.segment_seconds, default.hls.segment_seconds);
        assert_eq!(shipped.hls.playlist_segments, default.hls.playlist_segments);
        assert_eq!(shipped.server.data_dir, default.server.data_dir);
        assert_eq!(shipped.rtmp.stream_key, None);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = parse("[hls]\nsegment_seconds = 2\nsegment_second = 4\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:3: hls.segment_second: unknown field `segment_second`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let err = parse("[hls]\n\nplaylist_segments = \"six\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:3: hls.playlist_segments: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn bad_address_names_line_and_key() {
        let err = parse("[http]\nlisten = \"nonsense\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:2: http.listen: invalid socket address"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let err = parse("[hls]\nplaylist_segments = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:2: hls.playlist_segments: 1 is out of range"),
            "{err}"
        );
        let err = parse("[rtmp]\nstream_key = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config.toml:2: rtmp.stream_key:"), "{err}");
    }

    #[test]
    fn unsupported_storage_kind_is_refused() {
        let err = parse("[storage]\nkind = \"ftp\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.kind: unknown variant `ftp`"), "{err}");
    }
}
