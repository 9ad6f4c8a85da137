//! The stall deadline of an HTTP connection: an IO wrapper that fails a read or a write which
//! has waited `stall` since the last byte moved either way, so a client that stops reading a
//! response, or sends a request's headers and then never its body, lets go of its connection.
//!
//! hyper 0.14 has no such deadline of its own: its header read timeout (set in `listener.rs`)
//! covers only the wait for a request's headers. Handlers answer in milliseconds, so a request
//! waiting `stall` (30 s by default) with nothing moving is a dead client or an attack.
//!
//! A connection upgraded to a websocket (the chat) is exempt: it is idle by nature between
//! messages, and the chat keeps it alive with its own pings and idle timeout
//! (`src/chat/connection.rs`). The service marks the upgrade ([`Upgraded::mark`]) when it
//! answers `101 Switching Protocols`, before hyper hands the socket to the websocket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Whether a connection was upgraded; shared by its IO and its service.
#[derive(Debug, Clone, Default)]
pub struct Upgraded(Arc<AtomicBool>);

impl Upgraded {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `io` with the stall deadline; `held` lives as long as the connection (its places under the
/// listener's caps, given back when the socket is dropped, also after an upgrade).
pub struct StallDeadline<T, H> {
    io: T,
    stall: Duration,
    upgraded: Upgraded,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
    _held: H,
}

impl<T, H> StallDeadline<T, H> {
    pub fn new(io: T, stall: Duration, upgraded: Upgraded, held: H) -> Self {
        let now = Instant::now();
        StallDeadline {
            io,
            stall,
            upgraded,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + stall)),
            _held: held,
        }
    }

    fn progressed(&mut self, moved: bool) {
        if moved {
            self.last_progress = Instant::now();
        }
    }

    /// For a read or write that is waiting: the error to end it with once the deadline passed.
    /// The timer is moved only here, when something waits, not on every byte.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.upgraded.is_set() {
            return Poll::Pending;
        }
        let deadline = self.last_progress + self.stall;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing moved for {} s", self.stall.as_secs()),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin, H: Unpin> AsyncRead for StallDeadline<T, H> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed(buf.filled().len() > before);
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_stalled(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin, H: Unpin> AsyncWrite for StallDeadline<T, H> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progressed(matches!(result, Ok(n) if n > 0));
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_stalled(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.progressed(matches!(result, Ok(n) if n > 0));
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_stalled(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STALL: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_read_waiting_past_the_deadline_fails() {
        let (client, server) = tokio::io::duplex(64);
        let mut io = StallDeadline::new(server, STALL, Upgraded::default(), ());
        let mut buf = [0; 8];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn every_byte_moved_restarts_the_deadline() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = StallDeadline::new(server, STALL, Upgraded::default(), ());
        let mut buf = [0; 8];
        for _ in 0..3 {
            tokio::time::sleep(STALL - Duration::from_secs(1)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        }
        assert!(io.read(&mut buf).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_does_not_read_fails() {
        let (client, server) = tokio::io::duplex(16);
        let mut io = StallDeadline::new(server, STALL, Upgraded::default(), ());
        let err = io.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn an_upgraded_connection_waits_as_long_as_it_likes() {
        let (mut client, server) = tokio::io::duplex(64);
        let upgraded = Upgraded::default();
        let mut io = StallDeadline::new(server, STALL, upgraded.clone(), ());
        upgraded.mark();
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            io.read(&mut buf).await.map(|n| buf[..n].to_vec())
        });
        tokio::time::sleep(STALL * 10).await;
        client.write_all(b"late").await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), b"late");
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_held_is_dropped_with_the_connection() {
        let held = Arc::new(());
        let (_client, server) = tokio::io::duplex(64);
        let io = StallDeadline::new(server, STALL, Upgraded::default(), Arc::clone(&held));
        assert_eq!(Arc::strong_count(&held), 2);
        drop(io);
        assert_eq!(Arc::strong_count(&held), 1);
    }
}
