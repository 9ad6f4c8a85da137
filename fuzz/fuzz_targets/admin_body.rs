//! Request bodies of the admin API (src/web/admin.rs), through its real warp routes with the
//! right password: the first byte picks the endpoint, the rest is the JSON body. The hub, the
//! live settings and the stream keys behind it live for the whole run, so bans, hidden
//! messages, posts, settings and keys pile up as on a server. (Signing in and changing the
//! password are left out: wrong passwords would lock the fuzzer's address out, and a right one
//! would change it.)
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use selfcast::brute_force::{BruteForceGuard, Policy};
use selfcast::chat::hub::Hub;
use selfcast::config::ChatConfig;
use selfcast::pipeline::{Pipeline, StreamStatus};
use selfcast::settings::{FromConfig, LiveSettings};
use selfcast::stream_keys::StreamKeys;
use selfcast::store::HlsStore;
use selfcast::web::admin::{self, AdminPassword, Sessions};
use selfcast::web::WebState;
use warp::filters::BoxedFilter;
use warp::Filter;

const PASSWORD: &str = "fuzz-admin-password";
/// Every admin endpoint that reads a body.
const ENDPOINTS: [&str; 14] = [
    "/api/admin/chat/messagevisibility",
    "/api/admin/chat/users/setenabled",
    "/api/admin/chat/users/ipbans/create",
    "/api/admin/chat/users/ipbans/remove",
    "/api/admin/config/chat/disable",
    "/api/admin/chat/system",
    "/api/admin/chat/send",
    "/api/admin/settings/page",
    "/api/admin/session/end",
    "/api/admin/streamkeys/create",
    "/api/admin/streamkeys/comment",
    "/api/admin/streamkeys/reveal",
    "/api/admin/streamkeys/revoke",
    "/api/admin/publisher/disconnect",
];

struct Server {
    runtime: tokio::runtime::Runtime,
    routes: BoxedFilter<(warp::reply::Response,)>,
    authorization: String,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let store = Arc::new(HlsStore::new(6, 2));
        let pipeline = Arc::new(Pipeline::new(
            Arc::clone(&store),
            Arc::new(StreamStatus::default()),
            2,
            &[],
        ));
        let state = Arc::new(WebState {
            store,
            pipeline,
            viewers: Default::default(),
            chat: Arc::new(
                Hub::in_memory(ChatConfig::default())
                    .expect("the default streamer name is valid"),
            ),
            sink: None,
            ipfs_playlists: None,
            admin_password: AdminPassword::from_config(PASSWORD.into()),
            admin_guard: BruteForceGuard::new("admin password", Policy::default()),
            sessions: Sessions::default(),
            stream_keys: Arc::new(
                StreamKeys::load(&settings_dir(), Some("fuzz-stream-key".into()))
                    .expect("stream keys")
                    .0,
            ),
            settings: Arc::new(LiveSettings::load(&settings_dir(), FromConfig::default())),
            health: Default::default(),
            static_dir: None::<PathBuf>,
        });
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
        Server {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            routes: admin::routes(state).boxed(),
            authorization: format!("Basic {credentials}"),
        }
    })
}

/// A fresh directory for `settings.json`, in memory where there is a tmpfs: every settings
/// change is flushed to disk.
fn settings_dir() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let parent = if shm.is_dir() { shm.to_owned() } else { std::env::temp_dir() };
    let dir = parent.join(format!("selfcast-fuzz-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for settings.json");
    dir
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let server = server();
    let path = ENDPOINTS[usize::from(which) % ENDPOINTS.len()];
    let response = server.runtime.block_on(
        warp::test::request()
            .method("POST")
            .path(path)
            .header("authorization", &server.authorization)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .reply(&server.routes),
    );
    let status = response.status();
    assert!(
        !status.is_server_error(),
        "{path} answered {status} to a client's body"
    );
    // Every answer is a JSON body the console can show.
    serde_json::from_slice::<serde_json::Value>(response.body()).expect("a JSON answer");
});
