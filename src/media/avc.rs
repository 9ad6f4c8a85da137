//! H.264/AVC configuration parsing: the `AVCDecoderConfigurationRecord` an RTMP publisher sends
//! as its video sequence header, and the sequence parameter set (SPS) inside it.
//!
//! Read beside:
//! - ISO/IEC 14496-15 §5.3.3.1 (`AVCDecoderConfigurationRecord`, the body of the `avcC` box);
//! - ITU-T H.264 §7.3.1 (NAL unit syntax, emulation prevention), §7.3.2.1.1 (SPS syntax),
//!   §7.4.2.1.1 (SPS semantics: cropping, chroma arrays), §9.1 (Exp-Golomb codes),
//!   Annex E.1.1 (VUI syntax, up to `timing_info`);
//! - RFC 6381 §3.3 (the `avc1.PPCCLL` codecs string).
//!
//! Everything here is parsed from the network: every read is bounds-checked and every function
//! returns an [`AvcError`] instead of panicking, whatever the input.
//!
//! [`BitReader`] (MSB-first bits, Exp-Golomb) is also used by `aac.rs`.

use bytes::Bytes;

/// Why an H.264 configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvcError {
    #[error(
        "AVC decoder configuration record truncated: {what} needs {needed} bytes, only \
         {available} left"
    )]
    TruncatedRecord {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("AVC decoder configuration record has configurationVersion {0}, expected 1")]
    BadVersion(u8),
    #[error(
        "unsupported H.264 NAL length size {0} bytes (lengthSizeMinusOne = {minus_one}): only 4-byte \
         NAL lengths are supported; most encoders (x264, OBS, ffmpeg) use 4",
        minus_one = .0.wrapping_sub(1)
    )]
    UnsupportedNalLengthSize(u8),
    #[error("AVC decoder configuration record contains no SPS (numOfSequenceParameterSets = 0)")]
    NoSps,
    #[error("AVC decoder configuration record contains no PPS (numOfPictureParameterSets = 0)")]
    NoPps,
    #[error("expected an SPS NAL unit (type 7), found NAL unit type {0}")]
    NotSps(u8),
    #[error("SPS truncated while reading {0}")]
    TruncatedSps(&'static str),
    #[error("invalid SPS: {field} = {value} is out of range")]
    InvalidSps { field: &'static str, value: i64 },
    #[error(
        "H.264 parameter sets do not fit an AVC decoder configuration record: {count} {what} \
         (at most {max})"
    )]
    ParameterSetsDoNotFit {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

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
        let header = sps_header(first_sps)?;

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

/// The SPS fields an `AVCDecoderConfigurationRecord` repeats (H.264 §7.3.2.1.1, up to the bit
/// depths).
struct SpsHeader {
    profile_idc: u8,
    constraint_flags: u8,
    level_idc: u8,
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
}

fn sps_header(nal: &[u8]) -> Result<SpsHeader, AvcError> {
    let header = *nal
        .first()
        .ok_or(AvcError::TruncatedSps("the NAL unit header"))?;
    if header & 0x1f != 7 {
        return Err(AvcError::NotSps(header & 0x1f));
    }
    let rbsp = remove_emulation_prevention(&nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.u8("profile_idc").map_err(AvcError::TruncatedSps)?;
    let constraint_flags = r
        .u8("constraint_set flags")
        .map_err(AvcError::TruncatedSps)?;
    let level_idc = r.u8("level_idc").map_err(AvcError::TruncatedSps)?;
    let mut sps = SpsHeader {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc: 1, // 4:2:0 and 8 bits when absent (§7.4.2.1.1)
        bit_depth_luma_minus8: 0,
        bit_depth_chroma_minus8: 0,
    };
    if HIGH_PROFILES.contains(&profile_idc) {
        ue_max(&mut r, "seq_parameter_set_id", 31)?;
        sps.chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)? as u8;
        if sps.chroma_format_idc == 3 {
            r.flag("separate_colour_plane_flag")
                .map_err(AvcError::TruncatedSps)?;
        }
        sps.bit_depth_luma_minus8 = ue_max(&mut r, "bit_depth_luma_minus8", 6)? as u8;
        sps.bit_depth_chroma_minus8 = ue_max(&mut r, "bit_depth_chroma_minus8", 6)? as u8;
    }
    Ok(sps)
}

/// The NAL units of an H.264 Annex B byte stream (§B.1): the bytes between start codes
/// (`00 00 01`, or `00 00 00 01` — the leading zero is a `zero_byte`), without trailing zero
/// bytes (`trailing_zero_8bits`; a NAL unit never ends in `00`, §7.4.1). Bytes before the first
/// start code are not a NAL unit and are skipped, as are empty units.
pub fn annexb_nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = match find_start_code(data) {
        Some(at) => &data[at + 3..],
        None => &data[data.len()..],
    };
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (unit, next) = match find_start_code(rest) {
            Some(at) => (&rest[..at], &rest[at + 3..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end > 0 {
            return Some(&unit[..end]);
        }
    })
}

/// Position of the first `00 00 01` in `data`.
fn find_start_code(data: &[u8]) -> Option<usize> {
    let mut from = 2;
    while from < data.len() {
        let one = from + data[from..].iter().position(|&b| b == 1)?;
        if data[one - 2] == 0 && data[one - 1] == 0 {
            return Some(one - 2);
        }
        from = one + 1;
    }
    None
}

/// Annex B (start codes of 3 or 4 bytes) → AVCC framing: each NAL unit preceded by its length
/// as 4 bytes big-endian, the framing of FLV, `mdat` and [`MediaPacket`](super::MediaPacket).
/// What [`annexb_nal_units`] skips (bytes before the first start code, trailing zeros, empty
/// units) is not written.
pub fn annexb_to_avcc(data: &[u8]) -> Bytes {
    // A unit grows by at most 1 byte (3-byte start code → 4-byte length) and takes at least
    // 4 bytes of input (start code + 1), so the output is at most 5/4 of the input.
    let mut out = Vec::with_capacity(data.len() + data.len() / 4 + 4);
    for nal in annexb_nal_units(data) {
        // A slice bigger than 4 GiB is no H.264 anybody can decode; never written.
        let Ok(len) = u32::try_from(nal.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

/// What we need from a sequence parameter set (H.264 §7.3.2.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Sps {
    pub profile_idc: u8,
    pub level_idc: u8,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed (frame) height in pixels, after frame cropping.
    pub height: u32,
    /// Frames per second from the VUI timing info (`time_scale / (2 × num_units_in_tick)`),
    /// when present. Only a hint: encoders may vary the rate (`fixed_frame_rate_flag` = 0).
    pub frame_rate: Option<f64>,
}

/// Profiles whose SPS carries `chroma_format_idc`, bit depths and scaling lists (§7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The largest picture we accept, in macroblocks per side (16384 pixels). Level 6.2 allows
/// 139264 macroblocks per frame, e.g. 8192×4320; anything beyond this is a corrupt SPS.
const MAX_MBS_PER_SIDE: u32 = 1024;

impl Sps {
    /// Parse an SPS NAL unit, 1-byte NAL header included.
    ///
    /// The mandatory part must be complete; a truncated or malformed VUI only loses the frame
    /// rate (FFmpeg is equally lenient there: some encoders write broken VUI).
    pub fn parse(nal: &[u8]) -> Result<Sps, AvcError> {
        let header = *nal
            .first()
            .ok_or(AvcError::TruncatedSps("the NAL unit header"))?;
        // nal_unit_header: forbidden_zero_bit f(1), nal_ref_idc u(2), nal_unit_type u(5).
        let nal_type = header & 0x1f;
        if nal_type != 7 {
            return Err(AvcError::NotSps(nal_type));
        }
        let rbsp = remove_emulation_prevention(&nal[1..]);
        let mut r = BitReader::new(&rbsp);

        let profile_idc = r.u8("profile_idc").map_err(AvcError::TruncatedSps)?;
        let _constraint_flags = r
            .u8("constraint_set flags")
            .map_err(AvcError::TruncatedSps)?;
        let level_idc = r.u8("level_idc").map_err(AvcError::TruncatedSps)?;
        ue_max(&mut r, "seq_parameter_set_id", 31)?;

        let mut chroma_format_idc = 1; // 4:2:0 when absent (§7.4.2.1.1)
        let mut separate_colour_plane = false;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = ue_max(&mut r, "chroma_format_idc", 3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r
                    .flag("separate_colour_plane_flag")
                    .map_err(AvcError::TruncatedSps)?;
            }
            ue_max(&mut r, "bit_depth_luma_minus8", 6)?;
            ue_max(&mut r, "bit_depth_chroma_minus8", 6)?;
            r.flag("qpprime_y_zero_transform_bypass_flag")
                .map_err(AvcError::TruncatedSps)?;
            if r.flag("seq_scaling_matrix_present_flag")
                .map_err(AvcError::TruncatedSps)?
            {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.flag("seq_scaling_list_present_flag")
                        .map_err(AvcError::TruncatedSps)?
                    {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }

        ue_max(&mut r, "log2_max_frame_num_minus4", 12)?;
        match ue_max(&mut r, "pic_order_cnt_type", 2)? {
            0 => {
                ue_max(&mut r, "log2_max_pic_order_cnt_lsb_minus4", 12)?;
            }
            1 => {
                r.flag("delta_pic_order_always_zero_flag")
                    .map_err(AvcError::TruncatedSps)?;
                r.se("offset_for_non_ref_pic")
                    .map_err(AvcError::TruncatedSps)?;
                r.se("offset_for_top_to_bottom_field")
                    .map_err(AvcError::TruncatedSps)?;
                let cycle = ue_max(&mut r, "num_ref_frames_in_pic_order_cnt_cycle", 255)?;
                for _ in 0..cycle {
                    r.se("offset_for_ref_frame")
                        .map_err(AvcError::TruncatedSps)?;
                }
            }
            _ => {} // type 2: nothing more
        }
        r.ue("max_num_ref_frames").map_err(AvcError::TruncatedSps)?;
        r.flag("gaps_in_frame_num_value_allowed_flag")
            .map_err(AvcError::TruncatedSps)?;
        let width_mbs = ue_max(&mut r, "pic_width_in_mbs_minus1", MAX_MBS_PER_SIDE - 1)? + 1;
        let height_map_units = ue_max(
            &mut r,
            "pic_height_in_map_units_minus1",
            MAX_MBS_PER_SIDE - 1,
        )? + 1;
        let frame_mbs_only = r
            .flag("frame_mbs_only_flag")
            .map_err(AvcError::TruncatedSps)?;
        if !frame_mbs_only {
            r.flag("mb_adaptive_frame_field_flag")
                .map_err(AvcError::TruncatedSps)?;
        }
        r.flag("direct_8x8_inference_flag")
            .map_err(AvcError::TruncatedSps)?;
        let mut crop = [0u32; 4]; // left, right, top, bottom
        if r.flag("frame_cropping_flag")
            .map_err(AvcError::TruncatedSps)?
        {
            for (offset, name) in crop.iter_mut().zip([
                "frame_crop_left_offset",
                "frame_crop_right_offset",
                "frame_crop_top_offset",
                "frame_crop_bottom_offset",
            ]) {
                *offset = ue_max(&mut r, name, 16 * MAX_MBS_PER_SIDE)?;
            }
        }

        // §7.4.2.1.1: FrameHeightInMbs = (2 − frame_mbs_only_flag) × PicHeightInMapUnits, and the
        // crop offsets count in units that depend on the chroma subsampling (Table 6-1) and on
        // whether the picture may be coded as fields.
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_unit_x, crop_unit_y) = match chroma_array_type {
            0 => (1, field_factor),     // monochrome or 4:4:4 coded as separate planes
            1 => (2, 2 * field_factor), // 4:2:0: SubWidthC = 2, SubHeightC = 2
            2 => (2, field_factor),     // 4:2:2: SubWidthC = 2, SubHeightC = 1
            _ => (1, field_factor),     // 4:4:4: SubWidthC = 1, SubHeightC = 1
        };
        let coded_width = width_mbs * 16;
        let coded_height = field_factor * height_map_units * 16;
        let crop_x = crop_unit_x * (crop[0] + crop[1]);
        let crop_y = crop_unit_y * (crop[2] + crop[3]);
        if crop_x >= coded_width {
            return Err(AvcError::InvalidSps {
                field: "frame_crop_left_offset + frame_crop_right_offset",
                value: i64::from(crop[0] + crop[1]),
            });
        }
        if crop_y >= coded_height {
            return Err(AvcError::InvalidSps {
                field: "frame_crop_top_offset + frame_crop_bottom_offset",
                value: i64::from(crop[2] + crop[3]),
            });
        }

        let frame_rate = match r.flag("vui_parameters_present_flag") {
            Ok(true) => vui_frame_rate(&mut r).ok().flatten(),
            _ => None,
        };

        Ok(Sps {
            profile_idc,
            level_idc,
            width: coded_width - crop_x,
            height: coded_height - crop_y,
            frame_rate,
        })
    }
}

/// The VUI (Annex E.1.1) up to and including `timing_info`; returns the frame rate if signalled.
fn vui_frame_rate(r: &mut BitReader<'_>) -> Result<Option<f64>, &'static str> {
    if r.flag("aspect_ratio_info_present_flag")? {
        const EXTENDED_SAR: u32 = 255;
        if r.bits(8, "aspect_ratio_idc")? == EXTENDED_SAR {
            r.bits(16, "sar_width")?;
            r.bits(16, "sar_height")?;
        }
    }
    if r.flag("overscan_info_present_flag")? {
        r.flag("overscan_appropriate_flag")?;
    }
    if r.flag("video_signal_type_present_flag")? {
        r.bits(3, "video_format")?;
        r.flag("video_full_range_flag")?;
        if r.flag("colour_description_present_flag")? {
            r.bits(
                24,
                "colour_primaries, transfer_characteristics, matrix_coefficients",
            )?;
        }
    }
    if r.flag("chroma_loc_info_present_flag")? {
        r.ue("chroma_sample_loc_type_top_field")?;
        r.ue("chroma_sample_loc_type_bottom_field")?;
    }
    if !r.flag("timing_info_present_flag")? {
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32, "num_units_in_tick")?;
    let time_scale = r.bits(32, "time_scale")?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    // One frame is two field ticks (E.2.1, with the default field-based tick).
    Ok(Some(
        f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick)),
    ))
}

/// `scaling_list()` (§7.3.2.1.1.1): only the delta_scale values are coded; skip them.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se("delta_scale").map_err(AvcError::TruncatedSps)?;
            if !(-128..=127).contains(&delta) {
                return Err(AvcError::InvalidSps {
                    field: "delta_scale",
                    value: delta,
                });
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// `ue(v)` checked against the largest value the standard allows for that field.
fn ue_max(r: &mut BitReader<'_>, field: &'static str, max: u32) -> Result<u32, AvcError> {
    let value = r.ue(field).map_err(AvcError::TruncatedSps)?;
    if value > max {
        return Err(AvcError::InvalidSps {
            field,
            value: i64::from(value),
        });
    }
    Ok(value)
}

/// NAL unit payload → RBSP: drop each `emulation_prevention_three_byte`, i.e. the `03` of every
/// `00 00 03` (H.264 §7.3.1, §7.4.1).
pub(crate) fn remove_emulation_prevention(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut zeros = 0;
    for &byte in payload {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
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

/// MSB-first bit reader (H.264 §7.2 `u(n)`, §9.1 `ue(v)`/`se(v)`; ISO 14496-3 `uimsbf`).
///
/// Every read returns `Err(name)` with the name of the field being read when the data runs out.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits not read yet.
    pub(crate) fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Read `n` ≤ 32 bits as an unsigned big-endian number.
    pub(crate) fn bits(&mut self, n: u32, field: &'static str) -> Result<u32, &'static str> {
        if n > 32 || self.remaining() < n as usize {
            return Err(field);
        }
        let mut value: u64 = 0;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            value = (value << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(value as u32)
    }

    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, &'static str> {
        Ok(self.bits(1, field)? == 1)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, &'static str> {
        Ok(self.bits(8, field)? as u8)
    }

    /// `ue(v)`: count leading zeros z, then value = 2^z − 1 + the next z bits (§9.1).
    /// Values beyond 32 bits (z > 31) are not valid H.264 and are reported as running out.
    pub(crate) fn ue(&mut self, field: &'static str) -> Result<u32, &'static str> {
        let mut zeros = 0u32;
        while !self.flag(field)? {
            zeros += 1;
            if zeros > 31 {
                return Err(field);
            }
        }
        let suffix = self.bits(zeros, field)?;
        // 2^z − 1 + suffix ≤ 2^32 − 2 for z ≤ 31: fits in u32.
        Ok(((1u64 << zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// `se(v)`: ue k mapped to 0, 1, −1, 2, −2, ... (§9.1.1, Table 9-3).
    pub(crate) fn se(&mut self, field: &'static str) -> Result<i64, &'static str> {
        let k = i64::from(self.ue(field)?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        //   00 1a       SPS length 26, then the SPS (see sps_720p below)
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
    fn sps_720p() {
        // H.264 §7.3.2.1.1, bit by bit after the header 67 (nal_ref_idc 3, type 7):
        //   64 00 1f   profile_idc 100, constraint flags 0, level_idc 31
        //   ac = 1|010|1|1|0|0: sps_id 0, chroma_format_idc 1 (4:2:0), bit depths 8/8,
        //        qpprime bypass 0, no scaling matrix
        //   d9 = 1|1|011|001.. : log2_max_frame_num−4 = 0, poc type 0, log2_max_poc_lsb−4 = 2,
        //   40 = ..01|0|00000  : max_num_ref_frames 4, gaps 0, then
        //   50 = 0|1|010000    : pic_width_in_mbs_minus1 = 2^6−1+16 = 79 → 80 MBs = 1280
        //   05 bb = 00000|1|01101 : pic_height_in_map_units_minus1 = 2^5−1+13 = 44 → 45 = 720
        //   ..|1|1|0|1|1       : frame_mbs_only 1, direct_8x8 1, no cropping, VUI, aspect info
        //   01                 : aspect_ratio_idc 1 (1:1)
        //   10 = 0|0|0|1|0000  : no overscan/signal type/chroma loc, timing_info_present 1
        //   num_units_in_tick 1, time_scale 60 (after dropping the 03 of each 00 00 03)
        //   → 60 / (2 × 1) = 30 fps
        let sps = Sps::parse(&hex(
            "67 64 00 1f ac d9 40 50 05 bb 01 10 00 00 03 00 10 00 00 03 03 c0 f1 83 19 60",
        ))
        .expect("valid SPS");
        assert_eq!(
            sps,
            Sps {
                profile_idc: 100,
                level_idc: 31,
                width: 1280,
                height: 720,
                frame_rate: Some(30.0)
            }
        );
    }

    #[test]
    fn sps_1080p_crops_1088_to_1080() {
        // x264 High@4.0 1920x1080 (ffmpeg testsrc2, 30 fps):
        //   ac d9 40: as in 720p; 78 = 0|1|111000 → width_minus1 = 63+56 = 119 → 120 MBs = 1920
        //   02 27 = 000000|1|000100 → height_minus1 = 63+4 = 67 → 68 MBs = 1088
        //   27 tail 111: frame_mbs_only 1, direct_8x8 1, frame_cropping_flag 1
        //   e5 = 1|1|1|00101: crop left 0, right 0, top 0, bottom 4
        //   CropUnitY = SubHeightC(2) × (2 − frame_mbs_only 1) = 2 → 1088 − 2×4 = 1080
        let nal =
            hex("67 64 00 28 ac d9 40 78 02 27 e5 c0 44 00 00 03 00 04 00 00 03 00 f0 3c 60 c6 58");
        let sps = Sps::parse(&nal).expect("valid SPS");
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.level_idc, 40);
        assert_eq!(sps.frame_rate, Some(30.0));
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
    fn sps_high_422_interlaced_1080i() {
        // ffmpeg -pix_fmt yuv422p -c:v libx264 -x264-params interlaced=1, 1920x1080 25 fps.
        //   7a = profile 122 (High 4:2:2); bc = 1|011|1|1|0|0: chroma_format_idc 2
        //   frame_mbs_only_flag 0 → FrameHeightInMbs = 2 × 34 map units = 68 → 1088 lines;
        //   4:2:2 has SubHeightC = 1, so CropUnitY = 1 × 2 = 2; bottom crop 4 → 1080.
        let nal =
            hex("67 7a 00 28 bc d9 40 78 04 4f cb 80 88 00 00 03 00 08 00 00 03 01 90 f8 b1 6c b0");
        let sps = Sps::parse(&nal).expect("valid SPS");
        assert_eq!((sps.profile_idc, sps.width, sps.height), (122, 1920, 1080));
        assert_eq!(sps.frame_rate, Some(25.0));
    }

    #[test]
    fn sps_high_444_crop_unit_is_one_pixel() {
        // ffmpeg -pix_fmt yuv444p -c:v libx264, 1366x768 at 60000/1001 fps.
        //   f4 = profile 244 (High 4:4:4 Predictive), chroma_format_idc 3, no separate planes.
        //   86 MBs = 1376 wide; 4:4:4 has SubWidthC = 1 so a right crop of 10 → 1366.
        //   time_scale 120000, num_units_in_tick 1001 → 59.94 fps.
        let nal = hex("67 f4 00 2a 91 9b 28 0a c0 c3 c5 f8 08 80 00 01 f4 80 00 ea 60 07 8c 18 cb");
        let sps = Sps::parse(&nal).expect("valid SPS");
        assert_eq!((sps.profile_idc, sps.width, sps.height), (244, 1366, 768));
        let fps = sps.frame_rate.expect("timing info");
        assert!((fps - 60000.0 / 1001.0).abs() < 1e-9, "{fps}");
    }

    /// Writes SPS fields for syntax x264 never produces (scaling lists, poc type 1).
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn new() -> Self {
            BitWriter {
                bytes: Vec::new(),
                bits: 0,
            }
        }
        fn put(&mut self, n: u32, value: u64) {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                let last = self.bytes.len() - 1;
                self.bytes[last] |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
        }
        fn ue(&mut self, v: u64) {
            let v1 = v + 1;
            let len = 64 - v1.leading_zeros();
            self.put(len - 1, 0);
            self.put(len, v1);
        }
        fn se(&mut self, v: i64) {
            self.ue(if v > 0 {
                (2 * v - 1) as u64
            } else {
                (-2 * v) as u64
            });
        }
        /// rbsp_trailing_bits, then emulation prevention (§7.4.1).
        fn finish(mut self) -> Vec<u8> {
            self.put(1, 1);
            let mut out = vec![0x67];
            let mut zeros = 0;
            for b in self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    #[test]
    fn sps_scaling_lists_and_poc_type_1() {
        let mut w = BitWriter::new();
        w.put(8, 244); // profile_idc: High 4:4:4
        w.put(8, 0);
        w.put(8, 51); // level 5.1
        w.ue(0); // seq_parameter_set_id
        w.ue(3); // chroma_format_idc 4:4:4 → 12 scaling lists
        w.put(1, 0); // separate_colour_plane_flag
        w.ue(2); // bit_depth_luma_minus8 (10-bit)
        w.ue(2);
        w.put(1, 0); // qpprime_y_zero_transform_bypass_flag
        w.put(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..12 {
            w.put(1, (i % 3 != 1) as u64); // seq_scaling_list_present_flag
            if i % 3 == 1 {
                continue;
            }
            let size = if i < 6 { 16 } else { 64 };
            if i == 0 {
                // nextScale = 0 at once: "use the default list", one delta only.
                w.se(-8);
            } else {
                // 8 → 9 → 10 ... (delta +1 every coefficient)
                for _ in 0..size {
                    w.se(1);
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type 1
        w.put(1, 0); // delta_pic_order_always_zero_flag
        w.se(-3); // offset_for_non_ref_pic
        w.se(2); // offset_for_top_to_bottom_field
        w.ue(3); // num_ref_frames_in_pic_order_cnt_cycle
        for v in [1, -1, 7] {
            w.se(v);
        }
        w.ue(2); // max_num_ref_frames
        w.put(1, 0); // gaps
        w.ue(239); // 240 MBs = 3840
        w.ue(134); // 135 MBs = 2160
        w.put(1, 1); // frame_mbs_only_flag
        w.put(1, 1); // direct_8x8_inference_flag
        w.put(1, 0); // frame_cropping_flag
        w.put(1, 0); // vui_parameters_present_flag
        let nal = w.finish();
        let sps = Sps::parse(&nal).expect("valid SPS");
        assert_eq!(
            sps,
            Sps {
                profile_idc: 244,
                level_idc: 51,
                width: 3840,
                height: 2160,
                frame_rate: None
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
    fn truncated_sps_never_panics_and_errs_before_the_vui() {
        for nal in [
            hex("67 64 00 1f ac d9 40 50 05 bb 01 10 00 00 03 00 10 00 00 03 03 c0 f1 83 19 60"),
            hex("67 64 00 28 ac d9 40 78 02 27 e5 c0 44 00 00 03 00 04 00 00 03 00 f0 3c 60 c6 58"),
            hex("67 f4 00 2a 91 9b 28 0a c0 c3 c5 f8 08 80 00 01 f4 80 00 ea 60 07 8c 18 cb"),
        ] {
            let full = Sps::parse(&nal).expect("valid SPS");
            let mut first_ok = None;
            for len in 0..nal.len() {
                match Sps::parse(&nal[..len]) {
                    Ok(sps) => {
                        first_ok.get_or_insert(len);
                        // Only the VUI may be cut: the picture size is always right.
                        assert_eq!((sps.width, sps.height), (full.width, full.height));
                    }
                    Err(_) => assert!(
                        first_ok.is_none(),
                        "prefix {len} failed after a shorter one parsed"
                    ),
                }
            }
            // The mandatory fields take at least 8 bytes in all of these.
            assert!(first_ok.is_none_or(|len| len >= 8), "{first_ok:?}");
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

    #[test]
    fn exp_golomb() {
        // §9.1 Table 9-2: 1 → 0, 010 → 1, 011 → 2, 00100 → 3; se: 0, 1, −1, 2
        let data = [0b1010_0110, 0b0100_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue("a"), Ok(0));
        assert_eq!(r.ue("b"), Ok(1));
        assert_eq!(r.ue("c"), Ok(2));
        assert_eq!(r.ue("d"), Ok(3));
        let mut r = BitReader::new(&data);
        assert_eq!(r.se("a"), Ok(0));
        assert_eq!(r.se("b"), Ok(1));
        assert_eq!(r.se("c"), Ok(-1));
        assert_eq!(r.se("d"), Ok(2));
        // 32 leading zeros is beyond u32: an error, not a panic or an overflow.
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0xff]).ue("big"), Err("big"));
        assert_eq!(
            BitReader::new(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]).ue("max"),
            Ok(u32::MAX - 1)
        );
    }

    #[test]
    fn emulation_prevention() {
        assert_eq!(remove_emulation_prevention(&[0, 0, 3, 1]), vec![0, 0, 1]);
        assert_eq!(
            remove_emulation_prevention(&[0, 0, 3, 0, 0, 3]),
            vec![0, 0, 0, 0]
        );
        assert_eq!(
            remove_emulation_prevention(&[0, 3, 0, 0, 3, 3]),
            vec![0, 3, 0, 0, 3]
        );
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

    #[test]
    fn annexb_to_avcc_frames_every_unit_with_its_length() {
        // AUD (4-byte start code), IDR slice ending in trailing_zero_8bits before a 4-byte
        // start code, then a slice whose 00 00 03 emulation prevention must stay as it is.
        let data = hex("00 00 00 01 09 f0 00 00 01 65 88 84 00 00 00 00 01 41 9a 00 00 03 01 7f");
        assert_eq!(
            &annexb_to_avcc(&data)[..],
            &hex("00 00 00 02 09 f0 00 00 00 03 65 88 84 00 00 00 07 41 9a 00 00 03 01 7f")[..]
        );
        // Bytes before the first start code are not a unit; empty units vanish.
        assert_eq!(
            &annexb_to_avcc(&hex("ff 17 00 00 01 00 00 01 00 00 00 01 06 05"))[..],
            &hex("00 00 00 02 06 05")[..]
        );
        for nothing in ["", "00 00 01", "00 00 00 01 00 00", "01 02 03 04"] {
            assert!(annexb_to_avcc(&hex(nothing)).is_empty(), "{nothing:?}");
        }
    }

    #[test]
    fn annexb_hostile_bytes_never_panic() {
        let mut seed: u32 = 0x9e37_79b9;
        for len in 0..2000usize {
            let mut v = Vec::with_capacity(len % 97);
            for _ in 0..len % 97 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Mostly 0 and 1 so that start codes and empty units are frequent.
                v.push(match seed >> 29 {
                    0..=3 => 0,
                    4 | 5 => 1,
                    _ => (seed >> 8) as u8,
                });
            }
            let avcc = annexb_to_avcc(&v);
            assert!(avcc.len() <= v.len() + v.len() / 4 + 4);
            let _ = AvcDecoderConfig::from_annexb_parameter_sets(&v);
        }
    }
}
