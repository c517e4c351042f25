"""Load a synthetic snapshot (issue 4): seconds and peak memory, against json.load of the same files.

    python benchmarks/bench_load.py                       # --roles 5000 --policies 1500 --seed 7 --runs 3
    python benchmarks/bench_load.py --profile 25          # and where the time goes (cProfile)

The estate is written by ``synth.py`` (cached under $TMPDIR/iam-reasoner-bench/).  Each
measurement runs in a fresh interpreter, after the imports (importing is not loading):

  json.load   plain ``json.load`` of every file of the snapshot (organization.json and each
              account's authorization-details.json and resources.json), in the same process
              before ``load`` — the baseline of the same run;
  load        ``reasoner.load.load(DIR)``: decoding, parsing every policy document, the model;

and, in separate fresh interpreters, peak memory: ``resource.getrusage`` maxrss after
``json.load`` alone and after ``load`` alone (each process does one of them), and tracemalloc's peak
of Python allocations during ``load``.  Target (issue 4): load <= 5x json.load.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402
from synth import estate_dir, source_state  # noqa: E402


def snapshot_files(d: Path) -> list[Path]:
    files = [d / "organization.json"] if (d / "organization.json").is_file() else []
    for acct in sorted((d / "accounts").iterdir()):
        files += [f for f in (acct / "authorization-details.json", acct / "resources.json") if f.is_file()]
    return files


def child(mode: str, d: Path, top: int) -> None:
    from reasoner.load import load, organization, snapshot, terraform  # noqa: F401  imports first, the modules `load` imports lazily too: not part of any figure

    out: dict = {}
    files = snapshot_files(d)
    out["megabytes"] = sum(f.stat().st_size for f in files) / 1e6
    out["files"] = len(files)
    if mode == "time":
        t = time.perf_counter()
        for f in files:
            with open(f, "rb") as fh:
                json.load(fh)
        out["json_s"] = time.perf_counter() - t
        t = time.perf_counter()
        est = load(d)
        out["load_s"] = time.perf_counter() - t
        out["counts"] = {k: sum(a.counts()[k] for a in est.accounts.values()) for k in ("users", "groups", "roles", "policies", "inline_policies", "resource_policies", "workloads")}
        out["warnings"] = len(est.warnings)
    elif mode == "rss-json":
        base = peak_rss_mb()
        for f in files:
            with open(f, "rb") as fh:
                json.load(fh)
        out.update(base_rss_mb=base, peak_rss_mb=peak_rss_mb())
    elif mode == "rss-load":
        base = peak_rss_mb()
        est = load(d)
        out.update(base_rss_mb=base, peak_rss_mb=peak_rss_mb())
    elif mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        est = load(d)
        _, peak = tracemalloc.get_traced_memory()
        out["tracemalloc_peak_mb"] = peak / 2**20
    elif mode == "profile":
        pr = cProfile.Profile()
        pr.enable()
        load(d)
        pr.disable()
        s = io.StringIO()
        st = pstats.Stats(pr, stream=s)
        st.sort_stats("cumulative").print_stats(top)
        st.sort_stats("tottime").print_stats(top)
        out["profile"] = s.getvalue()
    print(json.dumps(out))


def fresh(mode: str, d: Path, top: int = 25) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", mode, "--dir", str(d), "--top", str(top)], capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"child {mode} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--roles", type=int, default=5000)
    ap.add_argument("--policies", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N cProfile entries of one load")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--top", type=int, default=25, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, Path(a.dir), a.top)
        return
    d = estate_dir(a.roles, a.policies, a.seed)
    print(f"machine: {machine()}")
    print(f"source: {source_state()}")
    print(f"estate: {d} (synth.py --roles {a.roles} --policies {a.policies} --seed {a.seed})")
    runs = [fresh("time", d) for _ in range(a.runs)]
    r0 = runs[0]
    print(f"files: {r0['files']}, {r0['megabytes']:.1f} MB; loaded: {r0['counts']}; warnings: {r0['warnings']}")
    js = [r["json_s"] for r in runs]
    ld = [r["load_s"] for r in runs]
    ratios = [r["load_s"] / r["json_s"] for r in runs]
    print(f"json.load   median {statistics.median(js):7.3f} s   best {min(js):7.3f} s   ({a.runs} fresh processes)")
    print(f"load        median {statistics.median(ld):7.3f} s   best {min(ld):7.3f} s")
    ratio = statistics.median(ratios)
    print(f"ratio       median {ratio:7.2f}x json.load (each run against its own json.load)   target <= 5x: {'MET' if ratio <= 5 else 'NOT MET'}")
    rj, rl, tm = fresh("rss-json", d), fresh("rss-load", d), fresh("tracemalloc", d)
    print(f"peak RSS    json.load {rj['peak_rss_mb']:.0f} MiB (imports alone {rj['base_rss_mb']:.0f});  load {rl['peak_rss_mb']:.0f} MiB (imports alone {rl['base_rss_mb']:.0f})")
    print(f"tracemalloc peak of Python allocations during load: {tm['tracemalloc_peak_mb']:.0f} MiB")
    summary = {"bench": "load", "roles": a.roles, "policies": a.policies, "seed": a.seed, "json_s": statistics.median(js), "load_s": statistics.median(ld),
               "ratio": ratio, "target_met": ratio <= 5, "peak_rss_load_mb": rl["peak_rss_mb"], "peak_rss_json_mb": rj["peak_rss_mb"],
               "tracemalloc_peak_mb": tm["tracemalloc_peak_mb"]}
    if a.profile:
        print(fresh("profile", d, a.profile)["profile"])
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
