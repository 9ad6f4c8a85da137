//! `kind = "directory"`: the stream written into a local directory that another web server or
//! a CDN origin serves. Every file is written under a temporary name and renamed into place,
//! so a web server never serves half a file.

use std::path::{Component, Path, PathBuf};

use super::error::SinkError;
use super::plan::{join_url, Object};
use crate::config::DirectoryConfig;

pub struct DirectorySink {
    root: PathBuf,
    public_base_url: Option<String>,
}

impl DirectorySink {
    pub fn new(config: &DirectoryConfig) -> Self {
        DirectorySink {
            root: config.path.clone(),
            public_base_url: config.public_base_url.clone(),
        }
    }

    pub async fn put(&self, object: &Object) -> Result<Option<String>, SinkError> {
        let path = self.path_of(&object.key)?;
        let parent = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io_error("cannot create", parent, &e))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temporary = parent.join(format!(".{name}.{}.tmp", std::process::id()));
        tokio::fs::write(&temporary, &object.body)
            .await
            .map_err(|e| io_error("cannot write", &temporary, &e))?;
        if let Err(e) = tokio::fs::rename(&temporary, &path).await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(io_error("cannot rename into", &path, &e));
        }
        Ok(self.public_url(&object.key))
    }

    pub async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("cannot delete", &path, &e)),
        }
    }

    /// The directory exists (or can be made) and takes a file.
    pub async fn check(&self) -> Result<(), SinkError> {
        let probe = Object {
            key: ".selfcast-write-test".into(),
            body: bytes::Bytes::from_static(b"ok"),
            content_type: "text/plain",
            cache_control: "no-store",
        };
        self.put(&probe).await?;
        self.delete(&probe.key).await
    }

    pub fn target(&self) -> String {
        format!("directory {}", self.root.display())
    }

    /// The URL of `key` where another server serves the directory; `None` when no
    /// `public_base_url` is set (playlists then keep relative names).
    pub fn public_url(&self, key: &str) -> Option<String> {
        self.public_base_url
            .as_deref()
            .map(|base| join_url(base, key))
    }

    /// `key` under the root; keys come from the store, but one that would leave the root is
    /// refused all the same.
    fn path_of(&self, key: &str) -> Result<PathBuf, SinkError> {
        let relative = Path::new(key);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(SinkError(format!(
                "refusing to write outside the directory: {key:?}"
            )));
        }
        Ok(self.root.join(relative))
    }
}

fn io_error(what: &str, path: &Path, error: &std::io::Error) -> SinkError {
    SinkError(format!("{what} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(root: &Path, base: Option<&str>) -> DirectorySink {
        DirectorySink::new(&DirectoryConfig {
            path: root.to_owned(),
            public_base_url: base.map(str::to_owned),
        })
    }

    fn object(key: &str, body: &'static [u8]) -> Object {
        Object {
            key: key.into(),
            body: bytes::Bytes::from_static(body),
            content_type: "video/iso.segment",
            cache_control: "no-store",
        }
    }

    #[tokio::test]
    async fn files_are_put_in_place_whole_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), Some("https://cdn.example/live/"));
        sink.check().await.unwrap();
        let url = sink
            .put(&object("0/seg-a-1.m4s", b"segment"))
            .await
            .unwrap();
        assert_eq!(
            url.as_deref(),
            Some("https://cdn.example/live/0/seg-a-1.m4s")
        );
        assert_eq!(
            std::fs::read(dir.path().join("0/seg-a-1.m4s")).unwrap(),
            b"segment"
        );
        sink.put(&object("0/seg-a-1.m4s", b"again")).await.unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path().join("0"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["seg-a-1.m4s"], "no temporary file left behind");
        sink.delete("0/seg-a-1.m4s").await.unwrap();
        sink.delete("0/seg-a-1.m4s").await.unwrap();
        assert!(!dir.path().join("0/seg-a-1.m4s").exists());
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_directory_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink(dir.path(), None);
        assert_eq!(sink.put(&object("0/x.m4s", b"x")).await.unwrap(), None);
        let err = sink.put(&object("../x", b"x")).await.unwrap_err();
        assert!(err.0.contains("outside the directory"), "{err}");
        std::fs::write(dir.path().join("file"), b"not a directory").unwrap();
        let err = sink.put(&object("file/x.m4s", b"x")).await.unwrap_err();
        assert!(err.0.starts_with("cannot create "), "{err}");
    }
}
