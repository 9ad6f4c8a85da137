//! H.264 Annex B byte streams (NAL units behind `00 00 01` / `00 00 00 01` start codes, what
//! libavcodec encoders emit) cut into NAL units and reframed as AVCC (each NAL unit behind its
//! 4-byte big-endian length, what FLV, `mdat` and [`MediaPacket`](crate::media::MediaPacket)
//! carry).
//!
//! Read beside ITU-T H.264 Annex B.1 (byte stream syntax) and §7.4.1 (no NAL unit ends in `00`).
//! Never panics, whatever the input.

use bytes::Bytes;

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
/// as 4 bytes big-endian, the framing of FLV, `mdat` and
/// [`MediaPacket`](crate::media::MediaPacket). What [`annexb_nal_units`] skips (bytes before
/// the first start code, trailing zeros, empty units) is not written.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::avc::AvcDecoderConfig;
    use crate::media::test_bytes::hex;

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
