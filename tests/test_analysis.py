"""Who-can, can, path and external access on the bundled multi-account estate (examples/estate:
an organization with SCPs and RCPs, cross-account role chains, a permissions boundary, explicit
denies, bucket and key policies, MFA conditions), checked principal by principal.

The expected answers are worked out from the estate's policies (see examples/README.md), not
read back from the tool."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasoner.analysis import Analyzer
from reasoner.cli import main
from reasoner.load import load

ESTATE = Path(__file__).resolve().parent.parent / "examples" / "estate"
MGMT, PROD, DEV = "111111111111", "222222222222", "333333333333"
BREAKGLASS = f"arn:aws:iam::{MGMT}:user/breakglass"
PROD_OAAR = f"arn:aws:iam::{PROD}:role/OrganizationAccountAccessRole"
DEV_OAAR = f"arn:aws:iam::{DEV}:role/OrganizationAccountAccessRole"
DEPLOYER = f"arn:aws:iam::{DEV}:role/deployer"
PROD_DEPLOY = f"arn:aws:iam::{PROD}:role/prod-deploy"
MFA = 'Bool aws:MultiFactorAuthPresent "true"'
TLS = 'not (Bool aws:SecureTransport "false")'
REGION = 'not (StringNotEquals aws:RequestedRegion ["us-east-1", "eu-west-1"])'


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer(load(ESTATE))


def _by_principal(result):
    return {a.principal: a for a in result.principals}


def test_bucket_readers_principal_by_principal(analyzer):
    """example-prod-data: the bucket policy grants orders-lambda and the management account; the
    prod admin role and the read-only role read it by their identity policies (same account);
    nobody in dev can (cross-account, the bucket does not grant dev).  Every answer depends on TLS
    (DenyInsecureTransport), and in prod on the region (the SCP of the Production OU); the
    management account is subject to no SCP."""
    got = _by_principal(analyzer.who_can("s3:GetObject", "arn:aws:s3:::example-prod-data/*"))
    assert set(got) == {BREAKGLASS, PROD_OAAR, f"arn:aws:iam::{PROD}:role/orders-lambda", f"arn:aws:iam::{PROD}:role/prod-readonly"}
    assert got[BREAKGLASS].conditions == [TLS]
    for p in (PROD_OAAR, f"arn:aws:iam::{PROD}:role/orders-lambda", f"arn:aws:iam::{PROD}:role/prod-readonly"):
        assert got[p].conditions == sorted([TLS, REGION]), p
    assert all(a.direct for a in got.values())
    # the proof cites the bucket policy statement that grants the management account
    hop = got[BREAKGLASS].hops[-1]
    assert [r["statement"] for r in hop.reasons["resource"]["allow"]] == ["AuditFromManagement"]


def test_role_chain_across_accounts(analyzer):
    """prod-deploy trusts dev's deployer only; deployer trusts the dev account with MFA, so
    alice and carol (group developers, MFA-conditioned identity allow), dev's admin roles, and
    breakglass through dev's OrganizationAccountAccessRole reach it, all on MFA."""
    direct = _by_principal(analyzer.who_can("sts:AssumeRole", PROD_DEPLOY, direct=True))
    assert set(direct) == {DEPLOYER}
    assert direct[DEPLOYER].conditions == []
    got = _by_principal(analyzer.who_can("sts:AssumeRole", PROD_DEPLOY))
    expected = {
        DEPLOYER: [DEPLOYER],
        f"arn:aws:iam::{DEV}:user/alice": [f"arn:aws:iam::{DEV}:user/alice", DEPLOYER],
        f"arn:aws:iam::{DEV}:user/carol": [f"arn:aws:iam::{DEV}:user/carol", DEPLOYER],
        DEV_OAAR: [DEV_OAAR, DEPLOYER],
        f"arn:aws:iam::{DEV}:role/dev-admin": [f"arn:aws:iam::{DEV}:role/dev-admin", DEPLOYER],
        BREAKGLASS: [BREAKGLASS, DEV_OAAR, DEPLOYER],
    }
    assert {p: a.path for p, a in got.items()} == expected
    for p, a in got.items():
        assert a.conditions == ([] if p == DEPLOYER else [MFA]), p
        assert [h.kind for h in a.hops] == ["assume-role"] * (len(a.path) - 1) + ["action"]


def test_boundary_and_explicit_deny(analyzer):
    """carol's inline iam:* is capped by her boundary; the developers' NeverDeleteBuckets is an
    explicit deny that no Allow overrides."""
    r = analyzer.can(f"arn:aws:iam::{DEV}:user/carol", "iam:CreateUser", None)
    assert r.decision == "ImplicitlyDenied"
    assert "pb" in r.hops[-1].blocked_by
    r = analyzer.can(f"arn:aws:iam::{DEV}:user/alice", "s3:DeleteBucket", "arn:aws:s3:::example-dev-uploads")
    assert r.decision == "ExplicitlyDenied"
    assert [d["statement"] for d in r.hops[-1].reasons["identity"]["deny"]] == ["NeverDeleteBuckets"]


def test_can_finds_the_shortest_chain(analyzer):
    r = analyzer.can(f"arn:aws:iam::{DEV}:user/alice", "s3:PutObject", "arn:aws:s3:::example-prod-artifacts/build.zip", resource_account=PROD)
    assert r.decision == "ConditionallyAllowed"
    assert r.path == [f"arn:aws:iam::{DEV}:user/alice", DEPLOYER, PROD_DEPLOY]
    assert MFA in r.conditions


def test_path_between_principals(analyzer):
    chains = analyzer.paths(BREAKGLASS, PROD_DEPLOY)
    assert [[h.principal for h in c] + [c[-1].resource] for c in chains] == [[BREAKGLASS, DEV_OAAR, DEPLOYER, PROD_DEPLOY]]
    assert analyzer.paths(f"arn:aws:iam::{DEV}:user/bob", PROD_DEPLOY) == []


def test_kms_key_requires_the_key_policy(analyzer):
    """The key policy enables IAM policies of the prod account and names orders-lambda and
    prod-deploy; dev's admin is not let in by it (cross-account) except through prod-deploy."""
    key = f"arn:aws:kms:us-east-1:{PROD}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    got = _by_principal(analyzer.who_can("kms:Decrypt", key, direct=True))
    assert set(got) == {PROD_OAAR, f"arn:aws:iam::{PROD}:role/orders-lambda", PROD_DEPLOY}


def test_who_can_json_contract():
    r = CliRunner().invoke(main, ["who-can", "sts:AssumeRole", PROD_DEPLOY, "-s", str(ESTATE), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"action", "resource", "principals", "missing"} <= set(out)
    for p in out["principals"]:
        assert {"principal", "conditions", "path", "proof"} <= set(p)
        assert p["proof"]["hops"][-1]["action"] == "sts:AssumeRole"


def test_can_json_contract_and_bad_input():
    r = CliRunner().invoke(main, ["can", BREAKGLASS, "s3:GetObject", "arn:aws:s3:::example-prod-data/x", "-s", str(ESTATE), "--json"])
    assert r.exit_code == 0
    assert {"decision", "conditions", "path", "proof"} <= set(json.loads(r.output))
    r = CliRunner().invoke(main, ["can", BREAKGLASS, "GetObject", "x", "-s", str(ESTATE)])
    assert r.exit_code == 2 and "is not an action" in r.output
    r = CliRunner().invoke(main, ["who-can", "s3:GetObject", "x", "-s", str(ESTATE), "--context", "novalue"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_context_given_on_the_command_line_decides(analyzer):
    got = _by_principal(analyzer.who_can("sts:AssumeRole", DEPLOYER, context={"aws:MultiFactorAuthPresent": "false"}, direct=True))
    assert got == {}
    got = _by_principal(analyzer.who_can("sts:AssumeRole", DEPLOYER, context={"aws:MultiFactorAuthPresent": "true"}, direct=True))
    assert f"arn:aws:iam::{DEV}:user/alice" in got and got[f"arn:aws:iam::{DEV}:user/alice"].conditions == []


def test_external_access_outside_each_account(analyzer):
    res = analyzer.external_access("account")
    pairs = {(r, a.principal) for r, act, a in res.items}
    assert ("arn:aws:s3:::example-prod-data", BREAKGLASS) in pairs  # the audit grant to the management account
    assert (PROD_DEPLOY, DEPLOYER) in pairs  # trust across accounts
    assert not any(r == "arn:aws:s3:::example-prod-data" and p.startswith(f"arn:aws:iam::{DEV}:") for r, p in pairs)
    org = analyzer.external_access("org")
    assert org.items == []  # every principal of the estate is in the organization


def test_check_assertions_exit_codes(tmp_path):
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps([{"name": "only deployer, directly", "who-can": {"action": "sts:AssumeRole", "resource": PROD_DEPLOY, "direct": True}, "allow-only": [DEPLOYER]}]))
    r = CliRunner().invoke(main, ["check", str(ok), "-s", str(ESTATE)])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "no chain into prod-deploy", "who-can": {"action": "sts:AssumeRole", "resource": PROD_DEPLOY}, "allow-only": [DEPLOYER]}]))
    r = CliRunner().invoke(main, ["check", str(bad), "-s", str(ESTATE), "--json"])
    assert r.exit_code == 1
    (o,) = json.loads(r.output)
    assert not o["ok"] and BREAKGLASS in {x["principal"] for x in o["offenders"]}
    broken = tmp_path / "broken.json"
    broken.write_text('[{"name": "x", "who-can": {}, "expect": "maybe"}]')
    r = CliRunner().invoke(main, ["check", str(broken), "-s", str(ESTATE)])
    assert r.exit_code == 2 and "is not an expectation" in r.output


def _snapshot(tmp_path, roles, users=(), resource_policies=()):
    acct = tmp_path / "accounts" / "444455556666"
    acct.mkdir(parents=True)
    (acct / "authorization-details.json").write_text(json.dumps({
        "UserDetailList": [{"UserName": u, "UserId": "AIDA" + u.upper(), "Arn": f"arn:aws:iam::444455556666:user/{u}", "Path": "/",
                            "GroupList": [], "AttachedManagedPolicies": [], "UserPolicyList": []} for u in users],
        "GroupDetailList": [],
        "RoleDetailList": [{"RoleName": n, "RoleId": "AROA" + n.upper(), "Arn": f"arn:aws:iam::444455556666:role/{n}", "Path": "/",
                            "AssumeRolePolicyDocument": trust, "RolePolicyList": [], "AttachedManagedPolicies": [], "InstanceProfileList": []}
                           for n, trust in roles],
        "Policies": [],
    }))
    (acct / "resources.json").write_text(json.dumps({"ResourcePolicies": [{"Arn": a, "Policy": p} for a, p in resource_policies]}))
    return Analyzer(load(tmp_path))


def test_trust_naming_everyone_needs_no_identity_allow_in_the_same_account(tmp_path):
    """IAM: within one account, a resource-based policy that names the principal (here `*`)
    suffices; a user with no policy at all may assume a role whose trust policy says `*`."""
    a = _snapshot(tmp_path, [("open", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})], users=["nopolicy"])
    got = _by_principal(a.who_can("sts:AssumeRole", "arn:aws:iam::444455556666:role/open", direct=True))
    assert "arn:aws:iam::444455556666:user/nopolicy" in got
    assert "anonymous" not in got  # STS takes no unauthenticated calls


def test_public_bucket_is_readable_by_anonymous_callers(tmp_path):
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public-site/*"}]}
    a = _snapshot(tmp_path, [], users=["nopolicy"], resource_policies=[("arn:aws:s3:::public-site", policy)])
    got = _by_principal(a.who_can("s3:GetObject", "arn:aws:s3:::public-site/index.html"))
    assert {"anonymous", "arn:aws:iam::444455556666:user/nopolicy"} <= set(got)
    assert got["anonymous"].conditions == []


def test_who_can_on_a_set_of_resources_keeps_principals_allowed_on_part_of_it(tmp_path):
    """Principals are only left out before evaluation when no identity Allow of theirs can reach
    the resource; for a set of resources (`b/*`) an Allow on part of it (`b/data/*`) reaches it."""
    acct = tmp_path / "accounts" / "444455556666"
    acct.mkdir(parents=True)

    def user(name, resource):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": resource}]}
        return {"UserName": name, "UserId": "AIDA" + name.upper(), "Arn": f"arn:aws:iam::444455556666:user/{name}", "Path": "/",
                "GroupList": [], "AttachedManagedPolicies": [], "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc}]}

    (acct / "authorization-details.json").write_text(json.dumps({
        "UserDetailList": [user("part", "arn:aws:s3:::b/data/*"), user("other", "arn:aws:s3:::c/*"), user("tmpl", "arn:aws:s3:::b/${aws:username}/*")],
        "GroupDetailList": [], "RoleDetailList": [], "Policies": []}))
    a = Analyzer(load(tmp_path))
    u = "arn:aws:iam::444455556666:user/"
    assert set(_by_principal(a.who_can("s3:GetObject", "arn:aws:s3:::b/*", direct=True))) == {u + "part", u + "tmpl"}
    assert set(_by_principal(a.who_can("s3:GetObject", "arn:aws:s3:::b/data/x.csv", direct=True))) == {u + "part"}
    assert set(_by_principal(a.who_can("s3:GetObject", "arn:aws:s3:::b/tmpl/x.csv", direct=True))) == {u + "tmpl"}


def _shortest_by_search(edges, goals, max_hops):
    """Reference for chain_distances: a plain breadth-first search backwards from the goals."""
    preds: dict = {}
    for x, y in edges:
        preds.setdefault(y, set()).add(x)
    dist = {g: 0 for g in goals}
    frontier = set(goals)
    for d in range(1, max_hops + 1):
        frontier = {x for y in frontier for x in preds.get(y, ()) if x not in dist}
        for x in frontier:
            dist[x] = d
    nxt: dict = {}
    for x, y in edges:
        if x in dist and y in dist and dist[x] > 0 and dist[y] == dist[x] - 1:
            nxt.setdefault(x, set()).add(y)
    return dist, nxt


def test_chain_distances_over_classes_of_alike_principals_equal_a_plain_search():
    """chain_distances gives the encoding one principal of each class (same roles assumable,
    goal or not) and reads the answer back for all: distances and next hops equal a plain
    breadth-first search, on graphs where many principals share their successors (people
    assuming the same hub roles), with cycles, goals inside classes and the hop limit biting."""
    import random

    from reasoner.analysis import chain_distances

    rnd = random.Random(17)
    shared_sets = 0
    for trial in range(200):
        n = rnd.randint(2, 40)
        nodes = [f"p{i}" for i in range(n)]
        pools = [rnd.sample(nodes, rnd.randint(1, min(5, n))) for _ in range(rnd.randint(1, 4))]
        edges = set()
        for x in nodes:
            if rnd.random() < 0.6:
                edges |= {(x, y) for y in rnd.choice(pools)}  # alike principals
            for _ in range(rnd.randint(0, 2)):
                edges.add((x, rnd.choice(nodes)))
        goals = set(rnd.sample(nodes, rnd.randint(0, min(3, n))))
        max_hops = rnd.randint(0, 6)
        got = chain_distances(sorted(edges), sorted(goals), max_hops)
        assert got == _shortest_by_search(edges, goals, max_hops), (sorted(edges), goals, max_hops)
        succ = {}
        for x, y in edges:
            succ.setdefault(x, set()).add(y)
        shared_sets += len(succ) - len({frozenset(s) for s in succ.values()})
    assert shared_sets > 500  # the graphs do have many alike principals


def test_principals_a_resource_policy_cannot_name_are_not_asked_and_answers_stay(monkeypatch):
    """Across accounts the resource policy must allow too, so who-can leaves out principals of
    other accounts that no Allow statement of it can name.  The answers are those of asking
    everyone: on the example estate (buckets, keys, trust policies in three accounts) and on a
    seeded synthetic one."""
    import subprocess
    import sys

    import reasoner.analysis as an
    from reasoner.model import PolicyKind
    from reasoner.parse import parse_policy

    pol = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:role/x"], "Service": "s3.amazonaws.com"}, "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}, PolicyKind.RESOURCE)
    assert an._accounts_named(pol) == {"111122223333", "444455556666"}
    assert an._accounts_named(None) == set()
    for wide in ({"AWS": "*"}, {"AWS": "arn:aws:iam::${aws:PrincipalAccount}:root"}, "*"):
        assert an._accounts_named(parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": wide, "Action": "s3:*", "Resource": "*"}]}, PolicyKind.RESOURCE)) is None

    root = Path(__file__).resolve().parent.parent
    synth = root / "benchmarks" / "synth.py"
    tmp = Path(__import__("tempfile").mkdtemp())
    subprocess.run([sys.executable, str(synth), "--roles", "150", "--policies", "45", "--seed", "3", "-o", str(tmp / "e")], check=True, capture_output=True)
    manifest = json.loads((tmp / "e" / "synth-manifest.json").read_text())["questions"]
    questions = [("s3:GetObject", "arn:aws:s3:::example-prod-data/reports/q1.csv"), ("sts:AssumeRole", PROD_DEPLOY),
                 ("kms:Decrypt", None), ("s3:GetObject", manifest["bucket_object"]), ("sts:AssumeRole", manifest["chained_role"]),
                 ("iam:PassRole", manifest["passrole_target"])]
    fewer = {}
    for estate in (ESTATE, tmp / "e"):
        a = Analyzer(load(estate))
        for action, res in questions:
            if res is None:  # every KMS key with a key policy
                keys = [k for acct in a.estate.accounts.values() for k in acct.resource_policies if ":kms:" in k]
                if not keys:
                    continue
                res = keys[0]
            filtered = a.who_can(action, res).as_json()
            policy = a.resource_policy(action, res)
            n_filtered = len(a.direct_candidates(action, res, policy, a.resource_account(res)))
            with monkeypatch.context() as m:
                m.setattr(an, "_accounts_named", lambda p: None)
                everyone = a.who_can(action, res).as_json()
                n_everyone = len(a.direct_candidates(action, res, policy, a.resource_account(res)))
            assert filtered == everyone, (estate, action, res)
            fewer[(str(estate), action, res)] = n_everyone - n_filtered
    assert sum(v > 0 for v in fewer.values()) >= 2  # the filter does leave principals out
