"""Metamorphic laws of AWS's evaluation logic, checked on generated requests (no oracle needed).

Each hypothesis example draws a few requests and one edit per request, and decides originals and
edited copies in a single batch:

* adding a Deny statement never grants, and keeps an explicit deny explicit;
* adding an Allow statement never revokes (an Allow cannot undo a Deny nor a grant);
* adding an SCP level, an RCP level, a permissions boundary or a session policy never grants;
* reordering statements, policies or the policies of a level changes nothing;
* duplicating a statement changes nothing;
* a batch of N requests decides each exactly as N single evaluations do.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reasoner.evaluate import evaluate  # noqa: E402
from reasoner.request import request_from_json  # noqa: E402
from tests.strategies import DrawChooser, policy, request, request_strategy, statement, statements_of  # noqa: E402

SETTINGS = settings(derandomize=True, max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decide(requests: list[dict]):
    return evaluate([request_from_json(r) for r in requests])


def with_effect(st_: dict, effect: str) -> dict:
    st_ = dict(st_, Effect=effect)
    if effect == "Allow" and "NotPrincipal" in st_:
        st_["Principal"] = st_.pop("NotPrincipal")  # AWS supports NotPrincipal with Deny only
    return st_


def layers_of(req: dict) -> list[tuple[str, tuple]]:
    """The policy documents of a request, as (layer, path) pairs."""
    out = [("identity", ("identityPolicies", i)) for i in range(len(req.get("identityPolicies", [])))]
    for f, layer in (("resourcePolicy", "resource"), ("permissionBoundary", "boundary"), ("sessionPolicy", "session")):
        if f in req:
            out.append((layer, (f,)))
    for f, layer in (("scps", "scp"), ("rcps", "rcp")):
        for i, level in enumerate(req.get(f, [])):
            out += [(layer, (f, i, j)) for j in range(len(level))]
    return out


def get(req: dict, path: tuple):
    for p in path:
        req = req[p]
    return req


def add_statement(c, req: dict, effect: str) -> dict:
    """A copy of ``req`` with one more statement of ``effect`` in one of its policies (or in a
    new identity policy)."""
    out = copy.deepcopy(req)
    # RCPs hold only Deny statements (RCPFullAWSAccess is the Allow): an Allow goes elsewhere
    places = [p for p in layers_of(out) if effect == "Deny" or p[0] != "rcp"]
    if not places or c.chance(0.25):
        if out["principal"].startswith("arn:"):
            out.setdefault("identityPolicies", []).append({"Version": "2012-10-17", "Statement": []})
            places = [("identity", ("identityPolicies", len(out["identityPolicies"]) - 1))]
        elif not places:
            out["resourcePolicy"] = {"Version": "2012-10-17", "Statement": []}
            places = [("resource", ("resourcePolicy",))]
    layer, path = c.choice(places)
    doc = get(out, path)
    sts = statements_of(doc)
    new = with_effect(statement(c, out, layer), effect)
    sts.insert(c.integer(0, len(sts)), new)
    doc["Statement"] = sts
    return out


@st.composite
def requests_and(draw, edit):
    c = DrawChooser(draw)
    n = c.integer(1, 6)
    pairs = []
    for i in range(n):
        r = request(c, f"r{i}")
        pairs.append((r, edit(c, r)))
    return pairs


def decided_pairs(pairs):
    flat = [r for pair in pairs for r in pair]
    for k, r in enumerate(flat):
        r["id"] = k
    ds = decide(flat)
    return [(ds[2 * i], ds[2 * i + 1]) for i in range(len(pairs))]


@SETTINGS
@given(requests_and(lambda c, r: add_statement(c, r, "Deny")))
def test_adding_a_deny_never_grants(pairs):
    for (before, after), (b, a) in zip(pairs, decided_pairs(pairs)):
        if a.decision == "Allowed":
            assert b.decision == "Allowed", (before, after)
        if b.decision == "ExplicitlyDenied":
            assert a.decision == "ExplicitlyDenied", (before, after)


@SETTINGS
@given(requests_and(lambda c, r: add_statement(c, r, "Allow")))
def test_adding_an_allow_never_revokes(pairs):
    for (before, after), (b, a) in zip(pairs, decided_pairs(pairs)):
        if b.decision == "Allowed":
            assert a.decision == "Allowed", (before, after)
        if b.decision == "ExplicitlyDenied":
            assert a.decision == "ExplicitlyDenied", (before, after)


def add_guardrail(c, req: dict) -> dict:
    """A copy of ``req`` under one more restricting layer: an SCP level, an RCP level, a
    permissions boundary or a session policy (where the principal can have one)."""
    out = copy.deepcopy(req)
    p = out["principal"]
    kinds = ["scp", "rcp"]
    if (":user/" in p or ":assumed-role/" in p) and "permissionBoundary" not in out:
        kinds.append("boundary")
    if (":assumed-role/" in p or ":federated-user/" in p) and "sessionPolicy" not in out:
        kinds.append("session")
    kind = c.choice(kinds)
    if kind == "scp":
        levels = out.setdefault("scps", [])
        levels.insert(c.integer(0, len(levels)), [policy(c, out, "scp", 1, 3)])
    elif kind == "rcp":
        levels = out.setdefault("rcps", [])
        levels.insert(c.integer(0, len(levels)), [policy(c, out, "rcp", 1, 2)])
    elif kind == "boundary":
        out["permissionBoundary"] = policy(c, out, "boundary")
    else:
        out["sessionPolicy"] = policy(c, out, "session")
    return out


@SETTINGS
@given(requests_and(add_guardrail))
def test_scps_rcps_boundaries_and_session_policies_never_grant(pairs):
    for (before, after), (b, a) in zip(pairs, decided_pairs(pairs)):
        if a.decision == "Allowed":
            assert b.decision == "Allowed", (before, after)
        if b.decision == "ExplicitlyDenied":
            assert a.decision == "ExplicitlyDenied", (before, after)


def shuffled(c, items: list) -> list:
    items = list(items)
    out = []
    while items:
        out.append(items.pop(c.integer(0, len(items) - 1)))
    return out


def reorder(c, req: dict) -> dict:
    out = copy.deepcopy(req)
    for _, path in layers_of(out):
        doc = get(out, path)
        doc["Statement"] = shuffled(c, statements_of(doc))
    if out.get("identityPolicies"):
        out["identityPolicies"] = shuffled(c, out["identityPolicies"])
    for f in ("scps", "rcps"):
        if out.get(f):
            out[f] = [shuffled(c, level) for level in out[f]]
    return out


def duplicate(c, req: dict) -> dict:
    out = copy.deepcopy(req)
    places = layers_of(out)
    if not places:
        return out
    _, path = c.choice(places)
    doc = get(out, path)
    sts = statements_of(doc)
    sts.insert(c.integer(0, len(sts)), copy.deepcopy(c.choice(sts)))
    doc["Statement"] = sts
    return out


@SETTINGS
@given(requests_and(reorder))
def test_reordering_statements_and_policies_changes_nothing(pairs):
    for (before, after), (b, a) in zip(pairs, decided_pairs(pairs)):
        assert (a.decision, a.blocked_by) == (b.decision, b.blocked_by), (before, after)


@SETTINGS
@given(requests_and(duplicate))
def test_duplicating_a_statement_changes_nothing(pairs):
    for (before, after), (b, a) in zip(pairs, decided_pairs(pairs)):
        assert (a.decision, a.blocked_by) == (b.decision, b.blocked_by), (before, after)


@settings(derandomize=True, max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(request_strategy(), min_size=2, max_size=12))
def test_a_batch_decides_each_request_as_alone(reqs):
    for k, r in enumerate(reqs):
        r["id"] = k
    together = decide(reqs)
    for r, t in zip(reqs, together):
        alone = decide([r])[0]
        assert (t.decision, t.blocked_by, t.reasons) == (alone.decision, alone.blocked_by, alone.reasons), r
