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

use std::collections::VecDeque;
use std::ptr;

use bytes::Bytes;
use ffmpeg_next::codec::Id;
use ffmpeg_next::ffi;
use ffmpeg_next::frame;
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::Packet;

use super::error::TranscodeError;
use crate::media::flv::{
    flv_sound_format_name, FLV_ADPCM, FLV_ALAW, FLV_MP3, FLV_MP3_8K, FLV_MULAW, FLV_NELLYMOSER,
    FLV_NELLYMOSER_16K, FLV_NELLYMOSER_8K, FLV_PCM, FLV_PCM_LE, FLV_SPEEX,
};
use crate::media::{AudioSource, AudioSpecificConfig, MediaPacket, TrackKind};

/// Sample rates the output keeps (MPEG-4 sampling frequencies up to 48 kHz, all of which FFmpeg's
/// native encoder accepts); anything else becomes [`FALLBACK_RATE`].
const KEPT_RATES: [u32; 10] = [
    48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
const FALLBACK_RATE: u32 = 48000;

/// An input timestamp this far (ms) from the sample count re-anchors the timeline.
const REANCHOR_MS: i64 = 100;

/// The output sample rate for a source at `source_rate` Hz: kept when AAC has it and it is at
/// most 48 kHz, else 48 kHz.
pub fn output_sample_rate(source_rate: u32) -> u32 {
    if KEPT_RATES.contains(&source_rate) {
        source_rate
    } else {
        FALLBACK_RATE
    }
}

/// The output channel count for a source of `source_channels`: mono stays mono, anything else
/// is stereo.
pub fn output_channels(source_channels: u8) -> u8 {
    if source_channels <= 1 {
        1
    } else {
        2
    }
}

/// The libavcodec decoder for a source, and how to open it.
struct DecoderSpec {
    id: Id,
    /// A decoder to use rather than libavcodec's default for `id`, when it is there.
    preferred: Option<&'static str>,
    /// For CodecMissing.
    what: &'static str,
    sample_rate: u32,
    channels: u8,
    extradata: Option<Bytes>,
    /// MP3 goes through FFmpeg's MPEG audio parser first: RTMP publishers do not all send
    /// exactly one MP3 frame per tag (FFmpeg's FLV demuxer parses MP3 for the same reason).
    parse_mp3: bool,
}

impl DecoderSpec {
    fn of(source: &AudioSource) -> Result<Self, TranscodeError> {
        let spec = |id, what, sample_rate, channels| DecoderSpec {
            id,
            preferred: None,
            what,
            sample_rate,
            channels,
            extradata: None,
            parse_mp3: false,
        };
        match source {
            AudioSource::Aac(config) => Ok(DecoderSpec {
                extradata: Some(config.raw.clone()),
                ..spec(
                    Id::AAC,
                    "the AAC decoder",
                    config.sample_rate,
                    config.channels,
                )
            }),
            AudioSource::Opus { id_header } => {
                // OpusHead: magic 8, version 1, channel count 1, pre-skip 2, input rate 4,
                // output gain 2, mapping family 1 (+ mapping table): at least 19 bytes.
                if id_header.len() < 19 || !id_header.starts_with(b"OpusHead") {
                    return Err(TranscodeError::InvalidInput(
                        "Opus identification header is not an OpusHead of 19+ bytes",
                    ));
                }
                let channels = id_header[9];
                if channels == 0 {
                    return Err(TranscodeError::InvalidInput(
                        "Opus identification header with 0 channels",
                    ));
                }
                Ok(DecoderSpec {
                    extradata: Some(id_header.clone()),
                    // Opus always decodes at 48 kHz.
                    ..spec(Id::OPUS, "the Opus decoder", 48000, channels)
                })
            }
            &AudioSource::Flv {
                sound_format,
                sample_rate,
                channels,
                sample_size_bits,
            } => {
                if !(1000..=384_000).contains(&sample_rate) {
                    return Err(TranscodeError::UnsupportedAudio(format!(
                        "{} at {sample_rate} Hz",
                        flv_sound_format_name(sound_format)
                    )));
                }
                if !(1..=2).contains(&channels) {
                    return Err(TranscodeError::UnsupportedAudio(format!(
                        "{} with {channels} channels (FLV has mono or stereo)",
                        flv_sound_format_name(sound_format)
                    )));
                }
                let (id, what) = match (sound_format, sample_size_bits) {
                    (FLV_PCM | FLV_PCM_LE, 8) => (Id::PCM_U8, "the pcm_u8 decoder"),
                    (FLV_PCM | FLV_PCM_LE, 16) => (Id::PCM_S16LE, "the pcm_s16le decoder"),
                    (FLV_PCM | FLV_PCM_LE, bits) => {
                        return Err(TranscodeError::UnsupportedAudio(format!(
                            "{bits}-bit FLV Linear PCM (FLV has 8 or 16 bits)"
                        )))
                    }
                    (FLV_ADPCM, _) => (Id::ADPCM_SWF, "the adpcm_swf decoder"),
                    (FLV_MP3 | FLV_MP3_8K, _) => {
                        return Ok(DecoderSpec {
                            parse_mp3: true,
                            ..spec(Id::MP3, "the MP3 decoder", sample_rate, channels)
                        })
                    }
                    (FLV_NELLYMOSER_16K | FLV_NELLYMOSER_8K | FLV_NELLYMOSER, _) => {
                        (Id::NELLYMOSER, "the Nellymoser decoder")
                    }
                    (FLV_ALAW, _) => (Id::PCM_ALAW, "the G.711 A-law decoder"),
                    (FLV_MULAW, _) => (Id::PCM_MULAW, "the G.711 mu-law decoder"),
                    (FLV_SPEEX, _) => {
                        return Ok(DecoderSpec {
                            // FFmpeg 5.1's native Speex decoder turns what libspeex encodes
                            // into noise (a −21 dB tone decodes to −6 dB of garbage).
                            preferred: Some("libspeex"),
                            ..spec(Id::SPEEX, "a Speex decoder", sample_rate, channels)
                        });
                    }
                    (other, _) => {
                        return Err(TranscodeError::UnsupportedAudio(format!(
                            "FLV SoundFormat {other} ({})",
                            flv_sound_format_name(other)
                        )))
                    }
                };
                Ok(spec(id, what, sample_rate, channels))
            }
        }
    }
}

/// The sample format, rate and channel layout of decoded audio, which the resampler is set up
/// for. Layouts are kept as native-order masks (a decoder's unspecified order becomes the
/// default layout of its channel count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputDefinition {
    format: ffi::AVSampleFormat,
    rate: i32,
    channels: i32,
    mask: u64,
}

/// swresample from one input definition to the encoder's fltp, rate and layout.
struct Resampler {
    swr: *mut ffi::SwrContext,
    input: InputDefinition,
}

// SAFETY: an SwrContext is plain memory owned by this value and used through `&mut` only (one
// thread at a time); nothing in it is tied to the thread that created it.
unsafe impl Send for Resampler {}

impl Resampler {
    fn new(input: InputDefinition, rate: u32, channels: u8) -> Result<Self, TranscodeError> {
        let describe = || {
            TranscodeError::UnsupportedAudio(format!(
            "swresample cannot convert {:?} {} Hz {} ch (layout {:#x}) to fltp {rate} Hz {channels} ch",
            input.format, input.rate, input.channels, input.mask
        ))
        };
        let mut swr = ptr::null_mut();
        // SAFETY: the layouts are native-order (no allocation, nothing to uninit);
        // swr_alloc_set_opts2 copies them. On failure it leaves `swr` null or frees it.
        let allocated = unsafe {
            let mut in_layout: ffi::AVChannelLayout = std::mem::zeroed();
            if ffi::av_channel_layout_from_mask(&mut in_layout, input.mask) < 0 {
                return Err(describe());
            }
            let mut out_layout: ffi::AVChannelLayout = std::mem::zeroed();
            ffi::av_channel_layout_default(&mut out_layout, i32::from(channels));
            ffi::swr_alloc_set_opts2(
                &mut swr,
                &mut out_layout,
                ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                rate as i32,
                &mut in_layout,
                input.format,
                input.rate,
                0,
                ptr::null_mut(),
            )
        };
        if allocated < 0 || swr.is_null() {
            return Err(describe());
        }
        let resampler = Resampler { swr, input };
        // SAFETY: swr is a fully configured, not yet initialised context.
        if unsafe { ffi::swr_init(resampler.swr) } < 0 {
            return Err(describe());
        }
        Ok(resampler)
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        // SAFETY: we own the context; swr_free nulls our pointer.
        unsafe { ffi::swr_free(&mut self.swr) };
    }
}

/// FFmpeg's MPEG audio parser, cutting an MP3 byte stream into whole frames.
struct Mp3Parser {
    parser: *mut ffi::AVCodecParserContext,
    /// The codec context the parser writes what it finds into (rate, channels, frame size):
    /// its own, not the decoder's.
    context: ffmpeg_next::codec::Context,
    /// The input copied with the zeroed padding libavcodec's readers may touch.
    input: Vec<u8>,
}

// SAFETY: as for Resampler: parser state is plain memory used through `&mut` only.
unsafe impl Send for Mp3Parser {}

impl Mp3Parser {
    fn new() -> Result<Self, TranscodeError> {
        // SAFETY: av_parser_init returns an owned parser or null.
        let parser = unsafe { ffi::av_parser_init(ffi::AVCodecID::AV_CODEC_ID_MP3 as i32) };
        if parser.is_null() {
            return Err(TranscodeError::CodecMissing("the MPEG audio parser"));
        }
        let this = Mp3Parser {
            parser,
            context: ffmpeg_next::codec::Context::new(),
            input: Vec::new(),
        };
        // SAFETY: only reads the pointer avcodec_alloc_context3 returned.
        if unsafe { this.context.as_ptr().is_null() } {
            return Err(TranscodeError::OutOfMemory(
                "avcodec_alloc_context3 (parser)",
            ));
        }
        Ok(this)
    }

    /// The whole frames `data` completes (empty `data`: the end of the stream, whatever is
    /// still buffered).
    fn parse(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        self.input.clear();
        self.input.extend_from_slice(data);
        self.input.resize(data.len() + padding, 0);
        let mut frames = Vec::new();
        let mut offset = 0;
        // Bounded: every round consumes input or returns a frame, and a flush at most a few.
        for _ in 0..data.len() + 4 {
            let remaining = data.len() - offset;
            let Ok(size) = i32::try_from(remaining) else {
                break;
            };
            let mut out: *mut u8 = ptr::null_mut();
            let mut out_size = 0;
            // SAFETY: `input` holds `remaining` bytes from `offset` plus the padding; the
            // output points into the parser's buffer or our input and is copied at once.
            let used = unsafe {
                ffi::av_parser_parse2(
                    self.parser,
                    self.context.as_mut_ptr(),
                    &mut out,
                    &mut out_size,
                    self.input.as_ptr().add(offset),
                    size,
                    ffi::AV_NOPTS_VALUE,
                    ffi::AV_NOPTS_VALUE,
                    0,
                )
            };
            let used = usize::try_from(used).unwrap_or(0).min(remaining);
            offset += used;
            let produced = !out.is_null() && out_size > 0;
            if produced {
                // SAFETY: the parser returned `out_size` readable bytes at `out`.
                frames.push(unsafe { std::slice::from_raw_parts(out, out_size as usize) }.to_vec());
            }
            let done = if data.is_empty() {
                !produced
            } else {
                offset >= data.len() || (used == 0 && !produced)
            };
            if done {
                break;
            }
        }
        frames
    }
}

impl Drop for Mp3Parser {
    fn drop(&mut self) {
        // SAFETY: we own the parser.
        unsafe { ffi::av_parser_close(self.parser) };
    }
}

/// Planar float samples waiting for the encoder (the FIFO between the resampler, which
/// produces any number, and the encoder, which takes exactly `frame_size`).
#[derive(Debug)]
struct SampleBuffer {
    planes: Vec<Vec<f32>>,
    /// Samples already taken from the front of every plane.
    read: usize,
}

impl SampleBuffer {
    fn new(channels: u8) -> Self {
        SampleBuffer {
            planes: vec![Vec::new(); usize::from(channels)],
            read: 0,
        }
    }

    fn len(&self) -> usize {
        self.planes.first().map_or(0, |p| p.len() - self.read)
    }

    /// Appends what `fill` writes: it gets one pointer per plane, each with room for `max`
    /// samples, and returns how many it wrote (or a negative AVERROR).
    fn append_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [*mut u8]) -> i32,
    ) -> Result<usize, i32> {
        if self.read > 0 {
            for plane in &mut self.planes {
                plane.drain(..self.read);
            }
            self.read = 0;
        }
        let start = self.len();
        let mut pointers: Vec<*mut u8> = self
            .planes
            .iter_mut()
            .map(|plane| {
                plane.resize(start + max, 0.0);
                plane[start..].as_mut_ptr().cast()
            })
            .collect();
        let written = fill(&mut pointers);
        let kept = usize::try_from(written).unwrap_or(0).min(max);
        for plane in &mut self.planes {
            plane.truncate(start + kept);
        }
        if written < 0 {
            return Err(written);
        }
        Ok(kept)
    }

    /// The next `n` samples of plane `channel`.
    fn front(&self, channel: usize, n: usize) -> &[f32] {
        &self.planes[channel][self.read..self.read + n]
    }

    fn consume(&mut self, n: usize) {
        self.read += n.min(self.len());
    }
}

/// Output timestamps from the sample count, anchored on input timestamps.
///
/// Samples are numbered in the order they enter the FIFO (which is also the pts the encoder
/// gets, in 1/rate units). An anchor says "sample `sample` is at `ms`"; a sample's time is that
/// of the latest anchor at or before it (or the first anchor, for the encoder's priming before
/// sample 0) plus the samples since, floored to the millisecond.
#[derive(Debug, Clone)]
struct SampleClock {
    rate: i64,
    anchors: VecDeque<Anchor>,
    /// The number of the next sample to enter.
    position: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    sample: i64,
    ms: i64,
}

impl Anchor {
    fn ms_of(&self, sample: i64, rate: i64) -> i64 {
        self.ms + ((sample - self.sample) * 1000).div_euclid(rate)
    }
}

impl SampleClock {
    fn new(rate: u32) -> Self {
        SampleClock {
            rate: i64::from(rate.max(1)),
            anchors: VecDeque::new(),
            position: 0,
        }
    }

    /// An input frame stamped `pts_ms`, whose samples will be the next to enter: anchors the
    /// timeline on it if it is the first, or if it is more than 100 ms away from the time the
    /// sample count gives. Returns true when it re-anchored an existing timeline.
    fn input(&mut self, pts_ms: i64) -> bool {
        let (rate, position) = (self.rate, self.position);
        let Some(last) = self.anchors.back_mut() else {
            self.anchors.push_back(Anchor {
                sample: position,
                ms: pts_ms,
            });
            return false;
        };
        let expected = last.ms_of(position, rate);
        if (pts_ms.saturating_sub(expected)).abs() <= REANCHOR_MS {
            return false;
        }
        if last.sample == position {
            // Nothing came out since the last anchor: it was not right, replace it.
            last.ms = pts_ms;
        } else {
            self.anchors.push_back(Anchor {
                sample: position,
                ms: pts_ms,
            });
        }
        true
    }

    /// `samples` more entered.
    fn advance(&mut self, samples: usize) {
        self.position += samples as i64;
    }

    /// The time of sample `sample`. Called with increasing samples: anchors older than the one
    /// `sample` falls under are dropped.
    fn ms(&mut self, sample: i64) -> i64 {
        while self.anchors.len() > 1 && self.anchors[1].sample <= sample {
            self.anchors.pop_front();
        }
        match self.anchors.front() {
            Some(anchor) => anchor.ms_of(sample, self.rate),
            None => (sample * 1000).div_euclid(self.rate),
        }
    }
}

/// Source audio in, AAC-LC frames out; see the module documentation.
pub struct AudioTranscoder {
    source: AudioSource,
    decoder: ffmpeg_next::decoder::Audio,
    parser: Option<Mp3Parser>,
    resampler: Option<Resampler>,
    encoder: ffmpeg_next::encoder::audio::Encoder,
    config: AudioSpecificConfig,
    bitrate_kbps: u32,
    /// Output rate (Hz) and channel count.
    rate: u32,
    channels: u8,
    /// Samples per encoder frame (1024 for AAC-LC).
    frame_size: usize,
    buffer: SampleBuffer,
    clock: SampleClock,
    /// Samples sent to the encoder so far: the pts of the next frame.
    samples_encoded: i64,
    decoded: frame::Audio,
    packet: Packet,
    /// Packets completed while the call that produced them failed; returned by the next call.
    carry: Vec<MediaPacket>,
    re_anchors: u64,
    finished: bool,
}

impl AudioTranscoder {
    /// Decoder for the source + resampler (swresample) to the AAC encoder's format (fltp), rate
    /// ([`output_sample_rate`]) and channels ([`output_channels`]), + FFmpeg's native `aac`
    /// encoder (AAC-LC) at `bitrate_kbps` (8..=512).
    pub fn new(source: &AudioSource, bitrate_kbps: u32) -> Result<Self, TranscodeError> {
        if !(8..=512).contains(&bitrate_kbps) {
            return Err(TranscodeError::InvalidSettings(format!(
                "audio bitrate {bitrate_kbps} kbps is not in 8..=512"
            )));
        }
        let spec = DecoderSpec::of(source)?;
        let rate = output_sample_rate(spec.sample_rate);
        let channels = output_channels(spec.channels);
        let decoder = open_decoder(&spec)?;
        let parser = if spec.parse_mp3 {
            Some(Mp3Parser::new()?)
        } else {
            None
        };
        let (encoder, config, frame_size) = open_encoder(rate, channels, bitrate_kbps)?;
        let decoded = frame::Audio::empty();
        // SAFETY: only reads the pointer av_frame_alloc returned.
        if unsafe { decoded.as_ptr().is_null() } {
            return Err(TranscodeError::OutOfMemory(
                "av_frame_alloc (decoded audio)",
            ));
        }
        Ok(AudioTranscoder {
            source: source.clone(),
            decoder,
            parser,
            resampler: None,
            encoder,
            config,
            bitrate_kbps,
            rate,
            channels,
            frame_size,
            buffer: SampleBuffer::new(channels),
            clock: SampleClock::new(rate),
            samples_encoded: 0,
            decoded,
            packet: Packet::empty(),
            carry: Vec::new(),
            re_anchors: 0,
            finished: false,
        })
    }

    /// The AudioSpecificConfig of the output (from the encoder's extradata), for the muxer's
    /// init segment.
    pub fn config(&self) -> &AudioSpecificConfig {
        &self.config
    }

    pub fn source(&self) -> &AudioSource {
        &self.source
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps
    }

    /// How many times the input timestamps jumped by more than 100 ms from the sample count
    /// (and the output timeline followed them).
    pub fn re_anchors(&self) -> u64 {
        self.re_anchors
    }

    /// One source frame in (raw codec data as FLV carries it after the 1- or 2-byte audio tag
    /// header, with its RTMP timestamp in ms); the AAC frames completed out, each a
    /// [`MediaPacket`] (kind Audio, pts_ms == dts_ms, keyframe true) of 1024 samples.
    ///
    /// A corrupt frame is an Err the caller logs and skips: the transcoder keeps going, and the
    /// AAC frames completed by the same call come out of the next one.
    pub fn transcode(
        &mut self,
        data: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<MediaPacket>, TranscodeError> {
        let mut out = std::mem::take(&mut self.carry);
        if self.finished {
            return Err(TranscodeError::InvalidInput(
                "audio frame after the transcoder was flushed",
            ));
        }
        if data.is_empty() {
            // An empty packet would mean end of stream to libavcodec.
            return Ok(out);
        }
        if self.clock.input(pts_ms) {
            self.re_anchors += 1;
        }
        let decoded = self.decode(data);
        let encoded = self.encode_ready(&mut out, false);
        match decoded.and(encoded) {
            Ok(()) => Ok(out),
            Err(error) => {
                self.carry = out;
                Err(error)
            }
        }
    }

    /// End of stream: everything still inside (parser, decoder, resampler, the last partial
    /// frame, the encoder). The transcoder takes no frames after this.
    pub fn flush(&mut self) -> Result<Vec<MediaPacket>, TranscodeError> {
        let mut out = std::mem::take(&mut self.carry);
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        // Errors in the tail of the source are not worth more than losing its last samples.
        if let Some(parser) = &mut self.parser {
            for frame in parser.parse(&[]) {
                let _ = self.decode_packet(&frame);
            }
        }
        if self.decoder.send_eof().is_ok() {
            let _ = self.receive_decoded();
        }
        if let Some(mut resampler) = self.resampler.take() {
            let _ = self.drain_resampler(&mut resampler);
        }
        self.encode_ready(&mut out, true)?;
        self.encoder
            .send_eof()
            .map_err(|source| TranscodeError::Ffmpeg {
                call: "avcodec_send_frame (aac encoder, end of stream)",
                source,
            })?;
        self.receive_packets(&mut out)?;
        Ok(out)
    }

    /// Decode one input frame into the FIFO (through the MP3 parser for MP3). With several MP3
    /// frames in one input, a corrupt one does not lose the others: the first error is
    /// returned once all are done.
    fn decode(&mut self, data: &[u8]) -> Result<(), TranscodeError> {
        let Some(parser) = &mut self.parser else {
            return self.decode_packet(data);
        };
        let mut result = Ok(());
        for frame in parser.parse(data) {
            let decoded = self.decode_packet(&frame);
            if result.is_ok() {
                result = decoded;
            }
        }
        result
    }

    fn decode_packet(&mut self, data: &[u8]) -> Result<(), TranscodeError> {
        if data.is_empty() {
            return Ok(());
        }
        let size = i32::try_from(data.len())
            .map_err(|_| TranscodeError::InvalidInput("audio frame larger than 2 GiB"))?;
        // SAFETY: a zeroed AVPacket is a valid blank packet; it borrows `data` only for this
        // call (not reference-counted: avcodec_send_packet copies the data into a padded
        // buffer of its own) and owns nothing, so it needs no unref.
        let sent = unsafe {
            let mut packet: ffi::AVPacket = std::mem::zeroed();
            packet.data = data.as_ptr() as *mut u8;
            packet.size = size;
            packet.pts = ffi::AV_NOPTS_VALUE;
            packet.dts = ffi::AV_NOPTS_VALUE;
            packet.pos = -1;
            ffi::avcodec_send_packet(self.decoder.as_mut_ptr(), &packet)
        };
        if sent < 0 {
            return Err(TranscodeError::Ffmpeg {
                call: "avcodec_send_packet (audio decoder)",
                source: ffmpeg_next::Error::from(sent),
            });
        }
        self.receive_decoded()
    }

    /// Every frame the decoder has ready, resampled into the FIFO.
    fn receive_decoded(&mut self) -> Result<(), TranscodeError> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.resample_decoded()?,
                Err(ffmpeg_next::Error::Other { errno: EAGAIN }) | Err(ffmpeg_next::Error::Eof) => {
                    return Ok(())
                }
                Err(source) => {
                    return Err(TranscodeError::Ffmpeg {
                        call: "avcodec_receive_frame (audio decoder)",
                        source,
                    })
                }
            }
        }
    }

    /// The decoded frame through the resampler (set up again when the decoded format, rate or
    /// layout changes) into the FIFO.
    fn resample_decoded(&mut self) -> Result<(), TranscodeError> {
        // SAFETY: `decoded` holds the frame avcodec_receive_frame just returned; we read its
        // properties only.
        let (samples, rate, layout) = unsafe {
            let f = self.decoded.as_ptr();
            ((*f).nb_samples, (*f).sample_rate, (*f).ch_layout)
        };
        if samples <= 0 {
            return Ok(());
        }
        if rate <= 0 || layout.nb_channels <= 0 {
            return Err(TranscodeError::InvalidInput(
                "decoded audio without a sample rate or channels",
            ));
        }
        let mask = if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            // SAFETY: `mask` is the member a native-order layout uses.
            unsafe { layout.u.mask }
        } else {
            default_mask(layout.nb_channels)
        };
        let input = InputDefinition {
            format: self.decoded.format().into(),
            rate,
            channels: layout.nb_channels,
            mask,
        };
        if self.resampler.as_ref().map(|r| r.input) != Some(input) {
            if let Some(mut old) = self.resampler.take() {
                self.drain_resampler(&mut old)?;
            }
            self.resampler = Some(Resampler::new(input, self.rate, self.channels)?);
        }
        let Some(resampler) = &mut self.resampler else {
            return Ok(());
        };
        let swr = resampler.swr;
        // SAFETY: swr is initialised; nb_samples input samples at extended_data (one pointer
        // per plane, or one for packed audio), as the decoder returned them.
        let max = unsafe { ffi::swr_get_out_samples(swr, samples) };
        if max < 0 {
            return Err(TranscodeError::Ffmpeg {
                call: "swr_get_out_samples",
                source: ffmpeg_next::Error::from(max),
            });
        }
        // SAFETY: as above: the pointers to the decoded frame's planes (or its one plane).
        let input_planes = unsafe { (*self.decoded.as_ptr()).extended_data } as *mut *const u8;
        let converted = self
            .buffer
            .append_with(usize::try_from(max).unwrap_or(0) + 16, |out| {
                // SAFETY: one pointer per output plane with room for the count given.
                unsafe { ffi::swr_convert(swr, out.as_mut_ptr(), max + 16, input_planes, samples) }
            })
            .map_err(|code| TranscodeError::Ffmpeg {
                call: "swr_convert",
                source: ffmpeg_next::Error::from(code),
            })?;
        self.clock.advance(converted);
        Ok(())
    }

    /// The samples a resampler still holds (its filter delay), into the FIFO.
    fn drain_resampler(&mut self, resampler: &mut Resampler) -> Result<(), TranscodeError> {
        let swr = resampler.swr;
        // SAFETY: swr is initialised; a null input flushes it.
        let max = unsafe { ffi::swr_get_out_samples(swr, 0) }.max(0) + 16;
        let drained = self
            .buffer
            .append_with(max as usize, |out| unsafe {
                ffi::swr_convert(swr, out.as_mut_ptr(), max, ptr::null_mut(), 0)
            })
            .map_err(|code| TranscodeError::Ffmpeg {
                call: "swr_convert (flush)",
                source: ffmpeg_next::Error::from(code),
            })?;
        self.clock.advance(drained);
        Ok(())
    }

    /// Every whole frame in the FIFO to the encoder (and at the end of the stream the last,
    /// shorter one); the packets it completes into `out`.
    fn encode_ready(
        &mut self,
        out: &mut Vec<MediaPacket>,
        end_of_stream: bool,
    ) -> Result<(), TranscodeError> {
        while self.buffer.len() >= self.frame_size || (end_of_stream && self.buffer.len() > 0) {
            let n = self.buffer.len().min(self.frame_size);
            let frame = self.frame_from_buffer(n)?;
            self.buffer.consume(n);
            self.samples_encoded += n as i64;
            self.encoder
                .send_frame(&frame)
                .map_err(|source| TranscodeError::Ffmpeg {
                    call: "avcodec_send_frame (aac encoder)",
                    source,
                })?;
            self.receive_packets(out)?;
        }
        Ok(())
    }

    /// A new frame with the next `n` samples of the FIFO, stamped with their number.
    fn frame_from_buffer(&self, n: usize) -> Result<frame::Audio, TranscodeError> {
        let mut frame = frame::Audio::empty();
        // SAFETY: the frame is ours and blank (checked for null); av_frame_get_buffer gives
        // it `n` fltp samples per channel, into which we copy `n` samples per plane.
        unsafe {
            let f = frame.as_mut_ptr();
            if f.is_null() {
                return Err(TranscodeError::OutOfMemory("av_frame_alloc (aac frame)"));
            }
            (*f).format = ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP as i32;
            (*f).nb_samples = n as i32;
            (*f).sample_rate = self.rate as i32;
            ffi::av_channel_layout_default(&mut (*f).ch_layout, i32::from(self.channels));
            (*f).pts = self.samples_encoded;
            let allocated = ffi::av_frame_get_buffer(f, 0);
            if allocated < 0 {
                return Err(TranscodeError::Ffmpeg {
                    call: "av_frame_get_buffer (aac frame)",
                    source: ffmpeg_next::Error::from(allocated),
                });
            }
            for channel in 0..usize::from(self.channels) {
                let samples = self.buffer.front(channel, n);
                let plane = *(*f).extended_data.add(channel) as *mut f32;
                ptr::copy_nonoverlapping(samples.as_ptr(), plane, n);
            }
        }
        Ok(frame)
    }

    /// Every packet the encoder has ready, stamped from the sample clock.
    fn receive_packets(&mut self, out: &mut Vec<MediaPacket>) -> Result<(), TranscodeError> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    let Some(data) = self.packet.data().filter(|d| !d.is_empty()) else {
                        continue;
                    };
                    let data = Bytes::copy_from_slice(data);
                    // The encoder's pts: its input frame's, less the priming (1024 samples).
                    let sample = self.packet.pts().unwrap_or(self.samples_encoded);
                    let ms = self.clock.ms(sample);
                    out.push(MediaPacket {
                        kind: TrackKind::Audio,
                        dts_ms: ms,
                        pts_ms: ms,
                        keyframe: true,
                        data,
                    });
                }
                Err(ffmpeg_next::Error::Other { errno: EAGAIN }) | Err(ffmpeg_next::Error::Eof) => {
                    return Ok(())
                }
                Err(source) => {
                    return Err(TranscodeError::Ffmpeg {
                        call: "avcodec_receive_packet (aac encoder)",
                        source,
                    })
                }
            }
        }
    }
}

impl std::fmt::Debug for AudioTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioTranscoder")
            .field("source", &self.source.describe())
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("bitrate_kbps", &self.bitrate_kbps)
            .field("resampler_input", &self.resampler.as_ref().map(|r| r.input))
            .field("buffered", &self.buffer.len())
            .field("re_anchors", &self.re_anchors)
            .finish()
    }
}

/// The mask of the default native layout for `channels` (0 when there is none).
fn default_mask(channels: i32) -> u64 {
    // SAFETY: av_channel_layout_default writes a native (or unspecified-order) layout, which
    // owns no memory.
    unsafe {
        let mut layout: ffi::AVChannelLayout = std::mem::zeroed();
        ffi::av_channel_layout_default(&mut layout, channels);
        if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            layout.u.mask
        } else {
            0
        }
    }
}

fn open_decoder(spec: &DecoderSpec) -> Result<ffmpeg_next::decoder::Audio, TranscodeError> {
    let codec = spec
        .preferred
        .and_then(ffmpeg_next::decoder::find_by_name)
        .or_else(|| ffmpeg_next::decoder::find(spec.id))
        .ok_or(TranscodeError::CodecMissing(spec.what))?;
    let mut context = ffmpeg_next::codec::Context::new_with_codec(codec);
    // SAFETY: the context is freshly allocated (checked for null) and not opened yet, which is
    // when these may be set; extradata is allocated with av_mallocz (zeroed padding included,
    // as libavcodec requires) and freed with the context.
    unsafe {
        let ctx = context.as_mut_ptr();
        if ctx.is_null() {
            return Err(TranscodeError::OutOfMemory(
                "avcodec_alloc_context3 (audio decoder)",
            ));
        }
        (*ctx).sample_rate = spec.sample_rate as i32;
        ffi::av_channel_layout_uninit(&mut (*ctx).ch_layout);
        ffi::av_channel_layout_default(&mut (*ctx).ch_layout, i32::from(spec.channels));
        (*ctx).pkt_timebase = ffi::AVRational { num: 1, den: 1000 };
        if let Some(extradata) = &spec.extradata {
            let size = i32::try_from(extradata.len())
                .map_err(|_| TranscodeError::InvalidInput("audio extradata larger than 2 GiB"))?;
            let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
            let buffer = ffi::av_mallocz(extradata.len() + padding) as *mut u8;
            if buffer.is_null() {
                return Err(TranscodeError::OutOfMemory("av_mallocz (audio extradata)"));
            }
            ptr::copy_nonoverlapping(extradata.as_ptr(), buffer, extradata.len());
            (*ctx).extradata = buffer;
            (*ctx).extradata_size = size;
        }
    }
    context
        .decoder()
        .open_as(codec)
        .and_then(|opened| opened.audio())
        .map_err(|source| TranscodeError::Ffmpeg {
            call: "avcodec_open2 (audio decoder)",
            source,
        })
}

/// FFmpeg's native AAC encoder, AAC-LC, with global headers (the AudioSpecificConfig as
/// extradata). Returns it, its config and its frame size.
fn open_encoder(
    rate: u32,
    channels: u8,
    bitrate_kbps: u32,
) -> Result<
    (
        ffmpeg_next::encoder::audio::Encoder,
        AudioSpecificConfig,
        usize,
    ),
    TranscodeError,
> {
    let codec = ffmpeg_next::encoder::find_by_name("aac")
        .ok_or(TranscodeError::CodecMissing("FFmpeg's native aac encoder"))?;
    let context = ffmpeg_next::codec::Context::new_with_codec(codec);
    // SAFETY: only reads the pointer avcodec_alloc_context3 returned.
    if unsafe { context.as_ptr().is_null() } {
        return Err(TranscodeError::OutOfMemory(
            "avcodec_alloc_context3 (aac encoder)",
        ));
    }
    let mut audio = context
        .encoder()
        .audio()
        .map_err(|source| TranscodeError::Ffmpeg {
            call: "avcodec_alloc_context3 (aac encoder)",
            source,
        })?;
    // SAFETY: the context is allocated (checked above) and not opened; these are plain fields
    // the encoder reads when it opens.
    let opened = unsafe {
        let ctx = audio.as_mut_ptr();
        (*ctx).sample_fmt = ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP;
        (*ctx).sample_rate = rate as i32;
        ffi::av_channel_layout_uninit(&mut (*ctx).ch_layout);
        ffi::av_channel_layout_default(&mut (*ctx).ch_layout, i32::from(channels));
        (*ctx).bit_rate = i64::from(bitrate_kbps) * 1000;
        (*ctx).time_base = ffi::AVRational {
            num: 1,
            den: rate as i32,
        };
        (*ctx).profile = ffi::FF_PROFILE_AAC_LOW;
        (*ctx).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
        ffi::avcodec_open2(ctx, codec.as_ptr(), ptr::null_mut())
    };
    if opened < 0 {
        return Err(TranscodeError::Ffmpeg {
            call: "avcodec_open2 (aac encoder)",
            source: ffmpeg_next::Error::from(opened),
        });
    }
    let encoder = ffmpeg_next::encoder::audio::Encoder(audio);
    // SAFETY: after a successful open with AV_CODEC_FLAG_GLOBAL_HEADER, extradata holds
    // extradata_size bytes (or is null); we copy them out at once.
    let (extradata, frame_size) = unsafe {
        let ctx = encoder.as_ptr();
        let extradata = if (*ctx).extradata.is_null() {
            Vec::new()
        } else {
            let size = usize::try_from((*ctx).extradata_size).unwrap_or(0);
            std::slice::from_raw_parts((*ctx).extradata, size).to_vec()
        };
        (extradata, (*ctx).frame_size)
    };
    let config = AudioSpecificConfig::parse(Bytes::from(extradata))
        .map_err(TranscodeError::AudioEncoderConfig)?;
    let frame_size =
        usize::try_from(frame_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or(TranscodeError::InvalidInput(
                "the aac encoder has no frame size",
            ))?;
    Ok((encoder, config, frame_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- pure bookkeeping ----

    #[test]
    fn rates_and_layouts() {
        for kept in [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000] {
            assert_eq!(output_sample_rate(kept), kept);
        }
        // FLV's 5.5 kHz, odd rates, and rates above 48 kHz.
        for other in [5512, 96000, 88200, 64000, 37800, 0] {
            assert_eq!(output_sample_rate(other), 48000, "{other}");
        }
        assert_eq!([0, 1, 2, 3, 6, 8].map(output_channels), [1, 1, 2, 2, 2, 2]);
    }

    #[test]
    fn clock_follows_the_sample_count_not_the_jitter() {
        // 44.1 kHz, 1152-sample MP3 frames (26.12 ms) stamped with ±3 ms of jitter.
        let mut clock = SampleClock::new(44100);
        for i in 0..100i64 {
            let stamp = 1000 + (i * 1152 * 1000) / 44100 + [0, 3, -3, 2][i as usize % 4];
            assert!(!clock.input(stamp));
            clock.advance(1152);
        }
        // AAC frames: 1024 samples; the priming one is a frame before the first input.
        let times: Vec<i64> = (-1..5).map(|k| clock.ms(k * 1024)).collect();
        assert_eq!(times, [976, 1000, 1023, 1046, 1069, 1092]);
        assert_eq!(clock.anchors.len(), 1);
    }

    #[test]
    fn clock_reanchors_on_jumps_of_more_than_100_ms() {
        let mut clock = SampleClock::new(48000);
        assert!(!clock.input(0));
        clock.advance(4800); // 100 ms of samples
                             // 100 ms later as the samples say, + 100 ms of drift: tolerated.
        assert!(!clock.input(200));
        clock.advance(4800);
        // A gap: the input says 700 ms, the samples 200 ms.
        assert!(clock.input(700));
        clock.advance(4800);
        // A reset backwards.
        assert!(clock.input(50));
        clock.advance(4800);
        assert_eq!(clock.ms(0), 0);
        assert_eq!(clock.ms(4800), 100);
        assert_eq!(clock.ms(9599), 199); // the last sample before the gap
        assert_eq!(clock.ms(9600), 700);
        assert_eq!(clock.ms(14399), 799);
        assert_eq!(clock.ms(14400), 50); // passed on, like the source video's timestamps
        assert_eq!(clock.ms(19200), 150);
        assert_eq!(clock.anchors.len(), 1, "older anchors are dropped");
    }

    #[test]
    fn clock_anchors_on_the_first_input_even_when_it_produced_nothing() {
        // A parser or decoder that outputs one frame late: the anchor stays on the first
        // timestamp, the lag is under the 100 ms tolerance.
        let mut clock = SampleClock::new(44100);
        assert!(!clock.input(5000));
        assert!(!clock.input(5026));
        clock.advance(1152);
        assert!(!clock.input(5052));
        assert_eq!(clock.ms(0), 5000);
        // A first frame that was garbage far off in time is replaced by the next, as nothing
        // came out of it.
        let mut clock = SampleClock::new(44100);
        clock.input(999_999);
        assert!(clock.input(5000));
        assert_eq!(
            clock.anchors,
            [Anchor {
                sample: 0,
                ms: 5000
            }]
        );
    }

    #[test]
    fn sample_buffer_is_a_fifo() {
        let mut buffer = SampleBuffer::new(2);
        let wrote = buffer.append_with(8, |planes| {
            for (c, plane) in planes.iter().enumerate() {
                let plane = *plane as *mut f32;
                for i in 0..5 {
                    unsafe { *plane.add(i) = (c * 100 + i) as f32 };
                }
            }
            5
        });
        assert_eq!(wrote, Ok(5));
        assert_eq!(buffer.len(), 5);
        assert_eq!(buffer.front(1, 3), [100.0, 101.0, 102.0]);
        buffer.consume(3);
        assert_eq!(buffer.front(0, 2), [3.0, 4.0]);
        assert_eq!(buffer.append_with(4, |_| -22), Err(-22));
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.append_with(4, |_| 1), Ok(1));
        assert_eq!(buffer.front(0, 3), [3.0, 4.0, 0.0]);
    }

    // ---- with libavcodec ----

    /// `n` samples of a 1 kHz sine at `rate`, interleaved s16le, `channels` channels.
    fn sine_s16le(rate: u32, channels: usize, from: usize, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * channels * 2);
        for i in from..from + n {
            let t = i as f64 / f64::from(rate);
            let v = ((t * 1000.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
            for _ in 0..channels {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// PCM in frames of `frame` samples, stamped as RTMP would (ms, rounded down).
    fn feed_pcm(
        transcoder: &mut AudioTranscoder,
        rate: u32,
        channels: usize,
        frame: usize,
        frames: usize,
    ) -> Vec<MediaPacket> {
        let mut packets = Vec::new();
        for k in 0..frames {
            let data = sine_s16le(rate, channels, k * frame, frame);
            let ms = (k * frame * 1000 / rate as usize) as i64;
            packets.extend(transcoder.transcode(&data, 500 + ms).expect("transcode"));
        }
        packets.extend(transcoder.flush().expect("flush"));
        packets
    }

    fn pcm(rate: u32, channels: u8) -> AudioSource {
        AudioSource::Flv {
            sound_format: FLV_PCM_LE,
            sample_rate: rate,
            channels,
            sample_size_bits: 16,
        }
    }

    fn check_timestamps(packets: &[MediaPacket], rate: u32, first_input_ms: i64) {
        let frame_ms = 1024.0 * 1000.0 / f64::from(rate);
        assert!(packets.iter().all(|p| p.kind == TrackKind::Audio
            && p.keyframe
            && p.pts_ms == p.dts_ms
            && !p.data.is_empty()));
        for (k, p) in packets.iter().enumerate() {
            let expected = first_input_ms as f64 + (k as f64 - 1.0) * frame_ms;
            assert!(
                (p.dts_ms as f64 - expected).abs() <= 1.0,
                "packet {k} at {} ms, expected {expected:.1}",
                p.dts_ms
            );
        }
        assert!(packets.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
    }

    #[test]
    fn pcm_to_aac_and_aac_to_aac() {
        // 2 s of 44.1 kHz stereo PCM in 1152-sample frames.
        let mut first = AudioTranscoder::new(&pcm(44100, 2), 128).expect("opens");
        let config = first.config().clone();
        assert_eq!(
            (
                config.object_type,
                config.sample_rate,
                config.channels,
                config.frame_length
            ),
            (2, 44100, 2, 1024)
        );
        // The native encoder's config: AAC-LC 44.1 kHz stereo + "no SBR" sync extension.
        assert_eq!(&config.raw[..2], &[0x12, 0x10]);
        let packets = feed_pcm(&mut first, 44100, 2, 1152, 77); // 88 704 samples
                                                                // Priming frame + ceil(88 704 / 1024) = 1 + 87, and the encoder's tail.
        assert!((88..=89).contains(&packets.len()), "{}", packets.len());
        check_timestamps(&packets, 44100, 500);
        let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
        let kbps = bytes as f64 * 8.0 / (packets.len() as f64 * 1024.0 / 44100.0) / 1000.0;
        assert!((90.0..=160.0).contains(&kbps), "{kbps} kbps for 128");

        // Its output, re-encoded at 64 kbps: AAC in, AAC out.
        let mut second =
            AudioTranscoder::new(&AudioSource::Aac(config.clone()), 64).expect("opens");
        assert_eq!(second.config().raw, config.raw);
        let mut again = Vec::new();
        for p in &packets {
            again.extend(second.transcode(&p.data, p.dts_ms).expect("aac decodes"));
        }
        again.extend(second.flush().expect("flush"));
        // One more priming frame.
        assert_eq!(again.len(), packets.len() + 1, "{}", again.len());
        check_timestamps(&again, 44100, packets[0].dts_ms);
        let bytes: usize = again.iter().map(|p| p.data.len()).sum();
        assert!(bytes < packets.iter().map(|p| p.data.len()).sum::<usize>() * 3 / 4);
        assert_eq!(second.re_anchors(), 0);
    }

    #[test]
    fn low_rates_mono_and_the_48k_fallback() {
        // 8 kHz mono (G.711, Nellymoser, MP3 8 kHz): kept, the encoder takes it.
        let mut t = AudioTranscoder::new(&pcm(8000, 1), 32).expect("opens at 8 kHz");
        assert_eq!((t.config().sample_rate, t.config().channels), (8000, 1));
        let packets = feed_pcm(&mut t, 8000, 1, 256, 40); // 10 240 samples
        assert!((11..=12).contains(&packets.len()), "{}", packets.len());
        check_timestamps(&packets, 8000, 500);

        // 16 kHz (Speex): kept.
        let t = AudioTranscoder::new(&pcm(16000, 1), 32).expect("opens at 16 kHz");
        assert_eq!(t.config().sample_rate, 16000);

        // FLV's 5 512 Hz is no AAC rate: 48 kHz, resampled (8.7 times as many samples).
        let mut t = AudioTranscoder::new(&pcm(5512, 2), 96).expect("opens");
        assert_eq!((t.config().sample_rate, t.config().channels), (48000, 2));
        let packets = feed_pcm(&mut t, 5512, 2, 512, 22); // 11 264 samples = 2.04 s
        let expected = 11264.0 * 48000.0 / 5512.0 / 1024.0;
        assert!(
            (packets.len() as f64 - expected - 1.0).abs() <= 1.5,
            "{} packets, {expected:.1} + priming expected",
            packets.len()
        );
        check_timestamps(&packets, 48000, 500);
    }

    #[test]
    fn corrupt_frames_are_errors_and_the_transcoder_goes_on() {
        let mut source = AudioTranscoder::new(&pcm(48000, 2), 128).expect("opens");
        let aac = feed_pcm(&mut source, 48000, 2, 1024, 60);
        let mut t =
            AudioTranscoder::new(&AudioSource::Aac(source.config().clone()), 96).expect("opens");
        let mut out = Vec::new();
        let mut errors = 0;
        for (i, p) in aac.iter().enumerate() {
            let data: &[u8] = match i {
                10 => &[0xff; 300],
                11 => &[0x00, 0x01],
                12 => &p.data[..p.data.len() / 3],
                _ => &p.data,
            };
            match t.transcode(data, p.dts_ms) {
                Ok(packets) => out.extend(packets),
                Err(_) => errors += 1,
            }
        }
        out.extend(t.flush().expect("flush"));
        assert!((1..=3).contains(&errors), "{errors} errors");
        // The lost frames are missing (fewer than 100 ms: no re-anchoring), everything else
        // came out, in order.
        assert!(out.len() >= aac.len() - 3, "{} of {}", out.len(), aac.len());
        assert!(out.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
        assert!(matches!(
            t.transcode(&aac[20].data, 0),
            Err(TranscodeError::InvalidInput(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        let sources = [
            AudioSource::from_flv_tag(&[0x2f]).unwrap(), // MP3
            AudioSource::from_flv_tag(&[0x1f]).unwrap(), // ADPCM
            AudioSource::from_flv_tag(&[0x52]).unwrap(), // Nellymoser 8 kHz
            AudioSource::from_flv_tag(&[0x72]).unwrap(), // A-law
            AudioSource::from_flv_tag(&[0x3e]).unwrap(), // 8-bit PCM
            AudioSource::from_flv_tag(&[0xb2]).unwrap(), // Speex
            AudioSource::Aac(
                AudioSpecificConfig::parse(Bytes::from_static(&[0x11, 0x90])).unwrap(),
            ),
        ];
        for source in &sources {
            let mut t = AudioTranscoder::new(source, 64)
                .unwrap_or_else(|e| panic!("{}: {e}", source.describe()));
            for i in 0..40 {
                let len = [1, 2, 7, 64, 417, 1500][i % 6];
                let _ = t.transcode(&noise(len), i as i64 * 20);
            }
            // Garbage stamped every 20 ms decodes to any number of samples: the timeline
            // re-anchors back and forth, which is not what is checked here.
            let packets = t.flush().unwrap_or_default();
            assert!(packets.iter().all(|p| !p.data.is_empty()));
        }
    }

    #[test]
    fn bad_sources_and_settings_are_refused() {
        assert!(matches!(
            AudioTranscoder::new(&pcm(44100, 2), 4),
            Err(TranscodeError::InvalidSettings(_))
        ));
        assert!(AudioTranscoder::new(&pcm(0, 2), 64).is_err());
        assert!(AudioTranscoder::new(&pcm(44100, 0), 64).is_err());
        let pcm24 = AudioSource::Flv {
            sound_format: FLV_PCM_LE,
            sample_rate: 44100,
            channels: 2,
            sample_size_bits: 24,
        };
        assert!(matches!(
            AudioTranscoder::new(&pcm24, 64),
            Err(TranscodeError::UnsupportedAudio(_))
        ));
        let opus = AudioSource::Opus {
            id_header: Bytes::from_static(b"OpusTags"),
        };
        assert!(AudioTranscoder::new(&opus, 64).is_err());
    }

    #[test]
    fn opus_through_libopus() {
        // Opus encoded here with libopus (20 ms frames), its OpusHead as the sequence header.
        let Some(codec) = ffmpeg_next::encoder::find_by_name("libopus") else {
            eprintln!("no libopus encoder: skipped");
            return;
        };
        let context = ffmpeg_next::codec::Context::new_with_codec(codec);
        let mut audio = context.encoder().audio().expect("audio encoder");
        unsafe {
            let ctx = audio.as_mut_ptr();
            (*ctx).sample_fmt = ffi::AVSampleFormat::AV_SAMPLE_FMT_S16;
            (*ctx).sample_rate = 48000;
            ffi::av_channel_layout_default(&mut (*ctx).ch_layout, 2);
            (*ctx).bit_rate = 96_000;
            (*ctx).time_base = ffi::AVRational { num: 1, den: 48000 };
            assert!(ffi::avcodec_open2(ctx, codec.as_ptr(), ptr::null_mut()) >= 0);
        }
        let mut encoder = ffmpeg_next::encoder::audio::Encoder(audio);
        let head = unsafe {
            let ctx = encoder.as_ptr();
            std::slice::from_raw_parts((*ctx).extradata, (*ctx).extradata_size as usize).to_vec()
        };
        let mut opus_packets = Vec::new();
        let mut packet = Packet::empty();
        for k in 0..100 {
            let mut frame = frame::Audio::empty();
            unsafe {
                let f = frame.as_mut_ptr();
                (*f).format = ffi::AVSampleFormat::AV_SAMPLE_FMT_S16 as i32;
                (*f).nb_samples = 960;
                (*f).sample_rate = 48000;
                ffi::av_channel_layout_default(&mut (*f).ch_layout, 2);
                (*f).pts = k * 960;
                assert!(ffi::av_frame_get_buffer(f, 0) >= 0);
                let pcm = sine_s16le(48000, 2, k as usize * 960, 960);
                ptr::copy_nonoverlapping(pcm.as_ptr(), (*f).data[0], pcm.len());
            }
            encoder.send_frame(&frame).expect("libopus takes the frame");
            while encoder.receive_packet(&mut packet).is_ok() {
                opus_packets.push(packet.data().unwrap_or_default().to_vec());
            }
        }
        encoder.send_eof().expect("eof");
        while encoder.receive_packet(&mut packet).is_ok() {
            opus_packets.push(packet.data().unwrap_or_default().to_vec());
        }

        let source = AudioSource::Opus {
            id_header: Bytes::from(head),
        };
        assert_eq!(source.describe(), "Opus 2 ch");
        let mut t = AudioTranscoder::new(&source, 128).expect("opens");
        assert_eq!((t.config().sample_rate, t.config().channels), (48000, 2));
        let mut out = Vec::new();
        for (k, data) in opus_packets.iter().enumerate() {
            out.extend(
                t.transcode(data, 1000 + k as i64 * 20)
                    .expect("opus decodes"),
            );
        }
        out.extend(t.flush().expect("flush"));
        // ~2 s = 96 000 samples (less the pre-skip) = 93-94 AAC frames + priming.
        assert!((92..=97).contains(&out.len()), "{}", out.len());
        check_timestamps(&out, 48000, 1000);
    }

    #[test]
    fn transcoder_moves_between_threads() {
        fn send<T: Send>() {}
        send::<AudioTranscoder>();
    }
}
