//! The settings file, `data_dir/settings.json`: read once at start-up, replaced whole on every
//! change. A change is written to a temporary file, flushed to disk and renamed over the old
//! one, so a crash leaves the old file or the new one, never half of each; the old one is kept
//! as `settings.json.bak`. A file that cannot be read or parsed at start-up (torn by a full
//! disk, edited by hand) is moved aside as `settings.json.broken`, reported, and the backup
//! used instead.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::owner_file;

/// The file's name in `data_dir`.
const FILE_NAME: &str = "settings.json";

#[derive(Debug, thiserror::Error)]
#[error("cannot save {file}: {source}")]
pub struct SaveError {
    file: PathBuf,
    source: std::io::Error,
}

/// What was read at start-up, and what was wrong on the way.
pub struct Loaded<T> {
    /// The newest good contents; `None` when there is none yet.
    pub contents: Option<T>,
    /// Sentences for the owner (logged, and shown in the console).
    pub problems: Vec<String>,
}

pub struct SettingsFile {
    path: PathBuf,
}

impl SettingsFile {
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn backup(&self) -> PathBuf {
        self.path.with_extension("json.bak")
    }

    fn broken(&self) -> PathBuf {
        self.path.with_extension("json.broken")
    }

    /// The file's contents, else the backup's; a broken file is moved aside (so the next save
    /// cannot make it the backup) and reported.
    pub fn load<T: DeserializeOwned>(&self) -> Loaded<T> {
        let mut problems = Vec::new();
        match read(&self.path) {
            Ok(Some(contents)) => {
                return Loaded {
                    contents: Some(contents),
                    problems,
                }
            }
            Ok(None) => {}
            Err(why) => {
                let moved = match std::fs::rename(&self.path, self.broken()) {
                    Ok(()) => format!("moved to {}", self.broken().display()),
                    Err(e) => format!("and cannot be moved aside: {e}"),
                };
                problems.push(format!(
                    "{} is broken ({why}), {moved}",
                    self.path.display()
                ));
            }
        }
        match read(&self.backup()) {
            Ok(Some(contents)) => {
                if !problems.is_empty() {
                    problems.push(format!(
                        "using the previous settings, from {}",
                        self.backup().display()
                    ));
                }
                Loaded {
                    contents: Some(contents),
                    problems,
                }
            }
            Ok(None) => {
                if !problems.is_empty() {
                    problems.push("no backup: using config.toml's values".into());
                }
                Loaded {
                    contents: None,
                    problems,
                }
            }
            Err(why) => {
                problems.push(format!(
                    "the backup {} is broken too ({why}): using config.toml's values",
                    self.backup().display()
                ));
                Loaded {
                    contents: None,
                    problems,
                }
            }
        }
    }

    /// Replaces the file with `contents`, the current one becoming the backup.
    pub fn save<T: Serialize>(&self, contents: &T) -> Result<(), SaveError> {
        self.write(contents).map_err(|source| SaveError {
            file: self.path.clone(),
            source,
        })
    }

    fn write<T: Serialize>(&self, contents: &T) -> std::io::Result<()> {
        owner_file::replace_json(&self.path, contents, Some(&self.backup()))
    }
}

/// `Ok(None)` for a missing file; `Err` with the reason for one that cannot be read or parsed.
fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_missing_file_is_no_settings_and_no_problem() {
        let dir = dir();
        let loaded = SettingsFile::in_dir(dir.path()).load::<Vec<u32>>();
        assert!(loaded.contents.is_none());
        assert!(loaded.problems.is_empty());
    }

    #[test]
    fn saved_contents_load_again_and_the_old_ones_are_the_backup() {
        let dir = dir();
        let file = SettingsFile::in_dir(dir.path());
        file.save(&vec![1]).unwrap();
        file.save(&vec![2]).unwrap();
        let loaded = file.load::<Vec<u32>>();
        assert_eq!(loaded.contents, Some(vec![2]));
        assert!(loaded.problems.is_empty());
        let backup: Vec<u32> =
            serde_json::from_slice(&std::fs::read(file.backup()).unwrap()).unwrap();
        assert_eq!(backup, vec![1]);
        assert!(!file.path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_torn_file_is_reported_moved_aside_and_the_backup_used() {
        let dir = dir();
        let file = SettingsFile::in_dir(dir.path());
        file.save(&vec![1]).unwrap();
        file.save(&vec![2]).unwrap();
        std::fs::write(&file.path, b"[2, 3").unwrap(); // cut short
        let loaded = file.load::<Vec<u32>>();
        assert_eq!(loaded.contents, Some(vec![1]));
        assert_eq!(loaded.problems.len(), 2, "{:?}", loaded.problems);
        assert!(
            loaded.problems[0].contains("is broken"),
            "{:?}",
            loaded.problems
        );
        assert_eq!(std::fs::read(file.broken()).unwrap(), b"[2, 3");
        // The next save does not make the broken file the backup.
        file.save(&vec![4]).unwrap();
        let backup: Vec<u32> =
            serde_json::from_slice(&std::fs::read(file.backup()).unwrap()).unwrap();
        assert_eq!(backup, vec![1]);
        assert_eq!(file.load::<Vec<u32>>().contents, Some(vec![4]));
    }

    #[test]
    fn a_broken_file_without_a_backup_falls_back_to_the_config() {
        let dir = dir();
        let file = SettingsFile::in_dir(dir.path());
        std::fs::write(&file.path, b"{\"page\": 7}").unwrap();
        let loaded = file.load::<Vec<u32>>();
        assert!(loaded.contents.is_none());
        assert!(
            loaded.problems.iter().any(|p| p.contains("config.toml")),
            "{:?}",
            loaded.problems
        );
    }
}
