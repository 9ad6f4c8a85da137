"""ci/bench.d/benchlib.py — what the benchmarks in ci/bench.d/ share (Python 3.11, stdlib only).

  - measuring a process: CPU seconds (utime+stime from /proc/PID/stat), peak RSS (VmHWM from
    /proc/PID/status), or both from wait4()'s rusage for a child that has exited; RSS now
    (VmRSS); the whole machine's busy CPU seconds (what the neighbours took); the open-file limit;
  - HLS: a tolerant media-playlist parser (a playlist being rewritten may be read half-written:
    only complete lines count), an HTTP client with one kept-alive connection;
  - quality: PSNR and SSIM of a rendition against the source, frame by frame;
  - versions and machine facts for the report, and the BENCHMARKS.md section writer;
  - log() with the elapsed time, statistics (median, spread, percentiles).

Nothing here runs by itself; ci/bench runs ci/bench.d/<name>.py, which imports this.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A benchmark could not be measured (a process died, a timeout): the message says which."""


# ---- Processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread, living and exited), in seconds.

    /proc/PID/stat: the command name (field 2) is in parentheses and may contain spaces, so split
    after the last ')'; utime and stime are fields 14 and 15 (proc(5)), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    """A memory figure (KiB) from /proc/PID/status, e.g. key "VmHWM"."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def peak_rss_kib(pid: int) -> int:
    """VmHWM: the peak resident set size of the process so far, KiB."""
    return _status_kib(pid, "VmHWM")


def rss_kib(pid: int) -> int:
    """VmRSS: the resident set size of the process now, KiB."""
    return _status_kib(pid, "VmRSS")


def busy_cpu_seconds() -> float:
    """CPU seconds every CPU of the machine has spent busy (not idle, not waiting for I/O) since
    boot, from /proc/stat: the difference over a run, minus what the measured processes used,
    is what everything else on the machine took from them."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit (inherited by the processes it starts) to `wanted`,
    the hard limit too when allowed (root); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class ChildUsage:
    """What wait4() says about a child that has exited."""
    status: int
    cpu_s: float
    maxrss_kib: int
    ended: float          # time.monotonic() when we reaped it


def try_reap(proc: subprocess.Popen) -> ChildUsage | None:
    """Reap `proc` with its rusage if it has exited, else None (never blocks)."""
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildUsage(proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, time.monotonic())


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Stop one process we started (by its pid): `sig`, then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log(f"pid {proc.pid} did not stop within {grace_s:.0f} s of signal {sig}: killing it")
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


class ServerProcess:
    """A server under test, started as a child process with its output in `log_path` (and `env`
    added to its environment). Subclasses say how to tell it is ready (`answers`)."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict | None = None):
        self.name, self.command, self.log_path = name, command, log_path
        with open(log_path, "wb") as logf:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         env={**os.environ, "NO_COLOR": "1", **(env or {})})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def answers(self) -> bool:
        raise NotImplementedError

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited {self.proc.returncode} at start-up:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")


class SelfcastProcess(ServerProcess):
    """selfcast under test, with an HTTP client to its port: ready when /api/status answers."""

    def __init__(self, command: list[str], log_path: Path, http_port: int):
        super().__init__("selfcast", command, log_path)
        self.http_port = http_port
        self.http = Http(http_port)

    def answers(self) -> bool:
        try:
            return self.http.get("/api/status")[0] == 200
        except OSError:
            return False

    def status(self) -> dict:
        code, body = self.http.get("/api/status")
        return json.loads(body) if code == 200 else {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command to completion, capturing text output; raise BenchError with its stderr tail."""
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{cmd[0]} exited {result.returncode}: {' '.join(cmd)}\n{tail}")
    return result


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---- HLS ---------------------------------------------------------------------------------------


@dataclass
class Segment:
    uri: str
    duration: float


@dataclass
class MediaPlaylist:
    init_uri: str | None = None
    segments: list[Segment] = field(default_factory=list)
    ended: bool = False

    @property
    def total(self) -> float:
        return sum(s.duration for s in self.segments)


_MAP_URI = re.compile(r'#EXT-X-MAP:.*URI="([^"]+)"')


def parse_media_playlist(text: str) -> MediaPlaylist:
    """A media playlist, read tolerantly: only newline-terminated lines count (a file being
    rewritten in place may be read half-written), a segment needs its #EXTINF before it."""
    pl = MediaPlaylist()
    complete = text[: text.rfind("\n") + 1]
    duration = None
    for line in complete.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            try:
                duration = float(line[len("#EXTINF:"):].split(",")[0])
            except ValueError:
                duration = None
        elif line.startswith("#EXT-X-MAP:"):
            m = _MAP_URI.match(line)
            if m:
                pl.init_uri = m.group(1)
        elif line == "#EXT-X-ENDLIST":
            pl.ended = True
        elif line and not line.startswith("#") and duration is not None:
            pl.segments.append(Segment(line, duration))
            duration = None
    return pl


def parse_master_playlist(text: str) -> list[tuple[str, dict]]:
    """[(variant URI, {attribute: value})] in playlist order."""
    variants, attrs = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            attrs = {k: v.strip('"') for k, v in attrs.items()}
        elif line and not line.startswith("#") and attrs is not None:
            variants.append((line, attrs))
            attrs = None
    return variants


class Http:
    """GETs against one host:port over one kept-alive connection (reconnects when it drops)."""

    def __init__(self, port: int, timeout_s: float = 5.0):
        self.port, self.timeout_s, self.conn = port, timeout_s, None

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout_s)
                self.conn.request("GET", path)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---- Media facts and quality ------------------------------------------------------------------


def probe_video(path: Path) -> dict:
    """width, height, frames (counted by decoding the packets' headers), first pts of a file."""
    out = run([
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=width,height,nb_read_packets,start_time,r_frame_rate",
        "-of", "json", str(path),
    ]).stdout
    s = json.loads(out)["streams"][0]
    return {
        "width": int(s["width"]),
        "height": int(s["height"]),
        "frames": int(s["nb_read_packets"]),
        "start_time": float(s.get("start_time") or 0.0),
    }


def x264_options(path: Path) -> str | None:
    """The options string libx264 writes into its SEI ("x264 - core ... - options: ...")."""
    data = path.read_bytes()[: 4 << 20]
    m = re.search(rb"x264 - core [^\x00]*?options: ([ -~]+)", data)
    return m.group(1).decode() if m else None


def x264_core(path: Path) -> str | None:
    data = path.read_bytes()[: 4 << 20]
    m = re.search(rb"x264 - core (\d+ r\d+ [0-9a-f]+)", data)
    return m.group(1).decode() if m else None


def quality(rendition: Path, source: Path, fps: float) -> dict:
    """Average PSNR (ffmpeg's: from the mean squared error over all frames) and SSIM of a
    rendition against the source scaled to the rendition's size with bicubic.

    Frames are paired by their time from the first frame, in frame units (settb=1/FPS then
    setpts=PTS-STARTPTS on both: integer timestamps in one time base, so rounding cannot pair
    neighbours). The rendition drives the comparison, so a rendition that dropped frames is
    compared on the frames it has, each with its own source frame (the counts say how many)."""
    info = probe_video(rendition)
    w, h = info["width"], info["height"]
    graph = (
        f"[0:v]settb=1/{fps},setpts=PTS-STARTPTS,split[d1][d2];"
        f"[1:v]scale={w}:{h}:flags=bicubic,settb=1/{fps},setpts=PTS-STARTPTS,split[r1][r2];"
        "[d1][r1]psnr=shortest=1[p];[d2][r2]ssim=shortest=1[s]"
    )
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-i", str(rendition), "-i", str(source),
           "-filter_complex", graph, "-map", "[p]", "-map", "[s]", "-f", "null", "-"]
    err = run(cmd).stderr
    psnr = re.search(r"PSNR y:([\d.]+|inf) u:([\d.]+|inf) v:([\d.]+|inf) average:([\d.]+|inf)", err)
    ssim = re.search(r"SSIM Y:([\d.]+) .*All:([\d.]+)", err)
    if not psnr or not ssim:
        raise BenchError(f"no PSNR/SSIM in the output of: {' '.join(cmd)}\n{err[-2000:]}")
    return {
        "width": w, "height": h, "frames": info["frames"],
        "psnr_y": float(psnr.group(1)), "psnr_avg": float(psnr.group(4)),
        "ssim_y": float(ssim.group(1)), "ssim_all": float(ssim.group(2)),
        "command": cmd,
    }


# ---- Versions and machine -----------------------------------------------------------------------


def machine_facts() -> dict:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / (1 << 20)
    os_name = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": mem_gib, "os": os_name,
            "kernel": os.uname().release}


def git_rev() -> str:
    try:
        rev = run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"]).stdout.strip()
        dirty = run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (BenchError, OSError):
        return "unknown"


def ffmpeg_version() -> str:
    first = run(["ffmpeg", "-hide_banner", "-version"]).stdout.splitlines()[0]
    return first.split(" Copyright")[0]


def ffmpeg_libs() -> str:
    """e.g. libavcodec 59.37.100, libswscale 6.7.100 (what the CLI links)."""
    out = run(["ffmpeg", "-hide_banner", "-version"]).stdout
    libs = re.findall(r"^(lib\w+)\s+(\d+)\.\s*(\d+)\.\s*(\d+)", out, re.M)
    return ", ".join(f"{n} {a}.{b}.{c}" for n, a, b, c in libs if n in ("libavcodec", "libswscale", "libavfilter"))


def deb_version(package: str) -> str | None:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


# ---- Statistics ----------------------------------------------------------------------------------


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs, p: float):
    """Nearest-rank percentile (p in 0..100) of the values that are not None."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    rank = max(1, -(-len(xs) * p // 100))   # ceil(n * p / 100), at least 1
    return xs[int(rank) - 1]


# ---- BENCHMARKS.md ------------------------------------------------------------------------------

BENCHMARKS_HEADER = """# Benchmarks

Written by `ci/bench` (one section per benchmark; `ci/bench NAME` replaces only its own
section). Every figure comes with the command that produced it and the reference it is compared
with in the same run. The machine is small and shared, so compare ratios, not absolute times.
"""


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the `## name` section of the file (up to the next `## ` heading) with `body`
    (which starts with that heading), or append it; other sections are kept as they are."""
    text = path.read_text() if path.exists() else BENCHMARKS_HEADER
    lines = text.splitlines(keepends=True)
    # Headings inside fenced code blocks (a shell comment "## ...") are not headings.
    headings, fenced = [], False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            headings.append(i)
    heading = f"## {name}"
    start = next((i for i in headings if lines[i].rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    else:
        end = next((i for i in headings if i > start), len(lines))
        before = "".join(lines[:start])
        after = "".join(lines[end:])
        new = before + body.rstrip("\n") + "\n" + ("\n" + after if after else "")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new)
    tmp.replace(path)


# ---- Report formatting ---------------------------------------------------------------------------

def fmt(x, digits=2, unit=""):
    """A number for a report table, with thousands separators; "–" for none."""
    return "–" if x is None else f"{x:,.{digits}f}{unit}"


def med_spread(xs, digits=2):
    """The median with (min–max) of the values that are there."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(median(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def ratio(a, b, digits=2):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.{digits}f}"
