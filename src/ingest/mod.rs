//! RTMP ingest: where encoders (OBS, ffmpeg) publish the stream.
//!
//! ```text
//! serve (this file)        accept loop (Listener): slots, one task per connection, shutdown
//!  ├─ slots.rs             who holds the connection slots, who is closed to make room
//!  ├─ first_bytes.rs       TCP_DEFER_ACCEPT; has an accepted socket sent RTMP's version byte
//!  └─ connection.rs        one socket: handshake, reads/writes, deadlines, closing
//!      └─ session.rs       rml_rtmp ServerSession: app and stream key checks, play refused,
//!          │               owns the pipeline Publisher while publishing
//!          ├─ publish.rs   FLV tags → IngestEvents (configs, packets), skips, metadata lines
//!          ├─ clock.rs     32-bit RTMP timestamps → i64 across the wrap
//!          ├─ auth.rs      constant-time stream key compare, app names fit for logs
//!          └─ (crate::brute_force: wrong stream keys per address; crate::log_limit: at most
//!              one warning per kind, and per address, every 5 s)
//! ```
//!
//! Publishing: `rtmp://HOST:1935/<app>/<stream key>`, e.g.
//! `ffmpeg ... -f flv rtmp://HOST:1935/live/KEY`.
//! Wrong app, wrong key, a second publisher or a play request get an RTMP `_error` whose
//! description says why (ffmpeg prints it as "Server error: ...") and the connection is closed.
//!
//! What a stranger can hold (all set up in [`Listener`]):
//! - connection slots: `[rtmp] max_connections` in all and `max_connections_per_address` not
//!   publishing per address; a new connection is always let in, by closing the weakest stranger
//!   (see `slots.rs`), so idle sockets cannot keep the streamer's encoder out;
//! - time: the handshake within 5 s, the publish started within 10 s of connecting (see
//!   `connection.rs`), and 256 KiB of input before that;
//! - guesses: wrong stream keys from one address are slowed down, then locked out
//!   ([`BruteForceGuard`]); while slowed down, even the right key is refused until the delay
//!   has passed, with a message saying how long;
//! - log lines: what it triggers (dropped connections, refusals, panics) is logged once per
//!   address and kind every 5 s, with the number left out.
//!
//! rml_rtmp and rml_amf0 are patched forks (`vendor/rml_rtmp/PATCHES.md`: the panics and the
//! stack overflow hostile input caused, found by reading them and by the `rtmp_session` fuzz
//! target). Should another panic remain, each connection runs in its own task behind
//! [`panics::catch`], so it ends that connection only (its `Publisher` is dropped, the stream
//! goes offline) and is logged as one line with the peer's address; the panic hook never
//! prints a backtrace for it.

mod auth;
mod clock;
mod connection;
mod first_bytes;
mod publish;
mod session;
mod slots;

/// For the RTMP fuzz target: a connection over bytes in memory.
pub use session::serve_without_io;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{self, AbortHandle, JoinSet};
use tracing::{error, info, info_span, warn, Instrument};

use crate::brute_force::{address_key, BruteForceGuard, Policy};
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::panics;
use crate::pipeline::Pipeline;
use crate::stream_keys::StreamKeys;
pub use slots::ConnectionLimits;
use slots::{AllPublishing, ConnectionTable, Progress, ProgressCell};

/// On shutdown, how long connections get to wind down before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Who may publish, and how many connections strangers may hold.
#[derive(Clone)]
pub struct IngestSettings {
    /// The RTMP application name (`live` in `rtmp://host/live/KEY`).
    pub app: String,
    /// The stream keys that may publish (the RTMP stream name), changed live by the console.
    /// Never logged.
    pub stream_keys: Arc<StreamKeys>,
    pub limits: ConnectionLimits,
}

impl fmt::Debug for IngestSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestSettings")
            .field("app", &self.app)
            // `StreamKeys` has no `Debug`: the keys cannot end up in a log line.
            .field("stream_keys", &format_args!("<redacted>"))
            .field("limits", &self.limits)
            .finish()
    }
}

/// What every connection task gets from the server: who may publish, where the stream goes,
/// the wrong-key counter and the per-address log limits.
struct IngestContext {
    settings: IngestSettings,
    pipeline: Arc<Pipeline>,
    stream_key_guard: BruteForceGuard,
    peer_lines: Mutex<LogLimiter<(IpAddr, PeerLine)>>,
}

/// The kinds of log line a peer can trigger, each limited per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerLine {
    /// Its connection was dropped (handshake failure, deadline, protocol error...).
    Dropped,
    /// Its connection was closed to make room for a newer one.
    Evicted,
    /// Its connection handler panicked.
    Panicked,
    /// A publish refused because of earlier wrong stream keys.
    TooManyWrongKeys,
    /// A publish with a wrong stream key.
    WrongKey,
    /// A connect to an app this server does not have.
    UnknownApp,
    /// A play request (viewers watch over HLS).
    PlayRefused,
}

impl IngestContext {
    fn new(settings: IngestSettings, pipeline: Arc<Pipeline>) -> Self {
        IngestContext {
            settings,
            pipeline,
            stream_key_guard: BruteForceGuard::new("stream key", Policy::default()),
            peer_lines: Mutex::new(LogLimiter::new(LOG_EVERY)),
        }
    }

    /// `Some(lines left out since the last one)` when a line of `kind` about `peer` may be
    /// logged now: one per address and kind every 5 s.
    fn log_allowed(&self, peer: IpAddr, kind: PeerLine) -> Option<u64> {
        let mut lines = self
            .peer_lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.allow((address_key(peer), kind), Instant::now())
    }
}

/// Accept RTMP connections until `shutdown` resolves; see [`Listener`].
pub async fn serve(
    listener: TcpListener,
    settings: IngestSettings,
    pipeline: Arc<Pipeline>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(
            %addr,
            app = %settings.app,
            max_connections = settings.limits.max_connections,
            max_connections_per_address = settings.limits.max_per_address,
            "RTMP ingest listening"
        );
    }
    if let Err(e) = first_bytes::defer_accept(&listener, connection::HANDSHAKE_TIMEOUT) {
        warn!("RTMP sockets reach the server before they speak (TCP_DEFER_ACCEPT: {e})");
    }
    let (stop, _) = watch::channel(false);
    let listener = Listener {
        listener,
        slots: ConnectionTable::new(settings.limits),
        context: Arc::new(IngestContext::new(settings, pipeline)),
        connections: JoinSet::new(),
        stop,
    };
    listener.run(shutdown).await;
}

/// The accept loop with everything that bounds it (mini-redis's `Listener`): one tokio task
/// per connection in `connections`, the slots they hold in `slots` (a newcomer is always let
/// in, strangers make room: see `slots.rs`), and `stop` to end them all on shutdown.
struct Listener {
    listener: TcpListener,
    context: Arc<IngestContext>,
    slots: ConnectionTable<task::Id, AbortHandle>,
    connections: JoinSet<()>,
    /// Set on shutdown: every connection ends, a live publish too (so the pipeline can finish
    /// its playlist).
    stop: watch::Sender<bool>,
}

impl Listener {
    /// Until `shutdown`; then open connections are told to stop and get 5 s, then are aborted.
    /// Returns when all are gone.
    async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                // Reap ended tasks first, so their slots are free for the next accept.
                Some(ended) = self.connections.join_next_with_id(), if !self.connections.is_empty() => {
                    let id = match ended {
                        Ok((id, ())) => id,
                        Err(aborted) => aborted.id(),
                    };
                    self.slots.remove(&id);
                    continue;
                }
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(e) => {
                    warn!("accepting an RTMP connection failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
        self.shut_down().await;
    }

    /// Makes room for the connection (closing strangers if need be) and starts its task.
    fn admit(&mut self, socket: TcpStream, peer: SocketAddr) {
        match self.slots.make_room(peer.ip()) {
            Ok(evicted) => {
                for stranger in evicted {
                    // A task that has not started publishing holds nothing to wind down.
                    stranger.handle.abort();
                    if let Some(suppressed) = self
                        .context
                        .log_allowed(stranger.address, PeerLine::Evicted)
                    {
                        let limits = self.context.settings.limits;
                        info!(
                            address = %stranger.address,
                            suppressed,
                            "closed an RTMP connection that had not started publishing, to make \
                             room for a new one from {peer} ({} per address, {} in all)",
                            limits.max_per_address,
                            limits.max_connections,
                        );
                    }
                }
            }
            Err(AllPublishing) => {
                if let Some(suppressed) = self.context.log_allowed(peer.ip(), PeerLine::Evicted) {
                    warn!(%peer, suppressed, "refusing RTMP connection: every slot is publishing");
                }
                return; // dropping the socket closes it
            }
        }
        // Small control messages (connect/publish answers) should not wait for Nagle.
        let _ = socket.set_nodelay(true);
        let progress = ProgressCell::new(if first_bytes::has_spoken(&socket) {
            Progress::Spoke
        } else {
            Progress::Connected
        });
        let task = handle_connection(
            socket,
            peer,
            Arc::clone(&self.context),
            self.stop.subscribe(),
            progress.clone(),
        );
        let handle = self
            .connections
            .spawn(task.instrument(info_span!("rtmp", %peer)));
        self.slots.insert(handle.id(), peer.ip(), progress, handle);
    }

    async fn shut_down(mut self) {
        let _ = self.stop.send(true);
        let open = self.connections.len();
        if open > 0 {
            info!(open, "RTMP ingest stopping: closing connections");
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                "RTMP connections still open after {}s: aborting them",
                SHUTDOWN_GRACE.as_secs()
            );
            self.connections.shutdown().await;
        }
        info!("RTMP ingest stopped");
    }
}

/// One connection's task: the connection, with a panic contained to it and logged as one line.
async fn handle_connection(
    socket: TcpStream,
    peer: SocketAddr,
    context: Arc<IngestContext>,
    stop: watch::Receiver<bool>,
    progress: ProgressCell,
) {
    let run = connection::run(socket, peer, Arc::clone(&context), stop, progress);
    if let Err(panic) = panics::catch(run).await {
        if let Some(suppressed) = context.log_allowed(peer.ip(), PeerLine::Panicked) {
            error!(
                suppressed,
                "connection handler {panic}; connection dropped, the server carries on"
            );
        }
    }
}
