//! AAC configuration parsing: the `AudioSpecificConfig` an RTMP publisher sends as its AAC
//! sequence header (FLV `AACPacketType` 0), later written verbatim into the `esds` box.
//!
//! Read beside ISO/IEC 14496-3:
//! - §1.6.2.1 `AudioSpecificConfig()` syntax, `GetAudioObjectType()` (the escape value 31);
//! - §1.6.3.4 `samplingFrequencyIndex` (Table 1.16), §1.6.3.5 `channelConfiguration`
//!   (Table 1.19);
//! - §1.6.5 / §1.6.6 SBR and PS signalling (hierarchical: the first object type is 5 or 29;
//!   backward compatible: the sync extension `0x2b7` after the core config);
//! - §4.4.1 `GASpecificConfig()`.
//!
//! and RFC 6381 §3.3 for the `mp4a.40.N` codecs string.
//!
//! Only AAC cores (Main, LC, SSR, LTP), with or without SBR/PS, are accepted: that is what RTMP
//! encoders send and what HLS players can decode. Never panics on any input.

use bytes::Bytes;

use super::bits::BitReader;

/// Why an AAC configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacError {
    #[error("AudioSpecificConfig truncated while reading {0}")]
    Truncated(&'static str),
    #[error("AudioSpecificConfig uses reserved samplingFrequencyIndex {0}")]
    ReservedSamplingFrequencyIndex(u8),
    #[error("AudioSpecificConfig has an explicit sampling frequency of 0 Hz")]
    ZeroSampleRate,
    #[error(
        "AAC channelConfiguration 0 (channel layout given by a program_config_element) is not \
         supported: configure the encoder for mono, stereo or a standard 5.1/7.1 layout"
    )]
    ChannelConfigurationZero,
    #[error("AAC channelConfiguration {0} is reserved/unsupported (supported: 1 to 7)")]
    UnsupportedChannelConfiguration(u8),
    #[error(
        "unsupported audio object type {object_type} ({name}): only AAC (LC, HE-AAC, HE-AACv2, \
         Main, SSR, LTP) is supported"
    )]
    UnsupportedObjectType { object_type: u8, name: &'static str },
}

/// A parsed `AudioSpecificConfig`.
///
/// Fields describe what a decoder *outputs*, so that a muxer can use `sample_rate` as the track
/// timescale and `frame_length` as each frame's duration in it:
/// - with SBR (HE-AAC), `sample_rate` is the SBR output rate (twice the core rate) and
///   `frame_length` is 2048 (1920), i.e. the same duration as the core's 1024 (960) samples;
/// - with PS (HE-AACv2), `channels` is 2 although the core is coded mono.
///
/// Only explicitly signalled SBR/PS is seen; an LC config whose stream implicitly carries SBR
/// looks like plain AAC-LC at the core rate (the timing is still right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The raw config, written verbatim into `esds` by the muxer.
    pub raw: Bytes,
    /// Audio object type for the codecs string: 2 = AAC-LC, 5 = HE-AAC (SBR),
    /// 29 = HE-AACv2 (SBR + PS), or 1/3/4 for the other AAC cores.
    pub object_type: u8,
    /// Output sample rate in Hz.
    pub sample_rate: u32,
    /// Output channel count.
    pub channels: u8,
    /// Output samples per AAC frame at `sample_rate`: 1024, or 960 when `frameLengthFlag` is
    /// set; doubled with SBR.
    pub frame_length: u32,
}

/// §1.6.3.4 Table 1.16: samplingFrequencyIndex 0..=12; 13 and 14 are reserved, 15 escapes to
/// an explicit 24-bit frequency.
const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Audio object types (§1.5.1.1 Table 1.1).
const AOT_SBR: u8 = 5;
const AOT_PS: u8 = 29;
/// The escape value of the 5-bit field: the real type is 32 + the next 6 bits.
const AOT_ESCAPE: u8 = 31;

/// §1.6.6.1: `syncExtensionType` announcing an SBR extension, and then a PS one.
const SYNC_EXTENSION_SBR: u32 = 0x2b7;
const SYNC_EXTENSION_PS: u32 = 0x548;

impl AudioSpecificConfig {
    /// Parse an `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1):
    ///
    /// ```text
    /// audioObjectType            5 bits (31: escape, 32 + 6 more bits)
    /// samplingFrequencyIndex     4 bits (15: explicit samplingFrequency, 24 bits)
    /// channelConfiguration       4 bits
    /// if audioObjectType is 5 (SBR) or 29 (PS):           -- hierarchical signalling
    ///     extensionSamplingFrequencyIndex 4 bits (15: + 24 bits)
    ///     audioObjectType        5 bits (+6): the core
    /// GASpecificConfig:  frameLengthFlag 1, dependsOnCoreCoder 1 (+ coreCoderDelay 14),
    ///                    extensionFlag 1 (+ extensionFlag3 1)
    /// if no SBR yet and at least 16 bits remain:          -- backward-compatible signalling
    ///     syncExtensionType 11 bits = 0x2b7, extensionAudioObjectType 5 bits = 5,
    ///     sbrPresentFlag 1; if set: extensionSamplingFrequencyIndex 4 (+24),
    ///         and if 12 bits remain: syncExtensionType 11 = 0x548, psPresentFlag 1
    /// ```
    pub fn parse(raw: Bytes) -> Result<Self, AacError> {
        let mut r = BitReader::new(&raw);
        let mut object_type = read_object_type(&mut r, "audioObjectType")?;
        let core_rate = read_frequency(&mut r, "samplingFrequencyIndex")?;
        let channel_configuration = bits(&mut r, 4, "channelConfiguration")? as u8;

        let mut sbr = false;
        let mut ps = false;
        let mut extension_rate = None;
        if object_type == AOT_SBR || object_type == AOT_PS {
            sbr = true;
            ps = object_type == AOT_PS;
            extension_rate = Some(read_frequency(&mut r, "extensionSamplingFrequencyIndex")?);
            object_type = read_object_type(&mut r, "the core audioObjectType")?;
        }
        if !(1..=4).contains(&object_type) {
            return Err(AacError::UnsupportedObjectType {
                object_type,
                name: object_type_name(object_type),
            });
        }
        let mut channels = match channel_configuration {
            0 => return Err(AacError::ChannelConfigurationZero),
            1..=6 => channel_configuration,
            7 => 8, // 7.1: front C, L, R, side L, R, back L, R, LFE
            other => return Err(AacError::UnsupportedChannelConfiguration(other)),
        };

        // §4.4.1 GASpecificConfig for object types 1..=4 (no layerNr, no ER fields).
        let frame_length_flag = bits(&mut r, 1, "frameLengthFlag")? == 1;
        if bits(&mut r, 1, "dependsOnCoreCoder")? == 1 {
            bits(&mut r, 14, "coreCoderDelay")?;
        }
        if bits(&mut r, 1, "extensionFlag")? == 1 {
            bits(&mut r, 1, "extensionFlag3")?;
        }

        if !sbr
            && r.remaining() >= 16
            && bits(&mut r, 11, "syncExtensionType")? == SYNC_EXTENSION_SBR
        {
            let extension_type = read_object_type(&mut r, "extensionAudioObjectType")?;
            if extension_type == AOT_SBR && bits(&mut r, 1, "sbrPresentFlag")? == 1 {
                sbr = true;
                extension_rate = Some(read_frequency(&mut r, "extensionSamplingFrequencyIndex")?);
                if r.remaining() >= 12
                    && bits(&mut r, 11, "syncExtensionType")? == SYNC_EXTENSION_PS
                {
                    ps = bits(&mut r, 1, "psPresentFlag")? == 1;
                }
            }
        }

        let mut frame_length = if frame_length_flag { 960 } else { 1024 };
        let mut sample_rate = core_rate;
        if sbr {
            object_type = AOT_SBR;
            frame_length *= 2;
            sample_rate = extension_rate.unwrap_or(core_rate * 2);
        }
        if ps {
            object_type = AOT_PS;
            channels = 2;
        }
        Ok(AudioSpecificConfig {
            raw,
            object_type,
            sample_rate,
            channels,
            frame_length,
        })
    }

    /// RFC 6381 codecs string: `mp4a.40.` + the audio object type, e.g. `mp4a.40.2` (AAC-LC),
    /// `mp4a.40.5` (HE-AAC), `mp4a.40.29` (HE-AACv2).
    pub fn codecs_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

fn bits(r: &mut BitReader<'_>, n: u32, field: &'static str) -> Result<u32, AacError> {
    r.bits(n, field).map_err(AacError::Truncated)
}

/// `GetAudioObjectType()` (§1.6.2.1).
fn read_object_type(r: &mut BitReader<'_>, field: &'static str) -> Result<u8, AacError> {
    let object_type = bits(r, 5, field)? as u8;
    if object_type == AOT_ESCAPE {
        return Ok(32 + bits(r, 6, "audioObjectTypeExt")? as u8);
    }
    Ok(object_type)
}

/// A 4-bit sampling frequency index, or 15 and an explicit 24-bit frequency (§1.6.3.4).
fn read_frequency(r: &mut BitReader<'_>, field: &'static str) -> Result<u32, AacError> {
    match bits(r, 4, field)? as u8 {
        15 => match bits(r, 24, "samplingFrequency")? {
            0 => Err(AacError::ZeroSampleRate),
            rate => Ok(rate),
        },
        index => SAMPLING_FREQUENCIES
            .get(usize::from(index))
            .copied()
            .ok_or(AacError::ReservedSamplingFrequencyIndex(index)),
    }
}

/// Names from §1.5.1.1 Table 1.1, for error messages.
fn object_type_name(object_type: u8) -> &'static str {
    match object_type {
        0 => "null",
        1 => "AAC Main",
        2 => "AAC LC",
        3 => "AAC SSR",
        4 => "AAC LTP",
        5 => "SBR",
        6 => "AAC Scalable",
        7 => "TwinVQ",
        8 => "CELP",
        9 => "HVXC",
        17 => "ER AAC LC",
        19 => "ER AAC LTP",
        20 => "ER AAC Scalable",
        22 => "ER BSAC",
        23 => "ER AAC LD",
        29 => "PS",
        32 => "MPEG-1/2 Layer-1",
        33 => "MPEG-1/2 Layer-2",
        34 => "MPEG-1/2 Layer-3 (MP3)",
        36 => "ALS",
        39 => "ER AAC ELD",
        42 => "USAC (xHE-AAC)",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<AudioSpecificConfig, AacError> {
        AudioSpecificConfig::parse(Bytes::copy_from_slice(bytes))
    }

    /// (object_type, sample_rate, channels, frame_length, codecs)
    fn fields(c: &AudioSpecificConfig) -> (u8, u32, u8, u32, String) {
        (
            c.object_type,
            c.sample_rate,
            c.channels,
            c.frame_length,
            c.codecs_string(),
        )
    }

    #[test]
    fn aac_lc_44100_stereo() {
        // 12 10 = 00010 0100 0010 0 0 0
        //   audioObjectType 2 (AAC LC), samplingFrequencyIndex 4 (44100 Hz),
        //   channelConfiguration 2 (stereo), frameLengthFlag 0 (1024),
        //   dependsOnCoreCoder 0, extensionFlag 0
        let c = parse(&[0x12, 0x10]).expect("valid ASC");
        assert_eq!(fields(&c), (2, 44100, 2, 1024, "mp4a.40.2".into()));
        assert_eq!(&c.raw[..], &[0x12, 0x10]);
    }

    #[test]
    fn aac_lc_48000_stereo() {
        // 11 90 = 00010 0011 0010 000: AAC LC, index 3 (48000 Hz), stereo, 1024 samples
        let c = parse(&[0x11, 0x90]).expect("valid ASC");
        assert_eq!(fields(&c), (2, 48000, 2, 1024, "mp4a.40.2".into()));
    }

    #[test]
    fn ffmpeg_aac_encoder_signals_no_sbr_explicitly() {
        // What ffmpeg's native AAC encoder sends over RTMP at 44.1 kHz stereo:
        // 12 10 as above, then 56 e5 00 = 01010110111 00101 0 (0000000 padding):
        //   syncExtensionType 0x2b7, extensionAudioObjectType 5 (SBR), sbrPresentFlag 0
        let c = parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).expect("valid ASC");
        assert_eq!(fields(&c), (2, 44100, 2, 1024, "mp4a.40.2".into()));
        let c = parse(&[0x11, 0x90, 0x56, 0xe5, 0x00]).expect("valid ASC");
        assert_eq!(fields(&c), (2, 48000, 2, 1024, "mp4a.40.2".into()));
    }

    #[test]
    fn he_aac_hierarchical_signalling() {
        // 2b 11 88 00 = 00101 0110 0010 0011 00010 000 (+ padding)
        //   audioObjectType 5 (SBR), samplingFrequencyIndex 6 (24000 Hz core), stereo,
        //   extensionSamplingFrequencyIndex 3 (48000 Hz output), core audioObjectType 2,
        //   GASpecificConfig 000
        let c = parse(&[0x2b, 0x11, 0x88, 0x00]).expect("valid ASC");
        assert_eq!(fields(&c), (5, 48000, 2, 2048, "mp4a.40.5".into()));
    }

    #[test]
    fn he_aac_v2_hierarchical_signalling() {
        // eb 09 88 00 = 11101 0110 0001 0011 00010 000
        //   audioObjectType 29 (PS), 24000 Hz core, channelConfiguration 1 (mono core),
        //   extension 48000 Hz, core AAC LC → stereo output at 48 kHz
        let c = parse(&[0xeb, 0x09, 0x88, 0x00]).expect("valid ASC");
        assert_eq!(fields(&c), (29, 48000, 2, 2048, "mp4a.40.29".into()));
    }

    #[test]
    fn he_aac_backward_compatible_signalling() {
        // 13 10 56 e5 98 = 00010 0110 0010 000 | 01010110111 00101 1 0011 (000)
        //   AAC LC at 24000 Hz stereo; sync extension 0x2b7, SBR, sbrPresentFlag 1,
        //   extensionSamplingFrequencyIndex 3 (48000 Hz)
        let c = parse(&[0x13, 0x10, 0x56, 0xe5, 0x98]).expect("valid ASC");
        assert_eq!(fields(&c), (5, 48000, 2, 2048, "mp4a.40.5".into()));
    }

    #[test]
    fn escape_object_type_and_explicit_frequency() {
        // f8 46 40 = 11111 000010 0011 0010: object type 31 → 32 + 2 = 34 (Layer-3), 48 kHz,
        // stereo: refused by name.
        let err = parse(&[0xf8, 0x46, 0x40]).unwrap_err();
        assert_eq!(
            err,
            AacError::UnsupportedObjectType {
                object_type: 34,
                name: "MPEG-1/2 Layer-3 (MP3)"
            }
        );
        assert!(err.to_string().contains("MP3"), "{err}");

        // 00010 1111 <24 bits: 0x00ac44 = 44100> 0010 000
        //   = 0001 0111 | 1000 0000 | 0101 0110 | 0010 0010 | 0001 0000
        let c = parse(&[0x17, 0x80, 0x56, 0x22, 0x10]).expect("valid ASC");
        assert_eq!(fields(&c), (2, 44100, 2, 1024, "mp4a.40.2".into()));
    }

    #[test]
    fn frame_length_960() {
        // 11 94 = 00010 0011 0010 1 00: frameLengthFlag 1 → 960 samples per frame
        let c = parse(&[0x11, 0x94]).expect("valid ASC");
        assert_eq!(c.frame_length, 960);
    }

    #[test]
    fn channel_configurations() {
        // 11 80 = 00010 0011 0000 000: channelConfiguration 0 needs a PCE
        let err = parse(&[0x11, 0x80]).unwrap_err();
        assert_eq!(err, AacError::ChannelConfigurationZero);
        assert!(err.to_string().contains("not supported"), "{err}");
        // 11 88: mono; 11 b0: 5.1 (6 channels); 11 b8: 7 → 8 channels; 11 c0: 8 is reserved
        assert_eq!(parse(&[0x11, 0x88]).map(|c| c.channels), Ok(1));
        assert_eq!(parse(&[0x11, 0xb0]).map(|c| c.channels), Ok(6));
        assert_eq!(parse(&[0x11, 0xb8]).map(|c| c.channels), Ok(8));
        assert_eq!(
            parse(&[0x11, 0xc0]),
            Err(AacError::UnsupportedChannelConfiguration(8))
        );
    }

    #[test]
    fn reserved_frequency_index() {
        // 16 90 = 00010 1101 0010 000: index 13 is reserved
        assert_eq!(
            parse(&[0x16, 0x90]),
            Err(AacError::ReservedSamplingFrequencyIndex(13))
        );
    }

    #[test]
    fn every_truncated_config_is_an_error() {
        for config in [
            &[0x12, 0x10][..],
            &[0x11, 0x90],
            &[0x2b, 0x11, 0x88, 0x00],
            &[0xeb, 0x09, 0x88, 0x00],
            &[0x17, 0x80, 0x56, 0x22, 0x10],
        ] {
            parse(config).expect("the full config parses");
            for len in 0..config.len() {
                assert!(
                    parse(&config[..len]).is_err(),
                    "prefix {len} of {config:02x?} parsed"
                );
            }
        }
        // With the backward-compatible extension a shorter prefix can be a complete LC config,
        // but a cut inside the extension is an error, and nothing panics.
        let ffmpeg = [0x12, 0x10, 0x56, 0xe5, 0x00];
        assert!(parse(&ffmpeg[..4]).is_err());
        for len in 0..ffmpeg.len() {
            let _ = parse(&ffmpeg[..len]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let _ = parse(&[a, b]);
                let _ = parse(&[a, b, 0xff, 0xff, 0xff, 0xff]);
                let _ = parse(&[a, b, 0x56, 0xe5, 0xff]);
            }
        }
    }
}
