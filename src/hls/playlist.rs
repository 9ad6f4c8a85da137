//! HLS playlists (RFC 8216): the rolling live media playlist of one variant and the master
//! playlist that lists the variants. Pure text rendering: the store decides when to re-render.
//!
//! Media playlist tags, in the order written:
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION:7                       §4.3.1.2; 6+ is needed for EXT-X-MAP without I-frames-only
//! #EXT-X-TARGETDURATION:2                §4.3.3.1; never below a rounded EXTINF, never shrinks
//! #EXT-X-MEDIA-SEQUENCE:120              §4.3.3.2; sequence number of the first listed segment
//! #EXT-X-DISCONTINUITY-SEQUENCE:1        §4.3.3.3; discontinuities that left the window
//! #EXT-X-INDEPENDENT-SEGMENTS            §4.3.5.1; every segment starts with a keyframe
//! #EXT-X-MAP:URI="init-…mp4"             §4.3.2.5; again after each change of init segment
//! #EXT-X-DISCONTINUITY                   §4.3.2.3; before the first segment of a new session
//! #EXT-X-PROGRAM-DATE-TIME:2026-…Z        §4.3.2.6; wall-clock time of the segment's first sample
//! #EXTINF:2.000,                         §4.3.2.1
//! seg-…-120.m4s
//! #EXT-X-ENDLIST                         §4.3.3.4; after a clean shutdown only
//! ```

use std::collections::VecDeque;
use std::fmt::Write;
use std::time::SystemTime;

/// One segment as listed in a media playlist.
#[derive(Debug, Clone)]
pub struct PlaylistEntry {
    pub sequence: u64,
    pub uri: String,
    pub duration_seconds: f64,
    /// The init segment (`EXT-X-MAP`) this segment needs.
    pub map_uri: String,
    /// The timeline restarts at this segment (new publish session or new codec parameters).
    pub discontinuity: bool,
    pub program_date_time: SystemTime,
}

/// The rolling window of one variant.
#[derive(Debug)]
pub struct MediaPlaylist {
    window: usize,
    segments: VecDeque<PlaylistEntry>,
    /// Segments that left the window.
    removed: u64,
    /// Discontinuity tags that left the window (§4.3.3.3).
    discontinuity_sequence: u64,
    target_duration: u64,
    ended: bool,
}

impl MediaPlaylist {
    /// `window` segments are listed; `min_target_duration` is the configured segment length.
    pub fn new(window: usize, min_target_duration: u64) -> Self {
        Self {
            window: window.max(1),
            segments: VecDeque::new(),
            removed: 0,
            discontinuity_sequence: 0,
            target_duration: min_target_duration.max(1),
            ended: false,
        }
    }

    /// The sequence number the next pushed segment must carry.
    pub fn next_sequence(&self) -> u64 {
        self.removed + self.segments.len() as u64
    }

    /// Append a segment; returns the segments that left the window. A playlist that had ended
    /// (EXT-X-ENDLIST) is live again: a new session continues it.
    ///
    /// Returns whether the target duration had to grow: the encoder's keyframe interval is
    /// longer than the configured segment length. RFC 8216 §6.2.1 forbids changing it, so it
    /// is sized up front from the configuration; growing is the lesser evil, and is reported.
    pub fn push(&mut self, entry: PlaylistEntry) -> (Vec<PlaylistEntry>, bool) {
        debug_assert_eq!(entry.sequence, self.next_sequence());
        self.ended = false;
        let rounded = entry.duration_seconds.round() as u64;
        let grew = rounded > self.target_duration;
        self.target_duration = self.target_duration.max(rounded);
        self.segments.push_back(entry);
        let mut gone = Vec::new();
        while self.segments.len() > self.window {
            if let Some(old) = self.segments.pop_front() {
                self.removed += 1;
                // §6.2.2: the discontinuity sequence counts the tags that left the playlist.
                if old.discontinuity {
                    self.discontinuity_sequence += 1;
                }
                gone.push(old);
            }
        }
        (gone, grew)
    }

    /// Mark the end of the stream (§4.3.3.4): players stop reloading.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn segments(&self) -> impl Iterator<Item = &PlaylistEntry> {
        self.segments.iter()
    }

    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(256 + 160 * self.segments.len());
        out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.removed);
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        let mut current_map: Option<&str> = None;
        for segment in &self.segments {
            // Kept while listed, even on the first segment; counted in the discontinuity
            // sequence only once it leaves the window (§6.2.2).
            if segment.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if current_map != Some(segment.map_uri.as_str()) {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", segment.map_uri);
                current_map = Some(&segment.map_uri);
            }
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                humantime::format_rfc3339_millis(segment.program_date_time)
            );
            let _ = writeln!(
                out,
                "#EXTINF:{:.3},\n{}",
                segment.duration_seconds, segment.uri
            );
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// One rendition as the master playlist announces it (§4.3.4.2 EXT-X-STREAM-INF).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantAttributes {
    /// Media playlist URI, relative to the master playlist.
    pub uri: String,
    /// Peak bits per second of any segment (§4.3.4.2: "the peak segment bit rate").
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// The master playlist, variants listed in the order given (highest first).
pub fn render_master(variants: &[VariantAttributes]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for variant in variants {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{}",
            variant.bandwidth, variant.average_bandwidth, variant.width, variant.height
        );
        if let Some(rate) = variant.frame_rate {
            let _ = write!(out, ",FRAME-RATE={rate:.3}");
        }
        let _ = writeln!(out, ",CODECS=\"{}\"\n{}", variant.codecs, variant.uri);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(sequence: u64, duration: f64, discontinuity: bool, map: &str) -> PlaylistEntry {
        PlaylistEntry {
            sequence,
            uri: format!("seg-{sequence}.m4s"),
            duration_seconds: duration,
            map_uri: map.into(),
            discontinuity,
            program_date_time: UNIX_EPOCH
                + Duration::from_millis(1_700_000_000_000 + sequence * 2000),
        }
    }

    #[test]
    fn rolling_window_with_discontinuity() {
        let mut playlist = MediaPlaylist::new(3, 2);
        for sequence in 0..2 {
            playlist.push(entry(sequence, 2.0, false, "init-0.mp4"));
        }
        // The publisher reconnects: a new init and a discontinuity.
        playlist.push(entry(2, 2.0, true, "init-1.mp4"));
        assert_eq!(
            playlist.render(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init-0.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.000,\nseg-0.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z\n#EXTINF:2.000,\nseg-1.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z\n#EXTINF:2.000,\nseg-2.m4s\n"
        );
        // Two more: segments 0 and 1 leave; the discontinuity is still listed.
        playlist.push(entry(3, 2.0, false, "init-1.mp4"));
        let (gone, _) = playlist.push(entry(4, 2.0, false, "init-1.mp4"));
        assert_eq!(gone.len(), 1);
        let text = playlist.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{text}");
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"), "{text}");
        assert!(
            text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\""),
            "{text}"
        );
        // The discontinuity leaves the window: counted in the discontinuity sequence.
        playlist.push(entry(5, 2.0, false, "init-1.mp4"));
        let text = playlist.render();
        assert!(
            text.contains("#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
            "{text}"
        );
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
        assert!(text.starts_with("#EXTM3U"));
        assert_eq!(text.matches("#EXT-X-MAP").count(), 1, "{text}");
    }

    #[test]
    fn target_duration_covers_every_rounded_extinf_and_never_shrinks() {
        let mut playlist = MediaPlaylist::new(3, 2);
        assert!(!playlist.push(entry(0, 2.49, false, "i")).1);
        assert_eq!(playlist.target_duration(), 2);
        assert!(playlist.push(entry(1, 4.5, false, "i")).1);
        assert_eq!(playlist.target_duration(), 5);
        for sequence in 2..6 {
            playlist.push(entry(sequence, 2.0, false, "i"));
        }
        assert_eq!(playlist.target_duration(), 5);
    }

    #[test]
    fn endlist_after_end_and_gone_when_live_again() {
        let mut playlist = MediaPlaylist::new(3, 2);
        playlist.push(entry(0, 2.0, false, "i"));
        playlist.end();
        assert!(playlist.render().ends_with("seg-0.m4s\n#EXT-X-ENDLIST\n"));
        playlist.push(entry(1, 2.0, true, "j"));
        assert!(!playlist.render().contains("ENDLIST"));
    }

    #[test]
    fn master_lists_variant_attributes() {
        let text = render_master(&[VariantAttributes {
            uri: "0/stream.m3u8".into(),
            bandwidth: 3_200_000,
            average_bandwidth: 2_900_000,
            width: 1280,
            height: 720,
            frame_rate: Some(30.0),
            codecs: "avc1.64001f,mp4a.40.2".into(),
        }]);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3200000,AVERAGE-BANDWIDTH=2900000,RESOLUTION=1280x720,\
             FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n0/stream.m3u8\n"
        );
    }
}
