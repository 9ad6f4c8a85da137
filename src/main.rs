//! The `selfcast` binary: reads the config, starts RTMP ingest, the pipeline and the web server,
//! prints where to point OBS and where to watch, and shuts down cleanly on Ctrl-C / SIGTERM
//! (the live playlist gets EXT-X-ENDLIST and stays served for one segment so players see it).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use selfcast::brute_force::{self, BruteForceGuard};
use selfcast::chat::history::History;
use selfcast::chat::users::UserStore;
use selfcast::chat::Hub;
use selfcast::config::{AdminConfig, Config};
use selfcast::ingest::{self, ConnectionLimits, IngestSettings};
use selfcast::open_files;
use selfcast::pipeline::{Pipeline, StreamStatus};
use selfcast::secrets::{self, Secret};
use selfcast::settings::{FromConfig, LiveSettings};
use selfcast::sink::{self, SinkStatus};
use selfcast::store::HlsStore;
use selfcast::stream_keys::{FirstKey, StreamKeys};
use selfcast::web::admin::{AdminPassword, Sessions};
use selfcast::web::{self, SecurityHeaders, ViewerCounter, WebState};

/// How long a shutdown waits for the storage to take the stream's last files.
const STORAGE_FINISH: Duration = Duration::from_secs(15);

const USAGE: &str = "\
selfcast: a self-hosted live streaming server (RTMP in, HLS + web page out)

Usage: selfcast [--config PATH]

Options:
  -c, --config PATH   configuration file (default: ./config.toml; built-in defaults if absent)
  -h, --help          show this help
  -V, --version       show the version

Logging: set RUST_LOG (e.g. RUST_LOG=selfcast=debug).";

fn main() {
    let config_path = match parse_args() {
        Ok(Some(path)) => path,
        Ok(None) => return,
        Err(message) => {
            eprintln!("selfcast: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Request traces (warp) only when asked for: RUST_LOG=warp=info. hyper warns on
                // every header timeout, which is how idle keep-alive connections end.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,warp=warn,hyper=error")
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic the server contains (one RTMP connection's) is one log line, never a backtrace.
    selfcast::panics::install_hook();
    if let Err(e) = run(config_path) {
        eprintln!("selfcast: error: {e:#}");
        std::process::exit(1);
    }
}

/// `Ok(None)` when the arguments asked for help or the version (already printed).
fn parse_args() -> Result<Option<Option<PathBuf>>, String> {
    let mut args = std::env::args().skip(1);
    let mut config = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("selfcast {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "-c" | "--config" => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a path")?));
            }
            other => match other.strip_prefix("--config=") {
                Some(path) => config = Some(PathBuf::from(path)),
                None => return Err(format!("unknown argument `{other}`")),
            },
        }
    }
    Ok(Some(config))
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(&path)?),
        None => {
            let default = PathBuf::from("config.toml");
            if default.exists() {
                Ok(Config::load(&default)?)
            } else {
                info!("no ./config.toml: using the built-in defaults");
                Ok(Config::default())
            }
        }
    }
}

fn run(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let (stream_keys, first_key) =
        StreamKeys::load(&config.server.data_dir, config.rtmp.stream_key.clone())
            .context("cannot set up the stream keys")?;
    let admin_password = match &config.admin.password {
        Some(password) => Secret::Existing(password.clone()),
        None => secrets::load_or_generate(&config.server.data_dir, "admin_password")
            .context("cannot set up the admin password")?,
    };
    ffmpeg_next::init().context("cannot initialise the FFmpeg libraries")?;
    // libavcodec would print per-packet decode errors and x264's per-encoder statistics on
    // stderr; every failure that matters is reported by our code, with context and rate limits.
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    let avcodec = ffmpeg_next::codec::version();
    info!(
        "linked FFmpeg libavcodec {}.{}.{}",
        avcodec >> 16,
        (avcodec >> 8) & 0xff,
        avcodec & 0xff
    );

    let file_limit = match open_files::raise_to_hard_limit() {
        Ok(limit) if limit.now > limit.before => {
            info!(
                "open-file limit: {} (raised from {})",
                limit.now, limit.before
            );
            Some(limit.now)
        }
        Ok(limit) => {
            info!("open-file limit: {} (the hard limit)", limit.now);
            Some(limit.now)
        }
        Err(e) => {
            warn!("cannot raise the open-file limit: {e}");
            None
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let keys = Keys {
        stream_keys: Arc::new(stream_keys),
        first_key,
        admin_password,
    };
    runtime.block_on(serve(config, keys, file_limit))
}

/// `[http]`'s limits, the connection cap lowered to what `file_limit` leaves room for.
fn http_limits(config: &Config, file_limit: Option<u64>) -> web::Limits {
    let http = &config.http;
    let max_connections = match file_limit {
        Some(limit) => open_files::connections_that_fit(http.max_connections, limit),
        None => http.max_connections,
    };
    if max_connections < http.max_connections {
        warn!(
            "at most {max_connections} HTTP connections instead of {} ([http] max_connections): \
             that is what the open-file limit leaves room for; raise the hard limit \
             (systemd LimitNOFILE=, docker --ulimit nofile=) to allow more",
            http.max_connections
        );
    }
    web::Limits {
        max_connections,
        max_connections_per_address: http.max_connections_per_address,
        header_timeout: Duration::from_secs(http.header_timeout_seconds),
        stall_timeout: Duration::from_secs(http.stall_timeout_seconds),
    }
}

/// The secrets the server starts with.
struct Keys {
    stream_keys: Arc<StreamKeys>,
    /// What became of the first stream key, when this is the first start.
    first_key: Option<FirstKey>,
    admin_password: Secret,
}

async fn serve(config: Config, keys: Keys, file_limit: Option<u64>) -> anyhow::Result<()> {
    let Keys {
        stream_keys,
        first_key,
        admin_password,
    } = keys;
    let chat_dir = config.server.data_dir.join("chat");
    let chat_users = UserStore::open(&chat_dir).context("cannot set up the chat's user store")?;
    let chat_history = History::open(&chat_dir, config.chat.history_messages)
        .context("cannot set up the chat's history")?;
    let settings = Arc::new(LiveSettings::load(
        &config.server.data_dir,
        FromConfig::of(&config),
    ));
    let chat_config = settings.chat().applied_to(&config.chat);
    let chat = Arc::new(Hub::new(chat_config, chat_users, chat_history)?);
    let fanout_hub = Arc::clone(&chat);
    tokio::spawn(async move { fanout_hub.run_fanout().await });
    let sink = sink::start(&config.storage).await;
    // The console's video settings over config.toml's: the ladder applies at each publish, the
    // segment length and window from this start.
    let video = settings.video();
    let mut store = HlsStore::new(video.playlist_segments, video.segment_seconds);
    if let Some(sink) = &sink {
        store = store.with_events(sink.store_events.clone());
    }
    let store = Arc::new(store);
    let status = Arc::new(StreamStatus::default());
    let pipeline = Arc::new(Pipeline::new(
        Arc::clone(&store),
        Arc::clone(&status),
        video.segment_seconds,
        &video.ladder(),
    ));

    let rtmp_listener = tokio::net::TcpListener::bind(config.rtmp.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for RTMP on {} ([rtmp] listen)",
                config.rtmp.listen
            )
        })?;
    let rtmp_addr = rtmp_listener.local_addr()?;
    let http_listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for HTTP on {} ([http] listen)",
                config.http.listen
            )
        })?;
    let http_addr = http_listener.local_addr()?;
    let security_headers = SecurityHeaders::new(&config.http, &config.storage)
        .context("cannot build the security headers ([http] content_security_policy)")?;

    let (stop_ingest, ingest_stopped) = watch::channel(false);
    let (stop_http, http_stopped) = watch::channel(false);
    let web_state = Arc::new(WebState {
        store: Arc::clone(&store),
        pipeline: Arc::clone(&pipeline),
        viewers: ViewerCounter::default(),
        chat,
        sink: sink.as_ref().map(|sink| Arc::clone(&sink.health)),
        ipfs_playlists: sink.as_ref().and_then(|sink| sink.ipfs_playlists.clone()),
        admin_password: match &config.admin.password {
            Some(password) => AdminPassword::from_config(password.clone()),
            None => AdminPassword::from_file(
                admin_password.value().to_owned(),
                config.server.data_dir.join("admin_password"),
            ),
        },
        admin_guard: BruteForceGuard::new("admin password", admin_guessing(&config.admin)),
        sessions: Sessions::default(),
        stream_keys: Arc::clone(&stream_keys),
        settings,
        health: Default::default(),
        static_dir: config.http.static_dir.clone(),
    });
    let http_task = tokio::spawn(web::serve(
        http_listener,
        http_limits(&config, file_limit),
        security_headers,
        web_state,
        changed(http_stopped),
    ));

    let settings = IngestSettings {
        app: config.rtmp.app.clone(),
        stream_keys: Arc::clone(&stream_keys),
        limits: ConnectionLimits {
            max_connections: config.rtmp.max_connections,
            max_per_address: config.rtmp.max_connections_per_address,
        },
    };
    let ingest_task = tokio::spawn(ingest::serve(
        rtmp_listener,
        settings,
        Arc::clone(&pipeline),
        changed(ingest_stopped),
    ));

    let storage = sink.as_ref().map(|sink| sink.health.status());
    print_banner(
        &config,
        rtmp_addr,
        http_addr,
        (&stream_keys, first_key.as_ref()),
        &admin_password,
        storage.as_ref(),
    );

    shutdown_signal().await;
    info!("shutting down: ending the live playlist (Ctrl-C again to quit at once)");
    let _ = stop_ingest.send(true);
    let finishing = Arc::clone(&pipeline);
    let ended = tokio::task::spawn_blocking(move || finishing.shutdown());
    // Players poll the playlist once per target duration: keep serving that long so they see
    // EXT-X-ENDLIST instead of an error.
    let grace = Duration::from_secs(u64::from(config.hls.segment_seconds));
    let storage = sink.as_ref().map(|sink| Arc::clone(&sink.health));
    tokio::select! {
        _ = async {
            let _ = ended.await;
            tokio::time::sleep(grace).await;
            // The storage's copy ends too: its last segments and EXT-X-ENDLIST playlists.
            if let Some(storage) = storage {
                if !storage.settle(STORAGE_FINISH).await {
                    warn!("storage: quitting with uploads still waiting (failing, or more than {STORAGE_FINISH:?})");
                }
            }
        } => {}
        _ = shutdown_signal() => warn!("second signal: quitting now"),
    }
    let _ = stop_http.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = ingest_task.await;
        let _ = http_task.await;
    })
    .await;
    info!("stopped");
    Ok(())
}

/// Resolves when the watched flag is set (or its sender is gone).
/// `[admin]`'s limits on wrong passwords.
fn admin_guessing(admin: &AdminConfig) -> brute_force::Policy {
    brute_force::Policy {
        free_failures: admin.free_failures,
        first_delay: Duration::from_secs(admin.first_delay_seconds),
        max_delay: Duration::from_secs(admin.max_delay_seconds),
        lockout_failures: admin.lockout_failures,
        lockout: Duration::from_secs(admin.lockout_minutes * 60),
        ..brute_force::Policy::default()
    }
}

async fn changed(mut flag: watch::Receiver<bool>) {
    while !*flag.borrow() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}

/// Ctrl-C, or SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Where to point OBS and where to watch. The stream key is shown only when it was just
/// generated (it is then in data_dir); it never goes to the log.
fn print_banner(
    config: &Config,
    rtmp: std::net::SocketAddr,
    http: std::net::SocketAddr,
    (stream_keys, first_key): (&StreamKeys, Option<&FirstKey>),
    admin_password: &Secret,
    storage: Option<&SinkStatus>,
) {
    let host = |addr: std::net::SocketAddr| {
        if addr.ip().is_unspecified() {
            format!("localhost:{}", addr.port())
        } else {
            addr.to_string()
        }
    };
    let key_line = match first_key {
        Some(FirstKey::Generated(value)) => format!(
            "{value}\n                (generated and saved in {}; add, revoke or renew keys in the console)",
            config.server.data_dir.join("stream_keys.json").display()
        ),
        _ if config.rtmp.stream_key.is_some() => "the stream_key in your config file".into(),
        _ if stream_keys.is_empty() => {
            "none: publishing is disabled until you add one in the console".into()
        }
        _ => "see the console (Stream keys)".into(),
    };
    let admin_line = match admin_password {
        Secret::Generated(value) => format!(
            "user admin, password {value}\n                (generated and saved in {}; set [admin] password to choose your own)",
            config.server.data_dir.join("admin_password").display()
        ),
        Secret::Existing(_) if config.admin.password.is_some() => "user admin, the password in your config file".into(),
        Secret::Existing(_) => format!("user admin, password in {}", config.server.data_dir.join("admin_password").display()),
    };
    println!(
        "\nselfcast {} is running.\n\n  OBS > Settings > Stream (Service: Custom...)\n    Server:     rtmp://{}/{}\n    Stream Key: {}\n\n  Watch:        http://{}/\n  HLS:          http://{}/hls/stream.m3u8\n  Console:      http://{}/admin ({})\n\n  (use this machine's address instead of localhost from other computers; Ctrl-C to stop)\n",
        env!("CARGO_PKG_VERSION"),
        host(rtmp),
        config.rtmp.app,
        key_line,
        host(http),
        host(http),
        host(http),
        admin_line,
    );
    if let Some(storage) = storage {
        let viewers = match &storage.public_url {
            Some(url) => format!("viewers are sent to {url} while it works"),
            None => "viewers are served by selfcast (no public_base_url)".into(),
        };
        println!("  Storage:      {}; {viewers}\n", storage.target);
    }
}
