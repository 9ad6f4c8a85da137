//! H.264/AVC configuration: the `AVCDecoderConfigurationRecord` an RTMP publisher sends as its
//! video sequence header, the sequence parameter set (SPS) inside it, and the Annex B byte
//! streams libavcodec encoders emit.
//!
//! - [`record`]: the `AVCDecoderConfigurationRecord` (`avcC`), parsed or built from an encoder's
//!   parameter sets; the `avc1.PPCCLL` codecs string.
//! - [`sps`]: the SPS (picture size, profile, level, frame rate).
//! - [`annexb`]: Annex B start codes → NAL units → AVCC framing.
//!
//! Read beside:
//! - ISO/IEC 14496-15 §5.3.3.1 (`AVCDecoderConfigurationRecord`, the body of the `avcC` box);
//! - ITU-T H.264 §7.3.1 (NAL unit syntax, emulation prevention), §7.3.2.1.1 (SPS syntax),
//!   §7.4.2.1.1 (SPS semantics: cropping, chroma arrays), §9.1 (Exp-Golomb codes),
//!   Annex B (byte stream format), Annex E.1.1 (VUI syntax, up to `timing_info`);
//! - RFC 6381 §3.3 (the `avc1.PPCCLL` codecs string).
//!
//! Everything here is parsed from the network: every read is bounds-checked and every function
//! returns an [`AvcError`] instead of panicking, whatever the input. Bits are read with
//! [`crate::media::bits::BitReader`].

pub mod annexb;
pub mod record;
pub mod sps;
#[cfg(test)]
mod sps_writer;

pub use annexb::{annexb_nal_units, annexb_to_avcc};
pub use record::AvcDecoderConfig;
pub use sps::Sps;

/// Why an H.264 configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvcError {
    #[error(
        "AVC decoder configuration record truncated: {what} needs {needed} bytes, only \
         {available} left"
    )]
    TruncatedRecord {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("AVC decoder configuration record has configurationVersion {0}, expected 1")]
    BadVersion(u8),
    #[error(
        "unsupported H.264 NAL length size {0} bytes (lengthSizeMinusOne = {minus_one}): only 4-byte \
         NAL lengths are supported; most encoders (x264, OBS, ffmpeg) use 4",
        minus_one = .0.wrapping_sub(1)
    )]
    UnsupportedNalLengthSize(u8),
    #[error("AVC decoder configuration record contains no SPS (numOfSequenceParameterSets = 0)")]
    NoSps,
    #[error("AVC decoder configuration record contains no PPS (numOfPictureParameterSets = 0)")]
    NoPps,
    #[error("expected an SPS NAL unit (type 7), found NAL unit type {0}")]
    NotSps(u8),
    #[error("SPS truncated while reading {0}")]
    TruncatedSps(&'static str),
    #[error("invalid SPS: {field} = {value} is out of range")]
    InvalidSps { field: &'static str, value: i64 },
    #[error(
        "H.264 parameter sets do not fit an AVC decoder configuration record: {count} {what} \
         (at most {max})"
    )]
    ParameterSetsDoNotFit {
        what: &'static str,
        count: usize,
        max: usize,
    },
}
