"""Simulate throughput: 5,000 estate-shaped requests in one batch, ours beside the oracle's.

    python benchmarks/bench_simulate.py [--n 5000] [--seed 7] [--profile 25]

Measures, on the same requests in the same run:
  * in-process: request_from_json for every request, then one `evaluate` over the batch (large
    batches are decided in two processes on a machine with two cores; also measured with
    IAM_REASONER_JOBS=1, in one process);
  * end to end: `python -m reasoner simulate --batch --json FILE` as a subprocess;
  * the oracle: `node simulate.mjs --batch --raw < FILE` (installed by tests/oracle.py), before
    and after ours: its better time counts;
and reports requests/s, the ratio to the oracle (target: 3x), how many decisions agree, and a
cProfile of the in-process run (where the time goes).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gen_requests import requests as gen_requests  # noqa: E402
from reasoner.evaluate import evaluate  # noqa: E402
from reasoner.request import request_from_json, requests_from_json  # noqa: E402
from tests.oracle import ensure_oracle  # noqa: E402


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def in_process(reqs: list[dict]):
    def run():
        return evaluate(requests_from_json(reqs))
    return timed(run)


def stages(reqs: list[dict]) -> dict:
    parsed, t_parse = timed(lambda: requests_from_json(reqs))
    _, t_eval = timed(lambda: evaluate(parsed))
    return {"request_from_json": t_parse, "evaluate": t_eval}


def cli(path: Path):
    def run():
        proc = subprocess.run([sys.executable, "-m", "reasoner", "simulate", "--batch", "--json", str(path)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode not in (0, 2):
            raise SystemExit(f"simulate failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return timed(run)


def oracle(path: Path, folder: Path):
    def run():
        with open(path) as f:
            proc = subprocess.run(["node", "simulate.mjs", "--batch", "--raw"], stdin=f, capture_output=True, text=True, cwd=folder)
        if proc.returncode != 0:
            raise SystemExit(f"the oracle failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return timed(run)


def profile(reqs: list[dict], top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    evaluate([request_from_json(r) for r in reqs])
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--profile", type=int, default=25, help="rows of the cProfile table (0: no profile)")
    args = ap.parse_args()

    reqs = gen_requests(args.n, args.seed)
    folder = ensure_oracle()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
        theirs, t_oracle = oracle(path, folder)
        ours, t_ours = in_process(reqs)
        split = stages(reqs)
        os.environ["IAM_REASONER_JOBS"] = "1"  # the same, deciding in this process alone
        try:
            _, t_one = in_process(reqs)
        finally:
            del os.environ["IAM_REASONER_JOBS"]
        cli_out, t_cli = cli(path)
        _, t_oracle2 = oracle(path, folder)
        t_oracle = min(t_oracle, t_oracle2)  # the oracle's better run of two, before and after ours

    n = len(reqs)
    agree = sum(o.decision == t["decision"] for o, t in zip(ours, theirs))
    cli_agree = sum(c["decision"] == o.decision for c, o in zip(cli_out, ours))
    rate = lambda t: n / t  # noqa: E731
    print(f"simulate benchmark -- {date.today().isoformat()}, {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"requests: {n} (seed {args.seed}); ours: {dict(Counter(o.decision for o in ours))}")
    print(f"  ours in-process   {t_ours:7.2f} s  {rate(t_ours):8.0f} req/s   "
          f"(request_from_json {split['request_from_json']:.2f} s, evaluate {split['evaluate']:.2f} s, second run)")
    print(f"  ours in-process, one process (IAM_REASONER_JOBS=1) {t_one:7.2f} s  {rate(t_one):8.0f} req/s")
    print(f"  ours CLI (e2e)    {t_cli:7.2f} s  {rate(t_cli):8.0f} req/s   ({cli_agree}/{n} decisions as in-process)")
    print(f"  oracle --raw      {t_oracle:7.2f} s  {rate(t_oracle):8.0f} req/s   (better of two runs)")
    print(f"  ratio in-process/oracle {t_oracle / t_ours:.2f}x (one process {t_oracle / t_one:.2f}x), "
          f"CLI/oracle {t_oracle / t_cli:.2f}x (target 3x)")
    print(f"  agreement with the oracle: {agree}/{n}")
    if args.profile:
        print()
        print(profile(reqs, args.profile))


if __name__ == "__main__":
    main()
