//! An append-only file of JSON records, one per line, that stays small: the chat's users
//! ([`super::users`]) and its history ([`super::history`]) keep their state in memory and save
//! each change as one short append.
//!
//! At start-up the file is replayed and rewritten compactly (the current state only, written to
//! a temporary file, flushed and renamed over it: [`crate::owner_file::replace`]), and again
//! whenever as many records were appended as the compact file holds (at least the owner's
//! `min_appends`): a change costs one append, however large the state, and the file stays within
//! about twice what the state needs, however often it changes. A line that cannot be read (a torn
//! last line after a crash, cut anywhere, even inside a character) is skipped with a warning.
//! Files are owner-only (0600).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::warn;

use crate::owner_file::{self, Open};

#[derive(Debug, thiserror::Error)]
#[error("{what} {file}: {source}")]
pub struct JournalError {
    what: &'static str,
    file: PathBuf,
    source: std::io::Error,
}

/// State kept in memory and persisted in a [`Journal`] as records of its changes.
pub(crate) trait Journaled {
    type Record: Serialize + DeserializeOwned;

    /// Applies one change in memory.
    fn apply(&mut self, record: Self::Record);

    /// The whole state as records (what a compacted file holds).
    fn snapshot(&self) -> Vec<Self::Record>;

    /// Where the changes go (`None`: nowhere, for tests).
    fn journal(&mut self) -> Option<&mut Journal>;

    /// Applies `record` and appends it to the journal, compacting the journal when it is due.
    fn record(&mut self, record: Self::Record) {
        let due = self.journal().is_some_and(|log| log.append(&record));
        self.apply(record);
        if due {
            let records = self.snapshot();
            if let Some(log) = self.journal() {
                log.compact(&records);
            }
        }
    }
}

/// The open file, for appending.
pub struct Journal {
    /// What it holds, for messages ("chat user store").
    what: &'static str,
    path: PathBuf,
    file: File,
    /// Records written by the last compaction, and appended since.
    compacted: usize,
    appended: usize,
    min_appends: usize,
}

impl Journal {
    /// Replays `path` into `state` and compacts it to what `state` then is: [`Journal::replay`],
    /// then [`Journal::create`].
    pub(crate) fn open<S: Journaled>(
        what: &'static str,
        path: &Path,
        min_appends: usize,
        state: &mut S,
    ) -> Result<Journal, JournalError> {
        Journal::replay(what, path, |record| state.apply(record))?;
        Journal::create(what, path, min_appends, &state.snapshot())
    }

    /// Replays `path` (absent: nothing) into `apply`; the directory is created if needed.
    pub fn replay<R: DeserializeOwned>(
        what: &'static str,
        path: &Path,
        mut apply: impl FnMut(R),
    ) -> Result<(), JournalError> {
        let err = |source| error(what, path, source);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        match File::open(path) {
            Ok(file) => replay(what, path, BufReader::new(file), &mut apply).map_err(err),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// Writes `path` as `records` (the whole state) and keeps it open for appending.
    pub fn create(
        what: &'static str,
        path: &Path,
        min_appends: usize,
        records: &[impl Serialize],
    ) -> Result<Journal, JournalError> {
        let err = |source| error(what, path, source);
        write_whole(path, records).map_err(err)?;
        Ok(Journal {
            what,
            path: path.to_owned(),
            file: owner_file::open(path, Open::Append).map_err(err)?,
            compacted: records.len(),
            appended: 0,
            min_appends,
        })
    }

    /// Appends `record` (a failure is logged: the change is kept in memory until a restart);
    /// returns whether the file is due for [`Journal::compact`].
    pub fn append(&mut self, record: &impl Serialize) -> bool {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        // One write: a crash tears at most this line.
        if let Err(e) = self.file.write_all(&line) {
            warn!(file = %self.path.display(), "cannot save a change to the {} (kept until restart): {e}", self.what);
        }
        self.appended += 1;
        self.appended >= self.compacted.max(self.min_appends)
    }

    /// Rewrites the file as `records` (the current state). On failure the old file stays, the
    /// failure is logged, and it is tried again after as many appends (so at most one line per
    /// batch of them).
    pub fn compact(&mut self, records: &[impl Serialize]) {
        let rewritten = write_whole(&self.path, records)
            .and_then(|()| owner_file::open(&self.path, Open::Append));
        match rewritten {
            Ok(file) => {
                self.file = file;
                self.compacted = records.len();
            }
            Err(e) => warn!(file = %self.path.display(), "cannot compact the {}: {e}", self.what),
        }
        self.appended = 0;
    }
}

fn error(what: &'static str, path: &Path, source: std::io::Error) -> JournalError {
    JournalError {
        what,
        file: path.to_owned(),
        source,
    }
}

fn replay<R: DeserializeOwned>(
    what: &str,
    path: &Path,
    mut reader: impl BufRead,
    apply: &mut impl FnMut(R),
) -> std::io::Result<()> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<R>(text) {
            Ok(record) => apply(record),
            Err(e) => {
                warn!(file = %path.display(), line = number, "skipping an unreadable record of the {what}: {e}")
            }
        }
    }
}

fn write_whole(path: &Path, records: &[impl Serialize]) -> std::io::Result<()> {
    let mut text = Vec::new();
    for record in records {
        serde_json::to_writer(&mut text, record).map_err(std::io::Error::other)?;
        text.push(b'\n');
    }
    owner_file::replace(path, &text, None)
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    #[test]
    fn a_line_torn_inside_a_character_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::create("test log", &path, 4, &[] as &[String]).unwrap();
        journal.append(&"héllo".to_string());
        drop(journal);
        // "ñ" is two bytes: keep only the first.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\"a\xc3").unwrap();
        drop(file);
        let mut seen = Vec::new();
        Journal::replay("test log", &path, |s: String| seen.push(s)).unwrap();
        assert_eq!(seen, ["héllo"]);
    }

    #[test]
    fn compaction_is_due_after_as_many_appends_as_the_compact_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut journal = Journal::create("test log", &path, 4, &[1u32; 10]).unwrap();
        let due: Vec<bool> = (0..10).map(|n| journal.append(&n)).collect();
        assert_eq!(due.iter().position(|d| *d), Some(9), "{due:?}");
        journal.compact(&[7u32, 8]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "7\n8\n");
        // The compact file holds 2: due after `min_appends`.
        let due: Vec<bool> = (0..4).map(|n| journal.append(&n)).collect();
        assert_eq!(due, [false, false, false, true]);
    }
}
