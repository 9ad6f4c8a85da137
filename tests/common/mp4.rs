//! A small ISO BMFF (MP4) box walker for the integration tests: enough to read what a player
//! reads from an fMP4 init segment (`moov/trak`: track id, handler, timescale; the `avcC`
//! record) and from a media segment (`moof/traf`: track id and `tfdt` baseMediaDecodeTime).
//!
//! Independent of the server's own box writer on purpose: it follows ISO/IEC 14496-12 (box
//! header: 32-bit size + type, `size == 1` → 64-bit largesize, `size == 0` → to the end of the
//! enclosing data) and never panics on bad input; every error says which box and where.

use std::fmt;

/// One box: its type, where it starts in the data it was read from, and its payload (what
/// follows the header).
#[derive(Clone, Copy)]
pub struct Mp4Box<'a> {
    pub kind: [u8; 4],
    /// Offset of the box header in the slice it was parsed from.
    pub offset: usize,
    pub payload: &'a [u8],
}

impl Mp4Box<'_> {
    pub fn kind_str(&self) -> String {
        String::from_utf8_lossy(&self.kind).into_owned()
    }
}

impl fmt::Debug for Mp4Box<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}+{}",
            self.kind_str(),
            self.offset,
            self.payload.len()
        )
    }
}

/// The boxes directly inside `data` (a whole file/segment, or the payload of a container box).
pub fn boxes(data: &[u8]) -> Result<Vec<Mp4Box<'_>>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < 8 {
            return Err(format!(
                "{} stray bytes at offset {pos} (too few for a box header)",
                rest.len()
            ));
        }
        let size32 = u32::from_be_bytes(rest[0..4].try_into().unwrap()) as u64;
        let kind: [u8; 4] = rest[4..8].try_into().unwrap();
        let (header, size) = match size32 {
            0 => (8u64, rest.len() as u64),
            1 => {
                if rest.len() < 16 {
                    return Err(format!(
                        "box {:?} at {pos}: truncated largesize",
                        String::from_utf8_lossy(&kind)
                    ));
                }
                (16, u64::from_be_bytes(rest[8..16].try_into().unwrap()))
            }
            s => (8, s),
        };
        if size < header || size > rest.len() as u64 {
            return Err(format!(
                "box {:?} at offset {pos}: size {size} (header {header}, {} bytes left)",
                String::from_utf8_lossy(&kind),
                rest.len()
            ));
        }
        out.push(Mp4Box {
            kind,
            offset: pos,
            payload: &rest[header as usize..size as usize],
        });
        pos += size as usize;
    }
    Ok(out)
}

/// The boxes of type `kind` directly inside `data`.
pub fn children<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Vec<Mp4Box<'a>>, String> {
    Ok(boxes(data)?
        .into_iter()
        .filter(|b| &b.kind == kind)
        .collect())
}

/// The first box of type `kind` directly inside `data`.
pub fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Mp4Box<'a>, String> {
    children(data, kind)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no {:?} box", String::from_utf8_lossy(kind)))
}

/// Follows a path of container boxes (`["moov", "trak", "mdia"]`), taking the first match at
/// each level; returns the last box.
pub fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> Result<Mp4Box<'a>, String> {
    let mut cur = data;
    let mut found = None;
    for (i, k) in kinds.iter().enumerate() {
        let b = child(cur, k).map_err(|e| {
            let so_far: Vec<String> = kinds[..i]
                .iter()
                .map(|k| String::from_utf8_lossy(&k[..]).into_owned())
                .collect();
            format!(
                "{e} inside {}",
                if so_far.is_empty() {
                    "the top level".into()
                } else {
                    so_far.join("/")
                }
            )
        })?;
        cur = b.payload;
        found = Some(b);
    }
    found.ok_or_else(|| "empty box path".to_string())
}

fn be_u32(b: &[u8], at: usize, what: &str) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes(s.try_into().unwrap()))
        .ok_or_else(|| {
            format!(
                "{what}: truncated (wanted 4 bytes at {at}, box payload is {} bytes)",
                b.len()
            )
        })
}

fn be_u64(b: &[u8], at: usize, what: &str) -> Result<u64, String> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().unwrap()))
        .ok_or_else(|| {
            format!(
                "{what}: truncated (wanted 8 bytes at {at}, box payload is {} bytes)",
                b.len()
            )
        })
}

/// (version, flags) of a full box payload.
fn full_header(payload: &[u8], what: &str) -> Result<(u8, u32), String> {
    let v = be_u32(payload, 0, what)?;
    Ok(((v >> 24) as u8, v & 0x00ff_ffff))
}

/// A track as the init segment declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: u32,
    /// `hdlr` handler type: "vide", "soun", ...
    pub handler: String,
    /// `mdhd` timescale (ticks per second).
    pub timescale: u32,
}

/// The tracks of an init segment (`moov/trak`), in order.
pub fn tracks(init: &[u8]) -> Result<Vec<Track>, String> {
    let moov = path(init, &[b"moov"])?;
    let mut out = Vec::new();
    for trak in children(moov.payload, b"trak")? {
        let tkhd = child(trak.payload, b"tkhd")?;
        let (v, _) = full_header(tkhd.payload, "tkhd")?;
        // v0: creation u32, modification u32, track_ID; v1: u64, u64, track_ID.
        let id = be_u32(tkhd.payload, if v == 1 { 20 } else { 12 }, "tkhd track_ID")?;
        let mdia = child(trak.payload, b"mdia")?;
        let mdhd = child(mdia.payload, b"mdhd")?;
        let (v, _) = full_header(mdhd.payload, "mdhd")?;
        let timescale = be_u32(mdhd.payload, if v == 1 { 20 } else { 12 }, "mdhd timescale")?;
        let hdlr = child(mdia.payload, b"hdlr")?;
        // version/flags, pre_defined u32, handler_type.
        let handler = hdlr
            .payload
            .get(8..12)
            .map(|h| String::from_utf8_lossy(h).into_owned())
            .ok_or("hdlr: truncated")?;
        out.push(Track {
            id,
            handler,
            timescale,
        });
    }
    if out.is_empty() {
        return Err("moov has no trak".into());
    }
    Ok(out)
}

/// The video track of an init segment.
pub fn video_track(init: &[u8]) -> Result<Track, String> {
    tracks(init)?
        .into_iter()
        .find(|t| t.handler == "vide")
        .ok_or_else(|| "no video (hdlr vide) track in the init segment".to_string())
}

/// `avc1.PPCCLL` (RFC 6381) from the first `avcC` record in `data` (an init segment).
pub fn avc1_codec(init: &[u8]) -> Result<String, String> {
    let pos = init
        .windows(4)
        .position(|w| w == b"avcC")
        .ok_or("no avcC box in the init segment")?;
    let rec = init.get(pos + 4..pos + 8).ok_or("truncated avcC")?;
    Ok(format!("avc1.{:02x}{:02x}{:02x}", rec[1], rec[2], rec[3]))
}

/// One `moof/traf` of a media segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traf {
    /// Index of its `moof` among the segment's fragments.
    pub moof_index: usize,
    pub track_id: u32,
    /// `tfdt` baseMediaDecodeTime, in the track's timescale (`None`: no tfdt).
    pub base_decode_time: Option<u64>,
}

/// Every `moof/traf` of a media segment, in order.
pub fn trafs(segment: &[u8]) -> Result<Vec<Traf>, String> {
    let mut out = Vec::new();
    for (moof_index, moof) in children(segment, b"moof")?.into_iter().enumerate() {
        for traf in children(moof.payload, b"traf")? {
            let tfhd = child(traf.payload, b"tfhd")
                .map_err(|e| format!("moof #{moof_index} traf: {e}"))?;
            let track_id = be_u32(tfhd.payload, 4, "tfhd track_ID")?;
            let base_decode_time = match children(traf.payload, b"tfdt")?.first() {
                None => None,
                Some(tfdt) => {
                    let (v, _) = full_header(tfdt.payload, "tfdt")?;
                    Some(if v == 1 {
                        be_u64(tfdt.payload, 4, "tfdt baseMediaDecodeTime (v1)")?
                    } else {
                        be_u32(tfdt.payload, 4, "tfdt baseMediaDecodeTime (v0)")? as u64
                    })
                }
            };
            out.push(Traf {
                moof_index,
                track_id,
                base_decode_time,
            });
        }
    }
    if out.is_empty() {
        return Err("no moof/traf in the segment".into());
    }
    Ok(out)
}

/// The `tfdt` of the first fragment of `track_id` in a media segment: the decode time of the
/// segment's first sample of that track.
pub fn first_tfdt(segment: &[u8], track_id: u32) -> Result<u64, String> {
    let t = trafs(segment)?;
    let traf = t
        .iter()
        .find(|t| t.track_id == track_id)
        .ok_or_else(|| format!("no traf for track {track_id} (trafs: {t:?})"))?;
    traf.base_decode_time
        .ok_or_else(|| format!("the first traf of track {track_id} has no tfdt"))
}
