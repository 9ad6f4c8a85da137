//! The segment store: what viewers fetch. Holds, per variant, the rendered media playlist, its
//! init segments and its newest segments in memory (cheap `Bytes` clones for the web server),
//! plus the rendered master playlist. The pipeline thread writes; HTTP handlers read.
//!
//! Files are named as [`crate::hls::files`] says: with a run id (the server's start time), so
//! that a restarted server never reuses a segment URL that a browser or CDN may have cached as
//! immutable.
//!
//! With an event channel ([`HlsStore::with_events`], the storage uploader listens), every
//! change is also reported on it as a [`StoreEvent`] ([`events`]), without waiting.

pub mod events;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

pub use events::StoreEvent;

use crate::hls::files::{init_name, is_init, segment_name, MEDIA_PLAYLIST_NAME};
use crate::hls::playlist::{render_master, MediaPlaylist, PlaylistEntry, VariantAttributes};
use crate::hls::{InitSegment, MediaSegment, MuxerOutput};

pub struct HlsStore {
    run_id: String,
    window: usize,
    segment_seconds: u32,
    state: RwLock<StoreState>,
    /// Where every change is reported (the storage uploader), if anywhere.
    events: Option<UnboundedSender<StoreEvent>>,
}

#[derive(Default)]
struct StoreState {
    variants: BTreeMap<String, VariantState>,
    master: Option<Bytes>,
}

struct VariantState {
    playlist: MediaPlaylist,
    rendered: Bytes,
    /// Init and media segments by file name.
    files: HashMap<String, Bytes>,
    /// Segments that left the window, still served for one more window (RFC 8216 §6.2.2:
    /// a client may have fetched the playlist just before they left): (segment, its init).
    retired: VecDeque<(String, String)>,
    current_init: Option<(u32, String)>,
    attributes: Option<VariantAttributes>,
    /// Bits per second of each listed segment, for BANDWIDTH / AVERAGE-BANDWIDTH.
    bitrates: VecDeque<u64>,
}

/// What `/api/status` shows about a variant.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantSummary {
    /// The variant's id (its URL path segment); `/api/status` shows it once, from the variant.
    #[serde(skip)]
    pub id: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
    pub codecs: String,
    pub bitrate_kbps: u64,
    pub segments: usize,
}

impl HlsStore {
    pub fn new(window: usize, segment_seconds: u32) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            run_id: radix36(started),
            window,
            segment_seconds,
            state: RwLock::default(),
            events: None,
        }
    }

    /// Reports every change on `events` from now on.
    pub fn with_events(mut self, events: UnboundedSender<StoreEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Record what the muxer of `variant` produced.
    pub fn apply(&self, variant: &str, output: MuxerOutput) {
        let mut state = self.write();
        let variant_state =
            state
                .variants
                .entry(variant.to_owned())
                .or_insert_with(|| VariantState {
                    playlist: MediaPlaylist::new(self.window, u64::from(self.segment_seconds)),
                    rendered: Bytes::new(),
                    files: HashMap::new(),
                    retired: VecDeque::new(),
                    current_init: None,
                    attributes: None,
                    bitrates: VecDeque::new(),
                });
        match output {
            MuxerOutput::Init(init) => {
                let data = init.data.clone();
                let name = self.add_init(variant, variant_state, init);
                self.report(|| StoreEvent::File {
                    variant: variant.to_owned(),
                    name,
                    data,
                    at: Instant::now(),
                });
            }
            MuxerOutput::Segment(segment) => {
                let data = segment.data.clone();
                let Some((name, removed)) = self.add_segment(variant, variant_state, segment)
                else {
                    return;
                };
                self.report(|| StoreEvent::File {
                    variant: variant.to_owned(),
                    name,
                    data,
                    at: Instant::now(),
                });
                self.report(|| playlist_event(variant, variant_state));
                let master = render_master_playlist(&state.variants);
                if master.is_some() && master != state.master {
                    self.report(|| StoreEvent::Master {
                        text: master.clone().unwrap_or_default(),
                        variants: listed_variants(&state.variants),
                    });
                }
                state.master = master;
                if !removed.is_empty() {
                    self.report(|| StoreEvent::Removed {
                        variant: variant.to_owned(),
                        names: removed,
                    });
                }
            }
        }
    }

    /// Reports a change, if anyone listens (`event` is only built then).
    fn report(&self, event: impl FnOnce() -> StoreEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event());
        }
    }

    /// `variant` is not part of this session (the ladder skipped it): the master playlist stops
    /// listing it and its playlist from an earlier session ends (EXT-X-ENDLIST), so no player
    /// is sent to old segments. It is listed again with its next segment.
    pub fn withdraw(&self, variant: &str) {
        let mut state = self.write();
        let Some(variant_state) = state.variants.get_mut(variant) else {
            return;
        };
        if variant_state.attributes.take().is_none() {
            return;
        }
        variant_state.bitrates.clear();
        variant_state.playlist.end();
        variant_state.rendered = Bytes::from(variant_state.playlist.render());
        self.report(|| playlist_event(variant, variant_state));
        let master = render_master_playlist(&state.variants);
        if master != state.master {
            if let Some(text) = &master {
                self.report(|| StoreEvent::Master {
                    text: text.clone(),
                    variants: listed_variants(&state.variants),
                });
            }
        }
        state.master = master;
    }

    /// A clean shutdown: every playlist gets EXT-X-ENDLIST.
    pub fn end_all(&self) {
        let mut state = self.write();
        for (name, variant) in state.variants.iter_mut() {
            variant.playlist.end();
            variant.rendered = Bytes::from(variant.playlist.render());
            self.report(|| playlist_event(name, variant));
        }
    }

    /// The master playlist; `None` until a first segment exists.
    pub fn master_playlist(&self) -> Option<Bytes> {
        self.read().master.clone()
    }

    pub fn media_playlist(&self, variant: &str) -> Option<Bytes> {
        self.read()
            .variants
            .get(variant)
            .filter(|v| !v.rendered.is_empty())
            .map(|v| v.rendered.clone())
    }

    /// An init or media segment by file name.
    pub fn file(&self, variant: &str, name: &str) -> Option<Bytes> {
        self.read().variants.get(variant)?.files.get(name).cloned()
    }

    pub fn summaries(&self) -> Vec<VariantSummary> {
        self.read()
            .variants
            .iter()
            .filter_map(|(name, variant)| {
                let attributes = variant.attributes.as_ref()?;
                Some(VariantSummary {
                    id: name.clone(),
                    width: attributes.width,
                    height: attributes.height,
                    frame_rate: attributes.frame_rate,
                    codecs: attributes.codecs.clone(),
                    bitrate_kbps: attributes.average_bandwidth / 1000,
                    segments: variant.playlist.segments().count(),
                })
            })
            .collect()
    }

    /// Returns the init segment's file name.
    fn add_init(&self, variant: &str, state: &mut VariantState, init: InitSegment) -> String {
        let name = init_name(&self.run_id, init.generation);
        let video = &init.tracks.video;
        let mut codecs = video.codecs_string();
        if let Some(audio) = &init.tracks.audio {
            codecs = format!("{codecs},{}", audio.codecs_string());
        }
        let previous = state.attributes.take();
        state.attributes = Some(VariantAttributes {
            uri: format!("{variant}/{MEDIA_PLAYLIST_NAME}"),
            bandwidth: previous.as_ref().map_or(0, |p| p.bandwidth),
            average_bandwidth: previous.as_ref().map_or(0, |p| p.average_bandwidth),
            width: video.sps.width,
            height: video.sps.height,
            // Measured on the first segment: an SPS's timing fields describe the encoder's time
            // base (x264 fed millisecond timestamps says 500), not the frame rate.
            frame_rate: None,
            codecs,
        });
        state.files.insert(name.clone(), init.data);
        state.current_init = Some((init.generation, name.clone()));
        name
    }

    /// Returns the segment's file name and the files that are gone now.
    fn add_segment(
        &self,
        variant: &str,
        state: &mut VariantState,
        segment: MediaSegment,
    ) -> Option<(String, Vec<String>)> {
        let Some((generation, map_uri)) = state.current_init.clone() else {
            warn!(variant, "segment without an init segment dropped");
            return None;
        };
        debug_assert_eq!(generation, segment.init_generation);
        let sequence = state.playlist.next_sequence();
        let uri = segment_name(&self.run_id, sequence);
        let seconds = segment.duration.as_secs_f64().max(0.001);
        state
            .bitrates
            .push_back((segment.data.len() as f64 * 8.0 / seconds) as u64);
        if let Some(attributes) = &mut state.attributes {
            if attributes.frame_rate.is_none() && segment.video_frames > 1 {
                attributes.frame_rate =
                    Some((f64::from(segment.video_frames) / seconds * 1000.0).round() / 1000.0);
            }
        }
        state.files.insert(uri.clone(), segment.data);
        let (gone, grew) = state.playlist.push(PlaylistEntry {
            sequence,
            uri: uri.clone(),
            duration_seconds: seconds,
            map_uri,
            discontinuity: segment.discontinuity,
            program_date_time: segment.program_date_time,
        });
        if grew {
            warn!(
                variant,
                seconds = format!("{seconds:.2}"),
                target = self.segment_seconds,
                "a segment is longer than segment_seconds: set the encoder's keyframe interval to {} s",
                self.segment_seconds
            );
        }
        for entry in gone {
            state.bitrates.pop_front();
            state.retired.push_back((entry.uri, entry.map_uri));
        }
        let mut removed = Vec::new();
        while state.retired.len() > self.window {
            if let Some((name, _)) = state.retired.pop_front() {
                state.files.remove(&name);
                removed.push(name);
            }
        }
        removed.extend(Self::drop_unused_inits(state));
        if let Some(attributes) = &mut state.attributes {
            attributes.bandwidth = state.bitrates.iter().copied().max().unwrap_or(0);
            attributes.average_bandwidth =
                state.bitrates.iter().sum::<u64>() / state.bitrates.len().max(1) as u64;
        }
        state.rendered = Bytes::from(state.playlist.render());
        Some((uri, removed))
    }

    /// Init segments are kept while a listed or retired segment may need them; returns the
    /// names of those dropped.
    fn drop_unused_inits(state: &mut VariantState) -> Vec<String> {
        let needed: Vec<String> = state
            .playlist
            .segments()
            .map(|s| s.map_uri.clone())
            .chain(state.retired.iter().map(|(_, map_uri)| map_uri.clone()))
            .chain(state.current_init.as_ref().map(|(_, name)| name.clone()))
            .collect();
        let unused: Vec<String> = state
            .files
            .keys()
            .filter(|name| is_init(name) && !needed.contains(name))
            .cloned()
            .collect();
        for name in &unused {
            state.files.remove(name);
        }
        unused
    }

    fn read(&self) -> RwLockReadGuard<'_, StoreState> {
        self.state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, StoreState> {
        self.state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A variant's playlist as storage needs it: the text and every file it names.
fn playlist_event(variant: &str, state: &VariantState) -> StoreEvent {
    let mut files: Vec<String> = Vec::new();
    for entry in state.playlist.segments() {
        if !files.contains(&entry.map_uri) {
            files.push(entry.map_uri.clone());
        }
        files.push(entry.uri.clone());
    }
    StoreEvent::Playlist {
        variant: variant.to_owned(),
        text: state.rendered.clone(),
        files,
    }
}

/// The variants the master playlist lists (as [`render_master_playlist`] picks them).
fn listed_variants(variants: &BTreeMap<String, VariantState>) -> Vec<String> {
    variants
        .iter()
        .filter(|(_, v)| listed_attributes(v).is_some())
        .map(|(name, _)| name.clone())
        .collect()
}

/// A variant's attributes if the master playlist lists it (it has a measured bandwidth).
fn listed_attributes(variant: &VariantState) -> Option<&VariantAttributes> {
    variant.attributes.as_ref().filter(|a| a.bandwidth > 0)
}

fn render_master_playlist(variants: &BTreeMap<String, VariantState>) -> Option<Bytes> {
    let mut listed: Vec<VariantAttributes> = variants
        .values()
        .filter_map(listed_attributes)
        .cloned()
        .collect();
    if listed.is_empty() {
        return None;
    }
    listed.sort_by_key(|variant| std::cmp::Reverse(variant.bandwidth));
    Some(Bytes::from(render_master(&listed)))
}

fn radix36(mut value: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hls::segmenter::tests::{audio_config, video_config};
    use crate::hls::TrackConfigs;

    fn init(generation: u32) -> MuxerOutput {
        MuxerOutput::Init(InitSegment {
            generation,
            data: Bytes::from_static(b"init"),
            tracks: TrackConfigs {
                video: video_config(),
                audio: Some(audio_config()),
            },
        })
    }

    fn segment(generation: u32, discontinuity: bool, bytes: usize) -> MuxerOutput {
        MuxerOutput::Segment(MediaSegment {
            data: Bytes::from(vec![0; bytes]),
            init_generation: generation,
            discontinuity,
            start_ticks: 0,
            duration: Duration::from_secs(2),
            video_frames: 60,
            program_date_time: SystemTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn master_appears_with_the_first_segment_and_describes_the_stream() {
        let store = HlsStore::new(3, 2);
        store.apply("0", init(0));
        assert!(store.master_playlist().is_none(), "no segment yet");
        store.apply("0", segment(0, false, 500_000)); // 2 Mbit/s over 2 s
        store.apply("0", segment(0, false, 250_000));
        let master = String::from_utf8(store.master_playlist().unwrap().to_vec()).unwrap();
        assert!(
            master.contains("BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,FRAME-RATE=30.000,CODECS=\"avc1.64001f,mp4a.40.2\"\n0/stream.m3u8"),
            "{master}"
        );
        let summary = &store.summaries()[0];
        assert_eq!(
            (summary.width, summary.height, summary.frame_rate),
            (1280, 720, Some(30.0))
        );
    }

    #[test]
    fn old_segments_and_unused_inits_are_dropped() {
        let store = HlsStore::new(3, 2);
        store.apply("0", init(0));
        store.apply("0", segment(0, false, 10));
        let first_init = format!("init-{}-0.mp4", store.run_id);
        let first_segment = format!("seg-{}-0.m4s", store.run_id);
        store.apply("0", init(1));
        for _ in 0..3 {
            store.apply("0", segment(1, false, 10));
        }
        // Segment 0 left the window but is still served (retired) with its init.
        assert!(store.file("0", &first_segment).is_some());
        assert!(store.file("0", &first_init).is_some());
        for _ in 0..3 {
            store.apply("0", segment(1, false, 10));
        }
        assert!(store.file("0", &first_segment).is_none());
        assert!(store.file("0", &first_init).is_none());
        let playlist = String::from_utf8(store.media_playlist("0").unwrap().to_vec()).unwrap();
        assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{playlist}");
        for line in playlist.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                store.file("0", line).is_some(),
                "{line} is listed but not served"
            );
        }
    }

    #[test]
    fn every_change_is_reported_in_order() {
        let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
        let store = HlsStore::new(3, 2).with_events(sender);
        store.apply("0", init(0));
        for _ in 0..7 {
            store.apply("0", segment(0, false, 10));
        }
        store.end_all();
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            seen.push(match event {
                StoreEvent::File { name, .. } => format!("file {name}"),
                StoreEvent::Playlist { files, text, .. } => {
                    let listed: Vec<&str> = std::str::from_utf8(&text)
                        .unwrap()
                        .lines()
                        .filter(|l| !l.starts_with('#'))
                        .collect();
                    assert_eq!(listed, files[1..], "the files are what the text lists");
                    format!("playlist {}", files.join(" "))
                }
                StoreEvent::Master { variants, .. } => format!("master {variants:?}"),
                StoreEvent::Removed { names, .. } => format!("removed {}", names.join(" ")),
            });
        }
        let run = &store.run_id;
        let expected = [
            format!("file init-{run}-0.mp4"),
            format!("file seg-{run}-0.m4s"),
            format!("playlist init-{run}-0.mp4 seg-{run}-0.m4s"),
            r#"master ["0"]"#.to_owned(),
        ];
        assert_eq!(seen[..4], expected);
        // The 7th segment pushes the 1st out of the retired window: it is gone.
        assert!(
            seen.contains(&format!("removed seg-{run}-0.m4s")),
            "{seen:#?}"
        );
        assert!(seen
            .last()
            .unwrap()
            .starts_with(&format!("playlist init-{run}-0.mp4 seg-{run}-4.m4s")));
    }

    #[test]
    fn end_all_adds_endlist() {
        let store = HlsStore::new(3, 2);
        store.apply("0", init(0));
        store.apply("0", segment(0, false, 10));
        store.end_all();
        let playlist = store.media_playlist("0").unwrap();
        assert!(playlist.ends_with(b"#EXT-X-ENDLIST\n"));
    }
}
