//! One RTMP connection's I/O: the handshake, the read loop, writes, timeouts and closing.
//! What the bytes mean is [`super::session`]'s business.
//!
//! Deadlines: the handshake must complete within [`HANDSHAKE_TIMEOUT`] and the publish must
//! start within [`PUBLISH_START_TIMEOUT`] of connecting (or of the last publish's end): OBS and
//! ffmpeg need a few round trips, well under a second, so a slot is not held long by someone
//! who only talks. A peer that sends nothing for [`IDLE_TIMEOUT`] is dropped, and so is one
//! that does not read what we send within [`WRITE_TIMEOUT`].
//!
//! Progress: the connection tells its slot ([`ProgressCell`]) when the first handshake packet is
//! in, when the handshake is done and while it publishes, so that when room must be made the
//! accept loop closes strangers that got less far first, and never the publisher (see
//! `slots.rs`).
//!
//! Memory: rml_rtmp assembles messages of up to 16 MiB before we see them. Before a publish is
//! accepted (so before the stream key is checked) a peer may send at most
//! [`PRE_PUBLISH_BYTES`]: connect, createStream and publish take a few hundred bytes, so an
//! unauthenticated peer cannot make the server buffer large messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::ServerSessionError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, info, warn};

use super::session::{Flow, RtmpSession};
use super::slots::{Progress, ProgressCell};
use super::{IngestContext, PeerLine};

pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// From the connection (not the handshake): the handshake's time counts.
pub(super) const PUBLISH_START_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// After refusing a peer, how long to keep reading (and discarding) so that our refusal is not
/// lost to a TCP reset, which closing with unread input would cause.
const LINGER: Duration = Duration::from_secs(2);
const READ_BUFFER: usize = 64 * 1024;
/// What a peer may send while not publishing (OBS and ffmpeg need under 2 KiB).
pub(super) const PRE_PUBLISH_BYTES: u64 = 256 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("server shutting down")]
    Shutdown,
    #[error("disconnected by the admin")]
    Disconnected,
    #[error("refused")]
    Refused,
    #[error("no RTMP handshake within {}s", HANDSHAKE_TIMEOUT.as_secs())]
    HandshakeTimeout,
    #[error("RTMP handshake failed: {0}{hint}", hint = .1.unwrap_or(""))]
    Handshake(HandshakeError, Option<&'static str>),
    #[error("nothing received for {}s", IDLE_TIMEOUT.as_secs())]
    Idle,
    #[error("connected for {}s without publishing", PUBLISH_START_TIMEOUT.as_secs())]
    NotPublishing,
    #[error("sent more than {} KiB without publishing", PRE_PUBLISH_BYTES / 1024)]
    TooMuchBeforePublish,
    #[error("peer did not read our data for {}s", WRITE_TIMEOUT.as_secs())]
    WriteTimeout,
    #[error("RTMP protocol error: {0}")]
    Protocol(#[from] ServerSessionError),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serve one connection until it ends; logs why it ended (once per address every 5 s, but
/// for the ordinary ends, which are debug lines).
pub(super) async fn run(
    socket: TcpStream,
    peer: SocketAddr,
    context: Arc<IngestContext>,
    shutdown: watch::Receiver<bool>,
    progress: ProgressCell,
) {
    let opened = Instant::now();
    let mut conn = Connection {
        socket,
        shutdown,
        progress,
        bytes_in: 0,
        buf: vec![0; READ_BUFFER],
    };
    debug!("connection opened");
    let ended = conn.serve(peer, opened, Arc::clone(&context)).await;
    let bytes_received = conn.bytes_in;
    let warning = match &ended {
        Ended::PeerClosed | Ended::Shutdown | Ended::Refused | Ended::Disconnected => {
            debug!(bytes_received, "connection closed: {ended}");
            return;
        }
        Ended::Protocol(_) | Ended::Io(_) => true,
        // Port scanners do this all day on a public server: not worth a warning.
        Ended::Handshake(..)
        | Ended::HandshakeTimeout
        | Ended::Idle
        | Ended::NotPublishing
        | Ended::TooMuchBeforePublish
        | Ended::WriteTimeout => false,
    };
    let Some(suppressed) = context.log_allowed(peer.ip(), PeerLine::Dropped) else {
        return;
    };
    if warning {
        warn!(bytes_received, suppressed, "connection dropped: {ended}");
    } else {
        info!(bytes_received, suppressed, "connection dropped: {ended}");
    }
}

struct Connection {
    socket: TcpStream,
    shutdown: watch::Receiver<bool>,
    progress: ProgressCell,
    bytes_in: u64,
    buf: Vec<u8>,
}

impl Connection {
    async fn serve(
        &mut self,
        peer: SocketAddr,
        opened: Instant,
        context: Arc<IngestContext>,
    ) -> Ended {
        let leftover = match self.handshake(opened).await {
            Ok(leftover) => leftover,
            Err(ended) => return ended,
        };
        debug!("RTMP handshake complete");
        self.progress.set(Progress::Handshaken);
        let (mut session, greeting) = match RtmpSession::new(peer, context) {
            Ok(started) => started,
            Err(e) => return e.into(),
        };
        let ended = match self.write(&greeting).await {
            Ok(()) => self.session_loop(&mut session, leftover, opened).await,
            Err(ended) => ended,
        };
        session.set_end_reason(match ended {
            Ended::PeerClosed => "connection closed by the publisher",
            Ended::Shutdown => "server shutting down",
            Ended::Disconnected => "disconnected by the admin",
            Ended::Idle => "the publisher went silent",
            _ => "connection lost",
        });
        // Dropping the session here ends the publish (if any) before the connection's last log.
        drop(session);
        if matches!(ended, Ended::Refused) {
            self.linger().await;
        }
        ended
    }

    /// The handshake (C0/C1/C2 ↔ S0/S1/S2); returns the bytes received after it.
    async fn handshake(&mut self, opened: Instant) -> Result<Vec<u8>, Ended> {
        let deadline = opened + HANDSHAKE_TIMEOUT;
        let mut handshake = Handshake::new(PeerType::Server);
        let mut first_bytes = Vec::new();
        loop {
            let n = self.read(deadline, Ended::HandshakeTimeout).await?;
            if first_bytes.len() < 8 {
                first_bytes.extend_from_slice(&self.buf[..n.min(8)]);
            }
            match handshake.process_bytes(&self.buf[..n]) {
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    if !response_bytes.is_empty() {
                        // rml_rtmp answers once C0 and C1 are in and well-formed.
                        self.progress.set(Progress::Greeted);
                    }
                    self.write(&response_bytes).await?;
                }
                Ok(HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                }) => {
                    self.write(&response_bytes).await?;
                    return Ok(remaining_bytes);
                }
                Err(e) => return Err(Ended::Handshake(e, not_rtmp_hint(&first_bytes))),
            }
        }
    }

    async fn session_loop(
        &mut self,
        session: &mut RtmpSession,
        leftover: Vec<u8>,
        opened: Instant,
    ) -> Ended {
        let mut out = Vec::new();
        let mut input = leftover;
        let mut was_publishing = false;
        let mut not_publishing_since = opened;
        let mut bytes_when_not_publishing = self.bytes_in;
        loop {
            if !input.is_empty() {
                out.clear();
                let flow = match session.handle_input(&input, &mut out) {
                    Ok(flow) => flow,
                    Err(e) => return e.into(),
                };
                if let Err(ended) = self.write(&out).await {
                    return ended;
                }
                if flow == Flow::Close {
                    return Ended::Refused;
                }
            }
            let publishing = session.is_publishing();
            if publishing != was_publishing {
                self.progress.set(if publishing {
                    Progress::Publishing
                } else {
                    Progress::Handshaken
                });
            }
            if was_publishing && !publishing {
                // A publish just ended: the "start publishing" clock starts again.
                not_publishing_since = Instant::now();
                bytes_when_not_publishing = self.bytes_in;
            }
            was_publishing = publishing;
            if !publishing && self.bytes_in - bytes_when_not_publishing > PRE_PUBLISH_BYTES {
                return Ended::TooMuchBeforePublish;
            }

            let idle_deadline = Instant::now() + IDLE_TIMEOUT;
            let publish_deadline = not_publishing_since + PUBLISH_START_TIMEOUT;
            let (deadline, on_timeout) = if !publishing && publish_deadline < idle_deadline {
                (publish_deadline, Ended::NotPublishing)
            } else {
                (idle_deadline, Ended::Idle)
            };
            let disconnect = session.disconnect_requested();
            let n = match self
                .read_unless_disconnected(deadline, on_timeout, disconnect)
                .await
            {
                Ok(n) => n,
                Err(ended) => return ended,
            };
            input.clear();
            input.extend_from_slice(&self.buf[..n]);
        }
    }

    /// [`Self::read`], unless the admin disconnects the publisher first.
    async fn read_unless_disconnected(
        &mut self,
        deadline: Instant,
        on_timeout: Ended,
        disconnect: Option<watch::Receiver<bool>>,
    ) -> Result<usize, Ended> {
        let Some(mut disconnect) = disconnect else {
            return self.read(deadline, on_timeout).await;
        };
        tokio::select! {
            // A dropped sender (the pipeline's session ended) is no request.
            Ok(_) = disconnect.wait_for(|requested| *requested) => Err(Ended::Disconnected),
            read = self.read(deadline, on_timeout) => read,
        }
    }

    /// Read some bytes into `self.buf`, unless `deadline` passes or the server shuts down.
    async fn read(&mut self, deadline: Instant, on_timeout: Ended) -> Result<usize, Ended> {
        if *self.shutdown.borrow() {
            return Err(Ended::Shutdown);
        }
        tokio::select! {
            // Also when the sender is gone: the server is going away.
            _ = self.shutdown.changed() => Err(Ended::Shutdown),
            read = timeout_at(deadline, self.socket.read(&mut self.buf)) => match read {
                Err(_elapsed) => Err(on_timeout),
                Ok(Err(e)) => Err(Ended::Io(e)),
                Ok(Ok(0)) => Err(Ended::PeerClosed),
                Ok(Ok(n)) => {
                    self.bytes_in += n as u64;
                    Ok(n)
                }
            },
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Ended> {
        if bytes.is_empty() {
            return Ok(());
        }
        match timeout(WRITE_TIMEOUT, self.socket.write_all(bytes)).await {
            Err(_elapsed) => Err(Ended::WriteTimeout),
            Ok(result) => result.map_err(Ended::Io),
        }
    }

    /// Half-close, then discard input until the peer closes (at most [`LINGER`]), so the
    /// refusal we just wrote reaches the peer instead of being cut by a reset.
    async fn linger(&mut self) {
        if self.socket.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        while let Ok(Ok(n)) = timeout_at(deadline, self.socket.read(&mut self.buf)).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// A hint for the log when the first bytes show the peer speaks something else than RTMP.
fn not_rtmp_hint(first_bytes: &[u8]) -> Option<&'static str> {
    const HTTP_METHODS: [&[u8]; 6] = [b"GET ", b"POST", b"HEAD", b"PUT ", b"OPTI", b"CONN"];
    match first_bytes.first() {
        Some(0x16) => Some(" (this looks like TLS: RTMPS is not supported, use rtmp://)"),
        Some(_) if HTTP_METHODS.iter().any(|m| first_bytes.starts_with(m)) => {
            Some(" (this looks like an HTTP request: the web page is on the HTTP port)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_for_other_protocols() {
        assert!(not_rtmp_hint(b"GET / HTTP/1.1").is_some_and(|h| h.contains("HTTP")));
        assert!(not_rtmp_hint(&[0x16, 0x03, 0x01]).is_some_and(|h| h.contains("TLS")));
        assert_eq!(not_rtmp_hint(&[0x03, 0, 0]), None);
        assert_eq!(not_rtmp_hint(&[]), None);
    }
}
