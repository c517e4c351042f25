"""Small snapshot folders for escalation tests: one account per case, written in the snapshot
format of ../shared/SNAPSHOT.md (authorization details and resources in the shape the AWS APIs
return), several accounts in one snapshot so that one run decides them all.

A case is a setup (tests/data/escalate/setups.yaml: roles, users, groups, policies, workloads
around an attacker) plus the attacker's permissions, and optionally a twin change: one
permission denied (an explicit Deny) or scoped away (granted on a decoy of the same kind)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
HARMLESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}


@dataclass
class Case:
    """One account: ``setup`` from setups.yaml, ``permissions`` the attacker holds."""

    account: str
    setup: dict
    permissions: list
    twin: Optional[tuple] = None  # (permission, "deny" | "scope")
    boundary: Optional[list] = None  # statements of a permissions boundary on the attacker
    conditions: dict = field(default_factory=dict)  # permission → Condition block on its Allow

    def arn(self, ref: str) -> str:
        """role/NAME, user/NAME, group/NAME, policy/NAME, self, workload → an ARN here."""
        if ref == "self":
            return self.attacker
        if ref == "workload":
            return self.setup["workloads"][0]["arn"].format(acct=self.account)
        kind, _, name = ref.partition("/")
        return f"arn:aws:iam::{self.account}:{kind}/{name}"

    @property
    def attacker(self) -> str:
        return f"arn:aws:iam::{self.account}:{self.setup.get('actor', 'user')}/attacker"

    @property
    def target(self) -> str:
        return self.arn(self.setup["target"])

    def decoy(self, ref: str) -> str:
        """A resource of the same kind as ``ref`` that the path has nothing to do with."""
        if ref == "self":
            return f"arn:aws:iam::{self.account}:{self.setup.get('actor', 'user')}/decoy"
        return re.sub(r"[^/:]+$", "decoy", self.arn(ref))

    def statements(self) -> list:
        on = self.setup.get("at", {})
        out = []
        for i, perm in enumerate(self.permissions):
            res = self.arn(on[perm]) if perm in on else "*"
            if self.twin == (perm, "scope"):
                res = self.decoy(on[perm])
            st = {"Sid": f"P{i}", "Effect": "Allow", "Action": perm, "Resource": res}
            if perm in self.conditions:
                st["Condition"] = self.conditions[perm]
            out.append(st)
        if self.twin is not None and self.twin[1] == "deny":
            out.append({"Sid": "Twin", "Effect": "Deny", "Action": self.twin[0], "Resource": "*"})
        return out


def _doc(statements: list) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


def _managed(arn: str, name: str, doc: dict, other_versions: int = 0) -> dict:
    versions = [{"Document": doc, "VersionId": "v1", "IsDefaultVersion": True, "CreateDate": "2025-01-01T00:00:00Z"}]
    for n in range(other_versions - 1):
        versions.append({"Document": ALLOW_ALL, "VersionId": f"v{n + 2}", "IsDefaultVersion": False, "CreateDate": "2024-01-01T00:00:00Z"})
    return {"PolicyName": name, "Arn": arn, "Path": "/", "DefaultVersionId": "v1", "IsAttachable": True, "PolicyVersionList": versions}


def _att(arns) -> list:
    return [{"PolicyName": a.rsplit("/", 1)[1], "PolicyArn": a} for a in arns]


def _trust(case: Case, trusts: str) -> dict:
    if trusts == "root":
        who = {"AWS": f"arn:aws:iam::{case.account}:root"}
    elif trusts.startswith("role/"):
        who = {"AWS": case.arn(trusts)}
    else:
        who = {"Service": trusts}
    return _doc([{"Effect": "Allow", "Principal": who, "Action": "sts:AssumeRole"}])


def account_files(case: Case) -> tuple[dict, dict]:
    """authorization-details.json and resources.json of one case's account."""
    s, acct = case.setup, case.account
    users, roles, groups = [], [], []
    policies = [_managed(ADMIN_POLICY, "AdministratorAccess", ALLOW_ALL)]
    credentials, workloads = [], []
    attached_to: dict = {}  # policy name → [principal ARN]

    def policy_arn(name):
        return f"arn:aws:iam::{acct}:policy/{name}"

    attack = _doc(case.statements())
    attacker_managed, attacker_inline = [], []
    if s.get("attack_policy") == "managed":
        policies.append(_managed(policy_arn("attack"), "attack", attack, s.get("attack_versions", 0)))
        attacker_managed.append(policy_arn("attack"))
    else:
        attacker_inline.append({"PolicyName": "attack", "PolicyDocument": attack})
    boundary = None
    if case.boundary is not None:
        policies.append(_managed(policy_arn("boundary"), "boundary", _doc(case.boundary)))
        boundary = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": policy_arn("boundary")}

    member_of = [g for g, spec in (s.get("groups") or {}).items() if "attacker" in spec.get("members", ())]
    if s.get("actor", "user") == "user":
        u = {"UserName": "attacker", "Arn": case.attacker, "Path": "/", "UserPolicyList": attacker_inline,
             "GroupList": member_of, "AttachedManagedPolicies": _att(attacker_managed)}
        if boundary:
            u["PermissionsBoundary"] = boundary
        users.append(u)
    else:
        r = {"RoleName": "attacker", "Arn": case.attacker, "Path": "/", "AssumeRolePolicyDocument": _trust(case, "root"),
             "RolePolicyList": attacker_inline, "AttachedManagedPolicies": _att(attacker_managed), "InstanceProfileList": []}
        if boundary:
            r["PermissionsBoundary"] = boundary
        roles.append(r)

    # decoys: one resource of each kind that no path is about
    users.append({"UserName": "decoy", "Arn": f"arn:aws:iam::{acct}:user/decoy", "Path": "/", "UserPolicyList": [], "GroupList": [], "AttachedManagedPolicies": []})
    roles.append({"RoleName": "decoy", "Arn": f"arn:aws:iam::{acct}:role/decoy", "Path": "/", "AssumeRolePolicyDocument": _trust(case, "example.amazonaws.com"),
                  "RolePolicyList": [], "AttachedManagedPolicies": [], "InstanceProfileList": []})
    groups.append({"GroupName": "decoy", "Arn": f"arn:aws:iam::{acct}:group/decoy", "Path": "/", "GroupPolicyList": [], "AttachedManagedPolicies": []})
    policies.append(_managed(policy_arn("decoy"), "decoy", HARMLESS))

    for name, spec in (s.get("roles") or {}).items():
        arn = case.arn(f"role/{name}")
        managed = [ADMIN_POLICY] if spec.get("admin") else []
        managed += [policy_arn(p) for p in spec.get("managed", ())]
        inline = []
        if spec.get("assume"):
            inline.append({"PolicyName": "assume", "PolicyDocument": _doc([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [case.arn(r) for r in spec["assume"]]}])})
        profiles = []
        if spec.get("instance_profile"):
            profiles.append({"InstanceProfileName": name, "Arn": f"arn:aws:iam::{acct}:instance-profile/{name}", "Path": "/", "Roles": []})
        roles.append({"RoleName": name, "Arn": arn, "Path": "/", "AssumeRolePolicyDocument": _trust(case, spec.get("trusts", "root")),
                      "RolePolicyList": inline, "AttachedManagedPolicies": _att(managed), "InstanceProfileList": profiles})
    for name, spec in (s.get("users") or {}).items():
        arn = case.arn(f"user/{name}")
        users.append({"UserName": name, "Arn": arn, "Path": "/", "UserPolicyList": [], "GroupList": [],
                      "AttachedManagedPolicies": _att([ADMIN_POLICY] if spec.get("admin") else [])})
        credentials.append({"User": arn, "AccessKeys": spec.get("access_keys", 0), "LoginProfile": bool(spec.get("login_profile")), "MFADevices": 0})
    for name, spec in (s.get("groups") or {}).items():
        groups.append({"GroupName": name, "Arn": case.arn(f"group/{name}"), "Path": "/", "GroupPolicyList": [],
                       "AttachedManagedPolicies": _att([ADMIN_POLICY] if spec.get("admin") else [])})
    for name in (s.get("policies") or {}):
        policies.append(_managed(policy_arn(name), name, HARMLESS))
    for w in s.get("workloads") or ():
        entry = {"Arn": w["arn"].format(acct=acct)}
        if "role" in w:
            entry["Role"] = case.arn(w["role"])
        else:
            entry["InstanceProfile"] = f"arn:aws:iam::{acct}:instance-profile/{w['instance_profile'].split('/', 1)[1]}"
        workloads.append(entry)
    auth = {"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies}
    resources = {"ResourcePolicies": [], "Workloads": workloads, "Credentials": credentials}
    return auth, resources


def write_snapshot(root: Path, cases: list, organization: Optional[dict] = None) -> Path:
    """One snapshot folder holding every case's account."""
    for case in cases:
        d = root / "accounts" / case.account
        d.mkdir(parents=True, exist_ok=False)
        auth, res = account_files(case)
        (d / "authorization-details.json").write_text(json.dumps(auth, indent=1))
        (d / "resources.json").write_text(json.dumps(res, indent=1))
    if organization is not None:
        (root / "organization.json").write_text(json.dumps(organization, indent=1))
    return root


def organization(accounts: list, scps: list) -> dict:
    """An organization holding ``accounts`` under its root, with FullAWSAccess and the given SCPs
    ((name, statements, [account ids]))."""
    # AWS keeps an SCP on every level: FullAWSAccess on the root and on each account
    pols = [{"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Type": "SERVICE_CONTROL_POLICY", "Content": ALLOW_ALL, "Targets": ["r-test", *accounts]}]
    for i, (name, statements, targets) in enumerate(scps):
        pols.append({"Id": f"p-scp{i}", "Name": name, "Type": "SERVICE_CONTROL_POLICY", "Content": _doc(statements), "Targets": list(targets)})
    return {
        "Organization": {"Id": "o-test000001", "MasterAccountId": "999999999999"},
        "Roots": [{"Id": "r-test"}],
        "OrganizationalUnits": [],
        "Accounts": [{"Id": a, "Name": a, "ParentId": "r-test"} for a in ["999999999999", *accounts]],
        "Policies": pols,
    }
