//! The sink's bookkeeping, without I/O: from what the store reports ([`StoreEvent`]) and what
//! the jobs report back, which puts and deletes to run.
//!
//! - Every new file is put at once (the uploader runs several at a time).
//! - A media playlist is put only when every file it lists is stored, and at most one put of
//!   each playlist runs at a time; a newer playlist replaces one still waiting, so a slow sink
//!   skips versions instead of queueing them. The master playlist waits for every variant
//!   playlist it lists. So a player never reads a playlist that names a missing file.
//! - Playlists are rewritten to the stored files' public URLs (absent: the relative names stay).
//! - A file that leaves the window is deleted from the sink, and its put, if still trying, stops;
//!   while the sink's playlist (stored or being put) still lists it, the delete waits for one
//!   that does not (a slow sink's playlist may lag behind selfcast's).
//! - After an outage, [`Plan::resync`] puts the whole window again: what the sink held may be
//!   gone (a recreated bucket), and the puts are cheap next to the stream itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::hls::files::{
    cache_control, content_type, is_init, MASTER_PLAYLIST_NAME, MEDIA_PLAYLIST_NAME,
};
use crate::store::StoreEvent;

/// Something to write to the sink.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: String,
    pub body: Bytes,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

impl Object {
    fn new(key: String, body: Bytes) -> Self {
        Object {
            content_type: content_type(&key),
            cache_control: cache_control(&key),
            key,
            body,
        }
    }
}

/// What a put is for, handed back with its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Putting {
    File {
        variant: String,
        name: String,
    },
    /// Playlist puts carry the resync epoch they were started in: one from before a resync
    /// says nothing about the sink now.
    Playlist {
        variant: String,
        files: Vec<String>,
        epoch: u64,
    },
    Master {
        text: Bytes,
        epoch: u64,
    },
}

#[derive(Debug, Clone)]
pub enum Job {
    /// Put `object`, retrying until it is stored or `cancel` is set.
    Put {
        object: Object,
        putting: Putting,
        cancel: Arc<AtomicBool>,
    },
    Delete {
        key: String,
    },
}

#[derive(Default)]
pub struct Plan {
    variants: BTreeMap<String, VariantPlan>,
    master: MasterPlan,
    /// Resyncs so far.
    epoch: u64,
    /// Set (and replaced) by a resync: playlist puts of the epoch before stop trying.
    playlists_cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct VariantPlan {
    files: HashMap<String, File>,
    /// The newest playlist from the store, not yet put.
    waiting: Option<Playlist>,
    /// The last playlist put (or being put), for a resync.
    last: Option<Playlist>,
    in_flight: bool,
    /// What the sink's copy lists, and its URL, once one is stored.
    listed: Option<Vec<String>>,
    url: Option<String>,
    /// Stored files that left the window but that the sink's playlist may still list.
    doomed: Vec<String>,
}

struct File {
    data: Bytes,
    finished: Instant,
    /// The URL playlists use for it, once stored (`None` inside: keep the relative name).
    stored: Option<Option<String>>,
    cancel: Arc<AtomicBool>,
}

#[derive(Clone)]
struct Playlist {
    text: Bytes,
    files: Vec<String>,
}

#[derive(Default)]
struct MasterPlan {
    waiting: Option<(Bytes, Vec<String>)>,
    last: Option<(Bytes, Vec<String>)>,
    in_flight: bool,
    stored: Option<Bytes>,
}

impl Plan {
    /// Files waiting for a put to succeed.
    pub fn backlog(&self) -> usize {
        self.variants
            .values()
            .flat_map(|v| v.files.values())
            .filter(|f| f.stored.is_none())
            .count()
    }

    /// Nothing waits to be put: every file is stored and every playlist the store made is in
    /// the sink (what a clean shutdown waits for).
    pub fn settled(&self) -> bool {
        self.backlog() == 0
            && self
                .variants
                .values()
                .all(|v| v.waiting.is_none() && !v.in_flight)
            && self.master.waiting.is_none()
            && !self.master.in_flight
    }

    /// Whether the sink holds a master playlist (viewers may be sent there).
    pub fn master_stored(&self) -> bool {
        self.master.stored.is_some()
    }

    pub fn on_event(&mut self, event: StoreEvent) -> Vec<Job> {
        match event {
            StoreEvent::File {
                variant,
                name,
                data,
                at,
            } => {
                let file = File {
                    data,
                    finished: at,
                    stored: None,
                    cancel: Arc::new(AtomicBool::new(false)),
                };
                let job = put_file(&variant, &name, &file);
                self.variants
                    .entry(variant)
                    .or_default()
                    .files
                    .insert(name, file);
                vec![job]
            }
            StoreEvent::Playlist {
                variant,
                text,
                files,
            } => {
                self.variants.entry(variant.clone()).or_default().waiting =
                    Some(Playlist { text, files });
                self.next_playlist(&variant).into_iter().collect()
            }
            StoreEvent::Master { text, variants } => {
                if self.master.stored.as_ref() != Some(&text) {
                    self.master.waiting = Some((text, variants));
                }
                self.next_master().into_iter().collect()
            }
            StoreEvent::Removed { variant, names } => {
                let Some(plan) = self.variants.get_mut(&variant) else {
                    return Vec::new();
                };
                let mut jobs = Vec::new();
                for name in names {
                    let Some(file) = plan.files.remove(&name) else {
                        continue;
                    };
                    file.cancel.store(true, Ordering::Relaxed);
                    if file.stored.is_none() {
                        continue;
                    }
                    if plan.sink_may_list(&name) {
                        plan.doomed.push(name);
                    } else {
                        jobs.push(Job::Delete {
                            key: file_key(&variant, &name),
                        });
                    }
                }
                jobs
            }
        }
    }

    /// A put succeeded; `url` is where the sink serves it (`None`: the relative name works).
    /// Returns the jobs that follow and, for a stored playlist, how long each segment it newly
    /// lists took from finished to listed in the sink.
    pub fn stored(
        &mut self,
        putting: Putting,
        url: Option<String>,
        now: Instant,
    ) -> (Vec<Job>, Vec<Duration>) {
        let mut listed = Vec::new();
        let mut jobs = Vec::new();
        match putting {
            Putting::File { variant, name } => {
                match self
                    .variants
                    .get_mut(&variant)
                    .and_then(|v| v.files.get_mut(&name))
                {
                    Some(file) => file.stored = Some(url),
                    // It left the window while being put: the sink must not keep it.
                    None => jobs.push(Job::Delete {
                        key: file_key(&variant, &name),
                    }),
                }
                jobs.extend(self.next_playlist(&variant));
            }
            Putting::Playlist { epoch, .. } | Putting::Master { epoch, .. }
                if epoch != self.epoch => {}
            Putting::Playlist { variant, files, .. } => {
                let plan = self.variants.entry(variant.clone()).or_default();
                let before = plan.listed.take().unwrap_or_default();
                listed = files
                    .iter()
                    .filter(|name| !before.contains(name) && !is_init(name))
                    .filter_map(|name| plan.files.get(name))
                    .map(|file| now.saturating_duration_since(file.finished))
                    .collect();
                plan.listed = Some(files);
                plan.url = url;
                plan.in_flight = false;
                for name in std::mem::take(&mut plan.doomed) {
                    if plan.sink_may_list(&name) {
                        plan.doomed.push(name);
                    } else {
                        jobs.push(Job::Delete {
                            key: file_key(&variant, &name),
                        });
                    }
                }
                jobs.extend(self.next_playlist(&variant));
                jobs.extend(self.next_master());
            }
            Putting::Master { text, .. } => {
                self.master.stored = Some(text);
                self.master.in_flight = false;
                jobs.extend(self.next_master());
            }
        }
        (jobs, listed)
    }

    /// A put stopped without storing (its file left the window).
    pub fn abandoned(&mut self, putting: Putting) -> Vec<Job> {
        match putting {
            Putting::File { variant, .. } => self.next_playlist(&variant).into_iter().collect(),
            Putting::Playlist { epoch, .. } | Putting::Master { epoch, .. }
                if epoch != self.epoch =>
            {
                Vec::new()
            }
            Putting::Playlist { variant, .. } => {
                if let Some(plan) = self.variants.get_mut(&variant) {
                    plan.in_flight = false;
                }
                self.next_playlist(&variant).into_iter().collect()
            }
            Putting::Master { .. } => {
                self.master.in_flight = false;
                self.next_master().into_iter().collect()
            }
        }
    }

    /// Put everything again (after an outage: the sink may have lost it); playlists follow
    /// once their files are back.
    pub fn resync(&mut self) -> Vec<Job> {
        self.epoch += 1;
        self.playlists_cancel.store(true, Ordering::Relaxed);
        self.playlists_cancel = Arc::new(AtomicBool::new(false));
        let mut jobs = Vec::new();
        for (variant, plan) in &mut self.variants {
            // Nothing the sink had counts any more: its playlists come back once their files
            // are there again.
            plan.listed = None;
            plan.url = None;
            plan.in_flight = false;
            for (name, file) in &mut plan.files {
                if file.stored.is_some() {
                    file.stored = None;
                    file.cancel = Arc::new(AtomicBool::new(false));
                    jobs.push(put_file(variant, name, file));
                }
            }
            if plan.waiting.is_none() {
                plan.waiting = plan.last.clone();
            }
        }
        if self.master.waiting.is_none() {
            self.master.waiting = self.master.last.clone();
        }
        self.master.stored = None;
        self.master.in_flight = false;
        jobs
    }

    /// The waiting playlist of `variant`, if everything it lists is stored and no put of it
    /// runs.
    fn next_playlist(&mut self, variant: &str) -> Option<Job> {
        let plan = self.variants.get_mut(variant)?;
        if plan.in_flight {
            return None;
        }
        let playlist = plan.waiting.as_ref()?;
        let mut urls = HashMap::new();
        for name in &playlist.files {
            match plan.files.get(name).and_then(|f| f.stored.as_ref()) {
                Some(Some(url)) => drop(urls.insert(name.as_str(), url.as_str())),
                Some(None) => {}
                None => return None,
            }
        }
        let text = rewrite_uris(&playlist.text, |name| urls.get(name).copied());
        let playlist = plan.waiting.take()?;
        plan.in_flight = true;
        let job = Job::Put {
            object: Object::new(file_key(variant, MEDIA_PLAYLIST_NAME), text),
            putting: Putting::Playlist {
                variant: variant.to_owned(),
                files: playlist.files.clone(),
                epoch: self.epoch,
            },
            cancel: Arc::clone(&self.playlists_cancel),
        };
        plan.last = Some(playlist);
        Some(job)
    }

    /// The waiting master playlist, if every variant it lists has its playlist stored.
    fn next_master(&mut self) -> Option<Job> {
        if self.master.in_flight {
            return None;
        }
        let (_, variants) = self.master.waiting.as_ref()?;
        let mut urls = HashMap::new();
        for variant in variants {
            let plan = self.variants.get(variant)?;
            plan.listed.as_ref()?;
            if let Some(url) = &plan.url {
                urls.insert(file_key(variant, MEDIA_PLAYLIST_NAME), url.as_str());
            }
        }
        let (text, variants) = self.master.waiting.take()?;
        let rewritten = rewrite_uris(&text, |uri| urls.get(uri).copied());
        self.master.in_flight = true;
        self.master.last = Some((text.clone(), variants));
        Some(Job::Put {
            object: Object::new(MASTER_PLAYLIST_NAME.to_owned(), rewritten),
            putting: Putting::Master {
                text,
                epoch: self.epoch,
            },
            cancel: Arc::clone(&self.playlists_cancel),
        })
    }
}

impl VariantPlan {
    /// Whether the sink's playlist, stored or being put, lists `name`.
    fn sink_may_list(&self, name: &str) -> bool {
        let listed = |files: &[String]| files.iter().any(|f| f == name);
        self.listed.as_deref().is_some_and(listed)
            || self.in_flight && self.last.as_ref().is_some_and(|p| listed(&p.files))
    }
}

fn put_file(variant: &str, name: &str, file: &File) -> Job {
    Job::Put {
        object: Object::new(file_key(variant, name), file.data.clone()),
        putting: Putting::File {
            variant: variant.to_owned(),
            name: name.to_owned(),
        },
        cancel: Arc::clone(&file.cancel),
    }
}

/// `<variant>/<name>`: the same layout as `/hls/` on selfcast.
pub fn file_key(variant: &str, name: &str) -> String {
    format!("{variant}/{name}")
}

/// `base` and `key` joined by exactly one slash.
pub fn join_url(base: &str, key: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        key.trim_start_matches('/')
    )
}

/// The playlist with each URI (a line that is not a tag, and `EXT-X-MAP`'s `URI="..."`) that
/// `url_of` knows replaced by its URL.
pub fn rewrite_uris<'a>(text: &[u8], url_of: impl Fn(&str) -> Option<&'a str>) -> Bytes {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(content) => (content, "\n"),
            None => (line, ""),
        };
        if let Some(attributes) = content.strip_prefix("#EXT-X-MAP:") {
            out.push_str("#EXT-X-MAP:");
            out.push_str(&rewrite_map_uri(attributes, &url_of));
        } else if !content.starts_with('#') && !content.trim().is_empty() {
            out.push_str(url_of(content.trim()).unwrap_or(content));
        } else {
            out.push_str(content);
        }
        out.push_str(end);
    }
    Bytes::from(out)
}

fn rewrite_map_uri<'a>(attributes: &str, url_of: &impl Fn(&str) -> Option<&'a str>) -> String {
    const URI: &str = "URI=\"";
    let Some(start) = attributes.find(URI).map(|at| at + URI.len()) else {
        return attributes.to_owned();
    };
    let Some(length) = attributes[start..].find('"') else {
        return attributes.to_owned();
    };
    let uri = &attributes[start..start + length];
    match url_of(uri) {
        Some(url) => format!(
            "{}{url}{}",
            &attributes[..start],
            &attributes[start + length..]
        ),
        None => attributes.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str =
        "#EXTM3U\n#EXT-X-MAP:URI=\"init-r-0.mp4\"\n#EXTINF:2.000,\nseg-r-0.m4s\n\
                            #EXTINF:2.000,\nseg-r-1.m4s\n";

    fn file(name: &str, at: Instant) -> StoreEvent {
        StoreEvent::File {
            variant: "0".into(),
            name: name.into(),
            data: Bytes::from_static(b"data"),
            at,
        }
    }

    fn playlist(text: &str, files: &[&str]) -> StoreEvent {
        StoreEvent::Playlist {
            variant: "0".into(),
            text: Bytes::copy_from_slice(text.as_bytes()),
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn keys(jobs: &[Job]) -> Vec<String> {
        jobs.iter()
            .map(|job| match job {
                Job::Put { object, .. } => format!("put {}", object.key),
                Job::Delete { key } => format!("delete {key}"),
            })
            .collect()
    }

    /// Reports every put in `jobs` as stored at `base/<key>`; returns the jobs that follow.
    fn store_all(plan: &mut Plan, jobs: Vec<Job>, now: Instant) -> Vec<Job> {
        let mut next = Vec::new();
        for job in jobs {
            if let Job::Put {
                object, putting, ..
            } = job
            {
                let url = format!("https://cdn.example/{}", object.key);
                next.extend(plan.stored(putting, Some(url), now).0);
            }
        }
        next
    }

    #[test]
    fn a_playlist_waits_for_every_file_it_lists() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let mut files = Vec::new();
        for name in ["init-r-0.mp4", "seg-r-0.m4s", "seg-r-1.m4s"] {
            files.extend(plan.on_event(file(name, t0)));
        }
        assert_eq!(plan.backlog(), 3);
        let names = ["init-r-0.mp4", "seg-r-0.m4s", "seg-r-1.m4s"];
        assert!(
            plan.on_event(playlist(PLAYLIST, &names)).is_empty(),
            "nothing stored yet"
        );
        let (last, first_two) = files.split_last().unwrap();
        assert!(store_all(&mut plan, first_two.to_vec(), t0).is_empty());
        let then = t0 + Duration::from_millis(300);
        let put = store_all(&mut plan, vec![last.clone()], then);
        assert_eq!(keys(&put), ["put 0/stream.m3u8"]);
        let Job::Put {
            object, putting, ..
        } = &put[0]
        else {
            unreachable!()
        };
        assert_eq!(object.content_type, "application/vnd.apple.mpegurl");
        assert_eq!(
            std::str::from_utf8(&object.body).unwrap(),
            "#EXTM3U\n#EXT-X-MAP:URI=\"https://cdn.example/0/init-r-0.mp4\"\n#EXTINF:2.000,\n\
             https://cdn.example/0/seg-r-0.m4s\n#EXTINF:2.000,\nhttps://cdn.example/0/seg-r-1.m4s\n"
        );
        let (_, listed) = plan.stored(putting.clone(), None, then);
        assert_eq!(
            listed,
            [Duration::from_millis(300); 2],
            "both segments, not the init"
        );
        assert_eq!(plan.backlog(), 0);
    }

    #[test]
    fn newer_playlists_replace_waiting_ones_and_one_put_runs_at_a_time() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let puts: Vec<Job> = ["init-r-0.mp4", "seg-r-0.m4s"]
            .iter()
            .flat_map(|n| plan.on_event(file(n, t0)))
            .collect();
        store_all(&mut plan, puts, t0);
        let first = plan.on_event(playlist("#EXTM3U\nseg-r-0.m4s\n", &["seg-r-0.m4s"]));
        assert_eq!(keys(&first), ["put 0/stream.m3u8"]);
        // Two more while the first put runs: only the newest goes next.
        let seg1 = plan.on_event(file("seg-r-1.m4s", t0));
        assert!(plan
            .on_event(playlist("#EXTM3U\nseg-r-1.m4s\n", &["seg-r-1.m4s"]))
            .is_empty());
        store_all(&mut plan, seg1, t0);
        assert!(plan
            .on_event(playlist("#EXTM3U\nseg-r-0.m4s\n#v3\n", &["seg-r-0.m4s"]))
            .is_empty());
        let next = store_all(&mut plan, first, t0);
        let Job::Put { object, .. } = &next[0] else {
            panic!("{:?}", keys(&next))
        };
        assert!(object.body.ends_with(b"#v3\n"), "the newest version");
    }

    #[test]
    fn the_master_waits_for_its_variants_and_points_at_their_urls() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let master = StoreEvent::Master {
            text: Bytes::from_static(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n0/stream.m3u8\n"),
            variants: vec!["0".into()],
        };
        assert!(plan.on_event(master.clone()).is_empty());
        let puts = plan.on_event(file("seg-r-0.m4s", t0));
        store_all(&mut plan, puts, t0);
        let put = plan.on_event(playlist("#EXTM3U\nseg-r-0.m4s\n", &["seg-r-0.m4s"]));
        let master_put = store_all(&mut plan, put, t0);
        let Job::Put { object, .. } = &master_put[0] else {
            panic!()
        };
        assert_eq!(object.key, "stream.m3u8");
        assert!(object
            .body
            .ends_with(b"\nhttps://cdn.example/0/stream.m3u8\n"));
        assert!(!plan.master_stored());
        store_all(&mut plan, master_put, t0);
        assert!(plan.master_stored());
        assert!(
            plan.on_event(master).is_empty(),
            "the same text is not put again"
        );
    }

    #[test]
    fn files_that_leave_the_window_are_deleted_or_their_put_stops() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let stored = plan.on_event(file("seg-r-0.m4s", t0));
        store_all(&mut plan, stored, t0);
        let trying = plan.on_event(file("seg-r-1.m4s", t0));
        let removed = plan.on_event(StoreEvent::Removed {
            variant: "0".into(),
            names: vec!["seg-r-0.m4s".into(), "seg-r-1.m4s".into()],
        });
        assert_eq!(keys(&removed), ["delete 0/seg-r-0.m4s"]);
        let Job::Put { cancel, .. } = &trying[0] else {
            panic!()
        };
        assert!(cancel.load(Ordering::Relaxed), "its put stops retrying");
        // A put that succeeds after its file left is deleted.
        assert_eq!(
            keys(&store_all(&mut plan, trying, t0)),
            ["delete 0/seg-r-1.m4s"]
        );
    }

    #[test]
    fn a_file_the_sinks_playlist_still_lists_is_deleted_once_a_newer_one_is_stored() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let puts: Vec<Job> = ["seg-r-0.m4s", "seg-r-1.m4s"]
            .iter()
            .flat_map(|n| plan.on_event(file(n, t0)))
            .collect();
        store_all(&mut plan, puts, t0);
        let put = plan.on_event(playlist("#EXTM3U\nseg-r-0.m4s\n", &["seg-r-0.m4s"]));
        store_all(&mut plan, put, t0);
        // The sink lags: its playlist still lists seg 0 when the store drops it.
        let removed = plan.on_event(StoreEvent::Removed {
            variant: "0".into(),
            names: vec!["seg-r-0.m4s".into()],
        });
        assert!(removed.is_empty(), "{:?}", keys(&removed));
        let put = plan.on_event(playlist("#EXTM3U\nseg-r-1.m4s\n", &["seg-r-1.m4s"]));
        assert_eq!(
            keys(&store_all(&mut plan, put, t0)),
            ["delete 0/seg-r-0.m4s"]
        );
    }

    #[test]
    fn a_resync_puts_the_window_again_then_the_playlists() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let puts = plan.on_event(file("seg-r-0.m4s", t0));
        store_all(&mut plan, puts, t0);
        let put = plan.on_event(playlist("#EXTM3U\nseg-r-0.m4s\n", &["seg-r-0.m4s"]));
        store_all(&mut plan, put, t0);
        let again = plan.resync();
        assert_eq!(keys(&again), ["put 0/seg-r-0.m4s"]);
        assert_eq!(
            keys(&store_all(&mut plan, again, t0)),
            ["put 0/stream.m3u8"]
        );
    }

    #[test]
    fn after_a_resync_the_master_waits_for_the_playlists_put_again() {
        let t0 = Instant::now();
        let mut plan = Plan::default();
        let puts = plan.on_event(file("seg-r-0.m4s", t0));
        store_all(&mut plan, puts, t0);
        let master = StoreEvent::Master {
            text: Bytes::from_static(b"#EXTM3U\n0/stream.m3u8\n"),
            variants: vec!["0".into()],
        };
        plan.on_event(master);
        let put = plan.on_event(playlist("#EXTM3U\nseg-r-0.m4s\n", &["seg-r-0.m4s"]));
        let master_put = store_all(&mut plan, put, t0);
        store_all(&mut plan, master_put, t0);
        // An outage: a playlist put starts, then the sink comes back empty.
        let seg1 = plan.on_event(file("seg-r-1.m4s", t0));
        store_all(&mut plan, seg1, t0);
        let stale = plan.on_event(playlist("#EXTM3U\nseg-r-1.m4s\n", &["seg-r-1.m4s"]));
        let again = plan.resync();
        assert!(!plan.master_stored());
        let Job::Put { cancel, .. } = &stale[0] else {
            panic!()
        };
        assert!(
            cancel.load(Ordering::Relaxed),
            "the stale put stops retrying"
        );
        // The stale put lands anyway: it counts for nothing.
        assert!(store_all(&mut plan, stale, t0).is_empty());
        assert!(!plan.master_stored());
        // Files first, then the playlist, then the master.
        let playlist_put = store_all(&mut plan, again, t0);
        assert_eq!(keys(&playlist_put), ["put 0/stream.m3u8"]);
        let master_put = store_all(&mut plan, playlist_put, t0);
        assert_eq!(keys(&master_put), ["put stream.m3u8"]);
        store_all(&mut plan, master_put, t0);
        assert!(plan.master_stored());
    }

    #[test]
    fn uris_without_a_url_stay_relative() {
        let out = rewrite_uris(PLAYLIST.as_bytes(), |name| {
            (name == "seg-r-1.m4s").then_some("https://gw/ipfs/bafy")
        });
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            PLAYLIST.replace("\nseg-r-1.m4s\n", "\nhttps://gw/ipfs/bafy\n")
        );
    }
}
