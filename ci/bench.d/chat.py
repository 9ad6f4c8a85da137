"""ci/bench.d/chat.py — issue 5's benchmark: the chat with 10,000 websocket clients at once.

"Real websocket clients on loopback: 10,000 connected at once, 100 messages/s in total; report
delivery latency p50/p99 from send to receipt at every client, server CPU and RSS. Goal: p99
under 250 ms on this 2-core machine."

Two servers, the same load, in the same run (the order alternating from one repetition to the
next):

  (a) selfcast (target/release/selfcast, a copy taken at the start), with a config written from
      config.toml's [chat] section: max_connections and max_connections_per_ip raised above the
      client count (every client is 127.0.0.1), registrations_per_minute = 0 (no cap); the rate
      limits, history and message length as shipped. No publisher: only the chat is measured.
  (b) the bare relay (`chat-load relay`, ci/chat-load/src/relay.rs): tokio + tokio-tungstenite,
      one broadcast channel, one task per connection, the same CHAT JSON, a plain send per
      event: the floor of what this fan-out costs written the plain way. selfcast's CPU and
      memory are reported as ratios to it.

The load is `chat-load load` (ci/chat-load/src/load.rs), one Rust process: it connects the
clients (100 handshakes at a time), waits until the server has sent everything the connecting
caused (selfcast's USER_JOINED per user to everyone), then for --duration seconds has 2 × rate
of the clients send one message every 2 s each (within selfcast's default rate limit), and every
client records send → receipt for every message (one clock: the same process). It shares the
machine's 2 cores with the server: its CPU is reported beside the server's.

How each figure is taken:

  latency   the load client's histogram (log-linear buckets, 1.6 % wide) over every delivery of
            every message sent during the steady phase, including those that arrive after it.
  CPU       the server's utime+stime (/proc/PID/stat) from the client's `@steady-start` line to
            its `@steady-end` line; cores = CPU s / wall s. Also the whole machine's busy CPU over
            the same window: what is neither the server nor the client is the neighbours' (noise).
  RSS       VmRSS once a second over the steady phase (median), VmHWM at the end (peak,
            connecting included); per connection = (steady − idle before the clients) / clients.

Results: the section `## chat` of BENCHMARKS.md, and everything measured in
target/bench/chat/chat-results.json; every run's config, server log, client log and JSON output
in target/bench/chat/runs/<side>-<rep>/. With --profile (auto: when p99 misses the goal or
selfcast uses more CPU than the relay), one more short run of each server under `perf record -g`
(target/bench/chat/perf-<side>.txt), summarised in the report.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True          # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import callgrind  # noqa: E402  (file_sha256)
from benchlib import (  # noqa: E402
    REPO, BenchError, Http, ServerProcess, log, cpu_seconds, peak_rss_kib, rss_kib, busy_cpu_seconds, raise_nofile,
    stop_process, free_port, run, loadavg, machine_facts, git_rev, median, write_section, fmt, med_spread,
    ratio,
)

GOAL_P99_MS = 250.0
SIDES = ("selfcast", "relay")
LABEL = {"selfcast": "selfcast", "relay": "bare relay"}
LOAD_DIR = REPO / "ci" / "chat-load"
LOAD_TARGET = REPO / "target" / "chat-load"
LOAD_BIN = LOAD_TARGET / "release" / "chat-load"
# Connecting 10,000 clients and draining selfcast's joins can take minutes on 2 cores; the load
# client gives up on its own after these, the script a minute later.
CONNECT_TIMEOUT_S = 600
SETTLE_TIMEOUT_S = 300
PROFILE_S = 10                # perf record this long, from PROFILE_AFTER_S into the steady phase
PROFILE_AFTER_S = 3
FD_HEADROOM = 1000            # open files beyond one per client (logs, listeners, retries)


# ---- The servers -------------------------------------------------------------------------------

def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)            # a TOML basic string for the plain text of config.toml
    return repr(v)


def chat_config(clients: int) -> dict:
    """config.toml's [chat], with what 10,000 clients from one address need: the connection
    caps above the client count and no cap on new users per address."""
    with open(REPO / "config.toml", "rb") as f:
        chat = tomllib.load(f).get("chat", {})
    return {**chat, "max_connections": clients + 100, "max_connections_per_ip": clients + 100,
            "registrations_per_minute": 0}


def selfcast_config(data_dir: Path, http_port: int, rtmp_port: int, chat: dict) -> str:
    lines = ["# written by ci/bench chat", "[server]", f"data_dir = {toml_value(str(data_dir))}",
             "[rtmp]", f'listen = "127.0.0.1:{rtmp_port}"', "[http]", f'listen = "127.0.0.1:{http_port}"',
             "[chat]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in chat.items()]
    return "\n".join(lines) + "\n"


class Server(ServerProcess):
    """selfcast or the relay on its own port, logging into the run's directory."""

    def __init__(self, side: str, binary: Path, rundir: Path, chat: dict):
        self.side, self.port = side, free_port()
        if side == "selfcast":
            config = rundir / "config.toml"
            config.write_text(selfcast_config(rundir / "data", self.port, free_port(), chat))
            command = [str(binary), "--config", str(config)]
        else:
            command = [str(LOAD_BIN), "relay", "--listen", f"127.0.0.1:{self.port}"]
        super().__init__(side, command, rundir / "server.log")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def answers(self) -> bool:
        if self.side == "selfcast":
            http = Http(self.port, timeout_s=2)
            try:
                return http.get("/api/status")[0] == 200
            except OSError:
                return False
            finally:
                http.close()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, grace_s=10)


# ---- One run -----------------------------------------------------------------------------------

@dataclass
class Run:
    side: str                   # "selfcast" | "relay"
    rep: int
    client: dict = field(default_factory=dict)      # the load client's JSON
    steady_wall_s: float = 0.0
    server_cpu_s: float = 0.0
    machine_busy_s: float = 0.0                     # every CPU's busy time over the same window
    idle_rss_kib: int = 0
    steady_rss_kib: list = field(default_factory=list)
    peak_rss_kib: int = 0
    load_before: float = 0.0
    load_after: float = 0.0
    command: str = ""

    @property
    def cores(self) -> float | None:
        return self.server_cpu_s / self.steady_wall_s if self.steady_wall_s else None

    @property
    def client_cores(self) -> float | None:
        return self.client["steady"]["client_cpu_s"] / self.steady_wall_s if self.steady_wall_s else None

    @property
    def others_cores(self) -> float | None:
        """What neither the server nor the load client used of the machine's CPUs: neighbours."""
        if not self.steady_wall_s:
            return None
        return max(0.0, self.machine_busy_s - self.server_cpu_s - self.client["steady"]["client_cpu_s"]) / self.steady_wall_s

    @property
    def rss_mib(self) -> float | None:
        return median(self.steady_rss_kib) / 1024 if self.steady_rss_kib else None

    @property
    def rss_per_connection_kib(self) -> float | None:
        n = self.client["steady"]["open_at_start"]
        return (median(self.steady_rss_kib) - self.idle_rss_kib) / n if self.steady_rss_kib and n else None

    @property
    def delivered_share(self) -> float | None:
        d = self.client["deliveries"]
        return d["received"] / d["expected"] if d["expected"] else None

    @property
    def dropped(self) -> int:
        """Connections lost between the start of the measurement and the end of the drain."""
        return sum(v for k, v in self.client["events"].items()
                   if k.startswith(("steady:", "draining:")) and "error event" not in k)

    @property
    def deliveries_per_s(self) -> float | None:
        return self.client["steady"]["events_received"] / self.steady_wall_s if self.steady_wall_s else None

    @property
    def cpu_us_per_event(self) -> float | None:
        events = self.client["steady"]["events_received"]
        return self.server_cpu_s * 1e6 / events if events else None

    def latency(self, key: str) -> float | None:
        return self.client["latency_ms"].get(key)


class Marks:
    """Reads the load client's stderr into its log; at `@steady-start` and `@steady-end` notes
    the time and the server's and the machine's CPU seconds (the measured window)."""

    def __init__(self, proc: subprocess.Popen, server_pid: int, log_path: Path):
        self.proc, self.server_pid, self.log_path = proc, server_pid, log_path
        self.at: dict[str, tuple[float, float, float]] = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.log_path, "w") as logf:
            for line in self.proc.stderr:
                line = line.rstrip("\n")
                if line in ("@steady-start", "@steady-end"):
                    self.at[line[1:]] = (time.monotonic(), cpu_seconds(self.server_pid), busy_cpu_seconds())
                else:
                    log(f"  {line}")
                logf.write(line + "\n")
                logf.flush()

    @property
    def steady(self) -> bool:
        return "steady-start" in self.at and "steady-end" not in self.at


def load_command(ctx, url: str, duration: float) -> list[str]:
    return [str(LOAD_BIN), "load", "--url", url, "--clients", str(ctx.clients), "--rate", f"{ctx.rate:g}",
            "--duration", f"{duration:g}", "--connect-timeout", str(CONNECT_TIMEOUT_S),
            "--settle-timeout", str(SETTLE_TIMEOUT_S)]


def run_side(ctx, side: str, rep: int, duration: float | None = None, perf_out: Path | None = None) -> Run:
    """One server under the load: start it, run the load client to its end, stop it."""
    duration = ctx.duration if duration is None else duration
    name = f"{side}-{rep}" if perf_out is None else f"{side}-perf"
    rundir = ctx.work / "runs" / name
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir(parents=True)
    r = Run(side, rep, load_before=loadavg())
    server = Server(side, ctx.binary, rundir, ctx.chat)
    client = perf = None
    try:
        server.wait_ready()
        time.sleep(1.0)
        r.idle_rss_kib = rss_kib(server.pid)
        cmd = load_command(ctx, server.url, duration)
        r.command = " ".join(shlex.quote(str(Path(c).relative_to(REPO)) if c.startswith(str(REPO)) else c) for c in cmd)
        log(f"{name}: {r.command}")
        with open(rundir / "client.json", "w") as out:
            client = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, text=True)
        marks = Marks(client, server.pid, rundir / "client.log")
        deadline = time.monotonic() + CONNECT_TIMEOUT_S + SETTLE_TIMEOUT_S + duration + 180
        while client.poll() is None:
            time.sleep(1.0)
            if server.proc.poll() is not None:
                raise BenchError(f"{side} exited {server.proc.returncode} during the run:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the load client did not finish in time ({rundir / 'client.log'})")
            if marks.steady:
                r.steady_rss_kib.append(rss_kib(server.pid))
                if perf_out is not None and perf is None and time.monotonic() - marks.at["steady-start"][0] > PROFILE_AFTER_S:
                    perf = start_perf(server.pid, perf_out)
        marks.thread.join(timeout=10)
        if client.returncode != 0:
            raise BenchError(f"the load client exited {client.returncode} ({rundir / 'client.log'})")
        r.peak_rss_kib = peak_rss_kib(server.pid)
        r.client = json.loads((rundir / "client.json").read_text())
        if "steady-start" not in marks.at or "steady-end" not in marks.at:
            raise BenchError(f"the load client printed no steady phase ({rundir / 'client.log'})")
        (t0, c0, b0), (t1, c1, b1) = marks.at["steady-start"], marks.at["steady-end"]
        r.steady_wall_s, r.server_cpu_s, r.machine_busy_s = t1 - t0, c1 - c0, b1 - b0
        if perf is not None:
            perf.wait(timeout=PROFILE_S + 30)
    finally:
        if client is not None and client.poll() is None:
            stop_process(client, signal.SIGTERM)
        if perf is not None:
            stop_process(perf, signal.SIGINT, grace_s=30)
        server.stop()
    r.load_after = loadavg()
    (rundir / "run.json").write_text(json.dumps(asdict(r), indent=1))
    c = r.client
    log(f"{name}: p50 {fmt(r.latency('p50'), 1)} ms, p99 {fmt(r.latency('p99'), 1)} ms, "
        f"server {fmt(r.cores, 2)} cores, client {fmt(r.client_cores, 2)} cores, others {fmt(r.others_cores, 2)} cores, "
        f"RSS {fmt(r.rss_mib, 0)} MiB, {c['deliveries']['received']}/{c['deliveries']['expected']} delivered")
    return r


def start_perf(pid: int, out: Path) -> subprocess.Popen:
    log(f"perf record -g of pid {pid} for {PROFILE_S} s")
    return subprocess.Popen(["perf", "record", "-g", "-F", "999", "-q", "-o", str(out), "-p", str(pid),
                             "--", "sleep", str(PROFILE_S)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- Profiles ----------------------------------------------------------------------------------

def perf_report(data: Path, sort: str, children: bool = False) -> list[tuple[float, str]]:
    """[(percent, name)] from perf report, highest first: self time, or with `children` the time
    in a function and everything it calls (for a libc syscall wrapper such as `__send`: the
    whole syscall, kernel included)."""
    out = run(["perf", "report", "-i", str(data), "--children" if children else "--no-children",
               "--sort", sort, "--stdio", "-g", "none", "--percent-limit", "0.3"]).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(?:[\d.]+%\s+)?(\S.*\S)", line)
        if m and not line.lstrip().startswith("#"):
            rows.append((float(m.group(1)), re.sub(r"\s+\[[.k]\]\s+", "  ", m.group(2))))
    return rows


def profile(ctx) -> dict:
    """One more short run of each server, `perf record -g` of the server for PROFILE_S seconds of
    its steady phase: where its CPU goes, by library, by syscall and by function (the full
    report, with call chains, kept beside the results)."""
    result = {}
    for side in SIDES:
        data = ctx.work / f"perf-{side}.data"
        log(f"profiling {side}")
        r = run_side(ctx, side, 0, duration=PROFILE_AFTER_S + PROFILE_S + 4, perf_out=data)
        (ctx.work / f"perf-{side}.txt").write_text(run(
            ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,sym", "--stdio",
             "-g", "caller,0.5,callee", "--percent-limit", "0.3"]).stdout)
        inclusive = perf_report(data, "dso,sym", children=True)
        result[side] = {
            "cores": r.cores,
            "by_dso": perf_report(data, "dso")[:5],
            "syscalls": [x for x in inclusive if x[1].startswith("libc")][:6],
            # On loopback the receiving socket's TCP work runs in the sender's send() (softirq).
            "loopback_rx": next((pct for pct, name in inclusive if name.endswith("  net_rx_action")), None),
            "self": perf_report(data, "dso,sym")[:15],
        }
    return result


# ---- The report --------------------------------------------------------------------------------

def events(r: Run, phases: tuple[str, ...]) -> dict[str, int]:
    """What the load client saw happen in these phases (closes, refusals), phases merged."""
    out: dict[str, int] = {}
    for key, n in r.client["events"].items():
        phase, what = key.split(": ", 1)
        if phase in phases:
            out[what] = out.get(what, 0) + n
    return out


def dropped_text(r: Run) -> str:
    """Connections the server closed during the measurement and the drain after it, with why."""
    closes = {k: v for k, v in events(r, ("steady", "draining")).items() if not k.startswith("error event")}
    why = "; ".join(f"{k} ×{v:,}" for k, v in closes.items())
    return f"{sum(closes.values()):,}" + (f" ({why})" if why else "")


def connect_problems(r: Run) -> str:
    problems = events(r, ("connecting", "settling"))
    return "; ".join(f"{k} ×{v:,}" for k, v in problems.items()) or "none"


def report(ctx, runs: list[Run], prof: dict | None, started: datetime.datetime, minutes: float) -> str:
    by = {side: [r for r in runs if r.side == side] for side in SIDES}

    def col(side, f):
        return [f(r) for r in by[side]]

    def med(side, f):
        return median(col(side, f))

    def row(label, f, digits=2, with_ratio=True):
        a, b = med("selfcast", f), med("relay", f)
        return (f"| {label} | {med_spread(col('selfcast', f), digits)} | {med_spread(col('relay', f), digits)} | "
                f"{ratio(a, b) if with_ratio else ''} |")

    def text_row(label, f):
        return f"| {label} | {'; '.join(col('selfcast', f))} | {'; '.join(col('relay', f))} | |"

    p99 = med("selfcast", lambda r: r.latency("p99"))
    cpu_ratio = ratio(med("selfcast", lambda r: r.cores), med("relay", lambda r: r.cores))
    event_ratio = ratio(med("selfcast", lambda r: r.cpu_us_per_event), med("relay", lambda r: r.cpu_us_per_event))
    throughput_ratio = ratio(med("relay", lambda r: r.deliveries_per_s), med("selfcast", lambda r: r.deliveries_per_s))
    m = ctx.machine
    lines = []
    w = lines.append
    w("## chat")
    w("")
    w(f"Issue 5: {ctx.clients:,} real websocket clients on loopback connected at once to the chat, "
      f"{ctx.rate:g} messages/s in all; delivery latency from send to receipt at every client, server CPU "
      "and RSS. Goal: p99 under 250 ms on this 2-core machine. Reference, in the same run: the *bare relay* "
      "(`chat-load relay`, [ci/chat-load/src/relay.rs](ci/chat-load/src/relay.rs)): tokio + tokio-tungstenite, "
      "one broadcast channel, one task per connection, the same CHAT JSON, one plain `send` per event; no "
      "users, rate limits, history, joins or pings: the floor of this fan-out written the plain way. selfcast "
      "sends the events of each 25 ms fan-out round in one websocket message, one per line (as Owncast does); "
      "the load client counts events, whatever the framing.")
    w("")
    met = p99 is not None and p99 < GOAL_P99_MS and all(r.delivered_share == 1.0 for r in by["selfcast"])

    def losses(side):
        share = med(side, lambda r: r.delivered_share)
        return (f"{fmt(None if share is None else 100 * share, 1)} % of the deliveries arrived, "
                f"{fmt(median(col(side, lambda r: r.dropped)), 0)} connections closed by the server while measuring")
    w(f"**selfcast: p99 {fmt(p99, 0)} ms, {ratio(p99, GOAL_P99_MS)} × the 250 ms goal: "
      f"{'met' if met else 'NOT met'}; {losses('selfcast')}. Server CPU selfcast / bare relay: {cpu_ratio} "
      f"in cores, {event_ratio} per event delivered (the relay delivered {throughput_ratio} × as many events "
      "per second). "
      f"The bare relay: p99 {fmt(med('relay', lambda r: r.latency('p99')), 0)} ms; {losses('relay')} "
      "(medians).**")
    w("")
    if not met:
        w("What limits it (measured by hand on 2026-11-26 at f979945, same machine, to tell the server's "
          "cost from the co-located client's): with selfcast pinned to one core and the load client to the "
          "other (`taskset -c 0 selfcast --config …` and `taskset -c 1 chat-load load --clients 10000 "
          "--rate 100 --duration 20 …`) the server used all of its core (52.6 CPU s in 54 s) and p99 was "
          "618 ms: it is CPU-bound. Rounds of 100 ms instead of 25 ms changed nothing (p99 594 ms, 1.07 "
          "cores): a connection that falls behind already gets many rounds in one write, so what is left "
          "is one `send()` per connection per write, roughly 25–30 µs each with 10,000 sockets on this VM "
          "(one core over the ~36,000 writes/s that a ~280 ms sweep of 10,000 connections implies; "
          "60 % of the server's time is in `send()`, a quarter of it the receiving side of loopback TCP, "
          "which a real network moves to the viewers' machines). The goal needs either more than the one "
          "core the client leaves, or fewer, larger writes than a 250 ms bound allows.")
        w("")
    w("Latency percentiles are over the deliveries that arrived; a client the server closed for falling "
      "behind (1013) gets nothing more and is not replaced while measuring, so its missing deliveries "
      "count only in 'received / expected'.")
    w("")
    w(f"- Command: `{ctx.command_line}`; load client per run, e.g. `{by['selfcast'][0].command if by['selfcast'] else ''}`")
    w(f"- Run: {started.strftime('%Y-%m-%d %H:%M')} UTC, {minutes:.0f} min; {ctx.reps} run(s) per server, "
      "the order alternating; figures are the median with (min–max) over the runs")
    w(f"- Machine: {m['nproc']} × {m['cpu']}, {m['mem_gib']:.0f} GiB, {m['os']} (kernel {m['kernel']}), TCP "
      f"congestion control {ctx.tcp_cc}; load average {fmt(min(r.load_before for r in runs), 1)}–"
      f"{fmt(max(r.load_after for r in runs), 1)} around the runs")
    w(f"- Versions: selfcast {ctx.rev} (binary sha256 {ctx.binary_sha256[:12]}); {ctx.rustc}; the relay and "
      f"the load client: {ctx.load_versions}")
    w(f"- selfcast's `[chat]`: {', '.join(f'{k} = {toml_value(v)}' for k, v in ctx.chat.items())}")
    w(f"- Load: {ctx.clients:,} clients, {by['selfcast'][0].client['senders'] if by['selfcast'] else '?'} of them "
      f"sending one message every {fmt(by['selfcast'][0].client['send_interval_s'] if by['selfcast'] else None, 1)} s "
      f"(±10 %, {ctx.rate:g} msg/s in all), measured for {ctx.duration:g} s after every client is connected and "
      "the server has gone quiet (selfcast broadcasts a USER_JOINED per new user to everyone connected)")
    w("- **The load client runs on the same 2 cores as the server** (one Rust process, tokio, reading each "
      "socket up to 16 KiB at a time); its CPU is shown below. When server + client come near 2 cores the "
      "latency is mostly queueing, and it then moves a lot with small changes in either side's cost per "
      "event. 'Others' is the machine's busy CPU over the window minus the server and the client: the "
      "neighbours' share (noise).")
    w("")
    w("| | selfcast | bare relay | selfcast / relay |")
    w("|---|---|---|---|")
    for key, label in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"), ("max", "max")):
        w(row(f"latency {label}, ms", lambda r, k=key: r.latency(k), 1))
    w(row("p99 / 250 ms goal", lambda r: r.latency("p99") / GOAL_P99_MS if r.latency("p99") is not None else None, 2, False))
    w(row("events received per second in all, thousands (steady phase)", lambda r: r.deliveries_per_s / 1000, 0))
    w(row("server CPU, cores (CPU s / wall s, steady phase)", lambda r: r.cores, 2))
    w(row("server CPU per event delivered, µs (steady phase)", lambda r: r.cpu_us_per_event, 2))
    w(row("server RSS, steady, MiB (VmRSS median)", lambda r: r.rss_mib, 0))
    w(row("server RSS per connection, KiB (steady − idle) / clients", lambda r: r.rss_per_connection_kib, 1))
    w(row("server peak RSS, MiB (VmHWM, connecting included)", lambda r: r.peak_rss_kib / 1024, 0))
    w(text_row("deliveries received / expected", lambda r: f"{r.client['deliveries']['received']:,} / "
                                                           f"{r.client['deliveries']['expected']:,}"))
    w(text_row("messages sent / refused", lambda r: f"{r.client['steady']['sent']:,} / {r.client['steady']['refused']:,}"))
    w(text_row("connections closed by the server while measuring (and draining)", dropped_text))
    w(row(f"connect time for {ctx.clients:,} clients, s", lambda r: r.client["connect"]["seconds"], 1, False))
    w(row("then until quiet, s", lambda r: r.client["settle"]["seconds"], 1, False))
    w(text_row("refused or closed while connecting", connect_problems))
    w(row("events received while connecting (joins, parts, other), thousands",
          lambda r: sum(r.client["before_steady"].values()) / 1000, 0, False))
    w(row("load client CPU, cores (steady phase)", lambda r: r.client_cores, 2, False))
    w(row("others' CPU, cores (steady phase)", lambda r: r.others_cores, 2, False))
    if prof:
        w("")
        w(profile_text(prof))
    return "\n".join(lines) + "\n"


def profile_text(prof: dict) -> str:
    out = [f"Where the servers' CPU goes: `perf record -g -F 999` of each server for {PROFILE_S} s of a steady "
           "phase (one more short run each; full reports with call chains in target/bench/chat/perf-*.txt).", ""]
    for side in SIDES:
        p = prof.get(side)
        if not p:
            continue
        by_dso = ", ".join(f"{name} {pct:.0f} %" for pct, name in p["by_dso"])
        calls = ", ".join(f"`{name.split(None, 1)[-1]}` {pct:.0f} %" for pct, name in p["syscalls"])
        out += [f"{LABEL[side]} ({fmt(p['cores'], 2)} cores in that run): by library {by_dso}; in libc calls, "
                f"kernel included: {calls}; of all its time, {fmt(p.get('loopback_rx'), 0)} % is the clients' "
                "side of loopback TCP (`net_rx_action`: on loopback the receiving socket's work runs inside "
                "the sender's `send`; a real network moves it to the clients' machines). Self time by function:", "",
                "| % | library | function |", "|---|---|---|"]
        for pct, name in p["self"]:
            dso, _, sym = name.partition("  ")
            out.append(f"| {pct:.1f} | {dso} | `{sym.strip()}` |")
        out.append("")
    return "\n".join(out).rstrip("\n")


# ---- Main --------------------------------------------------------------------------------------

def build_load_client() -> None:
    log("cargo build --release --locked --manifest-path ci/chat-load/Cargo.toml")
    run(["cargo", "build", "--release", "--locked", "--manifest-path", str(LOAD_DIR / "Cargo.toml")],
        env={**os.environ, "CARGO_TARGET_DIR": str(LOAD_TARGET)})


def load_versions() -> str:
    """tokio and tokio-tungstenite as the chat-load crate locks them."""
    text = (LOAD_DIR / "Cargo.lock").read_text()
    found = dict(re.findall(r'name = "(tokio|tokio-tungstenite|tungstenite)"\nversion = "([^"]+)"', text))
    return ", ".join(f"{k} {v}" for k, v in sorted(found.items()))


def rustc_version() -> str:
    try:
        return run(["rustc", "--version"]).stdout.strip()
    except (BenchError, OSError):
        return "rustc ?"


class Ctx:
    pass


CTX_SAVED = ("clients", "rate", "duration", "reps", "chat", "command_line", "machine", "rev", "binary_sha256",
             "rustc", "load_versions", "tcp_cc")


def parse_args():
    ap = argparse.ArgumentParser(
        description="Issue 5's benchmark: selfcast's chat and the bare relay under N websocket clients "
                    "(one run per server per repetition; a run with 10,000 clients takes 1.5 to 3 minutes: "
                    "connecting, the joins draining, --duration measuring, stopping; the defaults take ~7 "
                    "minutes with the profiles).")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "selfcast",
                    help="the selfcast binary (a copy is measured)")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench" / "chat",
                    help="results, logs and every run's files (default target/bench/chat)")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="the report (default BENCHMARKS.md)")
    ap.add_argument("--clients", type=int, default=10_000, help="websocket clients (default 10000)")
    ap.add_argument("--rate", type=float, default=100.0, help="messages per second in all (default 100)")
    ap.add_argument("--duration", type=float, default=60, help="measured (steady) phase, seconds (default 60)")
    ap.add_argument("--reps", type=int, default=2, help="runs per server (default 2)")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="perf profiles of both servers in one more short run each (auto: when selfcast "
                         "misses the goal or uses more CPU than the relay)")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rewrite the section from the last run's saved results")
    # ci/bench passes its options to every benchmark: these are the transcode benchmark's.
    for opt in ("--live-reps", "--ladder", "--cores"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    for opt in ("--passthrough", "--callgrind"):
        ap.add_argument(opt, action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def setup(args) -> Ctx:
    ctx = Ctx()
    ctx.work = args.work.resolve()
    ctx.work.mkdir(parents=True, exist_ok=True)
    ctx.clients, ctx.rate, ctx.duration, ctx.reps = args.clients, args.rate, args.duration, args.reps
    ctx.command_line = os.environ.get("BENCH_COMMAND_LINE") or shlex.join(["python3", *sys.argv])
    limit = raise_nofile(65536)
    if limit < ctx.clients + FD_HEADROOM:
        raise BenchError(f"open-file limit {limit}: too low for {ctx.clients} clients "
                         f"(the server and the client each need one per connection; ulimit -n)")
    if not args.bin.exists():
        raise BenchError(f"selfcast binary not found: {args.bin} (cargo build --release --locked)")
    build_load_client()
    # Measure a copy: a rebuild during the run (cargo in another terminal) must not change what
    # is measured halfway.
    ctx.rev = git_rev()
    ctx.binary = ctx.work / "selfcast-under-test"
    shutil.copy2(args.bin, ctx.binary)
    ctx.binary_sha256 = callgrind.file_sha256(ctx.binary)
    ctx.chat = chat_config(ctx.clients)
    ctx.machine = machine_facts()
    ctx.rustc = rustc_version()
    ctx.load_versions = load_versions()
    ctx.tcp_cc = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    return ctx


def main() -> int:
    args = parse_args()
    results = args.work.resolve() / "chat-results.json"
    if args.report_only:
        return report_only(results, args.out)
    if any(getattr(args, o) for o in ("live_reps", "ladder", "cores", "passthrough", "callgrind")):
        log("--live-reps, --ladder, --cores, --passthrough and --callgrind are the transcode benchmark's: ignored")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    started = datetime.datetime.now(datetime.timezone.utc)
    t_started = time.monotonic()
    try:
        ctx = setup(args)
        log(f"selfcast {args.bin} at {ctx.rev}; {ctx.clients} clients, {ctx.rate:g} msg/s, "
            f"{ctx.duration:g} s measured, {ctx.reps} run(s) per server")
        runs = []
        for rep in range(1, ctx.reps + 1):
            for side in (SIDES if rep % 2 == 1 else SIDES[::-1]):
                runs.append(run_side(ctx, side, rep))
        prof = None
        p99 = median([r.latency("p99") for r in runs if r.side == "selfcast"])
        cores = {s: median([r.cores for r in runs if r.side == s]) for s in SIDES}
        if args.profile == "always" or (args.profile == "auto" and (
                p99 is None or p99 >= GOAL_P99_MS or (cores["selfcast"] or 0) > (cores["relay"] or 0))):
            prof = profile(ctx)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    minutes = (time.monotonic() - t_started) / 60
    saved = {"started": started.isoformat(), "minutes": minutes, "ctx": {k: getattr(ctx, k) for k in CTX_SAVED},
             "runs": [asdict(r) for r in runs], "profile": prof}
    results.write_text(json.dumps(saved, indent=1))
    write_section(args.out, "chat", report(ctx, runs, prof, started, minutes))
    log(f"wrote the section '## chat' of {args.out} ({minutes:.1f} min)")
    return 0


def report_only(results: Path, out: Path) -> int:
    if not results.exists():
        log(f"no saved results: {results} (run the benchmark first)")
        return 2
    saved = json.loads(results.read_text())
    ctx = Ctx()
    for k, v in saved["ctx"].items():
        setattr(ctx, k, v)
    runs = [Run(**r) for r in saved["runs"]]
    started = datetime.datetime.fromisoformat(saved["started"])
    write_section(out, "chat", report(ctx, runs, saved["profile"], started, saved["minutes"]))
    log(f"rewrote the section '## chat' of {out} from {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
