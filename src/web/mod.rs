//! The HTTP side, all on one port with warp: the viewer page, the HLS playlists and segments,
//! and the JSON API.
//!
//! | path                          | what                                                     |
//! |-------------------------------|----------------------------------------------------------|
//! | `/hls/stream.m3u8`            | master playlist                                          |
//! | `/hls/<variant>/stream.m3u8`  | media playlist                                           |
//! | `/hls/<variant>/<file>`       | init (`init-*.mp4`) and media (`seg-*.m4s`) segments     |
//! | `/hls-ipfs/...`               | with `[storage] kind = "ipfs"`: the same playlists, naming |
//! |                               | the segments by their IPFS gateway URLs                  |
//! | `/api/status`                 | stream status JSON                                       |
//! | `/api/chat/register`, `/api/chat`, `/ws` | chat: register, recent messages, the websocket |
//! | `/api/admin/...`              | moderation (HTTP Basic auth), docs/API.md                |
//! | `/vendor/...`                 | vendored player libraries (hls.js)                       |
//! | everything else               | the page: the owner's `static_dir`, else the built-in one |

pub mod admin;
mod assets;
mod chat;
mod hls;
mod status;
mod viewers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use warp::Filter;

pub use viewers::ViewerCounter;

use crate::chat::Hub;
use crate::pipeline::Pipeline;
use crate::sink::{IpfsPlaylists, SinkHealth};
use crate::store::HlsStore;

/// What the handlers read.
pub struct WebState {
    pub store: Arc<HlsStore>,
    pub pipeline: Arc<Pipeline>,
    pub viewers: ViewerCounter,
    pub chat: Arc<Hub>,
    /// The storage sink's health, when one is configured (`[storage] kind` other than memory).
    pub sink: Option<Arc<SinkHealth>>,
    /// The playlists of an IPFS sink (`[storage] kind = "ipfs"`), served at `/hls-ipfs/`.
    pub ipfs_playlists: Option<Arc<IpfsPlaylists>>,
    /// For HTTP Basic auth on `/api/admin/` (user `admin`).
    pub admin_password: String,
    /// Wrong admin passwords per address, for every way of signing in.
    pub admin_guard: crate::brute_force::BruteForceGuard,
    pub title: String,
    pub static_dir: Option<PathBuf>,
}

/// Serve until `shutdown` resolves; returns the bound address once listening.
pub fn serve(
    listen: SocketAddr,
    state: Arc<WebState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), warp::Error> {
    let routes = hls::routes(Arc::clone(&state))
        .or(status::routes(Arc::clone(&state)))
        .or(chat::routes(Arc::clone(&state)))
        .or(admin::routes(Arc::clone(&state)))
        .or(assets::routes(state))
        .with(warp::trace::request());
    warp::serve(routes).try_bind_with_graceful_shutdown(listen, shutdown)
}
