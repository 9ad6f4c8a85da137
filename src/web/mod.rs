//! The HTTP side, all on one port with warp: the viewer page, the HLS playlists and segments,
//! and the JSON API. Connections are accepted by our own loop (`listener.rs`: caps, deadlines,
//! shutdown) and every response gets the security headers (`headers.rs`).
//!
//! | path                          | what                                                     |
//! |-------------------------------|----------------------------------------------------------|
//! | `/hls/stream.m3u8`            | master playlist                                          |
//! | `/hls/<variant>/stream.m3u8`  | media playlist                                           |
//! | `/hls/<variant>/<file>`       | init (`init-*.mp4`) and media (`seg-*.m4s`) segments     |
//! | `/hls-ipfs/...`               | with `[storage] kind = "ipfs"`: the same playlists, naming |
//! |                               | the segments by their IPFS gateway URLs                  |
//! | `/api/status`                 | stream status JSON                                       |
//! | `/api/config`, `/customstyles.css` | the page settings the console changes (title, summary...) |
//! | `/thumbnail.jpg`              | the stream's preview image                               |
//! | `/api/chat/register`, `/api/chat`, `/ws` | chat: register, recent messages, the websocket |
//! | `/api/chat/messagevisibility`, `/api/chat/users/...` | the moderators' actions (their chat token) |
//! | `/api/admin/...`              | moderation, the console's sign-in and live settings      |
//! | `/admin`                      | the admin console (a page file, `static/admin.html`)     |
//! | `/vendor/...`                 | vendored player libraries (hls.js)                       |
//! | everything else               | the page: the owner's `static_dir`, else the built-in one |

pub mod admin;
mod assets;
mod chat;
mod chat_moderation;
mod headers;
mod hls;
mod link_preview;
mod listener;
mod page;
mod per_address;
mod stall;
mod status;
mod viewers;

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::service::{service_fn, Service};
use hyper::{Body, Request};
use tokio::net::TcpListener;
use warp::Filter;

pub use headers::SecurityHeaders;
pub use listener::Limits;
pub use viewers::ViewerCounter;

use headers::Framing;
// The client's address for filters: `warp::addr::remote()` is always `None` here (see
// `listener.rs`).
use listener::client_addr;

use crate::chat::Hub;
use crate::pipeline::Pipeline;
use crate::settings::LiveSettings;
use crate::sink::{IpfsPlaylists, SinkHealth};
use crate::store::HlsStore;
use crate::stream_keys::StreamKeys;

/// One module's routes, boxed. Warp's filters are types: left unboxed, the whole tree is one
/// nested type that takes rustc many minutes to compile; boxed at each module it stays small
/// (one dynamic call per module per request).
pub type Routes = warp::filters::BoxedFilter<(warp::reply::Response,)>;

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
    /// For signing in to the admin API and console (user `admin`).
    pub admin_password: admin::AdminPassword,
    /// Wrong admin passwords per address, for every way of signing in.
    pub admin_guard: crate::brute_force::BruteForceGuard,
    /// The console's sign-in sessions.
    pub sessions: admin::Sessions,
    /// Who may publish; the console adds and revokes keys.
    pub stream_keys: Arc<StreamKeys>,
    /// What the console changes live: the page's title, summary...
    pub settings: Arc<LiveSettings>,
    /// The server's CPU, memory and viewers over the broadcast, for the console.
    pub health: admin::Health,
    pub static_dir: Option<PathBuf>,
}

/// Serves the routes on `listener` within `limits` until `shutdown` resolves; returns once
/// every connection is closed.
pub async fn serve(
    listener: TcpListener,
    limits: Limits,
    headers: SecurityHeaders,
    state: Arc<WebState>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_sampling, sampling_stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(admin::sample_health_until(Arc::clone(&state), async {
        let _ = sampling_stopped.await;
    }));
    let routes = hls::routes(Arc::clone(&state))
        .or(status::routes(Arc::clone(&state)))
        .unify()
        .or(page::routes(Arc::clone(&state)))
        .unify()
        .or(chat::routes(Arc::clone(&state)))
        .unify()
        .or(chat_moderation::routes(Arc::clone(&state)))
        .unify()
        .or(admin::routes(Arc::clone(&state)))
        .unify()
        .or(assets::routes(state))
        .unify()
        .with(warp::trace::request());
    let routes = warp::service(routes);
    let headers = Arc::new(headers);
    let service = service_fn(move |request: Request<Body>| {
        let mut routes = routes.clone();
        let headers = Arc::clone(&headers);
        let framing = Framing::of_path(request.uri().path());
        async move {
            let mut response = routes.call(request).await?;
            headers.apply(framing, response.headers_mut());
            Ok::<_, Infallible>(response)
        }
    });
    listener::serve(listener, limits, service, shutdown).await;
    let _ = stop_sampling.send(());
    let _ = sampler.await;
}
