//! What the segment store reports about its changes, in the order they happened: the storage
//! uploader ([`crate::sink`]) copies the stream out from these. Names are the store's file names;
//! keys in the sink are `<variant>/<name>` and `stream.m3u8` for the master playlist.

use std::time::Instant;

use bytes::Bytes;

#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// A new init or media segment of `variant`, finished at `at`.
    File {
        variant: String,
        name: String,
        data: Bytes,
        at: Instant,
    },
    /// `variant`'s media playlist now reads `text`; it refers to `files` (segments and inits,
    /// by the names it uses).
    Playlist {
        variant: String,
        text: Bytes,
        files: Vec<String>,
    },
    /// The master playlist now reads `text`; it lists these variants' playlists.
    Master { text: Bytes, variants: Vec<String> },
    /// Files of `variant` nobody may fetch any more (they left the window).
    Removed { variant: String, names: Vec<String> },
}
