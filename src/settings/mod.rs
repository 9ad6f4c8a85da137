//! The settings the owner changes while live, from the admin console: `config.toml` gives the
//! first values, the console overrides them one by one, and the overrides are kept in
//! `data_dir/settings.json` ([`file`]), so they survive a restart. Readers (the status and page
//! endpoints) take the current values at every request, so a change shows at once; every change
//! bumps a revision number that viewer pages watch.
//!
//! | section | what | changes apply |
//! |---|---|---|
//! | `page` ([`page`]) | title, summary, tags, offline message, social links, custom CSS | at once |

pub mod file;
pub mod page;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use file::{SaveError, SettingsFile};
use page::{FieldError, PageOverrides, PagePatch, PageSources, PageValues};

/// What `settings.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    /// Bumped by every change; kept across restarts so that a viewer page that was open across
    /// one still sees the next change as new.
    revision: u64,
    page: PageOverrides,
}

/// The page settings as the console shows them.
#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    pub values: PageValues,
    pub sources: PageSources,
}

/// Why a change was not made (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Save(#[from] SaveError),
}

pub struct LiveSettings {
    config_page: PageValues,
    file: SettingsFile,
    /// What was wrong with the file at start-up, for the console.
    problems: Vec<String>,
    state: RwLock<State>,
}

struct State {
    saved: Saved,
    /// `saved.page` applied to `config_page`.
    page: Arc<PageValues>,
}

impl LiveSettings {
    /// The settings in `data_dir` over `config_page`; problems with the file are logged (and
    /// kept for the console), never fatal.
    pub fn load(data_dir: &Path, config_page: PageValues) -> Self {
        let file = SettingsFile::in_dir(data_dir);
        let loaded = file.load::<Saved>();
        let mut problems = loaded.problems;
        let mut saved = loaded.contents.unwrap_or_default();
        if let Err(e) = saved.page.check() {
            problems.push(format!(
                "{}: the page settings are not valid ({e}): using config.toml's until they are saved again",
                file.path().display()
            ));
            saved.page = PageOverrides::default();
        }
        for problem in &problems {
            warn!("settings: {problem}");
        }
        let page = Arc::new(saved.page.apply_to(&config_page));
        Self {
            config_page,
            file,
            problems,
            state: RwLock::new(State { saved, page }),
        }
    }

    /// The page values now, and the revision they belong to.
    pub fn page(&self) -> (Arc<PageValues>, u64) {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(&state.page), state.saved.revision)
    }

    pub fn page_view(&self) -> PageView {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        PageView {
            values: (*state.page).clone(),
            sources: state.saved.page.sources(&self.config_page),
        }
    }

    /// Applies `patch` and saves it: all of it, or (on a bad value or a failed save) none.
    pub fn change_page(&self, patch: PagePatch) -> Result<PageView, ChangeError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let next = Saved {
            revision: state.saved.revision + 1,
            page: state.saved.page.patched(patch)?,
        };
        self.file.save(&next)?;
        info!(revision = next.revision, "settings: page settings changed");
        state.page = Arc::new(next.page.apply_to(&self.config_page));
        state.saved = next;
        Ok(PageView {
            values: (*state.page).clone(),
            sources: state.saved.page.sources(&self.config_page),
        })
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_page() -> PageValues {
        PageValues {
            stream_title: "Config title".into(),
            ..PageValues::default()
        }
    }

    #[test]
    fn changes_survive_a_restart_and_bump_the_revision() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LiveSettings::load(dir.path(), config_page());
        assert_eq!(settings.page().0.stream_title, "Config title");
        let patch = serde_json::from_str(r#"{"streamTitle": "Console title"}"#).unwrap();
        settings.change_page(patch).unwrap();
        let (page, revision) = settings.page();
        assert_eq!((page.stream_title.as_str(), revision), ("Console title", 1));

        let again = LiveSettings::load(dir.path(), config_page());
        assert_eq!(again.page(), (page, 1));
        assert!(again.problems().is_empty());
    }

    #[test]
    fn a_bad_change_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LiveSettings::load(dir.path(), config_page());
        let patch = serde_json::from_str(r#"{"summary": "ok", "streamTitle": ""}"#).unwrap();
        assert!(matches!(
            settings.change_page(patch),
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
            r#"{"revision": 4, "page": {"streamTitle": ""}}"#,
        )
        .unwrap();
        let settings = LiveSettings::load(dir.path(), config_page());
        assert_eq!(settings.page().0.stream_title, "Config title");
        assert_eq!(settings.problems().len(), 1, "{:?}", settings.problems());
    }
}
