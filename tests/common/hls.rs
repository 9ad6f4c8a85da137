//! A small, strict HLS playlist parser for the integration tests (RFC 8216), plus the two bits
//! of plumbing every HLS client needs: resolving relative URIs against the playlist URL and
//! reading `EXT-X-PROGRAM-DATE-TIME` values.
//!
//! Strict means: whatever RFC 8216 says a playlist MUST (or MUST NOT) contain, and every
//! attribute we read, is checked, and the error names the line. Tags this parser does not know
//! (LL-HLS `EXT-X-PART`, `EXT-X-SERVER-CONTROL`, ...) are kept in `other_tags`, not rejected:
//! a client ignores tags it does not understand (RFC 8216 §6.3.1).

use std::fmt;

/// An attribute value as written: a quoted string (quotes removed) or anything else (enumerated
/// string, integer, float, hex, resolution) as its raw text.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Quoted(String),
    Plain(String),
}

/// An attribute list (`NAME=VALUE,NAME="VALUE",...`), in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(pub Vec<(String, AttrValue)>);

impl Attrs {
    pub fn parse(s: &str) -> Result<Attrs, String> {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i] != b'=' {
                i += 1;
            }
            let name = &s[start..i];
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-')
            {
                return Err(format!("bad attribute name {name:?} in {s:?}"));
            }
            if i >= b.len() {
                return Err(format!("attribute {name} has no value in {s:?}"));
            }
            i += 1; // '='
            let value = if i < b.len() && b[i] == b'"' {
                let vstart = i + 1;
                let Some(len) = s[vstart..].find('"') else {
                    return Err(format!("unterminated quoted string for {name} in {s:?}"));
                };
                let v = &s[vstart..vstart + len];
                if v.contains('\n') || v.contains('\r') {
                    return Err(format!("line break inside quoted string for {name}"));
                }
                i = vstart + len + 1;
                AttrValue::Quoted(v.to_string())
            } else {
                let vstart = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                let v = &s[vstart..i];
                if v.is_empty() || v.contains('"') || v.contains(char::is_whitespace) {
                    return Err(format!("bad unquoted value {v:?} for {name} in {s:?}"));
                }
                AttrValue::Plain(v.to_string())
            };
            if out.iter().any(|(n, _): &(String, AttrValue)| n == name) {
                return Err(format!("attribute {name} appears twice in {s:?}"));
            }
            out.push((name.to_string(), value));
            if i < b.len() {
                if b[i] != b',' {
                    return Err(format!("expected ',' after attribute {name} in {s:?}"));
                }
                i += 1;
                if i >= b.len() {
                    return Err(format!("trailing ',' in attribute list {s:?}"));
                }
            }
        }
        Ok(Attrs(out))
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value of a quoted-string attribute; `Err` if present but not quoted.
    pub fn quoted(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Quoted(v)) => Ok(Some(v)),
            Some(AttrValue::Plain(v)) => Err(format!("{name}={v} must be a quoted string")),
        }
    }

    /// The value of an unquoted attribute; `Err` if present but quoted.
    pub fn plain(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Plain(v)) => Ok(Some(v)),
            Some(AttrValue::Quoted(v)) => Err(format!("{name}=\"{v}\" must not be quoted")),
        }
    }
}

/// One `#EXT-X-STREAM-INF` entry of a master playlist.
#[derive(Debug, Clone)]
pub struct Variant {
    pub attrs: Attrs,
    pub uri: String,
}

impl Variant {
    pub fn bandwidth(&self) -> Option<u64> {
        self.attrs
            .plain("BANDWIDTH")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    pub fn average_bandwidth(&self) -> Option<u64> {
        self.attrs
            .plain("AVERAGE-BANDWIDTH")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    pub fn resolution(&self) -> Option<(u32, u32)> {
        let v = self.attrs.plain("RESOLUTION").ok().flatten()?;
        let (w, h) = v.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    }
    pub fn frame_rate(&self) -> Option<f64> {
        self.attrs
            .plain("FRAME-RATE")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
    }
    pub fn codecs(&self) -> Option<Vec<String>> {
        let v = self.attrs.quoted("CODECS").ok().flatten()?;
        Some(v.split(',').map(|c| c.trim().to_string()).collect())
    }
}

#[derive(Debug, Clone)]
pub struct MasterPlaylist {
    pub version: Option<u32>,
    pub independent_segments: bool,
    pub variants: Vec<Variant>,
    /// `#EXT-X-MEDIA` attribute lists (alternative renditions).
    pub media: Vec<Attrs>,
    pub other_tags: Vec<String>,
}

/// `#EXT-X-MAP`.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub uri: String,
    pub byterange: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number: `EXT-X-MEDIA-SEQUENCE` + index in the playlist.
    pub msn: u64,
    /// Discontinuity sequence number: `EXT-X-DISCONTINUITY-SEQUENCE` + the number of
    /// `EXT-X-DISCONTINUITY` tags up to and including this segment.
    pub dsn: u64,
    pub uri: String,
    pub duration: f64,
    pub title: String,
    /// An `EXT-X-DISCONTINUITY` tag precedes this segment.
    pub discontinuity: bool,
    /// The `EXT-X-MAP` that applies to this segment (the last one before it).
    pub map: Option<Map>,
    /// An `EXT-X-MAP` tag appears between the previous segment and this one.
    pub map_tag_here: bool,
    /// The `EXT-X-PROGRAM-DATE-TIME` written right before this segment, as written.
    pub program_date_time: Option<String>,
    /// The same in milliseconds since the Unix epoch.
    pub pdt_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct MediaPlaylist {
    pub version: Option<u32>,
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE` as written (`None`: absent, which means 0).
    pub media_sequence_tag: Option<u64>,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` as written (`None`: absent, which means 0).
    pub discontinuity_sequence_tag: Option<u64>,
    pub playlist_type: Option<String>,
    pub independent_segments: bool,
    pub endlist: bool,
    pub segments: Vec<Segment>,
    pub other_tags: Vec<String>,
}

impl MediaPlaylist {
    pub fn media_sequence(&self) -> u64 {
        self.media_sequence_tag.unwrap_or(0)
    }
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence_tag.unwrap_or(0)
    }
    /// The media sequence number the next segment will get.
    pub fn next_msn(&self) -> u64 {
        self.media_sequence() + self.segments.len() as u64
    }
    pub fn total_duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
    pub fn segment_by_msn(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().find(|s| s.msn == msn)
    }
    pub fn has_discontinuity(&self) -> bool {
        self.segments.iter().any(|s| s.discontinuity)
    }
    /// The distinct init segments, in order of appearance.
    pub fn map_uris(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in &self.segments {
            if let Some(m) = &s.map {
                if v.last() != Some(&m.uri) {
                    v.push(m.uri.clone());
                }
            }
        }
        v
    }
}

/// Either kind of playlist.
#[derive(Debug, Clone)]
pub enum Playlist {
    Master(MasterPlaylist),
    Media(MediaPlaylist),
}

#[derive(Debug)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "playlist: {}", self.msg)
        } else {
            write!(f, "playlist line {}: {}", self.line, self.msg)
        }
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        msg: msg.into(),
    })
}

/// The lines of a playlist, 1-based line numbers, with line endings (LF or CRLF) removed.
/// Checks `#EXTM3U` on the first line and UTF-8 hygiene.
fn lines(text: &str) -> Result<Vec<(usize, &str)>, ParseError> {
    if text.starts_with('\u{feff}') {
        return err(
            1,
            "byte order mark before #EXTM3U (RFC 8216 §4.1 forbids it)",
        );
    }
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.contains('\r') {
            return err(i + 1, "stray carriage return");
        }
        if l.chars().any(|c| c.is_control() && c != '\t') {
            return err(i + 1, "control character in line");
        }
        out.push((i + 1, l));
    }
    match out.first() {
        Some((_, "#EXTM3U")) => {}
        _ => return err(1, "first line must be exactly #EXTM3U"),
    }
    Ok(out)
}

fn tag_split(l: &str) -> (&str, Option<&str>) {
    match l.split_once(':') {
        Some((t, v)) => (t, Some(v)),
        None => (l, None),
    }
}

fn parse_u64(line: usize, tag: &str, v: Option<&str>) -> Result<u64, ParseError> {
    let Some(v) = v else {
        return err(line, format!("{tag} needs a value"));
    };
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return err(line, format!("{tag}:{v}: not a decimal integer"));
    }
    v.parse().map_err(|_| ParseError {
        line,
        msg: format!("{tag}:{v}: out of range"),
    })
}

const MEDIA_ONLY: &[&str] = &[
    "#EXTINF",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-BYTERANGE",
    "#EXT-X-KEY",
    "#EXT-X-I-FRAMES-ONLY",
];
const MASTER_ONLY: &[&str] = &[
    "#EXT-X-STREAM-INF",
    "#EXT-X-MEDIA",
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-SESSION-DATA",
    "#EXT-X-SESSION-KEY",
];

pub fn parse(text: &str) -> Result<Playlist, ParseError> {
    let is_master = text
        .lines()
        .any(|l| MASTER_ONLY.contains(&tag_split(l.trim_end_matches('\r')).0));
    if is_master {
        parse_master(text).map(Playlist::Master)
    } else {
        parse_media(text).map(Playlist::Media)
    }
}

pub fn parse_master(text: &str) -> Result<MasterPlaylist, ParseError> {
    let mut pl = MasterPlaylist {
        version: None,
        independent_segments: false,
        variants: Vec::new(),
        media: Vec::new(),
        other_tags: Vec::new(),
    };
    let mut pending: Option<(usize, Attrs)> = None;
    for (n, l) in lines(text)?.into_iter().skip(1) {
        if l.trim().is_empty() {
            continue;
        }
        if l.starts_with("#EXT") {
            if pending.is_some() {
                return err(n, "a tag between #EXT-X-STREAM-INF and its URI");
            }
            let (tag, val) = tag_split(l);
            match tag {
                "#EXTM3U" => return err(n, "#EXTM3U twice"),
                "#EXT-X-VERSION" => {
                    if pl.version.is_some() {
                        return err(n, "EXT-X-VERSION twice");
                    }
                    pl.version = Some(parse_u64(n, tag, val)? as u32);
                }
                "#EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
                "#EXT-X-STREAM-INF" => {
                    let attrs = Attrs::parse(val.unwrap_or(""))
                        .map_err(|e| ParseError { line: n, msg: e })?;
                    match attrs
                        .plain("BANDWIDTH")
                        .map_err(|e| ParseError { line: n, msg: e })?
                    {
                        Some(b) if b.bytes().all(|c| c.is_ascii_digit()) => {}
                        Some(b) => return err(n, format!("BANDWIDTH={b} is not an integer")),
                        None => return err(n, "EXT-X-STREAM-INF without BANDWIDTH (required)"),
                    }
                    for q in ["CODECS", "AUDIO", "VIDEO", "SUBTITLES"] {
                        attrs
                            .quoted(q)
                            .map_err(|e| ParseError { line: n, msg: e })?;
                    }
                    for p in ["RESOLUTION", "FRAME-RATE", "AVERAGE-BANDWIDTH"] {
                        attrs.plain(p).map_err(|e| ParseError { line: n, msg: e })?;
                    }
                    if let Some(r) = attrs.plain("RESOLUTION").unwrap() {
                        let ok = r
                            .split_once('x')
                            .map(|(w, h)| w.parse::<u32>().is_ok() && h.parse::<u32>().is_ok())
                            .unwrap_or(false);
                        if !ok {
                            return err(n, format!("RESOLUTION={r} is not WxH"));
                        }
                    }
                    if let Some(f) = attrs.plain("FRAME-RATE").unwrap() {
                        if f.parse::<f64>().is_err() {
                            return err(n, format!("FRAME-RATE={f} is not a decimal number"));
                        }
                    }
                    pending = Some((n, attrs));
                }
                "#EXT-X-MEDIA" => {
                    let attrs = Attrs::parse(val.unwrap_or(""))
                        .map_err(|e| ParseError { line: n, msg: e })?;
                    pl.media.push(attrs);
                }
                t if MEDIA_ONLY.contains(&t) => {
                    return err(n, format!("media playlist tag {t} in a master playlist"))
                }
                _ => pl.other_tags.push(l.to_string()),
            }
        } else if l.starts_with('#') {
            // comment
        } else {
            let Some((_, attrs)) = pending.take() else {
                return err(n, format!("URI {l:?} without #EXT-X-STREAM-INF"));
            };
            pl.variants.push(Variant {
                attrs,
                uri: l.trim().to_string(),
            });
        }
    }
    if let Some((n, _)) = pending {
        return err(n, "#EXT-X-STREAM-INF without a URI line after it");
    }
    if pl.variants.is_empty() {
        return err(0, "master playlist without any #EXT-X-STREAM-INF");
    }
    Ok(pl)
}

pub fn parse_media(text: &str) -> Result<MediaPlaylist, ParseError> {
    let mut pl = MediaPlaylist {
        version: None,
        target_duration: 0,
        media_sequence_tag: None,
        discontinuity_sequence_tag: None,
        playlist_type: None,
        independent_segments: false,
        endlist: false,
        segments: Vec::new(),
        other_tags: Vec::new(),
    };
    let mut target: Option<u64> = None;
    // State for the next segment.
    let mut inf: Option<(usize, f64, String)> = None;
    let mut disc = false;
    let mut map_here = false;
    let mut pdt: Option<(String, i64)> = None;
    let mut cur_map: Option<Map> = None;
    let mut dsn_offset = 0u64;
    let mut endlist_line = None;
    for (n, l) in lines(text)?.into_iter().skip(1) {
        if l.trim().is_empty() {
            continue;
        }
        if let Some(el) = endlist_line {
            if !l.starts_with('#') {
                return err(n, format!("segment after #EXT-X-ENDLIST (line {el})"));
            }
        }
        if l.starts_with("#EXT") {
            let (tag, val) = tag_split(l);
            let before_segments = pl.segments.is_empty() && inf.is_none();
            match tag {
                "#EXTM3U" => return err(n, "#EXTM3U twice"),
                "#EXT-X-VERSION" => {
                    if pl.version.is_some() {
                        return err(n, "EXT-X-VERSION twice");
                    }
                    pl.version = Some(parse_u64(n, tag, val)? as u32);
                }
                "#EXT-X-TARGETDURATION" => {
                    if target.is_some() {
                        return err(n, "EXT-X-TARGETDURATION twice");
                    }
                    target = Some(parse_u64(n, tag, val)?);
                }
                "#EXT-X-MEDIA-SEQUENCE" => {
                    if pl.media_sequence_tag.is_some() {
                        return err(n, "EXT-X-MEDIA-SEQUENCE twice");
                    }
                    if !before_segments {
                        return err(n, "EXT-X-MEDIA-SEQUENCE must come before the first segment");
                    }
                    pl.media_sequence_tag = Some(parse_u64(n, tag, val)?);
                }
                "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                    if pl.discontinuity_sequence_tag.is_some() {
                        return err(n, "EXT-X-DISCONTINUITY-SEQUENCE twice");
                    }
                    if !before_segments || disc {
                        return err(
                            n,
                            "EXT-X-DISCONTINUITY-SEQUENCE must come before the first segment \
                             and before any EXT-X-DISCONTINUITY",
                        );
                    }
                    pl.discontinuity_sequence_tag = Some(parse_u64(n, tag, val)?);
                }
                "#EXT-X-PLAYLIST-TYPE" => {
                    let v = val.unwrap_or("");
                    if v != "EVENT" && v != "VOD" {
                        return err(
                            n,
                            format!("EXT-X-PLAYLIST-TYPE:{v} is neither EVENT nor VOD"),
                        );
                    }
                    pl.playlist_type = Some(v.to_string());
                }
                "#EXT-X-INDEPENDENT-SEGMENTS" => pl.independent_segments = true,
                "#EXT-X-ENDLIST" => {
                    if pl.endlist {
                        return err(n, "EXT-X-ENDLIST twice");
                    }
                    pl.endlist = true;
                    endlist_line = Some(n);
                }
                "#EXTINF" => {
                    if let Some((pn, _, _)) = inf {
                        return err(
                            n,
                            format!("#EXTINF without a URI after the #EXTINF of line {pn}"),
                        );
                    }
                    let v = val.unwrap_or("");
                    let Some((d, title)) = v.split_once(',') else {
                        return err(n, format!("#EXTINF:{v}: missing ',' after the duration"));
                    };
                    let valid = !d.is_empty()
                        && d.bytes().all(|c| c.is_ascii_digit() || c == b'.')
                        && d.bytes().filter(|&c| c == b'.').count() <= 1
                        && !d.starts_with('.')
                        && !d.ends_with('.');
                    let dur: f64 = match d.parse() {
                        Ok(x) if valid => x,
                        _ => {
                            return err(
                                n,
                                format!("#EXTINF duration {d:?} is not a decimal number"),
                            )
                        }
                    };
                    inf = Some((n, dur, title.to_string()));
                }
                "#EXT-X-DISCONTINUITY" => {
                    if val.is_some() {
                        return err(n, "EXT-X-DISCONTINUITY takes no value");
                    }
                    disc = true;
                }
                "#EXT-X-MAP" => {
                    let attrs = Attrs::parse(val.unwrap_or(""))
                        .map_err(|e| ParseError { line: n, msg: e })?;
                    let uri = match attrs
                        .quoted("URI")
                        .map_err(|e| ParseError { line: n, msg: e })?
                    {
                        Some(u) if !u.is_empty() => u.to_string(),
                        _ => return err(n, "EXT-X-MAP without URI"),
                    };
                    let byterange = attrs
                        .quoted("BYTERANGE")
                        .map_err(|e| ParseError { line: n, msg: e })?
                        .map(str::to_string);
                    cur_map = Some(Map { uri, byterange });
                    map_here = true;
                }
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    let v = val.unwrap_or("");
                    // RFC 8216 uses ISO 8601; accept the +hhmm offset form too.
                    let ms = parse_date_time(v, false).map_err(|e| ParseError {
                        line: n,
                        msg: format!("EXT-X-PROGRAM-DATE-TIME: {e}"),
                    })?;
                    pdt = Some((v.to_string(), ms));
                }
                t if MASTER_ONLY.contains(&t) => {
                    return err(n, format!("master playlist tag {t} in a media playlist"))
                }
                _ => pl.other_tags.push(l.to_string()),
            }
        } else if l.starts_with('#') {
            // comment
        } else {
            let Some((_, duration, title)) = inf.take() else {
                return err(n, format!("URI {l:?} without #EXTINF before it"));
            };
            if l.trim() != l {
                return err(n, format!("URI line {l:?} has surrounding whitespace"));
            }
            if disc {
                dsn_offset += 1;
            }
            let idx = pl.segments.len() as u64;
            pl.segments.push(Segment {
                msn: idx, // fixed up below, once EXT-X-MEDIA-SEQUENCE is known
                dsn: dsn_offset,
                uri: l.to_string(),
                duration,
                title,
                discontinuity: disc,
                map: cur_map.clone(),
                map_tag_here: map_here,
                program_date_time: pdt.as_ref().map(|p| p.0.clone()),
                pdt_ms: pdt.as_ref().map(|p| p.1),
            });
            disc = false;
            map_here = false;
            pdt = None;
        }
    }
    if let Some((n, _, _)) = inf {
        return err(n, "#EXTINF without a URI line after it");
    }
    if disc {
        return err(0, "EXT-X-DISCONTINUITY after the last segment");
    }
    let Some(t) = target else {
        return err(
            0,
            "no EXT-X-TARGETDURATION (required in every media playlist)",
        );
    };
    pl.target_duration = t;
    let ms = pl.media_sequence();
    let ds = pl.discontinuity_sequence();
    for s in &mut pl.segments {
        s.msn += ms;
        s.dsn += ds;
    }
    Ok(pl)
}

/// Parses an ISO 8601 / RFC 3339 date-time (`2024-05-01T12:00:00.123Z`,
/// `...+02:00`) into milliseconds since the Unix epoch. With `strict_rfc3339`, the offset must be
/// `Z` or `±hh:mm`; otherwise `±hhmm` and `±hh` are accepted too.
pub fn parse_date_time(s: &str, strict_rfc3339: bool) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 date-time");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = s.get(r).ok_or_else(bad)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let digits = &s[start..i];
        let mut ms_digits: String = digits.chars().take(3).collect();
        while ms_digits.len() < 3 {
            ms_digits.push('0');
        }
        frac_ms = ms_digits.parse::<i64>().map_err(|_| bad())?;
    }
    let rest = &s[i..];
    let offset_min: i64 = if rest == "Z" || rest == "z" {
        0
    } else if rest.starts_with('+') || rest.starts_with('-') {
        let sign = if rest.starts_with('-') { -1 } else { 1 };
        let r = &rest[1..];
        let (hh, mm) = if r.len() == 5 && r.as_bytes()[2] == b':' {
            (&r[0..2], &r[3..5])
        } else if !strict_rfc3339 && r.len() == 4 {
            (&r[0..2], &r[2..4])
        } else if !strict_rfc3339 && r.len() == 2 {
            (r, "00")
        } else {
            return Err(bad());
        };
        let hh: i64 = hh.parse().map_err(|_| bad())?;
        let mm: i64 = mm.parse().map_err(|_| bad())?;
        if hh > 23 || mm > 59 {
            return Err(bad());
        }
        sign * (hh * 60 + mm)
    } else {
        return Err(bad());
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + frac_ms)
}

/// Resolves a URI reference found in a playlist against the playlist's URL (RFC 3986 §5.2,
/// enough of it for HTTP URLs: absolute, network-path, absolute-path and relative references,
/// dot segments, query strings).
pub fn resolve(base: &str, reference: &str) -> String {
    fn split_scheme(u: &str) -> Option<(&str, &str)> {
        let colon = u.find(':')?;
        let scheme = &u[..colon];
        if !scheme.is_empty()
            && scheme.chars().next().unwrap().is_ascii_alphabetic()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            Some((scheme, &u[colon + 1..]))
        } else {
            None
        }
    }
    // Strip a fragment from the reference; it never goes on the wire.
    let reference = reference.split('#').next().unwrap_or("");
    if let Some((scheme, rest)) = split_scheme(reference) {
        return format!("{scheme}:{}", normalize_authority_path(rest));
    }
    let (scheme, base_rest) = split_scheme(base).expect("base URL must be absolute");
    let base_rest = base_rest.split('#').next().unwrap_or("");
    // base_rest = //authority/path?query
    let after_slashes = base_rest
        .strip_prefix("//")
        .expect("base URL must have an authority");
    let auth_end = after_slashes
        .find(['/', '?'])
        .unwrap_or(after_slashes.len());
    let authority = &after_slashes[..auth_end];
    let path_query = &after_slashes[auth_end..];
    let (base_path, base_query) = match path_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_query, None),
    };
    if let Some(rest) = reference.strip_prefix("//") {
        return format!(
            "{scheme}:{}",
            normalize_authority_path(&format!("//{rest}"))
        );
    }
    let (ref_path, ref_query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let (path, query) = if ref_path.is_empty() {
        (base_path.to_string(), ref_query.or(base_query))
    } else if ref_path.starts_with('/') {
        (remove_dot_segments(ref_path), ref_query)
    } else {
        let merged = if base_path.is_empty() {
            format!("/{ref_path}")
        } else {
            let dir = &base_path[..base_path.rfind('/').map(|i| i + 1).unwrap_or(0)];
            format!("{dir}{ref_path}")
        };
        (remove_dot_segments(&merged), ref_query)
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    match query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    }
}

fn normalize_authority_path(rest: &str) -> String {
    // rest = //authority/path?query
    let Some(after) = rest.strip_prefix("//") else {
        return rest.to_string();
    };
    let auth_end = after.find(['/', '?']).unwrap_or(after.len());
    let (auth, pq) = after.split_at(auth_end);
    let (p, q) = match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq, None),
    };
    let p = remove_dot_segments(p);
    match q {
        Some(q) => format!("//{auth}{p}?{q}"),
        None => format!("//{auth}{p}"),
    }
}

/// RFC 3986 §5.2.4.
pub fn remove_dot_segments(path: &str) -> String {
    let mut input = path.to_string();
    let mut output = String::new();
    while !input.is_empty() {
        if input.starts_with("../") {
            input.drain(..3);
        } else if input.starts_with("./") {
            input.drain(..2);
        } else if input.starts_with("/./") {
            input.replace_range(..3, "/");
        } else if input == "/." {
            input = "/".to_string();
        } else if input.starts_with("/../") {
            input.replace_range(..4, "/");
            truncate_last_segment(&mut output);
        } else if input == "/.." {
            input = "/".to_string();
            truncate_last_segment(&mut output);
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..]
                .find('/')
                .map(|i| i + start)
                .unwrap_or(input.len());
            output.push_str(&input[..end]);
            input.drain(..end);
        }
    }
    output
}

fn truncate_last_segment(output: &mut String) {
    match output.rfind('/') {
        Some(i) => output.truncate(i),
        None => output.clear(),
    }
}
