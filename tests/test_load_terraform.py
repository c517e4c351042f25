"""Terraform `show -json` output: plans (values known after apply resolved where AWS fixes them,
reported where it does not) and states (modules, for_each instances)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasoner.load import detect, load
from reasoner.model import PolicyKind

DATA = Path(__file__).parent / "data" / "load"
PLAN = DATA / "terraform-plan.json"
STATE = DATA / "terraform-state.json"
A = "444455556666"


@pytest.fixture(scope="module")
def plan():
    return load(PLAN, account_id=A)


def test_detected_by_content():
    assert detect(json.loads(PLAN.read_text())) == "terraform"
    assert detect(json.loads(STATE.read_text())) == "terraform"


def test_known_after_apply_arns_are_resolved(plan):
    acct = plan.accounts[A]
    raw = json.loads(PLAN.read_text())
    role_values = next(r for r in raw["planned_values"]["root_module"]["resources"] if r["address"] == "aws_iam_role.app")["values"]
    assert "arn" not in role_values  # the fixture really leaves it to apply
    role = acct.roles[f"arn:aws:iam::{A}:role/app/app-role"]
    assert role.trust.kind is PolicyKind.TRUST
    # the attachment's policy_arn was unknown: followed through `configuration` to aws_iam_policy.app_s3
    assert f"arn:aws:iam::{A}:policy/app-s3" in role.managed
    pols = plan.identity_policies(role.arn)
    assert [via for _, via in pols] == [("role/app-role", f"arn:aws:iam::{A}:policy/app-s3")]
    assert role.instance_profiles == (f"arn:aws:iam::{A}:instance-profile/app",)
    assert plan.origins[role.arn] == "aws_iam_role.app"
    assert plan.origins[f"arn:aws:iam::{A}:policy/app-s3"] == "aws_iam_policy.app_s3"


def test_memberships_inline_policies_and_modules(plan):
    acct = plan.accounts[A]
    user = acct.users[f"arn:aws:iam::{A}:user/dev-user"]
    assert user.groups == ("devs",) and user.tags == {"owner": "platform"}
    via = [v for _, v in plan.identity_policies(user.arn)]
    assert via == [("user/dev-user", "group/devs", f"arn:aws:iam::{A}:group/devs#devs-read")]
    ci = acct.roles[f"arn:aws:iam::{A}:role/ci"]
    (inline,) = ci.inline
    assert inline.name == f"arn:aws:iam::{A}:role/ci#deploy"
    assert plan.origins[inline.name] == "module.ci.aws_iam_role_policy.ci"
    assert ci.trust.statements[0].principals[0].type == "Federated"


def test_resource_policies_resolved_from_names_and_region(plan):
    rps = plan.accounts[A].resource_policies
    assert set(rps) == {"arn:aws:s3:::tf-example-data", f"arn:aws:sqs:us-east-1:{A}:jobs", f"arn:aws:sns:us-east-1:{A}:alerts"}
    assert all(p.kind is PolicyKind.RESOURCE for p in rps.values())
    assert plan.origins[f"arn:aws:sqs:us-east-1:{A}:jobs"] == "aws_sqs_queue_policy.jobs"
    # provenance: the policy points at its attribute in the plan file
    where = rps["arn:aws:s3:::tf-example-data"].where()
    assert where.startswith(str(PLAN) + ":")
    line = int(where.split(":")[-2])
    assert '"policy"' in PLAN.read_text().splitlines()[line - 1]


def test_unknowable_values_are_missing_not_guessed(plan):
    missing = "\n".join(plan.missing)
    assert "aws_iam_role.worker" in missing and "name_prefix" in missing
    assert "aws_kms_key.main" in missing and "chosen by AWS" in missing
    assert "assume-app" in missing and "known only after apply" in missing
    assert not any("worker" in arn for arn in plan.accounts[A].roles)
    assert not any(":kms:" in arn for arn in plan.accounts[A].resource_policies)
    assert "managed policy arn:aws:iam::aws:policy/ReadOnlyAccess not collected (attached to role/app-role)" in plan.missing
    assert all(w.line > 0 for w in plan.warnings)


def test_org_policy_attached_by_reference(plan):
    org = plan.organization
    (scp,) = org.scps
    assert scp.targets == ("222222222222",) and scp.name == "DenyLeaveOrganization"
    assert plan.scp_levels("222222222222") == [[scp.policy]]
    assert any("organization tree" in m for m in plan.missing)


def test_without_an_account_id_arns_are_missing():
    estate = load(PLAN)
    assert estate.accounts == {} or all(not a.roles for a in estate.accounts.values())
    assert any("account id" in m and "--account-id" in m for m in estate.missing)
    assert any("aws_iam_role.app" in m and "account id" in m for m in estate.missing)
    # names defined here are not reported as undefined merely because their ARN is unknown
    assert not any("not defined in this Terraform input" in m for m in estate.missing)


def test_account_id_from_variables(tmp_path):
    doc = json.loads(PLAN.read_text())
    doc["variables"]["account_id"] = {"value": A}
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(doc))
    estate = load(f)
    assert f"arn:aws:iam::{A}:role/app/app-role" in estate.accounts[A].roles


def test_state_with_modules_and_for_each():
    estate = load(STATE)
    acct = estate.accounts["777788889999"]  # from data.aws_caller_identity
    erin = acct.users["arn:aws:iam::777788889999:user/team/erin"]
    assert erin.path == "/team/" and erin.boundary == "arn:aws:iam::777788889999:policy/team-boundary"
    assert estate.boundary_of(erin.arn).kind is PolicyKind.BOUNDARY
    assert erin.managed == ("arn:aws:iam::777788889999:policy/team-boundary",)
    key = "arn:aws:kms:eu-west-1:777788889999:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert estate.resource_policy(key).statements[0].sid == "EnableIAMUserPermissions"
    assert estate.origins[erin.arn] == 'module.team.aws_iam_user.member["erin"]'
    assert estate.warnings == []


def test_invalid_policy_in_plan_is_located(tmp_path):
    doc = json.loads(PLAN.read_text())
    res = next(r for r in doc["planned_values"]["root_module"]["resources"] if r["address"] == "aws_iam_policy.app_s3")
    res["values"]["policy"] = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]})
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(doc, indent=2))
    estate = load(f, account_id=A)
    (w,) = [w for w in estate.warnings if "Resource" in w.message]
    assert w.file == str(f) and w.line > 1
    assert estate.skipped["statements"] == 1
