"""Request evaluation: requests → facts → clingo (encodings/main.lp) → decisions with reasons.

Python runs the matching primitives (reasoner.match) and states their results as facts; the
encodings decide.  A batch is grounded and solved once, however many requests it holds.
"""
from __future__ import annotations

import marshal
import os
import re
import signal
import threading
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import clingo
from clingo import Function

from . import match
from .facts import add_fact_tuples, constant, function, literals, number, shown_texts, string
from .memo import once_per_key
from .model import Policy, Statement
from .parse import gc_paused
from .paths import encoding_file
from .request import Request

DECISIONS = {
    "allowed": "Allowed",
    "implicitly_denied": "ImplicitlyDenied",
    "explicitly_denied": "ExplicitlyDenied",
    "conditional": "ConditionallyAllowed",
}


@dataclass(frozen=True)
class StatementRef:
    """A statement that took part in a decision, cited as people read policies."""

    policy: str
    statement: str  # Sid, or #index
    index: int
    effect: str
    where: str
    open_conditions: tuple = ()  # clauses whose keys were unknown (analysis mode)

    def as_json(self) -> dict:
        d = {"policy": self.policy, "statement": self.statement, "index": self.index, "effect": self.effect, "where": self.where}
        if self.open_conditions:
            d["conditions"] = list(self.open_conditions)
        return d


@dataclass(slots=True)
class Decision:
    id: object
    decision: str
    reasons_of: Optional[object] = field(default=None, repr=False)  # builds `reasons` when asked
    blocked_by: list = field(default_factory=list)
    _conditions: list = field(default_factory=list)  # residual conditions when ConditionallyAllowed
    warnings: list = field(default_factory=list)
    error: Optional[str] = None
    _reasons: Optional[dict] = field(default=None, repr=False)
    _pending: Optional[Request] = field(default=None, repr=False)  # conditions not computed yet

    @property
    def conditions(self) -> list:
        """The residual conditions of a ConditionallyAllowed decision (all must hold).  Decisions
        made with ``exact_conditions=False`` compute them when first asked (see :func:`complete`)."""
        if self._pending is not None:
            complete([self])
        return self._conditions

    @conditions.setter
    def conditions(self, value: list) -> None:
        self._conditions = value
        self._pending = None

    @property
    def reasons(self) -> dict:
        """Per layer, the statements that allowed and denied (policy, Sid or index, file:line:col)
        and the policies checked.  Built when first asked: locating statements in their files
        costs, and most decisions made on the way to an answer are never shown."""
        if self._reasons is None:
            self._reasons = self.located_reasons()
        return self._reasons

    def located_reasons(self) -> dict:
        """:attr:`reasons`, not kept here when not built yet: for output written once (a large
        analysis' reasons, kept, would take many times its memory)."""
        if self._reasons is not None:
            return self._reasons
        return self.reasons_of() if callable(self.reasons_of) else (self.reasons_of or {})

    @property
    def allowed(self) -> bool:
        return self.decision == "Allowed"

    def as_json(self) -> dict:
        if self.decision == "Error":
            return {"id": self.id, "decision": "Error", "error": self.error}
        out = {"id": self.id, "decision": self.decision, "reasons": self.reasons, "blocked_by": self.blocked_by}
        if self.conditions:
            out["conditions"] = self.conditions
        if self.warnings:
            out["warnings"] = [str(w) for w in self.warnings]
        return out


_LAYER_SYMBOLS: dict = {}


def _layer_symbol(layer: str, level: Optional[int] = None):
    key = (layer, level)
    sym = _LAYER_SYMBOLS.get(key)
    if sym is None:
        sym = _LAYER_SYMBOLS[key] = Function(layer, [number(level)]) if level is not None else constant(layer)
    return sym


_SSO_RESERVED = re.compile(r"arn:[^:]+:iam::\d{12}:role/aws-reserved/sso\.amazonaws\.com/")
_AWS_ALIAS = re.compile(r"arn:[^:]+:kms:[^:]*:\d{12}:alias/aws/")
_AWS_MANAGED_POLICY = re.compile(r"arn:[^:]+:iam::aws:policy/")


def resource_kind(arn: str) -> Optional[str]:
    parts = match.split_arn(arn)
    if parts is None:
        return None
    svc, res = parts[2], parts[5]
    rtype = re.split(r"[/:]", res, 1)[0] if ("/" in res or ":" in res) else ("bucket" if svc == "s3" else res)
    if svc == "s3" and "/" in res:
        rtype = "object"
    return f"{svc}:{rtype}"


def derived_context(who: match.PrincipalInfo, action: str = "") -> dict[str, list[str]]:
    """Keys AWS derives from the principal itself (the request's context wins where it has them)."""
    out: dict[str, list[str]] = {}
    if action.startswith("kms:") and who.account:
        out["kms:calleraccount"] = [who.account]  # AWS KMS: "the AWS account of the caller"
    if who.principal_arn:
        out["aws:principalarn"] = [who.principal_arn]
    if who.account:
        out["aws:principalaccount"] = [who.account]
    if who.principal_type:
        out["aws:principaltype"] = [who.principal_type]
    if who.kind == "user" and who.name:
        out["aws:username"] = [who.name]
    if who.kind == "service":
        out["aws:principalisawsservice"] = ["true"]
        out["aws:principalservicename"] = [who.text]
    elif who.kind != "anonymous":
        out["aws:principalisawsservice"] = ["false"]
    return out


_R = Function("__request")  # stands for the request's handle while its facts are gathered


class _Batch:
    """Facts of one batch of requests, and the map back from handles to statements.

    A request's facts are gathered with a placeholder for its handle; requests whose facts are
    the same are decided once (the encodings are a function of the facts).  Policies are numbered
    by content (documents parsed once share their statements), so principals that hold the same
    policies ask the same question."""

    def __init__(self):
        self.static: list = []
        self.current: Optional[list] = None
        self.unique: list = []  # fact lists of the distinct requests
        self.keys: dict = {}
        self.alias: list = []  # request index -> distinct request index
        self.pols: list = []  # request index -> {handle: policy object of that request}
        self.policies: dict = {}  # (id(statements), kind) -> handle
        self.by_handle: dict[int, Policy] = {}
        self.stated: set = set()
        self.questions: dict = {}  # question key -> handle (see _question_key)
        self.qfacts: dict = {}  # (question, policy) -> the facts stated for them (q_*), until shared
        self.group_of: dict = {}  # (question, policy) -> the handle of the group of equal facts
        self.groups: dict = {}  # (policy, what its facts say) -> group handle
        self.gfacts: list = []  # group handle -> its facts (q_*, the group's symbol first)
        self.reading: tuple = ()  # handles of the groups whose facts the current request reads
        self.read: list = []  # distinct request -> handles of the groups whose facts it reads
        self.shared: dict = {}  # (question, policy, statement) -> its meeting patterns, once stated
        self.shadowing: set = set()
        self.sets: dict = {}  # SCP/RCP levels and policies -> handle of the set
        self.set_plans: dict = {}  # (question, set) -> the set's statements for that question
        self.orgs: dict = {}  # ids of a request's SCP and RCP level lists -> see _org_layers

    def add(self, name: str, *args):
        if self.current is not None:
            self.current.append((name, args))
        else:
            self.static.append((name, args))

    def add_shared(self, name: str, *args):
        """A fact of the batch, for every request."""
        self.static.append((name, args))

    def question(self, key) -> tuple:
        """The handle of a question (and its symbol), numbered when first asked."""
        h = self.questions.get(key)
        if h is None:
            h = self.questions[key] = len(self.questions)
        return h, number(h)

    def adder(self, h: int, pid: int):
        """A function adding a fact of question ``h`` about policy ``pid``, shared by every
        request that asks it.  All of them are stated while the first request that reads them
        gathers its facts, before it shares them (:meth:`shares`)."""
        if (h, pid) in self.group_of:
            raise AssertionError(f"facts of question {h} about policy {pid} stated after they were shared")
        append = self.qfacts.setdefault((h, pid), []).append
        return lambda name, *args: append((name, args))

    def shares(self, reads: dict) -> None:
        """The current request reads the facts of these (question, policy) handles, given with
        their symbols: shares/3 facts.  Questions that differ (say, in the resource) but whose
        facts about a policy say the same share one group of those facts, so requests that
        differ only there have the same facts and are decided once (:meth:`end`).  A batch split
        in halves gives each half the facts of the groups its requests read."""
        read = []
        for (h, pid), (_, P) in reads.items():
            g = self.group_of.get((h, pid))
            if g is None:
                facts = self.qfacts.pop((h, pid))
                # every fact of a question starts with the question's handle: the rest is what
                # it says (canonical symbols: identity stands for equality, as in end())
                key = (pid, tuple([(name, *map(id, args[1:])) for name, args in facts]))
                g = self.groups.get(key)
                if g is None:
                    g = self.groups[key] = len(self.gfacts)
                    G = number(g)
                    self.gfacts.append([(name, (G, *args[1:])) for name, args in facts])
                self.group_of[(h, pid)] = g
            read.append((g, pid, P))
        read.sort(key=lambda r: (r[0], r[1]))
        for g, _, P in read:
            self.add("shares", _R, number(g), P)
        self.reading = tuple(dict.fromkeys(g for g, _, _ in read))

    def begin(self) -> None:
        self.current = []
        self.reading = ()
        self.pols.append({})

    def end(self) -> int:
        facts = tuple(self.current)
        self.current = None
        # every argument is a canonical symbol object (facts.number/string/constant and the
        # layer symbols are interned), so identity stands for equality and hashing stays in Python
        key = tuple([(name, *map(id, args)) for name, args in facts])
        u = self.keys.get(key)
        if u is None:
            u = self.keys[key] = len(self.unique)
            self.unique.append(facts)
            self.read.append(self.reading)
        self.alias.append(u)
        return u

    def atoms(self, lo: int = 0, hi: Optional[int] = None):
        """The facts of the batch, as (name, argument symbols): the facts of the batch, those of
        the questions read by the distinct requests numbered ``lo`` to ``hi`` (all by default),
        and those requests' own."""
        hi = len(self.unique) if hi is None else hi
        yield from self.static
        if lo == 0 and hi == len(self.unique):
            for facts in self.gfacts:
                yield from facts
        else:
            for g in sorted({g for u in range(lo, hi) for g in self.read[u]}):
                yield from self.gfacts[g]
        for u in range(lo, hi):
            facts = self.unique[u]
            R = number(u)
            for name, args in facts:
                yield name, [R if a is _R else a for a in args]

    def policy(self, pol: Policy) -> int:
        key = (id(pol.statements), pol.kind)
        pid = self.policies.get(key)
        if pid is None:
            pid = self.policies[key] = len(self.policies) + 1
            self.by_handle[pid] = pol
        if self.current is not None:
            self.pols[-1][pid] = pol
        return pid

    def statement(self, pid: int, pol: Policy, st: Statement) -> None:
        """The static facts of a statement, stated once per batch, and only for statements some
        request considers."""
        key = (pid, st.index)
        if key in self.stated:
            return
        self.stated.add(key)
        P, S = number(pid), number(st.index)
        add = self.add_shared  # facts of the batch, not of the request that first met them
        add("stmt", P, S, constant(st.effect.lower()))
        if st.not_action:
            add("not_action", P, S)
        if st.resources is None:
            add("no_resource", P, S)
        elif st.not_resource:
            add("not_resource", P, S)
        if st.principals is None:
            if not pol.kind.takes_principal:
                add("no_principal", P, S)  # identity-side: reaches whoever holds the policy
            # a resource-side statement without Principal names nobody: it never applies
        elif st.not_principal:
            add("not_principal", P, S)
        for c, cond in enumerate(st.conditions):
            C = number(c)
            add("cond", P, S, C, string(cond.base), string(cond.key.lower()))
            if cond.quantifier == "ForAllValues":
                add("cond_for_all_values", P, S, C)
            elif cond.quantifier == "ForAnyValue":
                add("cond_for_any_value", P, S, C)
            if cond.if_exists:
                add("cond_if_exists", P, S, C)
            if cond.base == "Null" and any(v.lower() == "true" for v in cond.values):
                add("null_true", P, S, C)


_INDEX: dict[int, tuple] = {}


def forget_index() -> None:
    """Let go of the policies' action indexes (:func:`_candidates`), built again when asked: an
    analysis drops them once its requests are decided, before it builds what it keeps."""
    _INDEX.clear()


def _candidates(pol: Policy, action: str) -> list[Statement]:
    """The statements of a policy whose Action / NotAction element admits the action (the
    others cannot apply: statements.lp reads only these, as `considered`).  Each policy is indexed
    once: exact names, wildcard patterns, NotAction statements."""
    entry = _INDEX.get(id(pol))
    if entry is None or entry[0] is not pol:
        exact: dict[str, list] = {}
        wild: dict[Optional[str], list] = {}  # service prefix (None: a wildcard in it) -> patterns
        nots: list = []
        for st in pol.statements:
            if st.not_action:
                nots.append(st)
                continue
            for a in st.actions:
                a = a.lower()
                if "*" in a or "?" in a:
                    service, colon, _ = a.partition(":")
                    literal = colon and "*" not in service and "?" not in service
                    wild.setdefault(service if literal else None, []).append((a, st))
                else:
                    exact.setdefault(a, []).append(st)
        if len(_INDEX) > 100_000:
            _INDEX.clear()
        entry = _INDEX[id(pol)] = (pol, exact, wild, nots, {})
    _, exact, wild, nots, cache = entry
    got = cache.get(action)
    if got is None:
        seen = set()
        got = []
        for st in exact.get(action, ()):
            if st.index not in seen:
                seen.add(st.index)
                got.append(st)
        # a pattern whose service prefix has no wildcard matches that service's actions only
        service = action.partition(":")[0]
        for pat, st in (*wild.get(service, ()), *wild.get(None, ())):
            if st.index not in seen and match.action_matches(pat, action):
                seen.add(st.index)
                got.append(st)
        for st in nots:
            if not any(match.action_matches(p, action) for p in st.actions):
                got.append(st)
        got.sort(key=lambda st: st.index)
        cache[action] = got
    return got


_PRINCIPAL_KEYS = frozenset({
    "aws:principalarn", "aws:principalaccount", "aws:principaltype", "aws:username", "aws:userid",
    "kms:calleraccount", "aws:principalisawsservice", "aws:principalservicename",
    "aws:principalservicenamelist", "aws:principalorgid", "aws:principalorgpaths",
})


def _principal_key(key: str) -> bool:
    """Keys whose value comes from the principal: statements that read them are stated per request."""
    return key in _PRINCIPAL_KEYS or key.startswith("aws:principaltag/")


_NEUTRAL: dict[int, tuple] = {}


_ACCOUNT_ROOT = re.compile(r"arn:[^:]+:iam::\d{12}:root\Z")


def _neutral(st: Statement):
    """Whether what a statement's facts say about a request depends only on the question (action,
    resource, the context keys that do not come from the principal), not on who asks: "q" when
    it has no Principal element other than `*`, no policy variables, no condition on a
    principal's key; "qa" when, besides, its Principal element names only accounts, services or
    identity providers, so that it depends on the principal's kind and account (and the name of
    a service or provider) alone; None otherwise.  Statements of the first two sorts are stated
    once per question (and kind and account) and shared by every request that asks it."""
    got = _NEUTRAL.get(id(st))
    if got is not None and got[0] is st:
        return got[1]
    ok = "q"
    if st.principals is not None:
        if st.not_principal:
            ok = None
        elif not all(pr.type == "*" or (pr.type == "AWS" and pr.value == "*") for pr in st.principals):
            ok = "qa" if all(
                "${" not in pr.value and (
                    pr.type in ("*", "Service", "Federated")
                    or (pr.type == "AWS" and (pr.value == "*" or re.fullmatch(r"\d{12}", pr.value) or _ACCOUNT_ROOT.match(pr.value)))
                )
                for pr in st.principals
            ) else None
    if ok and st.resources is not None and any("${" in r for r in st.resources):
        ok = None
    if ok and any(_principal_key(c.key.lower()) or any("${" in v for v in c.values) for c in st.conditions):
        ok = None
    if len(_NEUTRAL) > 200_000:
        _NEUTRAL.clear()
    _NEUTRAL[id(st)] = (st, ok)
    return ok


def _question_key(req: Request, action: str, context: dict) -> tuple:
    """What a neutral statement's facts depend on."""
    return (
        action,
        req.resource,
        req.wildcard_only,
        req.unknown_context,
        frozenset((k, tuple(v)) for k, v in context.items() if not _principal_key(k)),
        frozenset(k for k in req.absent_keys if not _principal_key(k)),
        tuple(p for p in req.known_prefixes if p != "aws:principaltag/"),
        frozenset((k, frozenset(v)) for k, v in req.excluded_values.items() if not _principal_key(k)),
    )


def _describe_resource(resource: str) -> tuple:
    """What a request's resource ARN says by itself: its account (when it names one), its kind
    (a symbol, `none` when it has none) and its classes (resource_class/2 symbols)."""
    parts = match.split_arn(resource)
    account = parts[4] if parts and re.fullmatch(r"\d{12}", parts[4]) else None
    kind = resource_kind(resource)
    classes = []
    if _SSO_RESERVED.match(resource):
        classes.append(constant("sso_reserved_role"))
    if _AWS_ALIAS.match(resource):
        classes.append(constant("aws_managed_alias"))
    if _AWS_MANAGED_POLICY.match(resource):
        classes.append(constant("aws_managed_policy"))
    return (account, string(kind) if kind else constant("none"), tuple(classes))


_resource_facts = once_per_key(_describe_resource, 200_000)


def _layers(req: Request) -> tuple[list, list]:
    """The policies in force for a request, each with its layer symbol: the request's own layers
    (identity, resource, boundary, session, VPC endpoint), and the SCP and RCP levels, which come
    from the accounts and are the same set for many requests (stated once per batch,
    set_in_force/3 in eval/shared.lp, and named by each request, in_set/2)."""
    org: list[tuple[object, Policy]] = []
    for n, level in enumerate(req.scps):
        org += [(_layer_symbol("scp", n), p) for p in level]
    for n, level in enumerate(req.rcps):
        org += [(_layer_symbol("rcp", n), p) for p in level]
    return _own_layers(req), org


_IDENTITY, _RESOURCE, _BOUNDARY, _SESSION, _VPCE = (constant(n) for n in ("identity", "resource", "boundary", "session", "vpce"))


def _own_layers(req: Request) -> list:
    """The request's own layers of :func:`_layers` (not the SCP and RCP levels)."""
    layers: list[tuple[object, Policy]] = [(_IDENTITY, p) for p in req.identity]
    if req.resource_policy is not None:
        layers.append((_RESOURCE, req.resource_policy))
    layers += [(_BOUNDARY, p) for p in req.boundary]
    layers += [(_SESSION, p) for p in req.session]
    layers += [(_VPCE, p) for p in req.vpce]
    return layers


def _org_layers(batch: "_Batch", req: Request) -> tuple:
    """The SCP and RCP levels of :func:`_layers`, their policies' handles and the key of their
    set: worked out once per batch for the lists of levels a request holds (an analysis gives the
    requests of one account the same lists), each request still noting the policies it reads."""
    key = (id(req.scps), id(req.rcps))
    got = batch.orgs.get(key)
    if got is not None and got[0] is req.scps and got[1] is req.rcps:
        batch.pols[-1].update(got[5])
        return got[2:5]
    _, org = _layers(req)
    pids = tuple(batch.policy(pol) for _, pol in org)
    gkey = (len(req.scps), len(req.rcps), tuple(id(L) for L, _ in org), pids)
    # (the lists are kept with their ids, which stand for them while the batch lives)
    batch.orgs[key] = (req.scps, req.rcps, org, pids, gkey, {pid: pol for (_, pol), pid in zip(org, pids)})
    return org, pids, gkey


def _request_facts(batch: _Batch, req: Request) -> None:
    """The facts of one request (between batch.begin() and batch.end()).  Facts of neutral
    statements are stated once per question (`q_*` facts, encodings/eval/shared.lp), the rest
    per request."""
    R = _R
    add = batch.add
    who = match.principal_info(req.principal)
    arn_account, kind, classes = _resource_facts(req.resource)
    res_account = req.resource_account if req.resource_account is not None else arn_account
    action = req.action.lower()
    none = constant("none")
    # one fact for what every request has (layers.lp derives req/1, principal_kind/2, ...)
    add("request", R, constant(who.kind), string(who.account) if who.account else none,
        string(res_account) if res_account else none, string(action), kind)
    for c in classes:
        add("resource_class", R, c)
    if req.service_linked_role:
        add("service_linked_role", R)
    if req.management_principal:
        add("management_principal", R)
    if req.management_resource:
        add("management_resource", R)

    context = dict(derived_context(who, action))
    context.update(req.context)
    request_is_pattern = not req.wildcard_only and ("*" in req.resource or "?" in req.resource)
    qkey = _question_key(req, action, context)
    qh, Q = batch.question(qkey)

    layers, (org, pids, gkey) = _own_layers(req), _org_layers(batch, req)
    shadow_allow: list = []
    shadow_deny: list = []
    shared = batch.shared
    sides = (shadow_allow, shadow_deny)

    by_account = []  # the handle of the question asked by principals of this kind and account
    reads: dict = {}  # (question, policy) handles -> symbols: the shared facts R reads (shares/3)

    def statement(P, pid, pol, st):
        key = None
        sort = _neutral(st)
        if sort == "qa":
            if not by_account:
                by_account.append(batch.question((qkey, who.kind, who.account, who.text if who.kind in ("service", "federated") else None)))
            h, QA = by_account[0]
            key = (h, pid, st.index)
            reads[(h, pid)] = (QA, P)
            if key in shared:
                mine = shared[key]
            else:
                mine = shared[key] = _statement_facts(batch.adder(h, pid), QA, "q_", P, pol, st, req, who, context, request_is_pattern)
        elif sort:
            key = (qh, pid, st.index)
            reads[(qh, pid)] = (Q, P)
            if key in shared:
                mine = shared[key]
            else:
                mine = shared[key] = _statement_facts(batch.adder(qh, pid), Q, "q_", P, pol, st, req, who, context, request_is_pattern)
        else:
            mine = _statement_facts(add, R, "", P, pol, st, req, who, context, request_is_pattern)
        if mine:
            sides[st.effect != "Allow"].append((P, number(st.index), mine, key))

    for L, pol in layers:
        pid = batch.policy(pol)
        P = number(pid)
        add("in_force", R, L, P)
        for st in _candidates(pol, action):
            batch.statement(pid, pol, st)
            statement(P, pid, pol, st)
    if org or req.scps or req.rcps:
        G = batch.sets.get(gkey)
        if G is None:
            G = batch.sets[gkey] = number(len(batch.sets))
            for n in range(len(req.scps)):
                batch.add_shared("set_scp_level", G, number(n))
            for n in range(len(req.rcps)):
                batch.add_shared("set_rcp_level", G, number(n))
            for (L, _), pid in zip(org, pids):
                batch.add_shared("set_in_force", G, L, number(pid))
        add("in_set", R, G)
        plan = batch.set_plans.get((qh, gkey))
        if plan is None:
            # the statements of the set that this question considers: neutral ones are stated
            # once (their meeting patterns kept for shadowing), the others for each request
            neutral_sides: tuple = ([], [])
            dependent = []
            readers: dict = {}  # policies of the set with shared facts for this question
            seen = set()
            for (L, pol), pid in zip(org, pids):
                if pid in seen:
                    continue
                seen.add(pid)
                P = number(pid)
                for st in _candidates(pol, action):
                    batch.statement(pid, pol, st)
                    if _neutral(st) == "q":
                        readers[(qh, pid)] = (Q, P)
                        key = (qh, pid, st.index)
                        mine = shared.get(key) if key in shared else shared.setdefault(key, _statement_facts(batch.adder(qh, pid), Q, "q_", P, pol, st, req, who, context, request_is_pattern))
                        if mine:
                            neutral_sides[st.effect != "Allow"].append((P, number(st.index), mine, key))
                    else:
                        dependent.append((P, pid, pol, st))
            plan = batch.set_plans[(qh, gkey)] = (neutral_sides, dependent, readers)
        neutral_sides, dependent, readers = plan
        reads.update(readers)
        shadow_allow += neutral_sides[0]
        shadow_deny += neutral_sides[1]
        for P, pid, pol, st in dependent:
            statement(P, pid, pol, st)
    # A Deny that covers all of an Allow's resources within the asked set leaves that Allow
    # nothing to grant there (encodings/eval/statements.lp: shadowed/4).  A Deny that covers the
    # whole set asked about shadows every Allow that meets it.
    for Pd, Sd, dpats, dkey in shadow_deny:
        if any(match.arn_covers(d, req.resource) for d in dpats):
            if dkey is None:
                add("shadows_all", R, Pd, Sd)
            elif dkey not in batch.shadowing:
                batch.shadowing.add(dkey)
                batch.adder(dkey[0], dkey[1])("q_shadows_all", number(dkey[0]), Pd, Sd)
            continue
        for Pa, Sa, apats, _ in shadow_allow:
            if all(any(match.arn_covers(d, a) for d in dpats) for a in apats):
                add("shadows", R, Pd, Sd, Pa, Sa)
    batch.shares(reads)  # last: the shared facts it reads are all stated


def _statement_facts(add, X, prefix: str, P, pol: Policy, st: Statement, req: Request, who, context, request_is_pattern: bool):
    """The facts of one considered statement for a request (X: its handle, prefix "") or for every
    request of a question (X: the question's handle, prefix "q_").  Returns the statement's
    Resource patterns that meet the set of resources asked about (for shadowing), if any."""
    S = number(st.index)
    variables = pol.variables_enabled
    # an Action statement is considered because its action hit (statements.lp); a NotAction one
    # because none of its patterns did
    add(prefix + ("considered" if st.not_action else "action_hit"), X, P, S)
    mine = None
    if st.resources is not None:
        # With a request that names a set of resources (a pattern), an Allow counts when it
        # reaches some resource of the set and a Deny when it covers all of them: the question is
        # "is there a resource in the set the principal may act on?".
        covering = (st.effect == "Deny") != st.not_resource
        pats = [x for x in (match.substitute_resource(p, context, variables) for p in st.resources) if x is not None]
        r_hit = any(_resource_hit(p, req.resource, request_is_pattern, req.wildcard_only, covering) for p in pats)
        if r_hit:
            add(prefix + "resource_hit", X, P, S)
        if request_is_pattern and not st.not_resource:
            mine = [p for p in pats if match.arn_matches(p, req.resource, True)] or None
            if mine:
                add(prefix + "resource_meets", X, P, S)
        if r_hit == st.not_resource and not mine:
            return mine
    if st.principals is not None:
        hows = set()
        for pr in st.principals:
            value = match.substitute(pr.value, context, variables)
            if value is None:
                continue
            how = match.principal_match(_ptype(pr.type), value, who)
            if how:
                hows.add(how)
        for how in hows:
            add(prefix + "principal_hit", X, P, S, constant(how))
        # (a NotPrincipal Deny may reach a principal it names: statements.lp, boundaries)
        if bool(hows) == st.not_principal and not (st.not_principal and st.effect == "Deny" and req.boundary):
            return mine
    _condition_facts(add, prefix, X, P, S, st, context, req, variables)
    return mine


def _resource_hit(pattern: str, resource: str, request_is_pattern: bool, wildcard_only: bool, covering: bool) -> bool:
    """Whether a Resource pattern reaches the request's resource (or set of resources), as
    :mod:`reasoner.match` decides it; remembered, since batches ask it again and again."""
    return _hits((pattern, resource, request_is_pattern, wildcard_only, covering))


def _decide_resource_hit(pattern: str, resource: str, request_is_pattern: bool, wildcard_only: bool, covering: bool) -> bool:
    if wildcard_only:
        # the action supports only "Resource": "*": the request resource is the literal "*"
        return match.glob(pattern, "*") if pattern != "*" else True
    if request_is_pattern and covering:
        return match.arn_covers(pattern, resource)
    return match.arn_matches(pattern, resource, request_is_pattern)


_PTYPE = {"AWS": "aws", "Service": "service", "Federated": "federated", "CanonicalUser": "canonical_user", "*": "any"}


def _ptype(t: str) -> str:
    return _PTYPE[t]


def _condition_facts(add, prefix: str, R, P, S, st: Statement, context, req: Request, variables: bool) -> None:
    for c, cond in enumerate(st.conditions):
        C = number(c)
        key = cond.key.lower()
        values = context.get(key)
        if values is None and key in req.excluded_values and cond.base in _EQUALITY:
            excluded = req.excluded_values[key]
            pvals = [match.substitute(v, context, variables) for v in cond.values]
            if all(pv is not None and match.plain(pv) in excluded for pv in pvals):
                add(prefix + "req_value", R, P, S, C, number(0))  # some other value: it matches none of them
                continue
        if values is None:
            if req.unknown_context and key not in req.absent_keys and not key.startswith(req.known_prefixes):
                add(prefix + "key_unknown", R, P, S, C)
            else:
                add(prefix + "key_absent", R, P, S, C)
            continue
        if not values:
            add(prefix + "key_absent", R, P, S, C)
            continue
        pvals = [match.substitute(v, context, variables) for v in cond.values]
        for i, rv in enumerate(values):
            I = number(i)
            add(prefix + "req_value", R, P, S, C, I)
            if cond.base != "Null" and any(pv is not None and match.value_matches(cond.base, pv, rv) for pv in pvals):
                add(prefix + "value_hit", R, P, S, C, I)


_hits = once_per_key(lambda key: _decide_resource_hit(*key), 500_000)

_EQUALITY = frozenset({"StringEquals", "StringNotEquals"})


def _control(variants: bool = False) -> clingo.Control:
    ctl = clingo.Control(["--warn=none"])
    ctl.load(str(encoding_file("main.lp")))
    if variants:
        ctl.load(str(encoding_file("eval/variants.lp")))
    return ctl


def _solve(batch: "_Batch") -> list[str]:
    """Ground and solve a batch: its shown atoms, as text (they hold only numbers and constants,
    encodings/show/decision.lp)."""
    return _ground_and_show(batch.atoms())


def _ground_and_show(facts) -> list[str]:
    ctl = _control()
    with ctl.backend() as backend:
        add_fact_tuples(backend, facts)
    ctl.ground([("base", [])])
    with ctl.solve(yield_=True) as handle:
        for model in handle:
            return shown_texts(model)
    return []


CHUNK = 8000
# A batch of LARGE requests or more is decided in chunks of LARGE_CHUNK: each forked process then
# grounds fewer requests at once.  At 20,000 roles (358,627 permissions, 238,199 edges into
# administrators) that holds about 90 MiB less while they are decided; a smaller batch keeps the
# larger chunks, which cost less time (the facts the requests share are grounded once a chunk).
LARGE = 100_000
LARGE_CHUNK = 6000


def chunk_size(total: int) -> int:
    """Requests decided in one grounding, in a batch of ``total``."""
    return min(CHUNK, LARGE_CHUNK) if total >= LARGE else CHUNK


def evaluate(requests: Sequence[Request], progress=None, exact_conditions: bool = True,
             after: Optional["Evaluating"] = None) -> list[Decision]:
    """Decide a batch of requests: one grounding, one solve per chunk of requests (and, for
    requests allowed only under conditions, one more that computes their residual conditions).
    ``progress(done, total)`` is called as chunks finish.  With ``exact_conditions=False`` the
    residual conditions that need combinations of open statements decided are left for when
    they are first read (:func:`complete` computes many in one batch): the decisions are the
    same.  A large chunk is decided in forked processes, two side by side on two cores or more
    (:func:`_fork_slices`); the next chunk's processes are started before this process reads
    a chunk's decisions, so that they work meanwhile.  ``after``: requests begun before
    (:class:`Evaluating`), whose decisions come first, read once this batch's first processes are
    started."""
    out: list[Decision] = []
    total = len(requests)
    infos: dict = {}  # (what the decisions made elsewhere share, over all the chunks: _imported)
    size = chunk_size(total)
    chunks = [requests[start : start + size] for start in range(0, total, size)]

    def begin(part):
        if len(part) >= PARALLEL_MIN and _jobs() > 1:
            return _fork_slices(part, exact_conditions, _jobs(), chunk=size)
        return None

    forked = None  # the processes of the chunk to read next, begun
    done = 0
    try:
        for i, part in enumerate(chunks):
            # many small acyclic objects, freed by reference counting: the collector's passes would
            # find nothing, and resumed (long_lived) it does not scan them all at once either
            with gc_paused(long_lived=True):
                if forked is None:
                    if after is not None:
                        after.wait()  # (two processes at a time: those begun before are done)
                    forked = begin(part)
                if after is not None:
                    out += after.result()  # (read while this chunk's processes work)
                    after = None
                results = None
                if forked is not None:
                    (slices, started), forked = forked, None
                    results = _collect(started)  # (stopped there on an interrupt)
                if i + 1 < len(chunks):
                    forked = begin(chunks[i + 1])  # they work while this chunk's decisions are read
                got = _gathered(slices, started, infos=infos, results=results) if results is not None else None
                out += got if got is not None else _evaluate_chunk(part, exact_conditions)
            done += len(part)
            if progress is not None:
                progress(done, total)
    except BaseException:
        if forked is not None:
            _stop(forked[1])
        if after is not None:
            after.cancel()
        raise
    if after is not None:
        out = after.result() + out
    return out


def _evaluate_chunk(part: Sequence[Request], exact_conditions: bool) -> list[Decision]:
    batch = _Batch()
    for req in part:
        batch.begin()
        _request_facts(batch, req)
        batch.end()
    return _decisions(part, batch, _solve(batch), exact_conditions)


PARALLEL_MIN = 600  # requests from which a chunk is decided in forked processes
_FORKED = False  # set in a forked process deciding part of a chunk: it never forks again


def _jobs() -> int:
    """How many processes may decide one chunk: :func:`processes`, except that a process running
    other threads (a Jupyter kernel, a progress monitor) never forks: a forked child would
    inherit their locks."""
    if _FORKED or not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    return processes()


def processes() -> int:
    """How many processes may work side by side: ``IAM_REASONER_JOBS`` (1: everything in this
    process), else 2 where the machine has two cores or more."""
    env = os.environ.get("IAM_REASONER_JOBS", "").strip()
    if env.isdigit() and int(env) > 0:
        return min(int(env), 2)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _fork_slices(part: Sequence[Request], exact_conditions: bool, jobs: int, only_conditions: bool = False,
                 chunk: Optional[int] = None) -> Optional[tuple[list, list]]:
    """``jobs`` forked processes started on slices of ``part``: (slices, started), None when one
    could not be started (those started are stopped).  ``only_conditions``: each sends back only
    the residual conditions of each request (:func:`_decided_plain`).  Requests are independent
    of each other (every derived atom carries its request's handle), so each slice is decided as
    in one batch; :func:`_gathered` reads the decisions.

    Why not here: clingo keeps every symbol it ever made for the life of the process (its symbol
    table only grows), some 150 a request between facts and ground atoms; decided elsewhere,
    they go when the process that made them does, and a long analysis stays the size of its
    answers.

    Each process sends back, per request, its decision, blocked layers, residual conditions and
    the statements that decided it (policies named by their place among the request's policies
    in force, see :func:`_layers`); reasons are built here, from this process's policies, when
    first read.  ``chunk``: the requests each grounds at once (:func:`chunk_size` of ``part``)."""
    chunk = chunk_size(len(part)) if chunk is None else chunk
    step = -(-len(part) // jobs)
    slices = [part[i : i + step] for i in range(0, len(part), step)]
    started: list = []
    for sl in slices:
        got = _start(lambda sl=sl: _decided_plain(sl, exact_conditions, only_conditions, chunk))
        if got is None:
            _stop(started)
            return None
        started.append(got)
    return slices, started


def _gathered(slices: list, started: list, only_conditions: bool = False, infos: Optional[dict] = None,
              results: Optional[list] = None) -> Optional[list]:
    """The decisions of :func:`_fork_slices`' processes, in the order of their requests (with
    ``only_conditions``, as they were started: the residual conditions of each); None when one
    failed.  ``infos``: what decisions made elsewhere share (:func:`_imported`), when the caller
    gathers more than once.  ``results``: what the processes sent, when the caller has read it
    already (:func:`_collect`)."""
    results = _collect(started) if results is None else results
    if results is None:
        return None
    if only_conditions:
        return [c for got in results for c in got]
    out: list[Decision] = []
    infos = {} if infos is None else infos
    for sl, got in zip(slices, results):
        out += [_imported(req, g, infos, sl) for req, g in zip(sl, got)]
    return out


def _start(fn) -> Optional[tuple]:
    """Fork a process that runs ``fn()``, writes its result (``marshal``) to a pipe and is gone
    without any cleanup: ``(pid, reader)``, None when none could be started."""
    global _FORKED
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:
        code = 1
        try:
            _FORKED = True
            os.close(r)
            data = marshal.dumps(fn())
            with os.fdopen(w, "wb") as f:
                f.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    return pid, os.fdopen(r, "rb")


def _collect(started: list) -> Optional[list]:
    """The results of the processes started (:func:`_start`), each read whole, then each waited
    for; None when one failed.  On an exception here (an interrupt) they are stopped first."""
    try:
        datas = []
        for _, reader in started:
            with reader:
                datas.append(reader.read())
        statuses = [os.waitpid(pid, 0)[1] for pid, _ in started]
    except BaseException:
        _stop(started)
        raise
    if any(statuses):
        return None
    return [marshal.loads(d) for d in datas]


def _stop(started: list) -> None:
    for pid, reader in started:
        reader.close()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


def _export_all(part: Sequence[Request], decisions: list) -> list:
    place = {id(req): i for i, req in enumerate(part)}
    return [_export(d, place) for d in decisions]


def _export(d: Decision, place: dict) -> tuple:
    """A decision as plain data (see :func:`_fork_slices`); ``place``: the requests of the
    slice by id -> their place in it (a pending residual condition names the request it is
    computed for by its place)."""
    why = d.reasons_of
    places = why.places()
    info = why.info
    allow = {(layer, places[pid], sidx): mode for (layer, pid, sidx), mode in info["allow"].items()}
    deny = {(layer, places[pid], sidx): mode for (layer, pid, sidx), mode in info["deny"].items()}
    opened = {(places[pid], sidx): cs for (pid, sidx), cs in info["open"].items()}
    conditions = None if d._pending is not None else d._conditions
    pending = place[id(d._pending)] if d._pending is not None else None
    return (d.decision, d.blocked_by, conditions, allow, deny, opened, pending)


def _warnings(req: Request):
    """A decision's copy of its request's warnings (an empty tuple shared when there are none)."""
    return list(req.warnings) if req.warnings else ()


def _imported(req: Request, got: tuple, infos: Optional[dict] = None, part: Sequence[Request] = ()) -> Decision:
    """The decision of ``req`` sent by another process (:func:`_export`), one of the requests
    ``part``.  ``infos``: the statements that decided, kept once per distinct content (read-only,
    so decisions share them)."""
    decision, blocked, conditions, allow, deny, opened, pending = got
    info = {"allow": allow, "deny": deny, "open": opened}
    conditions = conditions or []
    if infos is not None:
        # (and so are the lists of blocked layers and of residual conditions: an analysis keeps
        # hundreds of thousands of decisions, whose lists have a few contents between them)
        info = infos.setdefault(marshal.dumps((allow, deny, opened)), info)
        blocked = infos.setdefault(("blocked", *blocked), blocked)
        conditions = infos.setdefault(("conditions", *conditions), conditions)
    return Decision(req.id, decision, _Why(None, info, req), blocked, conditions, _warnings(req),
                    _pending=part[pending] if pending is not None else None)


MAX_OPEN = 8  # open Allow statements whose combinations are enumerated for a residual condition
GROUP_VARIANTS = 1000  # requests from which those with many combinations are decided apart (_decide_variants)
PLAN_RESIDUALS = True  # test the per-layer form first (False: enumerate every combination)
UNIFORM_VARIANTS = True  # open Allows with the same clauses: all or none hold (False: as the others)


def complete(decisions: Iterable[Decision]) -> None:
    """Compute, in one batch, the residual conditions left pending by
    ``evaluate(..., exact_conditions=False)``."""
    pending, reqs = _to_complete(decisions)
    if pending:
        _set_conditions(pending, reqs, Evaluating(reqs, only_conditions=True).result())


def _to_complete(decisions: Iterable[Decision]) -> tuple[list, list]:
    """The decisions whose conditions are pending, each once, and the requests they are computed
    for, each once (decisions with the same facts share one: _decisions)."""
    pending = list({id(d): d for d in decisions if d._pending is not None}.values())
    return pending, list({id(d._pending): d._pending for d in pending}.values())


def _set_conditions(pending: list, reqs: list, conditions: list) -> None:
    """Each pending decision's residual conditions, those computed for its request: ``conditions``
    are the requests' ``reqs``, in their order."""
    got = {id(req): c for req, c in zip(reqs, conditions)}
    for d in pending:
        if d._pending is not None:  # (not read, and so completed, meanwhile)
            d.conditions = got[id(d._pending)]


class Evaluating:
    """:func:`evaluate` begun in forked processes, each deciding a slice of the requests chunk by
    chunk, when there are enough requests and two cores or more: this process goes on meanwhile.
    :meth:`result` waits for the decisions (or decides here when no process could be forked, or
    one failed); :meth:`cancel` stops the processes."""

    def __init__(self, requests: Sequence[Request], exact_conditions: bool = True, only_conditions: bool = False,
                 jobs: Optional[int] = None):
        """``only_conditions`` (with ``exact_conditions``): :meth:`result` gives each request's
        residual conditions, not its decision (what :class:`Completing` waits for: the whole
        decisions of a large batch, made here at once, would take several times its memory).
        ``jobs``: at most that many processes side by side (the default: :func:`_jobs`); with
        one, the batch is still decided in a forked process while this one goes on."""
        self.requests = list(requests)
        self.exact_conditions = exact_conditions or only_conditions
        self.only_conditions = only_conditions
        self.forked = None
        self.sent: Optional[list] = None  # what the processes sent, once waited for (wait)
        can = _jobs()
        if len(self.requests) >= PARALLEL_MIN and can > 1 and not _FORKED:
            self.forked = _fork_slices(self.requests, self.exact_conditions, can if jobs is None else min(jobs, can), only_conditions)

    def wait(self) -> None:
        """Wait for the processes to be done (what they sent is read, not yet made decisions)."""
        if self.forked is not None and self.sent is None:
            self.sent = _collect(self.forked[1])
            if self.sent is None:  # (one failed: decided here by result())
                self.forked = None

    def result(self) -> list:
        if self.forked is not None:
            forked, self.forked = self.forked, None
            sent, self.sent = self.sent, None
            with gc_paused(long_lived=True):
                got = _gathered(*forked, only_conditions=self.only_conditions, results=sent)
            if got is not None:
                return got
        got = evaluate(self.requests, exact_conditions=self.exact_conditions)
        return [d._conditions for d in got] if self.only_conditions else got

    def cancel(self) -> None:
        if self.forked is not None:
            if self.sent is None:
                _stop(self.forked[1])
            self.forked = self.sent = None


def _die_with_parent() -> None:
    """Have this (forked) process killed when the one that forked it is gone (Linux'
    ``PR_SET_PDEATHSIG``), so that a stage or a slice of requests stopped with its caller is not
    worked on for nothing."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# requests one forked process decides (more: see _decided_plain); one chunk, so that each slice's
# process grounds one chunk and goes (an analysis forks one beside the rules' solver)
SLICE = CHUNK


def _decided_plain(part: Sequence[Request], exact_conditions: bool, only_conditions: bool, chunk: int) -> list:
    """In a forked process: the decisions of ``part`` as plain data (:func:`_export`), a
    :data:`SLICE` of it at a time in processes forked from this one, one after another, when it
    is larger.  A process grows with clingo's symbols of every chunk it grounds (they are never
    freed): each slice's go with its process, and this one keeps only the plain decisions.
    ``only_conditions`` (with ``exact_conditions``): only each decision's residual conditions,
    for a caller that has the decisions and waits for those (:class:`Completing`).  ``chunk``:
    the requests grounded at once; no slice is larger."""
    step = min(SLICE, chunk)

    def decided(sl):
        got = _in_chunks(sl, exact_conditions, chunk)
        return [d._conditions for d in got] if only_conditions else _export_all(sl, got)

    def decided_apart(sl):
        _die_with_parent()
        return decided(sl)

    if len(part) <= step:
        return decided(part)
    out: list = []
    for at in range(0, len(part), step):
        sl = part[at : at + step]
        started = _start(lambda sl=sl: decided_apart(sl))
        got = _collect([started]) if started is not None else None
        got = got[0] if got is not None else decided(sl)
        # (a pending residual condition names its request by its place: in `part`, not in `sl`)
        out += got if only_conditions else [g if g[6] is None else (*g[:6], g[6] + at) for g in got]
    return out


def _in_chunks(part: Sequence[Request], exact_conditions: bool, chunk: int) -> list[Decision]:
    """The decisions of requests, ``chunk`` at a time: in a forked process deciding a slice."""
    out: list[Decision] = []
    with gc_paused(long_lived=True):
        for start in range(0, len(part), chunk):
            out += _evaluate_chunk(part[start : start + chunk], exact_conditions)
    return out


class Completing:
    """:func:`complete` begun in forked processes: this process goes on meanwhile; :meth:`finish`
    waits for them and sets the conditions (or computes them here when no process could be
    forked, or one failed); :meth:`cancel` stops them."""

    def __init__(self, decisions: Iterable[Decision]):
        self.pending, reqs = _to_complete(decisions)
        self.evaluating = Evaluating(reqs, only_conditions=True) if self.pending else None

    def finish(self) -> None:
        if self.evaluating is not None:
            evaluating, self.evaluating = self.evaluating, None
            _set_conditions(self.pending, evaluating.requests, evaluating.result())

    def cancel(self) -> None:
        if self.evaluating is not None:
            self.evaluating.cancel()
            self.evaluating = None


def _residuals(requests: Sequence[Request], batch: "_Batch", per: list, first: dict, defer: bool = False) -> dict:
    """The exact residual condition of each ConditionallyAllowed request, over its open
    statements.  An open Deny must not hold.  When the allowing side is sure (only open Denies
    made the request conditional), that is all; when one open Allow is left, it must hold; with
    more, the encodings decide the request again with every open Deny false and each combination
    of open Allows holding or not, and the minimal combinations that allow it are the condition.
    Clauses inside one statement are joined by `and`."""
    jobs = []
    out = {}
    for u, info in enumerate(per):
        if info["decision"] != "ConditionallyAllowed":
            continue
        allows = sorted({(pid, sidx) for ((_, _), pid, sidx), mode in info["allow"].items() if mode == "maybe"})
        denies = sorted({(pid, sidx) for ((_, _), pid, sidx), mode in info["deny"].items() if mode == "maybe"})
        negated = sorted(f"not ({_statement_clauses(batch, info, pid, sidx)})" for pid, sidx in denies)
        if info["allow_side"] or not allows:
            out[u] = negated
        elif len(allows) == 1:
            out[u] = sorted(set(_statement_clause_list(batch, info, *allows[0]))) + negated
        elif len(allows) <= MAX_OPEN:
            jobs.append((u, requests[first[u]], allows, denies, negated))
    if defer:
        for u, *_ in jobs:
            out[u] = None  # computed when read
        return out
    if not jobs:
        return out
    # The decision is monotone in the open Allows (forcing one to hold only adds allowing
    # statements), so it is the conjunction over layers of "one of the layer's open Allows holds"
    # exactly when (a) every minimal set that conjunction admits allows the request and (b) for
    # each layer, every open Allow holding except that layer's does not.  Those few variants are
    # decided first; a request whose layers do not combine that way has every combination decided.
    # Open Allows that all have the same open clauses (none: open only through an open Deny that
    # may shadow them; or, say, each asks for MFA) read as one condition: the request is decided
    # again with all of them holding and, when they have clauses, with none; by monotony that
    # settles it.  Those variants are decided with the first variants of the others.
    uniform = []
    if UNIFORM_VARIANTS:
        rest = []
        for job in jobs:
            u, req, allows, denies, negated = job
            sets = {frozenset(_statement_clause_list(batch, per[u], *ps)) for ps in allows}
            if len(sets) == 1:
                (clauses,) = sets
                masks = [(1 << len(allows)) - 1] + ([0] if clauses else [])
                uniform.append((u, req, allows, denies, masks, clauses, negated))
            else:
                rest.append(job)
        jobs = rest
    plans = {}
    for u, req, allows, denies, negated in jobs:
        info = per[u]
        same = match.principal_info(req.principal).account == req.resource_account
        plans[u] = _layer_plan(info, allows, same)
    first_masks = []
    for u, req, allows, denies, _ in jobs:
        minimal, maximal_false = plans[u]
        first_masks.append((u, req, allows, denies, minimal + maximal_false))
    allowed = _decide_variants(batch, (first_masks if PLAN_RESIDUALS else []) + [job[:5] for job in uniform])
    for u, _, _, _, (everything, *none), clauses, negated in uniform:
        if none and (u, 0) in allowed:
            out[u] = negated  # allowed with none of them: the allowing side asks for nothing
        elif (u, everything) in allowed:
            out[u] = ([" and ".join(sorted(clauses))] if clauses else []) + negated
    full = []
    for u, req, allows, denies, _ in jobs:
        minimal, maximal_false = plans[u]
        if PLAN_RESIDUALS and all((u, m) in allowed for m in minimal) and not any((u, m) in allowed for m in maximal_false):
            plans[u] = minimal
        else:
            plans[u] = None
            full.append((u, req, allows, denies, list(range(1 << len(allows)))))
    allowed |= _decide_variants(batch, full)
    for u, req, allows, denies, negated in jobs:
        info = per[u]
        if plans[u] is not None:
            minimal = plans[u]
        else:
            true_masks = [m for m in range(1 << len(allows)) if (u, m) in allowed]
            if not true_masks:
                continue
            minimal = [m for m in true_masks if not any(o != m and (o & m) == o for o in true_masks)]
        sets = [frozenset(c for j in range(len(allows)) if m >> j & 1 for c in _statement_clause_list(batch, info, *allows[j])) for m in minimal]
        conditions = []
        if sets and all(sets):  # (a combination without clauses: the allowing side asks for nothing)
            # the same clauses twice, or a combination whose clauses include another's, add nothing
            least = {c for c in sets if not any(o < c for o in sets)}
            terms = sorted(" and ".join(sorted(c)) for c in least)
            conditions.append(terms[0] if len(terms) == 1 else " or ".join(f"({t})" for t in terms))
        out[u] = conditions + negated
    return out


def _layer_plan(info: dict, allows: list, same_account: bool) -> tuple[list, list]:
    """The masks (over ``allows``) that test whether a request's residual is the conjunction over
    layers of their open Allows: the minimal sets of that conjunction, and per layer the largest
    set without that layer's.  Layers with a sure Allow need none of theirs (identity and
    resource-based policy are one layer within an account: either may grant)."""
    group_of = {}
    sure = set()
    for ((layer, level), pid, sidx), mode in info["allow"].items():
        if layer == "rcp":
            continue  # RCPs only restrict: an Allow in them grants nothing (checked below anyway)
        group = "grant" if same_account and layer in ("identity", "resource") else (layer, level)
        if mode == "sure":
            sure.add(group)
        else:
            group_of.setdefault((pid, sidx), set()).add(group)
    groups: dict = {}
    for j, ps in enumerate(allows):
        for g in group_of.get(ps, ()):
            if g not in sure:
                groups.setdefault(g, []).append(j)
    everything = (1 << len(allows)) - 1
    minimal = [0]
    for members in groups.values():
        minimal = [m | (1 << j) for m in minimal for j in members]
    minimal = sorted(set(minimal))
    minimal = [m for m in minimal if not any(o != m and (o & m) == o for o in minimal)]
    maximal_false = []
    for members in groups.values():
        mask = everything
        for j in members:
            mask &= ~(1 << j)
        if mask:  # with every open Allow false the request is not allowed (its allow side is open)
            maximal_false.append(mask)
    return minimal, maximal_false


def _decide_variants(batch: "_Batch", work: list) -> set:
    """Decide each request again with its open Denies false and, per mask, the open Allows whose
    bit is set holding and the others not: the (request, mask) pairs allowed.

    A request with one mask is decided as a request of its own, its open statements' forced/4
    atoms stated as facts.  A request with more is grounded once, with its open Allows' forced/4
    atoms as externals (encodings/eval/variants.lp), and its masks are decided by solving under
    assumptions: the n-th solve takes the n-th mask of every request that has one (the other
    requests' externals are left free and their decisions unread; requests are independent).  A
    large batch is split by how many masks its requests have, so a few with many masks do not
    make every request's program solved that many times (a small one is grounded once: the facts
    its requests share would be grounded again for each part, which costs more than a few solves
    of a small program)."""
    out: set = set()
    groups: dict = {}
    for job in work:
        # 1 mask, 2 to 4, 5 to 16, 17 to 64, ...: within a group, solves times requests stays
        # within four times the group's masks
        groups.setdefault(((len(job[4]) - 1).bit_length() + 1) // 2 if len(work) >= GROUP_VARIANTS else 0, []).append(job)
    for _, jobs in sorted(groups.items()):
        out |= _decide_masks(batch, jobs)
    return out


_TRUE, _FALSE, _ALLOWED = constant("true"), constant("false"), constant("allowed")


def _decide_masks(batch: "_Batch", work: list) -> set:
    vb = _Batch()
    jobs = []
    for u, req, allows, denies, masks in work:
        vb.begin()
        _request_facts(vb, req)
        opened = []
        for j, (pid, sidx) in enumerate(allows):
            vp, S = number(vb.policy(batch.by_handle[pid])), number(sidx)
            if len(masks) == 1:
                vb.add("forced", _R, vp, S, _TRUE if masks[0] >> j & 1 else _FALSE)
            else:
                vb.add("open_allow", _R, vp, S)
                opened.append((vp, S))
        for pid, sidx in denies:
            vb.add("forced", _R, number(vb.policy(batch.by_handle[pid])), number(sidx), _FALSE)
        # (requests with the same facts, open Allows included, are decided once: each of their
        # masks is then one more solve)
        jobs.append((u, masks, vb.end(), opened))
    ctl = _control(variants=True)
    with ctl.backend() as backend:
        add_fact_tuples(backend, vb.atoms())
    ctl.ground([("base", [])])
    # the program literals of the externals and of decision(R, allowed), by request handle
    wanted = []
    for _, _, vu, opened in jobs:
        R = number(vu)
        wanted.append(function("decision", (R, _ALLOWED)))
        for P, S in opened:
            wanted += [function("forced", (R, P, S, _TRUE)), function("forced", (R, P, S, _FALSE))]
    got = iter(literals(ctl, wanted))
    allowed: dict = {}
    forced: dict = {}
    for _, _, vu, opened in jobs:
        allowed[vu] = next(got)
        for P, S in opened:
            forced[(vu, P, S)] = (next(got), next(got))
    # the n-th solve: the n-th mask of each request (a request met twice takes the next free solve)
    solves: list[dict] = []
    for u, masks, vu, opened in jobs:
        k = 0
        for mask in masks:
            while k < len(solves) and vu in solves[k]:
                k += 1
            if k == len(solves):
                solves.append({})
            solves[k][vu] = (u, mask, opened)
            k += 1
    out = set()
    for one in solves:
        assumptions = []
        for vu, (u, mask, opened) in one.items():
            for j, (P, S) in enumerate(opened):
                true, false = forced[(vu, P, S)]
                if mask >> j & 1:
                    assumptions += (true, -false)
                else:
                    assumptions += (-true, false)
        with ctl.solve(assumptions=assumptions, yield_=True) as handle:
            model = next(iter(handle), None)
            if model is None:  # (the rules have no constraint: every assumption has a model)
                raise RuntimeError("no model for a residual variant")
            for vu, (u, mask, _) in one.items():
                lit = allowed.get(vu)
                if lit is not None and model.is_true(lit):
                    out.add((u, mask))
    return out


def _statement_clause_list(batch: "_Batch", info: dict, pid: int, sidx: int) -> list[str]:
    pol = batch.by_handle[pid]
    st = next(s for s in pol.statements if s.index == sidx)
    return [_clause_text(st.conditions[c]) for c in info["open"].get((pid, sidx), [])]


def _statement_clauses(batch: "_Batch", info: dict, pid: int, sidx: int) -> str:
    return " and ".join(_statement_clause_list(batch, info, pid, sidx))


def _cite(pol: Policy, st: Statement, open_conditions=(), req: Optional[Request] = None) -> StatementRef:
    return StatementRef(pol.name, st.label, st.index, st.effect, _where(pol, st, req), tuple(open_conditions))


def _where(pol: Policy, st: Statement, req: Optional[Request]) -> str:
    """file:line:col of a statement: in the request's own text when the policy came with the
    request, else where the policy was loaded from."""
    if req is not None and req.source is not None and req.source.text is not None and id(pol) in req.locations:
        src = req.source.child(req.locations[id(pol)])
        line, col = src.position(st.path)
        return f"{src.file}:{line}:{col}" if line else src.file
    return pol.where(st.path)


_LAYER_KEYS: dict = {}


def _layer_key(sym) -> tuple[str, Optional[int]]:
    got = _LAYER_KEYS.get(sym)
    if got is None:
        if sym.type == clingo.SymbolType.Function and sym.arguments:
            got = (sym.name, sym.arguments[0].number)
        else:
            got = (sym.name, None)
        _LAYER_KEYS[sym] = got
    return got


_LAYER_TEXTS: dict = {}


def _layer_text(text: str) -> tuple[str, Optional[int]]:
    """(layer, level) of a layer as shown: `identity`, `scp(2)`."""
    got = _LAYER_TEXTS.get(text)
    if got is None:
        name, _, level = text.partition("(")
        got = _LAYER_TEXTS[text] = (name, int(level[:-1]) if level else None)
    return got


def _decisions(requests: Sequence[Request], batch: _Batch, shown, exact_conditions: bool = True) -> list[Decision]:
    per: list[dict] = [{"decision": None, "blocked": set(), "allow": {}, "deny": {}, "open": {}, "allow_side": False} for _ in batch.unique]
    # The shown atoms hold only numbers and constants (encodings/show/decision.lp): one call for
    # each atom's text is cheaper than reading its arguments one by one through the API.
    for text in shown:
        name, _, rest = text.partition("(")
        args = rest[:-1].split(",")
        if name == "decision":
            per[int(args[0])]["decision"] = DECISIONS[args[1]]
        elif name == "blocked_by":
            per[int(args[0])]["blocked"].add(args[1])
        elif name in ("allow_stmt", "deny_stmt"):
            mode = args[0]
            entry = per[int(args[1])]["allow" if name == "allow_stmt" else "deny"]
            key = (_layer_text(args[2]), int(args[3]), int(args[4]))
            if mode == "sure" or key not in entry:
                entry[key] = mode
        elif name == "cond_unknown":
            per[int(args[0])]["open"].setdefault((int(args[1]), int(args[2])), []).append(int(args[3]))
        elif name == "allow_side_sure":
            per[int(args[0])]["allow_side"] = True
    first: dict = {}
    for i, u in enumerate(batch.alias):
        first.setdefault(u, i)
    exact = _residuals(requests, batch, per, first, defer=not exact_conditions)
    out = []
    for rid, req in enumerate(requests):
        u = batch.alias[rid]
        info = per[u]
        pols = batch.pols[rid]
        reasons = _Why(batch.by_handle, info, req, pols)
        same = match.principal_info(req.principal).account == req.resource_account
        conditions = []
        pending = None
        if info["decision"] == "ConditionallyAllowed":
            conditions = exact[u] if u in exact else _residual(batch, info, same)
            if conditions is None:
                # computed when read, for the first request of those with the same facts: the
                # same residual condition, and complete() asks it once for all of them
                conditions, pending = [], requests[first[u]]
        out.append(Decision(req.id, info["decision"] or "Error", reasons, sorted(info["blocked"]), conditions, _warnings(req), _pending=pending))
    return out


class _Why:
    """What a decision's reasons are built from, when first asked: the decided statements of its
    request (``info``), the request's policies by handle (``pols``) and every policy in force
    (``checked``, read from the request again: :func:`_layers`).  Of the batch that decided it
    only the policies by handle are kept (``by_handle``; None for a decision made in another
    process, whose handles are places among the request's policies in force, ``pols`` None):
    the batch's facts go when the batch does, however long the decision is kept, and a kept
    decision holds little more than its request (analyses keep hundreds of thousands)."""

    __slots__ = ("by_handle", "info", "req", "_pols")

    def __init__(self, by_handle, info, req, pols=None):
        self.by_handle, self.info, self.req, self._pols = by_handle, info, req, pols

    def _in_force(self, req: Request) -> tuple[list, dict]:
        """The request's policies in force, [(layer symbol, policy)], and its policies by handle."""
        layers, org = _layers(req)
        checked = layers + org
        pols = self._pols if self._pols is not None else {j: pol for j, (_, pol) in enumerate(checked)}
        return checked, pols

    def places(self) -> dict:
        """Policy handle -> the place, among the request's policies in force, of the policy its
        reasons cite (policies with the same statements share a handle; the request's last one
        is cited)."""
        return _places(*self._in_force(self.req))

    def __call__(self) -> dict:
        # statements are listed layer by layer, each layer's policies in the request's order
        req = self.req  # (read once: _Remade makes it again)
        checked, pols = self._in_force(req)
        place = {j: j for j in pols} if self.by_handle is None else _places(checked, pols)
        reasons = _reasons(self.by_handle, self.info, req, pols, place)
        _add_checked(reasons, checked)
        return reasons


class _Remade(_Why):
    """:class:`_Why` for a decision made in another process (its policies cited by their places
    among the request's in force), whose request is not kept but made again when its reasons are
    asked: ``remake(key)`` gives the request decided as ``key``, the same policies in force in
    the same order.  An analysis keeps hundreds of thousands of decisions for the proofs it may
    show, and their requests took as much memory as the rest of them."""

    __slots__ = ("remake", "key")

    def __init__(self, info, remake, key):
        self.by_handle, self.info, self._pols = None, info, None
        self.remake, self.key = remake, key

    @property
    def req(self) -> Request:
        return self.remake(self.key)


def _places(checked: list, pols: dict) -> dict:
    first: dict = {}
    for j, (_, pol) in enumerate(checked):
        first.setdefault(id(pol), j)
    return {pid: first[id(pol)] for pid, pol in pols.items()}


def _add_checked(reasons: dict, checked: list) -> None:
    """Every policy that was in force, layer by layer, applied or not: a proof shows the denies
    and SCP levels that were checked and did not fire."""
    for L, pol in checked:
        layer, level = _layer_key(L)
        name = pol.name
        slot = _slot(reasons, layer, level)
        slot.setdefault("checked", [])
        if name not in slot["checked"]:
            slot["checked"].append(name)


def _reasons(by_handle: Optional[dict], info: dict, req: Optional[Request] = None, pols: Optional[dict] = None, place: Optional[dict] = None) -> dict:
    reasons: dict = {}
    place = place or {}
    for effect in ("allow", "deny"):
        for ((layer, level), pid, sidx), mode in sorted(info[effect].items(), key=lambda kv: (kv[0][0][0], kv[0][0][1] or 0, place.get(kv[0][1], kv[0][1]), kv[0][2])):
            pol = (pols or {}).get(pid) or by_handle[pid]
            st = next(s for s in pol.statements if s.index == sidx)
            open_conds = ()
            if mode == "maybe":
                open_conds = tuple(_clause_text(st.conditions[c]) for c in info["open"].get((pid, sidx), []))
            _slot(reasons, layer, level)[effect].append(_cite(pol, st, open_conds, req).as_json())
    return reasons


def _slot(reasons: dict, layer: str, level: Optional[int]) -> dict:
    """The entry of a layer (or of one level of SCPs / RCPs) in a reasons dict."""
    if level is None:
        return reasons.setdefault(layer, {"allow": [], "deny": []})
    levels = reasons.setdefault(layer, [])
    while len(levels) <= level:
        levels.append({"level": len(levels), "allow": [], "deny": []})
    return levels[level]


def _clause_text(cond) -> str:
    vals = list(cond.values)
    shown = vals[0] if len(vals) == 1 else vals
    import json

    return f"{cond.operator} {cond.key} {json.dumps(shown)}"


def _residual(batch: _Batch, info: dict, same_account: bool = True) -> list[str]:
    """The conditions under which a ConditionallyAllowed request is allowed, as a list that must
    all hold: for each layer whose Allow is only possible, one of its open Allow statements'
    clause sets (within one account, identity and resource-based policy count as one group:
    either may grant; across accounts both must), and
    for each open Deny, the negation of its clauses.  Clauses are read independently of each
    other (two clauses on one key are not related)."""
    groups: dict = {}
    sure_layers = set()
    for ((layer, level), pid, sidx), mode in info["allow"].items():
        group = "grant" if same_account and layer in ("identity", "resource") else (layer, level)
        if mode == "sure":
            sure_layers.add(group)
            continue
        pol = batch.by_handle[pid]
        st = next(s for s in pol.statements if s.index == sidx)
        clauses = [_clause_text(st.conditions[c]) for c in info["open"].get((pid, sidx), [])]
        if clauses:
            groups.setdefault(group, set()).add(" and ".join(clauses))
    out = []
    for group, alternatives in groups.items():
        if group in sure_layers:
            continue
        alts = sorted(alternatives)
        out.append(alts[0] if len(alts) == 1 else " or ".join(f"({a})" for a in alts))
    for ((layer, level), pid, sidx), mode in info["deny"].items():
        if mode != "maybe":
            continue
        pol = batch.by_handle[pid]
        st = next(s for s in pol.statements if s.index == sidx)
        clauses = [_clause_text(st.conditions[c]) for c in info["open"].get((pid, sidx), [])]
        if clauses:
            out.append("not (" + " and ".join(clauses) + ")")
    return sorted(set(out))


def simulate(request) -> Decision:
    """Decide one request (a Request, or its JSON object)."""
    from .request import request_from_json

    if not isinstance(request, Request):
        request = request_from_json(request)
    return evaluate([request])[0]


def simulate_batch(requests: Iterable) -> list[Decision]:
    from .request import request_from_json

    with gc_paused(long_lived=True):
        reqs = [r if isinstance(r, Request) else request_from_json(r) for r in requests]
    return evaluate(reqs)
