"""ci/bench.d/storage.py — issue 6's benchmark: what pushing the stream to S3-compatible storage
(and, experimental, to an IPFS node) costs and how far behind selfcast's own playlist the
storage's playlist runs.

The same live stream (a 720p30 H.264/AAC clip with 2 s GOPs, generated once and cached in
target/bench/, published in a loop with `ffmpeg -re ... -c copy -f flv`, as OBS would) goes to
selfcast once per side and repetition, the sides alternating (memory s3 ipfs, ipfs s3 memory, ...):

  memory  `[storage] kind = "memory"`: the reference, selfcast serving from memory only;
  s3      `[storage] kind = "s3"` against moto (an S3-compatible server from PyPI, ci/lib.sh
          ensure_moto) on loopback, a fresh server and bucket per run;
  ipfs    `[storage] kind = "ipfs"` against js-ipfs (npm's `ipfs`, ci/lib.sh ensure_ipfs) as an
          offline daemon on loopback, a fresh repo and node per run: segments are added and
          pinned there, the playlists stay with selfcast (`/hls-ipfs/`).

One code path measures every side; what differs per storage is its server (StorageServer: how
to start it, selfcast's `[storage]` table, where its playlist is polled). All serve the source
copied (one passthrough variant), so the CPU difference is the storage's: uploads or adds,
playlist rewriting, deletes or unpins. Figures per run, over the `--duration` after the first
segment:

  CPU           selfcast's utime+stime (/proc/PID/stat) over the window, in cores; the extra
                CPU of a storage is reported as a ratio to memory and in CPU milliseconds per
                segment. The storage server's own CPU (moto's, the IPFS node's) is shown apart
                (in production it is elsewhere).
  listed        from a segment being finished to the storage's playlist listing it, two ways:
                (a) selfcast's own measure (/api/status storage.segmentListedMs: from the store
                    receiving the segment to the playlist being stored: put in the bucket; for
                    IPFS, kept for /hls-ipfs/ once the segment is added), p50/p99 over the last
                    200 segments;
                (b) from outside: selfcast's /hls/0/stream.m3u8 and the storage's playlist (s3:
                    the bucket's live/0/stream.m3u8 on moto; ipfs: selfcast's
                    /hls-ipfs/0/stream.m3u8, whose URIs are <gateway>/ipfs/<cid>?filename=<name>)
                    are polled every POLL_S; per segment, the first poll that lists it in the
                    storage's minus the first that lists it at selfcast (resolution +-POLL_S).
                Reported against the segment duration (the time a player has before it needs
                the next segment).
  one store     /api/status storage.putMs: storing one segment or init segment: an upload (s3), an
                add + pin (ipfs).
  health        failed attempts, stored and deleted (unpinned) files at the end.

Results: the section `## storage` of BENCHMARKS.md and target/bench/storage/storage-results.json;
with --sides (a subset, memory always among them), a section and results file of their own
(`## storage: memory and ipfs`, storage-memory-ipfs-results.json).

Usage (through ci/bench): bash ci/bench storage [--duration S] [--reps N] [--sides memory,s3,ipfs]
                                                [--out FILE] [--report-only]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.dont_write_bytecode = True          # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    REPO, BenchError, Http, ServerProcess, SelfcastProcess, log, cpu_seconds, stop_process, free_port, run,
    loadavg, machine_facts, git_rev, median, percentile, write_section, fmt, med_spread, ratio,
    parse_media_playlist,
)

SIDES = ("memory", "s3", "ipfs")        # memory is the reference; the others are storages
SEGMENT_S = 2
POLL_S = 0.1
STREAM_KEY = "bench-storage-key"
BUCKET = "selfcast-bench"
PREFIX = "live"
CLIP = REPO / "target" / "bench" / "storage-clip-720p30-60s.mp4"
MOTO_VENV = Path(os.environ.get("SELFCAST_MOTO_VENV", REPO / "target" / "tools" / "moto-5.2.1"))
IPFS_VERSION = "0.66.1"                 # ci/lib.sh's IPFS_VERSION
IPFS_DIR = Path(os.environ.get("SELFCAST_IPFS_DIR") or REPO / "target" / "tools" / f"ipfs-{IPFS_VERSION}")


def make_clip() -> Path:
    if CLIP.exists():
        return CLIP
    CLIP.parent.mkdir(parents=True, exist_ok=True)
    log(f"generating {CLIP.name}")
    tmp = CLIP.with_suffix(".tmp.mp4")
    run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
         "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2500k", "-g", "60",
         "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
         str(tmp)])
    tmp.replace(CLIP)
    return CLIP


class StorageServer(ServerProcess):
    """The server a storage side stores to, started fresh for each run. The class attributes are
    the words the report uses for it."""

    title = ""              # "S3", "IPFS"
    what = ""               # the intro's description of the side
    server_name = ""        # whose CPU is shown apart
    playlist_name = ""      # the storage's playlist, in the report's sentences
    setup_words = ""        # the storage's settings, for the report
    ready_s = 30.0

    def setup(self) -> None:
        """What the server needs once it answers, before selfcast starts."""

    def storage_toml(self) -> list[str]:
        """selfcast's `[storage]` table for this server."""
        raise NotImplementedError

    def remote_playlist(self, selfcast: Selfcast) -> tuple[int, str]:
        """(port, path) of the storage's media playlist of variant 0, polled from outside."""
        raise NotImplementedError

    @staticmethod
    def version() -> str:
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, grace_s=10)


class Moto(StorageServer):
    title = "S3"
    what = "S3-compatible storage (moto on loopback)"
    server_name = "moto"
    playlist_name = "the bucket's playlist"
    setup_words = "S3 with `concurrency = 4`, `acl = \"public-read\"`, path style"

    def __init__(self, rundir: Path):
        binary = MOTO_VENV / "bin" / "moto_server"
        if not binary.exists():
            raise BenchError(f"no {binary}: run `bash -c 'source ci/lib.sh && ensure_moto'`")
        self.port = free_port()
        super().__init__("moto", [str(binary), "-H", "127.0.0.1", "-p", str(self.port)], rundir / "moto.log")
        self.http = Http(self.port)

    def answers(self) -> bool:
        try:
            return self.http.get("/")[0] == 200
        except OSError:
            return False

    def setup(self) -> None:
        code = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                    "-H", "Content-Type: text/plain", f"http://127.0.0.1:{self.port}/{BUCKET}"]).stdout.strip()
        if code != "200":
            raise BenchError(f"moto: creating the bucket answered {code}")

    def storage_toml(self) -> list[str]:
        return ["[storage]", 'kind = "s3"', "[storage.s3]", f'endpoint = "http://127.0.0.1:{self.port}"',
                'region = "us-east-1"', f'bucket = "{BUCKET}"', 'access_key = "bench"',
                'secret_key = "bench-secret"', f'path_prefix = "{PREFIX}"', "force_path_style = true",
                'acl = "public-read"', f'public_base_url = "http://127.0.0.1:{self.port}/{BUCKET}"']

    def remote_playlist(self, selfcast: Selfcast) -> tuple[int, str]:
        return self.port, f"/{BUCKET}/{PREFIX}/0/stream.m3u8"

    @staticmethod
    def version() -> str:
        return f"moto {MOTO_VENV.name.split('-', 1)[-1]}"

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc, signal.SIGTERM, grace_s=5)


class IpfsNode(StorageServer):
    """js-ipfs as tests/common/ipfs.rs runs it: a repo of its own (`init --emptyRepo --profile
    test`) with loopback addresses on free ports and no peers, then `daemon --offline`. Its RPC
    API takes POST only and refuses requests with an Origin header."""

    title = "IPFS"
    what = ("an IPFS node (`[storage] kind = \"ipfs\"`, experimental: js-ipfs, offline, on loopback; "
            "segments added and pinned there, the playlists served by selfcast at `/hls-ipfs/`)")
    server_name = "the IPFS node"
    playlist_name = "selfcast's `/hls-ipfs/` playlist"
    setup_words = ("IPFS with `concurrency = 4`, js-ipfs `daemon --offline` with a fresh repo per run "
                   "(`init --emptyRepo --profile test`)")
    ready_s = 60.0

    def __init__(self, rundir: Path):
        cli = IPFS_DIR / "node_modules" / "ipfs" / "src" / "cli.js"
        if not cli.is_file():
            raise BenchError(f"no {cli}: run `bash -c 'source ci/lib.sh && ensure_ipfs'`")
        self.api_port, self.gateway_port, rpc_port, swarm_port = (free_port() for _ in range(4))
        env = {"IPFS_PATH": str(rundir / "ipfs-repo")}
        config = rundir / "ipfs-config.json"
        config.write_text(json.dumps({
            "Addresses": {"API": f"/ip4/127.0.0.1/tcp/{self.api_port}",
                          "Gateway": f"/ip4/127.0.0.1/tcp/{self.gateway_port}",
                          "RPC": f"/ip4/127.0.0.1/tcp/{rpc_port}",
                          "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm_port}"], "Delegates": []},
            "Bootstrap": [],
            "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
        }))
        init_log = rundir / "ipfs-init.log"
        with open(init_log, "wb") as flog:
            try:
                init = subprocess.run(["node", str(cli), "init", "--emptyRepo", "--profile", "test",
                                       "--defaultConfig", str(config)], stdin=subprocess.DEVNULL, stdout=flog,
                                      stderr=subprocess.STDOUT, env={**os.environ, **env}, timeout=60)
            except subprocess.TimeoutExpired:
                raise BenchError(f"ipfs init did not finish within 60 s (see {init_log})") from None
        if init.returncode != 0:
            raise BenchError(f"ipfs init exited {init.returncode}:\n{init_log.read_text(errors='replace')[-2000:]}")
        super().__init__("ipfs", ["node", str(cli), "daemon", "--offline", "--enable-preload=false"],
                         rundir / "ipfs.log", env)

    def answers(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=2)
        try:
            conn.request("POST", "/api/v0/version", body=b"")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def storage_toml(self) -> list[str]:
        return ["[storage]", 'kind = "ipfs"', "[storage.ipfs]", f'api_url = "http://127.0.0.1:{self.api_port}"',
                f'gateway_url = "http://127.0.0.1:{self.gateway_port}"']

    def remote_playlist(self, selfcast: Selfcast) -> tuple[int, str]:
        return selfcast.http_port, "/hls-ipfs/0/stream.m3u8"

    @staticmethod
    def version() -> str:
        try:
            v = json.loads((IPFS_DIR / "node_modules" / "ipfs" / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            v = IPFS_VERSION
        try:
            node = run(["node", "--version"]).stdout.strip()
        except (BenchError, OSError):
            node = "?"
        return f"js-ipfs {v} (Node.js {node})"


STORES: dict[str, type[StorageServer]] = {"s3": Moto, "ipfs": IpfsNode}


class Selfcast(SelfcastProcess):
    def __init__(self, binary: Path, rundir: Path, store: StorageServer | None):
        http_port, self.rtmp_port = free_port(), free_port()
        lines = ["[server]", f'data_dir = "{rundir / "data"}"', "[rtmp]", f'listen = "127.0.0.1:{self.rtmp_port}"',
                 f'stream_key = "{STREAM_KEY}"', "[http]", f'listen = "127.0.0.1:{http_port}"',
                 "[hls]", f"segment_seconds = {SEGMENT_S}", "playlist_segments = 6",
                 "[[video.variants]]", 'name = "source"', "passthrough = true"]
        if store is not None:
            lines += store.storage_toml()
        config = rundir / "config.toml"
        config.write_text("\n".join(lines) + "\n")
        super().__init__([str(binary), "--config", str(config)], rundir / "server.log", http_port)

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc, signal.SIGTERM, grace_s=SEGMENT_S + 10)


def segment_name(uri: str) -> str:
    """A segment's file name in any of the playlists: `seg-...m4s` (selfcast's, relative),
    `http://.../live/0/seg-...m4s` (the bucket's), `http://gateway/ipfs/<cid>?filename=seg-...m4s`
    (/hls-ipfs/)."""
    parts = urlsplit(uri)
    named = parse_qs(parts.query).get("filename")
    return named[0] if named else parts.path.rsplit("/", 1)[-1]


class FirstSeen:
    """Polls a media playlist and remembers when each segment (by file name) was first listed."""

    def __init__(self, port: int, path: str):
        self.http, self.path, self.seen = Http(port, timeout_s=2), path, {}
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            t = time.monotonic()
            try:
                code, body = self.http.get(self.path)
                if code == 200:
                    for seg in parse_media_playlist(body.decode(errors="replace")).segments:
                        self.seen.setdefault(segment_name(seg.uri), t)
            except OSError:
                pass
            self.stop_flag.wait(max(0.0, POLL_S - (time.monotonic() - t)))

    def stop(self) -> dict:
        self.stop_flag.set()
        self.thread.join()
        self.http.close()
        return self.seen


@dataclass
class Run:
    side: str
    rep: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float | None = None     # the storage server's (moto's, the IPFS node's)
    segments: int = 0
    external_ms: list = field(default_factory=list)
    storage: dict | None = None

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    @classmethod
    def load(cls, saved: dict) -> Run:
        saved = dict(saved)
        if "moto_cpu_s" in saved:           # results saved before the IPFS side
            saved["server_cpu_s"] = saved.pop("moto_cpu_s")
        return cls(**saved)


def run_side(binary: Path, side: str, rep: int, duration: float, work: Path) -> Run:
    rundir = work / "runs" / f"{side}-{rep}"
    if rundir.exists():
        run(["rm", "-rf", str(rundir)])
    rundir.mkdir(parents=True)
    r = Run(side, rep)
    store = server = publisher = local = remote = None
    try:
        if side in STORES:
            store = STORES[side](rundir)
            store.wait_ready(store.ready_s)
            store.setup()
        server = Selfcast(binary, rundir, store)
        server.wait_ready()
        with open(rundir / "ffmpeg.log", "wb") as flog:
            publisher = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i", str(make_clip()),
                 "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{server.rtmp_port}/live/{STREAM_KEY}"],
                stdin=subprocess.DEVNULL, stdout=flog, stderr=subprocess.STDOUT)
        local = FirstSeen(server.http_port, "/hls/0/stream.m3u8")
        remote = FirstSeen(*store.remote_playlist(server)) if store else None
        deadline = time.monotonic() + 30
        while not local.seen:
            if time.monotonic() > deadline:
                raise BenchError(f"{side}: no segment within 30 s")
            time.sleep(0.1)
        t0, cpu0 = time.monotonic(), cpu_seconds(server.pid)
        store_cpu0 = cpu_seconds(store.pid) if store else None
        log(f"{side}-{rep}: measuring for {duration:g} s")
        time.sleep(duration)
        r.wall_s = time.monotonic() - t0
        r.cpu_s = cpu_seconds(server.pid) - cpu0
        if store:
            r.server_cpu_s = cpu_seconds(store.pid) - store_cpu0
        r.storage = server.status().get("storage")
        time.sleep(2 * SEGMENT_S)            # the last segments reach the storage's playlist
        local_seen = local.stop()
        r.segments = sum(1 for t in local_seen.values() if t0 <= t <= t0 + r.wall_s)
        if remote:
            remote_seen = remote.stop()
            r.external_ms = [(remote_seen[name] - t) * 1000 for name, t in local_seen.items()
                             if t0 <= t <= t0 + r.wall_s and name in remote_seen]
    finally:
        for poller in (local, remote):
            if poller is not None:
                poller.stop()
        if publisher is not None:
            stop_process(publisher, signal.SIGTERM, grace_s=5)
        if server is not None:
            server.stop()
        if store is not None:
            store.stop()
    log(f"{side}-{rep}: {r.cores:.3f} cores, {r.segments} segments"
        + (f", listed p50 {fmt(percentile(r.external_ms, 50), 0)} ms (outside), storage {r.storage and r.storage.get('state')}"
           if store else ""))
    return r


def versions(sides) -> dict:
    return {"selfcast": git_rev(), **{s: STORES[s].version() for s in sides if s in STORES}}


def report(runs: list[Run], sides: list[str], section: str, results: Path, command: str, started: datetime,
           minutes: float, duration: float, vers: dict, load: float) -> str:
    stores = [s for s in sides if s in STORES]
    by = {s: [r for r in runs if r.side == s] for s in sides}

    def med(side, f):
        return median([f(r) for r in by[side]])

    def spread(side, f, digits=2):
        return med_spread([f(r) for r in by[side]], digits)

    def cores(r):
        return r.cores

    def per_segment(r):
        return r.cpu_s * 1000 / max(r.segments, 1)

    def status(key, k):
        return lambda r: ((r.storage or {}).get(key) or {}).get(k)

    def outer(p):
        return lambda r: percentile(r.external_ms, p)

    def server_cpu(r):
        return None if r.server_cpu_s is None or not r.wall_s else r.server_cpu_s / r.wall_s * 100

    def minus(a, b, scale=1.0):
        return None if a is None or b is None else (a - b) * scale

    def sentence(side):
        st = STORES[side]
        p50, p99 = med(side, status("segmentListedMs", "p50")), med(side, status("segmentListedMs", "p99"))
        c, mc = med(side, cores), med("memory", cores)
        return (f"a finished segment is listed in {st.playlist_name} {fmt(p50, 0)} ms (p50) / {fmt(p99, 0)} ms "
                f"(p99) later, {ratio(p99, SEGMENT_S * 1000)} × the segment duration at p99 (polled from outside: "
                f"within {fmt(med(side, outer(99)), 0)} ms of selfcast's own playlist at p99, the polling's "
                f"resolution); selfcast's CPU with {st.title} / memory only: {ratio(c, mc)} "
                f"({fmt(minus(c, mc, 100), 2)} % of a core more, "
                f"{fmt(minus(med(side, per_segment), med('memory', per_segment)), 1)} CPU ms per segment)")

    m = machine_facts()
    lines = []
    w = lines.append
    w(f"## {section}")
    w("")
    w(f"Issue 6: a live stream pushed to {' and to '.join(STORES[s].what for s in stores)}: from a segment "
      "being finished to the storage's playlist listing it, and the extra CPU storing costs. Reference, in the "
      "same run: the same stream served from memory only (`[storage] kind = \"memory\"`).")
    w("")
    if stores:                          # the first storage's sentence in bold (S3's: the issue's question)
        first, *others = stores
        headline = sentence(first)
        w(f"**{headline[0].upper()}{headline[1:]} (medians).**"
          + "".join(f" With {STORES[s].title}, {sentence(s)} (medians)." for s in others))
        w("")
    w(f"- Command: `{command}`")
    w(f"- Run: {started.strftime('%Y-%m-%d %H:%M')} UTC, {minutes:.0f} min; {len(by['memory'])} run(s) per side "
      f"({', '.join(sides)}), alternating; {duration:g} s measured per run; figures are the median with "
      "(min–max) over the runs")
    w(f"- Machine: {m['nproc']} × {m['cpu']}, {m['mem_gib']:.0f} GiB, {m['os']} (kernel {m['kernel']}); "
      f"load average {load:.1f} at the end")
    w(f"- Versions: selfcast {vers.get('selfcast', '?')}"
      + "".join(f"; {vers.get(s) or STORES[s].version()}" for s in stores))
    w(f"- Stream: {CLIP.name} (720p30 H.264 2.5 Mbit/s + AAC, 2 s GOPs) published with `ffmpeg -re -stream_loop -1 "
      "... -c copy -f flv` (as OBS); one passthrough variant, segments of 2 s, a window of 6"
      + "".join(f"; {STORES[s].setup_words}" for s in stores))
    w(f"- The storage servers run on the same {m['nproc']} cores, one at a time; in production they are elsewhere "
      "(their CPU is shown apart)")
    w("")
    header = "| | memory (reference) |" + "".join(f" {s} | {s} / memory |" for s in stores)
    w(header)
    w("|---|---|" + "---|---|" * len(stores))

    def row(label, memory_cell, cell, ratio_cell=lambda s: ""):
        cells = [label, memory_cell] + [c for s in stores for c in (cell(s), ratio_cell(s))]
        w("|" + "|".join(f" {c} " if c else " " for c in cells) + "|")

    def pair(key):
        return lambda s: f"{spread(s, status(key, 'p50'), 0)} / {spread(s, status(key, 'p99'), 0)}"

    row("selfcast CPU, % of a core", spread("memory", lambda r: r.cores * 100),
        lambda s: spread(s, lambda r: r.cores * 100), lambda s: ratio(med(s, cores), med("memory", cores)))
    row("selfcast CPU per segment, ms", spread("memory", per_segment, 1), lambda s: spread(s, per_segment, 1),
        lambda s: ratio(med(s, per_segment), med("memory", per_segment)))
    row("segments made while measuring", spread("memory", lambda r: r.segments, 0),
        lambda s: spread(s, lambda r: r.segments, 0))
    row("finished → listed in the storage's playlist, p50 / p99 ms (selfcast's measure)", "–",
        pair("segmentListedMs"))
    row(f"listed at selfcast → listed in the storage's playlist, p50 / p99 ms (polled every {POLL_S * 1000:.0f} ms)",
        "–", lambda s: f"{spread(s, outer(50), 0)} / {spread(s, outer(99), 0)}")
    row(f"finished → listed at p99, × the segment duration ({SEGMENT_S} s)", "–",
        lambda s: ratio(med(s, status("segmentListedMs", "p99")), SEGMENT_S * 1000))
    row("one store (`putMs`), p50 / p99 ms", "–", pair("putMs"))
    row("failed attempts / stored / deleted files, per run", "–",
        lambda s: "; ".join(" / ".join(str((r.storage or {}).get(k, "–")) for k in ("failures", "stored", "deleted"))
                            for r in by[s]))
    row("the storage server's CPU, % of a core", "–",
        lambda s: f"{spread(s, server_cpu)} ({STORES[s].server_name})")
    w("")
    notes = {
        "s3": f"s3: the storage's playlist is the bucket's (`{PREFIX}/0/stream.m3u8`, fetched from moto); one store "
              "is the upload of a segment or init segment; deleted: objects deleted.",
        "ipfs": "ipfs: the storage's playlist is selfcast's `/hls-ipfs/0/stream.m3u8` (naming the segments "
                "`<gateway>/ipfs/<cid>?filename=<name>`), updated once the segment's add has answered; one store is "
                "the add (and pin) of a segment or init segment; deleted: files unpinned "
                "(the node frees them at its next garbage collection).",
    }
    for s in stores:
        w(f"- {notes[s]}")
    w("")
    w(f"Raw figures: `{results.relative_to(REPO) if results.is_relative_to(REPO) else results}`.")
    return "\n".join(lines) + "\n"


def section_of(sides: list[str]) -> tuple[str, str]:
    """(the BENCHMARKS.md section, the suffix of the results file): every side keeps the plain
    `## storage` and storage-results.json."""
    if list(sides) == list(SIDES):
        return "storage", ""
    return f"storage: {' and '.join(sides)}", "-" + "-".join(sides)


def parse_sides(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SIDES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown side(s) {', '.join(unknown)} (sides: {', '.join(SIDES)})")
    if "memory" not in wanted:
        raise argparse.ArgumentTypeError("the sides must include memory (the reference)")
    return [s for s in SIDES if s in wanted]


def main() -> int:
    ap = argparse.ArgumentParser(description="Issue 6's benchmark: S3 uploads and IPFS adds against serving "
                                             "from memory.")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "selfcast")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--duration", type=float, default=180, help="measured seconds per run (default 180)")
    ap.add_argument("--reps", type=int, default=2, help="runs per side (default 2)")
    ap.add_argument("--sides", type=parse_sides, default=list(SIDES),
                    help=f"comma-separated, memory among them (default {','.join(SIDES)}); a subset gets a "
                         "section and results file of its own")
    for opt in ("--live-reps", "--profile", "--ladder", "--cores"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    for opt in ("--passthrough", "--callgrind"):
        ap.add_argument(opt, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rewrite the section from the last run's saved results (of the same "
                         "--sides)")
    args = ap.parse_args()
    work = REPO / "target" / "bench" / "storage"
    work.mkdir(parents=True, exist_ok=True)
    section, suffix = section_of(args.sides)
    results = work / f"storage{suffix}-results.json"
    if args.report_only:
        if not results.exists():
            log(f"no saved results: {results} (run the benchmark with the same --sides first)")
            return 1
        saved = json.loads(results.read_text())
        runs = [Run.load(r) for r in saved["runs"]]
        # Results saved before --sides have no list: the sides that ran, in SIDES's order.
        sides = saved.get("sides") or [s for s in SIDES if any(r.side == s for r in runs)]
        write_section(args.out, section, report(runs, sides, section, results, saved["command"],
                                                datetime.fromisoformat(saved["started"]), saved["minutes"],
                                                saved["duration"], saved.get("versions") or versions(sides),
                                                saved.get("loadavg", loadavg())))
        log(f"rewrote the section '## {section}' of {args.out} from {results}")
        return 0
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    command = os.environ.get("BENCH_COMMAND_LINE", "ci/bench storage")
    vers = versions(args.sides)
    runs = []
    try:
        make_clip()
        for rep in range(1, args.reps + 1):
            for side in (args.sides if rep % 2 == 1 else args.sides[::-1]):
                runs.append(run_side(args.bin, side, rep, args.duration, work))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    minutes, load = (time.monotonic() - t0) / 60, loadavg()
    results.write_text(json.dumps({"started": started.isoformat(), "minutes": minutes, "command": command,
                                   "duration": args.duration, "sides": args.sides, "versions": vers,
                                   "loadavg": load, "runs": [asdict(r) for r in runs]}, indent=1))
    write_section(args.out, section, report(runs, args.sides, section, results, command, started, minutes,
                                            args.duration, vers, load))
    log(f"wrote the section '## {section}' of {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
