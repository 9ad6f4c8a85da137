//! The admin password, for every way of signing in: `[admin] password` from `config.toml`
//! (which wins, and then cannot be changed from the console), or the one kept in
//! `data_dir/admin_password` (generated at the first start, changed from the console).

use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};

use crate::owner_file;
use crate::secrets::{constant_time_eq, password_problem};

pub struct AdminPassword {
    current: RwLock<String>,
    /// Where a changed password is kept; `None` when `config.toml` sets it.
    file: Option<PathBuf>,
}

/// Why the password was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the password is set in config.toml ([admin] password): change it there")]
    FromConfig,
    #[error("the new password {0}")]
    Unacceptable(&'static str),
    #[error("cannot save the new password in {file}: {source}")]
    Save {
        file: PathBuf,
        source: std::io::Error,
    },
}

impl AdminPassword {
    /// The password `config.toml` sets.
    pub fn from_config(value: String) -> Self {
        Self {
            current: RwLock::new(value),
            file: None,
        }
    }

    /// The password kept in `file`.
    pub fn from_file(value: String, file: PathBuf) -> Self {
        Self {
            current: RwLock::new(value),
            file: Some(file),
        }
    }

    pub fn is_from_config(&self) -> bool {
        self.file.is_none()
    }

    /// Whether `given` is the password, in a time that does not tell how much of it is right.
    pub fn matches(&self, given: &[u8]) -> bool {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        constant_time_eq(given, current.as_bytes())
    }

    /// Replaces the password (the caller has checked the old one), saved before it is used.
    pub fn change(&self, new: &str) -> Result<(), ChangeError> {
        let file = self.file.as_ref().ok_or(ChangeError::FromConfig)?;
        if let Some(problem) = password_problem(new) {
            return Err(ChangeError::Unacceptable(problem));
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        owner_file::replace(file, format!("{new}\n").as_bytes(), None).map_err(|source| {
            ChangeError::Save {
                file: file.clone(),
                source,
            }
        })?;
        *current = new.to_owned();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_password_is_saved_and_used() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin_password");
        let password = AdminPassword::from_file("first-password".into(), file.clone());
        assert!(password.matches(b"first-password"));
        password.change("second-password").unwrap();
        assert!(password.matches(b"second-password"));
        assert!(!password.matches(b"first-password"));
        let saved = crate::secrets::load_or_generate(dir.path(), "admin_password").unwrap();
        assert_eq!(saved.value(), "second-password");
    }

    #[test]
    fn a_weak_or_configured_password_is_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let password = AdminPassword::from_file("first-password".into(), dir.path().join("p"));
        assert!(matches!(
            password.change("short"),
            Err(ChangeError::Unacceptable(_))
        ));
        assert!(matches!(
            password.change("with\na newline"),
            Err(ChangeError::Unacceptable(_))
        ));
        assert!(password.matches(b"first-password"));
        let configured = AdminPassword::from_config("from-config".into());
        assert!(matches!(
            configured.change("another-one"),
            Err(ChangeError::FromConfig)
        ));
    }
}
