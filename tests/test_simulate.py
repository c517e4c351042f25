"""`reasoner.simulate` and `iam-reasoner simulate`: the contract scripts rely on, analysis mode,
and bad requests."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from click.testing import CliRunner

from reasoner.cli import main
from reasoner.evaluate import simulate, simulate_batch

USER = "arn:aws:iam::111111111111:user/alice"


def _req(**kw):
    base = {
        "id": "r1",
        "principal": USER,
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::b/k",
        "resourceAccount": "111111111111",
        "identityPolicies": [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Office", "Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
                    {"Sid": "BadVpc", "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-bad"}}},
                ],
            }
        ],
    }
    base.update(kw)
    return base


def test_concrete_context_absent_key_is_absent():
    d = simulate(_req())
    assert d.decision == "ImplicitlyDenied"
    assert d.blocked_by == ["identity"]


def test_concrete_context_given():
    d = simulate(_req(context={"aws:SourceIp": "10.1.1.1"}))
    assert d.decision == "Allowed"
    (ref,) = d.reasons["identity"]["allow"]
    assert ref["statement"] == "Office" and ref["effect"] == "Allow"


def test_unknown_context_gives_the_residual_condition():
    d = simulate(_req(unknownContext=True))
    assert d.decision == "ConditionallyAllowed"
    assert d.conditions == ['IpAddress aws:SourceIp "10.0.0.0/8"', 'not (StringEquals aws:SourceVpc "vpc-bad")']


def test_unknown_context_known_values_still_decide():
    d = simulate(_req(unknownContext=True, context={"aws:SourceIp": "192.168.1.1"}))
    assert d.decision == "ImplicitlyDenied"
    d = simulate(_req(unknownContext=True, context={"aws:SourceIp": "10.0.0.1", "aws:SourceVpc": "vpc-bad"}))
    assert d.decision == "ExplicitlyDenied"


def test_unknown_context_absent_keys_are_known_absent():
    d = simulate(_req(unknownContext=True, context={"aws:SourceIp": "10.0.0.1"}, absentKeys=["aws:SourceVpc"]))
    assert d.decision == "Allowed"


def test_batch_grounds_once_and_keeps_order():
    reqs = [_req(id=i, context={"aws:SourceIp": ip}) for i, ip in enumerate(["10.0.0.1", "1.1.1.1", "10.9.9.9"])]
    assert [d.decision for d in simulate_batch(reqs)] == ["Allowed", "ImplicitlyDenied", "Allowed"]


def test_reasons_locate_statements_in_the_request_file(tmp_path):
    f = tmp_path / "req.json"
    f.write_text(json.dumps(_req(context={"aws:SourceIp": "10.0.0.1"}), indent=2))
    r = CliRunner().invoke(main, ["simulate", str(f), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) >= {"id", "decision", "reasons"}
    where = out["reasons"]["identity"]["allow"][0]["where"]
    # the statement object opens on this line of the pretty-printed file
    line = next(i for i, t in enumerate(f.read_text().splitlines(), 1) if '"Sid": "Office"' in t) - 1
    assert where.startswith(f"{f}:{line}:")


def test_batch_cli_errors_are_lines_and_the_batch_goes_on():
    lines = [json.dumps(_req(id="a", context={"aws:SourceIp": "10.0.0.1"})), '{"id": "b", "principal": "x"}', "not json", json.dumps(_req(id="d"))]
    r = CliRunner().invoke(main, ["simulate", "--batch", "--json"], input="\n".join(lines) + "\n")
    assert r.exit_code == 2
    out = [json.loads(x) for x in r.output.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", 3, "d"]
    assert [o["decision"] for o in out] == ["Allowed", "Error", "Error", "ImplicitlyDenied"]
    assert "action" in out[1]["error"] and "JSON" in out[2]["error"]


def test_text_output_is_a_tree():
    r = CliRunner().invoke(main, ["simulate"], input=json.dumps(_req(context={"aws:SourceIp": "10.0.0.1"})))
    assert r.exit_code == 0
    assert r.output.splitlines()[0].endswith(": Allowed")
    assert "└─ identity policies" in r.output or "├─ identity policies" in r.output
    assert "statement Office" in r.output


def test_unreadable_request_exits_2_without_traceback(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"principal": "x", "action": ')
    p = subprocess.run([sys.executable, "-m", "reasoner", "simulate", str(f)], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{f}:1:" in p.stderr and "malformed JSON" in p.stderr


def _allow(sid, cond=None, action="s3:GetObject"):
    st = {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": "*"}
    if cond:
        st["Condition"] = cond
    return st


def test_residual_alternatives_are_or():
    """Two open Allows in one layer: either suffices."""
    d = simulate({
        "principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k", "resourceAccount": "111111111111",
        "unknownContext": True,
        "identityPolicies": [{"Version": "2012-10-17", "Statement": [
            _allow("Vpn", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            _allow("Mfa", {"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        ]}],
    })
    assert d.decision == "ConditionallyAllowed"
    assert d.conditions == ['(Bool aws:MultiFactorAuthPresent "true") or (IpAddress aws:SourceIp "10.0.0.0/8")']


def test_residual_of_layers_that_must_all_allow_is_and():
    """An open Allow in the identity policy and another in the SCP: both are needed."""
    d = simulate({
        "principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k", "resourceAccount": "111111111111",
        "unknownContext": True,
        "identityPolicies": [{"Version": "2012-10-17", "Statement": [_allow("Vpn", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]}],
        "scps": [[{"Version": "2012-10-17", "Statement": [_allow("Region", {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, "*")]}]],
    })
    assert d.decision == "ConditionallyAllowed"
    assert d.conditions == ['IpAddress aws:SourceIp "10.0.0.0/8" and StringEquals aws:RequestedRegion "eu-west-1"']


def test_residual_keeps_a_needed_resource_policy_condition():
    """Same account, identity allows sts:AssumeRole for sure, the trust policy only with MFA: the
    trust policy is required for roles, so MFA is the condition."""
    d = simulate({
        "principal": USER, "action": "sts:AssumeRole", "resource": "arn:aws:iam::111111111111:role/r", "unknownContext": True,
        "identityPolicies": [{"Version": "2012-10-17", "Statement": [_allow("Assume", None, "sts:AssumeRole")]}],
        "resourcePolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "sts:AssumeRole",
                                                                  "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]},
    })
    assert d.decision == "ConditionallyAllowed"
    assert d.conditions == ['Bool aws:MultiFactorAuthPresent "true"']


def _random_residual_requests(seed: int, n: int) -> list[dict]:
    """Requests with several open Allows spread over identity, resource, boundary, SCP and RCP
    layers, same- and cross-account, some open Denies: every residual is computed exactly."""
    import random

    rnd = random.Random(seed)
    keys = [("IpAddress", "aws:SourceIp", "10.0.0.0/8"), ("Bool", "aws:MultiFactorAuthPresent", "true"),
            ("StringEquals", "aws:RequestedRegion", "eu-west-1"), ("StringEquals", "aws:SourceVpc", "vpc-1"),
            ("StringLike", "s3:prefix", "home/*")]

    def stmts(k, effect="Allow", principal=None):
        out = []
        for i in range(k):
            op, key, val = rnd.choice(keys)
            st = {"Sid": f"{effect}{i}", "Effect": effect, "Action": rnd.choice(["s3:GetObject", "s3:*", "*"]), "Resource": "*"}
            if rnd.random() < 0.85:
                st["Condition"] = {op: {key: val}}
            if principal is not None:
                st["Principal"] = principal
            out.append(st)
        return {"Version": "2012-10-17", "Statement": out}

    reqs = []
    for i in range(n):
        cross = rnd.random() < 0.3
        r = {"id": i, "principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k",
             "resourceAccount": "222222222222" if cross else "111111111111", "unknownContext": True,
             "identityPolicies": [stmts(rnd.randint(0, 3))]}
        if rnd.random() < 0.6:
            r["resourcePolicy"] = stmts(rnd.randint(1, 2), principal={"AWS": rnd.choice([USER, "*", "arn:aws:iam::111111111111:root"])})
        if rnd.random() < 0.3:
            r["permissionBoundary"] = stmts(rnd.randint(1, 2))
        if rnd.random() < 0.5:
            r["scps"] = [[stmts(rnd.randint(1, 2))] for _ in range(rnd.randint(1, 2))]
        if rnd.random() < 0.3:
            r["rcps"] = [[stmts(1, principal="*")]]
        if rnd.random() < 0.3:
            r["identityPolicies"].append(stmts(1, "Deny"))
        reqs.append(r)
    return reqs


def test_residuals_by_layers_equal_residuals_by_enumeration(monkeypatch):
    """Residual conditions are first tried in the per-layer form (a few variants decided) and
    enumerated only when the layers do not combine that way: both give the same answers."""
    import reasoner.evaluate as ev

    reqs = _random_residual_requests(11, 300)
    planned = simulate_batch(reqs)
    monkeypatch.setattr(ev, "PLAN_RESIDUALS", False)
    enumerated = simulate_batch(reqs)
    combined = [d for d in planned if d.decision == "ConditionallyAllowed" and any(" or " in c or " and " in c for c in d.conditions)]
    assert len(combined) > 20  # the sample exercises combinations, not only single clauses
    for a, b in zip(planned, enumerated):
        assert (a.decision, a.conditions) == (b.decision, b.conditions), a.id


def _shadowed_residual_requests(seed: int, n: int) -> list[dict]:
    """:func:`_random_residual_requests`, every other one on a set of objects with unconditional
    Allows under a conditional Deny of all (open only because the Deny may shadow them)."""
    reqs = _random_residual_requests(seed, n)
    for r in reqs[::2]:
        r["resource"] = "arn:aws:s3:::b/*"
        docs = r["identityPolicies"] + [r.get("resourcePolicy"), r.get("permissionBoundary")]
        docs += [d for level in r.get("scps", []) + r.get("rcps", []) for d in level]
        for doc in docs:
            for st in (doc or {"Statement": []})["Statement"]:
                if st["Effect"] == "Allow":
                    st.pop("Condition", None)
        r["identityPolicies"].append({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    return reqs


def _variants_one_by_one(batch, work) -> set:
    """Each variant of ``_decide_variants``' work decided as a request of its own, its forced
    statements stated as facts (encodings/eval/statements.lp), all in one plain batch."""
    import reasoner.evaluate as ev
    from reasoner.facts import constant, number

    vb = ev._Batch()
    variants = []
    for u, req, allows, denies, masks in work:
        for mask in masks:
            vb.begin()
            ev._request_facts(vb, req)
            for j, (pid, sidx) in enumerate(allows):
                vp = number(vb.policy(batch.by_handle[pid]))
                vb.add("forced", ev._R, vp, number(sidx), constant("true" if mask >> j & 1 else "false"))
            for pid, sidx in denies:
                vb.add("forced", ev._R, number(vb.policy(batch.by_handle[pid])), number(sidx), constant("false"))
            variants.append((u, mask, vb.end()))
    allowed = {int(t[9:-9]) for t in ev._solve(vb) if t.startswith("decision(") and t.endswith(",allowed)")}
    return {(u, mask) for u, mask, vu in variants if vu in allowed}


@pytest.mark.parametrize("plan, group", [(True, 1000), (False, 1000), (False, 1)])
def test_variants_decided_under_assumptions_equal_variants_decided_one_by_one(monkeypatch, plan, group):
    """The combinations of a request's open Allows are decided on one grounding of the request,
    by solving under assumptions (a request with one combination as a request of its own): the
    same (request, combination) pairs are allowed as when each combination is a request of its
    own.  With the per-layer plan, requests with one combination and with several are decided side
    by side; with every combination enumerated, requests with 2 to 16 or more, in one grounding
    and split by how many they have."""
    import reasoner.evaluate as ev

    reqs = _random_residual_requests(5, 300) + _shadowed_residual_requests(7, 300)
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")  # decided here, where the calls are seen
    monkeypatch.setattr(ev, "PLAN_RESIDUALS", plan)
    monkeypatch.setattr(ev, "GROUP_VARIANTS", group)
    real = ev._decide_variants
    seen = []

    def both(batch, work):
        got = real(batch, work)
        seen.append((len(work), sorted({len(w[-1]) for w in work}), len(got)))
        assert got == _variants_one_by_one(batch, work)
        return got

    monkeypatch.setattr(ev, "_decide_variants", both)
    simulate_batch(reqs)
    sizes = {n for _, ns, _ in seen for n in ns}
    assert sum(w for w, _, _ in seen) > 50
    assert (1 in sizes and max(sizes) >= 2) if plan else (min(sizes) <= 2 and max(sizes) >= 8)
    assert sum(g for _, _, g in seen) > 50  # some combinations allow, some do not


def test_open_allows_with_the_same_clauses_give_the_same_conditions_with_fewer_variants(monkeypatch):
    """A conditional request whose open Allows all have the same open clauses (or none: open only
    because an open Deny may shadow them) is decided again with all of them holding and with
    none, instead of combination by combination: the same decisions and conditions, with fewer
    variants decided."""
    import reasoner.evaluate as ev

    reqs = _shadowed_residual_requests(23, 300)
    variants = []
    real = ev._decide_variants

    def counting(batch, work):
        variants.append(sum(len(w[-1]) for w in work))
        return real(batch, work)

    monkeypatch.setattr(ev, "_decide_variants", counting)
    shortcut = simulate_batch(reqs)
    with_shortcut = sum(variants)
    variants.clear()
    monkeypatch.setattr(ev, "UNIFORM_VARIANTS", False)
    plain = simulate_batch(reqs)
    assert with_shortcut < sum(variants)  # the sample takes the shortcut
    conditional = [d for d in shortcut if d.decision == "ConditionallyAllowed"]
    assert len(conditional) > 30
    for a, b in zip(shortcut, plain):
        assert (a.decision, a.conditions) == (b.decision, b.conditions), a.id


def test_the_same_clauses_in_two_statements_are_one_condition(monkeypatch):
    """Within an account the identity policy and the resource policy may each grant: when both
    Allows ask for MFA, the condition is MFA, once, not `(MFA) or (MFA)`; across accounts both
    must grant, and it is MFA again.  An alternative asking for MFA and more adds nothing.  Either
    way of computing residuals gives it."""
    import reasoner.evaluate as ev

    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": mfa}]}
    granting = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": USER}, "Action": "s3:GetObject", "Resource": "*", "Condition": mfa}]}
    reqs = [{"id": acct, "principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k", "resourceAccount": acct,
             "unknownContext": True, "identityPolicies": [allow], "resourcePolicy": granting} for acct in ("111111111111", "222222222222")]
    # within the account, a resource policy asking for MFA and a source address grants no more
    # than MFA alone: `(MFA) or (MFA and address)` is MFA
    narrower = json.loads(json.dumps(granting))
    narrower["Statement"][0]["Condition"]["IpAddress"] = {"aws:SourceIp": "10.0.0.0/8"}
    reqs.append({**reqs[0], "id": "narrower", "resourcePolicy": narrower})
    for uniform in (True, False):
        monkeypatch.setattr(ev, "UNIFORM_VARIANTS", uniform)
        got = simulate_batch(reqs)
        assert [(d.decision, d.conditions) for d in got] == [("ConditionallyAllowed", ['Bool aws:MultiFactorAuthPresent "true"'])] * 3


def test_decisions_kept_do_not_keep_their_batch():
    """Decisions are kept for as long as an analysis holds them (the assume-role edges of an
    estate); the batch that decided them, with the facts of every request in it, must go once
    the batch is done.  Their reasons are still complete."""
    import gc

    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(3, 60)]
    fresh = ev.evaluate(reqs)
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is ev._Batch]
    again = ev.evaluate(reqs)
    assert [d.reasons for d in fresh] == [d.reasons for d in again]
    assert any(d.reasons for d in fresh)


def test_decisions_from_forked_processes_hold_little(monkeypatch):
    """A large chunk is decided in forked processes.  What a kept decision holds is small: equal
    maps of deciding statements are one object, and the policies in force are read from the
    request again when reasons are asked (not kept beside it), with the same reasons."""
    import dataclasses

    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    base = [request_from_json(r) for r in _random_residual_requests(11, 40)]
    reqs = [dataclasses.replace(r, id=(r.id, k)) for k in range(20) for r in base]  # each asked 20 times
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 100)
    forked = ev.evaluate(reqs)
    assert all(d.reasons_of.by_handle is None for d in forked), "not decided in forked processes"
    infos = {id(d.reasons_of.info) for d in forked}
    assert len(infos) <= len(base) < len(forked)
    assert not hasattr(forked[0].reasons_of, "__dict__") and "checked" not in type(forked[0].reasons_of).__slots__
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = ev.evaluate(reqs)
    assert [d.as_json() for d in forked] == [d.as_json() for d in here]
    assert any(d.reasons for d in here)


def test_deferred_conditions_are_the_exact_ones():
    """Decisions made with exact_conditions=False leave the combinations for later; read (one
    at a time, or completed in one batch), the conditions equal those computed at once."""
    from reasoner.evaluate import complete, evaluate
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(5, 120)]
    exact = evaluate(reqs)
    deferred = evaluate(reqs, exact_conditions=False)
    assert [d.decision for d in deferred] == [d.decision for d in exact]
    waiting = [d for d in deferred if d._pending is not None]
    assert len(waiting) > 10
    complete(waiting[: len(waiting) // 2] + waiting[:2])  # a decision listed twice is completed once
    assert all(d._pending is None for d in waiting[: len(waiting) // 2])
    for a, b in zip(deferred, exact):
        assert a.conditions == b.conditions, a.id


def test_shared_question_facts_decide_each_principal_as_alone():
    """Requests asking the same question share the facts of statements that do not depend on who
    asks (or only on the principal's kind and account): a batch of principals of several kinds
    and accounts, against one trust policy naming an account, a service, a provider and `*` under
    conditions, decides each as it would alone."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Acct", "Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "sts:AssumeRole",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "sts:AssumeRole"},
        {"Sid": "Svc", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Sid": "Idp", "Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::111111111111:saml-provider/corp"}, "Action": "sts:AssumeRoleWithSAML"},
        {"Sid": "Org", "Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}},
        {"Sid": "NoTag", "Effect": "Deny", "Principal": {"AWS": "222222222222"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": "red"}}},
    ]}
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole*", "Resource": "*"}]}
    principals = [
        "arn:aws:iam::111111111111:user/a", "arn:aws:iam::111111111111:user/b", "arn:aws:iam::111111111111:role/r",
        "arn:aws:iam::222222222222:user/c", "arn:aws:iam::222222222222:role/d", "arn:aws:iam::333333333333:user/e",
        "lambda.amazonaws.com", "ec2.amazonaws.com", "arn:aws:iam::111111111111:saml-provider/corp", "*",
        "arn:aws:sts::222222222222:assumed-role/d/s",
    ]
    reqs = []
    for i, p in enumerate(principals):
        for action in ("sts:AssumeRole", "sts:AssumeRoleWithSAML"):
            for unknown in (True, False):
                reqs.append({"id": f"{i}-{action}-{unknown}", "principal": p, "action": action,
                             "resource": "arn:aws:iam::111111111111:role/target", "resourceAccount": "111111111111",
                             "unknownContext": unknown, "resourcePolicy": trust, "identityPolicies": [allow]})
    together = simulate_batch(reqs)
    assert {d.decision for d in together} >= {"Allowed", "ConditionallyAllowed", "ImplicitlyDenied"}
    for r, t in zip(reqs, together):
        alone = simulate(r)
        assert (t.decision, t.blocked_by, t.conditions, t.reasons) == (alone.decision, alone.blocked_by, alone.conditions, alone.reasons), r["id"]


def test_a_batch_decided_in_two_processes_decides_as_one(monkeypatch, forks):
    """A large batch is decided in two halves side by side, each in a forked process (this one
    waits, and clingo's symbols go with them): decisions, blocked layers, reasons and residual conditions (exact, or computed when read) are
    those of one process, for concrete requests, unknown-context ones and requests whose
    statements are shared across the halves."""
    import dataclasses

    import reasoner.evaluate as ev
    from reasoner.evaluate import evaluate
    from reasoner.request import request_from_json

    from tests.strategies import random_requests

    reqs = [request_from_json(r) for r in random_requests(23, 400)]
    reqs += [request_from_json(r) for r in _random_residual_requests(7, 200)]
    reqs += [dataclasses.replace(r, unknown_context=True) for r in reqs[:200]]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    alone = [d.as_json() for d in evaluate(reqs)]
    forks.clear()
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 50)
    split = [d.as_json() for d in evaluate(reqs)]
    assert len(forks) == 2, "the batch was not decided in two forked processes"
    assert split == alone
    deferred = evaluate(reqs, exact_conditions=False)
    assert len(forks) == 4 and any(d._pending is not None for d in deferred[len(reqs) // 2 :])
    assert [d.as_json() for d in deferred] == alone
    assert sum(d["decision"] == "ConditionallyAllowed" for d in alone) > 10
    assert len({d["decision"] for d in alone}) == 4


def test_a_half_that_fails_in_the_child_is_decided_here(monkeypatch):
    """When a forked process cannot decide its half (here: both raise), the chunk is decided in
    this process, with the same answers, and no child is left behind."""
    import os

    import reasoner.evaluate as ev
    from reasoner.evaluate import evaluate
    from reasoner.request import request_from_json

    from tests.strategies import random_requests

    reqs = [request_from_json(r) for r in random_requests(29, 120)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    alone = [d.as_json() for d in evaluate(reqs)]
    real_chunk = ev._evaluate_chunk

    def failing_in_the_child(part, exact):
        if ev._FORKED:
            raise RuntimeError("the child fails")
        return real_chunk(part, exact)

    monkeypatch.setattr(ev, "_evaluate_chunk", failing_in_the_child)
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 50)
    assert ev._jobs() == 2
    assert [d.as_json() for d in evaluate(reqs)] == alone
    try:
        os.waitpid(-1, os.WNOHANG)
        leftover = True
    except ChildProcessError:
        leftover = False
    assert not leftover


def test_requests_whose_facts_agree_are_decided_once_each_as_alone(monkeypatch):
    """Requests that differ only in the resource share the facts their statements give when those
    say the same (a group per policy and content): such requests are grounded once.  Each still
    decides as it would alone: decision, blocked layers, reasons, and residual conditions (exact,
    and computed later for the first of each group)."""
    import random

    import reasoner.evaluate as ev
    from reasoner.evaluate import complete, evaluate
    from reasoner.request import request_from_json

    identity = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Data", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
        {"Sid": "NoSecret", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::data/secret/*"},
        {"Sid": "LogsMfa", "Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::logs/*",
         "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
        {"Sid": "LogsOffice", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/app/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Sid": "Mine", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
    ]}
    bucket = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::data/shared/*"}]}
    rng = random.Random(17)
    prefixes = ["data/", "data/secret/", "data/shared/", "logs/", "logs/app/", "home/alice/", "home/bob/", "other/"]
    principals = [USER, "arn:aws:iam::111111111111:user/bob", "arn:aws:iam::222222222222:user/carol"]
    reqs = []
    for i in range(300):
        p = rng.choice(principals)
        key = rng.choice(prefixes) + f"k{rng.randrange(40)}"
        reqs.append({"id": i, "principal": p, "action": rng.choice(["s3:GetObject", "s3:PutObject"]),
                     "resource": "arn:aws:s3:::" + key, "resourceAccount": "111111111111",
                     "unknownContext": rng.random() < 0.7, "identityPolicies": [identity],
                     **({"resourcePolicy": bucket} if rng.random() < 0.5 else {})})
    parsed = [request_from_json(r) for r in reqs]
    sizes = []
    solve = ev._solve
    monkeypatch.setattr(ev, "_solve", lambda batch: sizes.append((len(batch.alias), len(batch.unique))) or solve(batch))
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    together = evaluate(parsed)
    (n, unique), *_ = sizes
    assert n == 300 and unique < 60, sizes  # 300 requests, few distinct sets of facts
    assert {d.decision for d in together} == {"Allowed", "ConditionallyAllowed", "ImplicitlyDenied", "ExplicitlyDenied"}
    for r, t in zip(reqs, together):
        alone = simulate(r)
        assert (t.decision, t.blocked_by, t.conditions, t.reasons) == (alone.decision, alone.blocked_by, alone.conditions, alone.reasons), r
    deferred = evaluate(parsed, exact_conditions=False)
    waiting = [d for d in deferred if d._pending is not None]
    assert waiting and len({id(d._pending) for d in waiting}) < len(waiting)  # one request computed for several
    complete(deferred)
    assert [(d.decision, d.conditions) for d in deferred] == [(d.decision, d.conditions) for d in together]


def test_conditions_completed_in_the_background_are_the_exact_ones(monkeypatch, forks):
    """Residual conditions begun in forked processes (Completing) while this process goes on are
    those computed at once; cancelled, the processes are stopped and reaped."""
    import os

    import reasoner.evaluate as ev
    from reasoner.evaluate import Completing, evaluate
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(5, 160)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    exact = evaluate(reqs)
    deferred = evaluate(reqs, exact_conditions=False)
    assert sum(d._pending is not None for d in deferred) > 10
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 10)
    forks.clear()
    job = Completing(deferred)
    assert len(forks) == 2 and len(job.evaluating.forked[1]) == 2
    job.finish()
    assert all(d._pending is None for d in deferred)
    assert [d.conditions for d in deferred] == [d.conditions for d in exact]
    again = evaluate(reqs, exact_conditions=False)
    job = Completing(again)
    pids = [pid for pid, _ in job.evaluating.forked[1]]
    job.cancel()
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
            raise AssertionError(f"process {pid} not reaped")
        except ChildProcessError:
            pass
    assert any(d._pending is not None for d in again)  # nothing was set


def _log_slices(monkeypatch, module, name: str, log) -> None:
    """Have ``module.name``, called with a part of the requests first (in the process that
    decides that part), note in ``log`` that process and the part's size."""
    import os

    real = getattr(module, name)

    def logged(part, *args):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {len(part)}\n")
        return real(part, *args)

    monkeypatch.setattr(module, name, logged)


def _logged_slices(log) -> list:
    """(process, size of the part) of each part noted by :func:`_log_slices`."""
    return [tuple(map(int, line.split())) for line in log.read_text().split("\n") if line]


def test_conditions_alone_from_sliced_processes_are_the_exact_ones(monkeypatch, forks, tmp_path):
    """What `complete` and `Completing` wait for: each request's residual conditions alone, sent
    back by forked processes that decide their slice a SLICE at a time (the decisions are not
    rebuilt here): in the requests' order, those computed here at once."""
    import reasoner.evaluate as ev
    from reasoner.evaluate import Evaluating, complete, evaluate
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(17, 300)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    exact = evaluate(reqs)
    assert sum(bool(d.conditions) for d in exact) > 20
    deferred = evaluate(reqs, exact_conditions=False)
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 100)
    monkeypatch.setattr(ev, "CHUNK", 70)
    monkeypatch.setattr(ev, "SLICE", 40)  # 150 requests a process: 4 processes each, in turn
    log = tmp_path / "slices"
    _log_slices(monkeypatch, ev, "_in_chunks", log)
    forks.clear()
    got = Evaluating(reqs, only_conditions=True).result()
    assert len(forks) == 2
    parts = _logged_slices(log)
    assert sorted(n for _, n in parts) == [30, 30] + [40] * 6 and len({pid for pid, _ in parts}) == 8
    assert got == [d.conditions for d in exact]
    forks.clear()
    complete(deferred)
    assert forks and all(d._pending is None for d in deferred)
    assert [d.conditions for d in deferred] == [d.conditions for d in exact]


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("sliced", [False, True])
def test_evaluation_begun_in_forked_processes_gives_the_decisions(monkeypatch, forks, tmp_path, exact, sliced):
    """`Evaluating` decides a batch in forked processes, each its slice chunk by chunk, while the
    caller goes on (and, when its slice is larger than SLICE, a SLICE at a time in processes it
    forks one after another); the decisions (reasons, residual conditions, those left for later
    included) are those `evaluate` gives here.  Cancelled, its processes are gone, those it
    forked too."""
    import os
    import time

    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(13, 300)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 100)
    monkeypatch.setattr(ev, "CHUNK", 70)  # each process decides its slice in chunks
    log = tmp_path / "slices"
    if sliced:
        monkeypatch.setattr(ev, "SLICE", 40)  # 150 requests a process: 4 processes each, in turn
        _log_slices(monkeypatch, ev, "_export_all", log)
    begun = ev.Evaluating(reqs, exact_conditions=exact)
    assert len(forks) == 2
    forked = begun.result()
    assert all(d.reasons_of.by_handle is None for d in forked), "not decided in forked processes"
    if sliced:
        parts = _logged_slices(log)
        assert sorted(n for _, n in parts) == [30, 30] + [40] * 6 and len({pid for pid, _ in parts}) == 8
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = ev.evaluate(reqs, exact_conditions=exact)
    assert [d.as_json() for d in forked] == [d.as_json() for d in here]
    assert sum(d.decision == "ConditionallyAllowed" for d in here) > 20

    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    log.unlink(missing_ok=True)
    stopped = ev.Evaluating(reqs, exact_conditions=exact)
    pids = [pid for pid, _ in stopped.forked[1]]
    if sliced:
        for _ in range(200):  # until a first slice's process has been forked (and done)
            if log.exists() and log.read_text():
                break
            time.sleep(0.02)
        pids += [pid for pid, _ in _logged_slices(log)]
    stopped.cancel()
    for pid in pids[:2]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    def gone(pid: int) -> bool:  # (or dead, not yet reaped by whichever process adopted it)
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    for _ in range(250):  # the processes those forked are killed as their parents go
        if all(gone(pid) for pid in pids[2:]):
            break
        time.sleep(0.02)
    assert all(gone(pid) for pid in pids[2:])


def test_statements_considered_for_an_action_are_those_its_patterns_admit():
    """The evaluation reads, for each policy and action, the statements whose Action admits it
    or whose NotAction does not exclude it; the policy's index (exact names, patterns by service
    prefix, patterns with a wildcard in the service) finds exactly those a scan of every pattern
    finds, whatever the case and wildcards."""
    import random

    from reasoner import match
    from reasoner.evaluate import _candidates
    from reasoner.model import PolicyKind
    from reasoner.parse import parse_policy

    rng = random.Random(3)
    pieces = ["s3", "S3", "iam", "sts", "s?", "*3", "i*", "ec2", "lambda"]
    names = ["GetObject", "getobject", "Get*", "*", "Pass?ole", "PassRole", "AssumeRole*", "List*Buckets", "?etObject"]
    actions = sorted({f"{s.lower().replace('?', 'x').replace('*', 'x')}:{n.lower().replace('?', 'r').replace('*', 'x')}" for s in pieces for n in names}
                     | {"s3:getobject", "iam:passrole", "sts:assumerole", "s3:listallmybuckets", "*", "ec2:runinstances"})
    for _ in range(40):
        statements = []
        for _ in range(rng.randrange(1, 6)):
            pats = [rng.choice(["*", f"{rng.choice(pieces)}:{rng.choice(names)}"]) for _ in range(rng.randrange(1, 4))]
            key = "NotAction" if rng.random() < 0.2 else "Action"
            statements.append({"Effect": rng.choice(["Allow", "Deny"]), key: pats, "Resource": "*"})
        pol = parse_policy({"Version": "2012-10-17", "Statement": statements}, PolicyKind.IDENTITY, "p")
        for action in actions:
            scan = [st.index for st in pol.statements
                    if any(match.action_matches(p.lower(), action) for p in st.actions) != bool(st.not_action)]
            assert [st.index for st in _candidates(pol, action)] == scan, (action, statements)


def test_the_next_chunk_is_decided_while_a_chunk_is_read(monkeypatch, forks, tmp_path):
    """A batch of many chunks: the next chunk's two processes begin once a chunk's are done and
    before its decisions are read here, so never more than two work at once; a batch begun
    before (``after``, an Evaluating) is read while the first chunk's processes work, its
    decisions first.  The decisions are those made here."""
    import os
    import time

    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(29, 300)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = [d.as_json() for d in ev.evaluate(reqs, exact_conditions=False)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 20)
    monkeypatch.setattr(ev, "CHUNK", 70)  # 5 chunks: 70, 70, 70, 70, 20
    log = tmp_path / "spans"
    real = ev._decided_plain

    def timed(part, *args):  # (in each process: when it worked)
        start = time.monotonic()
        got = real(part, *args)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {start} {time.monotonic()}\n")
        return got

    monkeypatch.setattr(ev, "_decided_plain", timed)
    read_at: list = []  # processes forked so far, each time a chunk's decisions are read
    gathered = ev._gathered

    def reading(*args, **kw):
        read_at.append(len(forks))
        return gathered(*args, **kw)

    monkeypatch.setattr(ev, "_gathered", reading)

    def most_at_once() -> int:
        spans = [tuple(map(float, line.split()[1:])) for line in log.read_text().split("\n") if line]
        return max(sum(a0 <= t < a1 for a0, a1 in spans) for t, _ in spans)

    forks.clear()
    got = ev.evaluate(reqs, exact_conditions=False)
    assert [d.as_json() for d in got] == here
    assert read_at == [4, 6, 8, 10, 10]  # chunk i read once chunk i + 1's two processes began
    assert len(forks) == 10 and most_at_once() <= 2

    log.unlink()
    forks.clear()
    read_at.clear()
    begun = ev.Evaluating(reqs[:100], exact_conditions=False)
    got = ev.evaluate(reqs[100:], exact_conditions=False, after=begun)
    assert [d.as_json() for d in got] == here
    # (200 requests: 3 chunks) the batch begun is read once the first chunk's processes began
    # (2 + 2), before that chunk, which is read once the second's began
    assert read_at == [4, 6, 8, 8] and len(forks) == 8 and most_at_once() <= 2


def test_a_large_batch_is_decided_in_smaller_chunks(monkeypatch, forks, tmp_path):
    """A batch of LARGE requests or more is grounded LARGE_CHUNK requests at a time, in this
    process' chunks and in the slices of a batch begun apart (Evaluating); a smaller batch keeps
    CHUNK.  The decisions are those made here in one chunk."""
    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(31, 300)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    monkeypatch.setattr(ev, "CHUNK", 10**6)
    here = [d.as_json() for d in ev.evaluate(reqs, exact_conditions=False)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 20)
    monkeypatch.setattr(ev, "CHUNK", 70)
    monkeypatch.setattr(ev, "LARGE", 250)
    monkeypatch.setattr(ev, "LARGE_CHUNK", 40)
    log = tmp_path / "grounded"
    real = ev._evaluate_chunk

    def counted(part, *args):  # (in whichever process grounds them: how many at once)
        with open(log, "a") as f:
            f.write(f"{len(part)}\n")
        return real(part, *args)

    monkeypatch.setattr(ev, "_evaluate_chunk", counted)

    def grounded() -> list:
        got = sorted(int(x) for x in log.read_text().split())
        log.unlink()
        return got

    done: list = []
    got = ev.evaluate(reqs, exact_conditions=False, progress=lambda n, total: done.append(n))
    # (read before the decisions' residual conditions are, which are decided when first read)
    assert grounded() == sorted([20] * 14 + [10] * 2)  # each chunk in two halves
    assert done == [40, 80, 120, 160, 200, 240, 280, 300]  # chunks of 40
    assert len(forks) == 16
    assert [d.as_json() for d in got] == here

    done.clear()
    log.unlink(missing_ok=True)
    got = ev.evaluate(reqs[:200], exact_conditions=False, progress=lambda n, total: done.append(n))
    assert grounded() == sorted([35] * 4 + [30] * 2)
    assert done == [70, 140, 200]  # (under LARGE: chunks of CHUNK)
    assert [d.as_json() for d in got] == here[:200]

    forks.clear()
    log.unlink(missing_ok=True)
    got = ev.Evaluating(reqs, exact_conditions=False).result()
    # two slices of 150, each decided 40 at a time in processes forked one after another
    assert grounded() == sorted([40, 40, 40, 30] * 2)
    assert len(forks) == 2  # (here: the slices' processes fork theirs)
    assert [d.as_json() for d in got] == here


def test_decisions_made_elsewhere_share_their_alike_lists(monkeypatch, forks):
    """Decisions sent back by forked processes, over all the chunks of one batch, share the
    statements that decided them and their lists of blocked layers and residual conditions when
    alike (an analysis keeps hundreds of thousands): one object per content, equal to the lists
    decided here."""
    import reasoner.evaluate as ev
    from reasoner.request import request_from_json

    reqs = [request_from_json(r) for r in _random_residual_requests(23, 300)]
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = ev.evaluate(reqs)
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 20)
    monkeypatch.setattr(ev, "CHUNK", 70)
    forks.clear()
    got = ev.evaluate(reqs)
    assert len(forks) >= 8  # (five chunks, two processes each)
    assert [(d.blocked_by, d.conditions) for d in got] == [(d.blocked_by, d.conditions) for d in here]
    for field in ("blocked_by", "conditions"):
        objects: dict = {}
        for d in got:
            objects.setdefault(tuple(getattr(d, field)), set()).add(id(getattr(d, field)))
        assert len(objects) > 1 and all(len(ids) == 1 for ids in objects.values()), field
    infos: dict = {}
    for d in got:
        infos.setdefault(repr(sorted(d.reasons_of.info["allow"].items())) + repr(sorted(d.reasons_of.info["deny"].items())), set()).add(id(d.reasons_of.info))
    assert sum(len(ids) for ids in infos.values()) < len(got)
