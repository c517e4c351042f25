"""Front end: policy JSON text → typed :class:`~reasoner.model.Policy`, with located diagnostics.

The stages, in order:

1. ``decode``     text → Python values with the C JSON decoder (duplicate keys, NaN, bad bytes,
                  nesting and truncation become located diagnostics);
2. ``skeleton``   the decoded document written as its skeleton and checked against the grammar
                  (``grammar/policy.lark``), each distinct skeleton once;
3. ``lower``      the typed pass: string-or-list, principal forms, operator names, policy
                  variables, and the rules AWS enforces per policy kind.

Positions are exact and computed only for what is reported (see :mod:`reasoner.locate`).
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from . import grammar
from .diagnostics import Diagnostic, Diagnostics, InputError
from .locate import Source
from .model import Condition, Policy, PolicyKind, Principal, Statement

TOP_ELEMENTS = ("Version", "Id", "Statement")
STATEMENT_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
MAX_DEPTH = 64  # no valid policy nests deeper than 5; deeper input is rejected before decoding

_SAFE_KEY = re.compile(r"[A-Za-z][A-Za-z:]*\Z")
_UNIQUE_ID = re.compile(r"A[A-Z0-9]{15,127}\Z")
_CONDITION_OPERATORS = (
    "StringEquals StringNotEquals StringEqualsIgnoreCase StringNotEqualsIgnoreCase StringLike "
    "StringNotLike NumericEquals NumericNotEquals NumericLessThan NumericLessThanEquals "
    "NumericGreaterThan NumericGreaterThanEquals DateEquals DateNotEquals DateLessThan "
    "DateLessThanEquals DateGreaterThan DateGreaterThanEquals Bool BinaryEquals IpAddress "
    "NotIpAddress ArnEquals ArnLike ArnNotEquals ArnNotLike Null"
).split()


# --------------------------------------------------------------------------- decode


class _Duplicates(dict):
    """A JSON object that had a key more than once (the last value is kept, as json.loads does)."""

    __slots__ = ("duplicates",)


def _pairs(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        d = _Duplicates(d)
        seen: set = set()
        d.duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]
    return d


def _no_constant(name):
    raise ValueError(f"`{name}` is not valid JSON")


_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def _too_deep(text: str, limit: int) -> Optional[int]:
    """Offset of the bracket that opens nesting level ``limit + 1``, if any."""
    depth = 0
    for m in _NESTING.finditer(text):
        c = m.group()[0]
        if c in "[{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c in "]}":
            depth -= 1
    return None


def read_text(path: str | Path, display: Optional[str] = None) -> tuple[str, str]:
    """(text, display name) of a file; unreadable or non-UTF-8 input raises InputError."""
    name = display or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(
            [Diagnostic(name, 0, 0, f"cannot read `{name}`: {e.strerror or e}", "check the path and its permissions")],
            unreadable=True,
        ) from None
    return decode_bytes(data, name), name


def decode_bytes(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        good = data[: e.start].decode("utf-8", "replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        raise InputError(
            [Diagnostic(name, line, col, f"byte `0x{data[e.start]:02x}` is not valid UTF-8", "policy documents are UTF-8 JSON text; re-encode the file")],
            unreadable=True,
        ) from None


def decode_json(text: str, name: str, max_depth: int = MAX_DEPTH) -> Any:
    """Decode JSON text, raising InputError(unreadable=True) with an exact position when it is not
    JSON.  Objects with a repeated key come back as a dict that remembers the duplicates."""
    if not text.strip():
        raise InputError([Diagnostic(name, 1, 1, "the file is empty", "a policy document is a JSON object: `{\"Version\": \"2012-10-17\", \"Statement\": [...]}`")], unreadable=True)
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        msg = e.msg[0].lower() + e.msg[1:]
        hint = "fix the JSON syntax at this place"
        if "trailing comma" in msg or ("property name" in msg and text[: e.pos].rstrip().endswith(",")):
            msg, hint = "trailing comma before the end of an object", "JSON allows no comma after the last member"
        elif "control character" in msg:
            code = ord(text[e.pos]) if e.pos < len(text) else 0
            msg, hint = f"control character `\\u{code:04x}` inside a string", "write it escaped (`\\n`, `\\u0000`) or remove it"
        elif e.pos >= len(text.rstrip()):
            msg, hint = f"the JSON text ends too early ({msg})", "the file looks truncated: is a `}` or `]` missing?"
        raise InputError([Diagnostic(name, e.lineno, e.colno, f"malformed JSON: {msg}", hint)], unreadable=True) from None
    except ValueError as e:  # NaN / Infinity
        line, col = _find_constant(text)
        raise InputError([Diagnostic(name, line, col, f"malformed JSON: {e}", "JSON numbers are finite; quote the value if it is text")], unreadable=True) from None
    except RecursionError:
        deep = _too_deep(text, max_depth)
        line, col = Source(name, text).line_col(deep) if deep is not None else (1, 1)
        raise InputError([Diagnostic(name, line, col, f"JSON nested more than {max_depth} levels deep", "no policy document nests this deep; is this the right file?")], unreadable=True) from None


def _find_constant(text: str) -> tuple[int, int]:
    m = re.search(r"(?<![\"\w])(NaN|-?Infinity)(?![\"\w])", text)
    return Source("", text).line_col(m.start()) if m else (1, 1)


# --------------------------------------------------------------------------- skeleton


_KEYWORDS = {k: f'"{k}"' for k in ("Allow", "Deny", "2012-10-17", "2008-10-17", "*")}


class _Skeleton:
    """Writes a decoded document as its skeleton, remembering the JSON path of every token."""

    __slots__ = ("parts", "paths", "dups")

    def __init__(self):
        self.parts: list[str] = []
        self.paths: list[tuple] = []  # (path, is_key) per part
        self.dups: list[tuple] = []  # (path, key) of duplicate keys

    def emit(self, tok: str, path: tuple, is_key: bool = False):
        self.parts.append(tok)
        self.paths.append((path, is_key))

    def key(self, k: str, path: tuple, kind: str = "element"):
        if kind == "condition-key":
            tok = "k:"
        else:
            tok = (k + ":") if _SAFE_KEY.match(k) else "@:"
        self.emit(tok, path + (k,), True)

    def obj_start(self, d: dict, path: tuple):
        if isinstance(d, _Duplicates):
            for k in d.duplicates:
                self.dups.append((path, k))
        self.emit("{", path)

    def generic(self, v: Any, path: tuple):
        if isinstance(v, str):
            self.emit("s", path)
        elif isinstance(v, bool):
            self.emit("b", path)
        elif isinstance(v, (int, float)):
            self.emit("n", path)
        elif v is None:
            self.emit("z", path)
        elif len(path) > MAX_DEPTH:
            self.emit("@", path)  # deeper than any valid document: an error at this place
        elif isinstance(v, list):
            self.emit("[", path)
            prev = None
            first = True
            for i, item in enumerate(v):
                scalar = isinstance(item, (str, bool, int, float)) or item is None
                if scalar:
                    tok = "s" if isinstance(item, str) else "b" if isinstance(item, bool) else "z" if item is None else "n"
                    if tok == prev:
                        continue  # a run of one kind of scalar reads as one: lists are homogeneous
                    prev = tok
                else:
                    prev = None
                if not first:
                    self.emit(",", path)
                first = False
                self.generic(item, path + (i,))
            self.emit("]", path)
        elif isinstance(v, dict):
            self.obj_start(v, path)
            for j, (k, item) in enumerate(v.items()):
                if j:
                    self.emit(",", path)
                self.key(k, path)
                self.generic(item, path + (k,))
            self.emit("}", path)

    def keyword(self, v: Any, path: tuple):
        """A value that is a keyword (Version, Effect) is written verbatim."""
        if isinstance(v, str):
            self.emit(_KEYWORDS.get(v) or json.dumps(v), path)
        else:
            self.generic(v, path)

    def policy(self, doc: Any, statements: Optional[list] = None):
        """The document's skeleton.  With ``statements`` (a list to fill), each statement is
        written as `{}` and its own skeleton is appended to that list: statement skeletons recur
        across documents far more than whole-document ones."""
        if not isinstance(doc, dict):
            self.generic(doc, ())
            return
        self.obj_start(doc, ())
        for j, (k, v) in enumerate(doc.items()):
            if j:
                self.emit(",", ())
            self.key(k, ())
            if k == "Version":
                self.keyword(v, (k,))
            elif k == "Statement":
                if isinstance(v, list):
                    self.emit("[", (k,))
                    for i, st in enumerate(v):
                        if i:
                            self.emit(",", (k,))
                        self.statement_or_shell(st, (k, i), statements)
                    self.emit("]", (k,))
                else:
                    self.statement_or_shell(v, (k,), statements)
            else:
                self.generic(v, (k,))
        self.emit("}", ())

    def statement_or_shell(self, st: Any, path: tuple, statements: Optional[list]):
        if statements is None or not isinstance(st, dict):
            self.statement(st, path)
            return
        sub = _Skeleton()
        sub.statement(st, path)
        statements.append(sub)
        self.emit("{}", path)

    def statement(self, st: Any, path: tuple):
        if not isinstance(st, dict):
            self.generic(st, path)
            return
        self.obj_start(st, path)
        for j, (k, v) in enumerate(st.items()):
            if j:
                self.emit(",", path)
            self.key(k, path)
            p = path + (k,)
            if k == "Effect":
                self.keyword(v, p)
            elif k in ("Principal", "NotPrincipal") and isinstance(v, str):
                self.emit('"*"' if v == "*" else "s", p)
            elif k == "Condition" and isinstance(v, dict):
                self.obj_start(v, p)
                for jj, (op, block) in enumerate(v.items()):
                    if jj:
                        self.emit(",", p)
                    self.key(op, p)
                    if isinstance(block, dict):
                        self.obj_start(block, p + (op,))
                        for kk, (ck, cv) in enumerate(block.items()):
                            if kk:
                                self.emit(",", p + (op,))
                            self.key(ck, p + (op,), "condition-key")
                            self.generic(cv, p + (op, ck))
                        self.emit("}", p + (op,))
                    else:
                        self.generic(block, p + (op,))
                self.emit("}", p)
            else:
                self.generic(v, p)
        self.emit("}", path)

    def text(self) -> str:
        return "".join(self.parts)

    def token_at(self, offset: int) -> int:
        pos = 0
        for i, part in enumerate(self.parts):
            if pos + len(part) > offset:
                return i
            pos += len(part)
        return len(self.parts) - 1


_SHAPES = {
    "Version": "`2012-10-17` (or the older `2008-10-17`)",
    "Id": "a string",
    "Statement": "a statement object or a list of statement objects",
    "Sid": "a string",
    "Effect": "`Allow` or `Deny`",
    "Principal": "`*` or a map of `AWS`, `Service`, `Federated` or `CanonicalUser` to a string or a list of strings",
    "NotPrincipal": "a map of `AWS`, `Service`, `Federated` or `CanonicalUser` to a string or a list of strings",
    "Action": "a string or a non-empty list of strings",
    "NotAction": "a string or a non-empty list of strings",
    "Resource": "a string or a non-empty list of strings",
    "NotResource": "a string or a non-empty list of strings",
    "Condition": "a map of condition operators, each to a map of condition keys to a value or a list of values",
}

_TOKEN_NAMES = {"s": "a string", "n": "a number", "b": "a boolean", "z": "`null`", "[": "a list", "{": "an object", "]": "the end of a list", "}": "the end of an object", ",": "another item"}


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"did you mean `{close[0]}`?" if close else ""


def _element_of(path: tuple) -> Optional[str]:
    for p in reversed(path):
        if isinstance(p, str) and (p in _SHAPES):
            return p
    return None


def _skeleton_diagnostic(doc: Any, sk: _Skeleton, err: grammar.SkeletonError, src: Source) -> Diagnostic:
    i = sk.token_at(err.offset)
    path, is_key = sk.paths[i]
    tok = sk.parts[i]
    line, col = src.position(path, key=is_key)
    name = src.file
    if not isinstance(doc, dict):
        return Diagnostic(name, line, col, f"a policy document must be a JSON object, not {_describe(doc)}", "write `{\"Version\": \"2012-10-17\", \"Statement\": [...]}`")
    if is_key:
        k = path[-1]
        parent = path[:-1]
        if not parent:
            return Diagnostic(name, line, col, f"unknown element `{k}` in a policy document", _suggest(k, TOP_ELEMENTS) or "a policy document has only `Version`, `Id` and `Statement`")
        if parent[-1] == "Condition":
            hint = _suggest(k.split(":")[-1].replace("IfExists", ""), _CONDITION_OPERATORS)
            return Diagnostic(name, line, col, f"unknown condition operator `{k}`", hint or "see the condition operators in the IAM JSON policy reference")
        if parent[-1] in ("Principal", "NotPrincipal"):
            return Diagnostic(name, line, col, f"unknown principal type `{k}`", _suggest(k, PRINCIPAL_TYPES) or "use `AWS`, `Service`, `Federated` or `CanonicalUser`")
        if parent[-1] == "Statement" or isinstance(parent[-1], int):
            return Diagnostic(name, line, col, f"unknown element `{k}` in a statement", _suggest(k, STATEMENT_ELEMENTS) or "a statement has only " + ", ".join(f"`{e}`" for e in STATEMENT_ELEMENTS))
        elem = _element_of(parent) or "this element"
        return Diagnostic(name, line, col, f"unexpected key `{k}` in `{elem}`", f"`{elem}` must be {_SHAPES.get(elem, 'as the IAM policy grammar says')}")
    elem = _element_of(path)
    value = _value_at(doc, path)
    if elem == "Effect" and isinstance(value, str):
        return Diagnostic(name, line, col, f"`{value}` is not a valid effect", "`Effect` must be exactly `Allow` or `Deny` (case-sensitive)")
    if elem == "Version" and isinstance(value, str):
        return Diagnostic(name, line, col, f"unsupported policy version `{value}`", "`Version` must be `2012-10-17` (or the older `2008-10-17`)")
    if elem in ("Principal", "NotPrincipal") and isinstance(value, str):
        return Diagnostic(name, line, col, f"`{elem}` given as the string `{value}`", f"only `*` may stand alone; write `{{\"AWS\": \"{value}\"}}` (or `Service` / `Federated`)")
    found = _TOKEN_NAMES.get(tok, f"`{tok}`")
    if tok in ("]",) and elem in ("Action", "NotAction", "Resource", "NotResource", "AWS", "Service", "Federated", "CanonicalUser"):
        return Diagnostic(name, line, col, f"empty list in `{elem}`", f"`{elem}` must be {_SHAPES.get(elem, 'a string or a non-empty list of strings')}")
    if elem is None:
        return Diagnostic(name, line, col, f"unexpected {found} in the policy document", "a policy document is `{\"Version\": \"2012-10-17\", \"Statement\": [...]}`")
    return Diagnostic(name, line, col, f"unexpected {found} in `{elem}`", f"`{elem}` must be {_SHAPES[elem]}")


def _describe(v: Any) -> str:
    return "a list" if isinstance(v, list) else "a string" if isinstance(v, str) else "`null`" if v is None else "a boolean" if isinstance(v, bool) else "a number" if isinstance(v, (int, float)) else "an object"


def _value_at(doc: Any, path: tuple) -> Any:
    cur = doc
    for p in path:
        try:
            cur = cur[p]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


# --------------------------------------------------------------------------- lower


def _strings(v: Any) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else tuple(v)


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return json.dumps(v)


def _split_operator(op: str) -> tuple[Optional[str], str, bool]:
    quant = None
    if op.startswith("ForAllValues:"):
        quant, op = "ForAllValues", op[13:]
    elif op.startswith("ForAnyValue:"):
        quant, op = "ForAnyValue", op[12:]
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[:-8]
    return quant, op, if_exists


class _Lowering:
    def __init__(self, kind: PolicyKind, src: Source, diags: Diagnostics, version: Optional[str], tolerant: bool = False):
        self.kind = kind
        self.src = src
        self.diags = diags
        self.version = version
        self.tolerant = tolerant
        self.bad = False

    def error(self, path: tuple, message: str, hint: str = "", key: bool = False, fatal: bool = False):
        """An error drops the statement.  In tolerant mode (evaluating policies as given, e.g. a
        simulated request) an error that leaves the statement's meaning clear is a warning and the
        statement is kept: an invalid action pattern matches nothing, an element not allowed in
        this kind of policy is ignored."""
        line, col = self.src.position(path, key=key)
        if self.tolerant and not fatal:
            self.diags.add(Diagnostic(self.src.file, line, col, message, hint, "warning"))
            return
        self.bad = True
        self.diags.add(Diagnostic(self.src.file, line, col, message, hint))

    def warn(self, path: tuple, message: str, hint: str = ""):
        line, col = self.src.position(path)
        self.diags.add(Diagnostic(self.src.file, line, col, message, hint, "warning"))

    def statement(self, st: dict, index: int, path: tuple) -> Optional[Statement]:
        self.bad = False
        kind = self.kind
        if "Effect" not in st:
            self.error(path, "statement has no `Effect`", "add `\"Effect\": \"Allow\"` or `\"Effect\": \"Deny\"`", fatal=True)
        if "Action" in st and "NotAction" in st:
            self.error(path + ("NotAction",), "statement has both `Action` and `NotAction`", "a statement takes exactly one of them", key=True)
        elif "Action" not in st and "NotAction" not in st:
            self.error(path, "statement has neither `Action` nor `NotAction`", "add the actions the statement is about")
        has_res = "Resource" in st or "NotResource" in st
        if "Resource" in st and "NotResource" in st:
            self.error(path + ("NotResource",), "statement has both `Resource` and `NotResource`", "a statement takes exactly one of them", key=True)
        elif kind is PolicyKind.TRUST and has_res:
            el = "Resource" if "Resource" in st else "NotResource"
            self.error(path + (el,), f"`{el}` is not allowed in a role trust policy", "a trust policy is about the role itself: remove the element", key=True)
        elif kind is not PolicyKind.TRUST and not has_res:
            self.error(path, "statement has neither `Resource` nor `NotResource`", "add `\"Resource\": \"*\"` or the ARNs the statement is about")
        has_pr = "Principal" in st or "NotPrincipal" in st
        if "Principal" in st and "NotPrincipal" in st:
            self.error(path + ("NotPrincipal",), "statement has both `Principal` and `NotPrincipal`", "a statement takes exactly one of them", key=True)
        elif has_pr and not kind.takes_principal:
            el = "Principal" if "Principal" in st else "NotPrincipal"
            self.error(path + (el,), f"`{el}` is not allowed in {_a(kind)} policy", "the principal of an identity-based policy is whoever it is attached to: remove the element", key=True)
        elif kind.takes_principal and not has_pr:
            self.error(path, f"statement has no `Principal` (required in {_a(kind)} policy)", "name who the statement is about, e.g. `\"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:root\"}`")
        if kind is PolicyKind.TRUST and st.get("NotPrincipal") is not None:
            pass

        actions = _strings(st.get("Action", st.get("NotAction", ())))
        el = "Action" if "Action" in st else "NotAction"
        lowered = []
        for i, a in enumerate(actions):
            if not grammar.is_action_pattern(a):
                self.error(path + (el, i) if isinstance(st.get(el), list) else path + (el,), f"`{a}` is not an action", "write `service:ActionName` (wildcards `*` and `?` allowed), e.g. `s3:GetObject`")
            lowered.append(a)
        resources = None
        if has_res:
            el = "Resource" if "Resource" in st else "NotResource"
            resources = _strings(st[el])
            for i, r in enumerate(resources):
                p = path + (el, i) if isinstance(st[el], list) else path + (el,)
                if r != "*" and not grammar.is_arn(r) and not (r.startswith("${") or "*" in r.split(":", 1)[0]):
                    self.error(p, f"`{r}` is not an ARN", "write the resource's ARN (`arn:partition:service:region:account:resource`) or `*`")
                else:
                    self.template(r, p)
        principals = None
        if has_pr:
            el = "Principal" if "Principal" in st else "NotPrincipal"
            principals = self.principal(st[el], path + (el,))
        conditions = self.conditions(st.get("Condition") or {}, path + ("Condition",))
        if self.bad:
            return None
        return Statement(
            index=index,
            sid=st.get("Sid"),
            effect=st.get("Effect"),
            actions=tuple(lowered),
            not_action="NotAction" in st,
            resources=resources,
            not_resource="NotResource" in st,
            principals=principals,
            not_principal="NotPrincipal" in st,
            conditions=conditions,
            path=path,
        )

    def principal(self, v: Any, path: tuple) -> tuple[Principal, ...]:
        if isinstance(v, str):
            return (Principal("*", "*"),)
        out = []
        for t, vals in v.items():
            listed = isinstance(vals, list)
            for i, val in enumerate(_strings(vals)):
                p = path + (t, i) if listed else path + (t,)
                if t == "AWS" and val != "*" and not (grammar.is_arn(val) or grammar.is_account_id(val) or _UNIQUE_ID.match(val)):
                    self.error(p, f"`{val}` is not a valid AWS principal", "use an account id, an IAM or STS ARN, or `*`")
                    continue
                self.template(val, p)
                out.append(Principal(t, val))
        return tuple(out)

    def conditions(self, block: dict, path: tuple) -> tuple[Condition, ...]:
        out = []
        for op, entries in block.items():
            quant, base, if_exists = _split_operator(op)
            for key, vals in entries.items():
                listed = isinstance(vals, list)
                values = tuple(_scalar_text(x) for x in (vals if listed else [vals]))
                for i, val in enumerate(values):
                    self.template(val, path + (op, key, i) if listed else path + (op, key))
                out.append(Condition(op, base, quant, if_exists, key, values, path + (op, key)))
        return tuple(out)

    def template(self, text: str, path: tuple):
        if "${" not in text:
            return
        if self.version != "2012-10-17":
            self.warn(path, f"`{text}` is literal text here: policy variables need Version `2012-10-17`", "add `\"Version\": \"2012-10-17\"` to the policy if a variable was meant")
            return
        if grammar.parse_template(text) is None:
            self.error(path, f"malformed policy variable in `{text}`", "write variables as `${aws:username}` or `${aws:PrincipalTag/key, 'default'}`")


def _a(kind: PolicyKind) -> str:
    return {
        PolicyKind.IDENTITY: "an identity",
        PolicyKind.RESOURCE: "a resource-based",
        PolicyKind.TRUST: "a role trust",
        PolicyKind.SCP: "a service control",
        PolicyKind.RCP: "a resource control",
        PolicyKind.BOUNDARY: "a permissions boundary",
        PolicyKind.SESSION: "a session",
    }[kind]


# --------------------------------------------------------------------------- entry points


def parse_document(
    doc: Any,
    kind: PolicyKind | str,
    name: str,
    source: Source,
    diags: Diagnostics,
    tolerant: bool = False,
) -> Optional[Policy]:
    """Decoded JSON → Policy.  Statements with errors are left out and each error is reported
    (strict mode raises on the first).  Returns None when the document as a whole is unusable."""
    kind = PolicyKind(kind)
    sk = _Skeleton()
    subs: list[_Skeleton] = []
    sk.policy(doc, subs)
    for part in [sk] + subs:
        for path, key in part.dups:
            line, col = source.position(path + (key,), key=True, occurrence=1)
            diags.add(Diagnostic(source.file, line, col, f"duplicate element `{key}`", "each key may appear once in a JSON object; AWS rejects the policy"))
    err = grammar.check_skeleton(sk.text())
    if err is not None:
        diags.add(_skeleton_diagnostic(doc, sk, err, source))
        if not isinstance(doc, dict) or not isinstance(doc.get("Statement", []), (list, dict)):
            return None
    bad_statements = set()
    for sub in subs:
        serr = grammar.check_skeleton(sub.text(), "statement")
        if serr is not None:
            diags.add(_skeleton_diagnostic(doc, sub, serr, source))
            bad_statements.add(sub.paths[0][0])
    if err is not None or bad_statements:
        return _lower(doc, kind, name, source, diags, skip=bad_statements, tolerant=tolerant)
    if "Statement" not in doc:
        line, col = source.position(())
        diags.add(Diagnostic(source.file, line, col, "policy document has no `Statement`", "add `\"Statement\": [...]` with at least one statement"))
        return None
    return _lower(doc, kind, name, source, diags, tolerant=tolerant)


def _lower(doc: dict, kind: PolicyKind, name: str, source: Source, diags: Diagnostics, skip=frozenset(), tolerant: bool = False) -> Policy:
    version = doc.get("Version") if isinstance(doc.get("Version"), str) else None
    low = _Lowering(kind, source, diags, version, tolerant)
    sts = doc.get("Statement", [])
    listed = isinstance(sts, list)
    statements = []
    for i, st in enumerate(sts if listed else [sts]):
        path = ("Statement", i) if listed else ("Statement",)
        if path in skip or not isinstance(st, dict):
            continue
        s = low.statement(st, i, path)
        if s is not None:
            statements.append(s)
    return Policy(kind, name, version, doc.get("Id") if isinstance(doc.get("Id"), str) else None, tuple(statements), source)


def parse_policy_text(
    text: str,
    kind: PolicyKind | str = PolicyKind.IDENTITY,
    file: str = "<policy>",
    name: Optional[str] = None,
    strict: bool = True,
    diags: Optional[Diagnostics] = None,
) -> tuple[Optional[Policy], Diagnostics]:
    diags = diags if diags is not None else Diagnostics(strict=strict)
    doc = decode_json(text, file)
    source = Source(file, text)
    return parse_document(doc, kind, name or file, source, diags), diags


def parse_policy_file(path: str | Path, kind: PolicyKind | str = PolicyKind.IDENTITY, strict: bool = True) -> tuple[Optional[Policy], Diagnostics]:
    text, name = read_text(path)
    return parse_policy_text(text, kind, name, name, strict)


def parse_policy(doc: Any, kind: PolicyKind | str = PolicyKind.IDENTITY, name: str = "<policy>", strict: bool = True) -> Policy:
    """A policy from an already-decoded document (or its JSON text); raises InputError when invalid."""
    if isinstance(doc, str):
        pol, _ = parse_policy_text(doc, kind, name, name, strict)
        return pol
    diags = Diagnostics(strict=strict)
    return parse_document(doc, kind, name, Source(name, None), diags)
