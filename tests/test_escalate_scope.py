"""The options of methods that pair an actor with every resource of a kind are grounded only on
resources in its reach (`in_scope/3`, `scope_all/2`, reasoner/escalate.py `_MayAllow.scope`): the facts
hold every resource the driver's filter could allow, and the report is the one without them."""
from __future__ import annotations

import json

import pytest

from reasoner import escalate
from reasoner.analysis import Analyzer
from reasoner.escalate import escalations, rule_files
from reasoner.load import load

from .conftest import synthetic_estate


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    return synthetic_estate(tmp_path_factory, "scope", 400, 120, 13)


def test_the_shipped_rules_read_scopes_for_the_actions_that_pair_actors_with_every_resource():
    scoped = escalate._scoped_actions(rule_files())
    assert {"iam:passrole", "lambda:updatefunctioncode", "iam:attachrolepolicy", "iam:putrolepolicy"} <= scoped
    assert not any(a.startswith("sts:") for a in scoped)


def test_in_scope_holds_every_resource_the_filter_could_allow(estate):
    """For every actor and scoped action: `scope_all`, or `in_scope` for exactly the resources of
    the estate that ``could`` allows (those it leaves out are the requests the driver leaves out)."""
    an = Analyzer(estate)
    allows = escalate._MayAllow(an)
    universe = allows.scope_universe()
    checked = scoped_pairs = whole = 0
    for action in sorted(escalate._scoped_actions(rule_files())):
        for x in sorted(an.candidates(action)):
            if allows.never(x, action):
                continue
            reach = allows.scope(x, action)
            if reach is None:
                whole += 1
                continue
            scoped_pairs += 1
            could = {arn for arn in universe if allows.could(x, action, arn)}
            assert set(reach) == could, (x, action, sorted(could - set(reach))[:3], sorted(set(reach) - could)[:3])
            checked += len(universe)
    assert scoped_pairs > 50 and whole > 0 and checked > 10_000


def test_the_report_is_the_one_without_scopes(estate, monkeypatch):
    """With every actor stated `scope_all` (no option left out), the same report."""
    reaches: list = []
    scope = escalate._MayAllow.scope

    def counting(self, x, action):
        got = scope(self, x, action)
        reaches.append(got)
        return got

    monkeypatch.setattr(escalate._MayAllow, "scope", counting)
    scoped = json.dumps(escalations(Analyzer(estate)).as_json(), sort_keys=True)
    assert sum(len(r) for r in reaches if r is not None) > 20 and None in reaches

    monkeypatch.setattr(escalate._MayAllow, "scope", lambda self, x, action: None)
    whole = json.dumps(escalations(Analyzer(estate)).as_json(), sort_keys=True)
    assert scoped == whole
    assert len(json.loads(scoped)["findings"]) > 50


def test_a_function_its_resource_policy_opens_is_in_scope(tmp_path):
    """Within an account a resource-based policy grants on its own ("Policy evaluation logic":
    identity-based or resource-based policy), so a function whose policy lets the actor update it
    is in the actor's reach though its Resource patterns name other functions: the method is
    found on it, and not on a function neither names."""
    acct = "111111111111"
    dev = f"arn:aws:iam::{acct}:user/dev"
    fn = lambda name: f"arn:aws:lambda:us-east-1:{acct}:function:{name}"  # noqa: E731
    allow_team = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:UpdateFunctionCode", "Resource": fn("team-*")}]}
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    auth = {
        "UserDetailList": [{"UserName": "dev", "Arn": dev, "Path": "/", "GroupList": [], "AttachedManagedPolicies": [],
                            "UserPolicyList": [{"PolicyName": "team", "PolicyDocument": allow_team}]}],
        "GroupDetailList": [],
        "RoleDetailList": [{"RoleName": "fnrole", "Arn": f"arn:aws:iam::{acct}:role/fnrole", "Path": "/",
                            "AssumeRolePolicyDocument": trust, "RolePolicyList": [], "InstanceProfileList": [],
                            "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]}],
        "Policies": [{"PolicyName": "AdministratorAccess", "Arn": "arn:aws:iam::aws:policy/AdministratorAccess", "DefaultVersionId": "v1",
                      "PolicyVersionList": [{"VersionId": "v1", "IsDefaultVersion": True, "Document": {
                          "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]}],
    }
    opened = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": dev}, "Action": "lambda:UpdateFunctionCode", "Resource": fn("shared")}]}
    resources = {"ResourcePolicies": [{"Arn": fn("shared"), "Policy": opened}],
                 "Workloads": [{"Arn": fn(n), "Role": f"arn:aws:iam::{acct}:role/fnrole"} for n in ("shared", "closed", "team-etl")],
                 "Credentials": []}
    d = tmp_path / "accounts" / acct
    d.mkdir(parents=True)
    (d / "authorization-details.json").write_text(json.dumps(auth))
    (d / "resources.json").write_text(json.dumps(resources))
    got = escalations(Analyzer(load(str(tmp_path))), principal=None)
    targets = {f.target for f in got.findings if f.principal == dev and f.method == "lambda_update_code"}
    assert targets == {fn("shared"), fn("team-etl")}
