//! Our HLS muxer: fMP4/CMAF init segments and fragments, segmenting on keyframes, and the
//! playlists (RFC 8216). Written here rather than through libavformat so that segment
//! boundaries, fragment sizes and playlist timing are ours to control (Low-Latency HLS parts
//! build on the same fragments).
//!
//! - [`boxes`]: ISO BMFF box writing.
//! - [`init`]: `ftyp` + `moov` (the `EXT-X-MAP`).
//! - [`fragment`]: `moof` + `mdat`.
//! - [`segmenter`]: packets → init segments and media segments, one continuous timeline.
//! - [`playlist`]: media and master playlist text.
//! - [`files`]: the files' names, content types and cache lifetimes.

pub mod boxes;
pub mod files;
pub mod fragment;
pub mod init;
pub mod playlist;
pub mod segmenter;

pub use init::TrackConfigs;
pub use segmenter::{InitSegment, MediaSegment, MuxerInput, MuxerOutput, Segmenter, SessionStart};

/// Track IDs in every init segment and fragment.
pub const VIDEO_TRACK_ID: u32 = 1;
pub const AUDIO_TRACK_ID: u32 = 2;
/// Video media timescale: the MPEG 90 kHz clock.
pub const VIDEO_TIMESCALE: u32 = 90_000;
