//! A tiny ISO BMFF (ISO/IEC 14496-12) box writer: big-endian fields into a `Vec<u8>`, with box
//! sizes patched in when a box is closed, so callers write boxes in nesting order without
//! computing sizes first.
//!
//! Invariant: every [`BoxWriter::open`] is matched by one [`BoxWriter::close`] in LIFO order;
//! sizes are 32-bit (our boxes are far below 4 GiB: a segment is a few seconds of video).

pub struct BoxWriter {
    buf: Vec<u8>,
}

/// Where an open box starts; hand it back to [`BoxWriter::close`].
#[must_use]
pub struct OpenBox(usize);

impl BoxWriter {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Start a box (§4.2 `Box`): a size placeholder then the four-character type.
    pub fn open(&mut self, fourcc: &[u8; 4]) -> OpenBox {
        let start = self.buf.len();
        self.u32(0);
        self.bytes(fourcc);
        OpenBox(start)
    }

    /// Start a full box (§4.2 `FullBox`): a box followed by version (8 bits) and flags (24 bits).
    pub fn open_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> OpenBox {
        let open = self.open(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        open
    }

    /// Finish a box: write its size (header included) into its placeholder.
    pub fn close(&mut self, open: OpenBox) {
        let size = (self.buf.len() - open.0) as u32;
        self.buf[open.0..open.0 + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn u8(&mut self, value: u8) {
        self.buf.push(value);
    }
    pub fn u16(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }
    pub fn u24(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes()[1..]);
    }
    pub fn u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }
    pub fn i32(&mut self, value: i32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }
    pub fn zeros(&mut self, count: usize) {
        self.buf.resize(self.buf.len() + count, 0);
    }
    pub fn bytes(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Current length: positions for fields patched later with [`BoxWriter::patch_u32`].
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    pub fn patch_u32(&mut self, position: usize, value: u32) {
        self.buf[position..position + 4].copy_from_slice(&value.to_be_bytes());
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// The unity transformation matrix of `mvhd` and `tkhd` (§8.2.2.3): { 0x00010000, 0, 0,
/// 0, 0x00010000, 0, 0, 0, 0x40000000 }.
pub fn unity_matrix(w: &mut BoxWriter) {
    for value in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000u32] {
        w.u32(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes_are_patched() {
        let mut w = BoxWriter::with_capacity(64);
        let outer = w.open(b"moof");
        let inner = w.open_full(b"mfhd", 0, 0);
        w.u32(7);
        w.close(inner);
        w.close(outer);
        assert_eq!(
            w.into_inner(),
            [
                0, 0, 0, 24, b'm', b'o', b'o', b'f', // moof, 8 + 16 bytes
                0, 0, 0, 16, b'm', b'f', b'h', b'd', // mfhd, 8 + 4 + 4 bytes
                0, 0, 0, 0, // version 0, flags 0
                0, 0, 0, 7, // sequence_number
            ]
        );
    }
}
