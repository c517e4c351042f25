"""The 75 who-can cases of ../shared/conformance/whocan, scored by their own check.py.

Direct answers (`direct=True`, one hop) must match exactly; answers with role chains must be a
superset.  Resource tags that snapshot format v1 cannot hold are taken from the datasets'
extras files, as the source knew them.  The few disagreements are listed, with the reason, in
tests/data/eval/whocan-disagreements.json, and must still disagree exactly as listed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reasoner.analysis import Analyzer
from reasoner.load import load

from .conftest import shared_path

HERE = Path(__file__).resolve().parent
DISAGREE = {d["id"]: d for d in json.loads((HERE / "data" / "eval" / "whocan-disagreements.json").read_text())}


def _answers(direct: bool, tmp_path: Path) -> Path:
    root = shared_path("conformance", "whocan")
    cases = [json.loads(line) for line in (root / "cases.jsonl").read_text().splitlines() if line.strip()]
    analyzers, tags = {}, {}
    out = tmp_path / ("direct.jsonl" if direct else "chains.jsonl")
    with out.open("w") as f:
        for c in cases:
            ds = c["dataset"]
            if ds not in analyzers:
                analyzers[ds] = Analyzer(load(root / ds))
                extras = json.loads((root / f"{ds}.extras.json").read_text())
                tags[ds] = {r["Arn"]: r.get("Tags", {}) for r in extras.get("resources", []) if r["Arn"].startswith("arn:aws:s3")}
            a = analyzers[ds]
            actions = c["action"] if isinstance(c["action"], list) else [c["action"]]
            bucket = (c["resource"] or "").split("/")[0]
            by_action = {}
            for act in actions:
                r = a.who_can(act, c["resource"], context=c.get("context") or None, resource_account=c.get("resourceAccount"),
                              direct=direct, absent=c.get("strictContextKeys", []), resource_tags=tags[ds].get(bucket))
                by_action[act] = [p.principal for p in r.principals]
            if isinstance(c["action"], list):
                f.write(json.dumps({"id": c["id"], "by_action": by_action}) + "\n")
            else:
                f.write(json.dumps({"id": c["id"], "principals": by_action[actions[0]]}) + "\n")
    return out


def _score(answers: Path, mode: str) -> tuple[dict, str]:
    check = shared_path("conformance", "whocan", "check.py")
    p = subprocess.run([sys.executable, str(check), str(answers), "--mode", mode], capture_output=True, text=True)
    results = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("PASS", "FAIL", "SKIP"):
            results[parts[1]] = (parts[0], line)
    return results, p.stdout


@pytest.mark.parametrize("direct,mode", [(True, "exact"), (False, "superset")], ids=["direct-exact", "chains-superset"])
def test_whocan_cases(direct, mode, tmp_path):
    results, text = _score(_answers(direct, tmp_path), mode)
    assert sum(1 for s, _ in results.values() if s in ("PASS", "FAIL")) == 69, text[-2000:]
    failures = {cid: line for cid, (s, line) in results.items() if s == "FAIL"}
    listed = {cid for cid, d in DISAGREE.items() if d["mode"] in (mode, "both")}
    assert set(failures) == listed, "\n".join(failures.values())
    assert len(DISAGREE) <= 5
