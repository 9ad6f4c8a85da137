"""ci/bench.d/transcode.py — issue 4's benchmark: selfcast's transcode against the ffmpeg CLI.

The same input (a 60 s 720p30 H.264/AAC clip, generated once and cached in target/bench/) goes
through the same ladder (720p 2500 kbps, 480p 1000 kbps, 360p 600 kbps; x264 veryfast, tune
zerolatency, high profile, 2 s closed GOPs, bilinear scaling; AAC copied) in two ways:

  (a) selfcast: the clip is published over RTMP by `ffmpeg -i clip.mp4 -c copy -f flv rtmp://...`
      (what OBS is to us); selfcast decodes once, scales and encodes each rendition in-process and
      serves fMP4 HLS from memory;
  (b) the ffmpeg CLI as a self-hosted server would spawn it (Owncast does this): the same FLV
      stream on its stdin, one process that decodes once, splits, scales, encodes each rendition
      and writes fMP4 HLS (`-f hls -var_stream_map ...`).

--ladder default measures selfcast's default ladder instead, the [[video.variants]] of the
shipped config.toml (the source copied, `passthrough = true`, + 480p 1200 kbps veryfast): issue 4's
"runs in real time on one core for a 720p30 source". The CLI then copies the source's video into
that rendition (-c:v:0 copy) and scales and encodes the others, with the same x264 settings.
--cores N pins selfcast and the CLI (every thread) to the first N CPUs with `taskset -c`; the
publisher is not pinned: it stands for OBS on another machine and has the other core(s).

Each side runs in two modes, `--reps` times each, the sides alternating:

  fast: at speed. The CLI's publisher sends as fast as the CLI reads (a pipe: it waits for the
        CLI): CPU seconds per media second, real-time factor = media seconds / wall seconds until
        it has exited, peak RSS. selfcast never makes its publisher wait: a stage that falls
        behind drops frames (counted in /api/status). Unpaced, it would drop most of them and
        measure that, so its publisher is paced (-readrate) at PACE_SHARE of the speed the CLI
        just reached: the same work at nearly the same speed, CPU seconds per media second and
        whether it kept up (frames not encoded).
  live: the publisher sends in real time (-re): CPU seconds per media second at the pace of a
        live stream (the figure that matters for a server), and the latency transcoding adds,
        from the moment the packet that closes a segment (the next keyframe) is sent to the
        moment the segment is listed in its playlist.

How each figure is taken:

  CPU       selfcast: utime+stime from /proc/PID/stat (every thread), the delta from the publisher's
            start to the last segment, minus the server's idle rate (measured for 2 s before the
            publish) times that wall time. CLI: wait4()'s rusage of the process (its whole life).
            The publisher (a separate ffmpeg process) is not counted on either side.
  peak RSS  selfcast: VmHWM from /proc/PID/status at the end of the run; CLI: wait4()'s ru_maxrss.
  latency   the publisher runs with -debug_ts; every "muxer <-" line it prints is timestamped when
            it is read (the packet is written to the socket/pipe right after: -flush_packets 1).
            The playlists are polled every 50 ms (selfcast over HTTP, the CLI's files on disk);
            each segment's "listed" time is the first poll that shows it. Segment k's closing
            packet is the source keyframe at the end of segment k (the running EXTINF sum snapped
            to the nearest source keyframe). The last segment, closed by the end of the stream,
            has no closing packet and is left out. Resolution: +0..50 ms from polling, plus the
            publisher's interleaving (an audio packet or two, ~21 ms each).
  quality   every transcoded rendition's init + segments (from the first live run of each side)
            are joined into one file and compared with the source scaled to its size (bicubic):
            ffmpeg -lavfi psnr and ssim, each frame paired with the source frame at the same time
            from the start (settb=1/FPS,setpts=PTS-STARTPTS on both).

Results: a section `## transcode` in BENCHMARKS.md, and everything measured in
target/bench/transcode-results.json; with --ladder default or --cores N, a section of its own
(`## transcode: default ladder on one core`, ...) and transcode-default-1core-results.json, ...
(bench_names). With --ladder default or --cores, the headline says whether selfcast kept up in
real time there (live runs: no frame left unencoded) and what share of a core each side used.
When the CPU ratio selfcast/CLI is above 1.0 (or with --profile always), one more fast run of
each side is recorded with `perf record` and the profiles, by library and by function, are
written beside the results and summarised in the report.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True          # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import callgrind  # noqa: E402
from benchlib import (  # noqa: E402
    REPO, BenchError, SelfcastProcess, log, cpu_seconds, peak_rss_kib, try_reap, stop_process, free_port,
    run, loadavg, parse_media_playlist, quality, x264_options, x264_core,
    machine_facts, git_rev, ffmpeg_version, ffmpeg_libs, deb_version, median, percentile,
    write_section, fmt, med_spread, ratio,
)

FPS = 30
SEGMENT_S = 2
GOP = FPS * SEGMENT_S
STREAM_KEY = "benchkey-123456"
# A ladder: its rungs, (name, height, kbps, cpu_usage_level); height None = the source's video
# copied (selfcast: passthrough = true; the CLI: -c:v:N copy). maxrate = 1.06 x, bufsize = 1.2 x
# the bitrate. cpu_usage_level is selfcast's name for the x264 preset (X264_PRESETS).
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast")
CPU_USAGE_LEVEL = 2              # veryfast
LADDER_THREE = [("720p", 720, 2500, CPU_USAGE_LEVEL), ("480p", 480, 1000, CPU_USAGE_LEVEL),
                ("360p", 360, 600, CPU_USAGE_LEVEL)]
PROFILE_S = 20                   # the perf profiles are taken on this much of the input
PACE_SHARE = 0.9                 # selfcast's fast runs: publisher at this share of the CLI's speed
POLL_S = 0.05
IDLE_S = 2.0
SETTLE_S = 5.0                   # no playlist change for this long after the publisher ended: done
INPUT_VERSION = "v1"             # bump when the generator command changes


# ---- The ladder ---------------------------------------------------------------------------------

LADDER_CHOICES = ("three", "default")


def load_ladder(which: str) -> list[tuple]:
    """The rungs of `--ladder`. "three": issue 4's ladder (LADDER_THREE). "default": the
    [[video.variants]] of the shipped config.toml, read now so the benchmark follows the file
    (selfcast's built-in default where it has none: the source copied + 480p 1200 kbps)."""
    if which == "three":
        return [tuple(r) for r in LADDER_THREE]
    import tomllib
    path = REPO / "config.toml"
    with open(path, "rb") as f:
        variants = tomllib.load(f).get("video", {}).get("variants")
    if not variants:
        variants = [{"name": "source", "passthrough": True},
                    {"name": "480p", "height": 480, "video_bitrate_kbps": 1200}]
    rungs = []
    for v in variants:
        other = sorted(set(v) - {"name", "passthrough", "height", "video_bitrate_kbps", "cpu_usage_level"})
        if other:
            raise BenchError(f"{path}: variant {v.get('name')!r} sets {', '.join(other)}, which the "
                             "benchmark's CLI command does not reproduce")
        if v.get("passthrough"):
            rungs.append((v["name"], None, None, None))
        else:
            rungs.append((v["name"], int(v["height"]), int(v["video_bitrate_kbps"]),
                          int(v.get("cpu_usage_level", CPU_USAGE_LEVEL))))
    levels = {level for _, height, _, level in rungs if height is not None}
    if len(levels) != 1:
        raise BenchError(f"{path}: the benchmark needs at least one transcoded variant, all with the same "
                         f"cpu_usage_level (the CLI command sets one x264 preset); found {sorted(levels)}")
    return rungs


def transcoded(rungs: list) -> list[tuple]:
    return [r for r in rungs if r[1] is not None]


def ladder_text(rungs: list) -> str:
    """e.g. "720p 2500 kbps, 480p 1000 kbps, 360p 600 kbps; x264 veryfast"."""
    return (", ".join(f"{n} {k} kbps" if h is not None else f"{n}: the source's video copied"
                      for n, h, k, _ in rungs)
            + f"; x264 {X264_PRESETS[transcoded(rungs)[0][3]]}")


def bench_names(ladder: str, cores: int | None) -> tuple[str, str]:
    """(the BENCHMARKS.md section, the suffix of the results files) of a ladder and --cores:
    today's ladder on every core keeps the plain `## transcode` and transcode-results.json."""
    where = "" if cores is None else " on one core" if cores == 1 else f" on {cores} cores"
    suffix = ("" if ladder == "three" else f"-{ladder}") + ("" if cores is None else f"-{cores}core")
    if ladder == "three":
        return ("transcode" + (f": three-rung ladder{where}" if where else "")), suffix
    return f"transcode: {ladder} ladder{where}", suffix


def cpu_list(cores: int | None) -> str | None:
    """The first `cores` CPUs this process may run on, as taskset -c takes them ("0", "0-1")."""
    if cores is None:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 <= cores <= len(allowed):
        raise BenchError(f"--cores {cores}: this process may run on {len(allowed)} CPUs ({allowed})")
    cpus = allowed[:cores]
    if cpus == list(range(cpus[0], cpus[-1] + 1)):
        return str(cpus[0]) if len(cpus) == 1 else f"{cpus[0]}-{cpus[-1]}"
    return ",".join(map(str, cpus))


# ---- The input ----------------------------------------------------------------------------------

def input_command(out: Path, duration: int) -> list[str]:
    """A clip that is work to encode, like a game or camera stream and unlike a test card: a
    Mandelbrot zoom (fine detail everywhere, constant motion), a testsrc2 panel moving across it
    (sharp edges, text, a counter), temporal grain; x264 veryfast at 4500 kbps with B-frames and
    2 s closed GOPs (what OBS sends), AAC 128 kbps stereo."""
    video = (
        "mandelbrot=s=1280x720:r=30:maxiter=512[bg];"
        "testsrc2=s=640x360:r=30[fg];"
        "[bg][fg]overlay=x='(W-w)*(0.5+0.5*sin(t/3))':y='(H-h)*(0.5+0.5*cos(t/4))':shortest=1,"
        "noise=alls=6:allf=t,format=yuv420p"
    )
    audio = "sine=frequency=440:sample_rate=48000,aformat=channel_layouts=stereo"
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", str(duration),
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-b:v", "4500k",
        "-maxrate", "4500k", "-bufsize", "9000k", "-g", str(GOP), "-keyint_min", str(GOP),
        "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(out),
    ]


@dataclass
class Input:
    path: Path
    command: list[str]
    duration: float          # media seconds (frames / FPS)
    frames: int
    keyframes: list[float]   # video keyframe pts, seconds, in order


def make_input(work: Path, duration: int) -> Input:
    path = work / f"input-720p30-{duration}s-{INPUT_VERSION}.mp4"
    meta = path.with_suffix(".json")
    cmd = input_command(path, duration)
    if not (path.exists() and meta.exists()):
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        log(f"generating the {duration} s input (once; cached as {shown})")
        tmp = path.with_name(path.stem + ".tmp.mp4")
        t0 = time.monotonic()
        run(input_command(tmp, duration))
        write_meta(tmp, meta)
        tmp.replace(path)
        log(f"input ready in {time.monotonic() - t0:.0f} s")
    m = json.loads(meta.read_text())
    return Input(path, cmd, m["frames"] / FPS, m["frames"], m["keyframes"])


def write_meta(clip: Path, meta: Path) -> None:
    """Frame count and keyframe times of a clip, beside it."""
    out = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
               "packet=pts_time,flags", "-of", "json", str(clip)]).stdout
    packets = json.loads(out)["packets"]
    keyframes = sorted(float(p["pts_time"]) for p in packets if "K" in p.get("flags", ""))
    meta.write_text(json.dumps({"frames": len(packets), "keyframes": keyframes}))


def cut_input(full: Input, work: Path, seconds: int) -> Input:
    """The first `seconds` of the input (whole GOPs: -c copy), cached."""
    if seconds >= full.duration:
        return full
    path = work / f"{full.path.stem}-first{seconds}s.mp4"
    meta = path.with_suffix(".json")
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(full.path),
           "-t", str(seconds), "-c", "copy", str(path)]
    if not (path.exists() and meta.exists()):
        tmp = path.with_name(path.stem + ".tmp.mp4")
        run(cmd[:-1] + [str(tmp)])
        write_meta(tmp, meta)
        tmp.replace(path)
    m = json.loads(meta.read_text())
    return Input(path, cmd, m["frames"] / FPS, m["frames"], m["keyframes"])


# ---- The publisher ------------------------------------------------------------------------------

class Publisher:
    """`ffmpeg [-re | -readrate R] -i clip.mp4 -c copy -f flv TARGET`, with every video packet's
    send time in real-time runs.

    rate: None = as fast as the receiver takes it, 1.0 = real time (-re), else -readrate.
    In real time, -debug_ts makes ffmpeg print "muxer <- type:video pkt_pts_time:..." for each
    packet just before writing it; a thread reads stderr and notes when each line arrives."""

    def __init__(self, clip: Path, target: str, rate: float | None, stdout=subprocess.DEVNULL):
        self.command = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]
        if rate == 1.0:
            self.command += ["-re", "-debug_ts"]
        elif rate is not None:
            self.command += ["-readrate", f"{rate:.3f}"]
        self.command += ["-i", str(clip), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy",
                         "-f", "flv", "-flush_packets", "1", target]
        self.sent: dict[int, float] = {}      # video pts in ms -> monotonic time it was sent
        self.tail: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stderr:
            now = time.monotonic()
            line = raw.decode(errors="replace")
            if line.startswith("muxer <- type:video"):
                for word in line.split():
                    if word.startswith("pkt_pts_time:"):
                        try:
                            pts_ms = round(float(word.split(":", 1)[1]) * 1000)
                        except ValueError:
                            break
                        self.sent.setdefault(pts_ms, now)
                        break
            elif not line.startswith(("demuxer", "decoder", "muxer", "encoder", "filter")):
                self.tail = (self.tail + [line.rstrip()])[-20:]

    def result(self) -> int | None:
        return self.proc.poll()

    def error(self) -> str:
        self.reader.join(timeout=2)
        return f"publisher exited {self.proc.returncode}: {' '.join(self.command)}\n" + "\n".join(self.tail)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT)
        self.reader.join(timeout=2)


# ---- One run --------------------------------------------------------------------------------------

@dataclass
class Run:
    side: str                 # "selfcast" | "cli"
    mode: str                 # "fast" | "live"
    rep: int
    media_s: float
    wall_s: float = 0.0
    cpu_s: float = 0.0        # net of the idle rate (selfcast)
    idle_cpu_per_s: float | None = None
    peak_rss_mib: float = 0.0
    dropped: int | None = None                        # selfcast: source packets dropped at ingest
    frames_out: dict = field(default_factory=dict)      # selfcast: variant -> video frames muxed
    pace: float | None = None                           # publisher -readrate (None: unpaced)
    segments: dict = field(default_factory=dict)        # variant -> count
    totals: dict = field(default_factory=dict)          # variant -> sum of EXTINF
    latencies: dict = field(default_factory=dict)       # variant -> [s]
    load_before: float = 0.0
    load_after: float = 0.0
    ended_by: str = ""
    notes: list = field(default_factory=list)

    @property
    def cpu_per_media_s(self) -> float:
        return self.cpu_s / self.media_s

    @property
    def rtf(self) -> float:
        return self.media_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def end_lag_s(self) -> float:
        """Wall time beyond the media's length: in a live run, how long after the end of the
        stream (the publisher sends in real time) the last segment was listed (or the CLI exited)."""
        return self.wall_s - self.media_s

    def missing(self, frames: int) -> int | None:
        """Source frames that did not make it into the renditions (selfcast drops frames instead
        of falling behind), summed over the renditions; None where not counted (the CLI, which
        never drops: it lags)."""
        if not self.frames_out:
            return None
        return sum(max(0, frames - n) for n in self.frames_out.values())

    def valid(self, frames: int) -> bool:
        """Comparable with the CLI: at most 1% of the frames went unencoded (fewer frames are
        less work, so a run that dropped more has measured something else)."""
        m = self.missing(frames)
        return m is None or m <= 0.01 * frames * max(1, len(self.frames_out))


class Watcher:
    """Polls the media playlists and notes when each segment first appears."""

    def __init__(self, variants: list[str], read):
        self.variants = variants
        self.read = read                       # variant -> playlist text or None
        self.seen: dict[str, dict[str, float]] = {v: {} for v in variants}
        self.playlists = {v: None for v in variants}
        self.last_change = time.monotonic()

    def poll(self) -> bool:
        """One round; True if any playlist gained a segment."""
        changed = False
        for v in self.variants:
            text = self.read(v)
            if text is None:
                continue
            now = time.monotonic()
            pl = parse_media_playlist(text)
            self.playlists[v] = pl
            for seg in pl.segments:
                if seg.uri not in self.seen[v]:
                    self.seen[v][seg.uri] = now
                    changed = True
        if changed:
            self.last_change = time.monotonic()
        return changed

    def complete(self, media_s: float) -> bool:
        """Every rendition lists segments covering the whole clip (within a frame)."""
        return all(pl is not None and pl.total >= media_s - 1.0 / FPS
                   for pl in self.playlists.values())

    def latencies(self, publisher: Publisher, keyframes: list[float]) -> dict[str, list[float]]:
        out = {}
        for v, pl in self.playlists.items():
            lat, end = [], keyframes[0]
            for seg in (pl.segments[:-1] if pl else []):
                # Snap the running end to the nearest source keyframe: the packet that closes it.
                end = min(keyframes, key=lambda k: abs(k - (end + seg.duration)))
                sent = publisher.sent.get(round(end * 1000))
                if sent is not None and seg.uri in self.seen[v]:
                    lat.append(self.seen[v][seg.uri] - sent)
            out[v] = lat
        return out


def ladder_names(passthrough: bool, rungs: list) -> list[str]:
    return ["source"] if passthrough else [r[0] for r in rungs]


def selfcast_config(data_dir: Path, rtmp_port: int, http_port: int, variants: str,
                    rungs: list = LADDER_THREE) -> str:
    """variants: "ladder" (the rungs), "passthrough" (one [[video.variants]] passthrough = true)
    or "none" (no [[video]] tables at all: a binary from before the ladder, which passes the source)."""
    text = f"""# written by ci/bench transcode
[server]
data_dir = "{data_dir}"
[rtmp]
listen = "127.0.0.1:{rtmp_port}"
stream_key = "{STREAM_KEY}"
[http]
listen = "127.0.0.1:{http_port}"
[hls]
segment_seconds = {SEGMENT_S}
playlist_segments = 40
"""
    if variants == "ladder":
        for name, height, kbps, level in rungs:
            if height is None:
                text += f'[[video.variants]]\nname = "{name}"\npassthrough = true\n'
                continue
            text += f"""[[video.variants]]
name = "{name}"
height = {height}
video_bitrate_kbps = {kbps}
cpu_usage_level = {level}
"""
    elif variants == "passthrough":
        text += '[[video.variants]]\nname = "source"\npassthrough = true\n'
    return text


class Server(SelfcastProcess):
    """A selfcast process on its own ports, config and data dir."""

    def __init__(self, binary: Path, rundir: Path, variants: str, wrapper: list[str] = (),
                 rungs: list = LADDER_THREE):
        self.rtmp_port, http_port = free_port(), free_port()
        self.config = rundir / "config.toml"
        self.config.write_text(selfcast_config(rundir / "data", self.rtmp_port, http_port, variants,
                                               rungs))
        super().__init__([*wrapper, str(binary), "--config", str(self.config)], rundir / "server.log",
                         http_port)

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{STREAM_KEY}"

    def playlist(self, index: int) -> str | None:
        try:
            code, body = self.http.get(f"/hls/{index}/stream.m3u8")
        except OSError:
            return None
        return body.decode(errors="replace") if code == 200 else None

    def download(self, index: int, out: Path) -> Path:
        """The rendition's init segment and every listed segment, joined into one fMP4 file."""
        text = self.playlist(index)
        if text is None:
            raise BenchError(f"selfcast: no playlist for variant {index}")
        pl = parse_media_playlist(text)
        if pl.init_uri is None:
            raise BenchError(f"selfcast: variant {index} playlist has no EXT-X-MAP")
        with open(out, "wb") as f:
            for uri in [pl.init_uri] + [s.uri for s in pl.segments]:
                code, body = self.http.get(f"/hls/{index}/{uri}")
                if code != 200:
                    raise BenchError(f"selfcast: GET /hls/{index}/{uri} answered {code}")
                f.write(body)
        return out

    def stop(self) -> None:
        self.http.close()
        stop_process(self.proc, signal.SIGTERM, grace_s=SEGMENT_S + 10)


def supports_variants(binary: Path, work: Path, rungs: list) -> tuple[bool, str]:
    """Whether this selfcast accepts [[video.variants]] (one that does not exits at start-up
    with a config error naming `video`)."""
    rundir = work / "runs" / "probe"
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir(parents=True)
    server = Server(binary, rundir, "ladder", rungs=rungs)
    try:
        server.wait_ready(timeout_s=15)
        return True, ""
    except BenchError as e:
        return False, str(e)
    finally:
        server.stop()


def run_selfcast(ctx, mode: str, rep: int, keep: Path | None, perf_out: Path | None = None,
                 pace: float | None = None) -> Run:
    rundir = ctx.work / "runs" / f"selfcast-{mode}-{rep}"
    shutil.rmtree(rundir, ignore_errors=True)
    rundir.mkdir(parents=True)
    names = ctx.variants
    r = Run("selfcast", mode, rep, ctx.input.duration, load_before=loadavg())
    r.pace = 1.0 if mode == "live" else pace
    server = Server(ctx.binary, rundir, ctx.selfcast_variants, wrapper=ctx.pin, rungs=ctx.rungs)
    publisher = perf = None
    try:
        server.wait_ready()
        # The idle rate includes answering our own polling (the same playlists, the same cadence):
        # the CLI's playlists are files, which cost the CLI nothing to be looked at.
        idle_watcher = Watcher(names, lambda v: server.playlist(names.index(v)))
        c0, t0 = cpu_seconds(server.pid), time.monotonic()
        while time.monotonic() - t0 < IDLE_S:
            time.sleep(POLL_S)
            idle_watcher.poll()
        r.idle_cpu_per_s = (cpu_seconds(server.pid) - c0) / (time.monotonic() - t0)
        dropped0 = server.status().get("droppedPackets", 0)
        if perf_out is not None:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-q", "-o", str(perf_out), "-p",
                                     str(server.pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)

        watcher = Watcher(names, lambda v: server.playlist(names.index(v)))
        cpu_start, t_start = cpu_seconds(server.pid), time.monotonic()
        publisher = Publisher(ctx.input.path, server.rtmp_url, r.pace)
        deadline = t_start + ctx.timeout(mode)
        cpu_end = t_end = None
        while True:
            time.sleep(POLL_S)
            if server.proc.poll() is not None:
                raise BenchError(f"selfcast exited {server.proc.returncode} during the run:\n{server.log_tail()}")
            if watcher.poll():
                cpu_end, t_end = cpu_seconds(server.pid), watcher.last_change
            done = publisher.result()
            if done is not None and done != 0:
                raise BenchError(publisher.error())
            if done is not None and watcher.complete(r.media_s) and t_end is not None:
                r.ended_by = "every rendition complete"
                break
            if done is not None and time.monotonic() - watcher.last_change > SETTLE_S:
                r.ended_by = f"no new segment for {SETTLE_S:.0f} s after the publisher ended"
                r.notes.append("selfcast: the renditions do not cover the whole clip: " + ", ".join(
                    f"{v} {pl.total if pl else 0:.2f} s" for v, pl in watcher.playlists.items()))
                break
            if time.monotonic() > deadline:
                raise BenchError(f"selfcast: not done after {ctx.timeout(mode):.0f} s:\n{server.log_tail()}")
        if perf is not None:
            stop_process(perf, signal.SIGINT, grace_s=30)
        if t_end is None:
            raise BenchError(f"selfcast listed no segment:\n{server.log_tail()}")
        r.wall_s = t_end - t_start
        r.cpu_s = (cpu_end - cpu_start) - r.idle_cpu_per_s * r.wall_s
        r.peak_rss_mib = peak_rss_kib(server.pid) / 1024
        status = server.status()
        r.dropped = status.get("droppedPackets", 0) - dropped0
        by_id = {str(v.get("id")): v for v in status.get("variants", [])}
        r.frames_out = {name: int(by_id.get(str(i), {}).get("framesOut", 0)) for i, name in enumerate(names)}
        r.segments = {v: len(pl.segments) for v, pl in watcher.playlists.items() if pl}
        r.totals = {v: round(pl.total, 3) for v, pl in watcher.playlists.items() if pl}
        if mode == "live":
            r.latencies = watcher.latencies(publisher, ctx.input.keyframes)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for i, v in enumerate(names):
                server.download(i, keep / f"{v}.mp4")
    finally:
        if perf is not None:
            stop_process(perf, signal.SIGINT, grace_s=30)
        if publisher is not None:
            publisher.stop()
        server.stop()
    r.load_after = loadavg()
    return r


def cli_command(outdir: Path, rungs: list = LADDER_THREE) -> list[str]:
    """One ffmpeg process doing the ladder the way a self-hosted server spawns it: FLV on stdin,
    decode once, split, scale (bilinear), one x264 per transcoded rendition, fMP4 HLS per
    rendition; a rung without a height gets the source's video copied (-c:v:N copy), as
    selfcast's passthrough variant. -fps_mode passthrough: one output frame per input frame, as
    selfcast does (the default for the hls muxer, cfr, may duplicate frames to fill the B-frame
    delay at the start)."""
    n = len(rungs)
    coded = [i for i, r in enumerate(rungs) if r[1] is not None]
    if len(coded) > 1:
        graph = (f"[0:v]split={len(coded)}" + "".join(f"[s{i}]" for i in coded) + ";"
                 + ";".join(f"[s{i}]scale=-2:{rungs[i][1]}:flags=bilinear[v{i}]" for i in coded))
    else:
        graph = "".join(f"[0:v]scale=-2:{rungs[i][1]}:flags=bilinear[v{i}]" for i in coded)
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
           "-f", "flv", "-i", "pipe:0", "-filter_complex", graph]
    for i in range(n):
        cmd += ["-map", f"[v{i}]" if i in coded else "0:v:0", "-map", "0:a:0"]

    def x264(opt: str, value: str) -> list[str]:
        """An encoder option for every video output (-opt) or, where a rendition is copied (a copy
        takes no encoder options: `-profile:v high` is an error on it), for each encoded one (-opt:v:N)."""
        if len(coded) == n:
            return [opt, value]
        return [a for i in coded for a in (f"{opt.removesuffix(':v')}:v:{i}", value)]
    cmd += ["-fps_mode", "passthrough", *x264("-c:v", "libx264"), *x264("-preset", X264_PRESETS[rungs[coded[0]][3]]),
            *x264("-tune", "zerolatency"), *x264("-profile:v", "high"), *x264("-pix_fmt", "yuv420p")]
    for i in range(n):
        if i not in coded:
            cmd += [f"-c:v:{i}", "copy"]
            continue
        kbps = rungs[i][2]
        cmd += [f"-b:v:{i}", f"{kbps}k", f"-maxrate:v:{i}", f"{round(kbps * 1.06)}k",
                f"-bufsize:v:{i}", f"{round(kbps * 1.2)}k"]
    cmd += [*x264("-g", str(GOP)), *x264("-keyint_min", str(GOP)), *x264("-x264-params", "scenecut=0:open_gop=0"),
            "-c:a", "copy",
            "-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_list_size", "0", "-hls_segment_type", "fmp4",
            "-var_stream_map", " ".join(f"v:{i},a:{i}" for i in range(n)),
            "-master_pl_name", "master.m3u8",
            "-hls_segment_filename", f"{outdir}/%v/seg-%d.m4s", f"{outdir}/%v/stream.m3u8"]
    return cmd


def read_file(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def run_cli(ctx, mode: str, rep: int, keep: Path | None, perf_out: Path | None = None) -> Run:
    rundir = ctx.work / "runs" / f"cli-{mode}-{rep}"
    shutil.rmtree(rundir, ignore_errors=True)
    outdir = rundir / "hls"
    outdir.mkdir(parents=True)
    names = [r[0] for r in ctx.rungs]
    r = Run("cli", mode, rep, ctx.input.duration, load_before=loadavg())
    r.pace = 1.0 if mode == "live" else None
    watcher = Watcher(names, lambda v: read_file(outdir / str(names.index(v)) / "stream.m3u8"))
    logf = open(rundir / "ffmpeg.log", "wb")
    publisher = cli = perf = None
    usage = None
    try:
        t_start = time.monotonic()
        publisher = Publisher(ctx.input.path, "pipe:1", r.pace, stdout=subprocess.PIPE)
        cli = subprocess.Popen([*ctx.pin, *cli_command(outdir, ctx.rungs)], stdin=publisher.proc.stdout,
                               stdout=subprocess.DEVNULL, stderr=logf)
        publisher.proc.stdout.close()       # the CLI holds the pipe now; it alone keeps it open
        if perf_out is not None:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-q", "-o", str(perf_out), "-p",
                                     str(cli.pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        deadline = t_start + ctx.timeout(mode)
        while usage is None:
            time.sleep(POLL_S)
            watcher.poll()
            usage = try_reap(cli)
            if time.monotonic() > deadline:
                raise BenchError(f"ffmpeg CLI: not done after {ctx.timeout(mode):.0f} s")
        watcher.poll()
        if usage.status != 0:
            logf.flush()
            tail = "\n".join((rundir / "ffmpeg.log").read_text(errors="replace").splitlines()[-15:])
            raise BenchError(f"ffmpeg CLI exited {usage.status}: {' '.join([*ctx.pin, *cli_command(outdir, ctx.rungs)])}\n{tail}")
        publisher.proc.wait(timeout=10)
        if publisher.proc.returncode != 0:
            raise BenchError(publisher.error())
        r.ended_by = "process exit"
        r.wall_s = usage.ended - t_start
        r.cpu_s = usage.cpu_s
        r.peak_rss_mib = usage.maxrss_kib / 1024
        r.segments = {v: len(pl.segments) for v, pl in watcher.playlists.items() if pl}
        r.totals = {v: round(pl.total, 3) for v, pl in watcher.playlists.items() if pl}
        if not watcher.complete(r.media_s):
            r.notes.append("cli: the renditions do not cover the whole clip: " + ", ".join(
                f"{v} {pl.total if pl else 0:.2f} s" for v, pl in watcher.playlists.items()))
        if mode == "live":
            r.latencies = watcher.latencies(publisher, ctx.input.keyframes)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for i, v in enumerate(names):
                pl = watcher.playlists[v]
                with open(keep / f"{v}.mp4", "wb") as f:
                    for uri in [pl.init_uri] + [s.uri for s in pl.segments]:
                        f.write((outdir / str(i) / uri).read_bytes())
    finally:
        if perf is not None:
            stop_process(perf, signal.SIGINT, grace_s=30)
        if cli is not None and usage is None:
            stop_process(cli, signal.SIGTERM)
        if publisher is not None:
            publisher.stop()
        logf.close()
    r.load_after = loadavg()
    return r


# ---- Profiles ---------------------------------------------------------------------------------------

def perf_report(data: Path, sort: str) -> list[tuple[float, str]]:
    """[(percent, name)] from `perf report --no-children --sort SORT`, highest first.

    The distribution's FFmpeg and x264 libraries are stripped: perf only knows their exported
    symbols, and stretches a size-less assembly symbol over everything up to the next one (it
    will say x264_8_trellis_coefn for a preset that has no trellis). So inside those libraries only
    the library is named; functions are named in selfcast, libc and the kernel."""
    out = run(["perf", "report", "-i", str(data), "--no-children", "--sort", sort, "--stdio"]).stdout
    totals: dict[str, float] = {}
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        pct, name = line.split(None, 1)
        parts = name.split()
        if "sym" in sort and parts and (parts[0].startswith(("libav", "libsw", "libx264", "libpostproc"))
                                        or parts[-1].startswith("0x")):
            name = f"{parts[0]} (all)"
        else:
            name = " ".join(parts)
        totals[name] = totals.get(name, 0.0) + float(pct.rstrip("%"))
    return sorted(((p, n) for n, p in totals.items()), reverse=True)


def profile(ctx) -> dict:
    """One more fast run of each side under `perf record` (999 Hz, every thread): where the CPU
    goes, by library, by thread and by function; the full reports are kept in target/bench/."""
    result = {}
    short = copy.copy(ctx)
    short.input = cut_input(ctx.input, ctx.work, PROFILE_S)
    for side in ("selfcast", "cli"):
        data = ctx.work / f"perf{ctx.suffix}-{side}.data"
        log(f"profiling {side} (a live run of the first {short.input.duration:.0f} s under perf record)")
        if side == "cli":
            r = run_cli(short, "live", 0, None, perf_out=data)
        else:
            r = run_selfcast(short, "live", 0, None, perf_out=data)
        (ctx.work / f"perf{ctx.suffix}-{side}.txt").write_text(
            run(["perf", "report", "-i", str(data), "--no-children", "--sort", "comm,dso,sym",
                 "--stdio", "--percent-limit", "0.2"]).stdout)
        result[side] = {
            "cpu_per_media_s": r.cpu_per_media_s,
            "missing": r.missing(short.input.frames),
            "media_s": short.input.duration,
            "by_dso": perf_report(data, "dso")[:15],
            "by_thread": perf_report(data, "comm")[:12],
            "by_sym": [x for x in perf_report(data, "dso,sym") if not x[1].endswith("(all)")][:12],
        }
    return result


# ---- The report -------------------------------------------------------------------------------------

def shell_quote(cmd: list[str]) -> str:
    """A command line a person can read and paste: bare words where safe, else single quotes,
    else double quotes (filter graphs with quoted expressions)."""
    out = []
    for c in map(str, cmd):
        if c and all(ch.isalnum() or ch in "-_./:=,+%@" for ch in c):
            out.append(c)
        elif "'" not in c:
            out.append(f"'{c}'")
        elif not any(ch in c for ch in '$`"\\!'):
            out.append(f'"{c}"')
        else:
            out.append(shlex.quote(c))
    return " ".join(out)


def report(ctx, runs: list[Run], qual: dict, x264: dict, prof: dict | None, cg: dict | None,
           started: datetime.datetime, minutes: float) -> str:
    m = ctx.machine
    frames = ctx.input.frames

    def sel(side, mode, valid_only=False):
        return [r for r in runs if r.side == side and r.mode == mode and (not valid_only or r.valid(frames))]

    def pick(side, mode, attr, valid_only=True):
        return [getattr(r, attr) for r in sel(side, mode, valid_only)]

    def lat_all(side, v=None):
        return [x for r in runs if r.side == side and r.mode == "live"
                for var, xs in r.latencies.items() if v is None or var == v for x in xs]

    def cpu_ratio(mode):
        a, b = median(pick("selfcast", mode, "cpu_per_media_s")), median(pick("cli", mode, "cpu_per_media_s"))
        return a / b if a and b else None

    def excluded(mode):
        n = len(sel("selfcast", mode)) - len(sel("selfcast", mode, True))
        return f" ({n} of {len(sel('selfcast', mode))} runs left out: frames dropped)" if n else ""

    where = ("all cores (not pinned)" if ctx.cores is None else "one core" if ctx.cores == 1 else f"{ctx.cores} cores")
    where_pinned = where if ctx.cores is None else f"{where} (`taskset -c {ctx.cpus}`)"
    n_out = frames * len(ctx.variants)
    lines = []
    w = lines.append
    w(f"## {ctx.section}")
    w("")
    if ctx.ladder == "default":
        copied_v = ", ".join(f"`{n}`" for n, h, _, _ in ctx.rungs if h is None)
        w(f"Issue 4: selfcast's default ladder (the `[[video.variants]]` of the shipped `config.toml`: "
          f"{ladder_text(ctx.rungs)}) on {where_pinned}, for a {ctx.input.duration:.0f} s 720p30 H.264/AAC "
          "clip, by (a) selfcast's in-process pipeline and (b) one `ffmpeg` CLI process doing the same work "
          f"the way a self-hosted server spawns it (the source's video copied into {copied_v or 'no rendition'}, "
          "the other renditions scaled and encoded)"
          + (", both pinned to the same CPU(s)" if ctx.cores is not None else "") + ". Goal: \"The default "
          "ladder runs in real time on one core for a 720p30 source. A ladder that the machine cannot keep "
          "up with is reported, not hidden\": selfcast drops frames rather than fall behind, and counts them "
          "(frames not encoded, from `/api/status`); the CLI never drops, it lags (real-time factor below 1, "
          "last segment late).")
    else:
        w(f"Issue 4: the same {ctx.input.duration:.0f} s 720p30 H.264/AAC clip through the same ABR ladder "
          f"({ladder_text(ctx.rungs)}) by (a) selfcast's in-process "
          "pipeline and (b) one `ffmpeg` CLI process doing the same work, the way a self-hosted server "
          "spawns it" + ("" if ctx.cores is None else f", both on {where_pinned}")
          + ". Goal: CPU ratio selfcast / CLI at or below 0.95 at equal quality.")
    w("")
    if ctx.selfcast_variants != "ladder":
        why = ("this selfcast predates `[[video.variants]]`" if ctx.selfcast_variants == "none"
               else "one passthrough variant")
        w(f"**DRY RUN: selfcast ran without the ladder ({why}: the source copied, nothing "
          "transcoded), so its column measures ingest + muxing only and the ratios mean nothing.**")
        w("")
    live_ratio, fast_ratio = cpu_ratio("live"), cpu_ratio("fast")
    live = sel("selfcast", "live")
    if ctx.selfcast_variants == "ladder" and live and (ctx.ladder != "three" or ctx.cores is not None):
        # Did it keep up in real time where it ran: the live runs.
        missing = [r.missing(frames) for r in live]
        kept = all(x == 0 for x in missing) and all(r.ended_by == "every rendition complete" for r in live)
        a, b = median(pick("selfcast", "live", "cpu_per_media_s")), median(pick("cli", "live", "cpu_per_media_s"))
        cli_live = sel("cli", "live")

        def share(x):
            if x is None:
                return "–"
            s = f"{x:.3f} ({x:.0%} of one core"
            return s + (f", {x / ctx.cores:.0%} of the {ctx.cores}" if ctx.cores and ctx.cores > 1 else "") + ")"
        w(f"**selfcast {'kept up' if kept else 'did NOT keep up'} in real time on {where_pinned} with "
          f"{'its default ladder' if ctx.ladder == 'default' else 'this ladder'}: frames not encoded "
          f"{', '.join(str(x) for x in missing)} (of {n_out}) in the {len(live)} live run(s), real-time factor "
          f"{med_spread([r.rtf for r in live], 2)}, last segment listed {med_spread([r.end_lag_s for r in live], 2)} s "
          "after the end of the stream"
          + ("" if kept else "; the dropped frames are counted, not hidden") + ". "
          f"CPU s per media s, live: selfcast {share(a)}, ffmpeg CLI {share(b)}; selfcast / CLI "
          f"{fmt(live_ratio, 2)} live, {fmt(fast_ratio, 2)} at speed (medians). "
          + (f"The CLI on the same CPU(s): real-time factor {med_spread([r.rtf for r in cli_live], 2)}, "
             f"exited {med_spread([r.end_lag_s for r in cli_live], 2)} s after the end of the stream."
             if cli_live else "") + "**")
        w("")
    elif ctx.selfcast_variants == "ladder" and (live_ratio or fast_ratio):
        headline = live_ratio if live_ratio is not None else fast_ratio
        verdict = "met" if headline <= 0.95 else "not met"
        w(f"**CPU ratio selfcast / CLI: {fmt(live_ratio, 2)} with a live (real-time) publisher, "
          f"{fmt(fast_ratio, 2)} at speed (medians); goal ≤ 0.95: {verdict}.**")
        w("")
    w(f"- Run: {started:%Y-%m-%d %H:%M} UTC, {minutes:.0f} min, `{ctx.command_line}`")
    w(f"- Machine: {m['nproc']} × {m['cpu']}, {m['mem_gib']:.0f} GiB, {m['os']} (kernel {m['kernel']}); "
      + (f"shared with other work: load average {min(r.load_before for r in runs):.1f}–"
         f"{max(r.load_after for r in runs):.1f} during the runs" if runs else "shared with other work"))
    if ctx.cores is not None:
        w(f"- Pinned: selfcast and the CLI to CPU {ctx.cpus} (`taskset -c {ctx.cpus}`: every thread, the "
          "encoders' and decoder's thread pools size themselves to it); the publisher (what OBS on another "
          "machine is) and the benchmark's own polling are not pinned"
          + (" and have the other core(s) to themselves." if ctx.cores < m["nproc"] else "."))
    w(f"- Versions: selfcast {ctx.rev}; {ctx.ffmpeg} ({ctx.libs}); libx264 {ctx.x264_deb} "
      f"(core {x264.get('core') or '?'}). Both sides use the same system libavcodec/libswscale/libx264.")
    w(f"- Runs: {ctx.reps} at speed + {ctx.live_reps} live per side, alternating; figures are the median "
      "with (min–max) over the runs. At speed, the CLI reads as fast as it can and selfcast's publisher "
      f"is paced at {PACE_SHARE:.0%} of the speed the CLI reached just before (selfcast drops frames rather "
      "than fall behind, so an unpaced publisher would measure its dropping, not its work).")
    w("")
    w("| | selfcast | ffmpeg CLI | selfcast / CLI |")
    w("|---|---|---|---|")
    for label, mode, attr, d in (
        ("CPU s per media s, live (publisher in real time)" + excluded("live"), "live", "cpu_per_media_s", 3),
        ("CPU s per media s, at speed" + excluded("fast"), "fast", "cpu_per_media_s", 3),
    ):
        a, b = pick("selfcast", mode, attr), pick("cli", mode, attr)
        w(f"| {label} | {med_spread(a, d)} | {med_spread(b, d)} | {ratio(median(a), median(b))} |")
    kept = [r.pace for r in sel("selfcast", "fast", True)]
    behind = [f"{r.missing(frames)} frames not encoded at {r.pace:.2f}x" for r in sel("selfcast", "fast")
              if not r.valid(frames)]
    cell = (f"kept up with a publisher at {', '.join(f'{p:.2f}x' for p in kept)}" if kept else "")
    cell += ("; " if kept and behind else "") + (f"fell behind: {', '.join(behind)}" if behind else "")
    w(f"| real-time factor at speed (media s / wall s) | {cell or '–'} | {med_spread(pick('cli', 'fast', 'rtf'), 2)} "
      "| – |")
    w(f"| real-time factor, live (media s / wall s to the last segment) | "
      f"{med_spread(pick('selfcast', 'live', 'rtf', False), 2)} | {med_spread(pick('cli', 'live', 'rtf', False), 2)} | – |")
    w(f"| last segment after the end of the stream, live, s | "
      f"{med_spread(pick('selfcast', 'live', 'end_lag_s', False), 2)} | "
      f"{med_spread(pick('cli', 'live', 'end_lag_s', False), 2)} | – |")
    for mode in ("live", "fast"):
        a, b = pick("selfcast", mode, "peak_rss_mib", False), pick("cli", mode, "peak_rss_mib")
        w(f"| peak RSS MiB, {'live' if mode == 'live' else 'at speed'} | {med_spread(a, 0)} | "
          f"{med_spread(b, 0)} | {ratio(median(a), median(b))} |")
    a, b = lat_all("selfcast"), lat_all("cli")
    w(f"| latency p50 / p95 s, packet in → segment listed ({len(a)} / {len(b)} segments, all renditions) | "
      f"{fmt(percentile(a, 50), 2)} / {fmt(percentile(a, 95), 2)} | "
      f"{fmt(percentile(b, 50), 2)} / {fmt(percentile(b, 95), 2)} | "
      f"{ratio(percentile(a, 50), percentile(b, 50))} / {ratio(percentile(a, 95), percentile(b, 95))} |")
    w(f"| frames not encoded, of {n_out} per run: live runs; at speed | "
      f"{' '.join(str(r.missing(frames)) for r in sel('selfcast', 'live'))}; "
      f"{' '.join(str(r.missing(frames)) for r in sel('selfcast', 'fast'))} | 0 (it lags instead) | |")
    for v in ctx.variants:
        qa, qb = qual.get("selfcast", {}).get(v), qual.get("cli", {}).get(_cli_name(ctx, v))
        if qa is None and qb is None:
            continue
        def q(x, key, d):
            return "–" if x is None else f"{x[key]:.{d}f}"
        label = v if _cli_name(ctx, v) == v else f"{v} vs CLI {_cli_name(ctx, v)}"
        w(f"| {label}: PSNR dB (Y / avg) | {q(qa, 'psnr_y', 2)} / {q(qa, 'psnr_avg', 2)} | "
          f"{q(qb, 'psnr_y', 2)} / {q(qb, 'psnr_avg', 2)} | |")
        w(f"| {label}: SSIM (Y / all) | {q(qa, 'ssim_y', 4)} / {q(qa, 'ssim_all', 4)} | "
          f"{q(qb, 'ssim_y', 4)} / {q(qb, 'ssim_all', 4)} | |")
        def size(x):
            return "–" if x is None else f"{x['frames']}, {x['width']}x{x['height']}"
        w(f"| {label}: frames compared (of {frames}), size | {size(qa)} | {size(qb)} | |")
    w("")
    # Latency per rendition.
    w("Latency per rendition, s (p50 / p95 / max over the live runs):")
    w("")
    w("| rendition | selfcast | ffmpeg CLI |")
    w("|---|---|---|")
    for v in ctx.variants:
        a, b = lat_all("selfcast", v), lat_all("cli", _cli_name(ctx, v))
        def trio(xs):
            return "–" if not xs else f"{percentile(xs, 50):.2f} / {percentile(xs, 95):.2f} / {max(xs):.2f}"
        w(f"| {v} | {trio(a)} | {trio(b)} |")
    w("")
    # x264 settings as the encoders wrote them into the stream (SEI user data).
    same, differ = [], []
    for v in ctx.variants:
        if copied(ctx, v):
            continue
        a, b = x264.get("selfcast", {}).get(v), x264.get("cli", {}).get(_cli_name(ctx, v))
        if a is None and b is None:
            continue
        (same if a == b else differ).append((v, a, b))
    if same:
        w(f"x264 settings (the options each encoder wrote into its stream): identical for "
          f"{', '.join(v for v, _, _ in same)}, e.g. {same[0][0]}: `{same[0][1]}`")
        w("")
    for v, a, b in differ:
        w(f"x264 settings of {v} differ (the options each encoder wrote into its stream; "
          f"{'selfcast: none found' if not a else 'CLI: none found' if not b else 'only the differences'}):")
        w("")
        if a and b:
            da, db = dict(_kv(a)), dict(_kv(b))
            w("| option | selfcast | ffmpeg CLI |")
            w("|---|---|---|")
            for k in sorted(set(da) | set(db)):
                if da.get(k) != db.get(k):
                    w(f"| {k} | {da.get(k, '–')} | {db.get(k, '–')} |")
            w("")
        w(f"CLI {_cli_name(ctx, v)}: `{b}`")
        w("")
    if prof:
        miss = prof["selfcast"].get("missing")
        w(f"Where the CPU goes (`perf record -F 999` on one more live run of each side, the first "
          f"{prof['selfcast'].get('media_s', ctx.input.duration):.0f} s of the clip; CPU s per media s "
          "attributed to each library by its share of the samples"
          + (f"; selfcast left {miss} frames unencoded in that run, so its column is that much less work"
             if miss else "") + "):")
        w("")
        w("| library | selfcast | ffmpeg CLI |")
        w("|---|---|---|")
        libs = []
        for side in ("selfcast", "cli"):
            for _, name in prof[side]["by_dso"]:
                if name not in libs:
                    libs.append(name)
        for lib in libs[:14]:
            cells = []
            for side in ("selfcast", "cli"):
                pct = dict((n, p) for p, n in prof[side]["by_dso"]).get(lib)
                cells.append("–" if pct is None else f"{pct * prof[side]['cpu_per_media_s'] / 100:.3f} ({pct:.1f}%)")
            w(f"| {_lib(lib)} | {cells[0]} | {cells[1]} |")
        w("")
        for side in ("selfcast", "cli"):
            if side == "selfcast":   # the CLI's threads are unnamed
                w(f"- {side}, by thread: " + "; ".join(f"{n} {p:.1f}%" for p, n in prof[side]["by_thread"]))
            w(f"- {side}, top functions outside the FFmpeg/x264 libraries (stripped: only the library "
              "is known there): " + "; ".join(f"`{n.replace('selfcast-under-test', 'selfcast')}` {p:.1f}%"
                                                for p, n in prof[side]["by_sym"]))
        w("")
        w(f"Full profiles: `target/bench/perf{ctx.suffix}-selfcast.txt`, `target/bench/perf{ctx.suffix}-cli.txt` "
          "(by thread, library, function).")
        w("")
    if cg:
        a, b = cg["selfcast"]["by_object"], cg["cli"]["by_object"]
        ta, tb = sum(a.values()), sum(b.values())
        w(f"Instructions executed (callgrind, user space only, from the stream's start: a {cg['clip_seconds']} s "
          f"clip through the same ladder; selfcast {cg['rev']}). Unlike CPU seconds these do not move with "
          "the machine's load; what they leave out is the kernel, cache misses and waiting"
          + (f". selfcast encoded {cg['selfcast']['frames_out']} of {cg['selfcast']['frames_expected']} frames "
             "(it dropped some even at the slow pace under valgrind), so its column is that much less work"
             if cg["selfcast"].get("frames_out", 0) < (cg["selfcast"].get("frames_expected") or 0) else "")
          + ":")
        w("")
        w("| library | selfcast, G instructions | ffmpeg CLI, G instructions | selfcast / CLI |")
        w("|---|---|---|---|")
        libs = sorted(set(a) | set(b), key=lambda k: -(a.get(k, 0) + b.get(k, 0)))
        shown = [k for k in libs if (a.get(k, 0) + b.get(k, 0)) >= 0.0005 * (ta + tb)]
        for k in shown:
            w(f"| {_lib(k)} | {a.get(k, 0) / 1e9:.3f} | {b.get(k, 0) / 1e9:.3f} | {ratio(a.get(k), b.get(k), 3)} |")
        rest_a = sum(v for k, v in a.items() if k not in shown)
        rest_b = sum(v for k, v in b.items() if k not in shown)
        w(f"| everything else | {rest_a / 1e9:.3f} | {rest_b / 1e9:.3f} | |")
        w(f"| **total** | **{ta / 1e9:.3f}** | **{tb / 1e9:.3f}** | **{ratio(ta, tb, 3)}** |")
        w("")
    # Method and commands.
    w("### How it was measured")
    w("")
    w("- Input (generated once, cached in `target/bench/`): a Mandelbrot zoom with a moving testsrc2 panel "
      "and temporal grain (detail and motion everywhere, hard to encode), x264 veryfast 4500 kbps with "
      f"B-frames and {SEGMENT_S} s closed GOPs, AAC 128 kbps; {ctx.input.frames} frames:")
    w("")
    w("  ```sh")
    w("  " + shell_quote(ctx.input.command).replace(str(REPO) + "/", ""))
    w("  ```")
    w("- Publisher, both sides, the same FLV stream (live runs add `-re -debug_ts`; selfcast's runs at speed "
      "add `-readrate R`): to selfcast over RTMP, to the CLI on its stdin:")
    w("")
    w("  ```sh")
    w("  ffmpeg -i input.mp4 -map 0:v:0 -map 0:a:0 -c copy -f flv -flush_packets 1 "
      "rtmp://127.0.0.1:PORT/live/KEY   # or pipe:1 | the CLI")
    w("  ```")
    pin = "" if not ctx.pin else shell_quote(ctx.pin) + " "
    w(f"- (a) selfcast, `{pin}target/release/selfcast --config config.toml` with:")
    w("")
    w("  ```toml")
    for line in selfcast_config(Path("DATA_DIR"), 0, 0, ctx.selfcast_variants, ctx.rungs).strip().splitlines()[1:]:
        w("  " + line.replace("127.0.0.1:0", "127.0.0.1:PORT"))
    w("  ```")
    w("- (b) the ffmpeg CLI:")
    w("")
    w("  ```sh")
    w("  " + shell_quote([*ctx.pin, *cli_command(Path("OUT"), ctx.rungs)]))
    w("  ```")
    w("- CPU: selfcast: utime+stime of the server process from `/proc/PID/stat`, from the publisher's start "
      "to the last segment listed, minus the server's idle rate × that time (measured for 2 s before "
      "publishing while being polled as during the run, so answering the benchmark's own playlist polls "
      "is not counted: the CLI's playlists are files); CLI: `wait4()` rusage of the process. The publisher "
      "is not counted on either side. CPU s per media s = CPU s / media duration.")
    w("- Real-time factor: media duration / wall time from the publisher's start until every rendition's "
      "last segment is listed (selfcast, playlists polled every 50 ms) or the CLI has exited. selfcast's "
      "is that of a paced publisher: it shows that selfcast kept up at that speed (see frames not "
      "encoded), not how much faster it could go.")
    w("- Frames not encoded: per run, the source's frames × renditions minus the `framesOut` of each "
      "variant in `/api/status`. A selfcast run that left out more than 1% did less work than the CLI "
      "and is left out of the CPU medians (it is still listed below).")
    w("- Peak RSS: `VmHWM` of the server (`/proc/PID/status`) at the end of the run; `ru_maxrss` of the CLI.")
    w("- Latency (live runs): the publisher runs with `-re -debug_ts`; its `muxer <-` line for each video packet "
      "is timestamped when read (the packet is written right after, `-flush_packets 1`). A segment's "
      "closing packet is the source keyframe where it ends (the running EXTINF sum, snapped to the "
      "nearest keyframe); its listed time is the first 50 ms poll of the playlist (selfcast over HTTP, the "
      "CLI's file) that shows it. The last segment (closed by the end of the stream) is left out. "
      "Resolution about +0–70 ms.")
    w("- Quality: each transcoded rendition's init + segments from the first live run, joined, against the source scaled to "
      "the rendition's size (bicubic), each frame paired with the source frame at the same time from the "
      "start (in frame units, so a dropped frame does not shift the rest); PSNR is ffmpeg's average (from "
      "the mean squared error), SSIM ffmpeg's All/Y:")
    w("")
    w("  ```sh")
    if qual.get("cli"):
        cmd = next(iter(qual["cli"].values()))["command"]
        w("  " + shell_quote(cmd).replace(str(ctx.work) + "/", "target/bench/").replace(str(REPO) + "/", ""))
    w("  ```")
    w("")
    w("Every run:")
    w("")
    w("| side | mode | rep | publisher pace | CPU s | CPU s / media s | idle CPU/s | wall s | RTF | "
      "peak RSS MiB | frames out per rendition | packets dropped at ingest | segments | load before→after | "
      "ended by |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        pace = "unpaced" if r.pace is None else "real time" if r.pace == 1.0 else f"{r.pace:.2f}x"
        out = " ".join(str(n) for n in r.frames_out.values()) if r.frames_out else "–"
        w(f"| {r.side} | {r.mode} | {r.rep} | {pace} | {r.cpu_s:.2f} | {r.cpu_per_media_s:.3f} | "
          f"{fmt(r.idle_cpu_per_s, 4)} | {r.wall_s:.2f} | {r.rtf:.2f} | {r.peak_rss_mib:.0f} | {out} | "
          f"{'–' if r.dropped is None else r.dropped} | "
          f"{' '.join(str(n) for n in r.segments.values())} | {r.load_before:.1f}→{r.load_after:.1f} | "
          f"{r.ended_by} |")
    notes = [n for r in runs for n in r.notes]
    if notes:
        w("")
        w("Notes: " + " ".join(sorted(set(notes))))
    w("")
    w(f"Raw figures: `target/bench/transcode{ctx.suffix}-results.json`.")
    return "\n".join(lines) + "\n"


def measure(ctx, runs: list, side: str, mode: str, rep: int, keep: Path | None, pace: float | None = None) -> Run:
    """One run, logged and added to `runs`."""
    log(f"{side} {mode} run {rep}" + (f" (publisher paced at {pace:.2f}x real time)" if pace else ""))
    if side == "selfcast":
        r = run_selfcast(ctx, mode, rep, keep, pace=pace)
    else:
        r = run_cli(ctx, mode, rep, keep)
    lat = [x for xs in r.latencies.values() for x in xs]
    missing = r.missing(ctx.input.frames)
    log(f"  {r.cpu_s:.2f} CPU s = {r.cpu_per_media_s:.3f} per media s, RTF {r.rtf:.2f}, "
        f"peak RSS {r.peak_rss_mib:.0f} MiB, segments {r.segments}"
        + (f", frames out {r.frames_out}" if r.frames_out else "")
        + (f", {missing} frames not encoded" if missing else "")
        + (f", {r.dropped} packets dropped at ingest" if r.dropped else "")
        + (f", latency p50 {percentile(lat, 50):.3f} s" if lat else ""))
    runs.append(r)
    return r


def _lib(name: str) -> str:
    """A library name as the report shows it (the measured binary is a copy named selfcast-under-test)."""
    return "selfcast" if name == "selfcast-under-test" else name


def _kv(opts: str | None):
    return [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in (opts or "").split()]


def _cli_name(ctx, v: str) -> str:
    """The CLI rendition to compare with selfcast's `v` (in a dry run of a ladder without a
    source rung, the source vs the first transcoded rendition, 720p)."""
    return v if v in [r[0] for r in ctx.rungs] else transcoded(ctx.rungs)[0][0]


def copied(ctx, v: str) -> bool:
    """Whether rendition `v` is the source's video copied (no quality or x264 settings to compare)."""
    return any(name == v and height is None for name, height, _, _ in ctx.rungs)


# ---- Main ---------------------------------------------------------------------------------------------

class Ctx:
    pass


def main() -> int:
    ap = argparse.ArgumentParser(prog="ci/bench transcode", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "selfcast")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench")
    ap.add_argument("--duration", type=int, default=60, help="input length, s (default 60)")
    ap.add_argument("--reps", type=int, default=3, help="fast runs per side (default 3)")
    ap.add_argument("--live-reps", type=int, default=None, help="live runs per side (default: --reps)")
    ap.add_argument("--passthrough", action="store_true",
                    help="dry run: selfcast copies the source (no ladder) to test the plumbing")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="perf profiles of both sides: when the CPU ratio is above 1.0 (auto), always, never")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count each side's instructions under callgrind on a 2 s clip (~5 min); "
                         "kept in target/bench/ and reported while the binary stays the same")
    ap.add_argument("--ladder", choices=LADDER_CHOICES, default="three",
                    help="three: 720p/480p/360p (default); default: the [[video.variants]] of the shipped "
                         "config.toml (the source copied + 480p), in its own section of the report")
    ap.add_argument("--cores", type=int, default=None,
                    help="pin selfcast and the CLI to the first N CPUs (taskset; default: not pinned); "
                         "the publisher is not pinned")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rewrite the section from the last run's saved results "
                         "(target/bench/transcode[-LADDER][-Ncore]-results.json)")
    args = ap.parse_args()
    section, suffix = bench_names(args.ladder, args.cores)
    results = args.work.resolve() / f"transcode{suffix}-results.json"
    if args.report_only:
        return report_only(results, args.out, args.work.resolve())

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    started = datetime.datetime.now(datetime.timezone.utc)
    t_started = time.monotonic()
    ctx = Ctx()
    ctx.binary = args.bin.resolve()
    ctx.work = args.work.resolve()
    ctx.work.mkdir(parents=True, exist_ok=True)
    ctx.reps = args.reps
    ctx.live_reps = args.reps if args.live_reps is None else args.live_reps
    ctx.command_line = os.environ.get("BENCH_COMMAND_LINE") or shell_quote(
        ["python3", *[str(Path(a).resolve().relative_to(REPO)) if Path(a).is_absolute() and Path(a).resolve().is_relative_to(REPO)
                      else a for a in sys.argv]])
    ctx.ladder, ctx.cores, ctx.section, ctx.suffix = args.ladder, args.cores, section, suffix
    try:
        ctx.rungs = load_ladder(args.ladder)
        ctx.cpus = cpu_list(args.cores)
    except (BenchError, OSError, ValueError, KeyError) as e:
        log(f"--ladder {args.ladder} --cores {args.cores}: {e}")
        return 2
    ctx.pin = [] if ctx.cpus is None else ["taskset", "-c", ctx.cpus]
    if ctx.pin and not shutil.which("taskset"):
        log("--cores needs taskset (util-linux)")
        return 2
    ctx.timeout = lambda mode: (ctx.input.duration * (6 if mode == "fast" else 3)) + 60
    if not ctx.binary.exists():
        log(f"selfcast binary not found: {ctx.binary} (cargo build --release --locked)")
        return 2

    # Measure a copy: a rebuild during the run (cargo in another terminal) must not change what
    # is measured halfway.
    ctx.rev = git_rev()
    snapshot = ctx.work / "selfcast-under-test"
    shutil.copy2(ctx.binary, snapshot)
    ctx.binary_origin, ctx.binary = ctx.binary, snapshot
    ctx.binary_sha256 = callgrind.file_sha256(snapshot)

    ctx.input = make_input(ctx.work, args.duration)
    log(f"input: {ctx.input.path.name}, {ctx.input.frames} frames, {len(ctx.input.keyframes)} keyframes")

    supported, why = supports_variants(ctx.binary, ctx.work, ctx.rungs)
    if args.passthrough:
        ctx.selfcast_variants = "passthrough" if supported else "none"
    elif supported:
        ctx.selfcast_variants = "ladder"
    else:
        log("this selfcast does not accept [[video.variants]] yet (the transcode pipeline is not in):\n"
            + why + "\nrun with --passthrough for a dry run of the plumbing")
        return 3
    ctx.variants = ladder_names(ctx.selfcast_variants != "ladder", ctx.rungs)
    log(f"selfcast: {ctx.binary_origin} at {ctx.rev} ({ctx.selfcast_variants}); renditions {', '.join(ctx.variants)}"
        f"; ladder {args.ladder} ({ladder_text(ctx.rungs)})"
        + (f"; selfcast and the CLI pinned to CPU {ctx.cpus}" if ctx.cpus is not None else ""))

    ctx.machine = machine_facts()
    ctx.ffmpeg = ffmpeg_version()
    ctx.libs = ffmpeg_libs()
    ctx.x264_deb = deb_version("libx264-164") or "?"

    runs: list[Run] = []
    keep = {"selfcast": ctx.work / f"out{suffix}" / "selfcast", "cli": ctx.work / f"out{suffix}" / "cli"}
    for d in keep.values():
        shutil.rmtree(d, ignore_errors=True)
    try:
        for rep in range(1, max(ctx.reps, ctx.live_reps) + 1):
            # Fast: the CLI first, as fast as it goes; then selfcast with the publisher paced at
            # PACE_SHARE of the speed the CLI just reached (selfcast drops frames rather than
            # falling behind, so unpaced it would measure its dropping, not its speed).
            # Live: both in real time, the side that goes first alternating.
            if rep <= ctx.reps:
                cli_run = measure(ctx, runs, "cli", "fast", rep, None)
                measure(ctx, runs, "selfcast", "fast", rep, None, pace=PACE_SHARE * cli_run.rtf)
            if rep <= ctx.live_reps:
                for side in (["selfcast", "cli"] if rep % 2 == 1 else ["cli", "selfcast"]):
                    measure(ctx, runs, side, "live", rep, keep[side] if rep == 1 else None)

        log("quality (PSNR, SSIM) of the first live run's renditions")
        qual, x264 = {"selfcast": {}, "cli": {}}, {"selfcast": {}, "cli": {}}
        for side, names in (("selfcast", ctx.variants), ("cli", [r[0] for r in ctx.rungs])):
            for v in names:
                f = keep[side] / f"{v}.mp4"
                if copied(ctx, v) or not f.exists():
                    continue
                qual[side][v] = quality(f, ctx.input.path, FPS)
                x264[side][v] = x264_options(f)
                x264["core"] = x264["core"] if x264.get("core") else x264_core(f)
                q = qual[side][v]
                log(f"  {side} {v}: PSNR Y {q['psnr_y']:.2f} dB, SSIM Y {q['ssim_y']:.4f}, {q['frames']} frames")

        cg_file = ctx.work / f"callgrind{'' if args.ladder == 'three' else '-' + args.ladder}-results.json"
        if args.callgrind:
            # callgrind.measure uses Server, Publisher and cli_command of this module: with this ladder.
            tc = types.SimpleNamespace(Server=functools.partial(Server, rungs=ctx.rungs), Publisher=Publisher,
                                       cli_command=lambda out: cli_command(out, ctx.rungs))
            cg = callgrind.measure(ctx, tc)
            cg_file.write_text(json.dumps(cg, indent=1))
        cg = json.loads(cg_file.read_text()) if cg_file.exists() else None
        if cg is not None and cg.get("binary_sha256") != ctx.binary_sha256:
            log(f"{cg_file.name} is for another binary: left out (run with --callgrind)")
            cg = None

        prof = None
        def cpu(side, mode):
            return median([r.cpu_per_media_s for r in runs
                           if r.side == side and r.mode == mode and r.valid(ctx.input.frames)])
        ratios = [cpu("selfcast", m) / cpu("cli", m) for m in ("live", "fast") if cpu("selfcast", m) and cpu("cli", m)]
        if args.profile == "always" or (args.profile == "auto" and ctx.selfcast_variants == "ladder"
                                        and ratios and ratios[0] > 1.0):
            prof = profile(ctx)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1

    minutes = (time.monotonic() - t_started) / 60
    saved = {
        "started": started.isoformat(), "minutes": minutes,
        "ctx": {k: getattr(ctx, k) for k in CTX_SAVED},
        "input": {**asdict(ctx.input), "path": str(ctx.input.path)},
        "runs": [asdict(r) for r in runs],
        "quality": qual, "x264": x264, "profile": prof, "callgrind": cg,
    }
    results.write_text(json.dumps(saved, indent=1, default=str))
    write_section(args.out, ctx.section, report(ctx, runs, qual, x264, prof, cg, started, minutes))
    log(f"wrote the section '## {ctx.section}' of {args.out} ({minutes:.1f} min)")
    return 0


# What report() needs from the context, saved with the results so --report-only can rewrite the
# section (after a change to the report's layout) without measuring again.
CTX_SAVED = ("selfcast_variants", "variants", "reps", "live_reps", "command_line", "machine", "rev",
             "ffmpeg", "libs", "x264_deb", "ladder", "rungs", "cores", "cpus", "pin", "section", "suffix")


def report_only(results: Path, out: Path, work: Path) -> int:
    if not results.exists():
        log(f"no saved results: {results} (run the benchmark with the same --ladder and --cores first)")
        return 2
    saved = json.loads(results.read_text())
    ctx = Ctx()
    ctx.work = work
    # Results saved before --ladder and --cores: today's ladder, not pinned.
    ctx.ladder, ctx.rungs, ctx.cores, ctx.cpus, ctx.pin = "three", LADDER_THREE, None, None, []
    ctx.section, ctx.suffix = bench_names("three", None)
    for k, v in saved["ctx"].items():
        setattr(ctx, k, v)
    ctx.rungs = [tuple(r) for r in ctx.rungs]
    i = saved["input"]
    ctx.input = Input(Path(i["path"]), i["command"], i["duration"], i["frames"], i["keyframes"])
    runs = [Run(**r) for r in saved["runs"]]
    started = datetime.datetime.fromisoformat(saved["started"])
    write_section(out, ctx.section, report(ctx, runs, saved["quality"], saved["x264"], saved["profile"],
                                           saved.get("callgrind"), started, saved["minutes"]))
    log(f"rewrote the section '## {ctx.section}' of {out} from {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
