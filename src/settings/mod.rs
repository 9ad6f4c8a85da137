//! The settings the owner changes while live, from the admin console: `config.toml` gives the
//! first values, the console overrides them one by one, and the overrides are kept in
//! `data_dir/settings.json` ([`file`]), so they survive a restart. Readers (the status and page
//! endpoints) take the current values at every request, so a change shows at once; every change
//! bumps a revision number that viewer pages watch.
//!
//! | section | what | changes apply |
//! |---|---|---|
//! | `page` ([`page`]) | title, summary, tags, offline message, social links, custom CSS | at once |
//! | `chat` ([`chat`]) | on/off, message length, slow mode, max connections, streamer name | at once |
//! | images ([`images`]) | the logo and the offline image, uploaded files in `data_dir/images/` | at once |
//! | `video` ([`video`]) | the ladder, segment length, playlist window | at the next publish, or "apply now" |
//!
//! Each section is a struct of values ([`section::Section`]: how they are cleaned and checked);
//! [`section`] keeps the console's values over `config.toml`'s, for every section alike.

pub mod chat;
pub mod file;
pub mod images;
pub mod page;
pub mod section;
pub mod video;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::{info, warn};

use bytes::Bytes;

use crate::config::Config;
use chat::ChatValues;
use file::{SaveError, SettingsFile};
use images::{ImageError, PageImage, PageImages, Slot};
use page::PageValues;
use section::{FieldError, Overrides, Section, Source};
use video::VideoValues;

/// What `settings.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    /// Bumped by every change; kept across restarts so that a viewer page that was open across
    /// one still sees the next change as new.
    revision: u64,
    page: Overrides,
    chat: Overrides,
    video: Overrides,
}

/// A section's settings as the console shows them: the values and where each comes from.
#[derive(Debug, Clone, Serialize)]
pub struct View<T> {
    pub values: T,
    pub sources: BTreeMap<String, Source>,
}

/// Why a change was not made (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

/// The sections, as the code names them: where each is in [`Saved`] and in [`State`].
trait Kind: Section {
    const NAME: &'static str;
    fn config(settings: &LiveSettings) -> &Self;
    fn saved(saved: &Saved) -> &Overrides;
    fn saved_mut(saved: &mut Saved) -> &mut Overrides;
    fn current(state: &State) -> &Arc<Self>;
    fn current_mut(state: &mut State) -> &mut Arc<Self>;
}

/// A section's [`Kind`]: its name is its field in [`FromConfig`], [`Saved`] and [`State`].
macro_rules! kind {
    ($values:ty, $name:ident) => {
        impl Kind for $values {
            const NAME: &'static str = stringify!($name);
            fn config(settings: &LiveSettings) -> &Self {
                &settings.config.$name
            }
            fn saved(saved: &Saved) -> &Overrides {
                &saved.$name
            }
            fn saved_mut(saved: &mut Saved) -> &mut Overrides {
                &mut saved.$name
            }
            fn current(state: &State) -> &Arc<Self> {
                &state.$name
            }
            fn current_mut(state: &mut State) -> &mut Arc<Self> {
                &mut state.$name
            }
        }
    };
}

kind!(PageValues, page);
kind!(ChatValues, chat);
kind!(VideoValues, video);

/// `config.toml`'s values of every section: the first values, under the console's.
#[derive(Debug, Clone, Default)]
pub struct FromConfig {
    pub page: PageValues,
    pub chat: ChatValues,
    pub video: VideoValues,
}

impl FromConfig {
    pub fn of(config: &Config) -> Self {
        FromConfig {
            page: config.page_values(),
            chat: ChatValues::of_config(&config.chat),
            video: VideoValues::of_config(config),
        }
    }
}

pub struct LiveSettings {
    config: FromConfig,
    file: SettingsFile,
    images: PageImages,
    /// What was wrong with the file at start-up, for the console.
    problems: Vec<String>,
    state: RwLock<State>,
}

struct State {
    saved: Saved,
    /// Each section's overrides applied to its `config_*` values.
    page: Arc<PageValues>,
    chat: Arc<ChatValues>,
    video: Arc<VideoValues>,
}

impl LiveSettings {
    /// The settings in `data_dir` over `config.toml`'s; problems with the file are logged (and
    /// kept for the console), never fatal: a section whose saved values do not fit is left
    /// at `config.toml`'s until it is saved again.
    pub fn load(data_dir: &Path, config: FromConfig) -> Self {
        let file = SettingsFile::in_dir(data_dir);
        let loaded = file.load::<Saved>();
        let mut problems = loaded.problems;
        let mut saved = loaded.contents.unwrap_or_default();
        let page = in_force(&mut saved.page, &config.page, &mut problems, file.path());
        let chat = in_force(&mut saved.chat, &config.chat, &mut problems, file.path());
        let video = in_force(&mut saved.video, &config.video, &mut problems, file.path());
        let (images, image_problems) = PageImages::load(data_dir);
        problems.extend(image_problems);
        for problem in &problems {
            warn!("settings: {problem}");
        }
        Self {
            config,
            file,
            images,
            problems,
            state: RwLock::new(State {
                saved,
                page: Arc::new(page),
                chat: Arc::new(chat),
                video: Arc::new(video),
            }),
        }
    }

    /// The page values now, and the revision they belong to.
    pub fn page(&self) -> (Arc<PageValues>, u64) {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(&state.page), state.saved.revision)
    }

    /// The chat values now.
    pub fn chat(&self) -> Arc<ChatValues> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&state.chat)
    }

    pub fn page_view(&self) -> View<PageValues> {
        self.view()
    }

    pub fn chat_view(&self) -> View<ChatValues> {
        self.view()
    }

    /// The video values now (what the next publish uses).
    pub fn video(&self) -> Arc<VideoValues> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&state.video)
    }

    pub fn video_view(&self) -> View<VideoValues> {
        self.view()
    }

    /// Applies `patch` to the page and saves it: all of it, or (on a bad value or a failed
    /// save) none.
    pub fn change_page(&self, patch: Map<String, Value>) -> Result<View<PageValues>, ChangeError> {
        self.change(patch)
    }

    /// The same for the chat's settings; the caller hands the new values to the chat.
    pub fn change_chat(&self, patch: Map<String, Value>) -> Result<View<ChatValues>, ChangeError> {
        self.change(patch)
    }

    /// The same for the video settings; the caller hands them to the pipeline.
    pub fn change_video(
        &self,
        patch: Map<String, Value>,
    ) -> Result<View<VideoValues>, ChangeError> {
        self.change(patch)
    }

    /// The image in `slot`, if one is set.
    pub fn image(&self, slot: Slot) -> Option<Arc<PageImage>> {
        self.images.get(slot)
    }

    /// Checks and puts in use a new image (blocking: decodes it and writes its file); open
    /// viewer pages load it with the next revision.
    pub fn set_image(
        &self,
        slot: Slot,
        bytes: Bytes,
        declared: images::StillFormat,
    ) -> Result<Arc<PageImage>, ImageError> {
        let image = self.images.set(slot, bytes, declared)?;
        info!(
            width = image.still.width,
            height = image.still.height,
            bytes = image.bytes.len(),
            "settings: a new {} image",
            slot.name()
        );
        self.bump_revision();
        Ok(image)
    }

    /// No image in `slot` any more (blocking: removes its file); whether there was one.
    pub fn remove_image(&self, slot: Slot) -> bool {
        let removed = self.images.remove(slot);
        if removed {
            info!("settings: the {} image removed", slot.name());
            self.bump_revision();
        }
        removed
    }

    /// A new revision, so open viewer pages reload what changed outside the sections (the
    /// images). The image is in use whether or not the revision is saved: a failed save only
    /// means a page open across a restart may miss it until the next change.
    fn bump_revision(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = state.saved.clone();
        next.revision += 1;
        if let Err(e) = self.file.save(&next) {
            warn!("settings: the new revision is not saved: {e}");
        }
        state.saved = next;
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    fn view<T: Kind>(&self) -> View<T> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        View {
            values: (**T::current(&state)).clone(),
            sources: T::saved(&state.saved).sources(T::config(self)),
        }
    }

    fn change<T: Kind>(&self, patch: Map<String, Value>) -> Result<View<T>, ChangeError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let config = T::config(self);
        let (overrides, values) = T::saved(&state.saved).patched(config, patch)?;
        let mut next = state.saved.clone();
        next.revision += 1;
        *T::saved_mut(&mut next) = overrides;
        self.file.save(&next)?;
        info!(
            revision = next.revision,
            "settings: {} settings changed",
            T::NAME
        );
        let sources = T::saved(&next).sources(config);
        state.saved = next;
        *T::current_mut(&mut state) = Arc::new(values.clone());
        Ok(View { values, sources })
    }
}

/// The values `overrides` give over `config`; overrides that do not fit (a hand-edited file)
/// are dropped, with a problem saying so.
fn in_force<T: Kind>(
    overrides: &mut Overrides,
    config: &T,
    problems: &mut Vec<String>,
    file: &Path,
) -> T {
    match overrides.apply_to(config).and_then(|values| {
        values.check()?;
        Ok(values)
    }) {
        Ok(values) => values,
        Err(e) => {
            problems.push(format!(
                "{}: the {} settings are not valid ({e}): using config.toml's until they are saved again",
                file.display(),
                T::NAME
            ));
            *overrides = Overrides::default();
            config.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &Path) -> LiveSettings {
        let page = PageValues {
            stream_title: "Config title".into(),
            ..PageValues::default()
        };
        LiveSettings::load(
            dir,
            FromConfig {
                page,
                ..FromConfig::default()
            },
        )
    }

    fn patch(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn changes_survive_a_restart_and_bump_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path());
        assert_eq!(settings.page().0.stream_title, "Config title");
        settings
            .change_page(patch(r#"{"streamTitle": "Console title"}"#))
            .unwrap();
        let (page, revision) = settings.page();
        assert_eq!((page.stream_title.as_str(), revision), ("Console title", 1));

        let again = load(dir.path());
        assert_eq!(again.page(), (page, 1));
        assert!(again.problems().is_empty());
    }

    #[test]
    fn a_bad_change_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path());
        assert!(matches!(
            settings.change_page(patch(r#"{"summary": "ok", "streamTitle": ""}"#)),
            Err(ChangeError::Invalid(_))
        ));
        assert_eq!(settings.page().1, 0);
        assert_eq!(settings.page().0.summary, "");
        assert!(!dir.path().join("settings.json").exists());
    }

    #[test]
    fn invalid_values_in_the_file_are_reported_and_not_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("settings.json"),
            r#"{"revision": 4, "page": {"streamTitle": ""}, "chat": {"slowModeSeconds": 5}}"#,
        )
        .unwrap();
        let settings = load(dir.path());
        assert_eq!(settings.page().0.stream_title, "Config title");
        assert_eq!(settings.problems().len(), 1, "{:?}", settings.problems());
        assert_eq!(
            settings.chat().slow_mode_seconds,
            5,
            "the other section is kept"
        );
    }

    #[test]
    fn sections_change_apart_and_share_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let settings = load(dir.path());
        settings
            .change_chat(patch(r#"{"slowModeSeconds": 30}"#))
            .unwrap();
        settings.change_page(patch(r#"{"summary": "Hi"}"#)).unwrap();
        let again = load(dir.path());
        assert_eq!(again.chat().slow_mode_seconds, 30);
        assert_eq!(again.page().0.summary, "Hi");
        assert_eq!(again.page().1, 2);
        assert_eq!(
            again.chat_view().sources["slowModeSeconds"],
            Source::Console
        );
        assert_eq!(again.chat_view().sources["maxConnections"], Source::Default);
    }
}
