"""One model of an AWS estate, whatever it was loaded from (a snapshot folder, a lone
authorization-details file, a Terraform plan or state).

Every policy in it is a parsed :class:`~reasoner.model.Policy` whose ``name`` says how answers cite
it and whose ``source`` locates it in the input:

- a managed policy: its ARN (the version in force is ``ManagedPolicy.version_id``);
- an inline policy: ``<owner ARN>#<policy name>`` (inline policy names cannot contain ``#``);
- a role trust policy: ``<role ARN> (trust policy)``;
- a resource-based policy: the resource's ARN;
- an SCP or RCP: the Organizations policy ARN.

What the input did not hold is said, never guessed: ``Estate.missing`` lists each kind of data that
was not collected, and ``Estate.warnings`` every located problem met while loading.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator, Optional, Union

from .diagnostics import Diagnostic
from .model import Policy, PolicyKind

SERVICE_LINKED_PATH = "/aws-service-role/"


# --------------------------------------------------------------------------- principals


@dataclass(frozen=True)
class ManagedPolicy:
    """A customer- or AWS-managed policy.  ``policy`` is the version in force (kind identity),
    None when that version could not be parsed; ``other_versions`` keeps the other versions'
    documents as they were given (version id → decoded JSON), for escalation checks such as
    SetDefaultPolicyVersion."""

    arn: str
    name: str
    path: str
    version_id: Optional[str]
    policy: Optional[Policy]
    other_versions: dict = field(default_factory=dict)
    id: Optional[str] = None

    @property
    def aws_managed(self) -> bool:
        return self.arn.split(":")[4:5] == ["aws"]


@dataclass(frozen=True)
class User:
    arn: str
    name: str
    path: str
    account: str
    inline: tuple[Policy, ...] = ()
    managed: tuple[str, ...] = ()  # ARNs of attached managed policies
    groups: tuple[str, ...] = ()  # group names
    boundary: Optional[str] = None  # ARN of the permissions boundary
    tags: dict = field(default_factory=dict)
    id: Optional[str] = None

    kind = "user"


@dataclass(frozen=True)
class Group:
    arn: str
    name: str
    path: str
    account: str
    inline: tuple[Policy, ...] = ()
    managed: tuple[str, ...] = ()
    id: Optional[str] = None

    kind = "group"


@dataclass(frozen=True)
class Role:
    arn: str
    name: str
    path: str
    account: str
    trust: Optional[Policy]
    inline: tuple[Policy, ...] = ()
    managed: tuple[str, ...] = ()
    boundary: Optional[str] = None
    tags: dict = field(default_factory=dict)
    instance_profiles: tuple[str, ...] = ()  # instance profile ARNs
    id: Optional[str] = None

    kind = "role"

    @property
    def service_linked(self) -> bool:
        return self.path.startswith(SERVICE_LINKED_PATH)


Principal = Union[User, Role]


@dataclass(frozen=True)
class Workload:
    """Existing compute that runs as a role (a Lambda function, an EC2 instance through its
    instance profile, a stack...).  ``role_arn`` is None only when the instance profile named is
    not in the snapshot (a missing-data warning says so)."""

    arn: str
    role_arn: Optional[str]
    account: str
    instance_profile: Optional[str] = None


@dataclass(frozen=True)
class Credential:
    """Per-user credential state some escalation methods depend on."""

    user_arn: str
    access_keys: int = 0
    login_profile: bool = False
    mfa_devices: int = 0


@dataclass
class Account:
    id: str
    name: Optional[str] = None
    users: dict[str, User] = field(default_factory=dict)  # by ARN
    groups: dict[str, Group] = field(default_factory=dict)  # by ARN
    roles: dict[str, Role] = field(default_factory=dict)  # by ARN
    managed_policies: dict[str, ManagedPolicy] = field(default_factory=dict)  # by ARN
    resource_policies: dict[str, Policy] = field(default_factory=dict)  # by resource ARN
    workloads: list[Workload] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)  # by user ARN
    instance_profiles: dict[str, tuple[str, ...]] = field(default_factory=dict)  # profile ARN → role ARNs
    iam_collected: bool = True  # authorization details were given for this account
    resources_collected: bool = False  # resource policies / workloads / credentials were given

    def group_named(self, name: str) -> Optional[Group]:
        for g in self.groups.values():
            if g.name == name:
                return g
        return None

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "groups": len(self.groups),
            "roles": len(self.roles),
            "policies": len(self.managed_policies),
            "inline_policies": sum(len(p.inline) for p in (*self.users.values(), *self.groups.values(), *self.roles.values())),
            "resource_policies": len(self.resource_policies),
            "workloads": len(self.workloads),
            "credentials": len(self.credentials),
        }


# --------------------------------------------------------------------------- organization


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: Optional[str]
    parent: Optional[str]  # None for a root


@dataclass(frozen=True)
class OrgPolicy:
    """An SCP or RCP with the roots, OUs and accounts it is attached to."""

    id: str
    name: str
    type: str  # "scp" | "rcp"
    policy: Policy
    targets: tuple[str, ...]


@dataclass
class Organization:
    id: Optional[str]
    master_account: Optional[str]
    roots: list[str] = field(default_factory=list)
    ous: dict[str, OrgUnit] = field(default_factory=dict)  # OUs and roots by id
    accounts: dict[str, Optional[str]] = field(default_factory=dict)  # account id → parent id
    account_names: dict[str, str] = field(default_factory=dict)
    scps: list[OrgPolicy] = field(default_factory=list)
    rcps: list[OrgPolicy] = field(default_factory=list)
    _attached: dict = field(default_factory=dict, repr=False)

    def path(self, account_id: str) -> Optional[list[str]]:
        """Ids from the root down to the account (root, OUs..., account); None when the account
        is not a member or its chain of parents is broken.  An account whose parent is not known
        at all (Terraform input without the OU tree) gives just [account]."""
        if account_id not in self.accounts:
            return None
        chain = [account_id]
        node = self.accounts[account_id]
        seen = set()
        while node is not None:
            if node in seen or node not in self.ous:
                return None
            seen.add(node)
            chain.append(node)
            node = self.ous[node].parent
        chain.reverse()
        return chain

    def org_path(self, account_id: str) -> Optional[str]:
        """The value of `aws:PrincipalOrgPaths` / `aws:ResourceOrgPaths` for an account:
        ``o-id/r-id/ou-id/.../`` (the account itself is not part of it)."""
        p = self.path(account_id)
        if p is None or self.id is None:
            return None
        return "/".join([self.id] + p[:-1]) + "/"

    def _levels(self, account_id: str, policies: list[OrgPolicy]) -> Optional[list[list[Policy]]]:
        if account_id == self.master_account:
            return None  # the management account is not subject to SCPs or RCPs
        path = self.path(account_id)
        if path is None or not policies:
            return []  # not a member, or this policy type is not in use
        key = id(policies)
        index = self._attached.get(key)
        if index is None:
            index = {}
            for op in policies:
                for t in op.targets:
                    index.setdefault(t, []).append(op.policy)
            self._attached[key] = index
        return [list(index.get(node, ())) for node in path]

    def scp_levels(self, account_id: str) -> Optional[list[list[Policy]]]:
        """SCPs in force for principals of an account, one list per level, root first and the
        account last.  None for the management account (exempt); [] for an account outside the
        organization or when no SCPs were collected."""
        return self._levels(account_id, self.scps)

    def rcp_levels(self, account_id: str) -> Optional[list[list[Policy]]]:
        """RCPs in force for resources of an account, as :meth:`scp_levels`."""
        return self._levels(account_id, self.rcps)


# --------------------------------------------------------------------------- estate


Via = tuple[str, ...]


def _short(p) -> str:
    return f"{p.kind}/{p.name}"


@dataclass
class Estate:
    accounts: dict[str, Account] = field(default_factory=dict)
    organization: Optional[Organization] = None
    missing: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)  # what was loaded, by kind
    skipped: dict[str, int] = field(default_factory=dict)  # what could not be, by kind
    source: str = ""
    origins: dict[str, str] = field(default_factory=dict)  # Terraform input: address of each entity and policy, by ARN or policy name
    _index: Optional[dict] = field(default=None, repr=False)

    # ------------------------------------------------------------------ lookups

    def _principals_by_arn(self) -> dict:
        if self._index is None:
            idx = {}
            for acct in self.accounts.values():
                idx.update(acct.users)
                idx.update(acct.roles)
                idx.update(acct.groups)
            self._index = idx
        return self._index

    def principal(self, arn: str) -> Optional[Union[User, Role, Group]]:
        """The user, role (or group) with this ARN, None when not in the estate."""
        return self._principals_by_arn().get(arn)

    def all_principals(self) -> Iterator[Principal]:
        """Every user and role, account by account."""
        for acct in self.accounts.values():
            yield from acct.users.values()
            yield from acct.roles.values()

    def managed_policy(self, arn: str, account_id: Optional[str] = None) -> Optional[ManagedPolicy]:
        """A managed policy by ARN, looked up first in ``account_id`` (AWS-managed policies are
        listed once per account)."""
        if account_id is not None and account_id in self.accounts:
            mp = self.accounts[account_id].managed_policies.get(arn)
            if mp is not None:
                return mp
        owner = arn.split(":")[4] if arn.count(":") >= 5 else None
        if owner in self.accounts:
            mp = self.accounts[owner].managed_policies.get(arn)
            if mp is not None:
                return mp
        for acct in self.accounts.values():
            mp = acct.managed_policies.get(arn)
            if mp is not None:
                return mp
        return None

    def identity_policies(self, principal_arn: str) -> list[tuple[Policy, Via]]:
        """The identity-based policies of a user or role (or group), each with the attachment
        path that brings it: ``("user/alice", "group/dev", "arn:aws:iam::aws:policy/X")``.  The
        last element of the path is the policy's name.  Attached managed policies that are not in
        the estate are left out (``missing`` names them) and so are versions that did not parse."""
        p = self.principal(principal_arn)
        if p is None:
            return []
        out: list[tuple[Policy, Via]] = []
        self._own(p, (_short(p),), out)
        if isinstance(p, User):
            acct = self.accounts.get(p.account)
            for gname in p.groups:
                g = acct.group_named(gname) if acct else None
                if g is not None:
                    self._own(g, (_short(p), _short(g)), out)
        return out

    def _own(self, p, via: Via, out: list):
        for pol in p.inline:
            out.append((pol, via + (pol.name,)))
        for arn in p.managed:
            mp = self.managed_policy(arn, p.account)
            if mp is not None and mp.policy is not None:
                out.append((mp.policy, via + (arn,)))

    def boundary_of(self, arn: str) -> Optional[Policy]:
        """The permissions boundary of a user or role as a policy of kind boundary; None when it
        has none or when the boundary policy is not in the estate (then ``missing`` says so; the
        principal's ``boundary`` still gives its ARN)."""
        p = self.principal(arn)
        if p is None or getattr(p, "boundary", None) is None:
            return None
        mp = self.managed_policy(p.boundary, p.account)
        if mp is None or mp.policy is None:
            return None
        return replace(mp.policy, kind=PolicyKind.BOUNDARY)

    def resource_policy(self, arn: str) -> Optional[Policy]:
        """The resource-based policy governing a resource: its own, or for an S3 object its
        bucket's."""
        for acct in self.accounts.values():
            pol = acct.resource_policies.get(arn)
            if pol is not None:
                return pol
        if arn.startswith("arn:") and arn.split(":")[2:3] == ["s3"]:
            bucket = arn.split(":", 5)[5].split("/", 1)[0]
            if bucket:
                head = arn.split(":", 5)
                bucket_arn = ":".join(head[:5]) + ":" + bucket
                if bucket_arn != arn:
                    return self.resource_policy(bucket_arn)
        return None

    def account_of(self, arn: str) -> Optional[str]:
        """The account that owns a resource: from its ARN, or (S3 buckets carry none) the account
        whose resources list it."""
        parts = arn.split(":")
        if len(parts) > 4 and parts[4].isdigit():
            return parts[4]
        for acct in self.accounts.values():
            if arn in acct.resource_policies:
                return acct.id
        return None

    def scp_levels(self, account_id: str) -> Optional[list[list[Policy]]]:
        if self.organization is None:
            return []
        return self.organization.scp_levels(account_id)

    def rcp_levels(self, account_id: str) -> Optional[list[list[Policy]]]:
        if self.organization is None:
            return []
        return self.organization.rcp_levels(account_id)

    def summary(self) -> dict:
        """Counts per account, what is missing and every warning: the shape `inspect --json`
        prints."""
        return {
            "accounts": {aid: a.counts() for aid, a in sorted(self.accounts.items())},
            "organization": self.organization is not None,
            "missing": list(self.missing),
            "warnings": [_diag_json(d) for d in self.warnings],
            "read": dict(self.read),
            "skipped": dict(self.skipped),
        }


def _diag_json(d: Diagnostic) -> dict:
    out = {"file": d.file, "line": d.line, "column": d.column, "severity": d.severity, "message": d.message}
    if d.hint:
        out["hint"] = d.hint
    return out
