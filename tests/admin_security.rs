//! The admin API attacked the way issue 13 found it open, from loopback, through the real
//! `selfcast` binary:
//!
//! - guessing the password: after the free failures an address must wait, then is locked out;
//!   a refused attempt gets 429 with `Retry-After` and its password is not checked (the right
//!   one is refused too); another address is unaffected; the right password forgives; the same
//!   stale password sent again and again is not counted;
//! - cross-site request forgery: a state-changing request without the JSON content type gets
//!   415, one that says it comes from another site (`Origin`, `Sec-Fetch-Site`) 403, and neither
//!   has an effect; scripts (no `Origin`) and the server's own pages keep working.
//!
//! Requests are raw HTTP/1.1 from a socket bound to a chosen loopback address (127.0.0.1 or
//! 127.0.0.2), so that two "addresses" can attack and sign in side by side. Nothing is timed:
//! the one wait (a delay passing) polls with a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use common::{poll_until, Server, ServerOptions};

const PASSWORD: &str = "admin-security-test-pw-13";
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A server with the admin password and these `[admin]` keys.
fn start(admin_toml: &str) -> Server {
    Server::start(ServerOptions {
        extra_toml: format!("\n[admin]\npassword = \"{PASSWORD}\"\n{admin_toml}\n"),
        ..ServerOptions::default()
    })
}

fn basic(user: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}").as_bytes());
    format!("Basic {encoded}")
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.body))
    }
}

/// Connects to the server from `from` (bind before connect: std's `TcpStream` cannot, tokio's
/// socket can).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for connecting")
    });
    let stream = runtime
        .block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((from, 0)))?;
            tokio::time::timeout(Duration::from_secs(10), socket.connect(to))
                .await
                .map_err(|_| std::io::Error::other("connect timed out"))?
        })
        .unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"))
        .into_std()
        .expect("a std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// One request (`Connection: close`) from `from`, the answer read to its end.
fn send(
    server: &Server,
    from: Ipv4Addr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, server.http_port));
    let mut stream = connect_from(from, to);
    let mut request = format!(
        "{method} /api/admin{path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
        server.http_port
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method != "GET" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: sending: {e}"));
    let mut raw = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no end of headers in {raw:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_string(),
    };
    assert_ne!(
        reply.header("transfer-encoding"),
        Some("chunked"),
        "{method} {path}: this little client reads whole bodies only"
    );
    reply
}

/// `GET /api/admin/chat/clients` from `from` with this password.
fn sign_in(server: &Server, from: Ipv4Addr, password: &str) -> Reply {
    let auth = basic("admin", password);
    send(
        server,
        from,
        "GET",
        "/chat/clients",
        &[("Authorization", &auth)],
        "",
    )
}

/// A 429's promises: `Retry-After` in whole seconds, and why in words.
fn assert_refused_unchecked(reply: &Reply, locked_out: bool, what: &str) -> u64 {
    assert_eq!(reply.status, 429, "{what}: {reply:?}");
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After in seconds: {reply:?}"));
    assert!(retry_after >= 1, "{what}: Retry-After {retry_after}");
    let body = reply.json();
    let why = body["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("too many wrong passwords"),
        "{what}: the body says why: {body}"
    );
    assert_eq!(body["retryAfterSeconds"], retry_after, "{what}: {body}");
    assert_eq!(body["lockedOut"], locked_out, "{what}: {body}");
    retry_after
}

#[test]
fn sixty_wrong_passwords_are_refused_unchecked_after_the_free_ones() {
    // A delay far longer than the test: every attempt after the first delayed one is refused.
    let server = start("free_failures = 5\nfirst_delay_seconds = 600\nmax_delay_seconds = 600");
    let mut statuses = Vec::new();
    for guess in 0..60 {
        let reply = sign_in(&server, ATTACKER, &format!("guess-{guess}"));
        if reply.status == 429 {
            assert_refused_unchecked(&reply, false, &format!("guess {guess}"));
            assert!(reply.json()["error"]
                .as_str()
                .unwrap()
                .contains("not checked"));
        }
        statuses.push(reply.status);
    }
    // 5 free failures, and the 6th, which was checked and starts the delay.
    assert_eq!(statuses[..6], [401; 6], "{statuses:?}");
    assert!(
        statuses[6..].iter().all(|&status| status == 429),
        "every guess during the delay is refused: {statuses:?}"
    );

    let right = sign_in(&server, ATTACKER, PASSWORD);
    assert_refused_unchecked(&right, false, "the right password during the delay");
    let elsewhere = sign_in(&server, ELSEWHERE, PASSWORD);
    assert_eq!(elsewhere.status, 200, "another address: {elsewhere:?}");
    assert_eq!(
        sign_in(&server, ELSEWHERE, "a typo").status,
        401,
        "another address has its own free failures"
    );
}

#[test]
fn the_right_password_after_the_delay_is_accepted_and_forgives() {
    let server = start("free_failures = 2\nfirst_delay_seconds = 3\nlockout_failures = 4");
    for guess in ["first", "second", "third"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    let during = sign_in(&server, ATTACKER, PASSWORD);
    let retry_after = assert_refused_unchecked(&during, false, "the right password too soon");
    assert!(
        retry_after <= 3,
        "Retry-After {retry_after} for a 3 s delay"
    );

    // Polling during the delay is refused and does not make it longer.
    let mut refused = 0;
    let accepted = poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let reply = sign_in(&server, ATTACKER, PASSWORD);
        if reply.status == 429 {
            refused += 1;
            None
        } else {
            Some(reply)
        }
    })
    .expect("the right password is accepted once the delay has passed");
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert!(accepted.json().is_array(), "{accepted:?}");

    // Forgiven: the free failures are free again (without it, the next would lock out).
    for guess in ["fourth", "fifth"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    assert_eq!(
        sign_in(&server, ATTACKER, PASSWORD).status,
        200,
        "two free failures after forgiveness ({refused} polls were refused during the delay)"
    );
}

#[test]
fn repeated_failures_lock_the_address_out_and_the_owner_is_told() {
    let server = start("free_failures = 2\nlockout_failures = 3\nlockout_minutes = 15");
    for guess in ["one", "two", "three"] {
        assert_eq!(sign_in(&server, ATTACKER, guess).status, 401, "{guess}");
    }
    let right = sign_in(&server, ATTACKER, PASSWORD);
    let retry_after = assert_refused_unchecked(&right, true, "the right password, locked out");
    assert!(
        retry_after > 14 * 60,
        "locked out for 15 minutes: {retry_after}"
    );
    let why = right.json()["error"].as_str().unwrap().to_string();
    assert!(
        why.contains("locked out") && why.contains("restarting selfcast"),
        "{why}"
    );
    let logged = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let log = server.stderr() + &server.stdout();
        log.lines()
            .find(|line| line.contains("locked out") && line.contains("127.0.0.1"))
            .map(str::to_string)
    })
    .expect("the lock-out is logged");
    assert!(
        logged.contains("restart selfcast"),
        "how to lift it: {logged}"
    );
    assert!(!logged.contains(PASSWORD), "{logged}");
    assert_eq!(sign_in(&server, ELSEWHERE, PASSWORD).status, 200);
}

#[test]
fn the_same_stale_password_again_and_again_is_not_counted() {
    let server = start("free_failures = 2");
    for _ in 0..30 {
        assert_eq!(
            sign_in(&server, ATTACKER, "last-years-password").status,
            401
        );
    }
    assert_eq!(
        sign_in(&server, ATTACKER, PASSWORD).status,
        200,
        "a script polling with an old password does not lock its owner out"
    );
}

#[test]
fn cross_site_and_non_json_requests_change_nothing() {
    let server = start("");
    let auth = basic("admin", PASSWORD);
    let own_origin = format!("http://127.0.0.1:{}", server.http_port);
    let other_port = format!("http://127.0.0.1:{}", server.http_port + 1);
    let json_type = ("Content-Type", "application/json");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 415),
        (vec![("Content-Type", "text/plain")], 415),
        (vec![("Content-Type", "text/plain; charset=utf-8")], 415),
        (
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            415,
        ),
        (
            vec![("Content-Type", "multipart/form-data; boundary=x")],
            415,
        ),
        (vec![("Content-Type", "application/vnd.api+json")], 415),
        (vec![json_type, ("Origin", "http://evil.example")], 403),
        (vec![json_type, ("Origin", &other_port)], 403),
        (vec![json_type, ("Origin", "null")], 403),
        (vec![json_type, ("Sec-Fetch-Site", "cross-site")], 403),
        (vec![json_type, ("Sec-Fetch-Site", "same-site")], 403),
        (
            vec![
                ("Origin", "http://evil.example"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (vec![json_type], 200),
        (
            vec![("Content-Type", "application/json; charset=utf-8")],
            200,
        ),
        (vec![json_type, ("Origin", &own_origin)], 200),
        (
            vec![
                json_type,
                ("Origin", &own_origin),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            200,
        ),
        (vec![json_type, ("Sec-Fetch-Site", "none")], 200),
    ];
    let mut banned = Vec::new();
    for (index, (headers, expected)) in cases.iter().enumerate() {
        let address = format!("203.0.113.{index}");
        let mut with_auth = headers.clone();
        with_auth.push(("Authorization", &auth));
        let body = json!({ "value": address }).to_string();
        let reply = send(
            &server,
            ATTACKER,
            "POST",
            "/chat/users/ipbans/create",
            &with_auth,
            &body,
        );
        assert_eq!(reply.status, *expected, "{headers:?}: {reply:?}");
        let why = reply.json()["error"].as_str().map(str::to_string);
        match expected {
            415 => assert!(why.unwrap().contains("application/json"), "{reply:?}"),
            403 => assert!(why.unwrap().contains("another"), "{reply:?}"),
            _ => banned.push(address),
        }
    }
    // A cross-site request is refused before its password is checked, and not counted.
    for guess in 0..10 {
        let wrong = basic("admin", &format!("csrf-guess-{guess}"));
        let reply = send(
            &server,
            ATTACKER,
            "POST",
            "/chat/send",
            &[
                json_type,
                ("Origin", "http://evil.example"),
                ("Authorization", &wrong),
            ],
            r#"{"body":"forged"}"#,
        );
        assert_eq!(reply.status, 403, "{reply:?}");
    }
    let forged = send(
        &server,
        ATTACKER,
        "POST",
        "/chat/send",
        &[("Authorization", &auth)],
        r#"{"body":"forged without a type"}"#,
    );
    assert_eq!(forged.status, 415, "{forged:?}");

    let listed = send(
        &server,
        ATTACKER,
        "GET",
        "/chat/users/ipbans",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(listed.status, 200, "the password still works: {listed:?}");
    let listed: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|ban| ban["ipAddress"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, banned, "only the accepted requests banned anyone");
    let history = common::http_get(&server.url("/api/chat")).unwrap().text();
    assert!(!history.contains("forged"), "{history}");
}
