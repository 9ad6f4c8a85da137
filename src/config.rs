//! `config.toml`: the one file an owner edits. Every key has a default that works; unknown keys,
//! wrong types and bad values are errors that name the file, the line and the key, so a typo
//! never silently falls back to a default.
//!
//! Secrets have no defaults: a missing stream key is generated and persisted (see [`crate::secrets`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::settings;
use crate::settings::page::{PageValues, SocialLink};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub rtmp: RtmpConfig,
    pub http: HttpConfig,
    pub hls: HlsConfig,
    pub video: VideoConfig,
    pub storage: StorageConfig,
    pub chat: ChatConfig,
    pub admin: AdminConfig,
    pub page: PageConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where generated secrets (and later chat state) are kept.
    pub data_dir: PathBuf,
    /// Shown on the page and in `/api/status` as `streamTitle` (the console can change it).
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
    /// Open RTMP connections in all (strangers make room for newcomers; see `ingest/slots.rs`).
    pub max_connections: usize,
    /// Connections from one address (IPv4, or IPv6 /64) that are not publishing.
    pub max_connections_per_address: usize,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 1935).into(),
            app: "live".into(),
            stream_key: None,
            max_connections: 32,
            max_connections_per_address: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The owner's page files; each overrides the built-in file of the same path.
    pub static_dir: Option<PathBuf>,
    /// Open connections in all (websockets included); over it a new one gets a 503. Lowered at
    /// start-up to what the open-file limit leaves room for.
    pub max_connections: usize,
    /// Open connections from one IPv4 address or IPv6 /64; 0: no cap (behind a reverse proxy,
    /// where every connection comes from the proxy).
    pub max_connections_per_address: usize,
    /// A request's headers must be in within this long of the server starting to wait for
    /// them (the connection opened, or the previous response was sent): so also how long an
    /// idle keep-alive connection is kept.
    pub header_timeout_seconds: u64,
    /// A connection on which no byte moves either way for this long is closed (a client that
    /// stops reading a response or never sends its body); websockets are exempt.
    pub stall_timeout_seconds: u64,
    /// Replaces the built-in Content-Security-Policy (without `frame-ancestors`, which comes
    /// from the framing rules); `""`: none.
    pub content_security_policy: Option<String>,
    /// Who may show `/embed/...` in a frame (CSP `frame-ancestors` sources).
    pub embed_frame_ancestors: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 8080).into(),
            static_dir: None,
            max_connections: 16_384,
            max_connections_per_address: 64,
            header_timeout_seconds: 10,
            stall_timeout_seconds: 30,
            content_security_policy: None,
            embed_frame_ancestors: vec!["*".into()],
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

/// The adaptive bitrate ladder: what viewers can switch between.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Highest first is customary; the master playlist is sorted by bandwidth anyway.
    pub variants: Vec<VariantConfig>,
}

impl Default for VideoConfig {
    /// The source as it comes, plus one 480p rendition for phones and slow links: runs in real
    /// time on one core for a 720p30 source.
    fn default() -> Self {
        Self {
            variants: vec![
                VariantConfig {
                    name: "source".into(),
                    passthrough: true,
                    ..VariantConfig::default()
                },
                VariantConfig {
                    name: "480p".into(),
                    height: Some(480),
                    video_bitrate_kbps: Some(1200),
                    ..VariantConfig::default()
                },
            ],
        }
    }
}

/// One rendition (`[[video.variants]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    /// Copy the source without decoding (no other video keys apply).
    #[serde(default)]
    pub passthrough: bool,
    /// Output height; the width follows the source's aspect ratio, rounded to even.
    pub height: Option<u32>,
    pub video_bitrate_kbps: Option<u32>,
    /// A cap: frames above this rate are dropped.
    pub framerate: Option<f64>,
    /// 0..=4: the x264 presets ultrafast, superfast, veryfast, faster, fast.
    #[serde(default = "default_cpu_usage_level")]
    pub cpu_usage_level: u8,
    /// AAC bitrate of this variant's audio, re-encoded; absent: the source's AAC as it is (or,
    /// for a source in another codec, AAC at [`DEFAULT_AUDIO_BITRATE_KBPS`]). Applies to a
    /// passthrough variant too.
    pub audio_bitrate_kbps: Option<u32>,
}

/// The AAC bitrate for a source whose audio is not AAC, where a variant does not set one.
pub const DEFAULT_AUDIO_BITRATE_KBPS: u32 = 128;

impl Default for VariantConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            passthrough: false,
            height: None,
            video_bitrate_kbps: None,
            framerate: None,
            cpu_usage_level: default_cpu_usage_level(),
            audio_bitrate_kbps: None,
        }
    }
}

fn default_cpu_usage_level() -> u8 {
    2
}

/// The x264 preset of each `cpu_usage_level` (the mapping Owncast users know).
pub const X264_PRESETS: [&str; 5] = ["ultrafast", "superfast", "veryfast", "faster", "fast"];

impl VariantConfig {
    pub fn x264_preset(&self) -> &'static str {
        X264_PRESETS[usize::from(self.cpu_usage_level.min(4))]
    }
}

/// The live chat beside the video (docs/CHAT.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatConfig {
    /// Off: messages are refused until a moderator turns chat on (the admin API).
    pub enabled: bool,
    /// The name on the streamer's own messages; no viewer can take it (nor one that looks like
    /// it). It must be a valid chat name: checked by the chat at start-up, not here, since the
    /// rules for names are the chat's.
    pub streamer_name: String,
    /// The newest messages sent to each joiner (and by `GET /api/chat`).
    pub history_messages: usize,
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// Messages a connection may send at once, then `rate_per_second` on average.
    pub rate_burst: u32,
    pub rate_per_second: f64,
    /// Seconds a user waits between two messages ("slow mode"; 0: off).
    pub slow_mode_seconds: u32,
    /// Open chat connections, in all and from one address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New chat users per address per minute (0: no cap).
    pub registrations_per_minute: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            streamer_name: "Streamer".into(),
            history_messages: 50,
            max_message_chars: 500,
            rate_burst: 5,
            rate_per_second: 1.0,
            slow_mode_seconds: 0,
            max_connections: 10_000,
            max_connections_per_ip: 20,
            registrations_per_minute: 30,
        }
    }
}

/// The admin API (`/api/admin/...`, HTTP Basic auth `admin:<password>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Absent: generated, saved in `data_dir`, printed at start-up.
    pub password: Option<String>,
    /// Wrong passwords from one address ([`crate::brute_force`]): this many cost nothing...
    pub free_failures: u32,
    /// ...then each attempt waits this long, doubling with every further failure...
    pub first_delay_seconds: u64,
    /// ...up to this...
    pub max_delay_seconds: u64,
    /// ...and after this many failures the address is locked out...
    pub lockout_failures: u32,
    /// ...for this long.
    pub lockout_minutes: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            password: None,
            free_failures: 5,
            first_delay_seconds: 1,
            max_delay_seconds: 30,
            lockout_failures: 20,
            lockout_minutes: 15,
        }
    }
}

/// What the viewer page shows besides the video and the chat; the admin console can change
/// each (`crate::settings`), and the title is `[server] title`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PageConfig {
    /// Plain text under the player; `http(s)://` links become links.
    pub summary: String,
    pub tags: Vec<String>,
    /// Shown in the player while the stream is offline.
    pub offline_message: String,
    pub social_links: Vec<SocialLink>,
    /// Added to the viewer page after its own styles (`/customstyles.css`).
    pub custom_css: String,
}

impl Config {
    /// The page settings `config.toml` gives (the console may override them).
    pub fn page_values(&self) -> PageValues {
        PageValues {
            stream_title: self.server.title.trim().to_owned(),
            summary: self.page.summary.clone(),
            tags: self.page.tags.clone(),
            offline_message: self.page.offline_message.clone(),
            social_links: self.page.social_links.clone(),
            custom_css: self.page.custom_css.clone(),
        }
    }
}

/// Where video is distributed from (see [`crate::sink`]). Only the table of the chosen `kind` is
/// used; the others may stay in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// Uploads (or writes) in flight at once.
    pub concurrency: usize,
    pub directory: DirectoryConfig,
    pub s3: S3Config,
    pub ipfs: IpfsConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Memory,
            concurrency: 4,
            directory: DirectoryConfig::default(),
            s3: S3Config::default(),
            ipfs: IpfsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Served by selfcast from memory only.
    #[default]
    Memory,
    /// Also written to a local directory that another web server or CDN origin serves.
    Directory,
    /// Uploaded to S3-compatible object storage.
    S3,
    /// Added to an IPFS node; segments fetched through a gateway (experimental).
    Ipfs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// Where the HLS files go (created if missing): `stream.m3u8`, `<variant>/...`.
    pub path: PathBuf,
    /// The URL at which another server serves `path` (e.g. `https://cdn.example.com/live`).
    /// Absent: selfcast keeps serving viewers itself and the directory is a copy.
    pub public_base_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The service's endpoint URL (e.g. `https://s3.us-west-004.backblazeb2.com`); absent: AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Both or neither; neither: the standard AWS chain (environment, profile, instance role).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Keys start with this (`live` → `live/stream.m3u8`); empty: the bucket's root.
    pub path_prefix: String,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, most
    /// self-hosted services).
    pub force_path_style: bool,
    /// A canned ACL for every object (e.g. `public-read`); absent: none is sent (use a bucket
    /// policy instead).
    pub acl: Option<String>,
    /// Where viewers fetch the bucket's root: the CDN or the bucket's public URL.
    pub public_base_url: String,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            access_key: None,
            secret_key: None,
            path_prefix: String::new(),
            force_path_style: false,
            acl: None,
            public_base_url: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpfsConfig {
    /// The IPFS node's RPC API (Kubo's `/api/v0`).
    pub api_url: String,
    /// Viewers fetch segments from `<gateway_url>/ipfs/<cid>` (required: no default serves
    /// viewers on other machines).
    pub gateway_url: String,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        Self {
            api_url: "http://127.0.0.1:5001".into(),
            gateway_url: String::new(),
        }
    }
}

/// S3's canned ACLs.
const CANNED_ACLS: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

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
        self.validate_http(&invalid)?;
        self.validate_chat(&invalid)?;
        self.validate_storage(&invalid)?;
        self.validate_settings(&invalid)?;
        if !(2..=4096).contains(&self.rtmp.max_connections) {
            return Err(invalid(
                "rtmp.max_connections",
                format!(
                    "{} is out of range: use 2 to 4096 (one publisher, the rest for strangers \
                     and reconnects)",
                    self.rtmp.max_connections
                ),
            ));
        }
        if !(1..=self.rtmp.max_connections).contains(&self.rtmp.max_connections_per_address) {
            return Err(invalid(
                "rtmp.max_connections_per_address",
                format!(
                    "{} is out of range: use 1 to max_connections ({})",
                    self.rtmp.max_connections_per_address, self.rtmp.max_connections
                ),
            ));
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

impl Config {
    /// `[hls]`, `[[video.variants]]`, `[page]` and `[chat]`: the console's live settings, held
    /// to the same limits as the console's values.
    fn validate_settings(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        use crate::settings::section::Section;
        let as_config_error = |section: &str, error: settings::section::FieldError| {
            let key = match (section, error.field.as_str()) {
                ("page", "streamTitle") => "server.title".to_owned(),
                ("video", "segmentSeconds") => "hls.segment_seconds".to_owned(),
                ("video", "playlistSegments") => "hls.playlist_segments".to_owned(),
                (_, field) => format!("{section}.{}", snake_case(field)),
            };
            invalid(&key, error.message)
        };
        settings::video::VideoValues::of_config(self)
            .check()
            .map_err(|e| as_config_error("video", e))?;
        settings::page::check(&self.page_values()).map_err(|e| as_config_error("page", e))?;
        settings::chat::ChatValues::of_config(&self.chat)
            .check()
            .map_err(|e| as_config_error("chat", e))
    }

    fn validate_http(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let http = &self.http;
        let ranges: [(&str, u64, u64, u64); 4] = [
            (
                "http.max_connections",
                http.max_connections as u64,
                1,
                1_000_000,
            ),
            (
                "http.max_connections_per_address",
                http.max_connections_per_address as u64,
                0,
                1_000_000,
            ),
            (
                "http.header_timeout_seconds",
                http.header_timeout_seconds,
                1,
                300,
            ),
            (
                "http.stall_timeout_seconds",
                http.stall_timeout_seconds,
                1,
                3600,
            ),
        ];
        for (key, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(invalid(
                    key,
                    format!("{value} is out of range: {low} to {high}"),
                ));
            }
        }
        // What goes into a header: visible ASCII on one line.
        let header_safe = |text: &str| text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if let Some(policy) = &http.content_security_policy {
            if !header_safe(policy) {
                return Err(invalid(
                    "http.content_security_policy",
                    "use printable ASCII only, on one line".into(),
                ));
            }
            if policy.to_ascii_lowercase().contains("frame-ancestors") {
                return Err(invalid(
                    "http.content_security_policy",
                    "leave frame-ancestors out: selfcast adds it ('self' for the page, \
                     http.embed_frame_ancestors for /embed/)"
                        .into(),
                ));
            }
        }
        if http.embed_frame_ancestors.is_empty() {
            return Err(invalid(
                "http.embed_frame_ancestors",
                "list who may embed, e.g. [\"*\"] (anyone) or [\"'self'\"] (nobody else)".into(),
            ));
        }
        if let Some(bad) = http.embed_frame_ancestors.iter().find(|source| {
            source.is_empty()
                || !source
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !";,".contains(c))
        }) {
            return Err(invalid(
                "http.embed_frame_ancestors",
                format!(
                    "{bad:?} is not a CSP source: use an origin like \"https://example.com\", \
                     \"*\" or \"'self'\", one per string"
                ),
            ));
        }
        Ok(())
    }

    fn validate_storage(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let storage = &self.storage;
        if !(1..=64).contains(&storage.concurrency) {
            return Err(invalid(
                "storage.concurrency",
                format!("{} is out of range: 1 to 64", storage.concurrency),
            ));
        }
        let http_url = |key: &str, url: &str| match url.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
            _ => Err(invalid(
                key,
                format!("{url:?} is not an http:// or https:// URL"),
            )),
        };
        match storage.kind {
            StorageKind::Memory => {}
            StorageKind::Directory => {
                let directory = &storage.directory;
                if directory.path.as_os_str().is_empty() {
                    return Err(invalid(
                        "storage.directory.path",
                        "name the directory to write the stream into".into(),
                    ));
                }
                if let Some(url) = &directory.public_base_url {
                    http_url("storage.directory.public_base_url", url)?;
                }
            }
            StorageKind::S3 => {
                let s3 = &storage.s3;
                if s3.bucket.trim().is_empty() {
                    return Err(invalid("storage.s3.bucket", "name the bucket".into()));
                }
                if s3.public_base_url.is_empty() {
                    return Err(invalid(
                        "storage.s3.public_base_url",
                        "set the URL viewers fetch the bucket from (your CDN, or the bucket's \
                         public URL)"
                            .into(),
                    ));
                }
                http_url("storage.s3.public_base_url", &s3.public_base_url)?;
                if let Some(endpoint) = &s3.endpoint {
                    http_url("storage.s3.endpoint", endpoint)?;
                }
                if s3.access_key.is_some() != s3.secret_key.is_some() {
                    return Err(invalid(
                        "storage.s3.secret_key",
                        "set both access_key and secret_key, or neither (then the AWS \
                         environment variables or profile are used)"
                            .into(),
                    ));
                }
                if let Some(acl) = s3.acl.as_deref().filter(|a| !CANNED_ACLS.contains(a)) {
                    return Err(invalid(
                        "storage.s3.acl",
                        format!("{acl:?} is not a canned ACL: use one of {CANNED_ACLS:?}"),
                    ));
                }
            }
            StorageKind::Ipfs => {
                http_url("storage.ipfs.api_url", &storage.ipfs.api_url)?;
                if storage.ipfs.gateway_url.is_empty() {
                    return Err(invalid(
                        "storage.ipfs.gateway_url",
                        "set the IPFS gateway viewers fetch segments from (e.g. \
                         https://ipfs.example.com)"
                            .into(),
                    ));
                }
                http_url("storage.ipfs.gateway_url", &storage.ipfs.gateway_url)?;
            }
        }
        Ok(())
    }

    fn validate_chat(
        &self,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        // The console's chat settings (name, message length, slow mode, connections) are
        // checked with the page's, in validate_settings.
        let chat = &self.chat;
        let admin = &self.admin;
        let ranges: [(&str, f64, f64, f64); 8] = [
            (
                "chat.history_messages",
                chat.history_messages as f64,
                0.0,
                1000.0,
            ),
            ("chat.rate_burst", f64::from(chat.rate_burst), 1.0, 1000.0),
            ("chat.rate_per_second", chat.rate_per_second, 0.01, 1000.0),
            (
                "chat.max_connections_per_ip",
                chat.max_connections_per_ip as f64,
                1.0,
                1_000_000.0,
            ),
            (
                "admin.first_delay_seconds",
                admin.first_delay_seconds as f64,
                1.0,
                3600.0,
            ),
            (
                "admin.max_delay_seconds",
                admin.max_delay_seconds as f64,
                admin.first_delay_seconds as f64,
                3600.0,
            ),
            (
                "admin.lockout_failures",
                f64::from(admin.lockout_failures),
                f64::from(admin.free_failures) + 1.0,
                1000.0,
            ),
            (
                "admin.lockout_minutes",
                admin.lockout_minutes as f64,
                1.0,
                7.0 * 24.0 * 60.0,
            ),
        ];
        for (key, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(invalid(
                    key,
                    format!("{value} is out of range: {low} to {high}"),
                ));
            }
        }
        if let Some(problem) = admin
            .password
            .as_deref()
            .and_then(crate::secrets::password_problem)
        {
            return Err(invalid(
                "admin.password",
                format!("{problem}; remove it to have a strong one generated"),
            ));
        }
        Ok(())
    }
}

/// `maxMessageChars` as `config.toml` spells it: `max_message_chars`.
fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line of `section.key` or `section[N].key` (the N-th `[[section]]`) for errors
/// found after parsing; the section header's line when the key is not written; 0 when neither.
fn line_of_key(text: &str, dotted: &str) -> usize {
    let (table, key) = dotted.rsplit_once('.').unwrap_or((dotted, ""));
    let (section, wanted_index) = match table.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
        None => (table, None),
    };
    let mut occurrence = 0;
    let mut header_line = 0;
    let mut in_section = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_section = name == section
                && wanted_index.is_none_or(|wanted| {
                    occurrence += 1;
                    occurrence - 1 == wanted
                });
            if in_section {
                header_line = index + 1;
            }
        } else if in_section
            && line
                .split('=')
                .next()
                .is_some_and(|name| name.trim() == key)
        {
            return index + 1;
        }
    }
    header_line
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
        assert_eq!(format!("{:?}", shipped.http), format!("{:?}", default.http));
        assert_eq!(shipped.hls.segment_seconds, default.hls.segment_seconds);
        assert_eq!(shipped.hls.playlist_segments, default.hls.playlist_segments);
        assert_eq!(shipped.server.data_dir, default.server.data_dir);
        assert_eq!(shipped.rtmp.stream_key, None);
        assert_eq!(
            format!("{:?}", shipped.admin),
            format!("{:?}", default.admin)
        );
        assert_eq!(shipped.rtmp.max_connections, default.rtmp.max_connections);
        assert_eq!(
            shipped.rtmp.max_connections_per_address,
            default.rtmp.max_connections_per_address
        );
        let names = |config: &Config| {
            config
                .video
                .variants
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&shipped), names(&default));
    }

    #[test]
    fn http_limits_and_headers_are_checked() {
        let config = parse(
            "[http]\nmax_connections_per_address = 0\nembed_frame_ancestors = \
             [\"https://example.com\", \"'self'\"]\n",
        )
        .unwrap();
        assert_eq!(config.http.max_connections_per_address, 0);
        assert_eq!(config.http.embed_frame_ancestors.len(), 2);
        for (text, key, message) in [
            (
                "max_connections = 0",
                "http.max_connections",
                "out of range",
            ),
            (
                "header_timeout_seconds = 0",
                "http.header_timeout_seconds",
                "out of range",
            ),
            (
                "stall_timeout_seconds = 7200",
                "http.stall_timeout_seconds",
                "out of range",
            ),
            (
                "embed_frame_ancestors = []",
                "http.embed_frame_ancestors",
                "list who may embed",
            ),
            (
                "embed_frame_ancestors = [\"https://a.example; script-src *\"]",
                "http.embed_frame_ancestors",
                "is not a CSP source",
            ),
            (
                "content_security_policy = \"default-src *; frame-ancestors *\"",
                "http.content_security_policy",
                "leave frame-ancestors out",
            ),
            (
                "content_security_policy = \"default-src *\\nX-Evil: 1\"",
                "http.content_security_policy",
                "printable ASCII",
            ),
        ] {
            let err = parse(&format!("[http]\n{text}\n")).unwrap_err().to_string();
            assert!(err.starts_with(&format!("config.toml:2: {key}: ")), "{err}");
            assert!(err.contains(message), "{err}");
        }
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
        let err = parse("[rtmp]\nmax_connections = 8\nmax_connections_per_address = 9\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rtmp.max_connections_per_address: 9 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn chat_and_page_settings_are_held_to_the_consoles_limits() {
        for (text, key, message) in [
            (
                "[chat]\nmax_message_chars = 0",
                "chat.max_message_chars",
                "from 1 to",
            ),
            (
                "[chat]\nslow_mode_seconds = 3601",
                "chat.slow_mode_seconds",
                "from 0 to 3600",
            ),
            (
                "[chat]\nmax_connections = 0",
                "chat.max_connections",
                "from 1 to",
            ),
            ("[chat]\nstreamer_name = \"\"", "chat.streamer_name", ""),
            (
                "[page]\noffline_message = \"a\\u0007b\"",
                "page.offline_message",
                "no control characters",
            ),
            (
                "[server]\ntitle = \" \"",
                "server.title",
                "give the stream a title",
            ),
        ] {
            let err = parse(&format!("{text}\n")).unwrap_err().to_string();
            assert!(err.starts_with(&format!("config.toml:2: {key}: ")), "{err}");
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn unsupported_storage_kind_is_refused() {
        let err = parse("[storage]\nkind = \"ftp\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.kind: unknown variant `ftp`"), "{err}");
    }

    #[test]
    fn storage_tables_are_checked_for_the_chosen_kind() {
        let s3 = "[storage]\nkind = \"s3\"\n[storage.s3]\nbucket = \"live\"\n\
                  public_base_url = \"https://cdn.example.com\"\n";
        let config = parse(s3).unwrap();
        assert_eq!(config.storage.kind, StorageKind::S3);
        assert_eq!(config.storage.s3.region, "us-east-1");
        let err = parse(&format!("{s3}access_key = \"AKIA\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("storage.s3.secret_key: set both"), "{err}");
        let err = parse(&format!("{s3}acl = \"public\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("config.toml:6: storage.s3.acl:"), "{err}");
        let err = parse("[storage]\nkind = \"s3\"\n[storage.s3]\nbucket = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("storage.s3.public_base_url: set the URL"),
            "{err}"
        );
        let err = parse("[storage]\nkind = \"directory\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("storage.directory.path: name the directory"),
            "{err}"
        );
        let ipfs = "[storage]\nkind = \"ipfs\"\n[storage.ipfs]\n";
        let err = parse(ipfs).unwrap_err().to_string();
        assert!(
            err.contains("storage.ipfs.gateway_url: set the IPFS gateway"),
            "{err}"
        );
        let config = parse(&format!(
            "{ipfs}gateway_url = \"https://ipfs.example.com\"\n"
        ))
        .unwrap();
        assert_eq!(config.storage.ipfs.api_url, "http://127.0.0.1:5001");
        let err = parse(&format!("{ipfs}gateway_url = \"ipfs.io\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not an http:// or https:// URL"), "{err}");
        // Tables of other kinds may stay in the file.
        assert!(parse("[storage.s3]\nbucket = \"\"\n").is_ok());
    }

    #[test]
    fn ladder_variants_are_read_in_order() {
        let config = parse(
            "[[video.variants]]\nname = \"source\"\npassthrough = true\naudio_bitrate_kbps = 160\n\n\
             [[video.variants]]\nname = \"360p\"\nheight = 360\nvideo_bitrate_kbps = 600\n\
             framerate = 30\ncpu_usage_level = 0\n",
        )
        .unwrap();
        let [source, low] = &config.video.variants[..] else {
            panic!("two variants")
        };
        assert!(source.passthrough);
        assert_eq!(
            (source.audio_bitrate_kbps, low.audio_bitrate_kbps),
            (Some(160), None)
        );
        assert_eq!(
            (low.height, low.video_bitrate_kbps, low.framerate),
            (Some(360), Some(600), Some(30.0))
        );
        assert_eq!(low.x264_preset(), "ultrafast");
    }

    #[test]
    fn ladder_mistakes_name_the_variant_and_line() {
        let two = "[[video.variants]]\nname = \"a\"\npassthrough = true\n[[video.variants]]\nname = \"b\"\n";
        let err = parse(&format!("{two}height = 480\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:4: video.variants[1].video_bitrate_kbps: missing"),
            "{err}"
        );
        let err = parse(&format!(
            "{two}height = 480\nvideo_bitrate_kbps = 900\ncpu_usage_level = 7\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("config.toml:8: video.variants[1].cpu_usage_level: 7 is out of range"),
            "{err}"
        );
        let err = parse(&format!(
            "{two}height = 480\nvideo_bitrate_kbps = 900\naudio_bitrate_kbps = 16\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("config.toml:8: video.variants[1].audio_bitrate_kbps: 16 is out of range: 32 to 512"),
            "{err}"
        );
        let err = parse("[[video.variants]]\nname = \"a\"\npassthrough = true\nheight = 720\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:4: video.variants[0].height: a passthrough rendition"),
            "{err}"
        );
        let err = parse("[[video.variants]]\nname = \"a\"\nheigth = 720\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.toml:3: video.variants[0].heigth: unknown field"),
            "{err}"
        );
        let err = parse("[video]\nvariants = []\n").unwrap_err().to_string();
        assert!(err.contains("video.variants: list at least one"), "{err}");
    }
}
