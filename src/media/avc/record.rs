//! The `AVCDecoderConfigurationRecord` (the body of the `avcC` box): parsed from the video
//! sequence header an RTMP publisher sends, or built from the Annex B parameter sets an encoder
//! emits; and the RFC 6381 `avc1.PPCCLL` codecs string it gives.
//!
//! Read beside ISO/IEC 14496-15 §5.3.3.1 and RFC 6381 §3.3. Parsed from the network: every read
//! is bounds-checked and errors name the field that was cut.

use bytes::Bytes;

use super::annexb::annexb_nal_units;
use super::sps::SpsHeader;
use super::{AvcError, Sps};

/// A parsed `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1.2).
#[derive(Debug, Clone, PartialEq)]
pub struct AvcDecoderConfig {
    /// The raw record, written verbatim into `avcC` by the muxer.
    pub record: Bytes,
    /// `AVCProfileIndication` (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// `profile_compatibility`: the SPS `constraint_set0..5_flag` byte.
    pub profile_compatibility: u8,
    /// `AVCLevelIndication`: level × 10 (31 = level 3.1).
    pub level_idc: u8,
    /// `lengthSizeMinusOne + 1`; always 4 here (anything else is refused).
    pub nal_length_size: u8,
    /// The first SPS, parsed.
    pub sps: Sps,
}

impl AvcDecoderConfig {
    /// Parse an `AVCDecoderConfigurationRecord`:
    ///
    /// ```text
    /// u8  configurationVersion = 1
    /// u8  AVCProfileIndication
    /// u8  profile_compatibility
    /// u8  AVCLevelIndication
    /// u8  reserved '111111'b, lengthSizeMinusOne (2 bits)
    /// u8  reserved '111'b, numOfSequenceParameterSets (5 bits)
    ///     { u16 sequenceParameterSetLength; SPS NAL unit } × numOfSequenceParameterSets
    /// u8  numOfPictureParameterSets
    ///     { u16 pictureParameterSetLength; PPS NAL unit } × numOfPictureParameterSets
    ///     [High profiles: chroma_format, bit depths, SPS extensions — not needed here]
    /// ```
    pub fn parse(record: Bytes) -> Result<Self, AvcError> {
        let mut r = ByteReader::new(&record);
        let header = r.take(6, "the 6-byte header")?;
        let (version, profile_idc, profile_compatibility, level_idc) =
            (header[0], header[1], header[2], header[3]);
        if version != 1 {
            return Err(AvcError::BadVersion(version));
        }
        let nal_length_size = (header[4] & 0b11) + 1;
        if nal_length_size != 4 {
            return Err(AvcError::UnsupportedNalLengthSize(nal_length_size));
        }
        let num_sps = header[5] & 0b1_1111;
        if num_sps == 0 {
            return Err(AvcError::NoSps);
        }
        let mut first_sps = None;
        for _ in 0..num_sps {
            let len = r.u16("sequenceParameterSetLength")?;
            let nal = r.take(usize::from(len), "a sequenceParameterSetNALUnit")?;
            if first_sps.is_none() {
                first_sps = Some(nal);
            }
        }
        let num_pps = r.take(1, "numOfPictureParameterSets")?[0];
        if num_pps == 0 {
            return Err(AvcError::NoPps);
        }
        for _ in 0..num_pps {
            let len = r.u16("pictureParameterSetLength")?;
            r.take(usize::from(len), "a pictureParameterSetNALUnit")?;
        }
        let sps = Sps::parse(first_sps.ok_or(AvcError::NoSps)?)?;
        Ok(AvcDecoderConfig {
            record,
            profile_idc,
            profile_compatibility,
            level_idc,
            nal_length_size,
            sps,
        })
    }

    /// RFC 6381 §3.3 codecs string: `avc1.` + profile_idc, constraint flags and level_idc as
    /// two hex digits each, e.g. `avc1.64001f` for High (0x64) level 3.1 (0x1f).
    pub fn codecs_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_compatibility, self.level_idc
        )
    }
}

/// Building a record from what an encoder emits (libavcodec encoders give their global headers
/// in Annex B form).
impl AvcDecoderConfig {
    /// Build an `AVCDecoderConfigurationRecord` from Annex B parameter sets (start codes of 3 or
    /// 4 bytes), e.g. libx264's `extradata` with `AV_CODEC_FLAG_GLOBAL_HEADER`: every SPS
    /// (type 7) and PPS (type 8) in order, other NAL units (SEI, AUD) ignored.
    ///
    /// The header takes profile, constraint flags and level from the first SPS; for profiles
    /// other than Baseline, Main and Extended (66, 77, 88) the record ends with the
    /// `chroma_format`/bit depth extension of ISO/IEC 14496-15:2017 §5.3.3.1.2 read from that
    /// SPS, with no SPS extensions. The result is then parsed back, so it is validated exactly
    /// like a record received from a publisher.
    pub fn from_annexb_parameter_sets(headers: &[u8]) -> Result<Self, AvcError> {
        let mut sps_units = Vec::new();
        let mut pps_units = Vec::new();
        for nal in annexb_nal_units(headers) {
            match nal[0] & 0x1f {
                7 => sps_units.push(nal),
                8 => pps_units.push(nal),
                _ => {}
            }
        }
        let first_sps = *sps_units.first().ok_or(AvcError::NoSps)?;
        if pps_units.is_empty() {
            return Err(AvcError::NoPps);
        }
        // numOfSequenceParameterSets has 5 bits, numOfPictureParameterSets 8; lengths 16.
        for (what, units, max) in [("SPS", &sps_units, 31), ("PPS", &pps_units, 255)] {
            if units.len() > max {
                return Err(AvcError::ParameterSetsDoNotFit {
                    what,
                    count: units.len(),
                    max,
                });
            }
            if let Some(long) = units.iter().find(|nal| nal.len() > usize::from(u16::MAX)) {
                return Err(AvcError::ParameterSetsDoNotFit {
                    what: "bytes in one parameter set",
                    count: long.len(),
                    max: usize::from(u16::MAX),
                });
            }
        }
        let header = SpsHeader::parse(first_sps)?;

        let size = 7
            + 4
            + sps_units
                .iter()
                .chain(&pps_units)
                .map(|n| 2 + n.len())
                .sum::<usize>();
        let mut record = Vec::with_capacity(size);
        record.extend_from_slice(&[
            1, // configurationVersion
            header.profile_idc,
            header.constraint_flags,
            header.level_idc,
            0xfc | 3,                     // lengthSizeMinusOne 3: 4-byte NAL lengths
            0xe0 | sps_units.len() as u8, // ≤ 31, checked above
        ]);
        for nal in &sps_units {
            record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            record.extend_from_slice(nal);
        }
        record.push(pps_units.len() as u8); // ≤ 255, checked above
        for nal in &pps_units {
            record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            record.extend_from_slice(nal);
        }
        if !matches!(header.profile_idc, 66 | 77 | 88) {
            record.extend_from_slice(&[
                0xfc | header.chroma_format_idc,
                0xf8 | header.bit_depth_luma_minus8,
                0xf8 | header.bit_depth_chroma_minus8,
                0, // numOfSequenceParameterSetExt
            ]);
        }
        AvcDecoderConfig::parse(Bytes::from(record))
    }
}

/// Big-endian byte reader over a record; errors name what was being read.
struct ByteReader<'a> {
    data: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        ByteReader { data }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AvcError> {
        if self.data.len() < n {
            return Err(AvcError::TruncatedRecord {
                what,
                needed: n,
                available: self.data.len(),
            });
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, AvcError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::avc::sps_writer::BitWriter;
    use crate::media::test_bytes::hex;

    /// The avcC that `ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -c:v libx264
    /// -profile:v high -level 3.1 -f flv` (x264 core 164) sends as its first video tag, after the
    /// 5-byte FLV video tag header `17 00 00 00 00`.
    const AVCC_720P: &str = "01 64 00 1f ff e1 00 1a \
        67 64 00 1f ac d9 40 50 05 bb 01 10 00 00 03 00 10 00 00 03 03 c0 f1 83 19 60 \
        01 00 06 68 eb e3 cb 22 c0 fd f8 f8 00";

    #[test]
    fn avcc_720p_high_3_1_from_x264() {
        // 14496-15 §5.3.3.1.2:
        //   01          configurationVersion 1
        //   64 00 1f    AVCProfileIndication 100 (High), profile_compatibility 0, level 31
        //   ff          '111111'b + lengthSizeMinusOne 3 → 4-byte NAL lengths
        //   e1          '111'b + numOfSequenceParameterSets 1
        //   00 1a       SPS length 26, then the SPS (see sps.rs, sps_720p)
        //   01 00 06    one PPS of 6 bytes: 68 eb e3 cb 22 c0
        //   fd f8 f8 00 High-profile extension: chroma_format 1, 8-bit luma/chroma, 0 SPS ext
        let config = AvcDecoderConfig::parse(Bytes::from(hex(AVCC_720P))).expect("valid avcC");
        assert_eq!(config.profile_idc, 100);
        assert_eq!(config.profile_compatibility, 0);
        assert_eq!(config.level_idc, 31);
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(config.codecs_string(), "avc1.64001f");
        assert_eq!(&config.record[..], &hex(AVCC_720P)[..]);
        assert_eq!(config.sps.width, 1280);
        assert_eq!(config.sps.height, 720);
        assert_eq!(config.sps.frame_rate, Some(30.0));
    }

    #[test]
    fn avcc_baseline_320x240() {
        // x264 -profile:v baseline 320x240 at 25 fps: profile 66, constraint flags c0
        // (constraint_set0 and set1: Constrained Baseline), level 13. No chroma/bit-depth fields
        // for profile 66. d9 = 1|1|011|00.. sps_id 0, log2_max_frame_num−4 0, poc type 2,
        // max_num_ref_frames 3; width 20 MBs, height 15 MBs, no cropping; time_scale 50 → 25 fps.
        let record = hex(
            "01 42 c0 0d ff e1 00 18 67 42 c0 0d d9 01 41 fb 01 10 00 00 03 00 10 00 00 03 03 20 \
             f1 42 a4 80 01 00 05 68 cb 83 cb 20",
        );
        let config = AvcDecoderConfig::parse(Bytes::from(record)).expect("valid avcC");
        assert_eq!(config.codecs_string(), "avc1.42c00d");
        assert_eq!(
            config.sps,
            Sps {
                profile_idc: 66,
                level_idc: 13,
                width: 320,
                height: 240,
                frame_rate: Some(25.0)
            }
        );
    }

    #[test]
    fn record_errors_are_specific() {
        let good = hex(AVCC_720P);
        let mut v = good.clone();
        v[0] = 0;
        assert_eq!(
            AvcDecoderConfig::parse(Bytes::from(v)),
            Err(AvcError::BadVersion(0))
        );

        let mut v = good.clone();
        v[4] = 0xfd; // lengthSizeMinusOne 1 → 2-byte lengths
        let err = AvcDecoderConfig::parse(Bytes::from(v)).unwrap_err();
        assert_eq!(err, AvcError::UnsupportedNalLengthSize(2));
        assert!(err.to_string().contains("only 4-byte"), "{err}");

        let mut v = good.clone();
        v[5] = 0xe0; // no SPS
        assert_eq!(
            AvcDecoderConfig::parse(Bytes::from(v)),
            Err(AvcError::NoSps)
        );

        let mut v = good.clone();
        v[8 + 26] = 0; // numOfPictureParameterSets 0
        assert_eq!(
            AvcDecoderConfig::parse(Bytes::from(v)),
            Err(AvcError::NoPps)
        );

        let mut v = good.clone();
        v[8] = 0x68; // a PPS where the SPS should be
        assert_eq!(
            AvcDecoderConfig::parse(Bytes::from(v)),
            Err(AvcError::NotSps(8))
        );
    }

    #[test]
    fn every_truncated_record_is_an_error() {
        let good = hex(AVCC_720P);
        // The record without the optional High-profile extension (last 4 bytes) is still valid;
        // every shorter prefix cuts a counted field.
        let minimal = good.len() - 4;
        for len in 0..minimal {
            let result = AvcDecoderConfig::parse(Bytes::copy_from_slice(&good[..len]));
            assert!(result.is_err(), "prefix of {len} bytes parsed: {result:?}");
        }
        for len in minimal..=good.len() {
            AvcDecoderConfig::parse(Bytes::copy_from_slice(&good[..len])).expect("complete record");
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A cheap deterministic fuzz: mutate the real SPS and record byte by byte.
        let record = hex(AVCC_720P);
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..20_000 {
            let mut v = record.clone();
            for _ in 0..3 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let i = (seed >> 8) as usize % v.len();
                v[i] = (seed >> 24) as u8;
            }
            let _ = AvcDecoderConfig::parse(Bytes::from(v.clone()));
            let _ = Sps::parse(&v[8..]);
        }
        for bad in [
            vec![0x67],
            vec![0x67, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
            vec![0x67; 64],
            vec![0; 40],
        ] {
            let _ = Sps::parse(&bad);
        }
    }

    // ---- Annex B → AVCC and records built from an encoder's global headers ----

    /// `00 00 00 01` + the NAL units given as hex, one per string.
    fn annexb(units: &[&str]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [vec![0, 0, 0, 1], hex(u)])
            .flatten()
            .collect()
    }

    const SPS_720P: &str =
        "67 64 00 1f ac d9 40 50 05 bb 01 10 00 00 03 00 10 00 00 03 03 c0 f1 83 19 60";
    const PPS_720P: &str = "68 eb e3 cb 22 c0";

    #[test]
    fn record_from_x264_global_headers_is_the_known_avcc() {
        // libx264's extradata with AV_CODEC_FLAG_GLOBAL_HEADER: SPS and PPS behind 4-byte start
        // codes. Rebuilt, it must be the x264/FFmpeg record byte for byte (see
        // avcc_720p_high_3_1_from_x264), extension included: profile 100 is not 66/77/88, so
        //   fd = 111111|01  chroma_format_idc 1 (ac = 1|010|...: sps_id 0, chroma_format_idc 1)
        //   f8 = 11111|000  bit_depth_luma_minus8 0 (the next '1' bit)
        //   f8 = 11111|000  bit_depth_chroma_minus8 0
        //   00              numOfSequenceParameterSetExt 0
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&annexb(&[SPS_720P, PPS_720P]))
            .expect("x264 headers");
        assert_eq!(&config.record[..], &hex(AVCC_720P)[..]);
        assert_eq!(config.codecs_string(), "avc1.64001f");
        assert_eq!((config.sps.width, config.sps.height), (1280, 720));
        assert_eq!(
            config,
            AvcDecoderConfig::parse(Bytes::from(hex(AVCC_720P))).expect("valid")
        );
    }

    #[test]
    fn record_from_3_byte_start_codes_without_extension_for_baseline() {
        // The 320x240 Constrained Baseline record of avcc_baseline_320x240: profile 66 has no
        // extension, so the record ends with the PPS. 3-byte start codes, an AUD before and an
        // SEI between the parameter sets, trailing zero bytes after the SPS: all ignored.
        let mut headers = hex("00 00 01 09 10");
        headers.extend(hex(
            "00 00 01 67 42 c0 0d d9 01 41 fb 01 10 00 00 03 00 10 00 00 03 03 20 f1 42 a4 80 00 00",
        ));
        headers.extend(hex("00 00 01 06 05 01 ff 80 00 00 00 01 68 cb 83 cb 20"));
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&headers).expect("headers");
        assert_eq!(
            &config.record[..],
            &hex(
                "01 42 c0 0d ff e1 00 18 67 42 c0 0d d9 01 41 fb 01 10 00 00 03 00 10 00 00 03 \
                 03 20 f1 42 a4 80 01 00 05 68 cb 83 cb 20"
            )[..]
        );
    }

    #[test]
    fn record_extension_carries_chroma_format_and_bit_depths() {
        // 4:2:2 (profile 122): bc = 1|011|1|1|..: sps_id 0, chroma_format_idc 2, depths 8/8.
        let sps_422 =
            "67 7a 00 28 bc d9 40 78 04 4f cb 80 88 00 00 03 00 08 00 00 03 01 90 f8 b1 6c b0";
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&annexb(&[sps_422, PPS_720P]))
            .expect("4:2:2 headers");
        assert_eq!(&config.record[..6], &hex("01 7a 00 28 ff e1")[..]);
        assert_eq!(
            &config.record[config.record.len() - 4..],
            &hex("fe f8 f8 00")[..]
        );

        // 4:4:4 (profile 244): 91 = 1|00100|0|1: sps_id 0, chroma_format_idc 3, no separate
        // planes, luma depth 8; 9b = 1|...: chroma depth 8.
        let sps_444 = "67 f4 00 2a 91 9b 28 0a c0 c3 c5 f8 08 80 00 01 f4 80 00 ea 60 07 8c 18 cb";
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&annexb(&[sps_444, PPS_720P]))
            .expect("4:4:4 headers");
        assert_eq!(
            &config.record[config.record.len() - 4..],
            &hex("ff f8 f8 00")[..]
        );

        // High 10 (profile 110), 4:2:0 10-bit, 640x480, written field by field.
        let mut w = BitWriter::new();
        w.put(8, 110);
        w.put(8, 0);
        w.put(8, 30);
        w.ue(0); // seq_parameter_set_id
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(2); // bit_depth_luma_minus8: 10 bits
        w.ue(2); // bit_depth_chroma_minus8
        w.put(1, 0); // qpprime_y_zero_transform_bypass_flag
        w.put(1, 0); // seq_scaling_matrix_present_flag
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(2); // pic_order_cnt_type 2
        w.ue(1); // max_num_ref_frames
        w.put(1, 0); // gaps
        w.ue(39); // 40 MBs = 640
        w.ue(29); // 30 MBs = 480
        w.put(2, 0b11); // frame_mbs_only_flag, direct_8x8_inference_flag
        w.put(2, 0); // no cropping, no VUI
        let mut headers = vec![0, 0, 0, 1];
        headers.extend(w.finish());
        headers.extend(hex("00 00 00 01 68 eb e3 cb 22 c0"));
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&headers).expect("High 10");
        assert_eq!(config.codecs_string(), "avc1.6e001e");
        assert_eq!((config.sps.width, config.sps.height), (640, 480));
        assert_eq!(
            &config.record[config.record.len() - 4..],
            &hex("fd fa fa 00")[..]
        );
    }

    #[test]
    fn record_counts_every_parameter_set_in_order() {
        let pps_b = "68 ee 3c b0";
        let config =
            AvcDecoderConfig::from_annexb_parameter_sets(&annexb(&[SPS_720P, PPS_720P, pps_b]))
                .expect("headers");
        let r = &config.record;
        assert_eq!(r[5], 0xe1);
        assert_eq!(
            &r[8 + 26..8 + 26 + 10],
            &hex("02 00 06 68 eb e3 cb 22 c0 00")[..]
        );
        assert_eq!(&r[8 + 26 + 10..8 + 26 + 15], &hex("04 68 ee 3c b0")[..]);
    }

    #[test]
    fn record_from_incomplete_headers_is_an_error() {
        let from = AvcDecoderConfig::from_annexb_parameter_sets;
        assert_eq!(from(&[]), Err(AvcError::NoSps));
        assert_eq!(from(&hex(SPS_720P)), Err(AvcError::NoSps), "no start code");
        assert_eq!(from(&annexb(&[PPS_720P])), Err(AvcError::NoSps));
        assert_eq!(from(&annexb(&[SPS_720P])), Err(AvcError::NoPps));
        assert!(matches!(
            from(&annexb(&["67 64 00", PPS_720P])),
            Err(AvcError::TruncatedSps(_))
        ));
        // The header is complete but the SPS is cut before the picture size.
        assert!(matches!(
            from(&annexb(&["67 64 00 1f ac d9", PPS_720P])),
            Err(AvcError::TruncatedSps(_))
        ));
        let many: Vec<&str> = std::iter::repeat_n(SPS_720P, 32)
            .chain([PPS_720P])
            .collect();
        assert_eq!(
            from(&annexb(&many)),
            Err(AvcError::ParameterSetsDoNotFit {
                what: "SPS",
                count: 32,
                max: 31
            })
        );
    }
}
