//! The load client: N real websocket clients on one tokio runtime, all reading all the time.
//!
//! ```text
//! connecting ─▶ settling ─▶ steady (--duration) ─▶ draining ─▶ results (JSON on stdout)
//! ```
//!
//! - connecting: N connections, at most `concurrency` handshakes in flight (so the server's
//!   accept backlog never overflows); one counts as connected when the server's
//!   CONNECTED_USER_INFO arrives. A connection the server refuses or closes before the steady
//!   phase is retried (up to ATTEMPTS times) and the reason counted.
//! - settling: until no client has received anything for a while (selfcast broadcasts a
//!   USER_JOINED per new user: N joins to up to N clients, which must drain before measuring).
//! - steady: `senders` of the clients each send `{"type":"CHAT","body":"bench SEQ SENT_NS"}`
//!   every senders/rate seconds (±10 % jitter, each at its own random phase), SENT_NS being
//!   nanoseconds since this process's epoch. Every client, for every CHAT it receives, records
//!   now − SENT_NS: send to receipt, one monotonic clock. A connection lost now is not replaced.
//! - draining: after the last send, until every expected delivery arrived or none came for
//!   DRAIN_IDLE (the rest is counted as missing).
//!
//! Receiving is most of the client's work (~1,000,000 events/s at the full load), so it is kept
//! cheap: events are not parsed as JSON (the event type is read from the fixed prefix
//! `{"type":"`, the send time from the text after `"body":"bench `), and each socket is read
//! through a READ_BUFFER-byte buffer, so a client that has fallen behind catches up in a few large
//! reads instead of tungstenite's 4 KiB ones.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use memchr::memmem::FinderRev;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore, SemaphorePermit};
use tokio::time::{sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::counters::{self, Totals};
use crate::own_cpu_seconds;

pub struct Options {
    pub url: String,
    pub clients: usize,
    /// Messages per second, all senders together.
    pub rate: f64,
    pub senders: usize,
    pub duration: Duration,
    /// Handshakes in flight at most.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub settle_timeout: Duration,
}

const ATTEMPTS: u32 = 5;
const RETRY_AFTER: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
/// Settled: fewer than 1 % of the clients received an event in this window.
const QUIET_WINDOW: Duration = Duration::from_secs(1);
const DRAIN_IDLE: Duration = Duration::from_secs(5);
const DRAIN_MAX: Duration = Duration::from_secs(60);
/// Each send is this share of the interval early or late, at random.
const JITTER: f64 = 0.1;
const MARKER: &str = "\"body\":\"bench ";
static FIND_MARKER: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(MARKER));
const READ_BUFFER: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Connecting,
    Settling,
    Steady,
    Draining,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Settling => "settling",
            Phase::Steady => "steady",
            Phase::Draining => "draining",
        }
    }
}

/// What the clients share; counters that change per event are in counters.rs instead.
struct Shared {
    url: String,
    /// host:port of `url`.
    addr: String,
    epoch: Instant,
    phase: watch::Sender<Phase>,
    gate: Semaphore,
    /// Admitted and not closed since.
    open: AtomicI64,
    admissions: AtomicU64,
    attempts: AtomicU64,
    /// Clients that failed every attempt.
    gave_up: AtomicU64,
    sent: AtomicU64,
    /// Error events received by connected clients during the measurement (refused messages).
    refused: AtomicU64,
    send_interval: Duration,
    /// "phase: what happened" -> count, for rare events (closes, refusals, failures).
    events: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    fn note(&self, what: &str) {
        let key = format!("{}: {what}", self.phase().name());
        *self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn log(&self, what: &str) {
        eprintln!(
            "[chat-load {:7.1}s] {what}",
            self.epoch.elapsed().as_secs_f64()
        );
    }
}

pub fn run(opts: Options) -> Value {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(drive(opts))
}

async fn drive(opts: Options) -> Value {
    let send_interval = Duration::from_secs_f64(opts.senders as f64 / opts.rate);
    let sh = Arc::new(Shared {
        url: opts.url.clone(),
        addr: host_port(&opts.url),
        epoch: Instant::now(),
        phase: watch::channel(Phase::Connecting).0,
        gate: Semaphore::new(opts.concurrency),
        open: AtomicI64::new(0),
        admissions: AtomicU64::new(0),
        attempts: AtomicU64::new(0),
        gave_up: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        send_interval,
        events: Mutex::new(BTreeMap::new()),
    });
    if send_interval < Duration::from_secs(1) {
        sh.log(&format!(
            "warning: each sender sends every {:.2} s, faster than selfcast's default rate limit (1/s after a burst of 5)",
            send_interval.as_secs_f64()
        ));
    }
    spawn_clients(&sh, &opts);
    let connect = wait_connected(&sh, &opts).await;
    if connect.open == 0 {
        sh.log("no client is connected: nothing to measure");
        std::process::exit(1);
    }
    sh.phase.send_replace(Phase::Settling);
    let settle = wait_quiet(&sh, &opts).await;
    let steady = measure(&sh, &opts).await;
    let drain = wait_drained(&sh, &steady).await;
    results(&sh, &opts, connect, settle, steady, drain)
}

/// Client `i` of `n` is one of the `senders` when it falls on an even stride through the
/// connection order (so senders are connected early and late alike).
fn spawn_clients(sh: &Arc<Shared>, opts: &Options) {
    let stride = (opts.clients / opts.senders).max(1);
    for i in 0..opts.clients {
        let plan = (i % stride == 0 && i / stride < opts.senders).then(|| SendPlan::new(i as u64));
        tokio::spawn(client(Arc::clone(sh), plan));
    }
    sh.log(&format!(
        "{} clients to {} ({} handshakes at a time); {} senders, one message every {:.2} s each ({} msg/s in all)",
        opts.clients,
        opts.url,
        opts.concurrency,
        opts.senders,
        sh.send_interval.as_secs_f64(),
        opts.rate
    ));
}

// ---- One client --------------------------------------------------------------------------------

/// A sender's schedule: the k-th message at start + offset + k × interval ± jitter.
struct SendPlan {
    rng: u64,
    offset: f64,
    start: Option<Instant>,
    k: u32,
}

impl SendPlan {
    fn new(seed: u64) -> Self {
        let mut plan = SendPlan {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            offset: 0.0,
            start: None,
            k: 0,
        };
        plan.offset = plan.uniform();
        plan
    }

    /// xorshift64*: uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When the next message is due.
    fn next(&mut self, interval: Duration) -> Instant {
        let start = *self.start.get_or_insert_with(Instant::now);
        let jitter = (self.uniform() * 2.0 - 1.0) * JITTER;
        let at = (self.offset + f64::from(self.k) + jitter).max(0.0);
        self.k += 1;
        start + interval.mul_f64(at)
    }
}

/// One client: connects (again, while not measuring yet) until it stays connected.
async fn client(sh: Arc<Shared>, mut plan: Option<SendPlan>) {
    for attempt in 1..=ATTEMPTS {
        sh.attempts.fetch_add(1, Relaxed);
        let (admitted, why) = session(&sh, plan.as_mut()).await;
        if admitted {
            sh.open.fetch_sub(1, Relaxed);
        }
        sh.note(&why);
        if sh.phase() >= Phase::Steady {
            return;
        }
        if attempt < ATTEMPTS {
            sleep(RETRY_AFTER).await;
        }
    }
    sh.gave_up.fetch_add(1, Relaxed);
}

/// What one connection knows about itself.
struct Conn<'a> {
    /// A handshake slot, held until admitted.
    permit: Option<SemaphorePermit<'a>>,
    admitted: bool,
    /// The last error event: it tells why the close that follows came.
    last_error: Option<String>,
}

/// One connection, until it ends: whether it was admitted, and why it ended.
async fn session(sh: &Shared, mut plan: Option<&mut SendPlan>) -> (bool, String) {
    let permit = sh.gate.acquire().await.expect("the gate is never closed");
    let mut ws = match timeout(HANDSHAKE_TIMEOUT, connect(sh)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return (false, format!("connect failed: {}", describe(&e))),
        Err(_) => return (false, "connect timed out".into()),
    };
    let mut conn = Conn {
        permit: Some(permit),
        admitted: false,
        last_error: None,
    };
    let mut phase = sh.phase.subscribe();
    let mut next_send = None;
    let mut done_sending = false;
    let far = Instant::now() + Duration::from_secs(86_400);
    let why = loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => conn.on_text(sh, &text),
                Some(Ok(Message::Close(frame))) => break conn.why(&closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => break conn.why(&describe(&e)),
                None => break conn.why("the connection ended"),
            },
            _ = phase.changed(), if plan.is_some() && !done_sending => match *phase.borrow_and_update() {
                Phase::Steady if next_send.is_none() => next_send = plan.as_mut().map(|p| p.next(sh.send_interval)),
                Phase::Draining => (next_send, done_sending) = (None, true),
                _ => {}
            },
            _ = sleep_until(next_send.unwrap_or(far).into()), if next_send.is_some() => {
                if sh.phase() != Phase::Steady {
                    (next_send, done_sending) = (None, true);
                    continue;
                }
                let seq = sh.sent.fetch_add(1, Relaxed);
                let body = format!(r#"{{"type":"CHAT","body":"bench {seq} {}"}}"#, sh.now_ns());
                if let Err(e) = ws.send(Message::Text(body)).await {
                    break conn.why(&format!("send failed: {}", describe(&e)));
                }
                next_send = plan.as_mut().map(|p| p.next(sh.send_interval));
            }
        }
    };
    (conn.admitted, why)
}

async fn connect(sh: &Shared) -> Result<WebSocketStream<BufReader<TcpStream>>, WsError> {
    let tcp = TcpStream::connect(&sh.addr).await?;
    let (ws, _) = tokio_tungstenite::client_async(
        sh.url.as_str(),
        BufReader::with_capacity(READ_BUFFER, tcp),
    )
    .await?;
    Ok(ws)
}

/// `ws://HOST:PORT/path` → `HOST:PORT`.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

impl Conn<'_> {
    /// A text message: one event per line (selfcast, as Owncast, sends several in one message
    /// when they come together).
    fn on_text(&mut self, sh: &Shared, text: &str) {
        let now = sh.now_ns();
        for event in text.split('\n') {
            self.on_event(sh, event, now);
        }
    }

    fn on_event(&mut self, sh: &Shared, text: &str, now: u64) {
        counters::with(|c| match event_type(text) {
            "CHAT" => match bench_sent_ns(text) {
                Some(sent) => c.latency_us.record(now.saturating_sub(sent) / 1000),
                None => drop(c.other.fetch_add(1, Relaxed)),
            },
            "USER_JOINED" => drop(c.joins.fetch_add(1, Relaxed)),
            "USER_PARTED" => drop(c.parts.fetch_add(1, Relaxed)),
            kind => {
                c.other.fetch_add(1, Relaxed);
                if kind == "CONNECTED_USER_INFO" {
                    self.admit(sh);
                } else if kind.starts_with("ERROR_") || kind == "CHAT_DISABLED" {
                    self.on_error(sh, kind);
                }
            }
        });
    }

    fn admit(&mut self, sh: &Shared) {
        self.admitted = true;
        self.permit = None;
        sh.open.fetch_add(1, Relaxed);
        sh.admissions.fetch_add(1, Relaxed);
    }

    /// An error event: at connect, the close that follows says the rest; once connected, a
    /// message of ours was refused.
    fn on_error(&mut self, sh: &Shared, kind: &str) {
        self.last_error = Some(kind.to_owned());
        if self.admitted {
            sh.note(&format!("error event {kind}"));
            if sh.phase() >= Phase::Steady {
                sh.refused.fetch_add(1, Relaxed);
            }
        }
    }

    fn why(&self, how: &str) -> String {
        let stage = if self.admitted {
            ""
        } else {
            "refused at connect: "
        };
        match &self.last_error {
            Some(kind) => format!("{stage}{how} (after {kind})"),
            None => format!("{stage}{how}"),
        }
    }
}

/// `{"type":"CHAT",...` → `CHAT`; "" for an event that does not start that way.
fn event_type(text: &str) -> &str {
    text.strip_prefix(r#"{"type":""#)
        .and_then(|rest| rest.split_once('"'))
        .map_or("", |(kind, _)| kind)
}

/// SENT_NS of a benchmark message (`"body":"bench SEQ SENT_NS"`), searched from the end, where
/// the body is.
fn bench_sent_ns(text: &str) -> Option<u64> {
    let rest = &text[FIND_MARKER.rfind(text)? + MARKER.len()..];
    let (_seq, rest) = rest.split_once(' ')?;
    rest[..rest.find('"')?].parse().ok()
}

fn closed(frame: Option<CloseFrame<'_>>) -> String {
    match frame {
        Some(f) => format!(
            "closed by the server: {} {}",
            u16::from(f.code),
            f.reason.chars().take(80).collect::<String>()
        ),
        None => "closed by the server without a code".into(),
    }
}

/// A websocket error, grouped for counting (no addresses or ports in it).
fn describe(e: &WsError) -> String {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "the connection closed".into(),
        WsError::Io(io) => format!("i/o error: {}", io.kind()),
        WsError::Http(response) => format!("HTTP {} instead of a websocket", response.status()),
        other => other.to_string(),
    }
}

// ---- The phases ---------------------------------------------------------------------------------

struct Connect {
    seconds: f64,
    timed_out: bool,
    open: i64,
}

/// Until every client is connected or has given up (or the timeout).
async fn wait_connected(sh: &Shared, opts: &Options) -> Connect {
    let started = Instant::now();
    let mut shown = Instant::now();
    loop {
        sleep(POLL).await;
        let (open, gave_up) = (sh.open.load(Relaxed), sh.gave_up.load(Relaxed));
        let timed_out = started.elapsed() > opts.connect_timeout;
        if open + gave_up as i64 >= opts.clients as i64 || timed_out {
            let seconds = started.elapsed().as_secs_f64();
            sh.log(&format!(
                "connected: {open} of {} in {seconds:.1} s ({gave_up} gave up)",
                opts.clients
            ));
            return Connect {
                seconds,
                timed_out,
                open,
            };
        }
        if shown.elapsed() >= PROGRESS_EVERY {
            shown = Instant::now();
            sh.log(&format!(
                "connecting: {open} open of {}, {} attempts, {gave_up} gave up, {} events received",
                opts.clients,
                sh.attempts.load(Relaxed),
                Totals::now().events()
            ));
        }
    }
}

struct Settle {
    seconds: f64,
    quiet: bool,
}

/// Until, over QUIET_WINDOW, fewer than 1 % of the clients received an event and every client
/// that has not given up is connected (or the timeout).
async fn wait_quiet(sh: &Shared, opts: &Options) -> Settle {
    let started = Instant::now();
    let mut shown = Instant::now();
    let mut window = (Instant::now(), Totals::now().events());
    let threshold = (opts.clients as u64 / 100).max(1);
    loop {
        sleep(POLL).await;
        if window.0.elapsed() < QUIET_WINDOW {
            continue;
        }
        let events = Totals::now().events();
        let recent = events - window.1;
        window = (Instant::now(), events);
        let all_open =
            sh.open.load(Relaxed) + sh.gave_up.load(Relaxed) as i64 >= opts.clients as i64;
        let quiet = recent < threshold && all_open;
        if quiet || started.elapsed() > opts.settle_timeout {
            let seconds = started.elapsed().as_secs_f64();
            sh.log(&format!(
                "settled in {seconds:.1} s{}",
                if quiet { "" } else { " (NOT quiet: timed out)" }
            ));
            return Settle { seconds, quiet };
        }
        if shown.elapsed() >= PROGRESS_EVERY {
            shown = Instant::now();
            sh.log(&format!(
                "settling: {recent} events in the last second, {} open",
                sh.open.load(Relaxed)
            ));
        }
    }
}

struct Steady {
    seconds: f64,
    open_at_start: i64,
    open_at_end: i64,
    events: u64,
    cpu_s: f64,
    before: Totals,
}

/// The measured phase: senders on for `duration`; the markers tell the driving script when.
async fn measure(sh: &Shared, opts: &Options) -> Steady {
    let before = Totals::now();
    let open_at_start = sh.open.load(Relaxed);
    let cpu0 = own_cpu_seconds();
    eprintln!("@steady-start");
    sh.phase.send_replace(Phase::Steady);
    let started = Instant::now();
    let mut last = (Instant::now(), before.events());
    while started.elapsed() < opts.duration {
        sleep(PROGRESS_EVERY.min(opts.duration.saturating_sub(started.elapsed()))).await;
        let now = Totals::now();
        let per_s = (now.events() - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), now.events());
        sh.log(&format!(
            "steady: {:.0}/{:.0} s, {} sent, {:.0} events/s received, p99 so far {} ms, {} open",
            started.elapsed().as_secs_f64(),
            opts.duration.as_secs_f64(),
            sh.sent.load(Relaxed),
            per_s,
            now.latency
                .quantile(0.99)
                .map_or("–".into(), |us| format!("{:.1}", us as f64 / 1000.0)),
            sh.open.load(Relaxed)
        ));
    }
    sh.phase.send_replace(Phase::Draining);
    eprintln!("@steady-end");
    let seconds = started.elapsed().as_secs_f64();
    let cpu_s = own_cpu_seconds() - cpu0;
    Steady {
        seconds,
        open_at_start,
        open_at_end: sh.open.load(Relaxed),
        events: Totals::now().events() - before.events(),
        cpu_s,
        before,
    }
}

struct Drain {
    seconds: f64,
    expected: u64,
}

/// Every message accepted reaches every client that was open when the measurement started:
/// wait for those deliveries until none has come for DRAIN_IDLE.
async fn wait_drained(sh: &Shared, steady: &Steady) -> Drain {
    let started = Instant::now();
    // The senders may still be in the middle of a send: let them see the phase change.
    sleep(POLL).await;
    let accepted = sh
        .sent
        .load(Relaxed)
        .saturating_sub(sh.refused.load(Relaxed));
    let expected = accepted * steady.open_at_start.max(0) as u64;
    let mut last = (Instant::now(), Totals::now().latency.total);
    while last.1 < expected && last.0.elapsed() < DRAIN_IDLE && started.elapsed() < DRAIN_MAX {
        sleep(POLL).await;
        let received = Totals::now().latency.total;
        if received != last.1 {
            last = (Instant::now(), received);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    sh.log(&format!(
        "drained in {seconds:.1} s: {} of {expected} deliveries",
        last.1
    ));
    Drain { seconds, expected }
}

fn results(
    sh: &Shared,
    opts: &Options,
    connect: Connect,
    settle: Settle,
    steady: Steady,
    drain: Drain,
) -> Value {
    let end = Totals::now();
    let ms = |q: f64| end.latency.quantile(q).map(|us| us as f64 / 1000.0);
    let events = sh.events.lock().unwrap_or_else(|p| p.into_inner()).clone();
    json!({
        "url": opts.url,
        "clients": opts.clients,
        "senders": opts.senders,
        "rate": opts.rate,
        "send_interval_s": sh.send_interval.as_secs_f64(),
        "concurrency": opts.concurrency,
        "connect": {
            "seconds": connect.seconds,
            "timed_out": connect.timed_out,
            "open": connect.open,
            "attempts": sh.attempts.load(Relaxed),
            "admissions": sh.admissions.load(Relaxed),
            "gave_up": sh.gave_up.load(Relaxed),
        },
        "settle": { "seconds": settle.seconds, "quiet": settle.quiet },
        "before_steady": {
            "joins": steady.before.joins, "parts": steady.before.parts, "other": steady.before.other,
        },
        "steady": {
            "seconds": steady.seconds,
            "open_at_start": steady.open_at_start,
            "open_at_end": steady.open_at_end,
            "sent": sh.sent.load(Relaxed),
            "refused": sh.refused.load(Relaxed),
            "events_received": steady.events,
            "client_cpu_s": steady.cpu_s,
        },
        "deliveries": {
            "expected": drain.expected,
            "received": end.latency.total,
            "drain_s": drain.seconds,
        },
        "latency_ms": {
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "p999": ms(0.999),
            "max": (end.latency.total > 0).then(|| end.latency.max as f64 / 1000.0),
            "mean": end.latency.mean().map(|us| us / 1000.0),
            "count": end.latency.total,
        },
        "events": events,
        "client_cpu_s": own_cpu_seconds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_type_and_send_time_without_parsing() {
        let selfcast = r#"{"type":"CHAT","id":"1-2","timestamp":"t","user":{"id":"ab","displayName":"x","displayColor":1,"createdAt":"t","previousNames":[],"isBot":false,"authenticated":false},"body":"bench 17 123456789","visible":true}"#;
        assert_eq!(event_type(selfcast), "CHAT");
        assert_eq!(bench_sent_ns(selfcast), Some(123_456_789));
        assert_eq!(bench_sent_ns(r#"{"type":"CHAT","body":"hello"}"#), None);
        assert_eq!(
            event_type(r#"{"type":"ERROR_RATE_LIMITED","id":"e"}"#),
            "ERROR_RATE_LIMITED"
        );
        assert_eq!(event_type("garbage"), "");
        assert_eq!(host_port("ws://127.0.0.1:8080/ws"), "127.0.0.1:8080");
    }

    #[test]
    fn senders_keep_their_spacing() {
        let mut plan = SendPlan::new(3);
        let interval = Duration::from_secs(2);
        let times: Vec<Instant> = (0..50).map(|_| plan.next(interval)).collect();
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= interval.mul_f64(1.0 - 2.0 * JITTER)
                    && gap <= interval.mul_f64(1.0 + 2.0 * JITTER)
            );
        }
    }
}
