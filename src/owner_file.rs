//! Files in `data_dir` that only the owner may read (the generated secrets, chat users, the
//! console's settings): opened with mode 0600 when created, and replaced whole without a
//! moment where a crash leaves half a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// How [`open`] opens a file.
#[derive(Debug, Clone, Copy)]
pub enum Open {
    /// A new file; an error if one exists.
    CreateNew,
    /// Created, or emptied, for writing.
    Truncate,
    /// Created, or written at its end.
    Append,
}

pub fn open(path: &Path, how: Open) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    match how {
        Open::CreateNew => options.write(true).create_new(true),
        Open::Truncate => options.write(true).create(true).truncate(true),
        Open::Append => options.append(true).create(true),
    };
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Replaces `path` with `contents`: written to a temporary file, flushed to disk and renamed
/// over it, so a crash leaves the old file or the new one. With `backup`, the old file (if
/// any) is renamed there first.
pub fn replace(path: &Path, contents: &[u8], backup: Option<&Path>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    {
        let mut file = open(temporary, Open::Truncate)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    if let Some(backup) = backup {
        if path.exists() {
            std::fs::rename(path, backup)?;
        }
    }
    std::fs::rename(temporary, path)?;
    // The renames reach the disk with the directory.
    File::open(dir)?.sync_all()
}

/// [`replace`] with `value` as pretty JSON (and a newline, for the owner's editor).
pub fn replace_json<T: serde::Serialize>(
    path: &Path,
    value: &T,
    backup: Option<&Path>,
) -> std::io::Result<()> {
    let mut json = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    json.push(b'\n');
    replace(path, &json, backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn replaced_files_are_private_and_the_old_one_is_the_backup() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let backup = dir.path().join("f.bak");
        replace(&path, b"one", Some(&backup)).unwrap();
        replace(&path, b"two", Some(&backup)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read(&backup).unwrap(), b"one");
        assert!(!dir.path().join("f.tmp").exists());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
