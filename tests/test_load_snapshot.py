"""Loading snapshots: real account dumps, the who-can conformance snapshots, the format's variants
(pages, URL-encoded documents, strings), missing data and corrupt files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reasoner.diagnostics import InputError
from reasoner.estate import Role, User
from reasoner.load import load
from reasoner.model import PolicyKind

DATA = Path(__file__).parent / "data" / "load"
DUMPS = [
    "cloudsplaining-authz-v2.json",
    "cloudsplaining-example.json",
    "cloudsplaining-managed-policy-mismatch.json",
    "cloudsplaining-overrides-complete.json",
    "cloudsplaining-test-authz-details.json",
]


def raw_counts(doc: dict) -> dict:
    """Entities of an authorization-details file, counted from its JSON alone."""
    inline = 0
    for key, lst in (("UserPolicyList", "UserDetailList"), ("GroupPolicyList", "GroupDetailList"), ("RolePolicyList", "RoleDetailList")):
        inline += sum(len(e.get(key) or []) for e in doc.get(lst, []))
    return {
        "users": len(doc.get("UserDetailList", [])),
        "groups": len(doc.get("GroupDetailList", [])),
        "roles": len(doc.get("RoleDetailList", [])),
        "policies": len(doc.get("Policies", [])),
        "inline_policies": inline,
    }


@pytest.mark.parametrize("name", DUMPS)
def test_every_shared_dump_loads_with_its_counts(shared, name):
    path = shared("data", "dumps", name)
    doc = json.loads(path.read_text())
    estate = load(path)
    assert len(estate.accounts) == 1
    (account,) = estate.accounts.values()
    got = account.counts()
    want = raw_counts(doc)
    assert {k: got[k] for k in want} == want
    assert not [w for w in estate.warnings if w.severity == "error"]
    assert estate.skipped.get("statements", 0) == 0
    # every managed policy's version in force parsed, and is the one IsDefaultVersion marks
    for p in doc.get("Policies", []):
        mp = account.managed_policies[p["Arn"]]
        default = next(v for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
        assert mp.version_id == default["VersionId"]
        assert mp.policy is not None and mp.policy.name == p["Arn"]
        assert len(mp.policy.statements) == len(default["Document"]["Statement"] if isinstance(default["Document"]["Statement"], list) else [1])
        assert set(mp.other_versions) == {v["VersionId"] for v in p["PolicyVersionList"]} - {default["VersionId"]}


def test_account_id_of_a_lone_file_comes_from_its_arns(shared):
    estate = load(shared("data", "dumps", "cloudsplaining-managed-policy-mismatch.json"))
    assert list(estate.accounts) == ["123456789012"]


def test_a_managed_policy_attached_but_absent_is_missing_data(shared):
    estate = load(shared("data", "dumps", "cloudsplaining-managed-policy-mismatch.json"))
    arn = "arn:aws:iam::aws:policy/AWSLambdaReadOnlyAccess"
    assert any(arn in m and "123456789012" in m for m in estate.missing)
    (w,) = [w for w in estate.warnings if arn in w.message]
    assert w.severity == "warning" and w.line > 0 and "group/anton-test" in w.message
    group = next(iter(estate.accounts["123456789012"].groups.values()))
    # the group's only attachment is unknown: no policy stands in for it
    assert estate.identity_policies(group.arn) == []
    assert arn in group.managed


def test_lone_file_lacks_organization_and_resources(shared):
    estate = load(shared("data", "dumps", "cloudsplaining-authz-v2.json"))
    assert "organization (SCPs/RCPs) not collected" in estate.missing
    assert "resource policies not collected for account 012345678901" in estate.missing
    assert estate.organization is None


README_TABLE = {
    # dataset: accounts, users, roles, managed policies, inline, resource policies, SCPs, RCPs
    "iam-data-1": (4, 3, 12, 9, 12, 13, 7, 2),
    "iam-data-2": (5, 0, 26, 0, 7, 12, 1, 1),
}


@pytest.mark.parametrize("dataset", sorted(README_TABLE))
def test_conformance_snapshots_load_with_the_readme_counts(shared, dataset):
    estate = load(shared("conformance", "whocan", dataset))
    accounts, users, roles, managed, inline, rps, scps, rcps = README_TABLE[dataset]
    total = lambda key: sum(a.counts()[key] for a in estate.accounts.values())  # noqa: E731
    assert len(estate.accounts) == accounts
    assert (total("users"), total("roles"), total("policies"), total("inline_policies"), total("resource_policies")) == (users, roles, managed, inline, rps)
    assert (len(estate.organization.scps), len(estate.organization.rcps)) == (scps, rcps)
    assert all(r.trust is not None for a in estate.accounts.values() for r in a.roles.values())


def test_iam_data_2_kms_and_s3_policies_are_resource_policies(shared):
    estate = load(shared("conformance", "whocan", "iam-data-2"))
    arns = [arn for a in estate.accounts.values() for arn in a.resource_policies]
    assert sum(":kms:" in a for a in arns) == 4 and sum(a.startswith("arn:aws:s3:::") for a in arns) == 8
    assert all(p.kind is PolicyKind.RESOURCE for a in estate.accounts.values() for p in a.resource_policies.values())


def test_extra_keys_beyond_v1_are_ignored(shared):
    path = shared("conformance", "whocan", "iam-data-1")
    assert "X-AdditionalOrganizations" in json.loads((path / "organization.json").read_text())
    estate = load(path)
    org = estate.organization
    assert org.id == "o-22222222" and org.master_account == "200000000001"
    # accounts of the other organization are outside the v1 one: no SCPs apply to them
    assert estate.scp_levels("100000000002") == []
    assert not any("X-Additional" in w.message for w in estate.warnings)


def test_scp_levels_root_first_account_last_and_management_exempt(shared):
    estate = load(shared("conformance", "whocan", "iam-data-1"))
    org = estate.organization
    assert org.scp_levels("200000000001") is None  # management account
    levels = org.scp_levels("200000000002")
    assert org.path("200000000002") == ["r-dh2e", "ou-dh2e-aps19rip", "200000000002"]
    assert len(levels) == 3
    names = [sorted(p.name.rsplit("/", 1)[-1] for p in level) for level in levels]
    assert names[0] == ["p-FullAWSAccess", "p-i6905k2f"]
    assert names[2] == ["p-FullAWSAccess", "p-jjlf15pg"]
    assert all(p.kind is PolicyKind.SCP for level in levels for p in level)
    rcps = org.rcp_levels("200000000002")
    assert [sorted(p.name.rsplit("/", 1)[-1] for p in level) for level in rcps][2] == ["p-02s1stoq5i", "p-RCPFullAWSAccess"]
    assert org.org_path("200000000002") == "o-22222222/r-dh2e/ou-dh2e-aps19rip/"


def test_pages_are_merged_and_url_encoded_documents_decoded():
    estate = load(DATA / "pages-urlencoded.json")
    assert not estate.warnings
    acct = estate.accounts["123456789012"]
    alice = acct.users["arn:aws:iam::123456789012:user/alice"]
    (inline,) = alice.inline
    assert inline.name == "arn:aws:iam::123456789012:user/alice#admin"
    assert inline.statements[0].actions == ("*",)
    mp = acct.managed_policies["arn:aws:iam::123456789012:policy/s3-read"]
    assert mp.version_id == "v2" and mp.policy.statements[0].actions == ("s3:GetObject", "s3:ListBucket")
    assert set(mp.other_versions) == {"v1"}
    role = acct.roles["arn:aws:iam::123456789012:role/service-role/fn"]
    assert role.trust.kind is PolicyKind.TRUST and role.trust.statements[0].principals[0].value == "lambda.amazonaws.com"
    # a group from the second page gives alice its managed policy
    via = [v for _, v in estate.identity_policies(alice.arn)]
    assert ("user/alice", "group/readers", mp.arn) in via and ("user/alice", inline.name) in via
    # an embedded document is located at its string in the file
    assert inline.where().startswith(str(DATA / "pages-urlencoded.json") + ":")
    assert inline.position()[0] > 1


def test_policy_strings_in_organization_and_resources(tmp_path):
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}]}
    (tmp_path / "accounts" / "222222222222").mkdir(parents=True)
    (tmp_path / "organization.json").write_text(json.dumps({
        "Organization": {"Id": "o-a1b2c3d4e5", "MasterAccountId": "111111111111"},
        "Roots": [{"Id": "r-a1b2"}], "OrganizationalUnits": [],
        "Accounts": [{"Id": "111111111111", "ParentId": "r-a1b2"}, {"Id": "222222222222", "ParentId": "r-a1b2"}],
        "Policies": [{"Id": "p-12345678", "Name": "NoDelete", "Type": "SERVICE_CONTROL_POLICY", "Content": json.dumps(doc), "Targets": ["r-a1b2", "222222222222", "111111111111"]}]}))
    (tmp_path / "accounts" / "222222222222" / "authorization-details.json").write_text(json.dumps({"UserDetailList": [], "RoleDetailList": []}))
    bucket = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}
    (tmp_path / "accounts" / "222222222222" / "resources.json").write_text(json.dumps({"ResourcePolicies": [{"Arn": "arn:aws:s3:::b", "Policy": json.dumps(bucket)}]}))
    estate = load(tmp_path)
    assert [w.message for w in estate.warnings] == []
    (level_root, level_account) = estate.scp_levels("222222222222")
    assert level_root[0].statements[0].effect == "Deny"
    assert level_root[0].name == "arn:aws:organizations::111111111111:policy/o-a1b2c3d4e5/service_control_policy/p-12345678"
    assert estate.resource_policy("arn:aws:s3:::b/some/key").name == "arn:aws:s3:::b"
    assert estate.account_of("arn:aws:s3:::b") == "222222222222"
    assert "iam data not collected for account 111111111111 (member of organization o-a1b2c3d4e5)" in estate.missing


def test_missing_organization_and_resources_are_named(tmp_path, shared):
    src = shared("conformance", "whocan", "iam-data-2")
    shutil.copytree(src, tmp_path / "snap")
    (tmp_path / "snap" / "organization.json").unlink()
    (tmp_path / "snap" / "accounts" / "400000000002" / "resources.json").unlink()
    estate = load(tmp_path / "snap")
    assert estate.organization is None
    assert "organization (SCPs/RCPs) not collected" in estate.missing
    assert "resource policies not collected for account 400000000002" in estate.missing
    assert "resource policies not collected for account 400000000001" not in estate.missing
    assert estate.scp_levels("400000000002") == []


def test_corrupt_files_lenient_keeps_the_rest_with_located_warnings():
    estate = load(DATA / "corrupt-snapshot")
    bad = str(DATA / "corrupt-snapshot" / "accounts" / "210987654321" / "authorization-details.json")
    (trunc,) = [w for w in estate.warnings if w.file == bad]
    assert (trunc.line, trunc.column) == (10, 5) and "truncated" in trunc.hint
    (effect,) = [w for w in estate.warnings if "Alow" in w.message]
    assert effect.file.endswith("resources.json") and effect.line == 25
    assert estate.skipped["files"] == 1 and estate.skipped["statements"] == 1
    acct = estate.accounts["123456789012"]
    assert len(acct.users) == 1 and "arn:aws:s3:::ok-bucket" in acct.resource_policies
    assert "iam data not collected for account 210987654321" in estate.missing
    assert estate.read["files"] == 3


def test_corrupt_files_strict_raises_at_the_first():
    with pytest.raises(InputError) as e:
        load(DATA / "corrupt-snapshot", strict=True)
    (d,) = e.value.diagnostics
    assert d.file.endswith("123456789012/resources.json") and d.line == 25


def test_shape_errors_are_located_and_counted(tmp_path):
    f = tmp_path / "authz.json"
    f.write_text(json.dumps({
        "UserDetailList": [{"UserName": "no-arn"}, {"Arn": "arn:aws:iam::123456789012:user/ok", "UserName": "ok", "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": 7}]}],
        "RoleDetailList": [{"Arn": "arn:aws:iam::123456789012:role/r", "RoleName": "r", "AssumeRolePolicyDocument": "%7Bnot json"}],
    }, indent=1))
    estate = load(f)
    msgs = [w.message for w in estate.warnings]
    assert "user entry has no `Arn`" in msgs
    assert any("policy document of `arn:aws:iam::123456789012:user/ok#p` is a number" in m for m in msgs)
    assert any("not valid JSON" in m and "role/r (trust policy)" in m for m in msgs)
    assert all(w.line > 0 for w in estate.warnings)
    assert estate.skipped == {"users": 1, "inline_policies": 1, "trust_policies": 1}
    assert estate.read["users"] == 1 and estate.read["roles"] == 1
    role = estate.principal("arn:aws:iam::123456789012:role/r")
    assert isinstance(role, Role) and role.trust is None


def test_duplicate_keys_are_reported_even_when_the_same_document_was_seen(tmp_path):
    ok = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
    dup = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'
    (tmp_path / "accounts" / "111111111111").mkdir(parents=True)
    (tmp_path / "accounts" / "222222222222").mkdir(parents=True)
    for aid, d in (("111111111111", ok), ("222222222222", dup)):
        (tmp_path / "accounts" / aid / "authorization-details.json").write_text(
            '{"UserDetailList": [{"Arn": "arn:aws:iam::%s:user/u", "UserName": "u", "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": %s}]}]}' % (aid, d))
    estate = load(tmp_path)
    (w,) = [w for w in estate.warnings if "duplicate" in w.message]
    assert "222222222222" in w.file and w.line == 1


def test_identical_documents_are_parsed_once_but_cited_apart(shared):
    estate = load(shared("conformance", "whocan", "iam-data-2"))
    trusts = [r.trust for a in estate.accounts.values() for r in a.roles.values()]
    assert estate.read["policy_documents"] < len(trusts) + estate.read.get("inline_policies", 0) + estate.read.get("resource_policies", 0)
    assert len({t.name for t in trusts}) == len(trusts)
    assert all(t.name.endswith(" (trust policy)") for t in trusts)


def test_principal_helpers(shared):
    estate = load(shared("data", "dumps", "cloudsplaining-test-authz-details.json"))
    principals = list(estate.all_principals())
    assert len(principals) == 3 + 3
    users = [p for p in principals if isinstance(p, User)]
    for u in users:
        pols = estate.identity_policies(u.arn)
        # one entry per inline policy and per attachment whose policy is in the dump, own and groups'
        acct = estate.accounts[u.account]
        expected = len(u.inline) + sum(1 for a in u.managed if a in acct.managed_policies)
        for g in u.groups:
            grp = acct.group_named(g)
            expected += len(grp.inline) + sum(1 for a in grp.managed if a in acct.managed_policies)
        assert len(pols) == expected
        assert all(via[0] == f"user/{u.name}" and via[-1] == pol.name for pol, via in pols)
    assert estate.principal("arn:aws:iam::012345678901:user/nobody") is None
    assert estate.identity_policies("arn:aws:iam::012345678901:user/nobody") == []


def test_not_a_snapshot_is_an_input_error(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(InputError) as e:
        load(tmp_path / "x.json")
    assert "neither a snapshot nor Terraform" in str(e.value)
    with pytest.raises(InputError):
        load(tmp_path)
    with pytest.raises(InputError) as e:
        load(tmp_path / "absent")
    assert e.value.unreadable
