"""One case per rule of the evaluation logic (tests/data/eval/rules.jsonl): each names the AWS
documentation statement it checks in its `doc` field, gives a request and the expected decision."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.evaluate import evaluate
from reasoner.request import request_from_json

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "eval" / "rules.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_rule(case):
    got = evaluate([request_from_json(case)])[0]
    assert got.decision == case["expected"], f"{case['doc']}: expected {case['expected']}, got {got.decision} {got.reasons}"
    if "expected_blocked_by" in case:
        assert got.blocked_by == sorted(case["expected_blocked_by"])


def test_a_batch_decides_like_single_requests():
    reqs = [request_from_json(c) for c in CASES]
    batch = [d.decision for d in evaluate(reqs)]
    single = [evaluate([r])[0].decision for r in reqs]
    assert batch == single
