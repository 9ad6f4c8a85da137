//! RTMP input that made rml_rtmp 0.8 / rml_amf0 0.3 panic, or overflow a thread's stack and
//! abort the whole server (vendor/rml_rtmp/PATCHES.md), sent by a real client socket on loopback
//! to the real server. Each now gets a protocol error and a closed connection, or is ignored
//! while the connection goes on; no panic is logged and the server keeps serving.
//!
//! Every message is written by hand below: an RTMP chunk header (RTMP 1.0 §5.3.1) and the AMF0
//! values (AMF0 §2: `02` string = u16 length + UTF-8, `00` number = f64, `0a` strict array =
//! u32 count + values, `05` null).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::rtmp::RtmpPublisher;
use common::{Server, ServerOptions, TEST_KEY};

/// RTMP message type ids (RTMP 1.0 §7.1).
const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;
/// The chunk size a peer uses until it sends Set Chunk Size (RTMP 1.0 §5.4.1).
const DEFAULT_CHUNK_SIZE: usize = 128;

/// An AMF0 string (marker `02`, u16 big-endian length, the bytes).
fn amf_string(s: &str) -> Vec<u8> {
    let mut out = vec![0x02];
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

/// An AMF0 number (marker `00`, f64 big-endian).
fn amf_number(n: f64) -> Vec<u8> {
    let mut out = vec![0x00];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

/// One message on chunk stream `csid`: a type 0 chunk header (fmt 0 | csid, timestamp u24 0,
/// length u24, type id, message stream id u32 little-endian), then the payload in chunks of 128
/// bytes, each after the first behind a type 3 header (`0xc0 | csid`).
fn message(csid: u8, type_id: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![csid, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, chunk) in payload.chunks(DEFAULT_CHUNK_SIZE).enumerate() {
        if i > 0 {
            out.push(0xc0 | csid);
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// A well-formed `connect` to the app `nope`: [ "connect", 1.0, { app: "nope" } ].
fn connect_to_unknown_app() -> Vec<u8> {
    let mut payload = amf_string("connect");
    payload.extend(amf_number(1.0));
    // Object (03): property "app" (u16 length 3) = "nope", then the end marker 00 00 09.
    payload.extend_from_slice(&[0x03, 0x00, 0x03, b'a', b'p', b'p']);
    payload.extend(amf_string("nope"));
    payload.extend_from_slice(&[0x00, 0x00, 0x09]);
    message(3, AMF0_COMMAND, 0, &payload)
}

/// A connection past the handshake: C0 (version 3) + C1 (1536 zero bytes, no digest: the
/// original handshake), S0 + S1 + S2 read back, C2 sent.
fn handshaken(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the RTMP port");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut c0c1 = vec![0x03];
    c0c1.extend_from_slice(&[0u8; 1536]);
    stream.write_all(&c0c1).expect("send C0+C1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    stream.read_exact(&mut s0s1s2).expect("S0+S1+S2");
    assert_eq!(s0s1s2[0], 0x03, "S0: RTMP version 3");
    stream.write_all(&[0u8; 1536]).expect("send C2");
    stream
}

/// Everything the server sends until it closes the connection (EOF or reset), at most 20 s.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            // A reset: closed with our bytes unread.
            Err(_) => return received,
        }
    }
    panic!("the server did not close the connection within 20 s");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the server does with a hostile message sent before any `connect`.
enum Expect {
    /// A protocol error: the connection is closed (the `connect` after it is never answered).
    Closed,
    /// Ignored: the `connect` sent after it is answered ("unknown app") as on any connection.
    Ignored,
}

#[test]
fn hostile_rtmp_messages_get_an_error_not_a_panic() {
    let mut server = Server::start(ServerOptions::default());

    // Nested strict arrays of one element, 40,000 deep (200 KB, under the 256 KiB a peer may
    // send before publishing): rml_amf0 recursed once per level and overflowed the 2 MiB stack
    // of a tokio worker, which aborts the process.
    let mut deep = amf_string("connect");
    deep.extend(amf_number(1.0));
    for _ in 0..40_000 {
        deep.extend_from_slice(&[0x0a, 0x00, 0x00, 0x00, 0x01]);
    }
    deep.push(0x05);

    // A type 0 header on csid 3 for a 200-byte command and its first 128 bytes, then a type 1
    // header (fmt 1 = 0x40 | 3: timestamp delta, length 10, type 20) and 10 bytes: a message
    // shorter than what was already received of it. rml_rtmp computed 10 − 128 in usize.
    let mut shorter = vec![0x03, 0, 0, 0, 0x00, 0x00, 200, AMF0_COMMAND, 0, 0, 0, 0];
    shorter.extend_from_slice(&[0x05; 128]);
    shorter.extend_from_slice(&[0x43, 0, 0, 0, 0x00, 0x00, 10, AMF0_COMMAND]);
    shorter.extend_from_slice(&[0x05; 10]);

    let mut create_stream = amf_string("createStream");
    create_stream.extend(amf_number(2.0));

    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            // rml_rtmp: "range end index 3 out of range for slice of length 1"
            "connect with no transaction id nor command object",
            message(3, AMF0_COMMAND, 0, &amf_string("connect")),
            Expect::Closed,
        ),
        (
            // "range end index 3 out of range for slice of length 2"
            "createStream with no command object",
            message(3, AMF0_COMMAND, 0, &create_stream),
            Expect::Closed,
        ),
        (
            "an empty command message",
            message(3, AMF0_COMMAND, 0, &[]),
            Expect::Closed,
        ),
        (
            // "index out of bounds: the len is 0 but the index is 0"
            "@setDataFrame alone",
            message(4, AMF0_DATA, 0, &amf_string("@setDataFrame")),
            Expect::Ignored,
        ),
        (
            // "capacity overflow" (a reserve of ~2^64 bytes)
            "a chunk header shorter than the message received so far",
            shorter,
            Expect::Closed,
        ),
        (
            // "thread 'tokio-runtime-worker' has overflowed its stack", then SIGABRT
            "AMF0 arrays nested 40,000 deep",
            message(3, AMF0_COMMAND, 0, &deep),
            Expect::Closed,
        ),
    ];

    for (what, bytes, expect) in &cases {
        let mut stream = handshaken(server.rtmp_port);
        stream.write_all(bytes).expect(what);
        // Written as one: if the server closed after the first message, this may be refused.
        let _ = stream.write_all(&connect_to_unknown_app());
        let received = read_until_closed(&mut stream);
        let answered = contains(&received, b"unknown app");
        match expect {
            Expect::Closed => assert!(!answered, "{what}: the connect after it was answered"),
            Expect::Ignored => assert!(answered, "{what}: the connect after it went unanswered"),
        }
        server.assert_running();
    }

    // After a publish with the right key: "@setDataFrame", "onMetaData" without the metadata
    // object ("removal index (is 1) should be < len (is 1)"), then real metadata, whose log
    // line shows that the connection went on.
    let mut publisher =
        RtmpPublisher::connect(server.rtmp_port, "live", TEST_KEY).expect("publish accepted");
    let mut no_object = amf_string("@setDataFrame");
    no_object.extend(amf_string("onMetaData"));
    // On chunk stream 60, which rml_rtmp's client session never uses.
    publisher
        .send_raw(&message(60, AMF0_DATA, 1, &no_object))
        .expect("@setDataFrame without an object");
    let mut metadata = no_object.clone();
    // ECMA array (08, u32 count 1): "width" = 2.0, then the end marker.
    metadata.extend_from_slice(&[0x08, 0, 0, 0, 1, 0x00, 0x05]);
    metadata.extend_from_slice(b"width");
    metadata.extend(amf_number(2.0));
    metadata.extend_from_slice(&[0x00, 0x00, 0x09]);
    publisher
        .send_raw(&message(60, AMF0_DATA, 1, &metadata))
        .expect("real metadata");
    let logged = common::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let logs = format!("{}{}", server.stdout(), server.stderr());
        logs.contains("stream metadata:").then_some(())
    });
    assert!(
        logged.is_some(),
        "the metadata after the hostile one was never logged:\n{}",
        server.logs_report()
    );
    publisher.finish().expect("finish the publish");

    server.assert_running();
    server.interrupt();
    assert!(
        server.wait_exit(Duration::from_secs(30)).is_some(),
        "selfcast did not exit after SIGINT"
    );
    let logs = format!("{}{}", server.stdout(), server.stderr());
    for sign in ["panicked", "overflowed its stack"] {
        assert!(!logs.contains(sign), "the server logged {sign:?}:\n{logs}");
    }
}
