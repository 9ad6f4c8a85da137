//! Secrets and how they are handled:
//! - [`load_or_generate`]: secrets that must never have a guessable default (the stream key and
//!   the admin password), taken from the config when set, otherwise generated once from the OS's
//!   random source and kept in `data_dir` with owner-only permissions, so a restart keeps them;
//! - [`random_token`]: unguessable tokens (chat access tokens, multipart boundaries);
//! - [`constant_time_eq`]: comparing a secret someone sent with the real one without telling
//!   them, by the time it takes, how much of it they got right.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::owner_file::{self, Open};

/// 62 symbols: 32 of them carry about 190 bits, and they survive copy-paste into OBS.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const GENERATED_LENGTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot use data_dir {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write {file}: {source}")]
    File {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
}

/// Whether a secret was just created, so start-up can print it once.
pub enum Secret {
    Existing(String),
    Generated(String),
}

impl Secret {
    pub fn value(&self) -> &str {
        match self {
            Secret::Existing(value) | Secret::Generated(value) => value,
        }
    }
}

/// The secret stored as `data_dir/name`, generated and saved there if absent.
pub fn load_or_generate(data_dir: &Path, name: &str) -> Result<Secret, SecretError> {
    let file = data_dir.join(name);
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => return Ok(Secret::Existing(text.trim().to_owned())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(SecretError::File { file, source }),
    }
    std::fs::create_dir_all(data_dir).map_err(|source| SecretError::DataDir {
        dir: data_dir.to_owned(),
        source,
    })?;
    let secret = random_token(GENERATED_LENGTH)?;
    write_private(&file, &secret).map_err(|source| SecretError::File { file, source })?;
    Ok(Secret::Generated(secret))
}

/// `length` symbols drawn uniformly from [`ALPHABET`] (rejection sampling, no modulo bias).
pub fn random_token(length: usize) -> Result<String, SecretError> {
    let limit = 256 - 256 % ALPHABET.len();
    let mut token = String::with_capacity(length);
    let mut buffer = [0u8; 64];
    while token.len() < length {
        getrandom::getrandom(&mut buffer).map_err(SecretError::Random)?;
        for &byte in buffer.iter().filter(|&&b| (b as usize) < limit) {
            if token.len() == length {
                break;
            }
            token.push(ALPHABET[byte as usize % ALPHABET.len()] as char);
        }
    }
    Ok(token)
}

fn write_private(file: &Path, value: &str) -> std::io::Result<()> {
    let mut handle = owner_file::open(file, Open::CreateNew)?;
    writeln!(handle, "{value}")?;
    handle.sync_all()
}

/// Passwords shorter than this are refused (for the admin, from the config or the console).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// What is wrong with `password` as the admin password, in words that follow "the password".
pub fn password_problem(password: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Some("must be at least 8 characters")
    } else if password.contains(char::is_control) {
        Some("cannot contain line breaks or other control characters")
    } else {
        None
    }
}

/// Whether `given` equals `expected`, in a time that depends only on `given.len()`: neither the
/// position of the first difference nor the key's length can be measured by a peer.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return given.is_empty();
    }
    // Any length difference shows up in `diff`; the loop runs over the peer's own bytes.
    let mut diff = given.len() ^ expected.len();
    for (i, &byte) in given.iter().enumerate() {
        diff |= usize::from(byte ^ expected[i % expected.len()]);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"s3cret-key", b"s3cret-key"));
        assert!(!constant_time_eq(b"s3cret-kez", b"s3cret-key"));
        assert!(!constant_time_eq(b"s3cret-ke", b"s3cret-key"));
        assert!(!constant_time_eq(b"s3cret-keyy", b"s3cret-key"));
        // A repetition of the key matches it byte for byte modulo its length: still not equal.
        assert!(!constant_time_eq(b"abab", b"ab"));
        assert!(!constant_time_eq(b"", b"ab"));
        assert!(!constant_time_eq(b"x", b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), "stream_key").unwrap();
        assert!(matches!(first, Secret::Generated(_)));
        assert_eq!(first.value().len(), GENERATED_LENGTH);
        assert!(first.value().bytes().all(|b| ALPHABET.contains(&b)));
        let again = load_or_generate(dir.path(), "stream_key").unwrap();
        assert!(matches!(again, Secret::Existing(_)));
        assert_eq!(first.value(), again.value());
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(random_token(32).unwrap(), random_token(32).unwrap());
    }
}
