//! The destinations a sink writes to, behind one enum (each is a few async calls; an enum keeps
//! them without boxed futures).

use super::directory::DirectorySink;
use super::error::SinkError;
use super::ipfs::IpfsSink;
use super::plan::Object;
use super::s3::S3Sink;
use crate::hls::files::MASTER_PLAYLIST_NAME;

pub enum Backend {
    Directory(DirectorySink),
    S3(S3Sink),
    Ipfs(IpfsSink),
}

impl Backend {
    /// Stores `object`; returns the URL playlists should use for it (`None`: its relative name
    /// works, the playlist being stored next to it).
    pub async fn put(&self, object: &Object) -> Result<Option<String>, SinkError> {
        match self {
            Backend::Directory(sink) => sink.put(object).await,
            Backend::S3(sink) => sink.put(object).await,
            Backend::Ipfs(sink) => sink.put(object).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), SinkError> {
        match self {
            Backend::Directory(sink) => sink.delete(key).await,
            Backend::S3(sink) => sink.delete(key).await,
            Backend::Ipfs(sink) => sink.delete(key).await,
        }
    }

    /// Whether the destination can be written at all (at start-up).
    pub async fn check(&self) -> Result<(), SinkError> {
        match self {
            Backend::Directory(sink) => sink.check().await,
            Backend::S3(sink) => sink.check().await,
            Backend::Ipfs(sink) => sink.check().await,
        }
    }

    /// `directory`, `s3`, `ipfs`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Directory(_) => "directory",
            Backend::S3(_) => "s3",
            Backend::Ipfs(_) => "ipfs",
        }
    }

    /// Where it writes, in words for the log and the status (no secrets).
    pub fn target(&self) -> String {
        match self {
            Backend::Directory(sink) => sink.target(),
            Backend::S3(sink) => sink.target(),
            Backend::Ipfs(sink) => sink.target(),
        }
    }

    /// Where viewers fetch the master playlist from this destination, if they can.
    pub fn public_master_url(&self) -> Option<String> {
        match self {
            Backend::Directory(sink) => sink.public_url(MASTER_PLAYLIST_NAME),
            Backend::S3(sink) => Some(sink.public_url(MASTER_PLAYLIST_NAME)),
            Backend::Ipfs(sink) => Some(sink.public_master_url()),
        }
    }
}
