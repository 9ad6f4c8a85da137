//! chat-load: the tools of the chat benchmark (`ci/bench chat`, ci/bench.d/chat.py).
//!
//! ```text
//! chat-load load --url ws://127.0.0.1:PORT/ws [--clients 10000] [--rate 100] [--senders 200]
//!                [--duration 60] [--concurrency 100]      # the load client (load.rs)
//! chat-load relay --listen 127.0.0.1:PORT                 # the reference server (relay.rs)
//! ```
//!
//! The load client prints one JSON object of results on stdout, progress on stderr, and the
//! marker lines `@steady-start` / `@steady-end` on stderr so the script driving it can sample the
//! server's CPU and memory over exactly the measured phase.

mod counters;
mod hist;
mod load;
mod relay;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  chat-load load --url ws://127.0.0.1:PORT/ws [--clients N] [--rate MSG_PER_S] [--senders S]
                 [--duration S] [--concurrency C] [--connect-timeout S] [--settle-timeout S]
  chat-load relay --listen 127.0.0.1:PORT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("load") => options(&args[1..])
            .and_then(|o| load_options(&o))
            .map(run_load),
        Some("relay") => options(&args[1..]).and_then(|o| {
            let listen = o.get("listen").ok_or("relay needs --listen ADDR:PORT")?;
            relay::run(listen).map_err(|e| format!("relay: {e}"))
        }),
        _ => Err("a command: load or relay".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-load: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_load(opts: load::Options) {
    let results = load::run(opts);
    println!("{results}");
    // Leave without closing the 10,000 sockets one by one: the kernel closes them all at once,
    // and the driving script stops the server right after.
    std::process::exit(0);
}

/// `--key value` pairs.
fn options(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(key) = it.next() {
        let name = key
            .strip_prefix("--")
            .ok_or(format!("unexpected argument {key}"))?;
        let value = it.next().ok_or(format!("{key} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn load_options(o: &HashMap<String, String>) -> Result<load::Options, String> {
    let known = [
        "url",
        "clients",
        "rate",
        "senders",
        "duration",
        "concurrency",
        "connect-timeout",
        "settle-timeout",
    ];
    if let Some(k) = o.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown option --{k}"));
    }
    let num = |k: &str, default: f64| -> Result<f64, String> {
        o.get(k).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{k}: not a number: {v}"))
        })
    };
    let clients = num("clients", 10_000.0)? as usize;
    let rate = num("rate", 100.0)?;
    // Each sender at 0.5 msg/s by default: well inside selfcast's default rate limit
    // (a burst of 5, then 1 message/s), so nothing is refused.
    let senders = (num("senders", (rate * 2.0).ceil())? as usize).clamp(1, clients.max(1));
    let secs = |k: &str, default: f64| num(k, default).map(Duration::from_secs_f64);
    Ok(load::Options {
        url: o
            .get("url")
            .ok_or("load needs --url ws://HOST:PORT/ws")?
            .clone(),
        clients,
        rate,
        senders,
        duration: secs("duration", 60.0)?,
        concurrency: (num("concurrency", 100.0)? as usize).max(1),
        connect_timeout: secs("connect-timeout", 600.0)?,
        settle_timeout: secs("settle-timeout", 300.0)?,
    })
}

/// utime + stime of this process so far, in seconds.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
