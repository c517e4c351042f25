"""CI assertions: facts about an estate that must hold, checked on every change.

An assertions file is a JSON list; each entry names one question and what its answer may be:

    {"name": "...", "who-can": {"action": A, "resource": R, "context": {...}, "direct": false},
     "allow-only": ["arn:aws:iam::222222222222:role/app-*", ...]}   # principals outside → fail
    {"name": "...", "who-can": {...}, "expect": "none"}               # anybody → fail
    {"name": "...", "can": {"principal": P, "action": A, "resource": R}, "expect": "denied" | "allowed"}
    {"name": "...", "path": {"from": P, "to": ROLE}, "expect": "none"}
    {"name": "...", "escalations": {"principal": P?}, "expect": "none"}   # or "allow-only": [...]
    {"name": "...", "external-access": {"zone": "account" | "org"}, "expect": "none"}  # or allow-only

Conditional access counts as access: a forbidden path that exists under some condition fails.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import match
from .analysis import Analyzer
from .diagnostics import Diagnostic, InputError
from .locate import Source

QUESTIONS = ("who-can", "can", "path", "escalations", "external-access")


@dataclass
class Outcome:
    name: str
    ok: bool
    question: str
    offenders: list = field(default_factory=list)  # [{"principal", "path", "conditions"}]
    detail: str = ""

    def as_json(self) -> dict:
        return {"name": self.name, "ok": self.ok, "question": self.question, "offenders": self.offenders, "detail": self.detail}


def _fail(src: Source, path: tuple, message: str, hint: str) -> InputError:
    line, col = src.position(path)
    return InputError([Diagnostic(src.file, line, col, message, hint)], unreadable=True)


def validate(doc: Any, src: Source) -> list[dict]:
    if not isinstance(doc, list):
        raise _fail(src, (), "an assertions file is a JSON list of assertions", 'write `[{"name": "...", "who-can": {...}, "expect": "none"}]`')
    for i, a in enumerate(doc):
        if not isinstance(a, dict):
            raise _fail(src, (i,), f"assertion {i} is not an object", "each assertion is a JSON object")
        qs = [q for q in QUESTIONS if q in a]
        if len(qs) != 1:
            raise _fail(src, (i,), f"assertion {i} must ask exactly one of " + ", ".join(f"`{q}`" for q in QUESTIONS), "add one question")
        if "expect" not in a and "allow-only" not in a:
            raise _fail(src, (i,), f"assertion {i} says neither `expect` nor `allow-only`", 'add `"expect": "none"` or `"allow-only": [...]`')
        if "expect" in a and a["expect"] not in ("none", "denied", "allowed"):
            raise _fail(src, (i, "expect"), f"`{a['expect']}` is not an expectation", "use `none`, `denied` or `allowed`")
        if not isinstance(a[qs[0]], dict):
            raise _fail(src, (i, qs[0]), f"`{qs[0]}` takes an object of parameters", "see the README section on CI assertions")
    return doc


def _allowed(principal: str, patterns: list[str]) -> bool:
    return any(match.glob(p, principal) for p in patterns)


def check(analyzer: Analyzer, assertions: list[dict]) -> list[Outcome]:
    out = []
    for i, a in enumerate(assertions):
        name = a.get("name") or f"assertion {i}"
        q = next(q for q in QUESTIONS if q in a)
        p = a[q]
        only = a.get("allow-only")
        expect = a.get("expect")
        offenders: list = []
        if q == "who-can":
            res = analyzer.who_can(p["action"], p.get("resource"), p.get("context"), p.get("resource_account"), direct=bool(p.get("direct")))
            for acc in res.principals:
                if expect == "none" or (only is not None and not _allowed(acc.principal, only)):
                    offenders.append({"principal": acc.principal, "path": acc.path, "conditions": acc.conditions})
        elif q == "can":
            r = analyzer.can(p["principal"], p["action"], p.get("resource"), p.get("context"), p.get("resource_account"))
            granted = r.decision in ("Allowed", "ConditionallyAllowed")
            bad = (expect == "denied" and granted) or (expect == "allowed" and r.decision != "Allowed")
            if bad:
                offenders.append({"principal": r.principal, "path": r.path, "conditions": r.conditions, "decision": r.decision})
        elif q == "path":
            for chain in analyzer.paths(p["from"], analyzer.base(p["to"]), all_paths=False):
                offenders.append({"principal": p["from"], "path": [p["from"]] + [h.resource for h in chain], "conditions": sorted({c for h in chain for c in h.conditions})})
        elif q == "escalations":
            from .escalate import escalations

            res = escalations(analyzer, p.get("principal"))
            for f in res.findings:
                if expect == "none" or (only is not None and not _allowed(f.principal, only)):
                    offenders.append({"principal": f.principal, "path": [f.principal, f.method, f.target], "conditions": f.conditions})
        elif q == "external-access":
            res = analyzer.external_access(p.get("zone", "account"))
            for resource, action, acc in res.items:
                if expect == "none" or (only is not None and not _allowed(acc.principal, only)):
                    offenders.append({"principal": acc.principal, "resource": resource, "action": action, "path": acc.path, "conditions": acc.conditions})
        out.append(Outcome(name, not offenders, q, offenders))
    return out
