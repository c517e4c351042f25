"""Every predicate the encodings read but never derive is an input, and every input is documented
in encodings/doc.lp (or, for escalation methods, in escalate/core.lp); encodings hold no #script."""
from __future__ import annotations

import re
from pathlib import Path

ENC = Path(__file__).resolve().parent.parent / "encodings"
ATOM = re.compile(r"(?<![\w\"#])([a-z][a-zA-Z0-9_]*)\(")


def _strip(text: str) -> str:
    text = re.sub(r"%.*", "", text)
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def _predicates():
    heads, bodies = set(), set()
    for f in ENC.rglob("*.lp"):
        if f.name == "doc.lp":
            continue
        for rule in _strip(f.read_text()).split("."):
            if rule.strip().startswith("#"):
                continue
            head, _, body = rule.partition(":-")
            heads |= set(ATOM.findall(head.split(":")[0] if "{" not in head else head))
            bodies |= set(ATOM.findall(body))
            if ":" in head and "{" not in head:  # conditional literal in a head: its condition is a body
                bodies |= set(ATOM.findall(head.split(":", 1)[1]))
    return heads, bodies


def test_every_input_predicate_is_documented():
    heads, bodies = _predicates()
    inputs = bodies - heads - {"not"}
    documented = _strip(ENC.joinpath("doc.lp").read_text().replace("%", "")) + (ENC / "escalate" / "core.lp").read_text()
    missing = sorted(p for p in inputs if not re.search(rf"\b{p}\(", documented))
    assert not missing, f"undocumented input predicates: {missing}"
    assert {"request", "shares", "in_set", "set_in_force", "q_action_hit", "q_value_hit", "edge", "can"} <= inputs


def test_no_script_in_encodings():
    for f in ENC.rglob("*.lp"):
        assert "#script" not in f.read_text(), f
