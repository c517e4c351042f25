"""Rendering answers for people: trees in the terminal (JSON is each result's ``as_json``)."""
from __future__ import annotations

from typing import Iterable


def tree(label: str, children: Iterable) -> list[str]:
    """Lines of a tree: ``children`` are strings or (label, children) pairs."""
    lines = [label]
    items = list(children)
    for i, child in enumerate(items):
        last = i == len(items) - 1
        head, more = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if isinstance(child, tuple):
            sub = tree(child[0], child[1])
        else:
            sub = [str(child)]
        lines.append(head + sub[0])
        lines.extend(more + s for s in sub[1:])
    return lines


def _statements(slot: dict) -> list:
    out = []
    for effect in ("deny", "allow"):
        for ref in slot.get(effect, []):
            text = f"{effect}: {ref['policy']} statement {ref['statement']} ({ref['where']})"
            if ref.get("conditions"):
                text += " if " + " and ".join(ref["conditions"])
            out.append(text)
    return out


LAYER_TITLES = {
    "identity": "identity policies",
    "resource": "resource-based policy",
    "boundary": "permissions boundary",
    "session": "session policy",
    "vpce": "VPC endpoint policy",
    "scp": "service control policies",
    "rcp": "resource control policies",
}


def decision_tree(decision, request=None) -> str:
    title = f"{decision.decision}"
    if request is not None:
        title = f"{request.principal} → {request.action} on {request.resource}: {decision.decision}"
    if decision.decision == "Error":
        return "\n".join(tree(title, [f"error: {decision.error}"]))
    children = []
    for layer, slot in decision.reasons.items():
        name = LAYER_TITLES.get(layer, layer)
        if isinstance(slot, list):
            levels = [(f"level {lv['level']}", _statements(lv) or ["no statement applies"]) for lv in slot]
            children.append((name, levels))
        else:
            children.append((name, _statements(slot)))
    if not decision.reasons:
        children.append("no statement applies in any policy")
    if decision.blocked_by:
        children.append("blocked by: " + ", ".join(decision.blocked_by))
    if decision.conditions:
        children.append(("allowed when all of", decision.conditions))
    for w in decision.warnings:
        children.append(f"warning: {w.message} ({w.file}:{w.line}:{w.column})" if w.line else f"warning: {w.message}")
    return "\n".join(tree(title, children))


def _hop_children(hop, reasons_of=None) -> list:
    """The deciding statements of every layer of one hop, and what was checked; ``reasons_of(hop)``:
    its reasons, when the caller locates them (:func:`escalations_lines`)."""
    out = []
    for layer, slot in (hop.reasons if reasons_of is None else reasons_of(hop)).items():
        name = LAYER_TITLES.get(layer, layer)
        if isinstance(slot, list):
            if slot and all(lv.get("allow") and not lv.get("deny") for lv in slot):
                names = sorted({f"{r['policy'].rsplit('/', 1)[-1]} {r['statement']}" for lv in slot for r in lv["allow"]})
                out.append(f"{name}: all {len(slot)} level(s) allow ({', '.join(names)})")
                continue
            levels = []
            for lv in slot:
                items = _statements(lv) or [f"no statement applies (checked: {', '.join(lv.get('checked', [])) or 'no policy: the level denies'})"]
                levels.append((f"level {lv['level']}", items))
            out.append((name, levels))
        else:
            items = _statements(slot)
            if not items:
                items = [f"no statement applies (checked: {', '.join(slot.get('checked', []))})"]
            out.append((name, items))
    if hop.conditions:
        out.append(("if", hop.conditions))
    return out


def hop_label(hop) -> str:
    if hop.kind == "assume-role":
        return f"{hop.principal} assumes {hop.resource}: {hop.decision}"
    return f"{hop.principal} → {hop.action} on {hop.resource}: {hop.decision}"


def access_tree(access) -> list:
    label = access.principal
    if not access.direct:
        label += "  via " + " → ".join(access.path[1:])
    if access.conditions:
        label += "  [if " + " and ".join(access.conditions) + "]"
    children = [(hop_label(h), _hop_children(h)) for h in access.hops]
    if access.missing:
        children.append(("depends on data not collected", access.missing))
    return [label, children]


def text(result) -> str:
    """Any answer (who-can, can, escalations, paths, what-can) as a text tree."""
    return "\n".join(tree(*outline(result)))


whocan_text = can_text = escalations_text = text


def escalations_lines(result):
    """The lines of ``text(result)`` for escalations, a finding at a time: the reasons of each
    proof are located for it and let go once written (kept, a large estate's would take many
    times the analysis' memory); those a principal's findings share are located once."""
    from .escalate import one_at_a_time

    yield f"privilege escalation: {len(result.findings)} finding(s)"
    for f, reasons_of in one_at_a_time(result.findings):  # (never the last child: the administrators follow)
        lines = tree(*_finding_outline(f, reasons_of))
        yield "├─ " + lines[0]
        for line in lines[1:]:
            yield "│  " + line
    yield from tree("", _escalations_tail(result))[1:]


def _finding_outline(f, reasons_of=None) -> tuple:
    label = f"{f.principal}: {f.title} on {f.target}"
    if f.gains.startswith("raise:"):
        label += f" (gives {f.gains[6:]} any permission)"
    elif f.gains != "admin":
        label += f" (acts as {f.gains})"
    if f.steps_to_admin is not None:
        label += f" — administrator in {f.steps_to_admin} step(s)"
    if f.conditions:
        label += "  [if " + " and ".join(f.conditions) + "]"
    sub = [(hop_label(h), _hop_children(h, reasons_of)) for h in f.hops]
    if f.path and len(f.path) > 1:
        sub.append(("way to administrator", [f"{p}: {m} on {t}" for p, m, t in f.path]))
    return label, sub


def _escalations_tail(result) -> list:
    """What follows the findings: that there is none, the administrators, the missing data."""
    out = []
    if not result.findings:
        out.append("no escalation found")
    admins = [a + (f"  [if {' and '.join(result.admin_conditions[a])}]" if result.admin_conditions.get(a) else "") for a in result.admins]
    out.append((f"administrators already ({len(result.admins)})", admins or ["none"]))
    if result.missing:
        out.append(("missing data (findings may be incomplete)", result.missing))
    return out


def outline(result):
    """The proof as (label, children) pairs, the shape of the text tree."""
    from .analysis import CanResult, WhoCan
    from .escalate import Escalations
    from .query import Paths, WhatCan

    hops = lambda hs: [(hop_label(h), _hop_children(h)) for h in hs]  # noqa: E731
    if isinstance(result, WhoCan):
        what = result.resource if result.resource is not None else "* (the action takes no resource)"
        children = [tuple(access_tree(a)) for a in result.principals] or ["nobody"]
        if result.missing:
            children.append(("missing data (answers may be incomplete)", result.missing))
        return (f"who can {result.action} on {what}: {len(result.principals)} principal(s)", children)
    if isinstance(result, CanResult):
        children = hops(result.hops)
        if result.conditions:
            children.append(("if", result.conditions))
        if result.missing:
            children.append(("depends on data not collected", result.missing))
        return (f"can {result.principal} {result.action} on {result.resource}: {result.decision}", children)
    if isinstance(result, Escalations):
        children = [_finding_outline(f) for f in result.findings] + _escalations_tail(result)
        return (f"privilege escalation: {len(result.findings)} finding(s)", children)
    if isinstance(result, Paths):
        if not result.chains:
            return (f"no chain from {result.source} to {result.target} within {result.max_hops} hop(s)", [])
        chains = [(" → ".join([result.source] + [h.resource for h in c]), hops(c)) for c in result.chains]
        return (f"chains from {result.source} to {result.target}: {len(result.chains)}", chains)
    if isinstance(result, WhatCan):
        items = [a + (f"  [if {' and '.join(c)}]" if c else "") for a, d, c in result.actions]
        return (f"{result.principal} may do {len(result.actions)} action(s)" + (f" of {result.service}" if result.service else ""), items or ["nothing"])
    raise TypeError(f"no outline for {type(result).__name__}")

