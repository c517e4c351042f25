"""Who-can latency, full escalation analysis and peak memory on seeded synthetic estates (issue 5),
side by side with PMapper on the same estate in the same run.

    python benchmarks/bench_estate.py                                   # --sizes 1000,5000,20000
    python benchmarks/bench_estate.py --sizes 1000 --pmapper-sizes 1000 --budget 600

For each size N (roles; managed policies 0.3 N; seed --seed), estates written by ``synth.py``
(cached under $TMPDIR/iam-reasoner-bench/):

1. who-can after load, in a fresh process: ``Analyzer(load(DIR))`` once, then each representative
   question (from the estate's manifest) asked once (the first ask, reported apart: it finds the
   assume-role edges that later questions reuse) and then up to --repeat times more, fewer when
   those asks have used its --question-budget; the median of the asks after the first is reported.  Questions: s3:GetObject on a bucket whose
   policy grants other accounts' roles, sts:AssumeRole on a role at the end of a cross-account
   chain, iam:PassRole on a Lambda service role.  Targets: <= 0.3 s at 5,000 roles, <= 4x that at
   20,000.
2. full escalation analysis, ``escalations(Analyzer(load(DIR)))``, in a fresh process.  Target
   <= 15 s at 5,000 roles.
3. peak memory, per task: the largest ``ru_maxrss`` of its process and of the processes it forked
   to decide large chunks of requests, and the largest memory of all of them together (the sum
   of their proportional set sizes, sampled every 0.5 s from here).  Target <= 2 GB at 20,000,
   read as 2×10⁹ bytes (1,907 MiB): judged on the larger of the two.
4. PMapper on the one-account variant of the same estate (``synth.py --single-account``: every
   account id rewritten to one), run as ``../shared/peers/pmapper/run.sh DIR --json`` (PMapper
   1.1.5 from PyPI in its own venv; run.sh applies the ``collections.abc`` fix to
   principalmapper/util/case_insensitive_dict.py on first use, and builds the graph with every edge
   checker's ``generate_edges_locally``, no AWS endpoint), with --pmapper-timeout; and ours on
   the same variant: load + full escalation analysis.  Ratio: its graph build and analysis time
   over ours.  Verdicts compared principal by principal: administrators, and principals that can
   reach an administrator.

Every child process runs under --budget seconds (PMapper under --pmapper-timeout); a measurement
cut short is reported as "> N s".  Nothing here is a test: the figures go to the README.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, TreeMemory, children_peak_rss_mb, machine, peak_rss_mb  # noqa: E402
from synth import estate_dir, manifest, source_state  # noqa: E402

PMAPPER = SHARED / "peers" / "pmapper" / "run.sh"


def emit(**kw) -> None:
    kw["rss_mb"] = peak_rss_mb()
    kw["children_rss_mb"] = children_peak_rss_mb()
    print(json.dumps(kw), flush=True)


# ---------------------------------------------------------------------- children

def questions_of(m: dict) -> list[tuple[str, str, str]]:
    q = m["questions"]
    out = [("bucket read", "s3:GetObject", q["bucket_object"]), ("assume chained role", "sts:AssumeRole", q["chained_role"])]
    if q.get("passrole_target"):
        out.append(("pass a Lambda role", "iam:PassRole", q["passrole_target"]))
    return out


def child_whocan(d: Path, repeat: int, budget: float) -> None:
    from reasoner.analysis import Analyzer
    from reasoner.load import load

    t = time.perf_counter()
    est = load(d)
    emit(event="load", s=time.perf_counter() - t)
    t = time.perf_counter()
    an = Analyzer(est)
    emit(event="analyzer", s=time.perf_counter() - t)
    for name, action, res in questions_of(manifest(d)):
        spent = 0.0
        # run 0 is the first ask (it may find the assume-role edges the later asks reuse); then up
        # to `repeat` asks, fewer once they have used the budget
        for i in range(repeat + 1):
            t = time.perf_counter()
            r = an.who_can(action, res)
            s = time.perf_counter() - t
            spent += s if i else 0.0
            emit(event="question", name=name, action=action, resource=res, run=i, s=s, principals=len(r.principals),
                 direct=sum(1 for a in r.principals if a.direct))
            if spent >= budget:
                break
    emit(event="done")


def child_escalations(d: Path, out: Path) -> None:
    from reasoner.analysis import Analyzer
    from reasoner.escalate import escalations
    from reasoner.load import load

    t0 = time.perf_counter()
    est = load(d)
    t1 = time.perf_counter()
    emit(event="load", s=t1 - t0)
    an = Analyzer(est)
    res = escalations(an)
    t2 = time.perf_counter()
    to_admin = sorted({f.principal for f in res.findings if f.steps_to_admin is not None})
    emit(event="escalations", s=t2 - t1, total_s=t2 - t0, admins=len(res.admins), findings=len(res.findings),
         principals_with_findings=len({f.principal for f in res.findings}), escalating=len(to_admin))
    out.write_text(json.dumps({"admins": res.admins, "escalating": to_admin,
                               "findings": [[f.principal, f.method, f.target, f.steps_to_admin] for f in res.findings]}))
    emit(event="done")


# ---------------------------------------------------------------------- parent

def run_child(args: list[str], budget: float) -> tuple[list[dict], bool, float, str]:
    """Run this script as a child; its JSON lines (also those written before a timeout), whether
    it finished, its wall time, the tail of its stderr.  The last line gets ``tree_pss_mb``: the
    largest memory in use by the child and the processes it forked, together (sampled)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=out, stderr=err, text=True)
        with TreeMemory(p.pid) as mem:
            try:
                p.wait(timeout=budget)
                finished = p.returncode == 0
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                finished = False
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        lines = [json.loads(x) for x in out.read().splitlines() if x.startswith("{")]
        if lines:
            lines[-1]["tree_pss_mb"] = mem.peak_mb
        return lines, finished, wall, err.read()[-2000:]


def run_pmapper(d: Path, timeout: float) -> dict:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen([str(PMAPPER), str(d), "--json"], stdout=out, stderr=err, text=True)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return {"finished": False, "wall_s": time.perf_counter() - t}
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if p.returncode:
            return {"finished": False, "wall_s": wall, "error": err.read()[-2000:]}
        r = json.loads(out.read())
        r.update(finished=True, wall_s=wall)
        return r


def compare(ours: dict, pm: dict, planted: list[dict]) -> dict:
    """Principal by principal: administrators, and principals that can reach an administrator
    (PMapper's "can escalate"; ours: a finding whose way reaches arbitrary permissions).  PMapper
    also calls "escalation" a plain sts:AssumeRole chain into an admin role; our escalation report
    leaves those to who-can/path, so they are counted apart."""
    v = pm["verdicts"]
    pm_admin = {a for a, r in v.items() if r["status"] == "admin"}
    pm_esc = {a for a, r in v.items() if r["status"] == "privesc"}
    pm_assume_only = {a for a in pm_esc if all("sts:AssumeRole" in e or "assume" in e.lower() for e in v[a]["path"])}
    o_admin, o_esc = set(ours["admins"]), set(ours["escalating"])
    pm_method = pm_esc - pm_assume_only
    planted_p = {p["principal"] for p in planted}
    return {
        "admins": {"both": len(o_admin & pm_admin), "ours_only": len(o_admin - pm_admin), "pmapper_only": len(pm_admin - o_admin)},
        "escalating_by_method": {"both": len(o_esc & pm_method), "ours_only": len(o_esc - pm_esc - pm_admin), "ours_pmapper_admin": len(o_esc & pm_admin),
                                  "pmapper_only": len(pm_method - o_esc - o_admin)},
        "pmapper_assume_role_only": len(pm_assume_only),
        "planted": {"total": len(planted_p), "ours": len(planted_p & o_esc), "pmapper": len(planted_p & (pm_esc | pm_admin))},
        "examples": {"ours_only": sorted(o_esc - pm_esc - pm_admin)[:5], "pmapper_only": sorted(pm_method - o_esc - o_admin)[:5],
                     "admins_pmapper_only": sorted(pm_admin - o_admin)[:5], "admins_ours_only": sorted(o_admin - pm_admin)[:5]},
    }


def _memory(lines: list[dict]) -> dict:
    """A task's memory from its child's lines (a process cut short reports its last line)."""
    own = max((x["rss_mb"] for x in lines), default=None)
    forked = max((x.get("children_rss_mb") or 0 for x in lines), default=0) or None  # None: nothing was forked
    tree = next((x["tree_pss_mb"] for x in reversed(lines) if x.get("tree_pss_mb") is not None), None)
    both = [x for x in (own, forked) if x]
    return {"self_rss_mb": own, "children_rss_mb": forked, "rss_mb": max(both) if both else None, "tree_pss_mb": tree}


GB2_MIB = 2e9 / 2**20  # the 2 GB target read strictly: 2×10⁹ bytes, 1,907.3 MiB (not 2 GiB)


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f} MiB"


def fmt(x: float | None, finished: bool = True, budget: float = 0) -> str:
    if x is None:
        return f"> {budget:.0f} s" if not finished else "-"
    return f"{x:.3f} s"


def bench_size(n: int, a, do_pmapper: bool) -> dict:
    pol = max(10, int(n * a.policy_ratio))
    d = estate_dir(n, pol, a.seed)
    m = manifest(d)
    t = m["totals"]
    print(f"\n== {n} roles: {d}  ({t['accounts']} accounts, {t['roles']} roles, {t['users']} users, {t['groups']} groups, "
          f"{t['distinct_managed_policies']} managed policies, {t['inline_policies']} inline, {t['resource_policies']} resource policies, "
          f"{t['workloads']} workloads, {len(m['planted'])} planted paths)", flush=True)
    res: dict = {"roles": n, "policies": pol}

    # 1. who-can
    lines, fin, wall, err = run_child(["whocan", str(d), str(a.repeat), str(a.question_budget)], a.budget)
    res["load_s"] = next((x["s"] for x in lines if x["event"] == "load"), None)
    qs: dict = {}
    for x in lines:
        if x["event"] == "question":
            q = qs.setdefault(x["name"], {"action": x["action"], "resource": x["resource"], "runs": [], "principals": x["principals"], "direct": x["direct"]})
            if x["run"] == 0:
                q["first_s"] = x["s"]
            else:
                q["runs"].append(x["s"])
    res["questions"] = {k: {**q, "median_s": statistics.median(q["runs"]) if q["runs"] else None} for k, q in qs.items()}
    res["whocan_finished"] = fin
    res["memory"] = {"whocan": _memory(lines)}
    print(f"load {fmt(res['load_s'], fin, a.budget)}", flush=True)
    for name, action, resource in questions_of(m):
        q = res["questions"].get(name)
        if q and q["runs"]:
            print(f"who-can {name:20s} {action} {resource}: median {q['median_s']:.3f} s of {len(q['runs'])} run(s) after the first ask ({q['first_s']:.3f} s), {q['principals']} principals ({q['direct']} direct)", flush=True)
        elif q:
            print(f"who-can {name:20s} {action} {resource}: first ask {q['first_s']:.3f} s; not asked again (budget of the process spent)", flush=True)
        else:
            print(f"who-can {name:20s} {action} {resource}: > {a.budget:.0f} s (budget of the process spent before it finished)", flush=True)
    if not fin and err.strip() and "Traceback" in err:
        print("child error:\n" + err)
    # 2. escalations
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        vout = Path(f.name)
    lines, fin, wall, err = run_child(["escalations", str(d), str(vout)], a.budget)
    e = next((x for x in lines if x["event"] == "escalations"), None)
    res["memory"]["escalations"] = _memory(lines)
    res["escalations"] = e
    res["escalations_finished"] = fin
    if e:
        print(f"escalations: {e['s']:.2f} s after load ({e['admins']} admins, {e['escalating']} principals reach admin, {e['findings']} findings)", flush=True)
    else:
        print(f"escalations: > {a.budget - (res['load_s'] or 0):.0f} s (cut at the {a.budget:.0f} s budget)", flush=True)
        if "Traceback" in err:
            print("child error:\n" + err)
    mem = res["memory"]
    rss = [m["rss_mb"] for m in mem.values() if m["rss_mb"] is not None]
    tree = [m["tree_pss_mb"] for m in mem.values() if m["tree_pss_mb"] is not None]
    res["peak_rss_mb"] = max(rss) if rss else None
    res["peak_tree_mb"] = max(tree) if tree else None
    for task, m in mem.items():
        print(f"memory, {task}: largest process {_mb(m['rss_mb'])} (the analysis {_mb(m['self_rss_mb'])}, a forked process {_mb(m['children_rss_mb'])}); "
              f"all together {_mb(m['tree_pss_mb'])} (sampled PSS)", flush=True)

    # 3. side by side with PMapper, on the one-account variant
    if do_pmapper:
        d1 = estate_dir(n, pol, a.seed, single=True)
        m1 = manifest(d1)
        print(f"-- one-account variant {d1}: {m1['totals']['roles']} roles, {m1['totals']['users']} users", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            vout1 = Path(f.name)
        lines, fin, wall, err = run_child(["escalations", str(d1), str(vout1)], a.budget)
        e1 = next((x for x in lines if x["event"] == "escalations"), None)
        ours_s = e1["total_s"] if e1 else None
        print(f"ours (load + escalations): {fmt(ours_s, fin, a.budget)}", flush=True)
        pm = run_pmapper(d1, a.pmapper_timeout)
        side = {"ours_s": ours_s, "ours_finished": fin, "pmapper_finished": pm["finished"], "pmapper_wall_s": pm["wall_s"]}
        if pm["finished"]:
            tm = pm["timings"]
            side.update(pmapper_s=tm["total_s"], pmapper_timings=tm, pmapper_nodes=pm["nodes"], pmapper_edges=pm["edges"])
            print(f"PMapper: graph {tm['nodes_and_admin_s'] + tm['edges_s']:.1f} s (nodes+admin {tm['nodes_and_admin_s']:.1f}, edges {tm['edges_s']:.1f}), "
                  f"with its privesc queries {tm['total_s']:.1f} s; process {pm['wall_s']:.1f} s; {pm['nodes']} nodes, {pm['edges']} edges", flush=True)
        else:
            print(f"PMapper: > {a.pmapper_timeout:.0f} s (timeout){' — ' + pm.get('error', '')[-300:] if pm.get('error') else ''}", flush=True)
        if ours_s and pm["finished"]:
            side["ratio"] = pm["timings"]["total_s"] / ours_s
            print(f"ratio: PMapper / ours = {side['ratio']:.2f}x   (target >= 50x: {'MET' if side['ratio'] >= 50 else 'NOT MET'})", flush=True)
        elif ours_s and not pm["finished"]:
            side["ratio_at_least"] = a.pmapper_timeout / ours_s
            print(f"ratio: > {side['ratio_at_least']:.1f}x (PMapper cut at its timeout)", flush=True)
        elif not ours_s and pm["finished"]:
            side["ratio_at_most"] = pm["timings"]["total_s"] / a.budget
            print(f"ratio: < {side['ratio_at_most']:.2f}x (ours cut at the budget)", flush=True)
        if e1 and pm["finished"]:
            c = compare(json.loads(vout1.read_text()), pm, m1["planted"])
            side["verdicts"] = c
            print(f"verdicts: admins both {c['admins']['both']}, ours only {c['admins']['ours_only']}, PMapper only {c['admins']['pmapper_only']}; "
                  f"escalating (by a method) both {c['escalating_by_method']['both']}, ours only {c['escalating_by_method']['ours_only']} "
                  f"(+{c['escalating_by_method']['ours_pmapper_admin']} PMapper calls admin), PMapper only {c['escalating_by_method']['pmapper_only']}; "
                  f"PMapper escalations by sts:AssumeRole alone {c['pmapper_assume_role_only']}; planted found: ours {c['planted']['ours']}/{c['planted']['total']}, "
                  f"PMapper {c['planted']['pmapper']}/{c['planted']['total']}", flush=True)
            print("  examples: " + json.dumps(c["examples"]), flush=True)
        res["pmapper"] = side
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,5000,20000", help="role counts, comma-separated")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--policy-ratio", type=float, default=0.3, help="managed policies per role (5,000 roles: 1,500)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each who-can question (median)")
    ap.add_argument("--question-budget", type=float, default=60, help="seconds after which a question is not repeated")
    ap.add_argument("--budget", type=float, default=900, help="seconds each of our processes may take")
    ap.add_argument("--pmapper-sizes", default=None, help="sizes to run PMapper on (default: those <= 5000; 'none' to skip)")
    ap.add_argument("--pmapper-timeout", type=float, default=1800)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        mode, *rest = a.child
        if mode == "whocan":
            child_whocan(Path(rest[0]), int(rest[1]), float(rest[2]))
        else:
            child_escalations(Path(rest[0]), Path(rest[1]))
        return
    sizes = [int(x) for x in a.sizes.split(",")]
    if a.pmapper_sizes is None:
        pm_sizes = {s for s in sizes if s <= 5000}
    elif a.pmapper_sizes == "none":
        pm_sizes = set()
    else:
        pm_sizes = {int(x) for x in a.pmapper_sizes.split(",")}
    print(f"machine: {machine()}")
    print(f"source: {source_state()}")
    print(f"seed {a.seed}; budget {a.budget:.0f} s per process; PMapper on {sorted(pm_sizes) or 'none'} (timeout {a.pmapper_timeout:.0f} s)"
          + (f"; PMapper skipped at {sorted(set(sizes) - pm_sizes)}" if set(sizes) - pm_sizes else ""))
    results = [bench_size(n, a, n in pm_sizes) for n in sizes]
    print("\n== targets")
    for r in results:
        n = r["roles"]
        medians = [q["median_s"] for q in r["questions"].values()]
        qmax = max(medians) if medians and None not in medians else None
        e = r["escalations"]
        line = [f"{n} roles: who-can slowest median {fmt(qmax, False, a.budget) if qmax is not None else '> budget'}"]
        if n == 5000:
            line.append(f"(<= 0.3 s: {'MET' if qmax is not None and qmax <= 0.3 and len(r['questions']) == 3 else 'NOT MET'})")
            line.append(f"escalations {e['s']:.1f} s (<= 15 s: {'MET' if e['s'] <= 15 else 'NOT MET'})" if e else "escalations > budget (<= 15 s: NOT MET)")
        if n == 20000:
            line.append(f"(<= 1.2 s: {'MET' if qmax is not None and qmax <= 1.2 and len(r['questions']) == 3 else 'NOT MET'})")
            for task, m in r["memory"].items():
                worst = max((x for x in (m["rss_mb"], m["tree_pss_mb"]) if x is not None), default=None)
                done = r[f"{task}_finished"]
                line.append(f"{task} peak memory {_mb(worst)} (<= 2 GB = {GB2_MIB:,.0f} MiB: {'MET' if worst is not None and worst <= GB2_MIB and done else 'NOT MET' if done else 'NOT MET or not measured to the end'})")
        if "pmapper" in r:
            p = r["pmapper"]
            line.append(f"vs PMapper {p['ratio']:.2f}x" if "ratio" in p else (f"vs PMapper > {p['ratio_at_least']:.1f}x" if "ratio_at_least" in p else (f"vs PMapper < {p['ratio_at_most']:.2f}x" if "ratio_at_most" in p else "vs PMapper: neither finished")))
        print("  " + "; ".join(line))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    print("SUMMARY " + json.dumps([{k: v for k, v in r.items() if k != "pmapper" or True} for r in results], default=str)[:4000])


if __name__ == "__main__":
    main()
