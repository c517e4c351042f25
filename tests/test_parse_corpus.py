"""Real data: every AWS managed policy parses with no error and no warning.  The whole file from
../shared runs here; a committed sample of 43 (conditions of most operator families, set
operators, IfExists, NotAction, NotResource, variables, a statement object, large documents) keeps
the same checks in the fast suite."""
from __future__ import annotations

import json
from pathlib import Path

from reasoner.facts import policy_facts
from reasoner.model import PolicyKind
from reasoner.parse import parse_policy_text

SAMPLE = Path(__file__).parent / "data" / "parse" / "managed-sample.jsonl"

# (policy name, start of the warning message) -> why the warning is true and expected.
# Empty today: no managed policy uses `${...}` under an old Version.  An entry that no longer
# matches a warning fails the test, so the list cannot go stale.
ALLOWED_WARNINGS: dict[tuple[str, str], str] = {}


def _check(records: list[dict]) -> tuple[int, int]:
    problems, used = [], set()
    statements = facts = 0
    for rec in records:
        doc = rec["Document"]
        text = json.dumps(doc, indent=4) if isinstance(doc, dict) else doc
        pol, diags = parse_policy_text(text, PolicyKind.IDENTITY, file=rec["PolicyName"], name=rec["Arn"], strict=False)
        for d in diags.items:
            key = next((k for k in ALLOWED_WARNINGS if k[0] == rec["PolicyName"] and d.message.startswith(k[1])), None)
            if d.severity == "warning" and key is not None:
                used.add(key)
            else:
                problems.append(str(d))
        if pol is None:
            problems.append(f"{rec['PolicyName']}: no policy")
            continue
        decoded = json.loads(text)
        sts = decoded["Statement"] if isinstance(decoded["Statement"], list) else [decoded["Statement"]]
        assert len(pol.statements) == len(sts), rec["PolicyName"]
        for s, raw in zip(pol.statements, sts):
            el = "Action" if "Action" in raw else "NotAction"
            want = raw[el] if isinstance(raw[el], list) else [raw[el]]
            assert list(s.actions) == want and s.not_action == (el == "NotAction")
            assert s.effect == raw["Effect"] and s.sid == raw.get("Sid")
            line, col = pol.position(s.path)
            assert text.splitlines()[line - 1][col - 1] == "{", (rec["PolicyName"], s.path)
        statements += len(pol.statements)
        facts += len(policy_facts(1, pol))
    assert problems == []
    assert used == set(ALLOWED_WARNINGS), f"allow-list entries no longer needed: {set(ALLOWED_WARNINGS) - used}"
    return statements, facts


def test_committed_sample():
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 43
    statements, facts = _check(records)
    assert statements > 200 and facts > statements * 3


def test_every_aws_managed_policy(shared):
    path = shared("data", "aws-managed-policies.jsonl")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(records) == 1594
    statements, facts = _check(records)
    assert statements == 8853
    assert facts > 100_000
