"""Where the escalation analysis' memory goes, phase by phase (issue 5's 2 GB at 20,000 roles).

    python benchmarks/mem_phases.py --roles 20000 --policies 6000 --seed 7 [--hash]

A child process runs ``escalations(Analyzer(load(DIR)), progress=...)`` on the seeded estate of
``synth.py`` (written under $TMPDIR/iam-reasoner-bench/ when missing), printing each progress
label as it comes.  This process samples every 0.5 s the proportional set size (PSS) of the child
and of each of its descendants (the rules' solver, the processes forked to decide requests or
to solve a stage) from /proc/PID/smaps_rollup, and prints, per phase, the sample with the largest
sum: the sum, the analysis' own PSS and the others', largest first.  Linux only.

``--hash``: the child then also prints a digest of the report (each finding as JSON with the
reasons of its proof, canonicalised and sorted, then the admins and the missing data), to tell
that a change left the answers alone.  Computing it takes more memory than the analysis: it is
sampled as a phase of its own ("hashing").
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, _descendants, machine, pss_mb  # noqa: E402
from synth import estate_dir  # noqa: E402

CHILD = r'''
import hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
from reasoner.analysis import Analyzer
from reasoner.escalate import escalations, one_at_a_time
from reasoner.load import load

t0 = time.perf_counter()
def tick(label):
    print("TICK", round(time.perf_counter() - t0, 1), label, flush=True)
analyzer = Analyzer(load(sys.argv[2]))
tick("loaded")
res = escalations(analyzer, progress=tick)
tick("done")
time.sleep(1.5)
print("FINDINGS", len(res.findings), len(res.admins), flush=True)
if sys.argv[3] == "hash":
    tick("hashing")
    h = hashlib.sha256()
    for text in sorted(json.dumps(f.as_json(r), sort_keys=True) for f, r in one_at_a_time(res.findings)):
        h.update(text.encode())
    h.update(json.dumps(res._summary(), sort_keys=True).encode())
    print("HASH", h.hexdigest(), flush=True)
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roles", type=int, default=5000)
    ap.add_argument("--policies", type=int, default=None, help="managed policies (default: 0.3 × roles)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hash", action="store_true", help="also a digest of the report")
    a = ap.parse_args()
    d = estate_dir(a.roles, a.policies if a.policies is not None else int(a.roles * 0.3), a.seed)
    print(machine())
    print(f"estate: {d}")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(d), "hash" if a.hash else "-"],
                             stdout=subprocess.PIPE, text=True, bufsize=1)
    phase = ["start"]
    order: list = []
    peaks: dict = {}  # phase -> (sum, the analysis', [the others'])
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            got = {p: pss_mb(p) for p in _descendants(child.pid)}
            got = {p: v for p, v in got.items() if v is not None}
            total, label = sum(got.values()), phase[0]
            if got and (label not in peaks or total > peaks[label][0]):
                peaks[label] = (total, got.get(child.pid, 0.0), sorted((v for p, v in got.items() if p != child.pid), reverse=True))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in child.stdout:
        line = line.rstrip()
        if line.startswith("TICK "):
            _, t, label = line.split(" ", 2)
            phase[0] = f"{float(t):7.1f} s  {label}"
            order.append(phase[0])
        print(line, flush=True)
    code = child.wait()
    stop.set()
    sampler.join()
    print("\nper phase, the sample with the largest sum (MiB): sum, the analysis, the others")
    for label in order:
        if label in peaks:
            total, own, others = peaks[label]
            print(f"{label[:62]:62s} {total:7.0f} {own:7.0f}  {' '.join(f'{v:.0f}' for v in others[:8])}")
    if peaks:
        print("largest sum (MiB):", round(max(v[0] for k, v in peaks.items() if not k.endswith("hashing"))))
    return code


if __name__ == "__main__":
    sys.exit(main())
