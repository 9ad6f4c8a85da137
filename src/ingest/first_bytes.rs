//! Telling, at `accept`, an encoder from a socket that says nothing: an RTMP client speaks first
//! (C0, the version byte 3, and C1), at once.
//!
//! - [`defer_accept`]: on Linux the listening socket gets `TCP_DEFER_ACCEPT`, so the kernel hands
//!   a connection to `accept` only once its first bytes have arrived (or, for one that stays
//!   silent, after the given time). Silent sockets then hold no file descriptor and no slot for
//!   that long, and an encoder's socket arrives with its C0 and C1 already readable.
//! - [`has_spoken`]: whether the first byte waiting on an accepted socket is RTMP's version 3,
//!   looked at without reading it. The accept loop ranks such a connection above silent ones
//!   before its task has run (see `slots.rs`): on a loaded machine the task may run only after
//!   several more connections were accepted, and silent sockets reopened that fast would push
//!   the encoder out before its handshake was seen.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// The RTMP version an encoder's C0 carries.
const RTMP_VERSION: u8 = 3;

/// Asks the kernel to hold connections back from `accept` until they have sent something, for
/// at most `silent_for` (rounded up by the kernel to its SYN-ACK retransmission times).
#[cfg(target_os = "linux")]
pub(super) fn defer_accept(listener: &TcpListener, silent_for: Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    let seconds = libc::c_int::try_from(silent_for.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads one c_int through the valid pointer and length it is given, on
    // a descriptor the listener owns for the whole call.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::addr_of!(seconds).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere connections reach `accept` at once; [`has_spoken`] still tells most encoders.
#[cfg(not(target_os = "linux"))]
pub(super) fn defer_accept(_listener: &TcpListener, _silent_for: Duration) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "TCP_DEFER_ACCEPT is Linux's",
    ))
}

/// Whether the peer has already sent RTMP's version byte (the bytes stay in the socket for the
/// connection's task to read).
#[cfg(unix)]
pub(super) fn has_spoken(socket: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;

    let mut first = 0u8;
    // SAFETY: recv writes at most one byte into the valid one-byte buffer it is given; with
    // MSG_PEEK | MSG_DONTWAIT it neither consumes data nor blocks.
    let received = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            std::ptr::addr_of_mut!(first).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    received == 1 && first == RTMP_VERSION
}

#[cfg(not(unix))]
pub(super) fn has_spoken(_socket: &TcpStream) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_peer_that_sent_the_version_byte_has_spoken_and_the_byte_is_still_there() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        defer_accept(&listener, Duration::from_secs(5)).unwrap();
        let address = listener.local_addr().unwrap();

        let mut encoder = TcpStream::connect(address).await.unwrap();
        encoder.write_all(&[RTMP_VERSION, 0, 0]).await.unwrap();
        // With TCP_DEFER_ACCEPT, accept returns only once these bytes are in.
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(has_spoken(&accepted));
        assert!(has_spoken(&accepted), "peeking consumed nothing");
        let mut buf = [0u8; 3];
        accepted.readable().await.unwrap();
        assert_eq!(accepted.try_read(&mut buf).unwrap(), 3);
        assert_eq!(buf, [RTMP_VERSION, 0, 0]);
    }

    #[tokio::test]
    async fn silence_or_another_protocol_has_not_spoken() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();

        let _silent = TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!has_spoken(&accepted));

        let mut http = TcpStream::connect(address).await.unwrap();
        http.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        accepted.readable().await.unwrap();
        assert!(!has_spoken(&accepted));
    }
}
