"""Privilege escalation against the public catalogues: for every path of pathfinding.cloud
(../shared/data/pathfinding) and the IAMVulnerable paths it does not list, an account where the
path is exploitable and twins where one required permission is denied or scoped away; guardrails
(boundary, SCP, conditions); the catalogue each method cites.

All accounts are one snapshot decided by one run of the analysis (the driver evaluates every
permission the rules need in one batch)."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import clingo
import pytest
import yaml

from reasoner.analysis import Analyzer
from reasoner.escalate import escalations, rule_files
from reasoner.load import load

from .conftest import ROOT, shared_path
from .escalate_estates import Case, organization, write_snapshot

SETUPS = yaml.safe_load((Path(__file__).parent / "data" / "escalate" / "setups.yaml").read_text())
PATH_IDS = sorted(SETUPS["paths"])
EXTRA_IDS = sorted(SETUPS["extra"])
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def catalogue(pid: str) -> dict:
    """The pathfinding.cloud record of a path (fails loudly when the shared data is missing)."""
    return yaml.safe_load(shared_path("data", "pathfinding", f"{pid}.yaml").read_text())


def required(pid: str) -> list:
    if pid in SETUPS["extra"]:
        return list(SETUPS["extra"][pid]["permissions"])
    return [p["permission"] for p in catalogue(pid)["permissions"]["required"]]


def setup(pid: str) -> dict:
    return SETUPS["paths"].get(pid) or SETUPS["extra"][pid]


class Run:
    """Every case's account in one snapshot, and the one analysis of it."""

    def __init__(self, root: Path):
        self.cases: dict = {}  # key → Case
        self.n = 0
        for k, pid in enumerate(PATH_IDS + EXTRA_IDS):
            perms = required(pid)
            self.add(("found", pid), Case(self.next(), setup(pid), perms))
            for i, perm in enumerate(perms):
                # alternate between an explicit Deny and a grant scoped to a decoy resource (only
                # permissions that apply to one resource can be scoped away)
                mode = "scope" if perm in setup(pid).get("at", {}) and (k + i) % 2 == 0 else "deny"
                self.add(("twin", pid, perm), Case(self.next(), setup(pid), perms, (perm, mode)))
        lam, upd = setup("lambda-001"), setup("iam-012")
        lam_perms, upd_perms = required("lambda-001"), required("iam-012")
        # a boundary that leaves iam:PassRole out
        self.add(("boundary", "lambda-001"), Case(self.next(), lam, lam_perms, boundary=[{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]))
        # a boundary that allows everything the path needs
        self.add(("boundary-ok", "lambda-001"), Case(self.next(), lam, lam_perms, boundary=[{"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"}]))
        # an SCP that denies lambda:CreateFunction
        self.add(("scp", "lambda-001"), Case(self.next(), lam, lam_perms))
        # an SCP that denies sts:AssumeRole: the rewritten trust policy is of no use
        self.add(("scp-assume", "iam-012"), Case(self.next(), upd, upd_perms))
        # a role actor whose boundary does not allow sts:AssumeRole (boundaries limit what a
        # trust policy naming a role grants)
        self.add(("boundary-assume", "iam-012"), Case(self.next(), dict(upd, actor="role"), upd_perms, boundary=[{"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": "*"}]))
        self.add(("boundary-assume-ok", "iam-012"), Case(self.next(), dict(upd, actor="role"), upd_perms, boundary=[{"Effect": "Allow", "Action": ["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"], "Resource": "*"}]))
        # iam:PassRole only with MFA: found under that condition
        self.add(("mfa", "lambda-001"), Case(self.next(), lam, lam_perms, conditions={"iam:PassRole": MFA}))
        # power given to a role the actor cannot assume: no escalation
        self.add(("raise-unusable", "iam-014"), Case(self.next(), setup("iam-014"), ["iam:AttachRolePolicy"]))
        accounts = [c.account for c in self.cases.values()]
        scps = [
            ("DenyCreateFunction", [{"Effect": "Deny", "Action": "lambda:CreateFunction", "Resource": "*"}], [self.cases[("scp", "lambda-001")].account]),
            ("DenyAssumeRole", [{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}], [self.cases[("scp-assume", "iam-012")].account]),
        ]
        write_snapshot(root, list(self.cases.values()), organization(accounts, scps))
        self.estate = load(str(root))
        self.result = escalations(Analyzer(self.estate))
        self.by_key: dict = {}
        for f in self.result.findings:
            self.by_key.setdefault((f.principal, f.method, f.target), []).append(f)

    def next(self) -> str:
        self.n += 1
        return str(100000000000 + self.n)

    def add(self, key, case: Case) -> None:
        self.cases[key] = case

    def finding(self, key):
        case = self.cases[key]
        pid = key[1]
        got = self.by_key.get((case.attacker, setup(pid)["method"], case.target), [])
        return got[0] if got else None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return Run(tmp_path_factory.mktemp("escalate") / "snapshot")


@lru_cache(maxsize=None)
def rule_facts(name: str, arity: int) -> frozenset:
    ctl = clingo.Control(["--warn=none"])
    for f in rule_files():
        ctl.load(str(f))
    ctl.ground([("base", [])])
    out = set()
    for a in ctl.symbolic_atoms.by_signature(name, arity):
        if a.is_fact:
            out.add(tuple(x.string if x.type == clingo.SymbolType.String else str(x) for x in a.symbol.arguments))
    return frozenset(out)


# ------------------------------------------------------------------------------------ catalogue


def test_every_pathfinding_path_has_a_setup():
    ids = sorted(p.stem for p in shared_path("data", "pathfinding").glob("*.yaml"))
    assert len(ids) == 65
    assert ids == PATH_IDS


@pytest.mark.parametrize("pid", PATH_IDS + EXTRA_IDS)
def test_method_cites_the_path(pid):
    method = setup(pid)["method"]
    cited = {cid for m, _title, cid in rule_facts("method", 3) if m == method}
    assert pid in cited, f"{method} cites {sorted(cited)}"


@pytest.mark.parametrize("pid", PATH_IDS + EXTRA_IDS)
def test_method_requires_the_path_permissions(pid):
    """What the method asks the evaluation for is what the catalogue lists, except what the step
    that lets the actor act as a raised target decides (an assume edge, iam:CreateAccessKey) and
    the sts:AssumeRole on a rewritten trust policy (as_trusted) that the catalogue leaves out."""
    method = setup(pid)["method"]
    reqs = [(a, where) for m, a, where in rule_facts("requires", 3) if m == method]
    mine = {a for a, where in reqs if where != "as_trusted"} | {a.lower() for a in setup(pid).get("also", ())}
    theirs = {p.lower() for p in required(pid)}
    assert theirs - mine == {p.lower() for p in setup(pid).get("step", ())}
    assert mine <= theirs
    assert {a for a, where in reqs if where == "as_trusted"} <= {"sts:assumerole"}


def test_iam_vulnerable_paths_are_cited_and_catalogued():
    methods = rule_facts("method", 3)
    readme = (ROOT / "encodings" / "escalate" / "README.md").read_text()
    assert len(SETUPS["iam_vulnerable"]) == 31
    for scenario, method in SETUPS["iam_vulnerable"].items():
        assert any(m == method and cid == f"iam-vulnerable:{scenario}" for m, _t, cid in methods), scenario
        assert re.search(rf"\b{re.escape(scenario)}\b", readme), f"README does not list {scenario}"


def test_readme_lists_every_method_and_path():
    readme = (ROOT / "encodings" / "escalate" / "README.md").read_text()
    for m, _t, _cid in rule_facts("method", 3):
        assert f"`{m}`" in readme, m
    for pid in PATH_IDS:
        assert re.search(rf"\b{pid}\b", readme), pid


# ------------------------------------------------------------------------------ found / twins


@pytest.mark.parametrize("pid", PATH_IDS + EXTRA_IDS)
def test_path_found(run, pid):
    case = run.cases[("found", pid)]
    f = run.finding(("found", pid))
    others = [(g.method, g.target) for g in run.result.findings if g.principal == case.attacker]
    assert f is not None, f"{pid}: no {setup(pid)['method']} on {case.target}; found {others}"
    assert f.steps_to_admin == setup(pid).get("steps", 1)
    assert f.conditions == []
    # the proof: every permission the method requires, evaluated and allowed
    asked = {h.action.lower() for h in f.hops}
    assert {p.lower() for p in required(pid)} - {p.lower() for p in setup(pid).get("step", ())} <= asked
    assert all(h.decision == "Allowed" for h in f.hops)


@pytest.mark.parametrize("pid", PATH_IDS + EXTRA_IDS)
def test_path_not_found_without_one_permission(run, pid):
    twins = [k for k in run.cases if k[0] == "twin" and k[1] == pid]
    assert len(twins) == len(required(pid))
    for key in twins:
        case = run.cases[key]
        assert run.finding(key) is None, f"{pid}: still found with {case.twin[0]} {'denied' if case.twin[1] == 'deny' else 'scoped to ' + case.decoy(setup(pid)['at'][case.twin[0]])}"


def test_twins_deny_and_scope_away(run):
    modes = [c.twin[1] for k, c in run.cases.items() if k[0] == "twin"]
    assert modes.count("scope") >= 30 and modes.count("deny") >= 60


def test_admins_are_the_targets_not_the_attackers(run):
    admins = set(run.result.admins)
    assert f"arn:aws:iam::{run.cases[('found', 'lambda-001')].account}:role/admin" in admins
    assert not any(c.attacker in admins for c in run.cases.values())
    assert not any(f.principal in admins for f in run.result.findings)


# ---------------------------------------------------------------------------------- guardrails


def test_boundary_without_a_required_permission(run):
    assert run.finding(("boundary", "lambda-001")) is None
    assert run.finding(("boundary-ok", "lambda-001")) is not None


def test_scp_denying_a_required_permission(run):
    assert run.finding(("scp", "lambda-001")) is None
    assert run.finding(("found", "lambda-001")) is not None  # same organization, no such SCP


def test_rewritten_trust_still_meets_scps_and_boundaries(run):
    assert run.finding(("scp-assume", "iam-012")) is None
    assert run.finding(("boundary-assume", "iam-012")) is None
    f = run.finding(("boundary-assume-ok", "iam-012"))
    assert f is not None and f.steps_to_admin == 1
    assert any(h.action.lower() == "sts:assumerole" and h.decision == "Allowed" for h in f.hops)


def test_condition_makes_the_finding_conditional(run):
    f = run.finding(("mfa", "lambda-001"))
    assert f is not None
    assert f.conditions and all("multifactorauthpresent" in c.lower() for c in f.conditions)
    passrole = [h for h in f.hops if h.action.lower() == "iam:passrole"]
    assert passrole and passrole[0].decision == "ConditionallyAllowed"
    assert run.finding(("found", "lambda-001")).conditions == []


def test_raising_a_role_one_cannot_act_as_is_no_escalation(run):
    case = run.cases[("raise-unusable", "iam-014")]
    assert run.finding(("raise-unusable", "iam-014")) is None
    assert not [f for f in run.result.findings if f.principal == case.attacker]
