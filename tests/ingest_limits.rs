//! The RTMP port attacked from loopback as an outsider would (issue 13): idle sockets held and
//! reopened so that the streamer cannot get in, sockets that never speak, stream keys guessed
//! as fast as the server answers, and input that makes rml_rtmp fail (or panic) on every
//! connection to flood the log. Another loopback address (127.0.0.2, ...) plays another
//! machine. Each test fails on a server without the limit it is about.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::rtmp::{self, RtmpPublisher, LOOPBACK};
use common::{fixture, poll_until, Publisher, Server, ServerOptions, TEST_KEY};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Sockets that connect and say nothing, each reopened as soon as the server closes it (after a
/// short pause, so that the test does not spend the machine on reconnects).
struct IdleAttacker {
    stop: Arc<AtomicBool>,
    /// Connections opened so far, and how many of them the server closed.
    opened: Arc<AtomicU64>,
    closed_by_server: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl IdleAttacker {
    fn start(port: u16, sources: &[IpAddr], sockets_per_source: usize) -> IdleAttacker {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicU64::new(0));
        let closed_by_server = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for &source in sources {
            for _ in 0..sockets_per_source {
                let (stop, opened, closed) =
                    (stop.clone(), opened.clone(), closed_by_server.clone());
                threads.push(std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(socket) = rtmp::connect_from(source, port) {
                            opened.fetch_add(1, Ordering::Relaxed);
                            if hold_until_closed(socket, &stop) {
                                closed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }));
            }
        }
        let attacker = IdleAttacker {
            stop,
            opened,
            closed_by_server,
            threads,
        };
        let sockets = (sources.len() * sockets_per_source) as u64;
        let all_opened = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
            (attacker.opened.load(Ordering::Relaxed) >= sockets).then_some(())
        });
        assert!(
            all_opened.is_some(),
            "the attacker could not open {sockets} sockets"
        );
        attacker
    }

    fn closed_by_server(&self) -> u64 {
        self.closed_by_server.load(Ordering::Relaxed)
    }
}

impl Drop for IdleAttacker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Reads (and sends nothing) until the server closes the socket (`true`) or `stop` is set.
fn hold_until_closed(mut socket: TcpStream, stop: &AtomicBool) -> bool {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    while !stop.load(Ordering::Relaxed) {
        if server_closed(&mut socket) {
            return true;
        }
    }
    false
}

/// Reads until the server closes the socket (`true`) or `deadline` passes.
fn wait_closed(mut socket: TcpStream, deadline: Instant) -> bool {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    while Instant::now() < deadline {
        if server_closed(&mut socket) {
            return true;
        }
    }
    false
}

/// One read (the socket has a read timeout): `true` when the server has closed the socket.
fn server_closed(socket: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    match socket.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// A real `ffmpeg` publish with the right key (from 127.0.0.1) goes online and ends cleanly.
fn streamer_gets_in(server: &mut Server, what: &str) {
    let mut publisher =
        Publisher::start(what, &fixture().path, &server.publish_url(), &["-t", "3"]);
    server.wait_online(true, Duration::from_secs(30));
    publisher.expect_success(Duration::from_secs(60), what);
    server.wait_online(false, Duration::from_secs(30));
    server.assert_running();
}

/// 16 connections in all used to be the limit, with no deadline short enough and no cap per
/// address: strangers holding idle sockets kept every encoder out ("Cannot read RTMP handshake
/// response"). Now the streamer gets in while they hold them, from wherever they come.
#[test]
fn idle_sockets_cannot_keep_the_streamer_out() {
    let mut server = Server::start(ServerOptions::default());
    let port = server.rtmp_port;

    // One other address, more sockets than the old limit.
    let attacker = IdleAttacker::start(port, &[loopback(2)], 20);
    streamer_gets_in(&mut server, "publish while 127.0.0.2 holds 20 idle sockets");
    // The kernel holds silent sockets back for a while (TCP_DEFER_ACCEPT); then the server
    // takes them and closes those over the address's cap.
    let closed_some = poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        (attacker.closed_by_server() > 0).then_some(())
    });
    assert!(
        closed_some.is_some(),
        "the server closed none of the attacker's sockets"
    );
    drop(attacker);

    // Many addresses, one socket each, more than max_connections (32) in all.
    let sources: Vec<IpAddr> = (10..50).map(loopback).collect();
    let attacker = IdleAttacker::start(port, &sources, 1);
    streamer_gets_in(
        &mut server,
        "publish while 40 addresses hold an idle socket each",
    );
    drop(attacker);

    // The streamer's own address (the same NAT, or this machine).
    let attacker = IdleAttacker::start(port, &[LOOPBACK], 20);
    streamer_gets_in(
        &mut server,
        "publish while 127.0.0.1 itself holds 20 idle sockets",
    );
    drop(attacker);

    let log = server.stderr();
    assert!(
        log.contains("closed an RTMP connection that had not started publishing"),
        "no log line about making room:\n{log}"
    );
}

/// A socket that never completes the handshake is closed after the handshake deadline (5 s, counted
/// once the kernel hands it over: TCP_DEFER_ACCEPT holds a silent one back ~7 s first), and
/// one that completes it but never publishes after the publish deadline (10 s).
#[test]
fn strangers_are_closed_after_the_deadlines() {
    let server = Server::start(ServerOptions::default());
    let port = server.rtmp_port;
    let idle = rtmp::connect_from(loopback(3), port).expect("connect");
    let mut handshaken = rtmp::connect_from(loopback(4), port).expect("connect");
    let _ = handshaken.set_read_timeout(Some(Duration::from_millis(100)));
    rtmp::handshake(&mut handshaken, Instant::now() + Duration::from_secs(10)).expect("handshake");

    let deadline = Instant::now() + Duration::from_secs(60);
    let idle = std::thread::spawn(move || wait_closed(idle, deadline));
    let handshaken = wait_closed(handshaken, deadline);
    let closed = (idle.join().unwrap(), handshaken);
    assert_eq!(
        closed,
        (true, true),
        "(idle, handshaken) closed by the server"
    );
    let log = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let log = server.stderr();
        (log.contains("no RTMP handshake within 5s")
            && log.contains("connected for 10s without publishing"))
        .then_some(log)
    });
    assert!(
        log.is_some(),
        "the log does not say why:\n{}",
        server.stderr()
    );
}

/// Wrong stream keys as fast as the server answers: a few cost nothing, then the address must
/// wait, and is told for how long; the right key from there waits too; the streamer elsewhere
/// is not affected.
#[test]
fn wrong_stream_keys_are_slowed_down() {
    let server = Server::start(ServerOptions::default());
    let port = server.rtmp_port;
    let guess = |key: &str| match RtmpPublisher::connect(port, "live", key) {
        Ok(publisher) => {
            let _ = publisher.finish();
            "accepted".to_string()
        }
        Err(e) => e,
    };
    let answers: Vec<String> = (0..100)
        .map(|i| guess(&format!("guess-{i:04}-wrong")))
        .collect();
    let checked = answers
        .iter()
        .filter(|a| a.contains("publish refused: wrong stream key"))
        .count();
    let slowed = answers
        .iter()
        .filter(|a| a.contains("too many wrong stream keys from this address, try again in"))
        .count();
    assert!(
        answers[..5]
            .iter()
            .all(|a| a.contains("publish refused: wrong stream key")),
        "the first wrong keys: {:?}",
        &answers[..5]
    );
    assert!(
        slowed > 0 && checked + slowed == answers.len(),
        "{checked} checked, {slowed} slowed down: {answers:?}"
    );
    // 5 free, then 1 s, 2 s, 4 s, 8 s, 16 s, 30 s between checks: 12 checks take over a minute.
    assert!(checked <= 12, "{checked} of 100 wrong keys were checked");

    // Slowed down, not stopped: once the wait is over a guess is checked again (and the next
    // wait, 2 s, starts); the right key right after it is refused, with the wait.
    let checked_again = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let answer = guess("another-wrong-guess");
        answer
            .contains("publish refused: wrong stream key")
            .then_some(answer)
    });
    assert!(
        checked_again.is_some(),
        "no guess checked again after the wait"
    );
    let answer = guess(TEST_KEY);
    assert!(
        answer.contains("too many wrong stream keys from this address, try again in"),
        "the right key while slowed down: {answer}"
    );

    // What ffmpeg (and so the owner) sees.
    let mut ffmpeg = Publisher::start("slowed down", &fixture().path, &server.publish_url(), &[]);
    let status = ffmpeg
        .wait(Duration::from_secs(30))
        .expect("ffmpeg was not refused");
    assert!(!status.success());
    assert!(
        ffmpeg
            .log()
            .contains("too many wrong stream keys from this address"),
        "{}",
        ffmpeg.log()
    );

    // The streamer somewhere else is not slowed down.
    let publisher = RtmpPublisher::connect_from(loopback(2), port, "live", TEST_KEY)
        .expect("the right key from another address");
    publisher.finish().unwrap();
}

/// The `connect` command with its transaction id and command object missing: rml_rtmp 0.8
/// panics on it ("range end index 3 out of range"); a patched one refuses it as malformed.
/// Either way one connection, one failure.
fn send_truncated_connect(port: u16) {
    let Ok(mut socket) = rtmp::connect_from(LOOPBACK, port) else {
        return;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    if rtmp::handshake(&mut socket, Instant::now() + Duration::from_secs(10)).is_err() {
        return;
    }
    // One chunk: basic header fmt 0 on chunk stream 3; message header: timestamp 0, length
    // 10, type 20 (AMF0 command), message stream 0 (little endian); then the AMF0 string
    // "connect" (marker 0x02, length 7) and nothing else.
    let mut chunk = vec![0x03, 0, 0, 0, 0, 0, 10, 20, 0, 0, 0, 0, 0x02, 0x00, 0x07];
    chunk.extend_from_slice(b"connect");
    let _ = socket.write_all(&chunk);
    wait_closed(socket, Instant::now() + Duration::from_secs(20));
}

/// Every failing connection used to log its own lines, and a panic in rml_rtmp the default
/// panic report (with the backtrace RUST_BACKTRACE=1 asks for: the test servers run with it).
/// Now a failure that an outsider triggers is one line per address every 5 s.
#[test]
fn failures_an_outsider_triggers_are_logged_in_bounds() {
    let mut server = Server::start(ServerOptions::default());
    let port = server.rtmp_port;
    let lines_before = server.stderr().lines().count();
    for _ in 0..100 {
        send_truncated_connect(port);
    }
    let log = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let log = server.stderr();
        log.lines()
            .skip(lines_before)
            .any(|l| l.contains("connection"))
            .then_some(log)
    })
    .unwrap_or_else(|| {
        panic!(
            "nothing logged about 100 broken connections:\n{}",
            server.stderr()
        )
    });
    let new: Vec<&str> = log.lines().skip(lines_before).collect();
    assert!(
        !new.iter()
            .any(|l| l.contains("stack backtrace") || l.starts_with("thread '")),
        "a panic report reached stderr:\n{}",
        new.join("\n")
    );
    assert!(
        new.len() <= 12,
        "{} lines for 100 broken connections:\n{}",
        new.len(),
        new.join("\n")
    );

    server.assert_running();
    RtmpPublisher::connect(port, "live", TEST_KEY)
        .expect("the streamer after the attack")
        .finish()
        .unwrap();
}
