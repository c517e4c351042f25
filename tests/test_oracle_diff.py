"""Differential testing against the independent simulator in ../shared/oracle.

Thousands of generated requests (tests/strategies.py, fixed seed) are decided by our engine in
one batch and by the oracle in one `node simulate.mjs --batch --raw` process.  Every
disagreement fails the test, minimised to the smallest request that still shows it.

The generator steers clear of the situations the oracle's README lists as departures from AWS,
and of the ones found here where the oracle departs from AWS's documentation (each excluded at
its place in tests/strategies.py, with the passage).  Where our engine departs from AWS's
documentation the minimal request is in tests/data/eval/diff-findings.jsonl, with the decision
AWS documents and the passage; `test_recorded_findings` holds the engine to it, and the
generator keeps producing those situations so that they stay covered.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reasoner.evaluate import evaluate  # noqa: E402
from reasoner.request import request_from_json  # noqa: E402
from tests.oracle import OracleUnavailable, ensure_oracle, run_oracle  # noqa: E402
from tests.strategies import minimise, random_requests  # noqa: E402

SEED = 20240501
N = 3000
FINDINGS = Path(__file__).resolve().parent / "data" / "eval" / "diff-findings.jsonl"


@pytest.fixture(scope="module")
def oracle():
    try:
        return ensure_oracle()
    except OracleUnavailable as e:
        pytest.fail(f"the oracle cannot run, so the differential test cannot either: {e}")


def _ours(requests: list[dict]) -> list[str]:
    return [d.decision for d in evaluate([request_from_json(r) for r in requests])]


def _theirs(requests: list[dict], folder) -> list[str]:
    try:
        out = run_oracle(requests, folder)
    except OracleUnavailable as e:
        pytest.fail(str(e))
    return [o["decision"] for o in out]


@pytest.fixture(scope="module")
def generated():
    return random_requests(SEED, N)


@pytest.fixture(scope="module")
def decided(generated, oracle):
    return _ours(generated), _theirs(generated, oracle)


def test_oracle_decides_every_generated_request(decided):
    _, theirs = decided
    errors = Counter(d for d in theirs if d not in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied"))
    assert not errors, f"the oracle could not decide some generated requests: {dict(errors)}"


def test_generated_requests_agree_with_the_oracle(generated, decided, oracle):
    ours, theirs = decided
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if differ:
        def disagrees(cands: list[dict]) -> list[bool]:
            cands = [dict(c, id=f"m{k}") for k, c in enumerate(cands)]
            return [a != b for a, b in zip(_ours(cands), _theirs(cands, oracle))]

        shown = []
        for i in differ[:3]:
            small = minimise(generated[i], disagrees)
            small["id"] = generated[i]["id"]
            a, b = _ours([small])[0], _theirs([small], oracle)[0]
            shown.append(f"ours {a}, oracle {b}: {json.dumps(small)}")
        pytest.fail(f"{len(differ)} of {N} requests decided differently; the first, minimised:\n" + "\n".join(shown))


def test_the_batch_spans_the_decisions_and_the_layers(generated, decided):
    """The comparison means something only if the batch reaches every outcome and every layer."""
    ours, _ = decided
    counts = Counter(ours)
    for d in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied"):
        assert counts[d] >= N // 10, counts
    has = Counter()
    for r in generated:
        for f in ("resourcePolicy", "scps", "rcps", "permissionBoundary", "sessionPolicy"):
            has[f] += f in r
        has["cross-account"] += r["principal"].startswith("arn:") and r["principal"].split(":")[4] != r["resourceAccount"]
        text = json.dumps(r)
        for needle in ("NotAction", "NotResource", "NotPrincipal", "IfExists", "ForAllValues", "ForAnyValue", "${aws:username",
                       "IpAddress", "DateLessThan", "NumericGreaterThan", "ArnLike", "Bool", "Null", "StringLike"):
            has[needle] += needle in text
    thin = {k: v for k, v in has.items() if v < 40}
    assert not thin and len(has) == 20, f"too few generated requests exercise {thin or has}"


def _findings() -> list[dict]:
    return [json.loads(line) for line in FINDINGS.read_text().splitlines() if line.strip()]


def test_recorded_findings_are_documented_and_reproduce_on_the_oracle(oracle):
    """Each finding says what AWS documents, and the oracle (which follows AWS there) agrees."""
    found = _findings()
    assert found
    theirs = _theirs(found, oracle)
    for f, t in zip(found, theirs):
        assert f["expected"] in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied")
        assert f["aws_documentation"] and all(p["url"].startswith("https://docs.aws.amazon.com/") and p["passage"] for p in f["aws_documentation"])
        assert t == f["expected"] == f["oracle_answers"], f["id"]


@pytest.mark.parametrize("finding", _findings(), ids=lambda f: f["id"])
def test_recorded_findings(finding):
    """Our engine decides each recorded finding as AWS documents (fails until the engine is fixed)."""
    got = evaluate([request_from_json(finding)])[0].decision
    assert got == finding["expected"], f"{finding['id']}: AWS documents {finding['expected']}, we answer {got} -- {finding['cause']}"
