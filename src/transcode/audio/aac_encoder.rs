//! The AAC side: what the output is (its sample rate and channel count, from the source's) and
//! FFmpeg's native `aac` encoder opened for it (AAC-LC, planar float, global headers).

use std::ptr;

use bytes::Bytes;
use ffmpeg_next::ffi;

use crate::media::AudioSpecificConfig;
use crate::transcode::codec_io::{encoder_context, extradata};
use crate::transcode::encoder::TranscodeError;

/// Sample rates the output keeps (MPEG-4 sampling frequencies up to 48 kHz, all of which FFmpeg's
/// native encoder accepts); anything else becomes [`FALLBACK_RATE`].
const KEPT_RATES: [u32; 10] = [
    48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];
const FALLBACK_RATE: u32 = 48000;

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

/// An opened AAC encoder and what it says of itself.
pub(super) struct AacEncoder {
    pub(super) encoder: ffmpeg_next::encoder::audio::Encoder,
    /// Its AudioSpecificConfig (from its extradata), for the muxer's init segment.
    pub(super) config: AudioSpecificConfig,
    /// Samples per frame it takes (1024 for AAC-LC).
    pub(super) frame_size: usize,
}

/// FFmpeg's native AAC encoder, AAC-LC, with global headers (the AudioSpecificConfig as
/// extradata), taking planar float at `rate` Hz and `channels` channels.
pub(super) fn open_encoder(
    rate: u32,
    channels: u8,
    bitrate_kbps: u32,
) -> Result<AacEncoder, TranscodeError> {
    let (codec, mut audio) = encoder_context(
        "aac",
        "FFmpeg's native aac encoder",
        "avcodec_alloc_context3 (aac encoder)",
        ffmpeg_next::encoder::Encoder::audio,
    )?;
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
    // SAFETY: a plain read of the opened context.
    let frame_size = unsafe { (*encoder.as_ptr()).frame_size };
    let config = AudioSpecificConfig::parse(Bytes::from(extradata(&encoder)))
        .map_err(TranscodeError::AudioEncoderConfig)?;
    let frame_size =
        usize::try_from(frame_size)
            .ok()
            .filter(|&n| n > 0)
            .ok_or(TranscodeError::InvalidInput(
                "the aac encoder has no frame size",
            ))?;
    Ok(AacEncoder {
        encoder,
        config,
        frame_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
