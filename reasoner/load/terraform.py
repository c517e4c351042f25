"""Terraform: the JSON of `terraform show -json`, for a plan or for a state.

A plan's resources come from ``planned_values`` (what will exist after apply), with
``resource_changes[].change.after_unknown`` saying which attributes are known only after apply and
``prior_state`` giving data sources read at plan time.  A state's come from ``values``.  Modules
are walked recursively.

Values known only after apply are resolved where AWS fixes them: the ARN of a user, group, role,
managed policy or instance profile follows from its path and name and the account id
(``account_id``, else a ``data.aws_caller_identity``, a variable named ``account_id`` /
``aws_account_id``, or an ARN of the input); a reference in ``configuration`` (e.g.
``aws_iam_policy.p.arn``) leads to the resource that holds the value.  What AWS chooses at creation
(a generated name, a KMS key id, an Organizations policy id) cannot be known: it is reported in
``Estate.missing``, never guessed.

Every entity and policy keeps its Terraform address in ``Estate.origins`` (by ARN or policy
name); each policy's ``source`` points at its attribute in the JSON file.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from ..estate import Account, Group, ManagedPolicy, Organization, OrgPolicy, OrgUnit, Role, User
from ..locate import Source
from ..model import PolicyKind
from . import Context
from .organization import policy_arn as org_policy_arn

IAM_KINDS = {"aws_iam_user": "user", "aws_iam_group": "group", "aws_iam_role": "role", "aws_iam_policy": "policy", "aws_iam_instance_profile": "instance-profile"}
_REF = re.compile(r"^(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)(\[[^\]]*\])?(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
_INDEX = re.compile(r"\[[^\]]*\]")
ARN_ATTRS = {"arn"}
NAME_ATTRS = {"name", "id", "bucket", "url", "json", "arn", "key_id", "account_id"}


@dataclass
class Res:
    """One resource instance of the input."""

    address: str
    module: str  # "" for the root module, else e.g. "module.app" (indices kept)
    mode: str  # "managed" | "data"
    type: str
    name: str
    index: Any
    values: dict
    unknown: dict
    path: tuple  # JSON path of `values` in the file

    def known(self, attr: str) -> Any:
        """The attribute's value when known before apply, else None."""
        u = self.unknown.get(attr)
        if u is True or (isinstance(u, list) and any(x is True for x in u)):
            return None
        return self.values.get(attr)


@dataclass
class _Builder:
    kind: str
    arn: str
    name: str
    path: str
    res: Res
    inline: list = field(default_factory=list)
    managed: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    boundary: Optional[str] = None
    trust: Any = None
    tags: dict = field(default_factory=dict)


class _Plan:
    def __init__(self, ctx: Context, doc: dict, src: Source, account_id: Optional[str]):
        self.ctx = ctx
        self.doc = doc
        self.src = src
        self.resources: list[Res] = []
        self.by_key: dict[tuple, list[Res]] = {}  # (module without indices, mode, type, name) → instances
        self.config_modules: dict[str, dict] = {}
        self.partition = "aws"
        self.account_id = account_id
        self.region = None
        self.origins: dict[str, str] = {}

    # ------------------------------------------------------------------ reading

    def read(self) -> None:
        doc = self.doc
        unknown_by_address: dict[str, dict] = {}
        for i, rc in enumerate(doc.get("resource_changes") or []):
            if isinstance(rc, dict) and isinstance(rc.get("change"), dict):
                au = rc["change"].get("after_unknown")
                if isinstance(au, dict):
                    unknown_by_address[rc.get("address")] = au
        seen: dict[str, Res] = {}
        prior = doc.get("prior_state")
        if isinstance(prior, dict) and isinstance(prior.get("values"), dict):
            self._walk(prior["values"].get("root_module"), ("prior_state", "values", "root_module"), {}, seen)
        if isinstance(doc.get("planned_values"), dict):
            self._walk(doc["planned_values"].get("root_module"), ("planned_values", "root_module"), unknown_by_address, seen, plan=True)
        elif isinstance(doc.get("values"), dict):
            self._walk(doc["values"].get("root_module"), ("values", "root_module"), {}, seen)
        self.resources = list(seen.values())
        for r in self.resources:
            self.by_key.setdefault((_INDEX.sub("", r.module), r.mode, r.type, r.name), []).append(r)
        conf = doc.get("configuration")
        if isinstance(conf, dict):
            self._config(conf.get("root_module"), "")
            prov = conf.get("provider_config")
            if isinstance(prov, dict) and isinstance(prov.get("aws"), dict):
                region = ((prov["aws"].get("expressions") or {}).get("region") or {}).get("constant_value")
                self.region = region if isinstance(region, str) else None
        self._account()

    def _walk(self, module: Any, path: tuple, unknown: dict, seen: dict, plan: bool = False) -> None:
        if not isinstance(module, dict):
            return
        maddr = module.get("address") or ""
        for i, r in enumerate(module.get("resources") or []):
            if not isinstance(r, dict) or not isinstance(r.get("type"), str) or not isinstance(r.get("address"), str):
                self.ctx.problem(self.src, path + ("resources", i), "a resource entry has no `type` or `address`", "this is not what `terraform show -json` prints")
                continue
            values = r.get("values") if isinstance(r.get("values"), dict) else {}
            addr = r["address"]
            if plan and addr in seen and seen[addr].mode == "data" and not values:
                continue
            seen[addr] = Res(addr, maddr, r.get("mode", "managed"), r["type"], r.get("name", ""), r.get("index"), values, unknown.get(addr, {}), path + ("resources", i, "values"))
        for j, child in enumerate(module.get("child_modules") or []):
            self._walk(child, path + ("child_modules", j), unknown, seen, plan)

    def _config(self, module: Any, prefix: str) -> None:
        if not isinstance(module, dict):
            return
        self.config_modules[prefix] = module
        for name, call in (module.get("module_calls") or {}).items():
            if isinstance(call, dict):
                self._config(call.get("module"), f"{prefix}.module.{name}" if prefix else f"module.{name}")

    def _account(self) -> None:
        if self.account_id is not None:
            return
        for r in self.resources:
            if r.type == "aws_caller_identity" and isinstance(r.values.get("account_id"), str):
                self.account_id = r.values["account_id"]
                return
        variables = self.doc.get("variables") or {}
        for name in ("account_id", "aws_account_id"):
            v = variables.get(name)
            if isinstance(v, dict) and isinstance(v.get("value"), str) and re.fullmatch(r"\d{12}", v["value"]):
                self.account_id = v["value"]
                return
        seen = Counter()
        for r in self.resources:
            arn = r.known("arn")
            if isinstance(arn, str) and arn.startswith("arn:"):
                parts = arn.split(":")
                if len(parts) > 4 and re.fullmatch(r"\d{12}", parts[4]):
                    seen[parts[4]] += 1
                    self.partition = parts[1]
        if seen:
            self.account_id = seen.most_common(1)[0][0]

    # ------------------------------------------------------------------ resolving

    def configured(self, r: Res, attr: str) -> bool:
        """Whether the input sets the attribute (a known value, or an expression in the
        configuration); an optional attribute the provider computes is otherwise unknown in a plan
        without meaning anything."""
        return r.known(attr) is not None or attr in self.expressions(r)

    def expressions(self, r: Res) -> dict:
        mod = self.config_modules.get(_INDEX.sub("", r.module))
        if not mod:
            return {}
        want = f"{'data.' if r.mode == 'data' else ''}{r.type}.{r.name}"
        for c in mod.get("resources") or []:
            if isinstance(c, dict) and c.get("address") == want:
                return c.get("expressions") or {}
        return {}

    def target(self, r: Res, ref: str) -> Optional[tuple[Res, Optional[str]]]:
        """The resource instance a reference names (in ``r``'s module), with the attribute."""
        m = _REF.match(ref)
        if not m or m.group(2) in ("var", "local", "module", "each", "count", "path", "self", "terraform"):
            return None
        mode = "data" if m.group(1) else "managed"
        cands = self.by_key.get((_INDEX.sub("", r.module), mode, m.group(2), m.group(3)), [])
        if m.group(4):  # an explicit index
            idx = json.loads(m.group(4)[1:-1]) if m.group(4)[1:-1][:1] in '"0123456789' else None
            cands = [c for c in cands if c.index == idx]
        elif len(cands) > 1:  # `each.key` / `count.index` pairing: the instance with the same key
            cands = [c for c in cands if c.index == r.index]
        if len(cands) != 1:
            return None
        return cands[0], m.group(5)

    def resolve(self, r: Res, attr: str, want: set) -> tuple[Any, str]:
        """(value, reason): the attribute's value, known now or through the one reference its
        expression makes to an attribute in ``want``; None and why not otherwise."""
        v = r.known(attr)
        if v is not None:
            return v, ""
        expr = self.expressions(r).get(attr)
        refs = [x for x in (expr or {}).get("references", []) if isinstance(x, str)] if isinstance(expr, dict) else []
        with_attr = []
        for ref in refs:
            t = self.target(r, ref)
            if t is not None and t[1] is not None:
                with_attr.append(t)
        targets = {(t.address, a) for t, a in with_attr}
        if len(targets) == 1:
            t, a = with_attr[0]
            if a in want:
                return self.attribute(t, a)
        if r.unknown.get(attr) or refs:
            return None, f"`{attr}` of `{r.address}` is known only after apply and cannot be followed to a value AWS fixes in advance"
        return None, f"`{r.address}` has no `{attr}`"

    def attribute(self, t: Res, attr: str) -> tuple[Any, str]:
        """An attribute of a resource: known, or computed as AWS will compute it."""
        v = t.known(attr)
        if v is not None:
            return v, ""
        kind = IAM_KINDS.get(t.type)
        if kind is not None:
            name = t.known("name")
            if name is None:
                if t.values.get("name_prefix") or t.known("name_prefix"):
                    return None, f"`{t.address}` has a generated name (`name_prefix`): its ARN is known only after apply"
                return None, f"the name of `{t.address}` is known only after apply"
            if attr == "name" or (attr == "id" and kind != "policy"):
                return name, ""
            if attr == "arn" or (attr == "id" and kind == "policy"):
                if self.account_id is None:
                    return None, f"the ARN of `{t.address}` needs the account id: pass `--account-id`"
                path = t.known("path") or "/"
                return f"arn:{self.partition}:iam::{self.account_id}:{kind}{path}{name}", ""
        if t.type == "aws_s3_bucket" and attr in ("id", "bucket", "arn"):
            b = t.known("bucket")
            if b is None:
                return None, f"`{t.address}` has a generated bucket name: it is known only after apply"
            return (f"arn:{self.partition}:s3:::{b}" if attr == "arn" else b), ""
        if t.type in ("aws_sqs_queue", "aws_sns_topic") and attr in ("arn", "id", "url"):
            name = t.known("name")
            if name is None or self.account_id is None or self.region is None:
                why = "its name" if name is None else "the account id (`--account-id`)" if self.account_id is None else "the provider's region"
                return None, f"the ARN of `{t.address}` needs {why}, which the input does not fix"
            service = t.type[4:7]
            if t.type == "aws_sqs_queue" and attr in ("id", "url"):
                return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}", ""
            return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{name}", ""
        if t.type == "aws_kms_key":
            return None, f"the key id of `{t.address}` is chosen by AWS when the key is created: its ARN is known only after apply"
        if t.type == "aws_organizations_policy" and attr == "id":
            return None, f"the policy id of `{t.address}` is chosen by AWS when the policy is created"
        return None, f"`{attr}` of `{t.address}` is known only after apply"

    def resolve_list(self, r: Res, attr: str, want: set) -> tuple[list, list[str]]:
        """A list attribute (users, groups, roles, managed_policy_arns): its known value, or each
        reference of its expression followed."""
        v = r.known(attr)
        if isinstance(v, list):
            return [x for x in v if isinstance(x, str)], []
        expr = self.expressions(r).get(attr)
        refs = [x for x in (expr or {}).get("references", []) if isinstance(x, str)] if isinstance(expr, dict) else []
        out, reasons, done = [], [], set()
        for ref in refs:
            t = self.target(r, ref)
            if t is None or t[1] is None or (t[0].address, t[1]) in done:
                continue
            done.add((t[0].address, t[1]))
            if t[1] not in want:
                reasons.append(f"`{attr}` of `{r.address}` uses `{ref}`, which is not a value this input can fix")
                continue
            val, why = self.attribute(*t)
            if val is None:
                reasons.append(why)
            else:
                out.append(val)
        if not out and not reasons and r.unknown.get(attr):
            reasons.append(f"`{attr}` of `{r.address}` is known only after apply")
        return out, reasons


# --------------------------------------------------------------------------- building


def load_terraform(ctx: Context, doc: dict, src: Source, account_id: Optional[str]) -> None:
    plan = _Plan(ctx, doc, src, account_id)
    plan.read()
    estate = ctx.estate
    estate.origins = plan.origins
    ctx.count("terraform_resources", len(plan.resources))
    aid = plan.account_id
    if aid is None:
        ctx.missing("account id not in the Terraform input: ARNs known only after apply cannot be written (pass --account-id)")

    def missing(r: Res, why: str, what: str) -> None:
        ctx.problem(src, r.path, f"{what}: {why}", "the answer leaves it out; apply and load the state, or fix the value in the configuration", severity="warning")
        ctx.missing(f"{what}: {why}" if r.address in what + why else f"{what} ({r.address}): {why}")
        ctx.skip("terraform_values")

    managed = [r for r in plan.resources if r.mode == "managed"]
    entities: dict[str, dict[str, _Builder]] = {"user": {}, "group": {}, "role": {}}
    policies: dict[str, ManagedPolicy] = {}
    profiles: dict[str, tuple] = {}
    by_name: dict[tuple, _Builder] = {}
    unresolved: set = set()  # (kind, name) of entities defined here whose ARN cannot be written

    def account_of(arn: str) -> str:
        parts = arn.split(":")
        return parts[4] if len(parts) > 4 and parts[4] else (aid or "")

    # principals and managed policies
    for r in managed:
        kind = IAM_KINDS.get(r.type)
        if kind is None:
            continue
        arn, why = plan.attribute(r, "arn")
        if arn is None:
            missing(r, why, f"{kind.replace('-', ' ')} `{r.address}`")
            if r.known("name"):
                unresolved.add((kind, r.values["name"]))
            continue
        name = arn.rsplit("/", 1)[-1]
        path = r.known("path") or "/"
        plan.origins[arn] = r.address
        if kind == "policy":
            if "policy" not in r.values or r.known("policy") is None:
                missing(r, f"its document is known only after apply", f"managed policy `{arn}`")
                policies[arn] = ManagedPolicy(arn, name, path, None, None)
                continue
            pol = ctx.policy(r.values["policy"], PolicyKind.IDENTITY, arn, src, r.path + ("policy",), "policies")
            policies[arn] = ManagedPolicy(arn, name, path, None, pol)
            continue
        if kind == "instance-profile":
            role, why = plan.resolve(r, "role", {"name", "id"})
            profiles[arn] = (role,) if role else ()
            if role is None:
                missing(r, why, f"the role of instance profile `{arn}`")
            continue
        b = _Builder(kind, arn, name, path, r, tags=dict(r.known("tags") or {}))
        entities[kind][arn] = b
        by_name[(kind, name)] = b
        pb, why = plan.resolve(r, "permissions_boundary", ARN_ATTRS | {"id"}) if "permissions_boundary" in r.values or r.unknown.get("permissions_boundary") else (None, "")
        if pb:
            b.boundary = pb
        elif why and r.unknown.get("permissions_boundary"):
            missing(r, why, f"the permissions boundary of `{arn}`")
        if kind == "role":
            if r.known("assume_role_policy") is None:
                missing(r, "its trust policy is known only after apply", f"the trust policy of `{arn}`")
            else:
                b.trust = ctx.policy(r.values["assume_role_policy"], PolicyKind.TRUST, f"{arn} (trust policy)", src, r.path + ("assume_role_policy",), "trust_policies")
            for j, ip in enumerate(r.known("inline_policy") or []):
                if isinstance(ip, dict) and ip.get("name") and ip.get("policy"):
                    pname = f"{arn}#{ip['name']}"
                    pol = ctx.policy(ip["policy"], PolicyKind.IDENTITY, pname, src, r.path + ("inline_policy", j, "policy"), "inline_policies")
                    if pol is not None:
                        b.inline.append(pol)
                        plan.origins[pname] = r.address
            if plan.configured(r, "managed_policy_arns"):  # else computed from the attachments
                arns, reasons = plan.resolve_list(r, "managed_policy_arns", ARN_ATTRS | {"id"})
                b.managed.extend(arns)
                for why in reasons:
                    missing(r, why, f"a managed policy of `{arn}`")

    def principal(r: Res, kind: str, attr: str) -> Optional[_Builder]:
        val, why = plan.resolve(r, attr, {"name", "id", "arn"})
        if val is None:
            missing(r, why, f"the {kind} of `{r.address}`")
            return None
        return named(r, kind, val)

    def named(r: Res, kind: str, val: str) -> Optional[_Builder]:
        short = val.rsplit("/", 1)[-1] if val.startswith("arn:") else val
        b = entities[kind].get(val) or by_name.get((kind, short))
        if b is None and (kind, short) in unresolved:
            return None  # defined here, already reported: its ARN cannot be written
        if b is None:
            missing(r, f"{kind} `{val}` is not defined in this Terraform input", f"the {kind} of `{r.address}`")
        return b

    # inline policies, attachments, memberships
    for r in managed:
        t = r.type
        if t in ("aws_iam_user_policy", "aws_iam_group_policy", "aws_iam_role_policy"):
            kind = t[8:-7]
            b = principal(r, kind, kind)
            if b is None:
                continue
            pname = r.known("name")
            if pname is None:
                missing(r, "its name is known only after apply", f"inline policy `{r.address}`")
                continue
            if r.known("policy") is None:
                missing(r, "its document is known only after apply", f"inline policy `{pname}` of `{b.arn}`")
                continue
            full = f"{b.arn}#{pname}"
            pol = ctx.policy(r.values["policy"], PolicyKind.IDENTITY, full, src, r.path + ("policy",), "inline_policies")
            if pol is not None:
                b.inline.append(pol)
                plan.origins[full] = r.address
        elif t in ("aws_iam_user_policy_attachment", "aws_iam_group_policy_attachment", "aws_iam_role_policy_attachment"):
            kind = t[8:].split("_", 1)[0]
            b = principal(r, kind, kind)
            arn, why = plan.resolve(r, "policy_arn", ARN_ATTRS | {"id"})
            if arn is None:
                missing(r, why, f"the policy attached by `{r.address}`")
            elif b is not None:
                b.managed.append(arn)
        elif t == "aws_iam_policy_attachment":
            arn, why = plan.resolve(r, "policy_arn", ARN_ATTRS | {"id"})
            if arn is None:
                missing(r, why, f"the policy attached by `{r.address}`")
                continue
            for kind, attr in (("user", "users"), ("role", "roles"), ("group", "groups")):
                names, reasons = plan.resolve_list(r, attr, {"name", "id"})
                for why in reasons:
                    missing(r, why, f"a {kind} of `{r.address}`")
                for n in names:
                    b = named(r, kind, n)
                    if b is not None:
                        b.managed.append(arn)
        elif t == "aws_iam_group_membership":
            group, why = plan.resolve(r, "group", {"name", "id"})
            if group is None:
                missing(r, why, f"the group of `{r.address}`")
                continue
            users, reasons = plan.resolve_list(r, "users", {"name", "id"})
            for why in reasons:
                missing(r, why, f"a member of `{r.address}`")
            for u in users:
                b = named(r, "user", u)
                if b is not None and group not in b.groups:
                    b.groups.append(group)
        elif t == "aws_iam_user_group_membership":
            b = principal(r, "user", "user")
            groups, reasons = plan.resolve_list(r, "groups", {"name", "id"})
            for why in reasons:
                missing(r, why, f"a group of `{r.address}`")
            if b is not None:
                b.groups.extend(g for g in groups if g not in b.groups)

    # resource-based policies
    resource_policies: dict[str, tuple] = {}
    for r in managed:
        spec = _RESOURCE_POLICIES.get(r.type)
        if spec is None:
            continue
        doc_attr, arn_attr, want, to_arn = spec
        if not plan.configured(r, doc_attr):
            continue  # e.g. a bucket whose policy is a separate aws_s3_bucket_policy
        value, why = plan.attribute(r, "arn") if arn_attr == "self" else plan.resolve(r, arn_attr, want)
        rarn = to_arn(plan, value) if value is not None else None
        if rarn is None:
            missing(r, why or f"`{arn_attr}` of `{r.address}` is not an ARN", f"the resource policy of `{r.address}`")
            continue
        if r.known(doc_attr) is None:
            missing(r, "its document is known only after apply", f"the resource policy of `{rarn}`")
            continue
        pol = ctx.policy(r.values[doc_attr], PolicyKind.RESOURCE, rarn, src, r.path + (doc_attr,), "resource_policies")
        if pol is not None:
            resource_policies[rarn] = (pol, r)
            plan.origins[rarn] = r.address

    # accounts
    def account(aid_: str) -> Account:
        if aid_ not in estate.accounts:
            estate.accounts[aid_] = Account(aid_, resources_collected=True)
            ctx.count("accounts")
        return estate.accounts[aid_]

    for arn, mp in policies.items():
        account(account_of(arn) if account_of(arn) != "aws" else aid or "").managed_policies[arn] = mp
    attached: dict[str, list] = {}
    for kind, builders in entities.items():
        for arn, b in builders.items():
            acct = account(account_of(arn))
            for parn in b.managed + ([b.boundary] if b.boundary else []):
                attached.setdefault(parn, []).append((f"{kind}/{b.name}", b.res))
            if kind == "user":
                acct.users[arn] = User(arn, b.name, b.path, acct.id, tuple(b.inline), tuple(dict.fromkeys(b.managed)), tuple(b.groups), b.boundary, b.tags)
            elif kind == "group":
                acct.groups[arn] = Group(arn, b.name, b.path, acct.id, tuple(b.inline), tuple(dict.fromkeys(b.managed)))
            else:
                ips = tuple(p for p, roles in profiles.items() if b.name in roles or arn in roles)
                acct.roles[arn] = Role(arn, b.name, b.path, acct.id, b.trust, tuple(b.inline), tuple(dict.fromkeys(b.managed)), b.boundary, b.tags, ips)
            ctx.count(kind + "s")
    for parn, roles in profiles.items():
        acct = account(account_of(parn))
        acct.instance_profiles[parn] = tuple(
            (entities["role"][x].arn if x in entities["role"] else by_name[("role", x)].arn if ("role", x) in by_name else x) for x in roles
        )
    for rarn, (pol, r) in resource_policies.items():
        owner = account_of(rarn)
        if not owner:
            missing(r, "the account that owns it is unknown (pass `--account-id`)", f"the resource policy of `{rarn}`")
            continue
        account(owner).resource_policies[rarn] = pol
    for parn, uses in attached.items():
        if any(parn in a.managed_policies for a in estate.accounts.values()):
            continue
        owners = sorted({o for o, _ in uses})
        ctx.problem(src, uses[0][1].path, f"managed policy `{parn}` is attached to {', '.join(f'`{o}`' for o in owners)} but is not in the Terraform input", "its permissions are unknown: AWS-managed and pre-existing policies are not part of a plan", severity="warning")
        ctx.missing(f"managed policy {parn} not collected (attached to {', '.join(owners)})")
    group_names = {b.name for b in entities["group"].values()}
    for b in entities["user"].values():
        for g in b.groups:
            if g not in group_names:
                ctx.problem(src, b.res.path, f"group `{g}` of `user/{b.name}` is not defined in this Terraform input", "its policies are unknown", severity="warning")
                ctx.missing(f"group {g} not collected (member: user/{b.name})")
    ctx.missing("resource policies of resources not managed by this Terraform input not collected")

    _organization(ctx, plan, managed, missing)


_RESOURCE_POLICIES = {
    # type: (policy attribute, attribute naming the resource, attributes accepted from a reference, value → ARN)
    "aws_s3_bucket_policy": ("policy", "bucket", {"id", "bucket"}, lambda p, v: v if v.startswith("arn:") else f"arn:{p.partition}:s3:::{v}"),
    "aws_s3_bucket": ("policy", "self", set(), lambda p, v: v),
    "aws_kms_key": ("policy", "self", set(), lambda p, v: v),
    "aws_kms_key_policy": ("policy", "key_id", {"arn"}, lambda p, v: v if v.startswith("arn:") else None),
    "aws_sqs_queue_policy": ("policy", "queue_url", {"url", "id"}, lambda p, v: _queue_arn(p, v)),
    "aws_sqs_queue": ("policy", "self", set(), lambda p, v: v),
    "aws_sns_topic_policy": ("policy", "arn", {"arn", "id"}, lambda p, v: v),
    "aws_sns_topic": ("policy", "self", set(), lambda p, v: v),
}


def _queue_arn(plan: _Plan, url: str) -> Optional[str]:
    m = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([\w.-]+)", url)
    if url.startswith("arn:"):
        return url
    return f"arn:{plan.partition}:sqs:{m.group(1)}:{m.group(2)}:{m.group(3)}" if m else None


def _organization(ctx: Context, plan: _Plan, managed: list, missing) -> None:
    org_res = [r for r in managed if r.type.startswith("aws_organizations_")]
    if not org_res:
        ctx.missing("organization (SCPs/RCPs) not collected")
        return
    org = Organization(None, None)
    for r in org_res:
        if r.type == "aws_organizations_organization":
            org.id = r.known("id")
            org.master_account = r.known("master_account_id")
            for root in r.known("roots") or []:
                if isinstance(root, dict) and isinstance(root.get("id"), str):
                    org.roots.append(root["id"])
                    org.ous[root["id"]] = OrgUnit(root["id"], root.get("name"), None)
        elif r.type == "aws_organizations_organizational_unit":
            oid, pid = r.known("id"), r.known("parent_id")
            if oid is None:
                continue  # a new OU: only attachments by reference can reach it
            org.ous[oid] = OrgUnit(oid, r.known("name"), pid)
        elif r.type == "aws_organizations_account":
            if r.known("id"):
                org.accounts[r.values["id"]] = r.known("parent_id")
                if r.known("name"):
                    org.account_names[r.values["id"]] = r.values["name"]
    by_address: dict[str, OrgPolicy] = {}
    types = {"SERVICE_CONTROL_POLICY": ("scp", PolicyKind.SCP), "RESOURCE_CONTROL_POLICY": ("rcp", PolicyKind.RCP)}
    for r in org_res:
        if r.type != "aws_organizations_policy":
            continue
        ptype = r.known("type") or "SERVICE_CONTROL_POLICY"
        if ptype not in types:
            continue
        short, kind = types[ptype]
        pid = r.known("id")
        name = r.known("name") or r.address
        arn = r.known("arn") or (org_policy_arn(org, pid, ptype, False) if pid and org.id else r.address)
        if r.known("content") is None:
            missing(r, "its content is known only after apply", f"{short.upper()} `{r.address}`")
            continue
        pol = ctx.policy(r.values["content"], kind, arn, plan.src, r.path + ("content",), short + "s")
        if pol is None:
            continue
        op = OrgPolicy(pid or r.address, name, short, pol, ())
        by_address[r.address] = op
        plan.origins[arn] = r.address
    targets: dict[str, list] = {a: [] for a in by_address}
    for r in org_res:
        if r.type != "aws_organizations_policy_attachment":
            continue
        pol_addr = None
        pid = r.known("policy_id")
        if pid is not None:
            pol_addr = next((a for a, op in by_address.items() if op.id == pid), None)
        if pol_addr is None:
            expr = plan.expressions(r).get("policy_id") or {}
            for ref in expr.get("references", []) if isinstance(expr, dict) else []:
                t = plan.target(r, ref)
                if t is not None and t[0].address in by_address:
                    pol_addr = t[0].address
                    break
        if pol_addr is None:
            missing(r, "the policy it attaches is not defined in this Terraform input", f"the attachment `{r.address}`")
            continue
        target, why = plan.resolve(r, "target_id", {"id"})
        if target is None:
            missing(r, why, f"the target of `{r.address}`")
            continue
        targets[pol_addr].append(target)
        if target not in org.ous and target not in org.accounts and re.fullmatch(r"\d{12}", target):
            org.accounts[target] = None  # the account's place in the tree is not in the input
    for addr, op in by_address.items():
        full = OrgPolicy(op.id, op.name, op.type, op.policy, tuple(targets[addr]))
        (org.scps if op.type == "scp" else org.rcps).append(full)
    if not org.roots:
        ctx.missing("organization tree (roots and OUs) not in the Terraform input: only policies attached directly to accounts apply")
    plan.ctx.estate.organization = org
