//! The H.264 sequence parameter set (SPS): the picture size, profile, level and frame rate an
//! encoder announces, and the fields of it an `AVCDecoderConfigurationRecord` repeats.
//!
//! Read beside ITU-T H.264 §7.3.1 (NAL unit syntax, emulation prevention), §7.3.2.1.1 (SPS
//! syntax), §7.4.2.1.1 (SPS semantics: cropping, chroma arrays), Annex E.1.1 (VUI syntax, up to
//! `timing_info`).
//!
//! Parsed from the network: every read is bounds-checked and every field the size or the
//! allocation depends on is checked against the range the standard allows.

use super::AvcError;
use crate::media::bits::BitReader;

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

/// The start of an SPS, up to the bit depths: the fields an `AVCDecoderConfigurationRecord`
/// repeats (ISO/IEC 14496-15 §5.3.3.1.2), and what the rest of the SPS syntax depends on.
pub(super) struct SpsHeader {
    pub(super) profile_idc: u8,
    /// The `constraint_set0..5_flag` byte (`profile_compatibility` in the record).
    pub(super) constraint_flags: u8,
    pub(super) level_idc: u8,
    /// 1 (4:2:0) when the profile does not code it (§7.4.2.1.1).
    pub(super) chroma_format_idc: u8,
    separate_colour_plane: bool,
    /// 0 (8 bits) when the profile does not code them.
    pub(super) bit_depth_luma_minus8: u8,
    pub(super) bit_depth_chroma_minus8: u8,
}

impl SpsHeader {
    /// Parse the start of an SPS NAL unit, 1-byte NAL header included.
    pub(super) fn parse(nal: &[u8]) -> Result<SpsHeader, AvcError> {
        let rbsp = sps_rbsp(nal)?;
        SpsHeader::read(&mut BitReader::new(&rbsp))
    }

    /// `profile_idc` .. `bit_depth_chroma_minus8` of §7.3.2.1.1.
    fn read(r: &mut BitReader<'_>) -> Result<SpsHeader, AvcError> {
        let profile_idc = r.u8("profile_idc").map_err(AvcError::TruncatedSps)?;
        let constraint_flags = r
            .u8("constraint_set flags")
            .map_err(AvcError::TruncatedSps)?;
        let level_idc = r.u8("level_idc").map_err(AvcError::TruncatedSps)?;
        ue_max(r, "seq_parameter_set_id", 31)?;
        let mut header = SpsHeader {
            profile_idc,
            constraint_flags,
            level_idc,
            chroma_format_idc: 1,
            separate_colour_plane: false,
            bit_depth_luma_minus8: 0,
            bit_depth_chroma_minus8: 0,
        };
        if HIGH_PROFILES.contains(&profile_idc) {
            header.chroma_format_idc = ue_max(r, "chroma_format_idc", 3)? as u8;
            if header.chroma_format_idc == 3 {
                header.separate_colour_plane = r
                    .flag("separate_colour_plane_flag")
                    .map_err(AvcError::TruncatedSps)?;
            }
            header.bit_depth_luma_minus8 = ue_max(r, "bit_depth_luma_minus8", 6)? as u8;
            header.bit_depth_chroma_minus8 = ue_max(r, "bit_depth_chroma_minus8", 6)? as u8;
        }
        Ok(header)
    }
}

/// An SPS NAL unit's RBSP: the 1-byte NAL header checked (type 7) and dropped, emulation
/// prevention removed.
fn sps_rbsp(nal: &[u8]) -> Result<Vec<u8>, AvcError> {
    let header = *nal
        .first()
        .ok_or(AvcError::TruncatedSps("the NAL unit header"))?;
    // nal_unit_header: forbidden_zero_bit f(1), nal_ref_idc u(2), nal_unit_type u(5).
    let nal_type = header & 0x1f;
    if nal_type != 7 {
        return Err(AvcError::NotSps(nal_type));
    }
    Ok(remove_emulation_prevention(&nal[1..]))
}

impl Sps {
    /// Parse an SPS NAL unit, 1-byte NAL header included.
    ///
    /// The mandatory part must be complete; a truncated or malformed VUI only loses the frame
    /// rate (FFmpeg is equally lenient there: some encoders write broken VUI).
    pub fn parse(nal: &[u8]) -> Result<Sps, AvcError> {
        let rbsp = sps_rbsp(nal)?;
        let mut r = BitReader::new(&rbsp);
        let SpsHeader {
            profile_idc,
            level_idc,
            chroma_format_idc,
            separate_colour_plane,
            ..
        } = SpsHeader::read(&mut r)?;
        if HIGH_PROFILES.contains(&profile_idc) {
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
fn remove_emulation_prevention(payload: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::avc::sps_writer::BitWriter;
    use crate::media::test_bytes::hex;

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
}
