"""The bundled example estate loads cleanly and holds what examples/README.md says."""
from __future__ import annotations

from pathlib import Path

import pytest

from reasoner.estate import Role, User
from reasoner.load import load
from reasoner.model import PolicyKind

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "estate"
MGMT, PROD, DEV = "111111111111", "222222222222", "333333333333"


@pytest.fixture(scope="module")
def estate():
    return load(EXAMPLE, strict=True)


def _actions(policies):
    return {a for p in policies for s in p.statements if s.effect == "Allow" for a in s.actions}


def test_loads_strictly_without_warnings_or_missing_data(estate):
    assert estate.warnings == []
    assert estate.missing == []
    assert estate.skipped == {}
    assert sorted(estate.accounts) == [MGMT, PROD, DEV]
    assert {a.name for a in estate.accounts.values()} == {"management", "prod", "dev"}


def test_organization_with_scps_on_ous(estate):
    org = estate.organization
    assert org.master_account == MGMT and len(org.ous) - len(org.roots) >= 2
    assert org.scp_levels(MGMT) is None
    prod = org.scp_levels(PROD)
    assert len(prod) == 3
    names = lambda level: {p.name.rsplit("/", 1)[-1] for p in level}  # noqa: E731
    by_id = {op.id: op.name for op in org.scps}
    assert {by_id[i] for i in names(prod[0])} == {"FullAWSAccess", "DenyLeaveOrganization"}
    assert {by_id[i] for i in names(prod[1])} == {"FullAWSAccess", "RegionRestriction"}
    assert {by_id[i] for i in names(org.scp_levels(DEV)[1])} == {"FullAWSAccess", "DevInstanceTypes"}
    assert any(s.effect == "Deny" for level in org.rcp_levels(PROD) for p in level for s in p.statements)


def test_cross_account_role_chain(estate):
    alice = estate.principal(f"arn:aws:iam::{DEV}:user/alice")
    assert isinstance(alice, User) and alice.groups == ("developers",)
    assume = [s for p, _ in estate.identity_policies(alice.arn) for s in p.statements if "sts:AssumeRole" in s.actions]
    assert assume and assume[0].resources == (f"arn:aws:iam::{DEV}:role/deployer",)
    assert any(c.key == "aws:MultiFactorAuthPresent" for c in assume[0].conditions)
    deployer = estate.principal(f"arn:aws:iam::{DEV}:role/deployer")
    assert f"arn:aws:iam::{PROD}:role/prod-deploy" in {r for p, _ in estate.identity_policies(deployer.arn) for s in p.statements for r in s.resources}
    prod_deploy = estate.principal(f"arn:aws:iam::{PROD}:role/prod-deploy")
    assert prod_deploy.trust.statements[0].principals[0].value == deployer.arn
    assert estate.boundary_of(prod_deploy.arn).kind is PolicyKind.BOUNDARY


def test_service_roles_and_workloads(estate):
    dev = estate.accounts[DEV]
    by_arn = {w.arn: w for w in dev.workloads}
    fn = by_arn[f"arn:aws:lambda:us-east-1:{DEV}:function:thumbnailer"]
    assert fn.role_arn in dev.roles
    assert dev.roles[fn.role_arn].trust.statements[0].principals[0].value == "lambda.amazonaws.com"
    ec2 = by_arn[f"arn:aws:ec2:us-east-1:{DEV}:instance/i-0a1b2c3d4e5f60718"]
    assert ec2.role_arn == f"arn:aws:iam::{DEV}:role/web-server" and ec2.instance_profile
    slr = [r for a in estate.accounts.values() for r in a.roles.values() if r.service_linked]
    assert slr and all(r.path.startswith("/aws-service-role/") for r in slr)
    assert not estate.principal(f"arn:aws:iam::{DEV}:role/dev-admin").service_linked


def test_resource_policies_s3_and_kms(estate):
    prod = estate.accounts[PROD]
    kinds = {arn.split(":")[2] for arn in prod.resource_policies}
    assert kinds == {"s3", "kms"}
    key = next(p for arn, p in prod.resource_policies.items() if ":kms:" in arn)
    assert key.kind is PolicyKind.RESOURCE and any(s.effect == "Deny" for s in key.statements)
    assert estate.resource_policy("arn:aws:s3:::example-prod-data/orders/1.json") is prod.resource_policies["arn:aws:s3:::example-prod-data"]


def test_boundary_conditions_and_explicit_deny(estate):
    carol = estate.principal(f"arn:aws:iam::{DEV}:user/carol")
    assert "iam:*" in _actions(p for p, _ in estate.identity_policies(carol.arn))
    boundary = estate.boundary_of(carol.arn)
    assert boundary is not None and "iam:*" not in _actions([boundary])
    ci = estate.principal(f"arn:aws:iam::{DEV}:user/ci-bot")
    assert any(c.key == "aws:SourceIp" for p, _ in estate.identity_policies(ci.arn) for s in p.statements for c in s.conditions)
    denies = [s for p, _ in estate.identity_policies(f"arn:aws:iam::{DEV}:user/alice") for s in p.statements if s.effect == "Deny"]
    assert denies


def test_two_escalation_paths_are_in_the_data(estate):
    # bob may create a new version of the policy attached to himself
    bob = estate.principal(f"arn:aws:iam::{DEV}:user/bob")
    pols = estate.identity_policies(bob.arn)
    own = [s for p, via in pols for s in p.statements if "iam:CreatePolicyVersion" in s.actions]
    assert own and own[0].resources == (bob.managed[0],)
    assert len(estate.managed_policy(bob.managed[0]).other_versions) == 1
    # ci-bot may pass an admin role to a Lambda function it creates and invokes
    ci = estate.principal(f"arn:aws:iam::{DEV}:user/ci-bot")
    acts = _actions(p for p, _ in estate.identity_policies(ci.arn))
    assert {"iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"} <= acts
    passed = next(s for p, _ in estate.identity_policies(ci.arn) for s in p.statements if "iam:PassRole" in s.actions).resources[0]
    admin = estate.principal(passed)
    assert isinstance(admin, Role)
    assert [via[-1] for _, via in estate.identity_policies(admin.arn)] == ["arn:aws:iam::aws:policy/AdministratorAccess"]
    assert admin.trust.statements[0].principals[0].value == "lambda.amazonaws.com"


def test_credentials(estate):
    creds = estate.accounts[DEV].credentials
    assert creds[f"arn:aws:iam::{DEV}:user/ci-bot"].access_keys == 2
    assert creds[f"arn:aws:iam::{DEV}:user/bob"].login_profile is True
    assert set(creds) <= set(estate.accounts[DEV].users)


def test_policies_are_located(estate):
    for acct in estate.accounts.values():
        for u in acct.users.values():
            for p in u.inline:
                assert p.name.startswith(u.arn + "#")
                line, col = p.position()
                assert line > 1 and col > 1
        for mp in acct.managed_policies.values():
            assert mp.policy.name == mp.arn and mp.version_id
