"""Run every benchmark script in this folder (bench_*.py), seeded, one after the other, and print
a summary: the exit status and wall time of each, and the lines each prints about its targets.

    python benchmarks/run_all.py                         # seed 7, every script's defaults
    python benchmarks/run_all.py --seed 7 --only load,estate --pass estate="--sizes 1000,5000"

Each script receives ``--seed SEED`` when it takes one (bench_parse reads a fixed corpus and has no
seed); ``--pass NAME="ARGS"`` adds arguments to one script.  Output of each script is kept in
--log-dir (default: $TMPDIR/iam-reasoner-bench/logs) and its last lines are echoed.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

KEYS = re.compile(r"target|MET|ratio|SUMMARY|median|peak|memory|escalations:|PMapper|verdicts", re.I)


def scripts() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def takes_seed(script: Path) -> bool:
    return '"--seed"' in script.read_text(encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default=None, help="comma-separated names (parse, simulate, load, estate)")
    ap.add_argument("--pass", dest="passes", action="append", default=[], metavar='NAME="ARGS"', help="extra arguments for one script")
    ap.add_argument("--log-dir", default=str(Path(tempfile.gettempdir()) / "iam-reasoner-bench" / "logs"))
    a = ap.parse_args(argv)
    extra = {}
    for p in a.passes:
        name, _, args = p.partition("=")
        extra[name.strip()] = shlex.split(args)
    only = set(a.only.split(",")) if a.only else None
    logs = Path(a.log_dir)
    logs.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    rows = []
    for s in scripts():
        name = s.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        cmd = [sys.executable, str(s)] + (["--seed", str(a.seed)] if takes_seed(s) else []) + extra.get(name, [])
        print(f"\n### {' '.join(shlex.quote(c) for c in cmd[1:])}", flush=True)
        log = logs / f"{name}.log"
        t = time.perf_counter()
        with open(log, "w") as fh:
            p = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent)
        wall = time.perf_counter() - t
        text = log.read_text()
        keep = [x for x in text.splitlines() if KEYS.search(x) and not x.startswith("SUMMARY")]
        for x in keep[-25:]:
            print("  " + x[:300])
        rows.append((name, p.returncode, wall, log))
    print("\n### summary")
    for name, rc, wall, log in rows:
        print(f"  {name:10s} exit {rc}  {wall:8.1f} s  log {log}")
    return 0 if all(rc == 0 for _, rc, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
