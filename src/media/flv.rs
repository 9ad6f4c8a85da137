//! FLV audio/video tag bodies, as RTMP delivers them in its audio (type 8) and video (type 9)
//! messages: the `AUDIODATA`/`VIDEODATA` of the Adobe FLV spec v10.1 without the 11-byte FLV
//! tag header.
//!
//! Read beside:
//! - Adobe FLV and F4V File Format Specification v10.1, E.4.2.1 `AUDIODATA` +
//!   `AACAUDIODATA`, E.4.3.1 `VIDEODATA` + `AVCVIDEOPACKET`;
//! - Veovera "Enhanced RTMP" (v1/v2): the `IsExHeader` bit of the first byte, followed by a
//!   FourCC (`avc1`, `hvc1`, `av01`, `vp09`, `mp4a`, `Opus`, ...).
//!
//! Video must be H.264; audio is AAC, a legacy FLV codec (MP3, PCM, ADPCM, Nellymoser, G.711,
//! Speex: handed on with its header byte for [`super::AudioSource`] to describe) or enhanced-RTMP
//! Opus. Other codecs are refused with an error that names them. The FLV `SoundFormat` codes
//! (E.4.2.1) and their names are defined here, for every reader of audio tag headers. Media
//! payloads are `Bytes::slice`s of the tag body (zero-copy). Never panics.

use bytes::Bytes;

/// Why an FLV tag body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("{what} truncated: {len} bytes, its header needs {needed}")]
    Truncated {
        what: &'static str,
        len: usize,
        needed: usize,
    },
    #[error(
        "unsupported video codec {0}: only H.264 (AVC) is supported, set the encoder to H.264 \
         (x264, NVENC H.264, ...)"
    )]
    UnsupportedVideoCodec(String),
    #[error(
        "unsupported audio codec {0}: set the encoder's audio codec to AAC (MP3, Opus, Speex, \
         Nellymoser, G.711 and PCM are converted to AAC too)"
    )]
    UnsupportedAudioCodec(String),
    /// A well-formed tag that carries no media (a video command frame, enhanced-RTMP metadata,
    /// an audio end of sequence): skip it quietly.
    #[error("tag carries no media ({0})")]
    NoMedia(&'static str),
    #[error("unknown {what} packet type {value}")]
    UnknownPacketType { what: &'static str, value: u8 },
    #[error("empty {0}")]
    Empty(&'static str),
    #[error(
        "bad H.264 NAL framing: {available} bytes left at byte {offset}, too few for a 4-byte \
         NAL length"
    )]
    TruncatedNalLength { offset: usize, available: usize },
    #[error(
        "bad H.264 NAL framing: NAL unit at byte {offset} claims {length} bytes, only \
         {available} follow"
    )]
    NalLengthOverrun {
        offset: usize,
        length: usize,
        available: usize,
    },
    #[error("bad H.264 NAL framing: zero-length NAL unit at byte {offset}")]
    ZeroLengthNal { offset: usize },
    #[error(
        "H.264 frame uses Annex B start codes (00 00 01) instead of the 4-byte NAL lengths \
         FLV requires"
    )]
    AnnexB,
}

/// A video tag body (E.4.3.1), H.264 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// `AVCPacketType` 0: an `AVCDecoderConfigurationRecord` (see [`super::avc`]).
    SequenceHeader(Bytes),
    /// `AVCPacketType` 1: one access unit in AVCC framing (4-byte NAL lengths, checked).
    Frame {
        /// `FrameType` 1: a keyframe (IDR for AVC).
        keyframe: bool,
        /// `CompositionTime` (SI24): pts − dts in milliseconds, may be negative.
        composition_time_ms: i32,
        data: Bytes,
    },
    /// `AVCPacketType` 2: end of sequence.
    EndOfSequence,
}

/// An audio tag body (E.4.2.1): AAC, which HLS carries as it is, or a codec the pipeline
/// converts to AAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// `AACPacketType` 0: an `AudioSpecificConfig` (see [`super::aac`]).
    SequenceHeader(Bytes),
    /// `AACPacketType` 1: one raw AAC frame (no ADTS header).
    Frame(Bytes),
    /// A legacy FLV codec (MP3, Linear PCM, ADPCM, Nellymoser, G.711, Speex): the tag's first
    /// byte, which describes it ([`super::AudioSource::from_flv_tag`]), and its codec data.
    Legacy { header: u8, data: Bytes },
    /// Enhanced RTMP `Opus` sequence start: the identification header (`OpusHead`, RFC 7845).
    OpusHeader(Bytes),
    /// Enhanced RTMP `Opus` coded frame: one Opus packet.
    OpusFrame(Bytes),
}

/// FLV `SoundFormat` values (E.4.2.1).
pub const FLV_PCM: u8 = 0;
pub const FLV_ADPCM: u8 = 1;
pub const FLV_MP3: u8 = 2;
pub const FLV_PCM_LE: u8 = 3;
pub const FLV_NELLYMOSER_16K: u8 = 4;
pub const FLV_NELLYMOSER_8K: u8 = 5;
pub const FLV_NELLYMOSER: u8 = 6;
pub const FLV_ALAW: u8 = 7;
pub const FLV_MULAW: u8 = 8;
pub const FLV_EX_HEADER: u8 = 9;
pub const FLV_AAC: u8 = 10;
pub const FLV_SPEEX: u8 = 11;
pub const FLV_MP3_8K: u8 = 14;

/// FLV `SoundRate` (E.4.2.1): 5.5, 11, 22 and 44 kHz, read as FFmpeg's FLV demuxer does.
pub const FLV_RATES: [u32; 4] = [5512, 11025, 22050, 44100];

/// FLV `SoundFormat` names (E.4.2.1).
pub fn flv_sound_format_name(format: u8) -> &'static str {
    match format {
        FLV_PCM => "Linear PCM (platform endian)",
        FLV_ADPCM => "ADPCM",
        FLV_MP3 => "MP3",
        FLV_PCM_LE => "Linear PCM (little endian)",
        FLV_NELLYMOSER_16K => "Nellymoser 16 kHz mono",
        FLV_NELLYMOSER_8K => "Nellymoser 8 kHz mono",
        FLV_NELLYMOSER => "Nellymoser",
        FLV_ALAW => "G.711 A-law",
        FLV_MULAW => "G.711 mu-law",
        FLV_EX_HEADER => "enhanced RTMP (FourCC)",
        FLV_AAC => "AAC",
        FLV_SPEEX => "Speex",
        FLV_MP3_8K => "MP3 8 kHz",
        15 => "device-specific sound",
        _ => "reserved SoundFormat",
    }
}

/// FLV `CodecID` 7 (E.4.3.1).
const CODEC_AVC: u8 = 7;
/// Enhanced RTMP: the top bit of a video tag's first byte means "a video FourCC follows".
const VIDEO_IS_EX_HEADER: u8 = 0x80;
/// `FrameType` (E.4.3.1): 1 keyframe, 2 inter frame, 3 disposable inter frame,
/// 4 generated keyframe (server use), 5 video info/command frame.
const FRAME_TYPE_KEY: u8 = 1;
const FRAME_TYPE_COMMAND: u8 = 5;

/// Parse a video tag body.
///
/// ```text
/// legacy (E.4.3.1):  FrameType UB4 | CodecID UB4 (7 = AVC)
///                    AVCPacketType UI8 (0 sequence header, 1 NALUs, 2 end of sequence)
///                    CompositionTime SI24 (ms)
///                    data
/// enhanced RTMP:     IsExHeader UB1 = 1 | FrameType UB3 | VideoPacketType UB4
///                    FourCC UI32 ('avc1' accepted, 'hvc1', 'av01', 'vp09'... refused)
///                    [CompositionTime SI24, only for PacketType 1 CodedFrames]
///                    data
/// ```
pub fn parse_video_tag(body: &Bytes) -> Result<VideoTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty("video tag"))?;
    if first & VIDEO_IS_EX_HEADER != 0 {
        return parse_enhanced_video_tag(body, first);
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if frame_type == FRAME_TYPE_COMMAND {
        return Err(FlvError::NoMedia("video info/command frame"));
    }
    if codec_id != CODEC_AVC {
        return Err(FlvError::UnsupportedVideoCodec(video_codec_name(codec_id)));
    }
    if body.len() < 5 {
        return Err(FlvError::Truncated {
            what: "AVC video tag",
            len: body.len(),
            needed: 5,
        });
    }
    let composition_time_ms = si24([body[2], body[3], body[4]]);
    avc_packet(body[1], frame_type, composition_time_ms, body.slice(5..))
}

/// The enhanced-RTMP video header; only the `avc1` FourCC is accepted.
fn parse_enhanced_video_tag(body: &Bytes, first: u8) -> Result<VideoTag, FlvError> {
    /// VideoPacketType values (Enhanced RTMP v2).
    const SEQUENCE_START: u8 = 0;
    const CODED_FRAMES: u8 = 1;
    const SEQUENCE_END: u8 = 2;
    const CODED_FRAMES_X: u8 = 3; // no CompositionTime: it is 0
    const METADATA: u8 = 4;
    const MULTITRACK: u8 = 6;
    const MOD_EX: u8 = 7;

    let frame_type = (first >> 4) & 0x07;
    let packet_type = first & 0x0f;
    if packet_type == MULTITRACK || packet_type == MOD_EX {
        return Err(FlvError::UnsupportedVideoCodec(
            "enhanced RTMP multitrack/ModEx video".to_string(),
        ));
    }
    if body.len() < 5 {
        return Err(FlvError::Truncated {
            what: "enhanced RTMP video tag",
            len: body.len(),
            needed: 5,
        });
    }
    let fourcc = [body[1], body[2], body[3], body[4]];
    if &fourcc != b"avc1" {
        return Err(FlvError::UnsupportedVideoCodec(video_fourcc_name(fourcc)));
    }
    if frame_type == FRAME_TYPE_COMMAND {
        return Err(FlvError::NoMedia("video command frame"));
    }
    match packet_type {
        SEQUENCE_START => avc_packet(0, frame_type, 0, body.slice(5..)),
        SEQUENCE_END => Ok(VideoTag::EndOfSequence),
        CODED_FRAMES => {
            if body.len() < 8 {
                return Err(FlvError::Truncated {
                    what: "enhanced RTMP video tag",
                    len: body.len(),
                    needed: 8,
                });
            }
            avc_packet(
                1,
                frame_type,
                si24([body[5], body[6], body[7]]),
                body.slice(8..),
            )
        }
        CODED_FRAMES_X => avc_packet(1, frame_type, 0, body.slice(5..)),
        METADATA => Err(FlvError::NoMedia("enhanced RTMP video metadata")),
        other => Err(FlvError::UnknownPacketType {
            what: "enhanced RTMP video",
            value: other,
        }),
    }
}

/// `AVCVIDEOPACKET` (E.4.3.1) once the header is read.
fn avc_packet(
    packet_type: u8,
    frame_type: u8,
    composition_time_ms: i32,
    data: Bytes,
) -> Result<VideoTag, FlvError> {
    match packet_type {
        0 if data.is_empty() => Err(FlvError::Empty("AVC sequence header")),
        0 => Ok(VideoTag::SequenceHeader(data)),
        1 => {
            check_avcc_nal_lengths(&data)?;
            Ok(VideoTag::Frame {
                keyframe: frame_type == FRAME_TYPE_KEY,
                composition_time_ms,
                data,
            })
        }
        2 => Ok(VideoTag::EndOfSequence),
        other => Err(FlvError::UnknownPacketType {
            what: "AVC",
            value: other,
        }),
    }
}

/// Parse an audio tag body.
///
/// ```text
/// legacy (E.4.2.1):  SoundFormat UB4 | SoundRate UB2 | SoundSize UB1 | SoundType UB1
///                    AAC (10):    AACPacketType UI8 (0 AudioSpecificConfig, 1 raw frame) | data
///                    0-8, 11, 14: codec data (MP3, PCM, ADPCM, Nellymoser, G.711, Speex)
/// enhanced RTMP v2:  SoundFormat UB4 = 9 | AudioPacketType UB4
///                    FourCC UI32 ('mp4a' and 'Opus' accepted; 'fLaC', 'ac-3'... refused)
///                    data
/// ```
/// For AAC the SoundRate/SoundSize/SoundType bits are meaningless (always 44 kHz, 16-bit,
/// stereo): the AudioSpecificConfig is authoritative. For the other legacy codecs they are all
/// there is ([`super::AudioSource::from_flv_tag`]).
pub fn parse_audio_tag(body: &Bytes) -> Result<AudioTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty("audio tag"))?;
    let sound_format = first >> 4;
    match sound_format {
        FLV_EX_HEADER => return parse_enhanced_audio_tag(body, first & 0x0f),
        FLV_AAC => {}
        FLV_PCM | FLV_ADPCM | FLV_MP3 | FLV_PCM_LE | FLV_NELLYMOSER_16K | FLV_NELLYMOSER_8K
        | FLV_NELLYMOSER | FLV_ALAW | FLV_MULAW | FLV_SPEEX | FLV_MP3_8K => {
            let data = body.slice(1..);
            if data.is_empty() {
                return Err(FlvError::Empty("audio frame"));
            }
            return Ok(AudioTag::Legacy {
                header: first,
                data,
            });
        }
        other => {
            return Err(FlvError::UnsupportedAudioCodec(
                flv_sound_format_name(other).to_string(),
            ))
        }
    }
    if body.len() < 2 {
        return Err(FlvError::Truncated {
            what: "AAC audio tag",
            len: body.len(),
            needed: 2,
        });
    }
    aac_packet(body[1], body.slice(2..))
}

/// The enhanced-RTMP audio header; the `mp4a` and `Opus` FourCCs are accepted.
fn parse_enhanced_audio_tag(body: &Bytes, packet_type: u8) -> Result<AudioTag, FlvError> {
    /// AudioPacketType values (Enhanced RTMP v2).
    const SEQUENCE_START: u8 = 0;
    const CODED_FRAMES: u8 = 1;
    const SEQUENCE_END: u8 = 2;
    const MULTICHANNEL_CONFIG: u8 = 4;
    const MULTITRACK: u8 = 5;
    const MOD_EX: u8 = 7;

    if packet_type == MULTITRACK || packet_type == MOD_EX {
        return Err(FlvError::UnsupportedAudioCodec(
            "enhanced RTMP multitrack/ModEx audio".to_string(),
        ));
    }
    if body.len() < 5 {
        return Err(FlvError::Truncated {
            what: "enhanced RTMP audio tag",
            len: body.len(),
            needed: 5,
        });
    }
    let fourcc = [body[1], body[2], body[3], body[4]];
    if &fourcc == b"Opus" {
        return opus_packet(packet_type, body.slice(5..));
    }
    if &fourcc != b"mp4a" {
        return Err(FlvError::UnsupportedAudioCodec(audio_fourcc_name(fourcc)));
    }
    match packet_type {
        SEQUENCE_START => aac_packet(0, body.slice(5..)),
        CODED_FRAMES => aac_packet(1, body.slice(5..)),
        SEQUENCE_END => Err(FlvError::NoMedia("enhanced RTMP audio end of sequence")),
        MULTICHANNEL_CONFIG => Err(FlvError::NoMedia("enhanced RTMP audio channel layout")),
        other => Err(FlvError::UnknownPacketType {
            what: "enhanced RTMP audio",
            value: other,
        }),
    }
}

/// An enhanced-RTMP `Opus` packet once the header is read.
fn opus_packet(packet_type: u8, data: Bytes) -> Result<AudioTag, FlvError> {
    match packet_type {
        _ if data.is_empty() && packet_type <= 1 => Err(FlvError::Empty("Opus packet")),
        0 => Ok(AudioTag::OpusHeader(data)),
        1 => Ok(AudioTag::OpusFrame(data)),
        2 => Err(FlvError::NoMedia("enhanced RTMP audio end of sequence")),
        4 => Err(FlvError::NoMedia("enhanced RTMP audio channel layout")),
        other => Err(FlvError::UnknownPacketType {
            what: "enhanced RTMP Opus audio",
            value: other,
        }),
    }
}

/// `AACAUDIODATA` (E.4.2.2) once the header is read.
fn aac_packet(packet_type: u8, data: Bytes) -> Result<AudioTag, FlvError> {
    match packet_type {
        0 if data.is_empty() => Err(FlvError::Empty("AAC sequence header")),
        0 => Ok(AudioTag::SequenceHeader(data)),
        1 if data.is_empty() => Err(FlvError::Empty("AAC frame")),
        1 => Ok(AudioTag::Frame(data)),
        other => Err(FlvError::UnknownPacketType {
            what: "AAC",
            value: other,
        }),
    }
}

/// Check that an AVCC access unit is a sequence of (4-byte big-endian length, NAL unit) whose
/// lengths add up to exactly `data.len()`, with no empty NAL unit. Returns the NAL unit count.
///
/// The muxer copies frames into `mdat` as they are, so a frame whose lengths do not match its
/// bytes would make every player's demuxer lose sync: reject it here.
pub fn check_avcc_nal_lengths(data: &[u8]) -> Result<usize, FlvError> {
    if data.is_empty() {
        return Err(FlvError::Empty("H.264 frame"));
    }
    let result = walk_nal_lengths(data);
    if result.is_err() && (data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1])) {
        return Err(FlvError::AnnexB);
    }
    result
}

fn walk_nal_lengths(data: &[u8]) -> Result<usize, FlvError> {
    let mut offset = 0;
    let mut count = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        let Some(prefix) = rest.first_chunk::<4>() else {
            return Err(FlvError::TruncatedNalLength {
                offset,
                available: rest.len(),
            });
        };
        let length = u32::from_be_bytes(*prefix) as usize;
        let available = rest.len() - 4;
        if length == 0 {
            return Err(FlvError::ZeroLengthNal { offset });
        }
        if length > available {
            return Err(FlvError::NalLengthOverrun {
                offset,
                length,
                available,
            });
        }
        offset += 4 + length;
        count += 1;
    }
    Ok(count)
}

/// SI24, big-endian two's complement (E.4.3.1 `CompositionTime`).
fn si24(b: [u8; 3]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8
}

/// FLV `CodecID` names (E.4.3.1), plus the non-standard ids some Chinese CDNs use.
fn video_codec_name(codec_id: u8) -> String {
    let name = match codec_id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        12 => "HEVC (non-standard FLV codec id 12)",
        13 => "AV1 (non-standard FLV codec id 13)",
        other => return format!("with unknown FLV codec id {other}"),
    };
    name.to_string()
}

fn video_fourcc_name(fourcc: [u8; 4]) -> String {
    let name = match &fourcc {
        b"hvc1" => "HEVC/H.265",
        b"av01" => "AV1",
        b"vp09" => "VP9",
        b"vp08" => "VP8",
        _ => "unknown",
    };
    format!("{name} (enhanced RTMP FourCC {})", fourcc_text(fourcc))
}

fn audio_fourcc_name(fourcc: [u8; 4]) -> String {
    let name = match &fourcc {
        b"fLaC" => "FLAC",
        b"ac-3" => "AC-3",
        b"ec-3" => "E-AC-3",
        b".mp3" => "MP3",
        _ => "unknown",
    };
    format!("{name} (enhanced RTMP FourCC {})", fourcc_text(fourcc))
}

/// `'hvc1'`, or the hex bytes when not printable.
fn fourcc_text(fourcc: [u8; 4]) -> String {
    if fourcc.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!(
            "'{}'",
            fourcc.iter().map(|&b| char::from(b)).collect::<String>()
        )
    } else {
        format!("{fourcc:02x?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(bytes: &[u8]) -> Bytes {
        Bytes::copy_from_slice(bytes)
    }

    #[test]
    fn avc_sequence_header_from_ffmpeg() {
        // The first video tag ffmpeg/x264 sends (E.4.3.1):
        //   17        FrameType 1 (keyframe), CodecID 7 (AVC)
        //   00        AVCPacketType 0: sequence header
        //   00 00 00  CompositionTime 0
        //   01 64 00 1f ...  AVCDecoderConfigurationRecord
        let body = b(&[
            0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1,
        ]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(VideoTag::SequenceHeader(b(&[
                0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1
            ])))
        );
    }

    #[test]
    fn avc_keyframe_and_inter_frame() {
        //   17 01 000043  keyframe, NALU, CompositionTime 0x43 = 67 ms (x264 with B-frames)
        //   00 00 00 02 | 09 f0                one 2-byte NAL (access unit delimiter)
        //   00 00 00 03 | 65 88 84             one 3-byte IDR slice
        let body = b(&[
            0x17, 0x01, 0x00, 0x00, 0x43, 0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84,
        ]);
        let tag = parse_video_tag(&body).expect("valid frame");
        let VideoTag::Frame {
            keyframe,
            composition_time_ms,
            data,
        } = tag
        else {
            panic!("{tag:?}")
        };
        assert!(keyframe);
        assert_eq!(composition_time_ms, 67);
        assert_eq!(&data[..], &body[5..]);
        // Zero-copy: the frame points into the tag body.
        assert_eq!(data.as_ptr(), body[5..].as_ptr());

        //   27 01 000042  FrameType 2 (inter frame), NALU, 66 ms
        let body = b(&[0x27, 0x01, 0x00, 0x00, 0x42, 0, 0, 0, 1, 0x41]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(VideoTag::Frame {
                keyframe: false,
                composition_time_ms: 66,
                data: b(&[0, 0, 0, 1, 0x41])
            })
        );
    }

    #[test]
    fn negative_composition_time_is_sign_extended() {
        // SI24 ff ff ce = −50; 80 00 00 = −8388608 (the minimum); 7f ff ff = 8388607
        for (ct, expected) in [
            ([0xff, 0xff, 0xce], -50),
            ([0x80, 0, 0], -8_388_608),
            ([0x7f, 0xff, 0xff], 8_388_607),
            ([0xff, 0xff, 0xff], -1),
        ] {
            let body = b(&[0x27, 0x01, ct[0], ct[1], ct[2], 0, 0, 0, 1, 0x41]);
            let Ok(VideoTag::Frame {
                composition_time_ms,
                ..
            }) = parse_video_tag(&body)
            else {
                panic!()
            };
            assert_eq!(composition_time_ms, expected);
        }
    }

    #[test]
    fn end_of_sequence_and_command_frames() {
        assert_eq!(
            parse_video_tag(&b(&[0x17, 0x02, 0, 0, 0])),
            Ok(VideoTag::EndOfSequence)
        );
        // 57 = FrameType 5 (video info/command frame), CodecID 7; 00 = start of seek
        assert!(matches!(
            parse_video_tag(&b(&[0x57, 0x00])),
            Err(FlvError::NoMedia(_))
        ));
        assert_eq!(
            parse_video_tag(&b(&[0x17, 0x03, 0, 0, 0])),
            Err(FlvError::UnknownPacketType {
                what: "AVC",
                value: 3
            })
        );
    }

    #[test]
    fn other_video_codecs_are_refused_by_name() {
        // 12 = keyframe, CodecID 2 (Sorenson H.263); 14 = On2 VP6; 1c = non-standard HEVC id 12
        let err = parse_video_tag(&b(&[0x12, 0x00])).unwrap_err();
        assert_eq!(
            err,
            FlvError::UnsupportedVideoCodec("Sorenson H.263".into())
        );
        assert!(err.to_string().contains("only H.264"), "{err}");
        assert!(parse_video_tag(&b(&[0x14]))
            .unwrap_err()
            .to_string()
            .contains("VP6"));
        assert!(parse_video_tag(&b(&[0x1c, 0, 0, 0, 0]))
            .unwrap_err()
            .to_string()
            .contains("HEVC"));

        // Enhanced RTMP (OBS 30+ with HEVC/AV1): 90 = IsExHeader, FrameType 1, PacketType 0
        // (SequenceStart), FourCC 'hvc1' / 'av01'
        let err = parse_video_tag(&b(&[0x90, b'h', b'v', b'c', b'1', 0x01])).unwrap_err();
        assert_eq!(
            err,
            FlvError::UnsupportedVideoCodec("HEVC/H.265 (enhanced RTMP FourCC 'hvc1')".into())
        );
        let err = parse_video_tag(&b(&[0x91, b'a', b'v', b'0', b'1', 0, 0, 0])).unwrap_err();
        assert!(
            err.to_string()
                .contains("AV1 (enhanced RTMP FourCC 'av01')"),
            "{err}"
        );
        let err = parse_video_tag(&b(&[0x91, 0xde, 0xad, 0xbe, 0xef])).unwrap_err();
        assert!(err.to_string().contains("[de, ad, be, ef]"), "{err}");
    }

    #[test]
    fn enhanced_rtmp_avc1_is_accepted() {
        // 90 'avc1' <record>: SequenceStart
        let body = b(&[0x90, b'a', b'v', b'c', b'1', 0x01, 0x64]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(VideoTag::SequenceHeader(b(&[0x01, 0x64])))
        );
        // 91 'avc1' ff ff fe <AVCC>: keyframe, CodedFrames with CompositionTime −2
        let body = b(&[
            0x91, b'a', b'v', b'c', b'1', 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0x65,
        ]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(VideoTag::Frame {
                keyframe: true,
                composition_time_ms: -2,
                data: b(&[0, 0, 0, 1, 0x65])
            })
        );
        // a3 'avc1' <AVCC>: FrameType 2, CodedFramesX (CompositionTime implied 0)
        let body = b(&[0xa3, b'a', b'v', b'c', b'1', 0, 0, 0, 1, 0x41]);
        assert_eq!(
            parse_video_tag(&body),
            Ok(VideoTag::Frame {
                keyframe: false,
                composition_time_ms: 0,
                data: b(&[0, 0, 0, 1, 0x41])
            })
        );
    }

    #[test]
    fn aac_tags_from_ffmpeg() {
        // af = SoundFormat 10 (AAC), SoundRate 3 (44 kHz), SoundSize 1 (16-bit), SoundType 1
        // (stereo); 00 = AACPacketType 0: AudioSpecificConfig 12 10 56 e5 00
        let body = b(&[0xaf, 0x00, 0x12, 0x10, 0x56, 0xe5, 0x00]);
        assert_eq!(
            parse_audio_tag(&body),
            Ok(AudioTag::SequenceHeader(b(&[0x12, 0x10, 0x56, 0xe5, 0x00])))
        );
        // af 01 <raw AAC frame>
        let body = b(&[0xaf, 0x01, 0xde, 0x02, 0x00, 0x4c]);
        assert_eq!(
            parse_audio_tag(&body),
            Ok(AudioTag::Frame(b(&[0xde, 0x02, 0x00, 0x4c])))
        );
        // Enhanced RTMP v2: 90 = SoundFormat 9 (ExHeader), PacketType 0; 'mp4a'; ASC 11 90
        let body = b(&[0x90, b'm', b'p', b'4', b'a', 0x11, 0x90]);
        assert_eq!(
            parse_audio_tag(&body),
            Ok(AudioTag::SequenceHeader(b(&[0x11, 0x90])))
        );
    }

    #[test]
    fn other_audio_codecs_are_passed_on_for_conversion() {
        // 2f = SoundFormat 2 (MP3) 44 kHz 16-bit stereo, then the MP3 data.
        assert_eq!(
            parse_audio_tag(&b(&[0x2f, 0xff, 0xfb])),
            Ok(AudioTag::Legacy {
                header: 0x2f,
                data: b(&[0xff, 0xfb])
            })
        );
        // b6 = 11 (Speex), 7e = 7 (G.711 A-law), 3e = 3 (PCM little endian), 5a = Nellymoser
        // 8 kHz: their first byte and data.
        for first in [0xb6, 0x7e, 0x3e, 0x5a, 0x1f, 0x82, 0xe2, 0x0f, 0x4a, 0x6f] {
            assert_eq!(
                parse_audio_tag(&b(&[first, 0x01])),
                Ok(AudioTag::Legacy {
                    header: first,
                    data: b(&[0x01])
                }),
                "{first:02x}"
            );
        }
        assert_eq!(
            parse_audio_tag(&b(&[0x2f])),
            Err(FlvError::Empty("audio frame"))
        );
        // Enhanced RTMP 'Opus': sequence start (OpusHead) and a coded frame.
        assert_eq!(
            parse_audio_tag(&b(&[0x90, b'O', b'p', b'u', b's', b'O', b'p'])),
            Ok(AudioTag::OpusHeader(b(b"Op")))
        );
        assert_eq!(
            parse_audio_tag(&b(&[0x91, b'O', b'p', b'u', b's', 0xfc])),
            Ok(AudioTag::OpusFrame(b(&[0xfc])))
        );
        assert_eq!(
            parse_audio_tag(&b(&[0x91, b'O', b'p', b'u', b's'])),
            Err(FlvError::Empty("Opus packet"))
        );
        assert!(matches!(
            parse_audio_tag(&b(&[0x92, b'O', b'p', b'u', b's'])),
            Err(FlvError::NoMedia(_))
        ));
    }

    #[test]
    fn audio_codecs_nobody_can_decode_are_refused_by_name() {
        // f2 = SoundFormat 15 (device-specific), c2 = 12 (reserved).
        let err = parse_audio_tag(&b(&[0xf2, 0x00])).unwrap_err();
        assert_eq!(
            err,
            FlvError::UnsupportedAudioCodec("device-specific sound".into())
        );
        assert!(err.to_string().contains("to AAC"), "{err}");
        assert_eq!(
            parse_audio_tag(&b(&[0xc2, 0x00])),
            Err(FlvError::UnsupportedAudioCodec(
                "reserved SoundFormat".into()
            ))
        );
        let err = parse_audio_tag(&b(&[0x91, b'f', b'L', b'a', b'C', 0xfc])).unwrap_err();
        assert_eq!(
            err,
            FlvError::UnsupportedAudioCodec("FLAC (enhanced RTMP FourCC 'fLaC')".into())
        );
    }

    #[test]
    fn nal_framing() {
        assert_eq!(
            check_avcc_nal_lengths(&[0, 0, 0, 2, 9, 0xf0, 0, 0, 0, 1, 0x65]),
            Ok(2)
        );
        assert_eq!(
            check_avcc_nal_lengths(&[]),
            Err(FlvError::Empty("H.264 frame"))
        );
        assert_eq!(
            check_avcc_nal_lengths(&[0, 0, 0, 2, 9, 0xf0, 0, 0]),
            Err(FlvError::TruncatedNalLength {
                offset: 6,
                available: 2
            })
        );
        assert_eq!(
            check_avcc_nal_lengths(&[0, 0, 0, 9, 0x65, 0x88]),
            Err(FlvError::NalLengthOverrun {
                offset: 0,
                length: 9,
                available: 2
            })
        );
        assert_eq!(
            check_avcc_nal_lengths(&[0, 0, 0, 0, 0, 0, 0, 1, 0x65]),
            Err(FlvError::ZeroLengthNal { offset: 0 })
        );
        // A huge length must not overflow the offset arithmetic.
        assert!(matches!(
            check_avcc_nal_lengths(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(FlvError::NalLengthOverrun { .. })
        ));
        // Annex B (start codes) is told apart from random corruption.
        assert_eq!(
            check_avcc_nal_lengths(&[0, 0, 0, 1, 0x67, 0x64, 0, 0, 1, 0x68]),
            Err(FlvError::AnnexB)
        );
        // A malformed frame inside an otherwise valid tag is refused by parse_video_tag.
        assert!(matches!(
            parse_video_tag(&b(&[0x27, 0x01, 0, 0, 0, 0, 0, 0, 5, 0x41])),
            Err(FlvError::NalLengthOverrun { .. })
        ));
    }

    #[test]
    fn every_truncated_tag_is_an_error_or_shorter_media() {
        let video = b(&[
            0x17, 0x01, 0x00, 0x00, 0x43, 0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 0x88, 0x84,
        ]);
        for len in 0..video.len() {
            let result = parse_video_tag(&video.slice(..len));
            if len == 11 {
                // Cut exactly after the first NAL unit: a shorter but well-formed access unit;
                // nothing in AVCC framing can tell.
                assert!(result.is_ok());
            } else {
                // Any other cut lands in a header or a NAL unit.
                assert!(result.is_err(), "prefix {len} parsed: {result:?}");
            }
        }
        let audio = b(&[0xaf, 0x01, 0xde]);
        for len in 0..2 {
            assert!(parse_audio_tag(&audio.slice(..len)).is_err());
        }
        assert_eq!(
            parse_audio_tag(&audio.slice(..2)),
            Err(FlvError::Empty("AAC frame"))
        );
    }

    #[test]
    fn arbitrary_short_bodies_never_panic() {
        for a in 0..=255u8 {
            for b2 in 0..=255u8 {
                for len in 0..=6 {
                    let body = Bytes::copy_from_slice(&[a, b2, 0, 0, 0, 1, 0x41][..len]);
                    let _ = parse_video_tag(&body);
                    let _ = parse_audio_tag(&body);
                }
            }
        }
    }
}
