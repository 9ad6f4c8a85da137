//! The HTTP accept loop, visibly bounded (the shape of tokio-rs/mini-redis `server.rs`, and of
//! our RTMP listener): one task per connection, served by hyper 0.14's `server::conn::Http`,
//! and every limit a stranger can run into in this one file:
//!
//! | limit (`[http]`)               | default | a client over it gets                           |
//! |--------------------------------|---------|-------------------------------------------------|
//! | `max_connections`              | 16384   | `503 Service Unavailable`, closed at once        |
//! | `max_connections_per_address`  | 64      | the same (per IPv4 address or IPv6 /64)          |
//! | `header_timeout_seconds`       | 10      | closed without an answer                         |
//! | `stall_timeout_seconds`        | 30      | closed (see `stall.rs`)                          |
//!
//! The caps refuse instead of stalling: a connection over them is answered and dropped on the
//! spot, so the accept loop never waits for room and never runs out of file descriptors (the
//! global cap is kept under the open-file limit, `crate::open_files`). A websocket keeps its
//! places under both caps while it is open: its socket carries them past the upgrade.
//!
//! The header timeout is hyper's: it runs from the moment hyper waits for a request (the
//! connection opened, or the previous response went out) until the request's headers are in,
//! so it is also the keep-alive idle deadline. Players reload a playlist every target duration
//! (2 s by default), well within it; a connection that was closed just makes the next request
//! open a new one.
//!
//! HTTP/1.1 only: browsers speak HTTP/2 only over TLS, which a reverse proxy would terminate,
//! and cleartext HTTP/2 (h2c) would be a second protocol for attackers to hold sockets with.
//!
//! warp's `addr::remote()` only knows the client's address under `warp::serve`: requests
//! served here carry it as a [`ClientAddr`] extension instead, read with [`client_addr`].
//!
//! Shutdown: the listener closes, every connection is asked to finish (an idle keep-alive
//! closes at once, a response in flight is completed), and what is still open after
//! [`SHUTDOWN_GRACE`] is aborted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::Http;
use hyper::service::Service;
use hyper::{Body, Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, debug_span, info, warn, Instrument};
use warp::Filter;

use super::per_address::{Claim, PerAddress};
use super::stall::{StallDeadline, Upgraded};
use crate::log_limit::{LogLimiter, LOG_EVERY};

/// On shutdown, how long connections get to finish before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// What a connection over a cap is sent before it is closed. Written without waiting (it fits
/// in any socket buffer); a client that had already sent its request may see a reset instead.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 21\r\nretry-after: 5\r\nconnection: close\r\n\r\ntoo many connections\n";

/// The limits of [`serve`] (from `[http]`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no cap.
    pub max_connections_per_address: usize,
    pub header_timeout: Duration,
    pub stall_timeout: Duration,
}

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The client's address, for filters (what `warp::addr::remote()` gives under `warp::serve`).
pub fn client_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Copy {
    warp::ext::optional::<ClientAddr>().map(|addr: Option<ClientAddr>| addr.map(|addr| addr.0))
}

/// Why a connection was refused (one log line per reason every few seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Refusal {
    AddressFull,
    ServerFull,
}

/// What a connection holds while its socket is open.
type Places = (Claim, OwnedSemaphorePermit);

/// Serves `service` on every connection `listener` accepts until `shutdown` resolves; returns
/// once every connection is gone.
pub async fn serve<S>(
    listener: TcpListener,
    limits: Limits,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, ?limits, "HTTP listening");
    }
    let room = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = PerAddress::new(limits.max_connections_per_address);
    let mut http = Http::new();
    http.http1_only(true)
        .http1_header_read_timeout(limits.header_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut refusals = LogLimiter::new(LOG_EVERY);
    let mut accept_errors = LogLimiter::new(LOG_EVERY);
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
                if let Some(suppressed) = accept_errors.allow((), Instant::now()) {
                    warn!(suppressed, "accepting an HTTP connection failed: {e}");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let places: Places = match (
            per_address.claim(peer.ip()),
            Arc::clone(&room).try_acquire_owned(),
        ) {
            (Some(claim), Ok(permit)) => (claim, permit),
            (claim, _) => {
                let refusal = match claim {
                    None => Refusal::AddressFull,
                    Some(_) => Refusal::ServerFull,
                };
                refuse(socket, peer, refusal, &limits, &mut refusals);
                continue;
            }
        };
        // Playlists and small JSON answers should not wait for Nagle.
        let _ = socket.set_nodelay(true);
        let upgraded = Upgraded::default();
        let io = StallDeadline::new(socket, limits.stall_timeout, upgraded.clone(), places);
        let service = ConnectionService {
            inner: service.clone(),
            client: ClientAddr(peer),
            upgraded,
        };
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut stop = stop_rx.clone();
        let task = async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Timeouts and clients that go away are routine; nothing to warn about.
            if let Err(e) = ended {
                debug!("connection ended: {e}");
            }
        };
        connections.spawn(task.instrument(debug_span!("http", %peer)));
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            open = connections.len(),
            "HTTP connections still open after {SHUTDOWN_GRACE:?}: aborting them"
        );
        connections.shutdown().await;
    }
    info!("HTTP stopped");
}

/// Answers `503` without waiting and closes the socket (by dropping it).
fn refuse(
    socket: TcpStream,
    peer: SocketAddr,
    refusal: Refusal,
    limits: &Limits,
    log: &mut LogLimiter<Refusal>,
) {
    let _ = socket.try_write(REFUSAL);
    if let Some(suppressed) = log.allow(refusal, Instant::now()) {
        match refusal {
            Refusal::AddressFull => warn!(
                %peer,
                suppressed,
                "refusing HTTP connections: {} already open from this address \
                 ([http] max_connections_per_address)",
                limits.max_connections_per_address
            ),
            Refusal::ServerFull => warn!(
                %peer,
                suppressed,
                "refusing HTTP connections: {} already open in all ([http] max_connections)",
                limits.max_connections
            ),
        }
    }
}

/// One connection's view of the service: puts the client's address in each request and marks
/// the connection upgraded when the answer is `101 Switching Protocols` (the chat websocket),
/// which lifts its stall deadline.
struct ConnectionService<S> {
    inner: S,
    client: ClientAddr,
    upgraded: Upgraded,
}

impl<S> Service<Request<Body>> for ConnectionService<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        request.extensions_mut().insert(self.client);
        let upgraded = self.upgraded.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                upgraded.mark();
            }
            Ok(response)
        })
    }
}
