//! Which libavcodec decoder a source's audio needs (from its AAC config, OpusHead or FLV tag
//! header), with what the source says of its rate and channels, and opening that decoder.
//!
//! Decoders are libavcodec's defaults for each codec, except Speex (`libspeex` when it is
//! there). What FLV cannot carry (rates outside 1 kHz..384 kHz, more than two channels, 24-bit
//! PCM, unknown sound formats) and malformed OpusHeads are refused here, before any codec opens.

use bytes::Bytes;
use ffmpeg_next::codec::Id;
use ffmpeg_next::ffi;

use crate::media::audio_source::{
    flv_sound_format_name, FLV_ADPCM, FLV_ALAW, FLV_MP3, FLV_MP3_8K, FLV_MULAW, FLV_NELLYMOSER,
    FLV_NELLYMOSER_16K, FLV_NELLYMOSER_8K, FLV_PCM, FLV_PCM_LE, FLV_SPEEX,
};
use crate::media::AudioSource;
use crate::transcode::codec_io::{allocated, open_decoder, set_extradata};
use crate::transcode::encoder::TranscodeError;

/// The libavcodec decoder for a source, and how to open it.
pub(super) struct DecoderSpec {
    id: Id,
    /// A decoder to use rather than libavcodec's default for `id`, when it is there.
    preferred: Option<&'static str>,
    /// For CodecMissing.
    what: &'static str,
    /// What the source says: the rate and channel count its decoder is opened with.
    pub(super) sample_rate: u32,
    pub(super) channels: u8,
    extradata: Option<Bytes>,
    /// MP3 goes through FFmpeg's MPEG audio parser first: RTMP publishers do not all send
    /// exactly one MP3 frame per tag (FFmpeg's FLV demuxer parses MP3 for the same reason).
    pub(super) parse_mp3: bool,
}

impl DecoderSpec {
    /// What decoding `source` takes, or why it cannot be decoded.
    pub(super) fn of(source: &AudioSource) -> Result<Self, TranscodeError> {
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

    /// The decoder, opened for this source (milliseconds as the packet time base).
    pub(super) fn open(&self) -> Result<ffmpeg_next::decoder::Audio, TranscodeError> {
        let codec = self
            .preferred
            .and_then(ffmpeg_next::decoder::find_by_name)
            .or_else(|| ffmpeg_next::decoder::find(self.id))
            .ok_or(TranscodeError::CodecMissing(self.what))?;
        let mut context = allocated(
            ffmpeg_next::codec::Context::new_with_codec(codec),
            "avcodec_alloc_context3 (audio decoder)",
        )?;
        // SAFETY: the context is allocated (checked above) and not opened yet, which is when
        // these may be set.
        unsafe {
            let ctx = context.as_mut_ptr();
            (*ctx).sample_rate = self.sample_rate as i32;
            ffi::av_channel_layout_uninit(&mut (*ctx).ch_layout);
            ffi::av_channel_layout_default(&mut (*ctx).ch_layout, i32::from(self.channels));
            (*ctx).pkt_timebase = ffi::AVRational { num: 1, den: 1000 };
        }
        if let Some(extradata) = &self.extradata {
            set_extradata(&mut context, extradata)?;
        }
        open_decoder(
            context,
            codec,
            "avcodec_open2 (audio decoder)",
            ffmpeg_next::decoder::Opened::audio,
        )
    }
}
