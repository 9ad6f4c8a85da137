//! Media types shared by every stage: what ingest hands to the pipeline and the pipeline to the
//! HLS muxer. No codec library here: these are plain values parsed from the wire.
//!
//! Timestamps are in milliseconds, as RTMP/FLV carries them; the muxer converts them to its
//! track timescales.

pub mod aac;
pub mod audio_source;
pub mod avc;
mod bits;
pub mod flv;

#[cfg(test)]
pub(crate) mod test_bytes {
    /// Bytes written as hex pairs separated by whitespace, as in a hex dump: "01 64 00 1f".
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("test hex"))
            .collect()
    }
}

use bytes::Bytes;

pub use aac::AudioSpecificConfig;
pub use audio_source::AudioSource;
pub use avc::{AvcDecoderConfig, Sps};

/// Which elementary stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

/// One compressed access unit.
///
/// Video `data` is AVCC framing (each NAL unit preceded by its 4-byte big-endian length), exactly
/// as FLV and ISO BMFF `mdat` both carry it. Audio `data` is one raw AAC frame (no ADTS header),
/// or after an [`IngestEvent::OtherAudioConfig`] one frame of that codec as FLV carries it
/// (after the tag header).
#[derive(Debug, Clone)]
pub struct MediaPacket {
    pub kind: TrackKind,
    /// Decode timestamp, milliseconds.
    pub dts_ms: i64,
    /// Presentation timestamp, milliseconds (dts + FLV composition time for video).
    pub pts_ms: i64,
    /// A sync sample (IDR for video; every AAC frame is one).
    pub keyframe: bool,
    pub data: Bytes,
}

/// What one publish session sends downstream, in order.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    /// The H.264 sequence header arrived (or changed mid-stream).
    VideoConfig(AvcDecoderConfig),
    /// The AAC sequence header arrived (or changed mid-stream).
    AudioConfig(AudioSpecificConfig),
    /// The source's audio is in a codec HLS does not carry (MP3, Opus, Speex...): the first
    /// tag said so (or its description changed). The pipeline encodes such audio to AAC
    /// before any muxer sees it.
    OtherAudioConfig(AudioSource),
    Packet(MediaPacket),
}

impl AsRef<IngestEvent> for IngestEvent {
    fn as_ref(&self) -> &IngestEvent {
        self
    }
}
