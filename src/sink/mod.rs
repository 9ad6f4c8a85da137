//! Sinks: a copy of the live stream outside selfcast's memory, so viewers can fetch video from
//! somewhere with more bandwidth than the small box (a directory another web server serves,
//! S3-compatible storage behind a CDN, an IPFS gateway).
//!
//! ```text
//! HlsStore ──StoreEvent──▶ Uploader task (one) ── Plan: what to put, when a playlist may go
//!  (pipeline thread,            │                   ▼
//!   never waits)               ├─▶ job tasks: put / delete through the Backend, retried
//!                               ▼                 with backoff, `concurrency` at a time
//!                         SinkHealth ──▶ /api/status (state, backlog, latencies, public URL)
//! ```
//!
//! - [`plan`]: the bookkeeping, no I/O: a playlist is put only once every file it lists is
//!   stored; playlists point at the stored files' public URLs; what left the window is deleted.
//! - [`uploader`]: the task that runs the plan's jobs, retries and reports.
//! - [`health`]: what `/api/status` shows, and whether viewers should be sent to the sink.
//! - [`backend`]: one enum over the destinations: [`directory`], [`s3`], [`ipfs`]; what they
//!   report when they fail is a [`error::SinkError`].

pub mod backend;
pub mod directory;
pub mod error;
pub mod health;
pub mod ipfs;
pub mod plan;
pub mod s3;
pub mod uploader;

pub use health::{SinkHealth, SinkStatus};
pub use ipfs::{IpfsPlaylists, IPFS_PLAYLISTS_ROOT};

use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::config::{StorageConfig, StorageKind};
use crate::store::StoreEvent;

/// A running sink: where the store reports its changes, and how the copy goes.
pub struct Sink {
    /// For [`crate::store::HlsStore::with_events`].
    pub store_events: UnboundedSender<StoreEvent>,
    pub health: Arc<SinkHealth>,
    /// With `kind = "ipfs"`: the playlists selfcast serves at `/hls-ipfs/`.
    pub ipfs_playlists: Option<Arc<IpfsPlaylists>>,
}

/// Starts the sink `config` asks for (`None` for `kind = "memory"`). Its start-up check runs in
/// the background: a destination that is down is reported there and in `/api/status`, and the
/// server starts all the same.
pub async fn start(config: &StorageConfig) -> Option<Sink> {
    let backend = match config.kind {
        StorageKind::Memory => return None,
        StorageKind::Directory => {
            backend::Backend::Directory(directory::DirectorySink::new(&config.directory))
        }
        StorageKind::S3 => backend::Backend::S3(s3::S3Sink::new(&config.s3).await),
        StorageKind::Ipfs => match ipfs::IpfsSink::new(&config.ipfs) {
            Ok(sink) => backend::Backend::Ipfs(sink),
            Err(e) => {
                tracing::error!("storage: cannot use the IPFS node: {e}; serving from memory");
                return None;
            }
        },
    };
    let ipfs_playlists = match &backend {
        backend::Backend::Ipfs(sink) => Some(sink.playlists()),
        _ => None,
    };
    let health = Arc::new(SinkHealth::new(
        backend.kind(),
        backend.target(),
        backend.public_master_url(),
    ));
    let (store_events, receiver) = unbounded_channel();
    tokio::spawn(uploader::run(
        backend,
        config.concurrency,
        receiver,
        Arc::clone(&health),
    ));
    Some(Sink {
        store_events,
        health,
        ipfs_playlists,
    })
}
