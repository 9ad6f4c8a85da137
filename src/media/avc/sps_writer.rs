//! Test-only: writes SPS NAL units field by field, for SPS syntax x264 never produces (scaling
//! lists, poc type 1, High 10), so the parsers can be checked against it.

/// MSB-first bits, `ue(v)` and `se(v)` (the inverse of [`crate::media::bits::BitReader`]),
/// finished as an SPS NAL unit.
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            bits: 0,
        }
    }
    pub(crate) fn put(&mut self, n: u32, value: u64) {
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
    pub(crate) fn ue(&mut self, v: u64) {
        let v1 = v + 1;
        let len = 64 - v1.leading_zeros();
        self.put(len - 1, 0);
        self.put(len, v1);
    }
    pub(crate) fn se(&mut self, v: i64) {
        self.ue(if v > 0 {
            (2 * v - 1) as u64
        } else {
            (-2 * v) as u64
        });
    }
    /// rbsp_trailing_bits, then emulation prevention (§7.4.1).
    pub(crate) fn finish(mut self) -> Vec<u8> {
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
