//! The HTTP side attacked from loopback as an outsider would (issue 13, item 4), against the
//! real `selfcast` binary with raw TCP clients: idle sockets and half-sent requests are closed
//! by the deadlines while `/api/status` keeps answering; one address at its cap does not lock
//! out another; a crowd bigger than the open-file limit is refused by the cap while RTMP still
//! accepts a publisher; the chat websocket outlives the stall deadline; a symlink out of
//! `static_dir` is not followed; and every response carries the security headers.
//!
//! Every socket read is bounded; waits poll for the event (a socket closed, an answer) with a
//! deadline, and nothing measures how long anything took. Other loopback addresses
//! (127.0.0.2, ...) are Linux's: the whole of 127/8 is local there.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::rtmp::RtmpPublisher;
use common::ws::WsClient;
use common::{http_get, poll_until, Server, ServerOptions, TEST_KEY};

/// How long a test waits for the server to close a socket or to answer.
const WAIT: Duration = Duration::from_secs(30);

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn start(http_toml: &str) -> Server {
    Server::start(ServerOptions {
        http_toml: http_toml.to_string(),
        ..ServerOptions::default()
    })
}

/// A TCP connection to the server from the loopback address `from`.
fn connect_from(from: IpAddr, port: u16) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    socket
        .connect_timeout(&server.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {from} -> {server}: {e}"));
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
}

/// What the server did with a request: answered with this status line, or closed the
/// connection without answering.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Status(u16),
    Closed,
}

/// Sends one `GET path` (keep-alive) and reads the answer's status; the rest of the answer is
/// left unread.
fn request_on(stream: &mut TcpStream, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: selfcast.test\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return Answer::Closed;
    }
    let deadline = Instant::now() + WAIT;
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                head.extend_from_slice(&buf[..n]);
                if head.windows(2).any(|w| w == b"\r\n") {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    Instant::now() < deadline,
                    "no answer to GET {path} in {WAIT:?}"
                );
            }
            Err(_) => break, // reset
        }
    }
    let line = String::from_utf8_lossy(&head);
    match line.strip_prefix("HTTP/1.1 ") {
        Some(rest) => Answer::Status(rest[..3].parse().expect("a status code")),
        None if head.is_empty() => Answer::Closed,
        None => panic!("not an HTTP answer: {line:?}"),
    }
}

/// `GET path` on a new connection from `from`.
fn get_from(from: IpAddr, port: u16, path: &str) -> Answer {
    request_on(&mut connect_from(from, port), path)
}

/// What the server sends on a new connection from `from` before any request.
fn unasked_answer(from: IpAddr, port: u16) -> Answer {
    let mut stream = connect_from(from, port);
    let mut head = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut buf = [0; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !head.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    match String::from_utf8_lossy(&head).strip_prefix("HTTP/1.1 ") {
        Some(rest) => Answer::Status(rest[..3].parse().expect("a status code")),
        None => Answer::Closed,
    }
}

/// Waits until the server has closed `stream` (EOF or reset), reading and dropping whatever it
/// sends first; `false` if it is still open after `WAIT`.
fn closed_by_server(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}

/// The idle sockets and half-sent requests of the attack: with the deadlines they are all
/// closed by the server, and `/api/status` is answered meanwhile.
#[test]
fn idle_sockets_and_half_sent_requests_are_closed_while_status_answers() {
    let server = start("header_timeout_seconds = 2\nmax_connections_per_address = 0\n");
    let port = server.http_port;
    let mut held = Vec::new();
    // 40 that never send a byte,
    for _ in 0..40 {
        held.push(("idle", connect_from(loopback(1), port)));
    }
    // 40 that send half a request's headers and stop,
    for _ in 0..40 {
        let mut stream = connect_from(loopback(1), port);
        stream
            .write_all(b"GET /api/status HTTP/1.1\r\nHost: selfcast.test\r\nX-Slow: ")
            .unwrap();
        held.push(("half headers", stream));
    }
    // and 10 that make one request and then keep the connection open, idle.
    for _ in 0..10 {
        let mut stream = connect_from(loopback(1), port);
        assert_eq!(request_on(&mut stream, "/api/status"), Answer::Status(200));
        held.push(("idle keep-alive", stream));
    }
    assert_eq!(
        get_from(loopback(2), port, "/api/status"),
        Answer::Status(200)
    );
    let deadline = Instant::now() + WAIT;
    for (index, (kind, stream)) in held.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, deadline),
            "socket {index} ({kind}) still open after {WAIT:?}\n{}",
            server.logs_report()
        );
    }
    assert_eq!(
        get_from(loopback(1), port, "/api/status"),
        Answer::Status(200)
    );
}

/// One address holding all its places gets refused for more; another address is served; a
/// place given back can be taken again.
#[test]
fn one_address_at_its_cap_does_not_lock_out_another() {
    let server = start("header_timeout_seconds = 120\nmax_connections_per_address = 8\n");
    let port = server.http_port;
    let mut attacker: Vec<TcpStream> = (0..8).map(|_| connect_from(loopback(1), port)).collect();
    assert_ne!(
        get_from(loopback(1), port, "/api/status"),
        Answer::Status(200),
        "a 9th connection from the same address was served\n{}",
        server.logs_report()
    );
    assert_eq!(
        get_from(loopback(2), port, "/api/status"),
        Answer::Status(200),
        "another address was not served\n{}",
        server.logs_report()
    );
    // The refusal says why (read before sending anything: a request the server closes on
    // unread may turn its answer into a reset).
    assert_eq!(unasked_answer(loopback(1), port), Answer::Status(503));
    // The first one surely holds a place (the start-up check's pooled keep-alive connection
    // from 127.0.0.1 may hold another, so the last one may have been refused).
    drop(attacker.remove(0));
    let served = poll_until(WAIT, Duration::from_millis(50), || {
        (get_from(loopback(1), port, "/api/status") == Answer::Status(200)).then_some(())
    });
    assert!(
        served.is_some(),
        "the place given back was not free again\n{}",
        server.logs_report()
    );
}

/// More connections than the open-file limit allows: the server starts with a low soft limit
/// (as under the usual `ulimit -n 1024`), raises it to the hard limit, keeps its connection cap
/// under it and refuses the rest with a 503 at once, so a publisher still gets in over RTMP
/// (without the cap, `accept` fails with "Too many open files" for RTMP as for HTTP).
#[test]
fn a_crowd_beyond_the_open_file_limit_is_refused_and_rtmp_still_accepts() {
    const SOFT: u64 = 300;
    const HARD: u64 = 640;
    let mut server = Server::start(ServerOptions {
        http_toml: "header_timeout_seconds = 120\nmax_connections_per_address = 0\n".into(),
        run_under: vec![
            "prlimit".into(),
            format!("--nofile={SOFT}:{HARD}"),
            "--".into(),
        ],
        ..ServerOptions::default()
    });
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid)).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers,
        [HARD.to_string(), HARD.to_string()],
        "{open_files}"
    );
    assert!(
        server
            .stderr()
            .contains(&format!("open-file limit: {HARD} (raised from {SOFT})")),
        "{}",
        server.logs_report()
    );

    // More sockets than the hard limit, from four addresses.
    let crowd: Vec<TcpStream> = (0..HARD + 60)
        .map(|i| connect_from(loopback(1 + (i % 4) as u8), server.http_port))
        .collect();
    // The server is full: a newcomer is refused on the spot, not left waiting.
    let answer = get_from(loopback(9), server.http_port, "/api/status");
    assert!(
        matches!(answer, Answer::Status(503) | Answer::Closed),
        "{answer:?}"
    );
    // RTMP still accepts: a publisher with the key gets in.
    let publisher = RtmpPublisher::connect(server.rtmp_port, "live", TEST_KEY)
        .unwrap_or_else(|e| panic!("RTMP publish refused: {e}\n{}", server.logs_report()));
    publisher.finish().unwrap();
    server.assert_running();
    drop(crowd);
    let served = poll_until(WAIT, Duration::from_millis(100), || {
        (get_from(loopback(9), server.http_port, "/api/status") == Answer::Status(200))
            .then_some(())
    });
    assert!(served.is_some(), "{}", server.logs_report());
    assert!(server.stderr().contains("refusing HTTP connections"));
}

/// The chat websocket is idle between messages: the stall deadline that closes a silent plain
/// HTTP connection does not touch it.
#[test]
fn a_chat_websocket_outlives_the_stall_deadline() {
    let server = start("stall_timeout_seconds = 1\nheader_timeout_seconds = 120\n");
    let mut chat = WsClient::connect(server.http_port, None, "viewer");
    chat.until("CONNECTED_USER_INFO", |_| true);
    chat.chat("before");
    chat.expect_chat("before");
    // A plain connection that goes silent mid-request opens after the websocket's last byte
    // and is closed by the stall deadline (the header timeout is far away): by then the
    // websocket has been silent longer than the deadline too.
    let mut silent = connect_from(loopback(1), server.http_port);
    silent.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    assert!(
        closed_by_server(&mut silent, Instant::now() + WAIT),
        "the silent connection was not closed\n{}",
        server.logs_report()
    );
    chat.chat("after");
    chat.expect_chat("after");
}

/// A symlink in `static_dir` whose target is outside it (here: the data directory with the
/// admin password) is not served; a file inside is.
#[cfg(unix)]
#[test]
fn a_symlink_out_of_static_dir_is_not_followed() {
    let page = tempfile::tempdir().unwrap();
    std::fs::write(page.path().join("about.html"), "<p>about us</p>").unwrap();
    let mut server = Server::spawn(ServerOptions {
        static_dir: Some(page.path().to_path_buf()),
        ..ServerOptions::default()
    });
    let password = server.data_dir.join("admin_password");
    std::os::unix::fs::symlink(&password, page.path().join("password.txt")).unwrap();
    std::os::unix::fs::symlink(&server.data_dir, page.path().join("data")).unwrap();
    let up = poll_until(WAIT, Duration::from_millis(100), || {
        http_get(&server.url("/api/status"))
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(up.is_some(), "{}", server.logs_report());
    server.assert_running();
    let secret = std::fs::read_to_string(&password).expect("the generated admin password");
    for path in ["/password.txt", "/data/admin_password"] {
        let r = http_get(&server.url(path)).unwrap();
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(
            !r.text().contains(secret.trim()),
            "{path} served the password"
        );
    }
    let about = http_get(&server.url("/about")).unwrap();
    assert_eq!(
        (about.status, about.text().as_str()),
        (200, "<p>about us</p>")
    );
    assert!(server.stderr().contains("leads outside static_dir"));
}

/// `nosniff` on everything; the page's CSP allows what it loads and framing by itself only;
/// the embeds may be framed by the configured origins.
#[test]
fn every_response_carries_the_security_headers() {
    let server = start("embed_frame_ancestors = [\"https://example.com\"]\n");
    let post = common::agent()
        .post(&server.url("/"))
        .send_string("x")
        .unwrap_or_else(|e| match e {
            ureq::Error::Status(_, r) => r,
            e => panic!("POST /: {e}"),
        });
    assert_eq!(
        post.header("x-content-type-options"),
        Some("nosniff"),
        "a rejection (POST /, {}) has no nosniff",
        post.status()
    );
    for path in [
        "/",
        "/embed/video",
        "/embed/chat",
        "/player.js",
        "/hls/stream.m3u8",
        "/hls/0/stream.m3u8",
        "/api/status",
        "/nothing-here",
    ] {
        let r = http_get(&server.url(path)).unwrap();
        let headers = r.headers_text();
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}\n{headers}"
        );
        let policy = r
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP\n{headers}"));
        assert!(policy.contains("script-src 'self';"), "{path}: {policy}");
        assert!(
            policy.contains("worker-src 'self' blob:"),
            "{path}: {policy}"
        );
        if path.starts_with("/embed/") {
            assert!(
                policy.ends_with("frame-ancestors https://example.com"),
                "{path}: {policy}"
            );
            assert_eq!(r.header("x-frame-options"), None, "{path}\n{headers}");
        } else {
            assert!(
                policy.ends_with("frame-ancestors 'self'"),
                "{path}: {policy}"
            );
            assert_eq!(
                r.header("x-frame-options"),
                Some("SAMEORIGIN"),
                "{path}\n{headers}"
            );
        }
    }
}
