//! AAC audio for the HLS variants: a source's audio decoded, resampled and encoded with FFmpeg's
//! native `aac` encoder (AAC-LC), through `ffmpeg-next` and its ffi.
//!
//! Two uses:
//! - a source whose audio is not AAC (FLV MP3, Linear PCM, ADPCM, Nellymoser, G.711 A/µ-law,
//!   Speex; Opus from enhanced RTMP) is encoded once to AAC, so every variant carries AAC;
//! - a variant with its own `audio_bitrate_kbps` re-encodes the source AAC at that bitrate.
//!
//! ```text
//! raw frame ─▶ [MP3 parser] ─▶ decoder ─▶ swresample ─▶ sample FIFO ─▶ 1024-sample frames
//!           ─▶ aac encoder ─▶ MediaPacket (one raw AAC frame, ms timestamps)
//! ```
//!
//! What comes out ([`output_sample_rate`], [`output_channels`]):
//! - planar float (the encoder's only format) at the source rate when AAC has it and it is at
//!   most 48 kHz (8 000, 11 025, 12 000, 16 000, 22 050, 24 000, 32 000, 44 100, 48 000 Hz and
//!   7 350 Hz: the native encoder accepts every one of them), else 48 000 Hz (FLV's 5 512 Hz
//!   PCM/ADPCM, 88.2/96 kHz sources). The rate is fixed when the transcoder is made, from what
//!   the source says; if the decoded audio turns out otherwise (an FLV header cannot say 48 kHz
//!   for MP3, for example) the resampler converts.
//! - mono stays mono; stereo stays stereo; more channels are downmixed to stereo with
//!   swresample's default matrix (centre and surrounds at −3 dB, LFE dropped).
//! - at low rates the encoder caps the bitrate itself (about 6 144 bits per channel and frame:
//!   48 kbps per channel at 8 kHz).
//!
//! Timestamps: each AAC frame is 1024 samples and its time is computed from the sample count,
//! anchored on the first input timestamp, so millisecond rounding and jitter of RTMP timestamps
//! never reach the output. When an input timestamp is more than 100 ms away from where the
//! sample count says the stream is (lost audio, a publisher's pause, a timestamp reset), the
//! timeline is re-anchored on it, forwards or backwards: the output then stays in the same time
//! base as the source video, which the segmenter re-anchors for both tracks at once. Between such
//! jumps timestamps are strictly increasing. The first packet carries the encoder's priming
//! (1024 samples) and is stamped one frame *before* the first input: the sound of input sample n
//! then plays at the time of input sample n.
//!
//! Decoders are libavcodec's defaults for each codec, except Speex: `libspeex` when it is
//! there, as FFmpeg 5.1's native Speex decoder turns a libspeex stream into noise. MP3 goes
//! through FFmpeg's MPEG audio parser first, as publishers do not all send one frame per tag.
//!
//! Threading: an [`AudioTranscoder`] is owned and driven by one thread; it is `Send`. Nothing in
//! it runs threads of its own (audio codecs are cheap).
//!
//! One job a module:
//! - [`source_decoder`]: which libavcodec decoder a source needs, and opening it;
//! - [`mp3`]: FFmpeg's MPEG audio parser, cutting MP3 into whole frames;
//! - [`resampler`]: swresample from whatever the decoder gives to the encoder's format;
//! - [`samples`]: the sample FIFO between resampler and encoder;
//! - [`clock`]: output timestamps from the sample count;
//! - [`aac_encoder`]: the output rate and channels, and opening the AAC encoder;
//! - [`transcoder`]: [`AudioTranscoder`], which drives them all.

mod aac_encoder;
mod clock;
mod mp3;
mod resampler;
mod samples;
mod source_decoder;
mod transcoder;

pub use aac_encoder::{output_channels, output_sample_rate};
pub use transcoder::AudioTranscoder;
