"""ci/bench.d/storage.py — issue 6's benchmark: what pushing the stream to S3-compatible storage
costs and how far behind selfcast's own playlist the bucket's playlist runs.

The same live stream (a 720p30 H.264/AAC clip with 2 s GOPs, generated once and cached in
target/bench/, published in a loop with `ffmpeg -re ... -c copy -f flv`, as OBS would) goes to
selfcast twice, the sides alternating:

  memory  `[storage] kind = "memory"`: the reference, selfcast serving from memory only;
  s3      `[storage] kind = "s3"` against moto (an S3-compatible server from PyPI, ci/lib.sh
          ensure_moto) on loopback, a fresh server and bucket per run.

Both serve the source copied (one passthrough variant), so the CPU difference is the storage's:
uploads, playlist rewriting, deletes. Figures per run, over the `--duration` after the first
segment:

  CPU           selfcast's utime+stime (/proc/PID/stat) over the window, in cores; the extra
                CPU of s3 is reported as a ratio to memory and in CPU milliseconds per segment.
                moto's own CPU is shown apart (in production the storage is elsewhere).
  listed        from a segment being finished to the bucket's playlist listing it, two ways:
                (a) selfcast's own measure (/api/status storage.segmentListedMs: from the store
                    receiving the segment to the playlist put completing), p50/p99 over the last
                    200 segments;
                (b) from outside: selfcast's /hls/0/stream.m3u8 and the bucket's playlist are
                    polled every POLL_S; per segment, the first poll that lists it in the bucket
                    minus the first that lists it at selfcast (resolution +-POLL_S).
                Reported against the segment duration (the time a player has before it needs
                the next segment).
  health        failed attempts, stored and deleted objects at the end.

Usage (through ci/bench): bash ci/bench storage [--duration S] [--reps N]
"""

from __future__ import annotations

import argparse
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

sys.dont_write_bytecode = True          # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    REPO, BenchError, Http, ServerProcess, SelfcastProcess, log, cpu_seconds, stop_process, free_port, run,
    loadavg, machine_facts, git_rev, median, percentile, write_section, fmt, med_spread, ratio,
    parse_media_playlist,
)

SIDES = ("memory", "s3")
SEGMENT_S = 2
POLL_S = 0.1
STREAM_KEY = "bench-storage-key"
BUCKET = "selfcast-bench"
PREFIX = "live"
CLIP = REPO / "target" / "bench" / "storage-clip-720p30-60s.mp4"
MOTO_VENV = Path(os.environ.get("SELFCAST_MOTO_VENV", REPO / "target" / "tools" / "moto-5.2.1"))


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


class Moto(ServerProcess):
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

    def create_bucket(self) -> None:
        code = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
                    "-H", "Content-Type: text/plain", f"http://127.0.0.1:{self.port}/{BUCKET}"]).stdout.strip()
        if code != "200":
            raise BenchError(f"moto: creating the bucket answered {code}")

    @property
    def public_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{BUCKET}"

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc, signal.SIGTERM, grace_s=5)


class Selfcast(SelfcastProcess):
    def __init__(self, binary: Path, rundir: Path, moto: Moto | None):
        http_port, self.rtmp_port = free_port(), free_port()
        lines = ["[server]", f'data_dir = "{rundir / "data"}"', "[rtmp]", f'listen = "127.0.0.1:{self.rtmp_port}"',
                 f'stream_key = "{STREAM_KEY}"', "[http]", f'listen = "127.0.0.1:{http_port}"',
                 "[hls]", f"segment_seconds = {SEGMENT_S}", "playlist_segments = 6",
                 "[[video.variants]]", 'name = "source"', "passthrough = true"]
        if moto is not None:
            lines += ["[storage]", 'kind = "s3"', "[storage.s3]", f'endpoint = "http://127.0.0.1:{moto.port}"',
                      'region = "us-east-1"', f'bucket = "{BUCKET}"', 'access_key = "bench"',
                      'secret_key = "bench-secret"', f'path_prefix = "{PREFIX}"', "force_path_style = true",
                      'acl = "public-read"', f'public_base_url = "{moto.public_base_url}"']
        config = rundir / "config.toml"
        config.write_text("\n".join(lines) + "\n")
        super().__init__([str(binary), "--config", str(config)], rundir / "server.log", http_port)

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc, signal.SIGTERM, grace_s=SEGMENT_S + 10)


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
                        self.seen.setdefault(seg.uri.rsplit("/", 1)[-1], t)
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
    moto_cpu_s: float | None = None
    segments: int = 0
    external_ms: list = field(default_factory=list)
    storage: dict | None = None

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def run_side(binary: Path, side: str, rep: int, duration: float, work: Path) -> Run:
    rundir = work / "runs" / f"{side}-{rep}"
    if rundir.exists():
        run(["rm", "-rf", str(rundir)])
    rundir.mkdir(parents=True)
    r = Run(side, rep)
    moto = server = publisher = None
    try:
        if side == "s3":
            moto = Moto(rundir)
            moto.wait_ready()
            moto.create_bucket()
        server = Selfcast(binary, rundir, moto)
        server.wait_ready()
        with open(rundir / "ffmpeg.log", "wb") as flog:
            publisher = subprocess.Popen(
                ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i", str(make_clip()),
                 "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{server.rtmp_port}/live/{STREAM_KEY}"],
                stdin=subprocess.DEVNULL, stdout=flog, stderr=subprocess.STDOUT)
        local = FirstSeen(server.http_port, "/hls/0/stream.m3u8")
        remote = FirstSeen(moto.port, f"/{BUCKET}/{PREFIX}/0/stream.m3u8") if moto else None
        deadline = time.monotonic() + 30
        while not local.seen:
            if time.monotonic() > deadline:
                raise BenchError(f"{side}: no segment within 30 s")
            time.sleep(0.1)
        t0, cpu0 = time.monotonic(), cpu_seconds(server.pid)
        moto_cpu0 = cpu_seconds(moto.pid) if moto else None
        log(f"{side}-{rep}: measuring for {duration:g} s")
        time.sleep(duration)
        r.wall_s = time.monotonic() - t0
        r.cpu_s = cpu_seconds(server.pid) - cpu0
        if moto:
            r.moto_cpu_s = cpu_seconds(moto.pid) - moto_cpu0
        r.storage = server.status().get("storage")
        time.sleep(2 * SEGMENT_S)            # the last segments reach the bucket
        local_seen = local.stop()
        r.segments = sum(1 for t in local_seen.values() if t0 <= t <= t0 + r.wall_s)
        if remote:
            remote_seen = remote.stop()
            r.external_ms = [(remote_seen[name] - t) * 1000 for name, t in local_seen.items()
                             if t0 <= t <= t0 + r.wall_s and name in remote_seen]
    finally:
        for proc in (publisher,):
            if proc is not None:
                stop_process(proc, signal.SIGTERM, grace_s=5)
        if server is not None:
            server.stop()
        if moto is not None:
            moto.stop()
    log(f"{side}-{rep}: {r.cores:.3f} cores, {r.segments} segments"
        + (f", listed p50 {fmt(percentile(r.external_ms, 50), 0)} ms (outside), storage {r.storage and r.storage.get('state')}"
           if side == "s3" else ""))
    return r


def report(runs: list[Run], command: str, started: datetime, minutes: float, duration: float) -> str:
    by = {s: [r for r in runs if r.side == s] for s in SIDES}

    def med(side, f):
        return median([f(r) for r in by[side]])

    def spread(side, f, digits=2):
        return med_spread([f(r) for r in by[side]], digits)

    mem_cores, s3_cores = med("memory", lambda r: r.cores), med("s3", lambda r: r.cores)
    extra_ms_per_segment = med("s3", lambda r: r.cpu_s * 1000 / max(r.segments, 1))
    base_ms_per_segment = med("memory", lambda r: r.cpu_s * 1000 / max(r.segments, 1))
    inner = lambda k: (lambda r: (r.storage or {}).get("segmentListedMs", {}).get(k))  # noqa: E731
    outer = lambda p: (lambda r: percentile(r.external_ms, p))  # noqa: E731
    p50, p99 = med("s3", inner("p50")), med("s3", inner("p99"))
    outside_p99 = med("s3", outer(99))
    m = machine_facts()
    lines = []
    w = lines.append
    w("## storage")
    w("")
    w("Issue 6: a live stream pushed to S3-compatible storage (moto on loopback): from a segment being "
      "finished to the bucket's playlist listing it, and the extra CPU uploading costs. Reference, in the "
      "same run: the same stream served from memory only (`[storage] kind = \"memory\"`).")
    w("")
    w(f"**A finished segment is listed in the bucket's playlist {fmt(p50, 0)} ms (p50) / {fmt(p99, 0)} ms (p99) "
      f"later, {ratio(p99, SEGMENT_S * 1000)} × the segment duration at p99 (polled from outside: within "
      f"{fmt(outside_p99, 0)} ms of selfcast's own playlist at p99, the polling's resolution); selfcast's "
      f"CPU with S3 / memory only: {ratio(s3_cores, mem_cores)} "
      f"({fmt(None if s3_cores is None or mem_cores is None else (s3_cores - mem_cores) * 100, 2)} % of a core "
      f"more, {fmt(None if extra_ms_per_segment is None or base_ms_per_segment is None else extra_ms_per_segment - base_ms_per_segment, 1)} "
      "CPU ms per segment) (medians).**")
    w("")
    w(f"- Command: `{command}`")
    w(f"- Run: {started.strftime('%Y-%m-%d %H:%M')} UTC, {minutes:.0f} min; {len(by['s3'])} run(s) per side, "
      f"alternating; {duration:g} s measured per run; figures are the median with (min–max) over the runs")
    w(f"- Machine: {m['nproc']} × {m['cpu']}, {m['mem_gib']:.0f} GiB, {m['os']} (kernel {m['kernel']}); "
      f"load average {loadavg():.1f} at the end")
    w(f"- Versions: selfcast {git_rev()}; moto {MOTO_VENV.name.split('-', 1)[-1]}")
    w(f"- Stream: {CLIP.name} (720p30 H.264 2.5 Mbit/s + AAC, 2 s GOPs) published with `ffmpeg -re -stream_loop -1 "
      "... -c copy -f flv` (as OBS); one passthrough variant, segments of 2 s, a window of 6; S3 with "
      "`concurrency = 4`, `acl = \"public-read\"`, path style")
    w("- The storage server runs on the same 2 cores; in production it is elsewhere (its CPU is shown apart)")
    w("")
    w("| | memory (reference) | s3 | s3 / memory |")
    w("|---|---|---|---|")
    w(f"| selfcast CPU, % of a core | {spread('memory', lambda r: r.cores * 100)} | {spread('s3', lambda r: r.cores * 100)} "
      f"| {ratio(s3_cores, mem_cores)} |")
    w(f"| selfcast CPU per segment, ms | {spread('memory', lambda r: r.cpu_s * 1000 / max(r.segments, 1), 1)} | "
      f"{spread('s3', lambda r: r.cpu_s * 1000 / max(r.segments, 1), 1)} | "
      f"{ratio(extra_ms_per_segment, base_ms_per_segment)} |")
    w(f"| segments made while measuring | {spread('memory', lambda r: r.segments, 0)} | {spread('s3', lambda r: r.segments, 0)} | |")
    w(f"| finished → listed in the bucket, p50 / p99 ms (selfcast's measure) | – | "
      f"{spread('s3', inner('p50'), 0)} / {spread('s3', inner('p99'), 0)} | |")
    w(f"| listed at selfcast → listed in the bucket, p50 / p99 ms (polled every {POLL_S * 1000:.0f} ms) | – | "
      f"{spread('s3', outer(50), 0)} / {spread('s3', outer(99), 0)} | |")
    w(f"| finished → listed at p99, × the segment duration ({SEGMENT_S} s) | – | {ratio(p99, SEGMENT_S * 1000)} | |")
    w(f"| one upload, p50 / p99 ms | – | {spread('s3', lambda r: (r.storage or {}).get('putMs', {}).get('p50'), 0)} / "
      f"{spread('s3', lambda r: (r.storage or {}).get('putMs', {}).get('p99'), 0)} | |")
    counts = "; ".join(" / ".join(str((r.storage or {}).get(k, "–")) for k in ("failures", "stored", "deleted"))
                       for r in by["s3"])
    w(f"| failed attempts / stored / deleted objects, per run | – | {counts} | |")
    w(f"| moto's CPU, % of a core | – | {spread('s3', lambda r: (r.moto_cpu_s or 0) / r.wall_s * 100)} | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description="Issue 6's benchmark: S3 uploads against serving from memory.")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "selfcast")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--duration", type=float, default=180, help="measured seconds per run (default 180)")
    ap.add_argument("--reps", type=int, default=2, help="runs per side (default 2)")
    for opt in ("--live-reps", "--profile", "--ladder", "--cores"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    for opt in ("--passthrough", "--callgrind"):
        ap.add_argument(opt, action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rewrite the section from the last run's saved results")
    args = ap.parse_args()
    work = REPO / "target" / "bench" / "storage"
    work.mkdir(parents=True, exist_ok=True)
    results = work / "storage-results.json"
    if args.report_only:
        saved = json.loads(results.read_text())
        runs = [Run(**r) for r in saved["runs"]]
        write_section(args.out, "storage", report(runs, saved["command"], datetime.fromisoformat(saved["started"]),
                                                  saved["minutes"], saved["duration"]))
        log(f"rewrote the section '## storage' of {args.out} from {results}")
        return 0
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    command = os.environ.get("BENCH_COMMAND_LINE", "ci/bench storage")
    runs = []
    try:
        make_clip()
        for rep in range(1, args.reps + 1):
            for side in (SIDES if rep % 2 == 1 else SIDES[::-1]):
                runs.append(run_side(args.bin, side, rep, args.duration, work))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    minutes = (time.monotonic() - t0) / 60
    results.write_text(json.dumps({"started": started.isoformat(), "minutes": minutes, "command": command,
                                   "duration": args.duration, "runs": [asdict(r) for r in runs]}, indent=1))
    write_section(args.out, "storage", report(runs, command, started, minutes, args.duration))
    log(f"wrote the section '## storage' of {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
