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
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

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
