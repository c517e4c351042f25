"""Snapshot format v1 (SNAPSHOT.md): a folder of AWS API outputs, or one authorization-details file.

```
snapshot/
  organization.json                 optional: OU tree, SCPs, RCPs
  accounts/<id>/authorization-details.json   `aws iam get-account-authorization-details`
  accounts/<id>/resources.json      optional: resource policies, workloads, credentials
```

Keys beyond v1 are ignored.  Whatever the snapshot lacks is named in ``Estate.missing``.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from ..diagnostics import Diagnostic, InputError
from ..estate import Account, Credential, Group, ManagedPolicy, Role, User, Workload
from ..locate import Source
from ..model import PolicyKind
from . import AUTHZ_KEYS, Context, _describe
from .organization import load_organization

ACCOUNT_ID = re.compile(r"\d{12}\Z")
HINT_AUTHZ = "the file is what `aws iam get-account-authorization-details --output json` prints"


# --------------------------------------------------------------------------- folders


def load_folder(ctx: Context, root: Path) -> None:
    accounts_dir = root / "accounts"
    org_file = root / "organization.json"
    if not accounts_dir.is_dir() and not org_file.is_file():
        raise InputError(
            [Diagnostic(str(root), 0, 0, f"`{root}` is not a snapshot folder", "a snapshot folder holds `accounts/<account id>/authorization-details.json` and optionally `organization.json`")],
            unreadable=True,
        )
    estate = ctx.estate
    if org_file.is_file():
        loaded = ctx.read_json(org_file)
        if loaded is not None:
            estate.organization = load_organization(ctx, *loaded)
        else:
            ctx.missing("organization (SCPs/RCPs) not collected")
    else:
        ctx.missing("organization (SCPs/RCPs) not collected")

    folders = sorted(accounts_dir.iterdir()) if accounts_dir.is_dir() else []
    for folder in folders:
        if not folder.is_dir():
            continue
        if not ACCOUNT_ID.match(folder.name):
            ctx.problem(Source(str(folder)), (), f"`{folder.name}` is not an account id", "account folders are named by the 12-digit account id", severity="warning")
            ctx.skip("files", sum(1 for f in folder.iterdir() if f.is_file()))
            continue
        load_account_folder(ctx, folder)

    org = estate.organization
    if org is not None:
        for aid, name in org.account_names.items():
            if aid in estate.accounts:
                estate.accounts[aid].name = name
        for aid in org.accounts:
            if aid not in estate.accounts:
                ctx.missing(f"iam data not collected for account {aid} (member of organization {org.id})")


def load_account_folder(ctx: Context, folder: Path) -> None:
    aid = folder.name
    authz = folder / "authorization-details.json"
    account = Account(aid)
    if not authz.is_file():
        ctx.problem(Source(str(folder)), (), f"account folder `{folder}` has no `authorization-details.json`", "each account needs the output of `aws iam get-account-authorization-details --output json` saved under that name")
        account.iam_collected = False
        ctx.missing(f"iam data not collected for account {aid}")
    else:
        loaded = ctx.read_json(authz)
        if loaded is None:
            account.iam_collected = False
            ctx.missing(f"iam data not collected for account {aid}")
        else:
            doc, src = loaded
            if not _is_authz(doc):
                ctx.problem(src, (), f"`{src.file}` is not authorization details", HINT_AUTHZ)
                account.iam_collected = False
                ctx.skip("files")
                ctx.missing(f"iam data not collected for account {aid}")
            else:
                load_authorization_details(ctx, doc, src, account)
    res = folder / "resources.json"
    if res.is_file():
        loaded = ctx.read_json(res)
        if loaded is not None:
            load_resources(ctx, *loaded, account)
    if not account.resources_collected:
        ctx.missing(f"resource policies not collected for account {aid}")
    ctx.estate.accounts[aid] = account
    ctx.count("accounts")


def load_lone_file(ctx: Context, doc: Any, src: Source, account_id: Optional[str]) -> None:
    """A single authorization-details file: a one-account snapshot.  Its account is the one the
    ARNs inside name (most of them, when they disagree), else ``account_id``."""
    seen = Counter(_arn_account(e.get("Arn")) for page in _pages(doc)[0] if isinstance(page, dict) for k in AUTHZ_KEYS for e in (page.get(k) or []) if isinstance(e, dict))
    seen.pop(None, None)
    seen.pop("aws", None)
    if account_id is not None:
        aid = account_id
        others = sorted(a for a in seen if a != aid)
        if others:
            ctx.problem(src, (), f"`{src.file}` names account(s) {', '.join(f'`{a}`' for a in others)} but was loaded as account `{aid}`", "check `--account-id`", severity="warning")
    elif seen:
        aid = seen.most_common(1)[0][0]
        if len(seen) > 1:
            others = ", ".join(f"`{a}`" for a in sorted(seen) if a != aid)
            ctx.problem(src, (), f"`{src.file}` holds ARNs of several accounts; loaded as account `{aid}`, also named: {others}", "give each account its own folder in a snapshot", severity="warning")
    else:
        raise InputError([Diagnostic(src.file, 1, 1, f"cannot tell which account `{src.file}` describes: it holds no ARN", "pass the account id (`--account-id`)")], unreadable=True)
    account = Account(aid)
    load_authorization_details(ctx, doc, src, account)
    ctx.estate.accounts[aid] = account
    ctx.count("accounts")
    ctx.missing("organization (SCPs/RCPs) not collected")
    ctx.missing(f"resource policies not collected for account {aid}")


def _is_authz(doc: Any) -> bool:
    if isinstance(doc, dict):
        return any(k in doc for k in AUTHZ_KEYS) or not doc
    return isinstance(doc, list) and all(isinstance(p, dict) for p in doc)


def _arn_account(arn: Any) -> Optional[str]:
    if not isinstance(arn, str):
        return None
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _pages(doc: Any) -> tuple[list, list[tuple]]:
    if isinstance(doc, list):
        return doc, [(i,) for i in range(len(doc))]
    return [doc], [()]


# --------------------------------------------------------------------------- authorization details


class _Attachments:
    """Managed policies and groups that principals name, to report those the snapshot lacks."""

    def __init__(self):
        self.policies: dict[str, list] = {}  # ARN → [(owner, source, path)]
        self.groups: dict[str, list] = {}

    def policy(self, arn: str, owner: str, src: Source, path: tuple):
        self.policies.setdefault(arn, []).append((owner, src, path))


def _str_field(ctx: Context, e: dict, key: str, src: Source, path: tuple, what: str) -> Optional[str]:
    v = e.get(key)
    if not isinstance(v, str) or not v:
        ctx.problem(src, path, f"{what} entry has no `{key}`" if v is None else f"`{key}` of {what} entry is {_describe(v)}", f"each {what} entry needs `{key}` (a string); " + HINT_AUTHZ)
        return None
    return v


def _list_field(ctx: Context, e: dict, key: str, src: Source, path: tuple, what: str) -> list:
    v = e.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        ctx.problem(src, path + (key,), f"`{key}` of {what} is {_describe(v)}, not a list", HINT_AUTHZ)
        return []
    return v


def _tags(v: Any) -> dict:
    out: dict = {}
    if isinstance(v, list):
        for t in v:
            if isinstance(t, dict):
                k = t.get("Key")
                if isinstance(k, str):
                    out[k] = t.get("Value", "")
    return out


def load_authorization_details(ctx: Context, doc: Any, src: Source, account: Account) -> None:
    pages, prefixes = _pages(doc)
    att = _Attachments()
    aid = account.id
    # managed policies first: principals refer to them
    for page, pre in zip(pages, prefixes):
        if not isinstance(page, dict):
            ctx.problem(src, pre, f"a page of authorization details is {_describe(page)}", "a JSON array of pages holds one object per page, each as `get-account-authorization-details` prints it")
            continue
        for i, e in enumerate(_entries(ctx, page, "Policies", src, pre)):
            _managed_policy(ctx, e, src, pre + ("Policies", i), account)
    for page, pre in zip(pages, prefixes):
        if not isinstance(page, dict):
            continue
        for i, e in enumerate(_entries(ctx, page, "GroupDetailList", src, pre)):
            _group(ctx, e, src, pre + ("GroupDetailList", i), account, att)
        for i, e in enumerate(_entries(ctx, page, "UserDetailList", src, pre)):
            _user(ctx, e, src, pre + ("UserDetailList", i), account, att)
        for i, e in enumerate(_entries(ctx, page, "RoleDetailList", src, pre)):
            _role(ctx, e, src, pre + ("RoleDetailList", i), account, att)

    for arn, uses in att.policies.items():
        if arn in account.managed_policies:
            continue
        owners = sorted({o for o, _, _ in uses})
        owner_text = ", ".join(f"`{o}`" for o in owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
        _, s, p = uses[0]
        ctx.problem(s, p, f"managed policy `{arn}` is attached to {owner_text} but is not in the snapshot", "collect `Policies` unfiltered (`get-account-authorization-details` without `--filter`), or add the policy; its permissions are unknown", severity="warning")
        ctx.missing(f"managed policy {arn} not collected for account {aid} (attached to {', '.join(owners)})")
    names = {g.name for g in account.groups.values()}
    for gname, uses in att.groups.items():
        if gname in names:
            continue
        owners = sorted({o for o, _, _ in uses})
        _, s, p = uses[0]
        ctx.problem(s, p, f"group `{gname}` of {', '.join(f'`{o}`' for o in owners)} is not in the snapshot", "collect `GroupDetailList` unfiltered; the group's policies are unknown", severity="warning")
        ctx.missing(f"group {gname} not collected for account {aid} (member: {', '.join(owners)})")


def _entries(ctx: Context, page: dict, key: str, src: Source, pre: tuple) -> list:
    v = page.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        ctx.problem(src, pre + (key,), f"`{key}` is {_describe(v)}, not a list", HINT_AUTHZ)
        return []
    return v


def _entity_head(ctx: Context, e: Any, src: Source, path: tuple, what: str, name_key: str, account: Account, counter: str):
    """(arn, name, path) of a user/group/role/policy entry, or None after reporting why not."""
    if not isinstance(e, dict):
        ctx.problem(src, path, f"a {what} entry is {_describe(e)}", HINT_AUTHZ)
        ctx.skip(counter)
        return None
    arn = e.get("Arn")
    if not isinstance(arn, str) or not arn:
        _str_field(ctx, e, "Arn", src, path, what)  # reports it
        ctx.skip(counter)
        return None
    name = e.get(name_key)
    if not isinstance(name, str) or not name:
        name = arn.rsplit("/", 1)[-1]
    p = e.get("Path")
    if not isinstance(p, str):
        p = "/"
    if what != "policy" and _arn_account(arn) not in (account.id, "aws"):
        ctx.problem(src, path + ("Arn",), f"{what} `{arn}` is listed under account `{account.id}`", "each account folder holds only its own account's IAM data", severity="warning")
    return arn, name, p


def _managed_policy(ctx: Context, e: Any, src: Source, path: tuple, account: Account) -> None:
    head = _entity_head(ctx, e, src, path, "policy", "PolicyName", account, "policies")
    if head is None:
        return
    arn, name, ppath = head
    if arn in account.managed_policies:
        ctx.problem(src, path + ("Arn",), f"managed policy `{arn}` is listed twice", "the first listing is kept", severity="warning")
        ctx.skip("policies")
        return
    versions = _list_field(ctx, e, "PolicyVersionList", src, path, f"policy `{arn}`")
    default_index = None
    for j, v in enumerate(versions):
        if isinstance(v, dict) and v.get("IsDefaultVersion") is True:
            default_index = j
            break
    if default_index is None:  # fall back on DefaultVersionId, as the API also gives it
        dv = e.get("DefaultVersionId")
        for j, v in enumerate(versions):
            if isinstance(v, dict) and dv is not None and v.get("VersionId") == dv:
                default_index = j
                break
    policy = None
    version_id = None
    if default_index is None:
        ctx.problem(src, path, f"managed policy `{arn}` has no default version", "one entry of `PolicyVersionList` has `\"IsDefaultVersion\": true`; the policy's permissions are unknown")
        ctx.skip("policies")
    else:
        v = versions[default_index]
        version_id = v.get("VersionId") if isinstance(v.get("VersionId"), str) else None
        vpath = path + ("PolicyVersionList", default_index)
        if "Document" not in v:
            ctx.problem(src, vpath, f"the default version of `{arn}` has no `Document`", HINT_AUTHZ)
            ctx.skip("policies")
        else:
            policy = ctx.policy(v["Document"], PolicyKind.IDENTITY, arn, src, vpath + ("Document",), "policies")
    others = {
        (v.get("VersionId") or f"#{j}"): v.get("Document")
        for j, v in enumerate(versions)
        if j != default_index and isinstance(v, dict)
    }
    account.managed_policies[arn] = ManagedPolicy(arn, name, ppath, version_id, policy, others, e.get("PolicyId"))


def _inline(ctx: Context, e: dict, key: str, owner_arn: str, src: Source, path: tuple, what: str) -> tuple:
    out = []
    for j, ip in enumerate(_list_field(ctx, e, key, src, path, what)):
        ipath = path + (key, j)
        if not isinstance(ip, dict):
            ctx.problem(src, ipath, f"an inline policy of `{owner_arn}` is {_describe(ip)}", HINT_AUTHZ)
            ctx.skip("inline_policies")
            continue
        pname = ip.get("PolicyName")
        if not isinstance(pname, str) or not pname:
            ctx.problem(src, ipath, f"an inline policy of `{owner_arn}` has no `PolicyName`", HINT_AUTHZ)
            ctx.skip("inline_policies")
            continue
        if "PolicyDocument" not in ip:
            ctx.problem(src, ipath, f"inline policy `{pname}` of `{owner_arn}` has no `PolicyDocument`", HINT_AUTHZ)
            ctx.skip("inline_policies")
            continue
        pol = ctx.policy(ip["PolicyDocument"], PolicyKind.IDENTITY, f"{owner_arn}#{pname}", src, ipath + ("PolicyDocument",), "inline_policies")
        if pol is not None:
            out.append(pol)
    return tuple(out)


def _attached(ctx: Context, e: dict, owner: str, src: Source, path: tuple, what: str, att: _Attachments) -> tuple:
    listed = _list_field(ctx, e, "AttachedManagedPolicies", src, path, what)
    if not listed:
        return ()
    out = []
    uses = att.policies
    for j, a in enumerate(listed):
        arn = a.get("PolicyArn") if isinstance(a, dict) else None
        if not isinstance(arn, str):
            ctx.problem(src, path + ("AttachedManagedPolicies", j), f"an attached policy of `{owner}` has no `PolicyArn`", HINT_AUTHZ)
            continue
        out.append(arn)
        use = (owner, src, path + ("AttachedManagedPolicies", j, "PolicyArn"))  # as att.policy() keeps it
        got = uses.get(arn)
        if got is None:
            uses[arn] = [use]
        else:
            got.append(use)
    return tuple(out)


def _boundary(ctx: Context, e: dict, owner: str, src: Source, path: tuple, att: _Attachments) -> Optional[str]:
    b = e.get("PermissionsBoundary")
    if not b:
        return None
    arn = b.get("PermissionsBoundaryArn") if isinstance(b, dict) else None
    if not isinstance(arn, str):
        ctx.problem(src, path + ("PermissionsBoundary",), f"the permissions boundary of `{owner}` has no `PermissionsBoundaryArn`", HINT_AUTHZ)
        return None
    att.policy(arn, owner, src, path + ("PermissionsBoundary", "PermissionsBoundaryArn"))
    return arn


def _new_entity(ctx, e, src, path, kind: str, name_field: str, account: Account, table: str):
    """(arn, name, path) of an entity seen for the first time in its account; None (reported)
    when it is unusable or listed twice (the first listing is kept)."""
    head = _entity_head(ctx, e, src, path, kind, name_field, account, table)
    if head is None:
        return None
    if head[0] in getattr(account, table):
        ctx.problem(src, path + ("Arn",), f"{kind} `{head[0]}` is listed twice", "the first listing is kept", severity="warning")
        ctx.skip(table)
        return None
    return head


def _short(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def _group(ctx, e, src, path, account: Account, att) -> None:
    head = _new_entity(ctx, e, src, path, "group", "GroupName", account, "groups")
    if head is None:
        return
    arn, name, gpath = head
    owner = _short("group", name)
    account.groups[arn] = Group(
        arn, name, gpath, account.id,
        inline=_inline(ctx, e, "GroupPolicyList", arn, src, path, f"group `{arn}`"),
        managed=_attached(ctx, e, owner, src, path, f"group `{arn}`", att),
        id=e.get("GroupId"),
    )
    ctx.count("groups")


def _user(ctx, e, src, path, account: Account, att) -> None:
    head = _new_entity(ctx, e, src, path, "user", "UserName", account, "users")
    if head is None:
        return
    arn, name, upath = head
    owner = _short("user", name)
    groups = []
    for j, g in enumerate(_list_field(ctx, e, "GroupList", src, path, f"user `{arn}`")):
        if isinstance(g, str):
            groups.append(g)
            att.groups.setdefault(g, []).append((owner, src, path + ("GroupList", j)))
        else:
            ctx.problem(src, path + ("GroupList", j), f"a group of `{arn}` is {_describe(g)}, not a group name", HINT_AUTHZ)
    account.users[arn] = User(
        arn, name, upath, account.id,
        inline=_inline(ctx, e, "UserPolicyList", arn, src, path, f"user `{arn}`"),
        managed=_attached(ctx, e, owner, src, path, f"user `{arn}`", att),
        groups=tuple(groups),
        boundary=_boundary(ctx, e, owner, src, path, att),
        tags=_tags(e.get("Tags")),
        id=e.get("UserId"),
    )
    ctx.count("users")


def _role(ctx, e, src, path, account: Account, att) -> None:
    head = _new_entity(ctx, e, src, path, "role", "RoleName", account, "roles")
    if head is None:
        return
    arn, name, rpath = head
    owner = _short("role", name)
    trust = None
    if "AssumeRolePolicyDocument" in e:
        trust = ctx.policy(e["AssumeRolePolicyDocument"], PolicyKind.TRUST, f"{arn} (trust policy)", src, path + ("AssumeRolePolicyDocument",), "trust_policies")
    else:
        ctx.problem(src, path, f"role `{arn}` has no `AssumeRolePolicyDocument`", "nobody can be found to assume it; " + HINT_AUTHZ, severity="warning")
        ctx.missing(f"trust policy of {arn} not collected")
    profiles = []
    for j, ip in enumerate(_list_field(ctx, e, "InstanceProfileList", src, path, f"role `{arn}`")):
        parn = ip.get("Arn") if isinstance(ip, dict) else None
        if isinstance(parn, str):
            profiles.append(parn)
            roles = [r.get("Arn") for r in ip.get("Roles") or [] if isinstance(r, dict) and isinstance(r.get("Arn"), str)] or [arn]
            known = account.instance_profiles.get(parn, ())
            account.instance_profiles[parn] = tuple(dict.fromkeys((*known, *roles)))
    account.roles[arn] = Role(
        arn, name, rpath, account.id, trust,
        inline=_inline(ctx, e, "RolePolicyList", arn, src, path, f"role `{arn}`"),
        managed=_attached(ctx, e, owner, src, path, f"role `{arn}`", att),
        boundary=_boundary(ctx, e, owner, src, path, att),
        tags=_tags(e.get("Tags")),
        instance_profiles=tuple(profiles),
        id=e.get("RoleId"),
    )
    ctx.count("roles")


# --------------------------------------------------------------------------- resources


def load_resources(ctx: Context, doc: Any, src: Source, account: Account) -> None:
    if not isinstance(doc, dict):
        ctx.problem(src, (), f"`{src.file}` is {_describe(doc)}, not an object", "resources.json holds `ResourcePolicies`, `Workloads` and `Credentials`")
        ctx.skip("files")
        return
    account.resources_collected = True
    for i, e in enumerate(_entries(ctx, doc, "ResourcePolicies", src, ())):
        path = ("ResourcePolicies", i)
        if not isinstance(e, dict):
            ctx.problem(src, path, f"a resource policy entry is {_describe(e)}", "each entry is `{\"Arn\": ..., \"Policy\": ...}`")
            ctx.skip("resource_policies")
            continue
        arn = _str_field(ctx, e, "Arn", src, path, "resource policy")
        if arn is None:
            ctx.skip("resource_policies")
            continue
        if arn in account.resource_policies:
            ctx.problem(src, path + ("Arn",), f"resource `{arn}` has two policies listed", "a resource has one resource-based policy; the first is kept", severity="warning")
            ctx.skip("resource_policies")
            continue
        if "Policy" not in e:
            ctx.problem(src, path, f"resource policy entry of `{arn}` has no `Policy`", "each entry is `{\"Arn\": ..., \"Policy\": ...}`")
            ctx.skip("resource_policies")
            continue
        pol = ctx.policy(e["Policy"], PolicyKind.RESOURCE, arn, src, path + ("Policy",), "resource_policies")
        if pol is not None:
            account.resource_policies[arn] = pol

    for i, e in enumerate(_entries(ctx, doc, "Workloads", src, ())):
        path = ("Workloads", i)
        if not isinstance(e, dict):
            ctx.problem(src, path, f"a workload entry is {_describe(e)}", "each entry is `{\"Arn\": ..., \"Role\": ...}` or `{\"Arn\": ..., \"InstanceProfile\": ...}`")
            ctx.skip("workloads")
            continue
        arn = _str_field(ctx, e, "Arn", src, path, "workload")
        if arn is None:
            ctx.skip("workloads")
            continue
        role, profile = e.get("Role"), e.get("InstanceProfile")
        if isinstance(profile, str) and not isinstance(role, str):
            roles = account.instance_profiles.get(profile)
            if not roles:
                ctx.problem(src, path + ("InstanceProfile",), f"instance profile `{profile}` of `{arn}` is not in the snapshot", "it is listed in `RoleDetailList[].InstanceProfileList` of the role it holds; the workload's role is unknown", severity="warning")
                ctx.missing(f"instance profile {profile} not collected for account {account.id}")
            role = roles[0] if roles else None
        elif not isinstance(role, str):
            ctx.problem(src, path, f"workload `{arn}` names neither `Role` nor `InstanceProfile`", "give the ARN of the role it runs as")
            ctx.skip("workloads")
            continue
        elif role not in account.roles and _arn_account(role) == account.id and account.iam_collected:
            ctx.problem(src, path + ("Role",), f"role `{role}` of workload `{arn}` is not in the snapshot", "the workload runs as a role this account's authorization details do not list", severity="warning")
        account.workloads.append(Workload(arn, role, account.id, profile if isinstance(profile, str) else None))
        ctx.count("workloads")

    for i, e in enumerate(_entries(ctx, doc, "Credentials", src, ())):
        path = ("Credentials", i)
        if not isinstance(e, dict):
            ctx.problem(src, path, f"a credentials entry is {_describe(e)}", "each entry is `{\"User\": ..., \"AccessKeys\": n, \"LoginProfile\": bool, \"MFADevices\": n}`")
            ctx.skip("credentials")
            continue
        user = _str_field(ctx, e, "User", src, path, "credentials")
        if user is None:
            ctx.skip("credentials")
            continue
        bad = [k for k, t in (("AccessKeys", int), ("LoginProfile", bool), ("MFADevices", int)) if k in e and (not isinstance(e[k], t) or (t is int and isinstance(e[k], bool)))]
        if bad:
            k = bad[0]
            ctx.problem(src, path + (k,), f"`{k}` of the credentials of `{user}` is {_describe(e[k])}", "`AccessKeys` and `MFADevices` are counts, `LoginProfile` is true or false")
            ctx.skip("credentials")
            continue
        if user not in account.users and account.iam_collected:
            ctx.problem(src, path + ("User",), f"credentials given for `{user}`, who is not in the snapshot", "list credentials of this account's users only", severity="warning")
        account.credentials[user] = Credential(user, e.get("AccessKeys", 0), e.get("LoginProfile", False), e.get("MFADevices", 0))
        ctx.count("credentials")
