"""The 359 single-request cases of ../shared/conformance/upstream.jsonl.

Every case must agree on the decision (and on the blocking layers where the case names them),
except the disagreements listed in tests/data/eval/conformance-disagreements.json, each with the
AWS documentation passage that justifies our answer.  The listed ones must still disagree in
exactly the documented way, so the list cannot go stale.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.evaluate import evaluate
from reasoner.request import request_from_json

from .conftest import shared_path

HERE = Path(__file__).resolve().parent
DISAGREEMENTS = {d["id"]: d for d in json.loads((HERE / "data" / "eval" / "conformance-disagreements.json").read_text())}


@pytest.fixture(scope="module")
def outcomes():
    cases = [json.loads(line) for line in shared_path("conformance", "upstream.jsonl").read_text().splitlines() if line.strip()]
    decisions = evaluate([request_from_json(c) for c in cases])
    return list(zip(cases, decisions))


def test_corpus_is_whole(outcomes):
    assert len(outcomes) == 359
    expected = [c["expected"] for c, _ in outcomes]
    assert (expected.count("Allowed"), expected.count("ImplicitlyDenied"), expected.count("ExplicitlyDenied")) == (160, 132, 67)


def test_every_case_agrees_or_is_a_documented_disagreement(outcomes):
    wrong = []
    for case, got in outcomes:
        if case["id"] in DISAGREEMENTS:
            continue
        if got.decision != case["expected"]:
            wrong.append(f"{case['id']} ({case['name']}): expected {case['expected']}, got {got.decision}")
        elif case.get("expected_blocked_by") is not None and sorted(case["expected_blocked_by"]) != got.blocked_by:
            wrong.append(f"{case['id']} ({case['name']}): blocked by {sorted(case['expected_blocked_by'])}, got {got.blocked_by}")
    assert not wrong, "\n".join(wrong)


def test_documented_disagreements_are_few_and_still_hold(outcomes):
    assert len(DISAGREEMENTS) <= 5
    by_id = {c["id"]: (c, d) for c, d in outcomes}
    for case_id, entry in DISAGREEMENTS.items():
        case, got = by_id[case_id]
        assert case["expected"] == entry["corpus_expects"]
        assert got.decision == entry["we_answer"], f"{case_id}: the documented answer changed"
        assert entry["aws_documentation"] and all(p["passage"] for p in entry["aws_documentation"])


def test_reasons_cite_the_deciding_statements(outcomes):
    """Each decision names, per layer, the statements that allowed or denied, with a location."""
    by_id = {c["id"]: d for c, d in outcomes}
    d = by_id["anonymous.json#3"]  # allowed by the bucket policy, denied by an RCP
    assert d.decision == "ExplicitlyDenied"
    assert [r["policy"] for r in d.reasons["resource"]["allow"]] == ["resourcePolicy"]
    assert d.reasons["rcp"][0]["deny"][0]["effect"] == "Deny"
    assert d.blocked_by == ["rcp"]
