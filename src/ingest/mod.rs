//! RTMP ingest: where encoders (OBS, ffmpeg) publish the stream.
//!
//! ```text
//! serve (this file)        accept loop: connection limit, one task per connection, shutdown
//!  └─ connection.rs        one socket: handshake, reads/writes, timeouts, closing
//!      └─ session.rs       rml_rtmp ServerSession: app and stream key checks, play refused,
//!          │               owns the pipeline Publisher while publishing
//!          ├─ publish.rs   FLV tags → IngestEvents (configs, packets), skips, metadata lines
//!          ├─ clock.rs     32-bit RTMP timestamps → i64 across the wrap
//!          ├─ auth.rs      constant-time stream key compare, app names fit for logs
//!          └─ (crate::log_limit: at most one warning per kind every 5 s)
//! ```
//!
//! Publishing: `rtmp://HOST:1935/<app>/<stream key>`, e.g.
//! `ffmpeg ... -f flv rtmp://HOST:1935/live/KEY`.
//! Wrong app, wrong key, a second publisher or a play request get an RTMP `_error` whose
//! description says why (ffmpeg prints it as "Server error: ...") and the connection is closed.
//!
//! rml_rtmp may panic on hostile input (it indexes AMF values without checking in places): each
//! connection runs in its own task behind `catch_unwind`, so a panic ends that connection only
//! (its `Publisher` is dropped, the stream goes offline) and is logged with the peer's address.

mod auth;
mod clock;
mod connection;

mod publish;
mod session;
/// For the RTMP fuzz target: a connection over bytes in memory.
pub use session::serve_without_io;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, info_span, warn, Instrument};

use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::pipeline::Pipeline;

/// At most this many RTMP connections at once. One publisher at a time is live; the rest of the
/// room is for a reconnecting encoder, refused attempts and probes.
pub const MAX_CONNECTIONS: usize = 16;
/// On shutdown, how long connections get to wind down before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Who may publish.
#[derive(Clone)]
pub struct IngestSettings {
    /// The RTMP application name (`live` in `rtmp://host/live/KEY`).
    pub app: String,
    /// The secret stream key (the RTMP stream name). Never logged.
    pub stream_key: String,
}

impl fmt::Debug for IngestSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestSettings")
            .field("app", &self.app)
            .field(
                "stream_key",
                &format_args!("<{} bytes, redacted>", self.stream_key.len()),
            )
            .finish()
    }
}

/// What every connection task shares (read-only).
struct Shared {
    settings: IngestSettings,
    pipeline: Arc<Pipeline>,
}

/// Accept RTMP connections until `shutdown` resolves; one tokio task per connection, at most
/// [`MAX_CONNECTIONS`] at once (a `Semaphore`, mini-redis style: a connection over the limit is
/// closed at once, with a rate-limited warning).
///
/// On shutdown, open connections are told to stop (a live publish ends, so the pipeline can
/// finish its playlist) and are awaited for up to 5 s, then aborted. Returns when all are gone.
pub async fn serve(
    listener: TcpListener,
    settings: IngestSettings,
    pipeline: Arc<Pipeline>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, app = %settings.app, "RTMP ingest listening");
    }
    let shared = Arc::new(Shared { settings, pipeline });
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut over_limit = LogLimiter::new(LOG_EVERY);
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("accepting an RTMP connection failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            if let Some(suppressed) = over_limit.allow((), Instant::now()) {
                warn!(
                    %peer,
                    suppressed,
                    "refusing RTMP connection: {MAX_CONNECTIONS} connections already open"
                );
            }
            continue; // dropping the socket closes it
        };
        // Small control messages (connect/publish answers) should not wait for Nagle.
        let _ = socket.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let stop = stop_rx.clone();
        let task = async move {
            let _permit = permit; // released when the task ends, even by a panic
            let run = AssertUnwindSafe(connection::run(socket, peer, shared, stop));
            if let Err(panic) = run.catch_unwind().await {
                error!(
                    "connection handler panicked ({}); connection dropped, the server carries on",
                    panic_message(&*panic)
                );
            }
        };
        connections.spawn(task.instrument(info_span!("rtmp", %peer)));
    }

    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        info!(open, "RTMP ingest stopping: closing connections");
    }
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "RTMP connections still open after {}s: aborting them",
            SHUTDOWN_GRACE.as_secs()
        );
        connections.shutdown().await;
    }
    info!("RTMP ingest stopped");
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "unknown panic payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_key_is_not_in_debug_output() {
        let settings = IngestSettings {
            app: "live".into(),
            stream_key: "hunter2-secret".into(),
        };
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("14 bytes"), "{debug}");
    }

    #[test]
    fn panic_payloads() {
        let payload: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert_eq!(panic_message(&*payload), "index out of bounds");
        let payload: Box<dyn Any + Send> = Box::new(String::from("formatted"));
        assert_eq!(panic_message(&*payload), "formatted");
        let payload: Box<dyn Any + Send> = Box::new(42);
        assert_eq!(panic_message(&*payload), "unknown panic payload");
    }
}
