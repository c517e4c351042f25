"""organization.json (snapshot v1): the OU tree and the SCPs and RCPs attached in it.

Policies of other types (tag, backup, AI opt-out...) grant or deny nothing and are not loaded.
Keys beyond v1 (``Arn``, ``Tags``, ``X-AdditionalOrganizations``...) are ignored.
"""
from __future__ import annotations

from typing import Any, Optional

from ..estate import Organization, OrgPolicy, OrgUnit
from ..locate import Source
from ..model import PolicyKind
from . import Context, _describe

HINT = "organization.json holds `Organization`, `Roots`, `OrganizationalUnits`, `Accounts` and `Policies` as SNAPSHOT.md shows"
TYPES = {"SERVICE_CONTROL_POLICY": ("scp", PolicyKind.SCP), "RESOURCE_CONTROL_POLICY": ("rcp", PolicyKind.RCP)}


def policy_arn(org: Organization, policy_id: str, type_name: str, aws_managed: bool) -> str:
    """The ARN AWS gives an Organizations policy:
    ``arn:aws:organizations::<management account>:policy/<org id>/<type>/<policy id>``, or
    ``arn:aws:organizations::aws:policy/<type>/<policy id>`` for an AWS-managed one."""
    t = type_name.lower()
    if aws_managed:
        return f"arn:aws:organizations::aws:policy/{t}/{policy_id}"
    return f"arn:aws:organizations::{org.master_account or ''}:policy/{org.id or ''}/{t}/{policy_id}"


def _list(ctx: Context, doc: dict, key: str, src: Source) -> list:
    v = doc.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        ctx.problem(src, (key,), f"`{key}` is {_describe(v)}, not a list", HINT)
        return []
    return v


def _id(ctx: Context, e: Any, src: Source, path: tuple, what: str) -> Optional[str]:
    if not isinstance(e, dict) or not isinstance(e.get("Id"), str) or not e["Id"]:
        ctx.problem(src, path, f"{what} entry has no `Id`", HINT)
        return None
    return e["Id"]


def load_organization(ctx: Context, doc: Any, src: Source) -> Optional[Organization]:
    if not isinstance(doc, dict):
        ctx.problem(src, (), f"`{src.file}` is {_describe(doc)}, not an object", HINT)
        ctx.skip("files")
        ctx.missing("organization (SCPs/RCPs) not collected")
        return None
    head = doc.get("Organization") if isinstance(doc.get("Organization"), dict) else {}
    if not head:
        ctx.problem(src, (), "organization.json has no `Organization` object", "add `\"Organization\": {\"Id\": ..., \"MasterAccountId\": ...}`: without it the management account, which SCPs do not restrict, is unknown")
    org = Organization(head.get("Id"), head.get("MasterAccountId"))
    if org.master_account is None and head:
        ctx.problem(src, ("Organization",), "the organization has no `MasterAccountId`", "the management account is not subject to SCPs or RCPs: name it", severity="warning")

    for i, e in enumerate(_list(ctx, doc, "Roots", src)):
        rid = _id(ctx, e, src, ("Roots", i), "a root")
        if rid:
            org.roots.append(rid)
            org.ous[rid] = OrgUnit(rid, e.get("Name"), None)
    for i, e in enumerate(_list(ctx, doc, "OrganizationalUnits", src)):
        oid = _id(ctx, e, src, ("OrganizationalUnits", i), "an organizational unit")
        if oid:
            parent = e.get("ParentId") if isinstance(e.get("ParentId"), str) else None
            org.ous[oid] = OrgUnit(oid, e.get("Name"), parent)
    for i, e in enumerate(_list(ctx, doc, "Accounts", src)):
        aid = _id(ctx, e, src, ("Accounts", i), "an account")
        if aid:
            org.accounts[aid] = e.get("ParentId") if isinstance(e.get("ParentId"), str) else None
            if isinstance(e.get("Name"), str):
                org.account_names[aid] = e["Name"]
            ctx.count("org_accounts")

    # the tree must reach a root from every OU and account
    for i, e in enumerate(_list(ctx, doc, "OrganizationalUnits", src)):
        if isinstance(e, dict) and e.get("Id") in org.ous and not _reaches_root(org, e["Id"]):
            ctx.problem(src, ("OrganizationalUnits", i, "ParentId"), f"organizational unit `{e['Id']}` does not lead to a root (parent `{e.get('ParentId')}`)", "every OU's `ParentId` names a root or another OU of the file", severity="warning")
    for i, e in enumerate(_list(ctx, doc, "Accounts", src)):
        if isinstance(e, dict) and e.get("Id") in org.accounts and (org.accounts[e["Id"]] is None or org.path(e["Id"]) is None):
            ctx.problem(src, ("Accounts", i, "ParentId"), f"account `{e['Id']}` does not lead to a root (parent `{e.get('ParentId')}`)", "its SCPs and RCPs cannot be known; every account's `ParentId` names a root or an OU of the file", severity="warning")
    if org.master_account and org.master_account not in org.accounts:
        ctx.problem(src, ("Organization", "MasterAccountId"), f"management account `{org.master_account}` is not in `Accounts`", "list every account of the organization", severity="warning")

    nodes = set(org.ous) | set(org.accounts)
    for i, e in enumerate(_list(ctx, doc, "Policies", src)):
        path = ("Policies", i)
        pid = _id(ctx, e, src, path, "a policy")
        if pid is None:
            ctx.skip("org_policies")
            continue
        ptype = e.get("Type")
        if ptype not in TYPES:
            if not isinstance(ptype, str):
                ctx.problem(src, path, f"policy `{pid}` has no `Type`", "`Type` is `SERVICE_CONTROL_POLICY` or `RESOURCE_CONTROL_POLICY`")
                ctx.skip("org_policies")
            continue  # other policy types do not take part in authorization
        short, kind = TYPES[ptype]
        name = e.get("Name") if isinstance(e.get("Name"), str) else pid
        arn = e.get("Arn") if isinstance(e.get("Arn"), str) else policy_arn(org, pid, ptype, bool(e.get("AwsManaged")) or pid in ("p-FullAWSAccess", "p-RCPFullAWSAccess"))
        targets = []
        for j, t in enumerate(e.get("Targets") or []):
            tid = t.get("TargetId") if isinstance(t, dict) else t  # list-targets-for-policy shape too
            if not isinstance(tid, str):
                ctx.problem(src, path + ("Targets", j), f"a target of `{name}` is {_describe(t)}", "`Targets` lists root, OU and account ids")
                continue
            if tid not in nodes:
                ctx.problem(src, path + ("Targets", j), f"`{name}` is attached to `{tid}`, which is not in the organization", "list that root, OU or account, or remove the target", severity="warning")
            targets.append(tid)
        if "Content" not in e:
            ctx.problem(src, path, f"{short.upper()} `{name}` has no `Content`", "`Content` is the policy document (an object or a JSON string)")
            ctx.skip(short + "s")
            continue
        pol = ctx.policy(e["Content"], kind, arn, src, path + ("Content",), short + "s")
        if pol is None:
            continue
        (org.scps if short == "scp" else org.rcps).append(OrgPolicy(pid, name, short, pol, tuple(targets)))

    for short, attached in (("SCP", org.scps), ("RCP", org.rcps)):
        if not attached:
            continue
        covered = {t for op in attached for t in op.targets}
        for node in sorted(nodes - covered):
            if node == org.master_account:
                continue
            what = "root" if node in org.roots else "account" if node in org.accounts else "organizational unit"
            ctx.problem(src, (), f"no {short} is attached to {what} `{node}`: every request under it would be denied", f"AWS keeps at least one {short} on every root, OU and account; the snapshot looks incomplete", severity="warning")
    return org


def _reaches_root(org: Organization, node: str) -> bool:
    seen = set()
    while node is not None:
        if node in seen or node not in org.ous:
            return False
        seen.add(node)
        node = org.ous[node].parent
    return True
