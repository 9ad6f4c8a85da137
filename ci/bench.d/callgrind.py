"""ci/bench.d/callgrind.py — the transcode benchmark's work count: instructions, not seconds.

CPU seconds on a small shared machine move by ±5% from run to run with the neighbours' load;
the number of instructions a program executes does not. This runs a short clip (2 s: one GOP)
through both sides under `valgrind --tool=callgrind` and counts the user-space instructions
each executes from the moment the stream starts (start-up and library loading are left out:
the counters are zeroed once the process is idle, waiting for the stream), by library.

What it cannot see, by design: time in the kernel (thread switches, futex wake-ups, page
faults), cache misses and waiting. So equal instruction counts with unequal CPU seconds point
at those: how the work is spread over threads, not how much of it there is.

Used by transcode.py (`ci/bench transcode --callgrind`); the results are cached in
target/bench/callgrind-results.json with the sha256 of the selfcast binary they belong to.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from benchlib import BenchError, cpu_seconds, log, probe_video, run, stop_process

CLIP_SECONDS = 2
RATE = 0.02            # publisher pace (x real time): callgrind runs code ~50-100x slower
VALGRIND = ["valgrind", "--tool=callgrind", "--fair-sched=yes"]   # fair: no thread starves
SETTLE_S = 2.0         # a process whose CPU time has not moved for this long is waiting


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def self_cost_by_object(path: Path) -> dict[str, int]:
    """Self cost (Ir) per object file (ob=) in a callgrind output file.

    The format (valgrind's docs, "Callgrind Format Specification"): `ob=`/`fn=` set the current
    object and function, names compressed as "(id) name" the first time and "(id)" after;
    a line starting with a digit, '+', '-' or '*' is a cost line "position cost"; the cost line
    right after a `calls=` line is the inclusive cost of that call, not self cost: skipped."""
    names: dict[str, str] = {}

    def name(rest: str) -> str:
        m = re.match(r"\((\d+)\)(?: (.*))?", rest)
        if not m:
            return rest
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), "?")

    costs: collections.Counter = collections.Counter()
    ob, skip = "?", False
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                if skip:
                    skip = False
                    continue
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    costs[ob] += int(parts[1])
            elif line.startswith("ob="):
                ob = name(line[3:].strip())
            elif line.startswith("cob="):
                name(line[4:].strip())          # defines a name for later use
            elif line.startswith("calls="):
                skip = True
    return {Path(k).name if k not in ("?", "???") else "(unknown)": v for k, v in costs.items()}


def wait_idle(pid: int, timeout_s: float) -> None:
    """Until the process's CPU time has stood still for SETTLE_S (it waits for the stream)."""
    deadline = time.monotonic() + timeout_s
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        now_cpu = cpu_seconds(pid)
        if now_cpu != last:
            last, since = now_cpu, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S:
            return
        time.sleep(0.25)
    raise BenchError(f"pid {pid} did not go idle within {timeout_s:.0f} s")


def zero(pid: int) -> None:
    run(["callgrind_control", "-z", str(pid)])


def make_clip(work: Path, source: Path) -> Path:
    clip = work / f"callgrind-clip-{CLIP_SECONDS}s-{source.stem}.mp4"
    if not clip.exists():
        tmp = clip.with_name(clip.stem + ".tmp.mp4")
        run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source),
             "-t", str(CLIP_SECONDS), "-c", "copy", str(tmp)])
        tmp.replace(clip)
    return clip


def measure(ctx, tc) -> dict:
    """Both sides under callgrind on the short clip; `tc` is the transcode module (Server,
    Publisher, cli_command, ...)."""
    work = ctx.work / "callgrind"
    work.mkdir(parents=True, exist_ok=True)
    clip = make_clip(ctx.work, ctx.input.path)
    out = {}

    # (a) selfcast: zero once it waits for a publisher, dump once every frame is out.
    log(f"callgrind: selfcast on a {CLIP_SECONDS} s clip (publisher at {RATE}x real time; a few minutes)")
    for old in work.glob("selfcast.out*"):
        old.unlink()
    rundir = work / "selfcast"
    rundir.mkdir(exist_ok=True)
    cg_out = work / "selfcast.out"
    server = tc.Server(ctx.binary, rundir, ctx.selfcast_variants,
                       wrapper=[*VALGRIND, f"--callgrind-out-file={cg_out}"])
    try:
        server.wait_ready(timeout_s=180)
        wait_idle(server.pid, 120)
        zero(server.pid)
        publisher = tc.Publisher(clip, server.rtmp_url, RATE)
        frames_expected = None
        deadline = time.monotonic() + CLIP_SECONDS / RATE * 4 + 300
        last_total, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(2)
            if publisher.result() not in (None, 0):
                raise BenchError(publisher.error())
            variants = server.status().get("variants", [])
            total = sum(int(v.get("framesOut", 0)) for v in variants)
            if total != last_total:
                last_total, last_change = total, time.monotonic()
            if publisher.result() == 0:
                if frames_expected is None:
                    frames_expected = probe_video(clip)["frames"] * len(variants)
                if total >= frames_expected or time.monotonic() - last_change > 60:
                    break
        else:
            raise BenchError("callgrind: selfcast did not finish the clip in time")
        run(["callgrind_control", "-d", str(server.pid)])
        dumps = sorted(work.glob("selfcast.out.*"))
        if not dumps:
            raise BenchError("callgrind: no dump from selfcast")
        out["selfcast"] = {"by_object": self_cost_by_object(dumps[-1]), "frames_out": total,
                           "frames_expected": frames_expected}
        if total < frames_expected:
            log(f"callgrind: selfcast encoded {total} of {frames_expected} frames (it dropped some even "
                "at this pace): its count is that much less work")
    finally:
        server.stop()

    # (b) the CLI: zero once it waits on its stdin, count until it exits.
    log("callgrind: the ffmpeg CLI on the same clip")
    cg_out = work / "cli.out"
    for old in work.glob("cli.out*"):
        old.unlink()
    hls = work / "cli-hls"
    subprocess.run(["rm", "-rf", str(hls)], check=False)
    hls.mkdir()
    read_end, write_end = os.pipe()
    with open(work / "cli.log", "wb") as logf:
        cli = subprocess.Popen([*VALGRIND, f"--callgrind-out-file={cg_out}",
                                *tc.cli_command(hls)], stdin=read_end, stdout=subprocess.DEVNULL, stderr=logf)
    os.close(read_end)
    try:
        wait_idle(cli.pid, 180)
        zero(cli.pid)
        publisher = tc.Publisher(clip, "pipe:1", RATE, stdout=write_end)
        os.close(write_end)
        write_end = None
        cli.wait(timeout=CLIP_SECONDS / RATE * 4 + 300)
        if cli.returncode != 0:
            raise BenchError(f"callgrind: the CLI exited {cli.returncode} (see {work / 'cli.log'})")
        out["cli"] = {"by_object": self_cost_by_object(cg_out)}
    finally:
        if write_end is not None:
            os.close(write_end)
        stop_process(cli)
    out["clip_seconds"] = CLIP_SECONDS
    out["binary_sha256"] = ctx.binary_sha256
    out["rev"] = ctx.rev
    return out
