//! A minimal RTMP publisher for the tests that must send what the `ffmpeg` CLI will not: its
//! muxer rewrites timestamps that go backwards ("Non-monotonous DTS ... changing to"), so a
//! publisher whose clock jumps back can only be played by sending the FLV tags ourselves.
//!
//! rml_rtmp's client session (the same crate the server uses for the other side) over a
//! blocking `TcpStream`: handshake, `connect` to the app, `publish` on the stream key, then one
//! RTMP audio/video message per FLV tag with the timestamp we choose. Every media message is
//! sent with a full (type 0) chunk header, so a timestamp going backwards is written as an
//! absolute value, never as a wrapped delta.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;

/// A connection that publishes on `rtmp://127.0.0.1:<port>/<app>/<key>`.
pub struct RtmpPublisher {
    stream: TcpStream,
    session: ClientSession,
    /// Media messages sent.
    pub sent: u64,
}

impl RtmpPublisher {
    /// Connects, handshakes and gets the publish accepted (≤ 10 s). A refusal is an `Err`
    /// with the server's description ("RTMP publish refused: ...").
    pub fn connect(port: u16, app: &str, key: &str) -> Result<RtmpPublisher, String> {
        RtmpPublisher::connect_from(LOOPBACK, port, app, key)
    }

    /// [`RtmpPublisher::connect`] from the loopback address `source` (any of 127.0.0.0/8).
    pub fn connect_from(
        source: IpAddr,
        port: u16,
        app: &str,
        key: &str,
    ) -> Result<RtmpPublisher, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = connect_from(source, port)
            .map_err(|e| format!("RTMP connect to port {port} from {source}: {e}"))?;
        stream.set_nodelay(true).ok();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let leftover = handshake(&mut stream, deadline)?;
        let (session, initial) = ClientSession::new(ClientSessionConfig::new())
            .map_err(|e| format!("RTMP client session: {e:?}"))?;
        let mut p = RtmpPublisher {
            stream,
            session,
            sent: 0,
        };
        p.handle_results(initial)?;
        let mut events = Vec::new();
        if !leftover.is_empty() {
            events.extend(p.input(&leftover)?);
        }
        let r = p
            .session
            .request_connection(app.to_string())
            .map_err(|e| format!("RTMP connect request: {e:?}"))?;
        p.handle_results(vec![r])?;
        p.wait_for(&mut events, deadline, "connect", |e| {
            matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
        })?;
        let r = p
            .session
            .request_publishing(key.to_string(), PublishRequestType::Live)
            .map_err(|e| format!("RTMP publish request: {e:?}"))?;
        p.handle_results(vec![r])?;
        p.wait_for(&mut events, deadline, "publish", |e| {
            matches!(e, ClientSessionEvent::PublishRequestAccepted)
        })?;
        Ok(p)
    }

    /// Sends one FLV tag body as an RTMP message: `kind` 8 (audio) or 9 (video); other kinds
    /// (script data) are skipped.
    pub fn send_tag(&mut self, kind: u8, timestamp_ms: u32, body: Bytes) -> Result<(), String> {
        let ts = RtmpTimestamp::new(timestamp_ms);
        // can_be_dropped = true: the next message on the chunk stream gets a full header.
        let r = match kind {
            9 => self.session.publish_video_data(body, ts, true),
            8 => self.session.publish_audio_data(body, ts, true),
            _ => return Ok(()),
        }
        .map_err(|e| format!("RTMP serialize: {e:?}"))?;
        self.handle_results(vec![r])?;
        self.sent += 1;
        if self.sent.is_multiple_of(32) {
            self.drain()?;
        }
        Ok(())
    }

    /// Writes `bytes` as they are (a hand-made message on a chunk stream the session does not
    /// use, so its compressed chunk headers stay valid) and reads what the server sent meanwhile.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("RTMP write: {e}"))?;
        self.drain()
    }

    /// Ends the publish and closes the connection.
    pub fn finish(mut self) -> Result<(), String> {
        let _ = self.drain();
        if let Ok(r) = self.session.stop_publishing() {
            let _ = self.handle_results(r);
        }
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Both);
        Ok(())
    }

    /// Reads whatever the server sent (acknowledgements, pings) without blocking.
    fn drain(&mut self) -> Result<(), String> {
        self.stream
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = Vec::new();
        let result = loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break Err("the server closed the RTMP connection".to_string()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => break Err(format!("RTMP read: {e}")),
            }
        };
        self.stream
            .set_nonblocking(false)
            .map_err(|e| e.to_string())?;
        if !got.is_empty() {
            self.input(&got)?;
        }
        result
    }

    fn input(&mut self, bytes: &[u8]) -> Result<Vec<ClientSessionEvent>, String> {
        let results = self
            .session
            .handle_input(bytes)
            .map_err(|e| format!("RTMP input: {e:?}"))?;
        self.handle_results(results)
    }

    /// Sends the outbound packets; returns the raised events.
    fn handle_results(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> Result<Vec<ClientSessionEvent>, String> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(packet) => self
                    .stream
                    .write_all(&packet.bytes)
                    .map_err(|e| format!("RTMP write: {e}"))?,
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    fn wait_for(
        &mut self,
        events: &mut Vec<ClientSessionEvent>,
        deadline: Instant,
        what: &str,
        want: impl Fn(&ClientSessionEvent) -> bool,
    ) -> Result<(), String> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(i) = events.iter().position(&want) {
                events.drain(..=i);
                return Ok(());
            }
            if let Some(e) = events
                .iter()
                .find(|e| matches!(e, ClientSessionEvent::ConnectionRequestRejected { .. }))
            {
                return Err(format!("RTMP {what}: {e:?}"));
            }
            // rml_rtmp's client does not track the publish transaction: its `_error` comes
            // back as an unknown transaction result carrying the status object.
            if let Some(description) = events.iter().find_map(error_description) {
                return Err(format!("RTMP {what} refused: {description}"));
            }
            let n = read_some(&mut self.stream, &mut buf, deadline, what)?;
            let new = self.input(&buf[..n])?;
            events.extend(new);
        }
    }
}

/// The address the tests' servers listen on, and the usual client address.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A TCP connection to `127.0.0.1:port` from `source` (another loopback address plays another
/// machine: the server sees a different peer address).
pub fn connect_from(source: IpAddr, port: u16) -> std::io::Result<TcpStream> {
    // std cannot bind a client socket before connecting; tokio's `TcpSocket` can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket.connect(SocketAddr::new(LOOPBACK, port)).await?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

/// The client side of the RTMP handshake (C0+C1, then C2 once S0+S1 are in); returns what the
/// server sent after S2. `stream` needs a read timeout (the deadline is checked between reads).
pub fn handshake(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut handshake = Handshake::new(PeerType::Client);
    let c0c1 = handshake
        .generate_outbound_p0_and_p1()
        .map_err(|e| format!("RTMP handshake: {e:?}"))?;
    stream
        .write_all(&c0c1)
        .map_err(|e| format!("RTMP handshake write: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = read_some(stream, &mut buf, deadline, "RTMP handshake")?;
        match handshake
            .process_bytes(&buf[..n])
            .map_err(|e| format!("RTMP handshake: {e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream
                    .write_all(&response_bytes)
                    .map_err(|e| e.to_string())?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream
                    .write_all(&response_bytes)
                    .map_err(|e| e.to_string())?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// The `description` of an `_error` status the client session could not match to a request.
fn error_description(event: &ClientSessionEvent) -> Option<String> {
    let ClientSessionEvent::UnknownTransactionResultReceived {
        additional_values, ..
    } = event
    else {
        return None;
    };
    let Some(Amf0Value::Object(status)) = additional_values.first() else {
        return None;
    };
    match (status.get("level"), status.get("description")) {
        (Some(Amf0Value::Utf8String(level)), Some(Amf0Value::Utf8String(description)))
            if level == "_error" || level == "error" =>
        {
            Some(description.clone())
        }
        _ => None,
    }
}

fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    what: &str,
) -> Result<usize, String> {
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "RTMP {what}: no answer from the server within 10 s"
            ));
        }
        match stream.read(buf) {
            Ok(0) => return Err(format!("RTMP {what}: the server closed the connection")),
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("RTMP {what}: {e}")),
        }
    }
}

/// One tag to publish: FLV tag type, the RTMP timestamp to send, when to send it (ms after the
/// start: a real publisher sends in real time whatever its timestamps say), and the body.
#[derive(Debug, Clone)]
pub struct TimedTag {
    pub kind: u8,
    pub timestamp_ms: u32,
    pub send_at_ms: u64,
    pub body: Bytes,
}

/// Publishes `tags` in real time on a thread; the thread's result says how it went.
pub fn publish_in_real_time(
    port: u16,
    app: &str,
    key: &str,
    tags: Vec<TimedTag>,
) -> std::thread::JoinHandle<Result<u64, String>> {
    let (app, key) = (app.to_string(), key.to_string());
    std::thread::Builder::new()
        .name("rtmp-publisher".into())
        .spawn(move || {
            let mut p = RtmpPublisher::connect(port, &app, &key)?;
            let t0 = Instant::now();
            for t in tags {
                let due = t0 + Duration::from_millis(t.send_at_ms);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                p.send_tag(t.kind, t.timestamp_ms, t.body)?;
            }
            let sent = p.sent;
            p.finish()?;
            Ok(sent)
        })
        .expect("spawn the RTMP publisher thread")
}
