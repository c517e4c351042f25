"""The query language of `iam-reasoner ask` and the REPL (``grammar/query.lark``).

``parse(text)`` gives a typed query (``WhoCanQuery``, ``CanQuery``, ``WhatCanQuery``,
``PathQuery``, ``EscalationsQuery``) or raises ``QueryError`` located at the line and column where
the query goes wrong, with a lowercase message and a hint.  ``query.run(analyzer)`` answers it with
the result objects of the Python API (``WhoCan``, ``CanResult``, ``Escalations``, and ``WhatCan``
and ``Paths`` defined here); ``ask(analyzer, text)`` does both.  ``text(result)`` is the terminal
tree of any answer.

    >>> q = parse("who can s3:GetObject on arn:aws:s3:::prod-data/* where aws:SourceIp = 10.1.2.3")
    >>> q.action, q.resource, q.context
    ('s3:GetObject', 'arn:aws:s3:::prod-data/*', {'aws:SourceIp': ['10.1.2.3']})
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Union

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from . import match
from .analysis import MAX_HOPS, Analyzer
from .diagnostics import Diagnostic, InputError, code
from .paths import grammar_file

SOURCE = "<query>"

QUESTIONS = (
    ("who can [directly] ACTION on RESOURCE [where KEY = VALUE [and ...]] [in account ID] [within N hops]",
     "every principal that can, directly or through role chains (`directly`: no chains)"),
    ("can PRINCIPAL do ACTION on RESOURCE [where ...] [in account ID] [within N hops]",
     "the decision with its proof; for a denial, why not"),
    ("what can PRINCIPAL [in service PREFIX] [where ...]", "the effective permissions of a principal"),
    ("path from PRINCIPAL to ROLE [all] [within N hops]", "the shortest chain of role assumptions (`all`: every simple chain)"),
    ("escalations [for PRINCIPAL]", "privilege escalation findings and the administrators"),
)

HELP = "\n".join(
    ["questions (keywords in any case; quote a value with spaces: 'a b'):"]
    + [f"  {form}\n      {what}" for form, what in QUESTIONS]
    + [
        "PRINCIPAL is an ARN or a name of the estate (`alice`, `user/alice`, `role/deployer`);",
        "RESOURCE is an ARN, an ARN pattern (`arn:aws:s3:::bucket/*`) or `*` for actions without one.",
        "examples:",
        "  who can s3:GetObject on arn:aws:s3:::prod-data/* where aws:SourceIp = 10.1.2.3",
        "  can arn:aws:iam::111111111111:user/alice do s3:GetObject on arn:aws:s3:::prod-data/x where aws:MultiFactorAuthPresent = true",
        "  what can alice in service s3",
        "  path from alice to role/deployer all",
        "  escalations for ci-bot",
    ]
)


class QueryError(InputError):
    """A query that cannot be parsed or answered; carries located diagnostics (exit code 2)."""

    def __init__(self, diagnostics, query: str = ""):
        super().__init__(diagnostics, unreadable=True)
        self.query = query

    def pointer(self) -> str:
        """The query line the first diagnostic points into, and a caret under the column."""
        d = self.diagnostics[0] if self.diagnostics else None
        if d is None or not d.column or not self.query:
            return ""
        lines = self.query.split("\n")
        line = lines[d.line - 1] if 0 < d.line <= len(lines) else lines[-1]
        shown = re.sub(r"[\x00-\x1f\x7f]", " ", line)
        return f"  {shown}\n  {' ' * (d.column - 1)}^"


def _error(query: str, line: int, column: int, message: str, hint: str) -> QueryError:
    return QueryError([Diagnostic(SOURCE, line, column, message, hint)], query)


# --------------------------------------------------------------------------- typed queries


@dataclass(frozen=True)
class WhoCanQuery:
    action: str
    resource: str
    context: dict = field(default_factory=dict)
    direct: bool = False
    resource_account: Optional[str] = None
    max_hops: int = MAX_HOPS

    def run(self, analyzer: Analyzer, query: str = ""):
        res = None if self.resource == "*" and analyzer.wildcard_only(self.action) else self.resource
        return analyzer.who_can(self.action, res, self.context, self.resource_account, direct=self.direct, max_hops=self.max_hops)


@dataclass(frozen=True)
class CanQuery:
    principal: str
    action: str
    resource: str
    context: dict = field(default_factory=dict)
    resource_account: Optional[str] = None
    max_hops: int = MAX_HOPS
    columns: dict = field(default_factory=dict, compare=False, repr=False)

    def run(self, analyzer: Analyzer, query: str = ""):
        who = _resolve(analyzer, self.principal, self.columns.get("principal", 0), query)
        res = None if self.resource == "*" and analyzer.wildcard_only(self.action) else self.resource
        return analyzer.can(who, self.action, res, self.context, self.resource_account, self.max_hops)


@dataclass(frozen=True)
class WhatCanQuery:
    principal: str
    service: Optional[str] = None
    context: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict, compare=False, repr=False)

    def run(self, analyzer: Analyzer, query: str = ""):
        who = _resolve(analyzer, self.principal, self.columns.get("principal", 0), query, known=True)
        return WhatCan(who, self.service, analyzer.what_can(who, self.service, self.context))


@dataclass(frozen=True)
class PathQuery:
    source: str
    target: str
    all_paths: bool = False
    max_hops: int = MAX_HOPS
    columns: dict = field(default_factory=dict, compare=False, repr=False)

    def run(self, analyzer: Analyzer, query: str = ""):
        src = _resolve(analyzer, self.source, self.columns.get("source", 0), query)
        dst = analyzer.base(_resolve(analyzer, self.target, self.columns.get("target", 0), query, known=True))
        return Paths(src, dst, analyzer.paths(src, dst, self.max_hops, self.all_paths), self.max_hops, self.all_paths)


@dataclass(frozen=True)
class EscalationsQuery:
    principal: Optional[str] = None
    columns: dict = field(default_factory=dict, compare=False, repr=False)

    def run(self, analyzer: Analyzer, query: str = ""):
        from .escalate import escalations

        who = None if self.principal is None else _resolve(analyzer, self.principal, self.columns.get("principal", 0), query, known=True)
        return escalations(analyzer, who)


Query = Union[WhoCanQuery, CanQuery, WhatCanQuery, PathQuery, EscalationsQuery]


# --------------------------------------------------------------------------- answers of their own


@dataclass
class WhatCan:
    """The effective permissions of a principal: (action, decision, conditions) rows."""

    principal: str
    service: Optional[str]
    actions: list

    def as_json(self) -> dict:
        return {"principal": self.principal, "actions": [{"action": a, "decision": d, "conditions": c} for a, d, c in self.actions]}

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .pictures import mimebundle

        return mimebundle(self)


@dataclass
class Paths:
    """Chains of role assumptions from ``source`` to ``target`` (each a list of hops)."""

    source: str
    target: str
    chains: list
    max_hops: int = MAX_HOPS
    all_paths: bool = False

    def as_json(self) -> dict:
        return {"from": self.source, "to": self.target, "paths": [[h.as_json() for h in c] for c in self.chains]}

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .pictures import mimebundle

        return mimebundle(self)


# --------------------------------------------------------------------------- parsing


@lru_cache(maxsize=1)
def parser() -> Lark:
    return Lark(
        grammar_file("query.lark").read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,
        maybe_placeholders=False,
    )


_KEYWORDS = {
    "WHO", "CAN", "DIRECTLY", "DO", "ON", "WHAT", "IN", "SERVICE", "ACCOUNT", "PATH", "FROM", "TO",
    "ALL", "ESCALATIONS", "FOR", "WHERE", "AND", "WITHIN", "HOPS", "HOP",
}
_DESCRIBE = {
    "ACTION": "an action such as `s3:GetObject`",
    "ARN": "an ARN",
    "STAR": "`*`",
    "NAME": "a principal name",
    "SERVICE_NAME": "a service prefix such as `s3`",
    "ACCOUNT_ID": "a 12-digit account id",
    "NUMBER": "a number",
    "KEY": "a condition key such as `aws:SourceIp`",
    "VALUE": "a value",
    "EQUAL": "`=`",
    "$END": "the end of the query",
}
_STARTS = {"WHO", "CAN", "WHAT", "PATH", "ESCALATIONS"}


def _describe(expected: set) -> str:
    names = set(expected)
    if len(names) > 1:
        names.discard("STRING")  # every value may be quoted; the hint says so where it helps
    parts = []
    if {"ARN", "NAME"} <= names:
        names -= {"ARN", "NAME"}
        parts.append("a principal (an ARN or a name)")
    if {"ARN", "STAR"} <= names:
        names -= {"ARN", "STAR"}
        parts.append("a resource (an ARN, an ARN pattern or `*`)")
    if names == {"STRING"}:
        names = set()
        parts.append("a quoted string")
    order = ["$END"]  # the end last
    for n in sorted(names, key=lambda n: (n in order, n in _KEYWORDS, n)):
        parts.append(f"`{n.lower()}`" if n in _KEYWORDS else _DESCRIBE.get(n, n.lower()))
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _hint(expected: set, found: str) -> str:
    e = set(expected)
    keywords = [n.lower() for n in e if n in _KEYWORDS]
    close = difflib.get_close_matches(found.lower(), keywords, n=1, cutoff=0.6) if found else []
    if close:
        return f"did you mean `{close[0]}`?"
    if found.lower() == "or" and "AND" in e:
        return "conditions join with `and` only: ask once for each alternative"
    if e >= _STARTS:
        return "start with `who can`, `can`, `what can`, `path from` or `escalations` (`help` lists the forms)"
    if "ACTION" in e:
        return "write the action as `service:ActionName`, e.g. `s3:GetObject` (wildcards allowed)"
    if "ON" in e:
        return "name the resource after `on`, e.g. `on arn:aws:s3:::bucket/*`, or `on *` for actions without one"
    if "DO" in e:
        return "write `can PRINCIPAL do ACTION on RESOURCE`; quote a principal with spaces"
    if {"ARN", "STAR"} <= e:
        return "give an ARN (`arn:aws:s3:::bucket/key`), an ARN pattern (`arn:aws:s3:::bucket/*`) or `*`"
    if {"ARN", "NAME"} <= e:
        return "give a principal ARN such as `arn:aws:iam::111111111111:user/alice`, or its name such as `alice`"
    if "KEY" in e or "EQUAL" in e:
        return "write conditions as `key = value`, e.g. `aws:SourceIp = 10.1.2.3`, joined with `and`"
    if "VALUE" in e:
        return "give the value after `=`; quote a value with spaces: `key = 'a b'`"
    if "ACCOUNT_ID" in e:
        return "write `in account 123456789012` (12 digits)"
    if "SERVICE_NAME" in e:
        return "write `in service s3` with the service prefix of the actions"
    if "NUMBER" in e or "HOPS" in e:
        return "write `within 3 hops`"
    if "$END" in e:
        return "the query is complete before this; remove the rest, or quote a value that has spaces"
    return "`help` lists the forms of questions"


def _accepts(text: str, pos: int) -> set:
    """The tokens the parser accepts after ``text[:pos]`` (exact: LALR states merge lookaheads,
    so the lexer's own list may name tokens that cannot come next here)."""
    try:
        ip = parser().parse_interactive(text[:pos])
        ip.exhaust_lexer()
        return set(ip.accepts())
    except UnexpectedInput:  # pragma: no cover - the prefix lexed and parsed a moment ago
        return set()


def _interactive_accepts(e: UnexpectedToken) -> set:
    ip = getattr(e, "interactive_parser", None)
    try:
        return set(ip.accepts()) if ip is not None else set()
    except UnexpectedInput:  # pragma: no cover
        return set()


def _word_at(text: str, pos: int) -> str:
    m = re.compile(r"\S+").match(text, pos)
    return m.group() if m else ""


def _unquote(tok: str) -> str:
    if tok[:1] in ("'", '"'):
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    return tok


def parse(text: str) -> Query:
    """The typed query of ``text``; ``QueryError`` (located, with a hint) when it is not one."""
    if not text.strip():
        raise _error(text, 1, 1, "the query is empty", "ask e.g. `who can s3:GetObject on arn:aws:s3:::bucket/*` (`help` lists the forms)")
    try:
        tree = parser().parse(text)
    except UnexpectedCharacters as e:
        found = _word_at(text, e.pos_in_stream)
        expected = _accepts(text, e.pos_in_stream) or set(e.allowed or ())
        if found[:1] in ("'", '"') and "STRING" in expected:
            raise _error(text, e.line, e.column, f"the quote {code(found[:1])} is not closed", f"end the quoted text with {code(found[:1])}") from None
        if expected >= _STARTS:
            raise _error(text, e.line, e.column, f"unknown question {code(found)}", _hint(expected, found)) from None
        raise _error(text, e.line, e.column, f"expected {_describe(expected)}, found {code(found)}", _hint(expected, found)) from None
    except UnexpectedToken as e:
        expected = _interactive_accepts(e) or set(e.expected or ())
        tok = e.token
        if tok.type == "$END":
            lines = text.rstrip().split("\n")
            line, column = len(lines), len(lines[-1]) + 1
            raise _error(text, line, column, f"the query ends too early: expected {_describe(expected)}", _hint(expected, "")) from None
        if expected >= _STARTS:
            raise _error(text, tok.line, tok.column, f"unknown question {code(str(tok))}", _hint(expected, str(tok))) from None
        raise _error(text, tok.line, tok.column, f"expected {_describe(expected)}, found {code(str(tok))}", _hint(expected, str(tok))) from None
    except UnexpectedInput as e:  # pragma: no cover - the LALR parser raises the two above
        raise _error(text, getattr(e, "line", 1), getattr(e, "column", 1), "the query does not parse", "`help` lists the forms of questions") from None
    return _build(tree.children[0], text)


def _tokens(t: Tree) -> list[Token]:
    return [c for c in t.children if isinstance(c, Token)]


def _sub(t: Tree, name: str) -> list[Tree]:
    return [c for c in t.children if isinstance(c, Tree) and c.data == name]


def _one(t: Tree, name: str) -> Optional[Tree]:
    got = _sub(t, name)
    return got[0] if got else None


def _value(t: Tree) -> tuple[str, Token]:
    tok = _tokens(t)[0]
    return _unquote(str(tok)), tok


def _context(t: Tree, text: str) -> dict:
    ctx: dict[str, list[str]] = {}
    w = _one(t, "where")
    if w is None:
        return ctx
    for cond in _sub(w, "condition"):
        key = str(_tokens(cond)[0])
        value, _ = _value(_one(cond, "value"))
        ctx.setdefault(key, []).append(value)
    return ctx


def _hops(t: Tree, text: str) -> int:
    h = _one(t, "hops")
    if h is None:
        return MAX_HOPS
    tok = next(x for x in _tokens(h) if x.type == "NUMBER")
    n = int(tok)
    if not 1 <= n <= 32:
        raise _error(text, tok.line, tok.column, f"{code(str(tok))} hops is out of range", "give between 1 and 32 hops")
    return n


def _account(t: Tree) -> Optional[str]:
    a = _one(t, "account")
    return None if a is None else str(_tokens(a)[-1])


def _action(t: Tree, text: str) -> str:
    value, tok = _value(_one(t, "action"))
    if value != "*" and not re.fullmatch(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+", value):
        raise _error(text, tok.line, tok.column, f"{code(value)} is not an action", "write the action as `service:ActionName`, e.g. `s3:GetObject`")
    return value


def _build(t: Tree, text: str) -> Query:
    kind = t.data
    if kind == "who_can":
        direct = bool(_tokens(_one(t, "directly")))
        resource, _ = _value(_one(t, "resource"))
        return WhoCanQuery(_action(t, text), resource, _context(t, text), direct, _account(t), _hops(t, text))
    if kind == "can":
        who, tok = _value(_one(t, "principal"))
        resource, _ = _value(_one(t, "resource"))
        return CanQuery(who, _action(t, text), resource, _context(t, text), _account(t), _hops(t, text), {"principal": (tok.line, tok.column)})
    if kind == "what_can":
        who, tok = _value(_one(t, "principal"))
        svc = _one(t, "service")
        service = str(_tokens(svc)[-1]).lower() if svc is not None else None
        return WhatCanQuery(who, service, _context(t, text), {"principal": (tok.line, tok.column)})
    if kind == "path":
        (src, stok), (dst, dtok) = (_value(p) for p in _sub(t, "principal"))
        return PathQuery(src, dst, _one(t, "all") is not None, _hops(t, text), {"source": (stok.line, stok.column), "target": (dtok.line, dtok.column)})
    if kind == "escalations":
        p = _one(t, "principal")
        if p is None:
            return EscalationsQuery()
        who, tok = _value(p)
        return EscalationsQuery(who, {"principal": (tok.line, tok.column)})
    raise AssertionError(kind)  # pragma: no cover - the grammar has no other question


# --------------------------------------------------------------------------- answering


def _resolve(analyzer: Analyzer, name: str, where, query: str, known: bool = False) -> str:
    """The principal ARN a query names: an ARN as given (it must be in the estate when its account
    is, or when ``known``), or a name (`alice`, `user/alice`, `role/deployer`) that exactly one
    principal of the estate has."""
    line, column = where if where else (1, 0)
    if name.startswith("arn:"):
        who = match.PrincipalInfo(name)
        inside = analyzer.base(name) in analyzer.principals
        if inside or who.kind in ("root", "service"):
            return name
        if known or (who.account and who.account in analyzer.estate.accounts):
            raise _error(query, line, column, f"{code(name)} is not a principal of this estate", "give a user or role ARN of the snapshot (see `iam-reasoner inspect`), or its name such as `alice`")
        return name
    if "." in name and name.endswith(".amazonaws.com") and not known:
        return name  # a service principal
    low = name.lower()
    hits = sorted(a for a in analyzer.principals if a.lower().endswith("/" + low) or a.lower().endswith(":" + low) or a.rsplit("/", 1)[-1].lower() == low)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        names = sorted({a.rsplit("/", 1)[-1] for a in analyzer.principals})
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean `{close[0]}`?" if close else "give a user or role ARN of the snapshot, or a name such as `alice` or `role/deployer`"
        raise _error(query, line, column, f"no principal of this estate is named {code(name)}", hint)
    shown = ", ".join(f"`{h}`" for h in hits[:4]) + (", …" if len(hits) > 4 else "")
    raise _error(query, line, column, f"{code(name)} names {len(hits)} principals: {shown}", "give the full ARN")


def run(query: Query, analyzer: Analyzer, text: str = ""):
    """The answer to a parsed query (a result object of the Python API)."""
    return query.run(analyzer, text)


def ask(analyzer: Analyzer, text: str):
    """Parse and answer ``text``: a ``WhoCan``, ``CanResult``, ``WhatCan``, ``Paths`` or
    ``Escalations``, each of which renders itself in Jupyter."""
    return run(parse(text), analyzer, text)


# --------------------------------------------------------------------------- text


def text(result) -> str:
    """The terminal tree of any answer (one outline of every answer: reasoner.render)."""
    from .render import text as render_text

    return render_text(result)
