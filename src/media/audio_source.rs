//! What a source's audio is, when it is not AAC or may not be: the description the audio
//! transcoder ([`crate::transcode::audio`]) opens its decoder from. Plain values read from FLV
//! tag headers and sequence headers; no codec library here.

use bytes::Bytes;

use super::flv::{
    flv_sound_format_name, FlvError, FLV_AAC, FLV_ADPCM, FLV_ALAW, FLV_EX_HEADER, FLV_MP3,
    FLV_MP3_8K, FLV_MULAW, FLV_NELLYMOSER, FLV_NELLYMOSER_16K, FLV_NELLYMOSER_8K, FLV_PCM,
    FLV_PCM_LE, FLV_RATES, FLV_SPEEX,
};
use super::AudioSpecificConfig;

/// What the source audio is, as the FLV audio tag header says (or an AAC AudioSpecificConfig).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    /// AAC, described by the `AudioSpecificConfig` of its sequence header.
    Aac(AudioSpecificConfig),
    /// A legacy FLV audio codec (E.4.2.1 `SoundFormat` other than 10), as the first byte of its
    /// tags says; see [`AudioSource::from_flv_tag`], which also applies what the FLV spec
    /// fixes for some formats (Nellymoser 8/16 kHz, G.711 at 8 kHz, Speex at 16 kHz).
    Flv {
        /// 0/3 Linear PCM (platform endian = little endian here, as FFmpeg reads it),
        /// 1 ADPCM, 2 MP3, 4/5/6 Nellymoser, 7 G.711 A-law, 8 G.711 µ-law, 11 Speex,
        /// 14 MP3 8 kHz.
        sound_format: u8,
        /// Hz.
        sample_rate: u32,
        /// 1 or 2.
        channels: u8,
        /// 8 or 16; matters for Linear PCM only (8-bit FLV PCM is unsigned).
        sample_size_bits: u8,
    },
    /// Opus (enhanced RTMP FourCC `Opus`), with the identification header (`OpusHead`,
    /// RFC 7845 §5.1) its sequence start carries.
    Opus { id_header: Bytes },
}

impl AudioSource {
    /// The source as the first legacy (non-AAC) audio tag of a stream describes it: `body` is the
    /// whole FLV `AUDIODATA`, header byte included.
    ///
    /// ```text
    /// SoundFormat UB4 | SoundRate UB2 (5.5/11/22/44 kHz) | SoundSize UB1 (8/16-bit)
    /// | SoundType UB1 (mono/stereo) | codec data
    /// ```
    ///
    /// As FFmpeg's FLV demuxer does: Nellymoser 16 kHz (4) and 8 kHz (5) and Nellymoser (6) are
    /// mono at their rate or the header's, G.711 (7, 8) is 8 kHz, Speex (11) 16 kHz mono, MP3
    /// 8 kHz (14) 8 kHz. For MP3 the rate and channels come from the first MPEG audio frame
    /// header when `body` starts with one (SoundRate cannot say 48 kHz, the usual MP3 rate).
    /// AAC (10) and enhanced-RTMP tags (9) are refused: they have sequence headers of their own
    /// ([`AudioSource::Aac`], [`AudioSource::Opus`]).
    pub fn from_flv_tag(body: &[u8]) -> Result<Self, FlvError> {
        let Some((&first, payload)) = body.split_first() else {
            return Err(FlvError::Empty("audio tag"));
        };
        let sound_format = first >> 4;
        let mut sample_rate = FLV_RATES[usize::from((first >> 2) & 0x03)];
        let sample_size_bits = if first & 0x02 != 0 { 16 } else { 8 };
        let mut channels = if first & 0x01 != 0 { 2 } else { 1 };
        match sound_format {
            FLV_PCM | FLV_ADPCM | FLV_PCM_LE => {}
            FLV_MP3 | FLV_MP3_8K => {
                if sound_format == FLV_MP3_8K {
                    sample_rate = 8000;
                }
                if let Some((rate, mpeg_channels)) = mpeg_audio_header(payload) {
                    sample_rate = rate;
                    channels = mpeg_channels;
                }
            }
            FLV_NELLYMOSER_16K => (sample_rate, channels) = (16000, 1),
            FLV_NELLYMOSER_8K => (sample_rate, channels) = (8000, 1),
            FLV_NELLYMOSER => channels = 1,
            FLV_ALAW | FLV_MULAW => sample_rate = 8000,
            FLV_SPEEX => (sample_rate, channels) = (16000, 1),
            FLV_AAC => {
                return Err(FlvError::UnsupportedAudioCodec(
                    "AAC (its AudioSpecificConfig describes it, not the tag header)".into(),
                ))
            }
            FLV_EX_HEADER => {
                return Err(FlvError::UnsupportedAudioCodec(
                    "enhanced RTMP audio (its FourCC and sequence start describe it)".into(),
                ))
            }
            other => {
                return Err(FlvError::UnsupportedAudioCodec(format!(
                    "FLV SoundFormat {other} ({})",
                    flv_sound_format_name(other)
                )))
            }
        }
        Ok(AudioSource::Flv {
            sound_format,
            sample_rate,
            channels,
            sample_size_bits,
        })
    }

    /// For logs: "MP3 44100 Hz stereo", "AAC mp4a.40.2 48000 Hz 2 ch", "Opus 2 ch".
    pub fn describe(&self) -> String {
        match self {
            AudioSource::Aac(config) => format!(
                "AAC {} {} Hz {} ch",
                config.codecs_string(),
                config.sample_rate,
                config.channels
            ),
            AudioSource::Flv {
                sound_format,
                sample_rate,
                channels,
                ..
            } => format!(
                "{} {sample_rate} Hz {}",
                flv_sound_format_name(*sound_format),
                if *channels == 1 { "mono" } else { "stereo" }
            ),
            AudioSource::Opus { id_header } => {
                format!("Opus {} ch", id_header.get(9).copied().unwrap_or_default())
            }
        }
    }
}

/// Sample rate and channel count of an MPEG audio frame header (ISO/IEC 11172-3 2.4.1.3,
/// 13818-3, and the unofficial MPEG-2.5 extension):
///
/// ```text
/// syncword 11 bits (all ones) | version 2 (00 2.5, 10 MPEG-2, 11 MPEG-1) | layer 2
/// | protection 1 | bitrate_index 4 | sampling_frequency 2 | padding 1 | private 1 | mode 2 ...
/// ```
fn mpeg_audio_header(bytes: &[u8]) -> Option<(u32, u8)> {
    let &[b0, b1, b2, b3, ..] = bytes else {
        return None;
    };
    if b0 != 0xff || b1 & 0xe0 != 0xe0 || (b1 >> 1) & 0x03 == 0 {
        return None; // no syncword, or the reserved layer
    }
    let base = *[44100, 48000, 32000].get(usize::from((b2 >> 2) & 0x03))?;
    let rate = match (b1 >> 3) & 0x03 {
        3 => base,
        2 => base / 2,
        0 => base / 4,
        _ => return None, // reserved version
    };
    let channels = if b3 >> 6 == 3 { 1 } else { 2 };
    Some((rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flv_headers() {
        let flv = |sound_format, sample_rate, channels, sample_size_bits| AudioSource::Flv {
            sound_format,
            sample_rate,
            channels,
            sample_size_bits,
        };
        // 3e = SoundFormat 3 (PCM LE), SoundRate 3 (44 kHz), 16-bit, stereo
        assert_eq!(
            AudioSource::from_flv_tag(&[0x3f, 0, 0]).ok(),
            Some(flv(3, 44100, 2, 16))
        );
        // 30 = PCM LE, 5.5 kHz, 8-bit, mono
        assert_eq!(
            AudioSource::from_flv_tag(&[0x30]).ok(),
            Some(flv(3, 5512, 1, 8))
        );
        // 2f + an MPEG-1 Layer III frame header at 48 kHz, joint stereo: ff fb 94 44
        //   (version 11, layer 01, bitrate 1001, sampling_frequency 01 = 48 kHz, mode 01)
        assert_eq!(
            AudioSource::from_flv_tag(&[0x2f, 0xff, 0xfb, 0x94, 0x44]).ok(),
            Some(flv(2, 48000, 2, 16))
        );
        // 2e + MPEG-2 Layer III at 22.05 kHz mono: ff f3 90 c4 (version 10, rate 00, mode 11)
        assert_eq!(
            AudioSource::from_flv_tag(&[0x2e, 0xff, 0xf3, 0x90, 0xc4]).ok(),
            Some(flv(2, 22050, 1, 16))
        );
        // MP3 without a frame header in front: the tag header's values.
        assert_eq!(
            AudioSource::from_flv_tag(&[0x2b, 0x00]).ok(),
            Some(flv(2, 22050, 2, 16))
        );
        // e2 = MP3 8 kHz, mono
        assert_eq!(
            AudioSource::from_flv_tag(&[0xe2]).ok(),
            Some(flv(14, 8000, 1, 16))
        );
        // 42 / 52: Nellymoser 16 / 8 kHz mono; 6d: Nellymoser at 22 kHz (stereo bit ignored)
        assert_eq!(
            AudioSource::from_flv_tag(&[0x42]).ok(),
            Some(flv(4, 16000, 1, 16))
        );
        assert_eq!(
            AudioSource::from_flv_tag(&[0x52]).ok(),
            Some(flv(5, 8000, 1, 16))
        );
        assert_eq!(
            AudioSource::from_flv_tag(&[0x6b]).ok(),
            Some(flv(6, 22050, 1, 16))
        );
        // 72 / 82: G.711 at 8 kHz whatever SoundRate says; b2: Speex 16 kHz mono
        assert_eq!(
            AudioSource::from_flv_tag(&[0x7e]).ok(),
            Some(flv(7, 8000, 1, 16))
        );
        assert_eq!(
            AudioSource::from_flv_tag(&[0x82]).ok(),
            Some(flv(8, 8000, 1, 16))
        );
        assert_eq!(
            AudioSource::from_flv_tag(&[0xb2]).ok(),
            Some(flv(11, 16000, 1, 16))
        );
        for refused in [&[0xaf, 0x01][..], &[0x90, b'O'], &[0xf2], &[0xc2], &[]] {
            assert!(
                AudioSource::from_flv_tag(refused).is_err(),
                "{refused:02x?}"
            );
        }
        let err = AudioSource::from_flv_tag(&[0xf2]).unwrap_err();
        assert!(err.to_string().contains("device-specific"), "{err}");
    }

    #[test]
    fn mpeg_audio_headers() {
        assert_eq!(
            mpeg_audio_header(&[0xff, 0xfb, 0x90, 0x64]),
            Some((44100, 2))
        );
        assert_eq!(
            mpeg_audio_header(&[0xff, 0xe3, 0x18, 0xc4]),
            Some((8000, 1))
        ); // MPEG-2.5
        assert_eq!(mpeg_audio_header(&[0xff, 0xfb, 0x9c, 0x64]), None); // reserved rate
        assert_eq!(mpeg_audio_header(&[0xff, 0xeb, 0x90, 0x64]), None); // reserved version
        assert_eq!(mpeg_audio_header(&[0xff, 0xf9, 0x90, 0x64]), None); // reserved layer
        assert_eq!(mpeg_audio_header(&[0x49, 0x44, 0x33, 0x04]), None); // "ID3"
        assert_eq!(mpeg_audio_header(&[0xff, 0xfb]), None);
    }
}
