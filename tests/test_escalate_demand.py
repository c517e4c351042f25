"""The escalation driver asks fewer questions than the rules could read, and the answers stay the
same: assume-role edges evaluated on demand give the findings that every edge gives (a rules file
of the user's makes the driver evaluate every edge), and the filter that leaves requests out
never leaves out one the evaluation would allow."""
from __future__ import annotations

import json
import random
import re
import sys

import pytest

from reasoner import escalate, facts, match, staged
from reasoner.analysis import Analyzer
from reasoner.escalate import _MayAllow, _required_actions, escalations, rule_files
from reasoner.evaluate import evaluate
from reasoner.load import load

from .conftest import ROOT, shared_path

BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))
import synth  # noqa: E402


def _canonical(result) -> list[str]:
    """Findings as sorted JSON texts.  Within one layer of a proof the statements, and the
    residual conditions of a hop (all must hold), are listed in the order the evaluation numbered
    policies in its batch, which depends on what else the batch held: those lists are compared as
    sets."""
    out = []
    for f in result.as_json()["findings"]:
        for h in f["proof"]["hops"]:
            h["conditions"] = sorted(h.get("conditions", []))
            for v in h.get("reasons", {}).values():
                for slot in v if isinstance(v, list) else [v]:
                    for k in ("allow", "deny"):
                        if k in slot:
                            slot[k] = sorted(slot[k], key=lambda x: json.dumps(x, sort_keys=True))
        out.append(json.dumps(f, sort_keys=True))
    return sorted(out)


@pytest.fixture(scope="module")
def estates(tmp_path_factory):
    shared_path("data", "aws-managed-policies.jsonl")  # missing: the tests fail, they do not skip
    root = tmp_path_factory.mktemp("demand")
    out = {"example": ROOT / "examples" / "estate"}
    for name, roles, policies, seed, single in [("org-7", 100, 30, 7, False), ("org-11", 120, 40, 11, False), ("one-account-7", 100, 30, 7, True)]:
        synth.generate(root / name, roles, policies, seed, single=single)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def every_edge(tmp_path_factory):
    """An empty rules file: with rules of the user's, every edge is evaluated."""
    f = tmp_path_factory.mktemp("rules") / "none.lp"
    f.write_text("% no methods\n")
    return f


@pytest.mark.parametrize("name", ["example", "org-7", "org-11", "one-account-7"])
@pytest.mark.parametrize("max_steps", [6, 2])
def test_edges_on_demand_give_the_same_findings(estates, every_edge, name, max_steps):
    est = load(str(estates[name]))
    demand = escalations(Analyzer(est), max_steps=max_steps)
    every = escalations(Analyzer(est), rules=[every_edge], max_steps=max_steps)
    assert demand.admins == every.admins
    assert demand.admin_conditions == every.admin_conditions
    assert _canonical(demand) == _canonical(every)
    if name != "example":
        assert demand.findings and any(f.steps_to_admin for f in demand.findings)


def test_left_out_requests_are_not_allowed(estates):
    """Every request the filter leaves out is denied by the evaluation (a sample of them, over the
    actions the rules require and every principal, policy and workload as the resource)."""
    est = load(str(estates["org-11"]))
    an = Analyzer(est)
    may = _MayAllow(an)
    resources = sorted(an.principals) + sorted({w.arn for a in est.accounts.values() for w in a.workloads})
    resources += sorted({mp.arn for a in est.accounts.values() for mp in a.managed_policies.values()})
    actions = sorted(_required_actions(rule_files()))
    matching: dict = {}

    def near(x: str, a: str) -> list:
        """Resources one of x's identity Allow statements for a names (not by `*`)."""
        out = []
        for pol, _ in est.identity_policies(x):
            for st in pol.statements:
                if st.effect == "Allow" and st.resources and any(match.action_matches(p.lower(), a) for p in st.actions):
                    for pat in st.resources:
                        if pat not in matching:
                            matching[pat] = [r for r in resources if pat != "*" and match.arn_matches(pat, r)]
                        out += matching[pat]
        return out

    rng = random.Random(5)
    asked, left = [], 0
    while left < 1500:
        a = rng.choice(actions)
        # mostly principals with an identity Allow that mentions the action, and resources it
        # names: the filter then judges resources, SCP levels and boundaries
        holders = sorted(an.candidates(a))
        x = rng.choice(holders) if holders and rng.random() < 0.8 else rng.choice(sorted(an.principals))
        named = near(x, a)
        r = rng.choice(named) if named and rng.random() < 0.6 else rng.choice(resources)
        could = may.could(x, a, r)
        left += not could
        asked.append((could, an.request(x, a, r, None, None, True, rid=(x, a, r))))
    decisions = evaluate([req for _, req in asked])
    granted = [(could, d.id) for (could, _), d in zip(asked, decisions) if d.decision in ("Allowed", "ConditionallyAllowed")]
    assert [rid for could, rid in granted if not could] == []
    assert len(granted) > 100  # the sample reaches requests that are allowed


def test_a_resource_policy_opens_a_workload_to_other_accounts(tmp_path, every_edge):
    """Methods pair an actor with the workloads of its account, and with those of other accounts
    whose resource-based policy may let it in: a function policy naming another account's user."""
    from .escalate_estates import Case, write_snapshot
    from .test_escalate_paths import SETUPS

    lam = SETUPS["paths"]["lambda-003"]
    owner = Case("300000000001", lam, ["lambda:UpdateFunctionCode"])
    # the other account's attacker may update any function; the workload it has is not an admin's
    other_setup = {k: v for k, v in lam.items() if k != "at"}
    other_setup["roles"] = {"plain": {"trusts": "lambda.amazonaws.com"}}
    other_setup["workloads"] = [{"arn": "arn:aws:lambda:us-east-1:{acct}:function:plain-fn", "role": "role/plain"}]
    other = Case("300000000002", other_setup, ["lambda:UpdateFunctionCode"])
    root = write_snapshot(tmp_path / "snap", [owner, other])
    fn = owner.target
    res = root / "accounts" / owner.account / "resources.json"
    doc = json.loads(res.read_text())
    doc["ResourcePolicies"] = [{"Arn": fn, "Policy": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": other.attacker}, "Action": "lambda:UpdateFunctionCode", "Resource": fn}]}}]
    res.write_text(json.dumps(doc))
    est = load(str(root))
    got = escalations(Analyzer(est))
    found = {(f.principal, f.method, f.target) for f in got.findings}
    assert (other.attacker, "lambda_update_code", fn) in found
    assert (owner.attacker, "lambda_update_code", fn) in found
    # without the function policy the other account's attacker has no way in
    doc["ResourcePolicies"] = []
    res.write_text(json.dumps(doc))
    closed = escalations(Analyzer(load(str(root))))
    assert (other.attacker, "lambda_update_code", fn) not in {(f.principal, f.method, f.target) for f in closed.findings}
    assert _canonical(got) == _canonical(escalations(Analyzer(est), rules=[every_edge]))


@pytest.mark.parametrize("pattern", [
    "arn:aws:iam::*:user/${aws:username}",
    "arn:aws:iam::123456789012:role/${aws:PrincipalTag/team}-*",
    "arn:aws:s3:::bucket/${aws:userid}/*",
    "arn:aws:iam::${aws:PrincipalAccount}:role/app-*",
    "arn:aws:lambda:*:123456789012:function:${aws:username, 'x'}",
    "arn:aws:iam::123456789012:role/${*}",
    "${aws:username}",
])
@pytest.mark.parametrize("value", ["alice", "app-1", "a/b", "*", "x:y"])
def test_loosened_patterns_match_whatever_the_substituted_ones_do(pattern, value):
    from reasoner.escalate import _loosened

    context = {"aws:username": [value], "aws:principaltag/team": [value], "aws:userid": [value], "aws:principalaccount": [value]}
    loose = _loosened(pattern)
    for resource in ["arn:aws:iam::123456789012:user/alice", f"arn:aws:iam::123456789012:role/{value}-api",
                     f"arn:aws:s3:::bucket/{value}/k", "arn:aws:iam::123456789012:role/app-1",
                     f"arn:aws:lambda:us-east-1:123456789012:function:{value}", "arn:aws:iam::123456789012:role/*"]:
        exact = match.substitute_resource(pattern, context, True)
        if exact is not None and match.arn_matches(exact, resource):
            assert loose == "*" or match.arn_matches(loose, resource), (pattern, value, resource)


def test_left_out_edges_are_not_allowed(estates):
    """Every assume-role pair the edge filter leaves out is denied by the evaluation."""
    from reasoner.estate import Role

    est = load(str(estates["org-11"]))
    an = Analyzer(est)
    may = _MayAllow(an)
    reqs = []
    for who in sorted(an.principals):
        for role in sorted(an.assumable_by(who)):
            r = an.principals.get(role)
            if role != who and isinstance(r, Role) and r.trust is not None:
                reqs.append((may.could_assume(who, r), an.request(who, "sts:AssumeRole", role, None, r.account, True, (), rid=(who, role))))
    assert sum(not could for could, _ in reqs) > 100
    decisions = evaluate([req for _, req in reqs], exact_conditions=False)
    granted = [(could, d.id) for (could, _), d in zip(reqs, decisions) if d.decision in ("Allowed", "ConditionallyAllowed")]
    assert granted and [rid for could, rid in granted if not could] == []


def test_need_atoms_read_from_their_text():
    """The driver reads need atoms from the text clingo writes: the same strings as the API."""
    import clingo

    from reasoner.escalate import _need_arguments

    rng = random.Random(3)
    alphabet = ['a', 'Z', '0', ':', '/', '*', '"', '\\', '\n', '\t', ',', '(', ')', ' ', 'é', '$', '{', '}']
    for _ in range(500):
        args = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(3)]
        for name in ("need", "need_as_trusted"):
            sym = clingo.Function(name, [clingo.String(a) for a in args])
            assert _need_arguments(str(sym)) == tuple(args)
    # anything but three strings is no need atom the driver reads (constants, numbers, terms)
    others = [clingo.Function("c"), clingo.Number(4), clingo.Function("raise", [clingo.String("x")]), clingo.Function("", [clingo.String("a"), clingo.String("b")])]
    for pos in range(3):
        for other in others:
            for text in ("x", 'a","b', ""):
                args = [clingo.String(text)] * 3
                args[pos] = other
                assert _need_arguments(str(clingo.Function("need", args))) is None
    assert _need_arguments('need("a","b","c",1)') is None and _need_arguments('needs("a","b","c")') is None


def test_terms_read_back_from_their_text_are_the_symbols():
    """The rules are solved in a forked process, which sends back the text clingo writes for each
    shown atom; read back here, a term prints, sorts and states itself as the symbol did: strings
    with quotes, backslashes, newlines and program-like text, tuples, numbers, constants, classical
    negation, #inf and #sup."""
    import clingo

    from reasoner.escalate import _read

    rng = random.Random(5)
    alphabet = ['a', 'Z', '0', ':', '/', '*', '"', '\\', '\n', '\t', ',', '(', ')', ' ', 'é', '.', '%', '#script', ':-']

    def rand_term(depth: int):
        k = rng.randrange(7 if depth < 3 else 2)
        if k == 5:
            return rng.choice([clingo.Infimum, clingo.Supremum])
        if k == 6:
            return clingo.Function(rng.choice(["p", "q"]), [rand_term(depth + 1) for _ in range(rng.randrange(0, 3))], False)
        if k == 0:
            return clingo.String("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8))))
        if k == 1:
            return clingo.Number(rng.randrange(-50, 50))
        if k == 2:
            return clingo.Function(rng.choice(["admin", "lambda", "raise", "x_1"]))
        args = [rand_term(depth + 1) for _ in range(rng.randrange(0, 4))]
        return clingo.Function("" if k == 3 else rng.choice(["raise", "escalation", "f"]), args)

    def flat_term():
        """As most shown atoms' arguments are (read by a shorter way: escalate._FLAT)."""
        k = rng.randrange(4)
        plain = [c for c in alphabet if c not in ('"', '\\', '\n')]
        text = "".join(rng.choice(plain) for _ in range(rng.randrange(0, 8)))
        if k == 0:
            return clingo.String(text)
        if k == 1:
            return clingo.Number(rng.randrange(-50, 50))
        if k == 2:
            return clingo.Function(rng.choice(["admin", "lambda", "x_1", "sts_assume_role"]))
        return clingo.Function("raise", [clingo.String(text)])

    flat = [clingo.Function("escalation", [flat_term() for _ in range(rng.randrange(1, 6))]) for _ in range(300)]
    assert all(escalate._FLAT.match(str(s)) for s in flat)
    syms = [clingo.Function("escalation", [rand_term(0) for _ in range(4)]) for _ in range(400)] + flat
    assert sum(bool(escalate._FLAT.match(str(s))) for s in syms[:400]) > 10  # (some random ones are flat too)
    terms = [_read(str(s)) for s in syms]
    for s, t in zip(syms, terms):
        assert (str(t), repr(t)) == (str(s), repr(s))
        assert facts.from_plain(t.plain()) == s  # as the solver's process states it
    assert sorted(range(len(syms)), key=lambda i: str(tuple(syms[i].arguments))) == sorted(range(len(syms)), key=lambda i: str(tuple(terms[i].arguments)))
    for bad in ['p("a\\q")', "p(1", "p(1))", "P", "", "p(,)", 'p("a"b)', "p(-a)x"]:
        with pytest.raises(ValueError):
            _read(bad)


@pytest.mark.parametrize("threaded", [False, True], ids=["alone", "other-thread"])
@pytest.mark.parametrize("name", ["example", "org-11"])
def test_rules_solved_in_a_process_of_their_own_or_here_give_the_same_report(estates, name, threaded, monkeypatch):
    """The escalation rules are grounded in a process of their own (each stage in a fork of it)
    when one may be started; in this process (IAM_REASONER_JOBS=1) the report is the same,
    finding by finding and proof by proof.  Also while another thread runs (a Jupyter kernel
    has several): that process then decides its requests itself (it never forks), but the rules
    still go to a new interpreter, which inherits no lock."""
    import threading

    est = load(str(estates[name]))
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    apart: list = []
    close = staged.Worker.close
    # (each process closed: once it answered, then again, with nothing left, at the end)
    monkeypatch.setattr(staged.Worker, "close", lambda self: (self.pid is not None and apart.append(not self.local)) or close(self))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    if threaded:
        other.start()
    try:
        assert (threading.active_count() > 1) == threaded
        forked = escalations(Analyzer(est))
    finally:
        stop.set()
        if threaded:
            other.join()
    # the rules in one process, the ways over numbers in another (escalate._ways_coded)
    assert apart == [True, True], "the rules and the ways were not solved in processes of their own"
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = escalations(Analyzer(est))
    assert json.dumps(forked.as_json(), sort_keys=True) == json.dumps(here.as_json(), sort_keys=True)
    assert forked.findings or name == "example"


# (Condition clause, role tags, whether the evaluation can allow the role's request)
_CLAUSES = [
    ({"StringLike": {"aws:PrincipalTag/QuickSetupManagerID": "*"}}, {}, False),  # tag absent
    ({"StringLike": {"aws:PrincipalTag/QuickSetupManagerID": "*"}}, {"QuickSetupManagerID": "m-1"}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": "ops"}}, {"team": "dev"}, False),
    ({"StringEquals": {"aws:PrincipalTag/team": ["dev", "ops"]}}, {"Team": "ops"}, True),  # keys ignore case
    ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "OPS"}}, {"team": "ops"}, True),
    ({"StringEqualsIfExists": {"aws:PrincipalTag/team": "ops"}}, {}, True),  # IfExists: absent is true
    ({"StringNotEquals": {"aws:PrincipalTag/team": "ops"}}, {}, True),  # negated: absent is true
    ({"StringNotEquals": {"aws:PrincipalTag/team": "ops"}}, {"team": "ops"}, False),  # (not refuted here)
    ({"ForAllValues:StringEquals": {"aws:PrincipalTag/team": "ops"}}, {}, True),  # no values: true
    ({"Null": {"aws:PrincipalTag/team": "true"}}, {}, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ops-*"}}, {}, False),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/v*"}}, {}, True),
    ({"StringEquals": {"aws:PrincipalAccount": "444455556666"}}, {}, False),
    ({"StringEquals": {"aws:PrincipalAccount": "400000000001"}}, {}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}, {"team": "x", "other": "x"}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": "${aws:PrincipalTag/other}"}}, {"team": "x", "other": "y"}, False),
    ({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, {}, True),  # unknown: open, not refuted
]


def test_an_allow_the_principal_refutes_is_left_out_and_no_other(tmp_path):
    """The filter leaves out an identity Allow whose condition the principal's own tags, ARN or
    account refute (escalate._refuted); every such request is denied by the evaluation, and every
    request the evaluation allows, on its own or under conditions, is kept.  AWS, "IAM JSON policy
    elements: Condition operators": "If the key that you specify in a policy condition is not
    present in the request context, the values do not match" (positive operators), while
    ...IfExists, negated operators and ForAllValues are true for an absent key."""
    acct = "400000000001"
    target = f"arn:aws:iam::{acct}:role/target"
    roles = [{"RoleName": "target", "Arn": target, "Path": "/", "RoleId": "AROATARGET", "Tags": [],
              "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
              "RolePolicyList": [], "AttachedManagedPolicies": []}]
    for i, (clause, tags, _) in enumerate(_CLAUSES):
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": "*", "Condition": clause}]}
        roles.append({"RoleName": f"v{i}", "Arn": f"arn:aws:iam::{acct}:role/v{i}", "Path": "/", "RoleId": f"AROAV{i}",
                      "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                      "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                      "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": doc}], "AttachedManagedPolicies": []})
    d = tmp_path / "accounts" / acct
    d.mkdir(parents=True)
    (d / "authorization-details.json").write_text(json.dumps(
        {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": roles, "Policies": []}))
    an = Analyzer(load(str(tmp_path)))
    may = _MayAllow(an)
    xs = [f"arn:aws:iam::{acct}:role/v{i}" for i in range(len(_CLAUSES))]
    decisions = evaluate([an.request(x, "iam:attachrolepolicy", target, None, None, True) for x in xs])
    granted = [d.decision in ("Allowed", "ConditionallyAllowed") for d in decisions]
    assert granted == [ok for *_, ok in _CLAUSES]  # the estate says what the clauses meant to
    kept = [may.could(x, "iam:attachrolepolicy", target) for x in xs]
    assert [i for i, (k, g) in enumerate(zip(kept, granted)) if g and not k] == []
    # left out: the clauses on the principal's own keys that it does not meet
    assert [i for i, k in enumerate(kept) if not k] == [0, 2, 10, 12]
    assert [may.scope(x, "iam:attachrolepolicy") == [] for x in xs] == [not k for k in kept]


def test_edges_begun_in_forked_processes_are_the_edges(estates, monkeypatch, forks):
    """`Analyzer.assumers_later` (the escalation driver begins the edges into administrators
    while it states the rules' facts) gives the edges `assumers` gives, with the same decisions
    and, asked for, their exact residual conditions; begun in two forked processes."""
    import reasoner.evaluate as ev

    est = load(str(estates["org-11"]))
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 50)
    an = Analyzer(est)
    roles = sorted(a for a, p in an.principals.items() if type(p).__name__ == "Role")
    finish, _ = an.assumers_later(roles, exact_conditions=True)
    assert len(forks) == 2, "not begun in two forked processes"
    later = finish()
    assert all(d._pending is None for lst in later.values() for _, d, _ in lst)
    now = Analyzer(est).assumers(roles)

    def plain(found):
        return {r: sorted((who, d.decision, tuple(d.conditions), json.dumps(d.reasons, sort_keys=True)) for who, d, _ in lst) for r, lst in found.items()}

    assert plain(later) == plain(now)
    assert sum(len(v) for v in later.values()) > 50 and any(d.conditions for lst in later.values() for _, d, _ in lst)
    assert an.assumers(roles[:3]) == {r: later[r] for r in roles[:3]}  # kept: asked again, the same edges


def test_edges_decided_now_from_a_count_are_the_edges(estates, monkeypatch):
    """From ``now_from`` requests on, `Analyzer.assumers_later` decides the edges before it
    returns (told first how many): stopping it afterwards stops nothing, and they are the edges
    `assumers` gives, with their exact residual conditions.  Below that count it only begins."""
    import reasoner.evaluate as ev

    est = load(str(estates["org-11"]))
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 50)
    roles = sorted(a for a, p in Analyzer(est).principals.items() if type(p).__name__ == "Role")
    now = Analyzer(est).assumers(roles)
    asked = sum(len(Analyzer(est)._assumer_requests([r], None, ())) for r in roles)
    assert asked > 60

    told: list = []
    an = Analyzer(est)
    finish, cancel = an.assumers_later(roles, exact_conditions=True, now_from=60, deciding_now=told.append)
    assert told == [asked], "decided now: not told, or told another number of requests"
    cancel()  # (nothing left running: the edges are known already)
    got = finish()
    assert all(d._pending is None for lst in got.values() for _, d, _ in lst)

    def plain(found):
        return {r: sorted((who, d.decision, tuple(d.conditions), json.dumps(d.reasons, sort_keys=True)) for who, d, _ in lst) for r, lst in found.items()}

    assert plain(got) == plain(now)

    told = []
    finish, _ = Analyzer(est).assumers_later(roles, exact_conditions=True, now_from=asked + 1, deciding_now=told.append)
    assert told == [] and plain(finish()) == plain(now)


def test_edges_into_administrators_decided_first_give_the_same_report(estates, monkeypatch):
    """A large estate's edges into administrators are decided before the rules' first stage,
    not beside it (escalate.EDGES_FIRST_FROM); the report is the one deciding them beside it gives."""
    est = load(str(estates["org-7"]))
    labels: list = []
    beside = escalations(Analyzer(est), progress=labels.append)
    assert not any(x.endswith("edges into administrators, first") for x in labels)
    monkeypatch.setattr(escalate, "EDGES_FIRST_FROM", 1)
    labels = []
    first = escalations(Analyzer(est), progress=labels.append)
    assert any(x.endswith("edges into administrators, first") for x in labels), "not decided first"
    assert first.findings and _canonical(first) == _canonical(beside)
    assert first.admins == beside.admins


def test_requests_begun_while_the_rest_are_read_give_the_same_report(estates, monkeypatch, forks):
    """Once a stage has asked for a chunk's worth of requests, the driver has them decided in
    forked processes while it reads the rest (evaluate.Evaluating); the report is the one the
    requests decided all at once give."""
    import reasoner.escalate as esc
    import reasoner.evaluate as ev

    est = load(str(estates["org-11"]))
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 4)
    begun = []

    class Seen(ev.Evaluating):
        def __init__(self, requests, exact_conditions=True):
            begun.append(len(requests))
            super().__init__(requests, exact_conditions)

    monkeypatch.setattr(esc, "Evaluating", Seen)
    monkeypatch.setattr(ev, "CHUNK", 8)
    early = escalations(Analyzer(est))
    assert 8 in begun, begun
    monkeypatch.setattr(ev, "CHUNK", 10**6)
    begun.clear()
    once = escalations(Analyzer(est))
    assert 8 not in begun
    assert json.dumps(early.as_json(), sort_keys=True) == json.dumps(once.as_json(), sort_keys=True)
    assert early.findings


def _ways_over(strings: bool, principals, admins, edges, escalation, max_steps) -> tuple:
    """What the report reads of ways.lp's atoms over the facts as the solver states them (strings,
    method constants: escalate._ways_read) or over numbers (escalate._ways_coded, read back by
    _ways_decoded): the raises, the distances, and the steps (as texts, sorted)."""
    import clingo

    from reasoner.escalate import _read, _ways_coded, _ways_decoded, _ways_read
    from reasoner.paths import encoding_file

    if strings:
        def gain(g):
            return ("admin", (), True) if g == "admin" else ("raise", (g[6:],), True) if g.startswith("raise:") else g

        plain = [("max_steps", (max_steps,), True)] + [("principal", (p,), True) for p in principals]
        plain += [("admin", (p,), True) for p in admins] + [("assumes", e, True) for e in edges]
        plain += [("escalation", (x, (m, (), True), r, gain(g)), True) for x, m, r, g in escalation]
    else:
        plain, names, methods = _ways_coded(principals, admins, edges, max_steps, escalation)
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(encoding_file("escalate/ways.lp")))
    with ctl.backend() as b:
        for f in plain:
            b.add_rule([b.add_atom(facts.from_plain(f))])
    ctl.ground([("base", [])])
    with ctl.solve(yield_=True) as h:
        texts = [str(s) for s in next(iter(h)).symbols(shown=True)]
    if strings:
        shown: dict = {}
        for t in texts:
            shown.setdefault(t.partition("(")[0], []).append(_read(t))
        raised, dist, nxt = _ways_read(shown)
    else:
        raised, dist, nxt = _ways_decoded(texts, names, methods)
    for steps in nxt.values():
        for step in steps:
            assert all(repr(_read(str(t))) == repr(t) for t in step)  # (terms as _read gives them)
    return raised, dist, {x: sorted(map(str, steps)) for x, steps in nxt.items()}


def test_ways_over_numbers_are_the_ways_over_strings():
    """The driver solves ways.lp over numbers standing for the strings and methods (no string is
    made while it grounds): read back, its atoms are those ways.lp gives over the strings, on
    random graphs of roles, raises and methods, quotes and backslashes in the names included."""
    rng = random.Random(11)
    seen = {"raised": 0, "admin_dist": 0, "next_step": 0}
    for trial in range(60):
        n = rng.randrange(2, 14)
        ps = [f'arn:aws:iam::1:role/r{i}' + rng.choice(["", '"q', "\\b", " s"]) for i in range(n)]
        admins = set(rng.sample(ps, rng.randrange(0, 3)))
        edges = sorted({(rng.choice(ps + ["arn:aws:iam::9:root"]), rng.choice(ps)) for _ in range(rng.randrange(0, 2 * n))})
        esc = set()
        for _ in range(rng.randrange(0, 3 * n)):
            x = rng.choice(ps)
            g = rng.choice(["admin", "raise:" + rng.choice(ps), rng.choice(ps)])
            esc.add((x, rng.choice(["iam_put_role_policy", "lambda_create", "ec2_run"]), rng.choice(ps + ["arn:aws:lambda:x", "*"]), g))
        esc = sorted(esc)
        steps = rng.choice([1, 2, 6])
        over_strings = _ways_over(True, ps, admins, edges, esc, steps)
        assert _ways_over(False, ps, admins, edges, esc, steps) == over_strings, trial
        for name, got in zip(seen, over_strings):
            seen[name] += len(got)
    assert min(seen.values()) > 20, seen  # (graphs with ways, raises and distances)


def test_only_exact_escalations_go_over_numbers():
    """An escalation atom goes over numbers only when its tuple tells its terms: the method a
    constant (not `assume`, a role's step in ways.lp), the actor and target strings, the gain
    admin, raise(string) or a string that reads as neither."""
    from reasoner.escalate import _exact, _read

    def exact(text):
        return _exact(*_read(text).arguments)

    assert exact('escalation("a",m,"r",admin)') and exact('escalation("a",m,"r",raise("b"))') and exact('escalation("a",m,"r","b")')
    for odd in ['escalation("a","m","r",admin)', 'escalation("a",assume,"r",admin)', 'escalation("a",m,"r","admin")',
                'escalation("a",m,"r","raise:b")', 'escalation("a",m,"r",raise(1))', 'escalation("a",m,1,admin)',
                'escalation(a,m,"r",admin)', 'escalation("a",m,"r",other)', 'escalation("a",m,"r",admin(1))',
                'escalation("a",m(1),"r",admin)', 'escalation("a",-m,"r",admin)', 'escalation("a",m,"r",raise("b","c"))']:
        assert not exact(odd), odd


def test_escalation_atoms_read_quickly_read_as_their_terms():
    """The quick reading of an escalation atom (the shape nearly all have) gives the tuple the
    full reading of its terms gives, and only exact atoms are read quickly: the others are still
    set aside as odd (not over numbers)."""
    from reasoner.escalate import _escalation, _exact, _gain, _read, _str

    def full(text):
        x, m, res, g = _read(text).arguments
        return (_str(x), _str(m), _str(res), _gain(g)), _exact(x, m, res, g)

    texts = ['escalation("arn:aws:iam::1:user/a",iam_put_user_policy,"*",admin)',
             'escalation("a",m,"r",raise("arn:aws:iam::1:role/b"))', 'escalation("a",m2\'_x,"r","b")',
             'escalation("a\\"q",m,"r",admin)', 'escalation("a",m,"r\\nx","b")', 'escalation("a",m,"r",raise("b\\\\"))',
             'escalation("a","m","r",admin)', 'escalation("a",assume,"r",admin)', 'escalation("a",m,"r","admin")',
             'escalation("a",m,"r","raise:b")', 'escalation("a",m,"r",raise(1))', 'escalation("a",m,1,admin)',
             'escalation(a,m,"r",admin)', 'escalation("a",m,"r",other)', 'escalation("a",m,"r",admin(1))',
             'escalation("a",m(1),"r",admin)', 'escalation("a",-m,"r",admin)', 'escalation("a",_m,"r",admin)']
    exact_seen = 0
    for text in texts:
        odd: list = []
        want, exact = full(text)
        assert _escalation(text, {}, odd) == want, text
        assert odd == ([] if exact else [text]), text
        exact_seen += exact
    assert exact_seen == 7


@pytest.mark.parametrize("name", ["example", "org-7", "one-account-7"])
def test_ways_over_numbers_give_the_report_the_solver_gives(estates, monkeypatch, name):
    """The driver's ways over numbers, in a process of their own, give the report of the ways
    the rules' solver decides over its own atoms (what it does when an escalation atom is not
    exact, escalate._exact): finding by finding, with the steps to arbitrary permissions."""
    est = load(str(estates[name]))
    coded = []
    real = escalate._ways_coded
    monkeypatch.setattr(escalate, "_ways_coded", lambda *a: coded.append(1) or real(*a))
    numbers = escalations(Analyzer(est))
    assert coded == [1]
    monkeypatch.setattr(escalate, "_exact", lambda *a: False)
    monkeypatch.setattr(escalate, "_ESCALATION", re.compile(r"(?!)"))  # (no atom read quickly: all are odd)
    solver = escalations(Analyzer(est))
    assert coded == [1]
    assert json.dumps(numbers.as_json(), sort_keys=True) == json.dumps(solver.as_json(), sort_keys=True)
    if name != "example":
        assert any(f.steps_to_admin for f in numbers.findings) and any(f.gains.startswith("raise:") for f in numbers.findings)


def test_an_edge_cited_for_the_rules_action_is_that_request(estates):
    """A permission the rules need that is an assume-role edge decided already (`_Edges.known`)
    is cited with the edge's decision, as the request for the action the rule names: each hop of
    an sts_assume_role finding names the rule's action, the actor and the role, and has the
    decision and residual conditions of that request decided afresh (org-7 has such findings,
    each citing an edge into an administrator)."""
    an = Analyzer(load(str(estates["org-7"])))
    res = escalations(an)
    hops = [(f, h) for f in res.findings if f.method == "sts_assume_role" for h in f.hops]
    assert hops
    fresh = evaluate([an.request(h.principal, h.action, h.resource, None, None, True) for _, h in hops])
    for (f, h), d in zip(hops, fresh):
        assert (h.kind, h.principal, h.action, h.resource) == ("action", f.principal, "sts:assumerole", f.target)
        assert (h.decision, sorted(h.conditions)) == (d.decision, sorted(d.conditions))


def test_an_analysis_keeps_the_estate_files_compressed_and_cites_the_same_places(estates, monkeypatch):
    """While escalations run, the estate's long files are kept compressed (locate.pack_long_texts);
    every proof's deciding statements are still cited at the file:line:col the text gives."""
    from reasoner import locate

    plain = escalations(Analyzer(load(str(estates["org-7"]))))
    monkeypatch.setattr(locate, "PACK_FROM", 1000)  # (every file of this small estate is long)
    est = load(str(estates["org-7"]))
    held = {id(m.policy.source._held): m.policy.source._held for a in est.accounts.values() for m in a.managed_policies.values() if m.policy is not None}
    assert held and all(isinstance(h, locate._Packed) and h.text is not None for h in held.values())
    packed = escalations(Analyzer(est))
    assert all(h.text is None and h.data for h in held.values()), "not compressed while the analysis ran"
    report = json.dumps(packed.as_json(), sort_keys=True)
    assert report == json.dumps(plain.as_json(), sort_keys=True)
    assert re.search(r'"where": "[^"]+authorization-details\.json:\d+:\d+"', report)


def test_permissions_decided_elsewhere_keep_no_request_and_give_the_same_proofs(estates, monkeypatch):
    """A permission decided in a forked process keeps no request: a proof makes it again when
    its reasons are asked (evaluate._Remade, escalate._permission_request).  The report, proof by
    proof, is the one deciding everything in this process gives."""
    import reasoner.evaluate as ev

    est = load(str(estates["org-11"]))
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    monkeypatch.setattr(ev, "PARALLEL_MIN", 4)
    made = []
    remake = escalate._permission_request
    monkeypatch.setattr(escalate, "_permission_request", lambda an, key: made.append(key) or remake(an, key))
    elsewhere = escalations(Analyzer(est))
    hops = [h for f in elsewhere.findings for h in f.hops]
    remade = [h for h in hops if isinstance(h.evaluation.reasons_of, ev._Remade)]
    assert remade and len(remade) > len(hops) / 2, (len(remade), len(hops))
    asked = len(made)
    text = json.dumps(elsewhere.as_json(), sort_keys=True)
    assert len(made) > asked, "no request was made again for the reasons"
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = escalations(Analyzer(est))
    assert not any(isinstance(h.evaluation.reasons_of, ev._Remade) for f in here.findings for h in f.hops)
    assert text == json.dumps(here.as_json(), sort_keys=True)
    # (among them, permissions granted under residual conditions: computed after the decision)
    assert any(h.decision == "ConditionallyAllowed" and h.conditions for h in remade)
