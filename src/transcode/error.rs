//! What can go wrong in a codec of the ladder: one error type for the video decoder, the video
//! encoder and the audio transcoder, which share the FFmpeg calls that fail.

use crate::media::aac::AacError;
use crate::media::avc::AvcError;

/// Why a decoder or an encoder could not do its job.
#[derive(thiserror::Error, Debug)]
pub enum TranscodeError {
    #[error("{0} is not available in the libavcodec this program is linked with")]
    CodecMissing(&'static str),
    #[error("{call} failed: {source}")]
    Ffmpeg {
        call: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("opening libx264 ({settings}) failed: {source}")]
    OpenEncoder {
        settings: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("libx264 did not accept the option {key}={value} ({settings})")]
    OptionNotAccepted {
        key: String,
        value: String,
        settings: String,
    },
    #[error("libx264's global headers are not a usable SPS + PPS: {0}")]
    EncoderHeaders(#[source] AvcError),
    #[error("invalid encoder settings: {0}")]
    InvalidSettings(String),
    #[error("swscale cannot convert {from} to {to}")]
    Scaler { from: String, to: String },
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    #[error("out of memory in {0}")]
    OutOfMemory(&'static str),
    #[error("unsupported source audio: {0}")]
    UnsupportedAudio(String),
    #[error("the aac encoder's extradata is not a usable AudioSpecificConfig: {0}")]
    AudioEncoderConfig(#[source] AacError),
}
