"""Privilege escalation: who can obtain more power than they hold, by which method, with proofs.

The methods are rules in ``encodings/escalate/`` (one file per service, a documented predicate
interface: see ``core.lp``); users add their own with ``rules=[path.lp]``.  This module states the
estate as facts and asks the request evaluation for exactly the permissions the rules need:

1. admins: principals allowed action `*` on `*` (the full evaluation, SCPs and boundaries too);
2. the services each role trusts, and assume-role edges: with the shipped rules and no principal
   asked about, on demand (``_Edges``: into administrators first, then those the rules and the
   ways to arbitrary permissions need); otherwise every edge;
3. ``may(X, A)``: X holds an identity Allow mentioning a required action, not left out by its
   SCPs or boundary (a filter);
4. the rules name the requests that matter (``need/3``); those some policy in force could allow
   (``_MayAllow``, a sound filter) are evaluated in one batch, residual conditions left for later;
5. the rules decide with those answers (``can/3``, ``can_if/3``), and ``ways.lp`` walks to
   arbitrary power (on demand: once the edges on the ways are known, alone); the residual
   conditions are computed for the findings' permissions only.
"""
from __future__ import annotations

import bisect
import json
import re
import textwrap
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Optional, Sequence

import clingo

from . import match, staged
from .analysis import Analyzer, Hop, _hop, _question, action_details
from .diagnostics import Diagnostic, InputError
from .estate import Role, User
from .locate import pack_long_texts
from .request import Request
from . import evaluate as _evaluate
from .evaluate import Completing, Evaluating, _Remade, _Why, _candidates, complete, derived_context, evaluate
from .paths import encoding_file

MAX_STEPS = 6
# requests into administrators from which they are decided before the rules' first stage, not
# beside it: the stage's grounding and the processes deciding them would each hold about as much
# memory as the analysis (together over 2 GB at 20,000 roles), and two processes decide them
EDGES_FIRST_FROM = 50_000


@dataclass(slots=True)
class Finding:
    principal: str
    method: str  # method id, e.g. lambda_create_invoke
    title: str
    target: str  # the resource acted on
    gains: str  # "admin", a principal ARN, or "raise:<ARN>"
    conditions: list
    hops: list  # [Hop]: the evaluated permissions the step uses
    path: list  # the rest of the way to arbitrary permissions: [(principal, method, target)]
    steps_to_admin: Optional[int] = None

    def as_json(self, reasons_of=None) -> dict:
        """The finding as JSON; ``reasons_of(hop)``: the reasons of each hop of its proof, when
        the caller locates them (:meth:`Escalations.json_text`)."""
        return {
            "principal": self.principal,
            "method": self.method,
            "title": self.title,
            "target": self.target,
            "gains": self.gains,
            "conditions": self.conditions,
            "steps_to_admin": self.steps_to_admin,
            "path": [{"principal": p, "method": m, "target": t} for p, m, t in self.path],
            "proof": {"hops": [h.as_json(reasons_of) for h in self.hops]},
        }


@dataclass
class Escalations:
    findings: list
    admins: list
    missing: list = field(default_factory=list)
    admin_conditions: dict = field(default_factory=dict)  # admin → conditions of its `*` on `*`

    def as_json(self) -> dict:
        return {"findings": [f.as_json() for f in self.findings], **self._summary()}

    def _summary(self) -> dict:
        return {
            "admins": self.admins,
            "admin_conditions": {k: v for k, v in self.admin_conditions.items() if v},
            "missing": self.missing,
        }

    def json_text(self, indent: int = 2):
        """The text of ``json.dumps(self.as_json(), indent=indent)``, in pieces, a finding at a
        time: the reasons of each proof are located for it and let go once written (kept, a large
        estate's would take many times the analysis' memory); those a principal's findings share
        (its findings come one after another) are located once."""
        pad = " " * indent
        rest = self._summary()
        if not self.findings:
            yield json.dumps({"findings": [], **rest}, indent=indent)
            return
        yield "{\n" + pad + '"findings": [\n'
        last = len(self.findings) - 1
        for i, (f, reasons_of) in enumerate(one_at_a_time(self.findings)):
            text = json.dumps(f.as_json(reasons_of), indent=indent)
            yield textwrap.indent(text, pad * 2) + (",\n" if i < last else "\n")
        yield pad + "]"
        for key, value in rest.items():
            yield ",\n" + pad + json.dumps(key) + ": " + textwrap.indent(json.dumps(value, indent=indent), pad)[len(pad):]
        yield "\n}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .pictures import mimebundle

        return mimebundle(self)


def one_at_a_time(findings: Sequence[Finding]):
    """Each finding with a function giving the reasons of a hop of its proof, located for it and
    let go once the next principal's findings come (those a principal's findings share, which
    come one after another, are located once): for output written a finding at a time."""
    located: dict = {}
    who = None

    def reasons_of(hop) -> dict:
        got = located.get(id(hop))
        if got is None:
            got = located[id(hop)] = hop.located_reasons()
        return got

    for f in findings:
        if f.principal != who:
            located.clear()
            who = f.principal
        yield f, reasons_of


def rule_files(extra: Sequence[str | Path] = ()) -> list[Path]:
    files = [encoding_file("escalate.lp")]
    for f in extra:
        p = Path(f)
        if not p.is_file():
            raise InputError([Diagnostic(str(f), 0, 0, f"rules file `{f}` not found", "give an existing .lp file")], unreadable=True)
        files.append(p)
    return files


class _Program:
    """Facts stated once, as plain values (``facts.from_plain``: they become symbols where the rules
    are grounded), grounded with the rules in stages as answers come in (``staged``)."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.facts: list = []  # plain terms, not handed to the solver yet

    def fact(self, name: str, *args) -> None:
        self.facts.append((name, tuple(a if isinstance(a, (str, int)) else a.plain() for a in args), True))

    def new_facts(self) -> list:
        """The facts stated since the last call; not kept here once handed over (the solver
        keeps what it was sent)."""
        got, self.facts = self.facts, []
        return got


_STRING_TEXT = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a string as clingo writes it: its text between the quotes
_NEED_ATOM = re.compile(r'need(?:_as_trusted)?\(' + _STRING_TEXT + "," + _STRING_TEXT + "," + _STRING_TEXT + r'\)\Z')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _need_arguments(text: str) -> Optional[tuple]:
    """The three string arguments of a need atom, read from the text clingo writes for it (a
    string's `\\`, `"` and newline escaped); None when it is not three plain strings."""
    if "\\" not in text and text.endswith('")'):
        # no escape: no string holds a quote, so the quotes and commas between them split it
        head, sep, rest = text.partition('("')
        if sep and (head == "need" or head == "need_as_trusted"):
            parts = rest[:-2].split('","')
            if len(parts) == 3:
                return tuple(parts)
    m = _NEED_ATOM.match(text)
    if m is None:
        return None
    out = tuple(_unescape(arg) for arg in m.groups())
    return None if None in out else out


def _unescape(v: str) -> Optional[str]:
    """A string's text from between the quotes clingo writes around it; None when it has an
    escape clingo does not write."""
    if "\\" not in v:
        return v
    parts = re.split(r"(\\.)", v)
    if any(len(p) == 2 and p.startswith("\\") and p not in _ESCAPES for p in parts):
        return None
    return "".join(_ESCAPES.get(p, p) for p in parts)


def _str(sym) -> str:
    """A string symbol's (or term's) text, any other as clingo writes it."""
    if isinstance(sym, _T):
        return sym.string if sym.string is not None else str(sym)
    try:
        return sym.string  # nearly every argument read is a string: ask for it first
    except RuntimeError:
        return str(sym)


_FUNCTION, _STRING, _NUMBER = clingo.SymbolType.Function, clingo.SymbolType.String, clingo.SymbolType.Number
_INF, _SUP = clingo.SymbolType.Infimum, clingo.SymbolType.Supremum
_BOUNDS = {_INF: ("#inf", "Infimum"), _SUP: ("#sup", "Supremum")}  # text, repr


class _T:
    """A term of a shown atom, read back from the text clingo wrote for it in the process that
    solved (:func:`_read`), with the parts of a clingo symbol this module reads (``type``,
    ``name``, ``arguments``, ``string``, ``number``): no symbol is made in this process.  It
    prints as clingo prints the symbol (``str``, ``repr``), so it sorts the same way, and
    becomes that symbol again where facts are stated: as plain data (:meth:`plain`) made into
    symbols by ``facts.from_plain`` in the process that grounds."""

    __slots__ = ("type", "name", "arguments", "string", "number", "positive")

    def __init__(self, type_, name: str = "", arguments: tuple = (), string: Optional[str] = None, number: Optional[int] = None,
                 positive: bool = True):
        self.type, self.name, self.arguments, self.string, self.number = type_, name, arguments, string, number
        self.positive = positive

    def __str__(self) -> str:
        if self.type in _BOUNDS:
            return _BOUNDS[self.type][0]
        if not self.positive:
            return "-" + str(_T(_FUNCTION, self.name, self.arguments))
        if self.type is _STRING:
            return '"' + self.string.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        if self.type is _NUMBER:
            return str(self.number)
        if not self.arguments and self.name:
            return self.name
        inner = ",".join(str(a) for a in self.arguments)
        return f"{self.name}({inner}{',' if not self.name and len(self.arguments) == 1 else ''})"

    def __repr__(self) -> str:
        if self.type in _BOUNDS:
            return _BOUNDS[self.type][1]
        if self.type is _STRING:
            return f"String({self.string!r})"
        if self.type is _NUMBER:
            return f"Number({self.number!r})"
        return f"Function({self.name!r}, [{', '.join(repr(a) for a in self.arguments)}], {self.positive!r})"

    def plain(self):
        """The term as plain data (``facts.from_plain``)."""
        if self.type is _STRING:
            return self.string
        if self.type is _NUMBER:
            return self.number
        if self.type in _BOUNDS:
            return (_BOUNDS[self.type][0],)
        return (self.name, tuple(a.plain() for a in self.arguments), self.positive)


def _answer(name: str, *strings: str) -> tuple:
    """The fact ``name("s1", "s2", ...)`` as plain data (``facts.from_plain``)."""
    return (name, strings, True)


_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+|-?[_a-z][A-Za-z0-9_\']*|[(),]|#inf|#sup')


# a shown atom as most are: a name and arguments that are strings without escapes, numbers,
# constants, or a function of one such string (`raise("...")`)
_FLAT_ARG = r'"[^"\\]*"|-?\d+|[a-z_][A-Za-z0-9_\']*(?:\("[^"\\]*"\))?'
_FLAT = re.compile(rf'([a-z_][A-Za-z0-9_\']*)\(((?:{_FLAT_ARG})(?:,(?:{_FLAT_ARG}))*)\)\Z')
_FLAT_ARGS = re.compile(r'"([^"\\]*)"|(-?\d+)|([a-z_][A-Za-z0-9_\']*)(?:\("([^"\\]*)"\))?')


def _read(text: str) -> _T:
    """The term clingo wrote as ``text`` (``shown_texts``: strings with `\\`, `"` and newline
    escaped, tuples with a trailing comma when they have one element)."""
    m = _FLAT.match(text)
    if m is not None:
        args = []
        for a in _FLAT_ARGS.finditer(m.group(2)):
            c = a.group(0)[0]
            if c == '"':
                args.append(_T(_STRING, string=a.group(1)))
            elif c == "-" or c.isdigit():
                args.append(_T(_NUMBER, number=int(a.group(2))))
            elif a.group(4) is not None:
                args.append(_T(_FUNCTION, a.group(3), (_T(_STRING, string=a.group(4)),)))
            else:
                args.append(_T(_FUNCTION, a.group(3)))
        return _T(_FUNCTION, m.group(1), tuple(args))
    return _read_any(text)


def _read_any(text: str) -> _T:
    """:func:`_read` for any term."""
    toks = _TOKENS.findall(text)
    if sum(map(len, toks)) != len(text):  # something between the tokens: no term clingo wrote
        raise ValueError(f"not a term as clingo writes one: {text!r}")
    n = len(toks)
    pos = 0

    def fail():
        raise ValueError(f"not a term as clingo writes one: {text!r}")

    def args() -> tuple:
        nonlocal pos
        out = []
        if pos < n and toks[pos] == ")":
            pos += 1
            return ()
        while True:
            out.append(term())
            if pos >= n:
                fail()
            c = toks[pos]
            pos += 1
            if c == ")":
                return tuple(out)
            if c != ",":
                fail()
            if pos < n and toks[pos] == ")":  # (a,)
                pos += 1
                return tuple(out)

    def term() -> _T:
        nonlocal pos
        if pos >= n:
            fail()
        tok = toks[pos]
        pos += 1
        c = tok[0]
        if c == '"':
            v = _unescape(tok[1:-1])
            if v is None:
                fail()
            return _T(_STRING, string=v)
        if c == "(":
            return _T(_FUNCTION, "", args())
        if c == "#":
            return _T(_INF if tok == "#inf" else _SUP)
        if c.isdigit() or (c == "-" and tok[1:2].isdigit()):
            return _T(_NUMBER, number=int(tok))
        if c == "_" or c == "-" or c.isalpha():
            positive = c != "-"
            name = tok if positive else tok[1:]
            if pos < n and toks[pos] == "(":
                pos += 1
                return _T(_FUNCTION, name, args(), positive=positive)
            return _T(_FUNCTION, name, positive=positive)
        fail()

    t = term()
    if pos != n:
        fail()
    return t


@_question
def escalations(
    analyzer: Analyzer,
    principal: Optional[str] = None,
    rules: Sequence[str | Path] = (),
    max_steps: int = MAX_STEPS,
    progress=None,
) -> Escalations:
    """Every principal (or only ``principal``) that can reach arbitrary permissions it does not
    hold, and the admins."""
    est = analyzer.estate
    prog = _Program(rule_files(rules))
    tick = progress or (lambda label: None)
    # (the estate's files, as long as the rest of a large estate's analysis, are kept compressed
    # while it runs: only the places its proofs cite are read from them)
    pack_long_texts()

    # -- the estate as facts
    for arn, p in analyzer.principals.items():
        prog.fact("principal", arn)
        prog.fact("in_account", arn, p.account)
        who = match.PrincipalInfo(arn)
        if who.account:
            prog.fact("acts_from", arn, who.account)
        if isinstance(p, Role):
            _resource_account(prog, analyzer, arn)
        prog.fact("user" if isinstance(p, User) else "role", arn)
        for pol_arn in p.managed:
            prog.fact("attached", pol_arn, arn)
        if isinstance(p, Role):
            for ip in p.instance_profiles:
                prog.fact("instance_profile", arn, ip)
    for acct in est.accounts.values():
        for g in acct.groups.values():
            prog.fact("group", g.arn)
            prog.fact("in_account", g.arn, acct.id)
            for pol_arn in g.managed:
                prog.fact("attached", pol_arn, g.arn)
        for u in acct.users.values():
            for gname in u.groups:
                g = acct.group_named(gname)
                if g is not None:
                    prog.fact("member", u.arn, g.arn)
        for mp in acct.managed_policies.values():
            if not mp.aws_managed:
                prog.fact("customer_managed", mp.arn)
                prog.fact("in_account", mp.arn, acct.id)
            if mp.other_versions:
                prog.fact("other_version", mp.arn)
        for w in acct.workloads:
            if w.role_arn:
                # the kind is a constant (`lambda`, `ec2`, ...), as the rules name it
                prog.fact("workload", w.arn, _T(_FUNCTION, _workload_kind(w.arn)), w.role_arn)
                _resource_account(prog, analyzer, w.arn)
        for c in acct.credentials.values():
            if c.login_profile:
                prog.fact("login_profile", c.user_arn)
            prog.fact("access_keys", c.user_arn, c.access_keys)
    prog.fact("max_steps", max_steps)

    # -- 1. admins
    tick("admins")
    admin_reqs = [analyzer.request(x, "*", "*", None, None, True) for x in sorted(analyzer.candidates("*"))]
    admins = set()
    admin_conditions: dict = {}
    for req, d in zip(admin_reqs, evaluate(admin_reqs) if admin_reqs else []):
        # allowed under conditions (a region SCP, MFA) still counts: the conditions are listed
        if d.decision in ("Allowed", "ConditionallyAllowed"):
            admins.add(req.principal)
            admin_conditions[req.principal] = list(d.conditions)
            prog.fact("admin", req.principal)
    for g in _admin_groups(analyzer, [g for acct in est.accounts.values() for g in acct.groups.values()]):
        prog.fact("group_is_admin", g.arn)

    # -- 2. assume-role edges and trusted services.  With the shipped rules and no principal
    #    asked about, edges are evaluated on demand (_Edges): the services each role trusts, the
    #    edges into administrators now, the rest as the rules and the ways to arbitrary
    #    permissions need them.  Rules files of the user's may read any edge: all are evaluated.
    tick("role trust")
    roles = [a for a, p in analyzer.principals.items() if isinstance(p, Role)]
    allows = _MayAllow(analyzer)
    edges = _Edges(analyzer, prog, allows)
    on_demand = not rules and principal is None
    admin_roles = sorted(x for x in admins if isinstance(analyzer.principals.get(x), Role))
    # with the edges evaluated on demand, the ways to arbitrary permissions (ways.lp) are decided
    # once the edges on them are known, in a stage of their own: not also with the escalations
    ways_apart = on_demand
    split = staged.stages(prog.files, apart=frozenset({encoding_file("escalate/ways.lp")}) if ways_apart else frozenset())
    ways_apart = ways_apart and split is not None
    # the edges into administrators are evaluated while the rules' first stage runs, when that
    # stage reads no edge (staged.Stages: `base`, or the edges asked for)
    admin_edges_later = None
    edges_first: list = []  # (how many, when they were decided before the stage)
    if on_demand:
        edges.services(roles)
        if split is not None and split.first in ("base", "edges"):
            # begun now, in forked processes, while the facts of the rules' first stage are made;
            # taken in (added to the facts) once that stage runs, which reads no edge.  With
            # their exact residual conditions: each is a finding's proof (decided again later,
            # they would be grounded twice)
            # (from EDGES_FIRST_FROM requests on, decided now: not beside the stage)
            def first(n: int) -> None:
                edges_first.append(n)
                tick(f"role trust: {n} edges into administrators, first")

            admin_edges_later = edges.into_later(admin_roles, exact_conditions=True, deciding_now=first)
        else:
            edges.into(admin_roles)
    else:
        edges.into(roles)

    decided: dict = {}  # permission -> (Decision, its Request, or None when made again: _Remade)
    remake = partial(_permission_request, analyzer)
    ways_read = None  # (the ways, read: _ways_decoded)
    answers: list = []  # can/can_if facts of the requests evaluated, not yet handed over (plain)
    completing = None
    admin_edges = False
    solver = None
    early = None  # the first requests of a stage's, begun while the rest are read (Evaluating)
    try:
        # -- 3. may(X, A) for the actions the rules require (only for the principal asked about
        #    and the roles it can reach, when one is given)
        actors = None
        if principal is not None:
            actors = _reachable(principal, edges.decisions)
        _may_facts(prog, analyzer, allows, actors)

        # -- 4. the requests the rules need, and 5. the rules decide; until the rules need
        #    nothing more (requests, edges, or edges on the ways to arbitrary permissions)
        tick("candidate methods")
        solver = staged.Worker(staged.Solver(prog.files, split))
        stage = split.first if split is not None else "before"
        grown = split.grown if split is not None else "before"  # the stage that reads new edges
        kept: dict = {}  # stage -> name -> texts of the atoms shown (escalation: tuples)
        interned: dict = {}  # the strings of the escalation atoms read, each kept once
        odd: list = []  # ... those whose tuple does not tell their terms (_exact)
        while True:
            solver.send(stage, prog.new_facts(), answers)
            answers = []  # (handed over: the solver's process has them)
            if admin_edges_later is not None:
                tick("options (the rules' first stage)" if edges_first else "role trust: edges into administrators")
                admin_edges_later[0]()
                admin_edges_later = None
                admin_edges = True
            if stage == "after":
                # while the rules run: the exact residual conditions of the permissions decided
                # so far (those the findings use are among them), in forked processes
                if completing is not None:
                    completing.finish()
                    completing = None
                complete(v[0] for v in decided.values())
            out = solver.receive()
            if admin_edges:
                # the residual conditions of the other edges known by now, in forked processes
                # (when there are many), while this process reads what the rules need
                admin_edges = False
                completing = Completing(d for d, _ in edges.decisions.values())
            reqs = []
            into, out_of = set(), set()
            shown: dict = {}  # name -> texts of the atoms read as terms later (_READ)
            for text in out:
                # the name and, for the many need atoms, the arguments are read from the text;
                # escalation atoms (the most numerous) as a tuple of shared strings at once, the
                # other atoms read back as terms when used (_read)
                name = text.partition("(")[0]
                if name == "escalation":
                    shown.setdefault(name, []).append(_escalation(text, interned, odd))
                elif name in _READ:
                    shown.setdefault(name, []).append(text)
                if name == "need" or name == "need_as_trusted":
                    # (each string shared with the equal ones read before: the requests and
                    # the decisions kept name the same principals and actions again and again)
                    x, a, res = (interned.setdefault(v, v) for v in _need_arguments(text) or tuple(_str(v) for v in _read(text).arguments))
                    key = (x, a, res) if name == "need" else ("as_trusted", x, a, res)
                    if name == "need":
                        if not allows.could(x, a, res):
                            continue  # cannot be allowed: as good as denied, and not worth a request
                        known = edges.known(x, a, res)
                        if known is not None:
                            # the edge's request, asked already: the same facts, the same decision
                            if known:
                                # (the edge's request for this action is made only for the
                                # permissions a finding cites: the many others stay as the edge's)
                                d, req = known
                                decided[key] = (d, req, a)
                                answers.append(_answer("can" if d.decision == "Allowed" else "can_if", x, a, res))
                            continue
                        reqs.append(_permission_request(analyzer, key))
                        if early is None and len(reqs) == _evaluate.CHUNK:
                            # a chunk's worth: decided in forked processes while the rest are read
                            early = Evaluating(reqs, exact_conditions=False)
                    else:
                        reqs.append(_permission_request(analyzer, key))
                elif name == "need_edges_into":
                    into.add(_str(_read(text).arguments[0]))
                elif name == "need_edges_from":
                    out_of.add(_str(_read(text).arguments[0]))
            out = None  # (the texts read: not kept while the requests are decided)
            if stage != "edges":
                kept[stage] = shown
            grew = edges.into(sorted(into)) + edges.out(sorted(out_of))
            # the filter's memos go once a stage's needs are read (what they answered is asked
            # again for few of the next stage's): their memory is reused by the decisions kept
            allows.forget()
            staged._trim()  # (and what was freed with them, back to the system)
            if reqs:
                tick(f"evaluating {len(reqs)} permission(s)")
                if early is not None:
                    # (the rest's first processes begin before the first chunk's decisions are read)
                    first, early = early, None
                    decisions = evaluate(reqs[len(first.requests):], exact_conditions=False, after=first)
                else:
                    decisions = evaluate(reqs, exact_conditions=False)
                for req, d in zip(reqs, decisions):
                    if d.decision in _GRANTED:  # a finding's proof cites granted permissions only
                        if type(d.reasons_of) is _Why and d.reasons_of.by_handle is None:
                            # decided in another process: its request is made again when its
                            # reasons are asked, not kept (_Remade)
                            d.reasons_of = _Remade(d.reasons_of.info, remake, req.id)
                            decided[req.id] = (d, None)
                        else:
                            decided[req.id] = (d, req)
                    suffix = "_as_trusted" if req.id[0] == "as_trusted" else ""
                    x, a, res = req.id[-3:]
                    if d.decision == "Allowed":
                        answers.append(_answer("can" + suffix, x, a, res))
                    elif d.decision == "ConditionallyAllowed":
                        answers.append(_answer("can_if" + suffix, x, a, res))
            # the next stage: the edges asked for until none is added; the options again when
            # edges were added (they read them); the rules that read the answers after the
            # options, and again while they ask for more
            if stage == "edges":
                stage = "edges" if grew else "before"
                continue
            if stage == "base":
                stage = "edged"  # the edges known by now (into administrators, those asked for)
                continue
            if grew:
                stage = grown
                tick("escalation rules")
                continue
            if stage != "after" or reqs:
                stage = "after"
                tick("escalation rules")
                continue
            break
        shown = {}
        for part in ("base", "edged", "before"):  # the atoms the stages before `after` derive
            for name, texts in kept.get(part, {}).items():
                shown[name] = shown.get(name, []) + texts
        shown.update(kept.get("after", {}))  # what `after` derives is its own
        kept = None  # (texts go once read: a large estate's are hundreds of MB)
        escalation = shown.pop("escalation", [])
        interned = None
        if on_demand and (edges.ways(escalation, admins, max_steps) or ways_apart):
            # the escalations stay (their options read edges into administrators and those asked
            # for by need_edges_*, known already): the ways are decided over them, alone (and
            # what `after` said of them, if it said anything, is not read)
            tick("ways to arbitrary permissions")
            facts = prog.new_facts()
            assumed = list(edges.decisions) if not odd else None  # (every edge stated: assumes/2)
            # (the edges are all known, as facts: their memos and those of the filter go before
            # the ways are solved)
            edges = allows = None
            _evaluate.forget_index()
            staged._trim()
            if assumed is not None:
                # the ways over numbers for the strings (_ways_coded), in a new process: not in
                # the solver's, which keeps every symbol its stages made (clingo frees none)
                solver.close()
                facts = None
                coded, names, methods = _ways_coded(analyzer.principals, admins, assumed, max_steps, escalation)
                assumed = None
                ways = staged.Worker(staged.Solver([encoding_file("escalate/ways.lp")], None))
                try:
                    ways.send("ways", coded, [])
                    coded = None
                    again = ways.receive()
                finally:
                    ways.close()
                ways = None
                ways_read = _ways_decoded(again, names, methods)
                again = names = methods = None
            else:
                again = solver.run("ways", facts, [])
                facts = None
                solver.close()  # (the last stage: its process goes before its atoms are read here)
                for name in ("raised", "admin_dist", "next_step"):
                    shown[name] = [t for t in again if t.partition("(")[0] == name]
                again = None
        shown = {name: [_read(t) for t in shown.pop(name)] for name in list(shown) if name in _READ}
        shown["escalation"] = escalation
    finally:
        if solver is not None:
            solver.close()
        if completing is not None:
            completing.cancel()
        if admin_edges_later is not None:
            admin_edges_later[1]()
        if early is not None:
            early.cancel()
    edges = allows = None  # (their memos are not read from here on)
    titles = _titles(prog.files)
    requires = _requires(prog.files)
    usable_raise, dist, nxt = ways_read if ways_read is not None else _ways_read(shown)
    ways_read = None
    also: dict = {}
    for s in shown.get("also_requires", []):
        m_, x_, res_, g_, a_, on_ = s.arguments
        also.setdefault((_str(x_), _str(m_), _str(res_), _gain(g_)), []).append((_str(a_), _str(on_)))
    esc = shown.get("escalation", [])
    shown = None

    reported = []
    for x, m, res, gains in esc:
        if principal is not None and x != principal:
            continue
        if x in admins:
            continue
        if gains.startswith("raise:") and (x, m, res, gains[6:]) not in usable_raise:
            continue  # power given to a principal the actor cannot act as: no escalation
        used = []
        wanted = [(a, where) for a, where in requires.get(m, [])] + [(a, ("at", on)) for a, on in also.get((x, m, res, gains), [])]
        for a, where in wanted:
            if isinstance(where, tuple):
                key = (x, a, where[1])
            elif where == "as_trusted":
                key = ("as_trusted", x, a, gains)
            else:
                key = (x, a, {"on": res, "any": "*", "gain": gains, "self": x}[where])
            got = decided.get(key)
            if got is not None:
                if len(got) == 3:  # an edge's decision, cited for the action asked for
                    d, req, act = got
                    got = decided[key] = (d, replace(req, id=key, action=act))
                used.append(got)
        reported.append((x, m, res, gains, used))
    esc = decided = None  # (what the findings cite is in `reported`)
    # the exact residual conditions, for the permissions the findings use only, in one batch
    complete({id(d): d for *_, used in reported for d, _ in used}.values())
    findings = []
    first_step: dict = {}
    # findings share what they have alike (read, never changed): the hop of a permission many
    # cite, equal lists of conditions, and a principal's way (the same for all its findings)
    hop_of: dict = {}
    same: dict = {}
    way_of: dict = {}
    for x, m, res, gains, used in reported:
        hops = []
        for got in used:
            hop = hop_of.get(id(got))
            if hop is None:
                d, req = got
                if req is not None:
                    hop = _hop("action", req, d)
                else:  # (the request is made again from its permission: Decision.id)
                    hop = Hop("action", *d.id[-3:], d.decision, d.conditions, d, d.blocked_by)
                hop_of[id(got)] = hop
            hops.append(hop)
        conditions = sorted({c for d, _ in used for c in d.conditions})
        conditions = same.setdefault(tuple(conditions), conditions)
        way = way_of.get(x)
        if way is None:
            way = way_of[x] = _way(x, nxt, first_step)
        findings.append(Finding(x, m, titles.get(m, m), res, gains, conditions, hops, way, dist.get(x)))
    # (a total order: the same report whatever order the rules gave their atoms in)
    findings.sort(key=lambda f: (f.steps_to_admin is None, f.principal, f.method, f.target, f.gains))
    missing = [m for m in est.missing]
    reported = hop_of = same = way_of = None
    staged._trim()  # (what the analysis let go of, back to the system: the report is what stays)
    return Escalations(findings, sorted(admins), missing, admin_conditions)


def _may_facts(prog: "_Program", analyzer: Analyzer, allows: "_MayAllow", actors: Optional[set]) -> None:
    """may(X, A) for the actions the rules require and the principals whose requests for them
    could be allowed (``actors`` only, when given), and where the rules read them, the resources
    in X's reach: in_scope(X, A, Res), or scope_all(X, A) when it is not limited."""
    scoped = _scoped_actions(prog.files)
    for a in sorted(_required_actions(prog.files)):
        for x in sorted(analyzer.candidates(a)):
            if (actors is None or x in actors) and not allows.never(x, a):
                prog.fact("may", x, a)
                if a in scoped:
                    reach = allows.scope(x, a)
                    if reach is None:
                        prog.fact("scope_all", x, a)
                    for arn in reach or ():
                        prog.fact("in_scope", x, a, arn)


class _MayAllow:
    """A sound filter before evaluating a request: could the policies in force allow it at all?
    Judged on Action (or NotAction) and Resource (or NotResource); conditions are taken to hold
    and a policy variable to match any value, except that an identity policy's or boundary's Allow
    whose condition the principal alone refutes is left out (:func:`_refuted`: a clause on its
    tags, ARN or account that the request the analysis builds for it does not meet).

    The evaluation (encodings/eval/decision.lp, layers.lp) grants a request only when every SCP
    level that applies to the principal has an Allow statement for it, and, unless a
    resource-based policy is in force (it may grant on its own), when the principal's identity
    policies have one and so does its permissions boundary if it has one; the account root user
    and actions that need no permission aside.  A request that fails this cannot be allowed: it is
    left out, which is what its denial would say.  The policies in force are those of the request
    the analysis builds for the principal (``Analyzer.request``)."""

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer
        self._probe: dict = {}  # principal -> _Layers, or None when the filter does not apply
        self._answers: dict = {}  # (signature, account, action, resource) -> bool
        self._resource_side: dict = {}  # action -> some resource-based policy has an Allow for it
        self._naming: dict = {}  # role -> its trust policy names more than accounts
        self._scopes: dict = {}  # (ids of the policies' statements, action) -> Resource patterns
        self._resource_policy: dict = {}  # (action is sts:AssumeRole*, resource) -> in force?
        self._resource_account: dict = {}
        self._patterns: dict = {}  # (id(statements), action) -> (statements, resource patterns)
        self._hits: dict = {}  # (key, action, resource) -> _allows
        self._index: Optional[dict] = None  # (service, account) -> sorted (resource part, ARN): scope()
        self._arns: list = []
        self._ranges: dict = {}  # Resource pattern -> (service, literal start), () when unlimited
        self._held_arns: dict = {}  # (action is sts:AssumeRole*) -> those with a resource-based policy
        self._never: dict = {}  # (keys of the SCP levels and boundary, action) -> never()
        self._keys: dict = {}  # keys of policies (ids of their statements, ...) -> a number

    def forget(self) -> None:
        """Let go of what is remembered per request and per policy's action (built again when
        asked): the answers, the policies' Resource patterns and their matchers."""
        for memo in (self._answers, self._hits, self._scopes, self._patterns):
            memo.clear()

    def could(self, principal: str, action: str, resource: str) -> bool:
        if "*" in resource or "?" in resource or action == "sts:getcalleridentity":
            return True
        layers = self._layers(principal)
        if layers is None:
            return True
        key = (layers.signature, layers.account, action, resource)
        got = self._answers.get(key)
        if got is None:
            got = self._answers[key] = self._could(layers, action, resource)
        return got

    def could_assume(self, principal: str, role) -> bool:
        """The filter for an assume-role edge, asked as ``Analyzer.assumers`` asks it (the role's
        account as the resource account).  A trust policy is a resource-based policy, but one that
        names only accounts delegates to the principal's own policies, and across accounts those
        must allow in any case (decision.lp); so unless the role's trust policy names someone
        otherwise (a principal, `*`, NotPrincipal) and the principal is of the role's account, its
        identity policies and boundary must have an Allow for sts:AssumeRole on the role."""
        layers = self._layers(principal)
        if layers is None:
            return True
        action = "sts:assumerole"
        for key, level in layers.scps:
            if not self._allows(key, level, action, role.arn):
                return False
        if layers.account == role.account and self._names_others(role):
            return True
        return self._principal_side(layers, action, role.arn)

    def _names_others(self, role) -> bool:
        got = self._naming.get(role.arn)
        if got is None:
            got = False
            for st in role.trust.statements if role.trust is not None else ():
                if st.effect != "Allow" or st.principals is None:
                    continue
                if st.not_principal:
                    got = True
                for pr in st.principals:
                    v = pr.value
                    if pr.type == "*" or v == "*" or (pr.type == "AWS" and not re.fullmatch(r"\d{12}", v) and not _ACCOUNT_ROOT.match(v)):
                        got = True
            self._naming[role.arn] = got
        return got

    def never(self, principal: str, action: str) -> bool:
        """Whether no request of the principal for the action can be allowed, whatever the
        resource: an SCP level that applies has no Allow for the action on any resource, or its
        permissions boundary has none and no resource-based policy of the estate (trust policies
        for sts:AssumeRole*) has one either (only those grant past a boundary)."""
        layers = self._layers(principal)
        if layers is None or action == "sts:getcalleridentity":
            return False
        # (principals of an account share their SCP levels, many share a boundary)
        key = (tuple(k for k, _ in layers.scps), layers.boundary_key, action)
        got = self._never.get(key)
        if got is None:
            got = self._never[key] = self._never_now(layers, action)
        return got

    def _never_now(self, layers: "_Layers", action: str) -> bool:
        for _, level in layers.scps:
            if not any(self._resources(pol, action) for pol in level):
                return True
        if layers.boundary and not any(self._resources(pol, action, layers.skip(pol)) for pol in layers.boundary):
            return not self._granted_by_resource_policies(action)
        return False

    def _granted_by_resource_policies(self, action: str) -> bool:
        if action.startswith("sts:assumerole"):
            return True
        got = self._resource_side.get(action)
        if got is None:
            pols = [pol for acct in self.analyzer.estate.accounts.values() for pol in acct.resource_policies.values()]
            got = self._resource_side[action] = any(self._resources(pol, action) for pol in pols)
        return got

    def _layers(self, principal: str) -> Optional["_Layers"]:
        """What is in force for the principal's requests (None: a principal the filter leaves
        alone, e.g. not a user or role of the estate)."""
        if principal in self._probe:
            return self._probe[principal]
        layers = None
        who = match.PrincipalInfo(principal)
        if principal in self.analyzer.principals and who.kind in ("user", "role"):
            req = self.analyzer.request(principal, "*", "*")
            scps = [] if req.service_linked_role or req.management_principal else req.scps
            context = derived_context(who)  # (as the evaluation reads the request's context)
            context.update(req.context)
            refuted = {}
            for pol in (*req.identity, *req.boundary):
                gone = frozenset(st.index for st in pol.statements if st.effect == "Allow" and _refuted(st, context))
                if gone:
                    refuted[id(pol.statements)] = gone
            rkey = tuple(sorted(refuted.items()))
            # keys as small numbers: the filter's memos are looked up for every request
            key = self._keys.setdefault
            ikey = key((_ids(req.identity), rkey), len(self._keys))
            bkey = key((_ids(req.boundary), rkey), len(self._keys))
            levels = [(key(_ids(level), len(self._keys)), level) for level in scps]
            layers = _Layers(who.account, ikey, req.identity, bkey, req.boundary, levels, refuted,
                             key((ikey, bkey, tuple(k for k, _ in levels)), len(self._keys)))
        self._probe[principal] = layers
        return layers

    def _could(self, layers: "_Layers", action: str, resource: str) -> bool:
        for key, level in layers.scps:
            if not self._allows(key, level, action, resource):
                return False
        if self._held(action, resource):
            return True
        # without a resource-based policy, a request across accounts is not allowed, and within
        # one only through the identity policies and the boundary
        account = self._resource_account.get(resource, "")
        if account == "":
            account = self._resource_account[resource] = self.analyzer.resource_account(resource)
        if account is not None and account != layers.account:
            return False
        return self._principal_side(layers, action, resource)

    def _held(self, action: str, resource: str) -> bool:
        """Whether a resource-based policy is in force for requests on the resource (it depends
        on the resource and on whether the action assumes a role)."""
        key = (action.lower().startswith("sts:assumerole"), resource)
        held = self._resource_policy.get(key)
        if held is None:
            held = self._resource_policy[key] = self.analyzer.resource_policy(action, resource) is not None
        return held

    def scope(self, principal: str, action: str) -> Optional[list]:
        """The users, roles, groups, customer managed policies and workloads of the estate that
        the principal's requests for the action could be allowed on (:meth:`could`), sorted;
        None when its Allows for the action are not limited to a part of a service's resources
        (a Resource of `*`, a wildcard in the service field) or the filter does not apply.

        Candidates come from an index of those ARNs by service, the account a request on them is
        decided in, and resource part: a Resource pattern's literal start (before its first
        wildcard) names a range of the resources of the principal's account and of those whose
        account is not known (without a resource-based policy a request across accounts is never
        allowed).  Letters are compared in lower case, so the range holds every resource the
        pattern could match whatever the case rules; resources with a resource-based policy are
        candidates too (it may grant past the identity policies, and across accounts).  Each
        candidate is then asked :meth:`could`: a resource left out is one whose request the
        driver would leave out."""
        layers = self._layers(principal)
        if layers is None:
            return None
        if self._index is None:
            self._build_index()
        assumes = action.lower().startswith("sts:assumerole")
        held = self._held_arns.get(assumes)
        if held is None:
            held = self._held_arns[assumes] = [arn for arn in self._arns if self._held(action, arn)]
        found = set(held)
        for pol in layers.identity:
            for pattern in self._resources(pol, action, layers.skip(pol)):
                where = self._ranges.get(pattern)
                if where is None:
                    parts = match.split_arn(pattern.lower())
                    if parts is None or "*" in parts[2] or "?" in parts[2]:
                        where = self._ranges[pattern] = ()
                    else:
                        where = self._ranges[pattern] = (parts[2], re.split(r"[*?]", parts[5], maxsplit=1)[0])
                if not where:
                    return None
                service, start = where
                for account in {layers.account, None}:
                    lst = self._index.get((service, account), [])
                    i = bisect.bisect_left(lst, (start,))
                    while i < len(lst) and lst[i][0].startswith(start):
                        found.add(lst[i][1])
                        i += 1
        return [arn for arn in sorted(found) if self.could(principal, action, arn)]

    def _build_index(self) -> None:
        an = self.analyzer
        arns = set(an.principals)
        for acct in an.estate.accounts.values():
            arns.update(g.arn for g in acct.groups.values())
            arns.update(mp.arn for mp in acct.managed_policies.values() if not mp.aws_managed)
            arns.update(w.arn for w in acct.workloads)
        self._arns = sorted(arns)
        index: dict = {}
        for arn in self._arns:
            parts = match.split_arn(arn.lower())
            if parts is not None:
                index.setdefault((parts[2], an.resource_account(arn)), []).append((parts[5], arn))
        self._index = {key: sorted(lst) for key, lst in index.items()}

    def scope_universe(self) -> list:
        """The resources :meth:`scope` chooses among."""
        if self._index is None:
            self._build_index()
        return self._arns

    def _principal_side(self, layers: "_Layers", action: str, resource: str) -> bool:
        return self._allows(layers.identity_key, layers.identity, action, resource, layers.refuted) and (
            not layers.boundary or self._allows(layers.boundary_key, layers.boundary, action, resource, layers.refuted))

    def _allows(self, key: int, pols, action: str, resource: str, refuted: Optional[dict] = None) -> bool:
        """Whether the policies (``key``: the number standing for the ids of their statements and
        of those of their statements left out, ``refuted``) have an Allow that could admit the action on the
        resource; remembered, since principals of an account share their SCP levels and many
        share a boundary."""
        hit = self._hits.get((key, action, resource))
        if hit is None:
            if len(self._hits) > 1_000_000:
                self._hits.clear()
            hit = self._hits[(key, action, resource)] = self._allows_now(key, pols, action, resource, refuted or {})
        return hit

    def _allows_now(self, key: int, pols, action: str, resource: str, refuted: dict) -> bool:
        got = self._scopes.get((key, action))
        if got is None:
            pats = [pat for pol in pols for pat in self._resources(pol, action, refuted.get(id(pol.statements), _NONE))]
            # (kept with the policies, whose statements the ids stand for)
            got = self._scopes[(key, action)] = (match.arn_matcher(dict.fromkeys(pats)), pols)
        return got[0](resource)

    def _resources(self, pol, action: str, skip: frozenset = frozenset()) -> tuple:
        """The Resource patterns of the policy's Allow statements that admit the action ("*" for
        a statement without Resource or with NotResource; policy variables loosened), but those
        of the statements ``skip`` (indexes)."""
        key = (id(pol.statements), action, skip)
        got = self._patterns.get(key)
        if got is not None and got[0] is pol.statements:
            return got[1]
        pats: list = []
        # (the statements whose Action admits it, or whose NotAction does not exclude it, by the
        # evaluation's index of the policy's actions)
        for st in _candidates(pol, action.lower()):
            if st.effect != "Allow" or st.index in skip:
                continue
            if st.resources is None or st.not_resource:
                pats.append("*")
            else:
                pats += [_loosened(r) for r in st.resources]
        self._patterns[key] = (pol.statements, tuple(pats))
        return tuple(pats)


_ACCOUNT_ROOT = re.compile(r"arn:[^:]+:iam::\d{12}:root\Z")
_NONE: frozenset = frozenset()
# single-valued operators that are false when the key is absent ("the values do not match") and
# otherwise true when a value matches (encodings/eval/conditions.lp)
_REFUTABLE = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"})


def _refuted(st, context: dict) -> bool:
    """Whether a clause of the statement's Condition is false for every request the analysis
    builds for a principal whose derived keys and tags are ``context``: a clause on
    aws:PrincipalTag/*, aws:PrincipalArn or aws:PrincipalAccount (the principal's tags are known,
    so a tag it lacks is absent: Analyzer.request) with a plain positive operator, no IfExists and
    no policy variable, that no value of the principal meets."""
    for cond in st.conditions:
        key = cond.key.lower()
        if not (key.startswith("aws:principaltag/") or key in ("aws:principalarn", "aws:principalaccount")):
            continue
        if cond.base not in _REFUTABLE or cond.if_exists or cond.quantifier or any("${" in v for v in cond.values):
            continue
        values = context.get(key)
        if not values or not any(match.value_matches(cond.base, pv, rv) for pv in cond.values for rv in values):
            return True
    return False


_VARIABLE = re.compile(r"\$\{[^{}]*\}")


def _loosened(pattern: str) -> str:
    """A Resource pattern that matches whatever the pattern matches once its policy variables are
    replaced by request values: each variable of the resource part (after the fifth colon, the
    only part AWS substitutes: match.substitute_resource) becomes `*`; before it they are literal
    text and stay."""
    if "${" not in pattern:
        return pattern
    parts = pattern.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        tail = _VARIABLE.sub("*", parts[5])
        if "${" not in tail:
            return ":".join(parts[:5]) + ":" + tail
    return "*"


@dataclass
class _Layers:
    """The policies in force for a principal's requests, with keys that stand for the ids of
    their statements (principals that hold the same policies ask the same questions)."""

    account: Optional[str]
    identity_key: int
    identity: list
    boundary_key: int
    boundary: list
    scps: list  # [(key, policies of the level)]: the SCP levels that apply
    refuted: dict  # id(statements) -> indexes of Allows left out (_refuted)
    signature: int  # the key of all of them

    def skip(self, pol) -> frozenset:
        return self.refuted.get(id(pol.statements), _NONE)


def _ids(pols) -> tuple:
    return tuple(id(p.statements) for p in pols)


def _resource_account(prog: "_Program", analyzer: Analyzer, arn: str) -> None:
    """The account a request on a role or workload is decided in (the request's resource
    account), or `open_resource` when actors of other accounts may be allowed on it too: it has a
    resource-based policy, or its account is not known."""
    account = analyzer.resource_account(arn)
    if account is not None:
        prog.fact("resource_in", arn, account)
    if account is None or analyzer.resource_policy("iam:passrole", arn) is not None:
        prog.fact("open_resource", arn)


def _permission_request(analyzer: Analyzer, key: tuple) -> Request:
    """The request a permission the rules need is decided as: ``(X, A, Res)`` (a ``need``), or
    ``("as_trusted", X, A, Role)``, the request once the role's trust policy names the actor
    (after the actor rewrote it; everything else in force stays as it is).  Made again, the same:
    a finding's proof makes it again when its reasons are asked (evaluate._Remade)."""
    if key[0] == "as_trusted":
        _, x, a, res = key
        req = analyzer.request(x, a, res, None, None, True, rid=key)
        req.resource_policy = _trust_naming(x, a, res)
        return req
    x, a, res = key
    return analyzer.request(x, a, res, None, None, True, wildcard_only=res == "*" and _wildcard_only(a), rid=key)


def _trust_naming(actor: str, action: str, role: str):
    """A trust policy allowing ``actor`` the action, in place of the role's own."""
    from .model import PolicyKind
    from .parse import parse_policy

    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": actor}, "Action": action}]}
    return parse_policy(doc, PolicyKind.TRUST, f"{role} (trust policy rewritten to name {actor})")


def _way(x: str, nxt: dict, first: dict) -> list:
    """A shortest way from x to arbitrary permissions, as (principal, method, target) steps.
    ``first`` keeps, per principal, the step chosen (the least in text order), so that the many
    findings of one principal and the ways that pass through it choose once."""
    out = []
    cur = x
    seen = set()
    while cur in nxt and cur not in seen:
        seen.add(cur)
        step = first.get(cur)
        if step is None:
            y, m, res = min(nxt[cur], key=str)
            last = y.type == clingo.SymbolType.Function and y.name in ("admin", "raise")
            step = first[cur] = (_str(m), _str(res), last, None if last else _str(y))
        m, res, last, y = step
        out.append((cur, m, res))
        if last:
            break
        cur = y
    return out


_READ = ("escalation", "raised", "admin_dist", "next_step", "also_requires")  # the shown atoms read as terms


def _escalation(text: str, interned: dict, odd: Optional[list] = None) -> tuple:
    """An ``escalation(X, M, Res, Gain)`` atom from its text as (actor, method, target, gain)
    (:func:`_str`, :func:`_gain`), each string shared with the equal ones read before: an
    analysis reads hundreds of thousands, which name the same principals again and again.
    ``odd``: the texts of the atoms whose terms the tuple does not tell exactly (:func:`_exact`)
    are added to it."""
    f = _ESCALATION.match(text)
    if f is not None:
        # (as nearly all are: strings without escapes, a method constant, a gain told exactly)
        x, m, res, admin, raised, g = f.groups()
        if m != "assume" and (g is None or _gain_string_exact(g)):
            gain = "admin" if admin is not None else "raise:" + raised if raised is not None else g
            return tuple(interned.setdefault(v, v) for v in (x, m, res, gain))
    x, m, res, g = _read(text).arguments
    if odd is not None and not _exact(x, m, res, g):
        odd.append(text)
    return tuple(interned.setdefault(v, v) for v in (_str(x), _str(m), _str(res), _gain(g)))


_ESCALATION = re.compile(r'escalation\("([^"\\]*)",([a-z][A-Za-z0-9_\']*),"([^"\\]*)",(?:(admin)|raise\("([^"\\]*)"\)|"([^"\\]*)")\)\Z')


def _exact(x, m, res, g) -> bool:
    """Whether an escalation atom's terms are told by its tuple (:func:`_escalation`) as the
    shipped rules make them: the actor and the target strings, the method a constant other than
    ``assume`` (ways.lp's step by a role), the gain ``admin``, ``raise(P)`` or P for strings P
    (P neither ``admin`` nor ``raise:...``, which would read as the other two)."""
    if x.type is not _STRING or res.type is not _STRING:
        return False
    if m.type is not _FUNCTION or m.arguments or not m.name or not m.positive or m.name == "assume":
        return False
    if g.type is _STRING:
        return _gain_string_exact(g.string)
    if g.type is not _FUNCTION or not g.positive:
        return False
    if g.name == "admin":
        return not g.arguments
    return g.name == "raise" and len(g.arguments) == 1 and g.arguments[0].type is _STRING


def _gain_string_exact(g: str) -> bool:
    """Whether a gain that is the string ``g`` reads back as that string from the tuple
    (:func:`_gain`): not as ``admin`` or ``raise(P)``."""
    return g != "admin" and not g.startswith("raise:")


_ADMIN_TERM = ("admin", (), True)


def _ways_coded(principals, admins, edges, max_steps: int, escalation: list) -> tuple[list, list, list]:
    """The facts ways.lp reads (principal/1, admin/1, assumes/2, max_steps/1, escalation/4) with
    each string a number and each method a number: ways.lp compares its terms only for equality,
    so its atoms are those over the strings, numbered (:func:`_ways_decoded`), and grounding
    it makes no string.  The escalations as :func:`_escalation` reads them, every one exact
    (:func:`_exact`).  Returns the facts (plain), the strings and the methods, by number."""
    names: dict = {}
    methods: dict = {}

    def code(s: str) -> int:
        i = names.get(s)
        if i is None:
            i = names[s] = len(names)
        return i

    facts: list = [("max_steps", (max_steps,), True)]
    facts += [("principal", (code(p),), True) for p in principals]
    facts += [("admin", (code(p),), True) for p in sorted(admins)]
    facts += [("assumes", (code(who), code(role)), True) for who, role in edges]
    for x, m, res, g in escalation:
        if g == "admin":
            gain = _ADMIN_TERM
        elif g.startswith("raise:"):
            gain = ("raise", (code(g[6:]),), True)
        else:
            gain = code(g)
        k = methods.get(m)
        if k is None:
            k = methods[m] = len(methods)
        facts.append(("escalation", (code(x), k, code(res), gain), True))
    return facts, list(names), list(methods)


def _ways_decoded(texts: list, names: list, methods: list) -> tuple[set, dict, dict]:
    """What the report reads of the atoms ways.lp shows over numbered facts (:func:`_ways_coded`),
    as :func:`_ways_read` reads those it shows over the strings.  A term met again is the same
    object (hundreds of thousands of steps name a few thousand principals)."""
    strings: dict = {}  # a number's text -> its string's term
    raises: dict = {}  # "raise(N)" -> raise(N's string)
    consts = {"admin": _T(_FUNCTION, "admin"), "assume": _T(_FUNCTION, "assume")}  # as ways.lp names them
    by_method = [_T(_FUNCTION, m) for m in methods]

    def s(text: str) -> _T:
        got = strings.get(text)
        if got is None:
            got = strings[text] = _T(_STRING, string=names[int(text)])
        return got

    def gain(text: str) -> _T:  # a principal, raise(P) or admin
        if text.isdigit():
            return s(text)
        if text.startswith("raise("):
            got = raises.get(text)
            if got is None:
                got = raises[text] = _T(_FUNCTION, "raise", (s(text[6:-1]),))
            return got
        return consts[text]

    usable_raise: set = set()
    dist: dict = {}
    nxt: dict = {}
    for text in texts:
        name, _, rest = text.partition("(")
        a = _WAYS_ARGS.findall(rest)
        if name == "raised" and len(a) == 5:
            usable_raise.add((names[int(a[0])], methods[int(a[1])], names[int(a[2])], names[int(a[3])]))
        elif name == "admin_dist" and len(a) == 2:
            dist[names[int(a[0])]] = int(a[1])
        elif name == "next_step" and len(a) == 4:
            m = by_method[int(a[2])] if a[2].isdigit() else consts[a[2]]  # (assume: a step by a role)
            nxt.setdefault(names[int(a[0])], []).append((gain(a[1]), m, s(a[3])))
        else:
            raise ValueError(f"not an atom ways.lp shows over numbers: {text!r}")
    return usable_raise, dist, nxt


def _ways_read(shown: dict) -> tuple[set, dict, dict]:
    """What the report reads of the ways (ways.lp's atoms, :func:`_read`): the raises an actor
    can use (actor, method, target, principal raised), the steps to arbitrary permissions by
    principal, and the steps on a shortest way by principal (gain or next principal, method,
    target)."""
    usable_raise = {tuple(_str(v) for v in s.arguments[:4]) for s in shown.get("raised", [])}
    dist = {_str(s.arguments[0]): s.arguments[1].number for s in shown.get("admin_dist", [])}
    nxt: dict = {}
    for s in shown.get("next_step", []):
        nxt.setdefault(_str(s.arguments[0]), []).append(tuple(s.arguments[1:]))
    return usable_raise, dist, nxt


_WAYS_ARGS = re.compile(r"raise\(\d+\)|-?\d+|[a-z_][A-Za-z0-9_']*")


def _gain(sym) -> str:
    if sym.type == clingo.SymbolType.Function and sym.name == "admin" and not sym.arguments:
        return "admin"
    if sym.type == clingo.SymbolType.Function and sym.name == "raise":
        return "raise:" + _str(sym.arguments[0])
    return _str(sym)


ASSUME = "sts:AssumeRole"
_GRANTED = ("Allowed", "ConditionallyAllowed")


class _Edges:
    """Assume-role edges, evaluated when asked for and stated as facts once each:

    - ``into(roles)``: every principal that may assume each role (``Analyzer.assumers``);
    - ``out(principals)``: every role each principal may assume: the roles whose trust policy can
      name it (``Analyzer.assumable_by``), each pair evaluated as ``assumers`` asks it (whoever the
      trust candidates leave out cannot be allowed: the filter is sound, so a pair allowed here is
      an edge there too);
    - ``services(roles)``: the AWS services each role's trust policy names, evaluated the same way;
    - ``ways(escalations, ...)``: the edges the distances to arbitrary permissions depend on.

    Each returns how many facts it added."""

    def __init__(self, analyzer: Analyzer, prog: "_Program", allows: "_MayAllow"):
        self.analyzer = analyzer
        self.prog = prog
        self.allows = allows
        self.decisions: dict = {}  # (who, role) -> (Decision, Request)
        self.into_of: dict = {}  # role -> principals that may assume it (complete once asked)
        self.out_of: dict = {}  # principal -> roles it may assume (complete once asked)
        self.services_of: set = set()  # (role, service) stated

    def _edge(self, who: str, role: str, d, req) -> int:
        if (who, role) in self.decisions:
            return 0
        self.decisions[(who, role)] = (d, req)
        self.prog.fact("assumes", who, role)
        return 1

    def _service(self, role: str, who: str) -> int:
        key = (role, who.lower())
        if key in self.services_of:
            return 0
        self.services_of.add(key)
        self.prog.fact("trusts_service", role, who.lower())
        return 1

    def known(self, who: str, action: str, role: str):
        """For an `sts:AssumeRole` request of a principal on a role whose assumers are known:
        (Decision, Request) when it may, () when it may not; None when not known.  The edge was
        asked as the request would be (same principal, role, account, no context)."""
        if action.lower() != ASSUME.lower() or role not in self.into_of or who not in self.analyzer.principals:
            return None
        if self.analyzer.resource_account(role) != self.analyzer.principals[role].account:
            return None
        return self.decisions.get((who, role), ())

    def into(self, roles: Sequence[str], exact_conditions: bool = False) -> int:
        todo = self._todo(roles)
        return self._into(self.analyzer.assumers(todo, exact_conditions=exact_conditions)) if todo else 0

    def into_later(self, roles: Sequence[str], exact_conditions: bool = False, deciding_now=None):
        """:meth:`into` begun in forked processes (``Analyzer.assumers_later``): a function that
        waits for them and adds the edges (returning how many), and one that stops them.  They
        run beside the rules' first stage; from :data:`EDGES_FIRST_FROM` requests on, they are decided
        before this returns (``deciding_now`` called first, with their number)."""
        todo = self._todo(roles)
        if not todo:
            return (lambda: 0), (lambda: None)
        finish, cancel = self.analyzer.assumers_later(todo, exact_conditions, now_from=EDGES_FIRST_FROM, deciding_now=deciding_now)
        return (lambda: self._into(finish())), cancel

    def _todo(self, roles: Sequence[str]) -> list:
        return [r for r in roles if r not in self.into_of and isinstance(self.analyzer.principals.get(r), Role)]

    def _into(self, found: dict) -> int:
        added = 0
        for role, lst in found.items():
            got = self.into_of[role] = set()
            for who, d, req in lst:
                if "." in who and not who.startswith("arn:"):
                    added += self._service(role, who)
                elif who in self.analyzer.principals:
                    got.add(who)
                    added += self._edge(who, role, d, req)
        return added

    def out(self, principals: Sequence[str]) -> int:
        an = self.analyzer
        reqs = []
        for who in principals:
            if who in self.out_of or who not in an.principals:
                continue
            got = self.out_of[who] = set()
            for role in sorted(an.assumable_by(who)):
                r = an.principals.get(role)
                if role == who or not isinstance(r, Role) or r.trust is None:
                    continue
                if role in self.into_of:
                    if who in self.into_of[role]:
                        got.add(role)
                    continue
                if not self.allows.could_assume(who, r):
                    continue
                reqs.append(an.request(who, ASSUME, role, None, r.account, True, (), rid=(who, role)))
        added = 0
        for req, d in zip(reqs, evaluate(reqs, exact_conditions=False) if reqs else []):
            if d.decision in _GRANTED:
                who, role = req.id
                self.out_of[who].add(role)
                added += self._edge(who, role, d, req)
        return added

    def services(self, roles: Sequence[str]) -> int:
        an = self.analyzer
        reqs = []
        for role in roles:
            r = an.principals.get(role)
            if not isinstance(r, Role) or r.trust is None:
                continue
            names = set()
            for st in r.trust.statements:
                if st.effect != "Allow" or st.principals is None or st.not_principal:
                    continue
                for pr in st.principals:
                    if pr.type == "Service" and pr.value != "*" and "${" not in pr.value:
                        names.add(pr.value)
            reqs += [an.request(v, ASSUME, role, None, r.account, True, (), rid=(role, v)) for v in sorted(names) if v != role]
        added = 0
        for req, d in zip(reqs, evaluate(reqs, exact_conditions=False) if reqs else []):
            role, who = req.id
            if d.decision in _GRANTED and "." in who and not who.startswith("arn:"):
                added += self._service(role, who)
        return added

    def _enterable(self, principal: str) -> bool:
        """Whether some user or role could ever assume ``principal``: a role whose trust policy
        has an Allow naming `*`, an AWS principal or account, or with NotPrincipal (Service,
        Federated and CanonicalUser entries never name a user or role: match.principal_match)."""
        r = self.analyzer.principals.get(principal)
        if not isinstance(r, Role) or r.trust is None:
            return False
        for st in r.trust.statements:
            if st.effect != "Allow" or st.principals is None:
                continue
            if st.not_principal or any(pr.type in ("*", "AWS") or pr.value == "*" for pr in st.principals):
                return True
        return False

    def ways(self, escalation: list, admins: set, max_steps: int) -> int:
        """The edges the rules' distances depend on (ways.lp: to_admin, fwd, raised), for the
        principals that escalate (the only ones whose distance and way are reported):

        - out of the principals on the ways from each principal that raises others to the
          principals it raises, breadth first until each is reached (or max_steps): ``raised``
          is read for whether it holds and, through ``admin_dist``, for its least number of steps,
          which the first layer that reaches the principal gives;
        - into the administrators (asked before the rules ran): with them every principal at one
          step from arbitrary permissions is known (it assumes an administrator role, or a method
          gives it an administrator or arbitrary permissions, or raises itself);
        - out of every principal, from the escalating ones on, that is not one of those, breadth
          first up to max_steps + 1 steps: a shortest way from such a principal runs through
          principals whose edges out are all known until it meets one at distance one or less.
        The distances of the escalating principals and the steps of their ways are then those
        every edge would give; other edges change no answer."""
        an = self.analyzer
        raises: dict = {}
        near = set(admins)  # at distance 0 or 1
        before: dict = {}  # method steps, backward: gain -> actors
        after: dict = {}  # ... forward: actor -> gains
        actors = set()
        for x, _, _, g in escalation:
            actors.add(x)
            if g == "admin" or g == "raise:" + x:
                near.add(x)
            elif g.startswith("raise:"):
                raises.setdefault(x, set()).add(g[6:])
            elif g in an.principals and g != x:
                before.setdefault(g, set()).add(x)
                after.setdefault(x, set()).add(g)
        added = 0
        for x in sorted(raises):
            # a principal no step leads to is reached by no way: a user, or a role whose trust
            # policy names no AWS principal (only services or identity providers), that no
            # method gives
            left = {p for p in raises[x] if p in before or self._enterable(p)}
            reached = {x}
            layer = [x]
            for _ in range(max_steps):
                if not layer or not left:
                    break
                added += self.out(layer)
                nxt = []
                for y in layer:
                    for z in sorted(self.out_of.get(y, set()) | after.get(y, set())):
                        if z not in reached:
                            reached.add(z)
                            nxt.append(z)
                            left.discard(z)
                layer = nxt
        added += self.into(sorted(admins))
        for a in admins:
            near |= self.into_of.get(a, set()) | before.get(a, set())
        layer = sorted(actors - near)
        seen = set(layer)
        for _ in range(max_steps + 1):
            if not layer:
                break
            added += self.out(layer)
            nxt = []
            for y in layer:
                for z in sorted(self.out_of.get(y, set()) | after.get(y, set())):
                    if z not in seen and z not in near:
                        seen.add(z)
                        nxt.append(z)
            layer = nxt
        return added


def _reachable(principal: str, edges: dict) -> set:
    adj: dict = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
    seen = {principal}
    todo = [principal]
    while todo:
        for n in adj.get(todo.pop(), ()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _wildcard_only(action: str) -> bool:
    svc, _, name = action.partition(":")
    details = action_details(svc, name)
    return details is not None and not details.get("resourceTypes")


def _admin_groups(analyzer: Analyzer, groups: list) -> list:
    """The groups one of whose policies allows `*` on `*` (what a member gains by joining one),
    each policy asked on its own, all in one batch."""
    reqs = []
    for n, g in enumerate(groups):
        pols = list(g.inline)
        for arn in g.managed:
            mp = analyzer.estate.managed_policy(arn, g.account)
            if mp is not None and mp.policy is not None:
                pols.append(mp.policy)
        reqs += [_everything(n, pol) for pol in pols]
    admin = {req.id for req, d in zip(reqs, evaluate(reqs, exact_conditions=False) if reqs else []) if d.decision == "Allowed"}
    return [g for n, g in enumerate(groups) if n in admin]


def _everything(rid, pol):
    """A probe asking whether one policy alone allows `*` on `*`."""
    from .request import Request

    return Request(id=rid, principal="arn:aws:iam::000000000000:user/probe", action="*", resource="*", resource_account="000000000000", identity=[pol])


_WORKLOAD_KINDS = [
    (r"arn:[^:]+:lambda:[^:]*:\d*:function:", "lambda"),
    (r"arn:[^:]+:ec2:[^:]*:\d*:instance/", "ec2"),
    (r"arn:[^:]+:glue:[^:]*:\d*:devEndpoint/", "glue_endpoint"),
    (r"arn:[^:]+:glue:[^:]*:\d*:job/", "glue_job"),
    (r"arn:[^:]+:cloudformation:[^:]*:\d*:stack/", "cloudformation"),
    (r"arn:[^:]+:cloudformation:[^:]*:\d*:stackset/", "cloudformation_stackset"),
    (r"arn:[^:]+:codebuild:[^:]*:\d*:project/", "codebuild"),
    (r"arn:[^:]+:sagemaker:[^:]*:\d*:notebook-instance/", "sagemaker_notebook"),
    (r"arn:[^:]+:ecs:[^:]*:\d*:task-definition/", "ecs_task"),
    (r"arn:[^:]+:apprunner:[^:]*:\d*:service/", "apprunner"),
    (r"arn:[^:]+:bedrock-agentcore:[^:]*:\d*:code-interpreter", "bedrock_interpreter"),
    (r"arn:[^:]+:datapipeline:", "datapipeline"),
    (r"arn:[^:]+:ec2:[^:]*:\d*:launch-template/", "launch_template"),
]


def _workload_kind(arn: str) -> str:
    for pat, kind in _WORKLOAD_KINDS:
        if re.match(pat, arn):
            return kind
    parts = arn.split(":")
    return re.sub(r"[^a-z0-9_]", "_", parts[2].lower()) if len(parts) > 2 and parts[2][:1].isalpha() else "unknown"


_SCOPE_READ = re.compile(r'\b(?:in_scope|scope_all)\(\s*[A-Za-z_][A-Za-z0-9_]*\s*,\s*"([^"\\]+)"')


def _scoped_actions(files) -> set:
    """The actions the rules read `in_scope/3` or `scope_all/2` for (named as string constants),
    from the rules as clingo parsed them (included files too)."""
    return {a for st in staged.read_rules(files).statements for a in _SCOPE_READ.findall(str(st))}


def _facts_of(files: list[Path], name: str) -> list:
    """Facts of one predicate (of arity 3) stated in the rule files (method/3, requires/3)."""
    return staged.read_rules(files).facts.get((name, 3), [])


def _titles(files) -> dict:
    return {_str(s.arguments[0]): _str(s.arguments[1]) for s in _facts_of(files, "method")}


def _requires(files) -> dict:
    out: dict = {}
    for s in _facts_of(files, "requires"):
        out.setdefault(_str(s.arguments[0]), []).append((_str(s.arguments[1]), _str(s.arguments[2])))
    return out


def _required_actions(files) -> set:
    return {a for lst in _requires(files).values() for a, _ in lst}
