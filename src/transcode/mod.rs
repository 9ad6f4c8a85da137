//! The codecs of the ladder, through `ffmpeg-next` (libavcodec, libswscale, libswresample): plain
//! values in, plain values out, no threads or channels of their own. The pipeline runs them on
//! its threads ([`crate::pipeline`]: the decoder thread, an encoder thread per transcoded
//! variant, the audio stage on the session thread) and hands what they return on downstream.
//!
//! - [`decoder`]: H.264 decoding of the source packets, pictures shared by reference.
//! - [`encoder`]: scaling and x264 encoding of one variant.
//! - [`jpeg`]: one picture as a JPEG (the stream's preview image).
//! - [`still`]: an uploaded image (the page's logo, the offline image) checked by decoding.
//! - [`audio`]: any source audio (AAC, MP3, PCM, Opus...) → AAC-LC at a bitrate.
//! - [`keyframes`]: where keyframes go, so that segment N of every variant starts at the same
//!   time.
//! - [`threads`]: how many threads the codecs run behind the pipeline's own.
//! - [`error`]: what can go wrong in any of them.

pub mod audio;
mod codec_io;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod jpeg;
pub mod keyframes;
pub mod still;
pub mod threads;
