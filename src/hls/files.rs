//! What the files of the stream are called and how they are served: the names the store gives
//! them (the web server and the storage sinks use the same ones), their `Content-Type` and
//! their `Cache-Control`.
//!
//! ```text
//! stream.m3u8                              master playlist
//! <variant>/stream.m3u8                    media playlist (the variant's index in the ladder)
//! <variant>/init-<run>-<generation>.mp4    init segment (EXT-X-MAP)
//! <variant>/seg-<run>-<sequence>.m4s       media segment
//! ```
//!
//! `<run>` is the server's start time in base 36, so a restarted server never reuses the URL of a
//! segment that a browser or CDN may hold as immutable.

/// The master playlist, at `/hls/stream.m3u8` (and the same key in a sink).
pub const MASTER_PLAYLIST_NAME: &str = "stream.m3u8";
/// Every variant's media playlist is at `/hls/<variant>/stream.m3u8`.
pub const MEDIA_PLAYLIST_NAME: &str = "stream.m3u8";

const INIT_PREFIX: &str = "init-";
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists change every segment: caches must not keep them beyond a second.
const PLAYLIST_CACHE: &str = "public, max-age=1";
/// Segment and init names are never reused (they carry the server's run id).
const SEGMENT_CACHE: &str = "public, max-age=31536000, immutable";

/// The name of init segment `generation` of the server run `run_id`.
pub fn init_name(run_id: &str, generation: u32) -> String {
    format!("{INIT_PREFIX}{run_id}-{generation}.mp4")
}

/// The name of media segment `sequence` (its EXT-X-MEDIA-SEQUENCE number) of the run `run_id`.
pub fn segment_name(run_id: &str, sequence: u64) -> String {
    format!("seg-{run_id}-{sequence}.m4s")
}

/// Whether the file named `name` is an init segment.
pub fn is_init(name: &str) -> bool {
    name.starts_with(INIT_PREFIX)
}

/// Whether the file named `name` is a playlist (anything else is an init or media segment).
pub fn is_playlist(name: &str) -> bool {
    name.ends_with(".m3u8")
}

/// The `Content-Type` of a file by its name: a playlist, a media segment or an init segment.
pub fn content_type(name: &str) -> &'static str {
    if is_playlist(name) {
        PLAYLIST_TYPE
    } else if name.ends_with(".m4s") {
        "video/iso.segment"
    } else {
        "video/mp4"
    }
}

/// The `Cache-Control` that suits live HLS for a file by its name.
pub fn cache_control(name: &str) -> &'static str {
    if is_playlist(name) {
        PLAYLIST_CACHE
    } else {
        SEGMENT_CACHE
    }
}
