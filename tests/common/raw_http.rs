//! A raw HTTP/1.1 client for the tests that need what ureq does not give: a request from a
//! chosen loopback address (127.0.0.1, 127.0.0.2...: two "addresses" side by side), and exactly
//! the headers a browser would send (`Origin`, `Sec-Fetch-Site`, `Cookie`), nothing more; and a
//! body announced but never sent ([`announce_body`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::Server;

pub fn basic(user: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}").as_bytes());
    format!("Basic {encoded}")
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.body))
    }
}

/// Connects to the server from `from` (bind before connect: std's `TcpStream` cannot, tokio's
/// socket can).
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
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

/// A `POST` that says (`Content-Length`) it carries `length` bytes and sends none: the status of
/// the answer, for a body the server must refuse from its headers (413). Sending such a body
/// instead races the server, which answers and closes while it is still written (a broken
/// pipe, now and then).
pub fn announce_body(server: &Server, path: &str, headers: &[(&str, &str)], length: usize) -> u16 {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, server.http_port))
        .unwrap_or_else(|e| panic!("connect for POST {path}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {length}\r\n",
        server.http_port
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("POST {path}: sending: {e}"));
    let mut status_line = String::new();
    BufReader::new(stream)
        .read_line(&mut status_line)
        .unwrap_or_else(|e| panic!("POST {path}: reading the answer: {e}"));
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("POST {path}: no status line in {status_line:?}"))
}

/// One request (`Connection: close`) from `from`, the answer read to its end.
pub fn send(
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
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
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

/// `GET /api/admin/chat/clients` from `from` with this admin password (HTTP Basic auth).
pub fn basic_sign_in(server: &Server, from: Ipv4Addr, password: &str) -> Reply {
    let auth = basic("admin", password);
    send(
        server,
        from,
        "GET",
        "/api/admin/chat/clients",
        &[("Authorization", &auth)],
        "",
    )
}
