"""Timing and peak-memory helpers shared by the benchmarks.

Each benchmark runs its measurement in fresh processes (cold: nothing imported, nothing cached)
and reports the median and the best of them, in wall-clock and in CPU seconds (this machine may
be shared: CPU time is the steadier figure)."""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


class Stopwatch:
    """Named stages, each timed in wall-clock and CPU seconds: ``with sw.stage("decode"): ...``."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def children_peak_rss_mb() -> float:
    """Peak resident memory of the largest child process this process has waited for (the
    forked processes that decide large chunks of requests), in MiB."""
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def pss_mb(pid: int) -> Optional[float]:
    """A process's proportional set size in MiB (a page shared by n processes, as a forked child
    shares its parent's, counts 1/n in each); None where /proc/PID/smaps_rollup cannot be read
    (the process is gone, or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def tree_pss_mb(pid: int) -> Optional[float]:
    """Memory in use by a process and all its descendants together, in MiB: the sum of their
    :func:`pss_mb`.  None where none can be read (not Linux)."""
    got = [v for v in map(pss_mb, _descendants(pid)) if v is not None]
    return sum(got) if got else None


class TreeMemory:
    """Samples :func:`tree_pss_mb` of a process every ``every`` seconds in a thread, keeping the
    largest: ``with TreeMemory(pid) as m: ...; m.peak_mb``."""

    def __init__(self, pid: int, every: float = 0.5):
        self.pid, self.every = pid, every
        self.peak_mb: Optional[float] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            got = tree_pss_mb(self.pid)
            if got is not None and (self.peak_mb is None or got > self.peak_mb):
                self.peak_mb = got
            self._stop.wait(self.every)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_fresh(script: Path, args: list[str], runs: int) -> list[dict]:
    """Run ``script --child ARGS`` in ``runs`` fresh interpreters; each prints one JSON object."""
    out = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, str(script), "--child", *args], capture_output=True, text=True, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def summarize(results: list[dict], clock: str) -> dict[str, tuple[float, float]]:
    """stage -> (median, best) over the runs, for ``clock`` ("wall" or "cpu")."""
    stages = results[0][clock].keys()
    return {s: (statistics.median(r[clock][s] for r in results), min(r[clock][s] for r in results)) for s in stages}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load %.2f" % os.getloadavg()[0]
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}, {date.today().isoformat()}, {load}"
