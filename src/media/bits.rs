//! An MSB-first bit reader for the codec configuration parsers: fixed-width fields (H.264 §7.2
//! `u(n)`, ISO/IEC 14496-3 `uimsbf`) and Exp-Golomb codes (H.264 §9.1 `ue(v)`/`se(v)`).
//!
//! Used by the SPS parser ([`super::avc`]) and the AudioSpecificConfig parser ([`super::aac`]).
//! Reads never go past the data: running out is an `Err` naming the field being read.

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
}
