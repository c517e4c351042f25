"""Front end: policy JSON text → typed :class:`~reasoner.model.Policy`, with located diagnostics.

The stages, in order:

1. ``decode``     text → Python values with the C JSON decoder (duplicate keys, NaN, bad bytes,
                  nesting and truncation become located diagnostics);
2. ``skeleton``   each top-level member, each statement member and each (operator, key) entry of
                  a Condition is written as its skeleton and checked against the grammar
                  (``grammar/policy.lark``); each distinct piece is parsed once per process, and
                  a piece that fails is written again with the JSON path of every token, so the
                  parser's stopping place becomes a line and column;
3. ``lower``      in the same pass over a statement, the typed model: string-or-list, principal
                  forms, operator names, policy variables, and the rules AWS enforces per policy
                  kind.  Every error of every statement is reported.

Positions are exact and computed only for what is reported (see :mod:`reasoner.locate`).
"""
from __future__ import annotations

import difflib
import gc
import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from . import grammar
from .diagnostics import Diagnostic, Diagnostics, InputError, code
from .locate import Source
from .model import PRINCIPAL_TYPES, Condition, Policy, PolicyKind, Principal, Statement

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


@contextmanager
def gc_paused(long_lived: bool = False):
    """Pause the cyclic garbage collector while building many small acyclic objects (decoded
    JSON, model, symbols): its passes over every live object cost a quarter of a bulk load and
    find nothing to free.  Reference counting still frees everything as usual.

    ``long_lived``: what is built stays (a loaded estate).  The objects made meanwhile then join
    the oldest generation as the collector resumes, instead of being scanned all at once by the
    next pass over the young generation, which finds nothing in them either (``gc.freeze`` and
    ``gc.unfreeze``: two list moves; skipped when the process keeps frozen objects of its own)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if long_lived and gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()



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
        raise InputError([_json_error(text, name, e)], unreadable=True) from None
    except ValueError as e:  # NaN / Infinity
        line, col = Source(name, text).line_col(_find_constant(text))
        raise InputError([Diagnostic(name, line, col, f"malformed JSON: {e}", "JSON numbers are finite; quote the value if it is text")], unreadable=True) from None
    except RecursionError:
        deep = _too_deep(text, max_depth)
        line, col = Source(name, text).line_col(deep) if deep is not None else (1, 1)
        raise InputError([Diagnostic(name, line, col, f"the JSON text nests more than {max_depth} levels deep", "no policy document nests this deep; is this the right file?")], unreadable=True) from None


def _json_error(text: str, name: str, e: json.JSONDecodeError) -> Diagnostic:
    src = Source(name, text)
    msg = e.msg[0].lower() + e.msg[1:]
    pos = e.pos
    before = text[:pos].rstrip()
    if pos < len(text) and text[pos] in "]}" and before.endswith(","):
        where = "list" if text[pos] == "]" else "object"
        line, col = src.line_col(len(before) - 1)
        return Diagnostic(name, line, col, f"malformed JSON: trailing comma before the end of an {where}" if where == "object" else "malformed JSON: trailing comma before the end of a list", "JSON allows no comma after the last item: remove it")
    if "trailing comma" in msg:  # newer Pythons say so themselves, at the comma
        return Diagnostic(name, e.lineno, e.colno, f"malformed JSON: {msg}", "JSON allows no comma after the last item: remove it")
    if "control character" in msg:
        c = ord(text[pos]) if pos < len(text) else 0
        return Diagnostic(name, e.lineno, e.colno, f"malformed JSON: control character `\\u{c:04x}` inside a string", "write it escaped (`\\n`, `\\u0000`) or remove it")
    if pos >= len(text.rstrip()) or (msg.startswith("unterminated string") and "\n" not in text[pos:]):
        line, col = src.line_col(len(text.rstrip()))
        return Diagnostic(name, line, col, f"malformed JSON: the text ends too early ({msg})", "the file looks truncated: is a `}` or `]` missing?")
    if msg.startswith("extra data"):
        return Diagnostic(name, e.lineno, e.colno, "malformed JSON: more text after the end of the document", "a file holds one JSON document; remove what follows it")
    return Diagnostic(name, e.lineno, e.colno, f"malformed JSON: {msg}", "fix the JSON syntax at this place")


def _find_constant(text: str) -> int:
    """Offset of the first bare `NaN` / `Infinity` / `-Infinity` (outside strings)."""
    for m in _JSON_TOKEN.finditer(text):
        if m.group() in ("NaN", "Infinity", "-Infinity"):
            return m.start()
    return 0


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)


# --------------------------------------------------------------------------- skeleton


_KEYWORDS = {k: f'"{k}"' for k in ("Allow", "Deny", "2012-10-17", "2008-10-17", "*")}


def _scalar_token(v: Any) -> Optional[str]:
    t = type(v)
    if t is str:
        return "s"
    if t is bool:
        return "b"
    if t is int or t is float:
        return "n"
    if v is None:
        return "z"
    return None


def _key_token(k: str) -> str:
    tok = _KEY_TOKENS.get(k)
    if tok is None:
        tok = (k + ":") if type(k) is str and _SAFE_KEY.match(k) else "@:"
        if len(_KEY_TOKENS) < 100_000:
            _KEY_TOKENS[k] = tok
    return tok


_KEY_TOKENS: dict[str, str] = {}  # key → its token, each distinct key matched once


def _skel(v: Any, depth: int = 0) -> str:
    """The skeleton of a value (see the grammar's header): the fast writer, without positions.
    A run of scalars of one kind in a list reads as one scalar."""
    tok = _scalar_token(v)
    if tok is not None:
        return tok
    if depth > MAX_DEPTH:
        return "@"
    if type(v) is list:
        parts = []
        prev = None
        for item in v:
            tok = _scalar_token(item)
            if tok is None:
                parts.append(_skel(item, depth + 1))
            elif tok != prev:
                parts.append(tok)
            prev = tok
        return "[" + ",".join(parts) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_key_token(k) + _skel(x, depth + 1) for k, x in v.items()) + "}"
    return "?"  # not a JSON value (a document built in Python): never valid


def _keyword_skel(v: Any) -> str:
    return _KEYWORDS.get(v, "@") if type(v) is str else _skel(v)


_GOOD_SKELETONS: set[str] = set()  # member skeletons the grammar accepted
_GOOD_TOP_SKELETONS: set[str] = set()  # the same for the members of a document
_STRING_MEMBER = {k: "{" + k + ":s}" for k in ("Sid", "Action", "NotAction", "Resource", "NotResource")}
_EFFECT_MEMBER = {v: "{Effect:" + t + "}" for v, t in _KEYWORDS.items()}  # a keyword value
_VERSION_MEMBER = {v: "{Version:" + t + "}" for v, t in _KEYWORDS.items()}
_LIST_MEMBER = {k: "{" + k + ":[s]}" for k in ("Action", "NotAction", "Resource", "NotResource")}


def _member_skeleton(k: str, v: Any) -> Optional[str]:
    """The skeleton of a one-member statement `{k: v}`, or None for a Condition map (checked in
    pieces, see :func:`_member_skeletons`).  Lists of strings known to be good take a short cut."""
    t = type(v)
    if t is str:
        if k == "Effect":
            return _EFFECT_MEMBER.get(v, "{Effect:@}")
        if k == "Principal" or k == "NotPrincipal":
            return "{" + k + (':"*"}' if v == "*" else ":s}")
        got = _STRING_MEMBER.get(k)
        return got if got is not None else "{" + _key_token(k) + "s}"
    if t is list and v:
        good = _GOOD_ACTIONS if k == "Action" or k == "NotAction" else _GOOD_RESOURCES if k == "Resource" or k == "NotResource" else None
        if good is not None:
            try:
                if good.issuperset(v):
                    return _LIST_MEMBER[k]
            except TypeError:  # an object or list inside: the long way
                pass
            else:
                if all(type(x) is str for x in v):  # strings not all checked yet: the same skeleton
                    return _LIST_MEMBER[k]
    elif k == "Condition" and isinstance(v, dict) and v:
        return None
    elif t is dict and (k == "Principal" or k == "NotPrincipal"):
        return "{" + k + ":" + _principal_skel(v) + "}"
    return "{" + _key_token(k) + _skel(v, 1) + "}"


def _principal_skel(v: dict) -> str:
    """``_skel(v, 1)`` of a Principal map, with a short cut for a string or a list of strings."""
    parts = []
    for pk, pv in v.items():
        t = type(pv)
        if t is str:
            parts.append(_key_token(pk) + "s")
        elif t is list and pv and all(type(x) is str for x in pv):
            parts.append(_key_token(pk) + "[s]")
        else:
            parts.append(_key_token(pk) + _skel(pv, 2))
    return "{" + ",".join(parts) + "}"


def _member_skeletons(k: str, v: dict) -> Iterator[tuple[str, dict]]:
    """The pieces a non-empty Condition map is checked as: one statement skeleton per (operator,
    key) entry, with the decoded member it stands for.  A Condition is a free sequence of such
    entries (and a statement a free sequence of members), so checking the pieces one by one
    accepts exactly what checking the whole would, and the pieces recur far more often."""
    for skeleton, op, ck in _condition_pieces(k, v):
        yield skeleton, _condition_member(k, v, op, ck)


_WHOLE_BLOCK = object()  # the "condition key" of a piece that is a whole operator block


def _condition_pieces(k: str, v: dict) -> Iterator[tuple[str, Any, Any]]:
    """The skeletons of :func:`_member_skeletons`, each with its operator and condition key (or
    ``_WHOLE_BLOCK`` when the operator's value is not a non-empty map): the member a piece
    stands for is only made to report it."""
    for op, block in v.items():
        if isinstance(block, dict) and block:
            string_piece = _STRING_PIECES.get((k, op))  # the piece of a string key with a string value
            if string_piece is None:
                string_piece = _string_piece(k, op)
            for ck, cv in block.items():
                if type(cv) is str and type(ck) is str:
                    yield string_piece, op, ck
                else:
                    yield "{" + k + ":{" + _key_token(op) + ("{k:" if type(ck) is str else "{@:") + _skel(cv, 3) + "}}}", op, ck
        else:
            yield "{" + k + ":{" + _key_token(op) + _skel(block, 2) + "}}", op, _WHOLE_BLOCK


_STRING_PIECES: dict[tuple, str] = {}


def _string_piece(k: str, op: Any) -> str:
    piece = "{" + k + ":{" + _key_token(op) + "{k:s}}}"
    if len(_STRING_PIECES) < 100_000:
        _STRING_PIECES[(k, op)] = piece
    return piece


def _condition_member(k: str, v: dict, op: Any, ck: Any) -> dict:
    block = v[op]
    return {k: {op: block}} if ck is _WHOLE_BLOCK else {k: {op: {ck: block[ck]}}}


def _top_skeleton(k: str, v: Any) -> str:
    if k == "Version":
        if type(v) is str:
            return _VERSION_MEMBER.get(v, "{Version:@}")
        return "{Version:" + _skel(v) + "}"
    if k == "Statement":
        if isinstance(v, dict):
            return "{Statement:{}}"
        if type(v) is list:
            for item in v:
                if not isinstance(item, dict):
                    break
            else:  # statements that are objects, each checked on its own: the common case
                return "{Statement:[{}]}" if v else "{Statement:[]}"
            parts = []
            prev = None
            for item in v:
                tok = "{}" if isinstance(item, dict) else _skel(item, 2)
                if tok != prev:
                    parts.append(tok)
                prev = tok
            return "{Statement:[" + ",".join(parts) + "]}"
    return "{" + _key_token(k) + _skel(v, 1) + "}"


class _Skeleton:
    """The slow writer, used only to report an error: writes a piece of a document as its
    skeleton and remembers the JSON path of every token, so that the parser's stopping place
    becomes a place in the file."""

    __slots__ = ("parts", "paths")

    def __init__(self):
        self.parts: list[str] = []
        self.paths: list[tuple] = []  # (path, is_key) per part

    def emit(self, tok: str, path: tuple, is_key: bool = False):
        self.parts.append(tok)
        self.paths.append((path, is_key))

    def key(self, k: str, path: tuple, condition_key: bool = False):
        self.emit(("k:" if type(k) is str else "@:") if condition_key else _key_token(k), path + (k,), True)

    def generic(self, v: Any, path: tuple, depth: int):
        tok = _scalar_token(v)
        if tok is not None:
            self.emit(tok, path)
        elif depth > MAX_DEPTH:
            self.emit("@", path)  # deeper than any valid document: an error at this place
        elif type(v) is list:
            self.emit("[", path)
            prev = None
            first = True
            for i, item in enumerate(v):
                tok = _scalar_token(item)
                if tok is not None and tok == prev:
                    continue  # a run of one kind of scalar reads as one
                prev = tok
                if not first:
                    self.emit(",", path)
                first = False
                self.generic(item, path + (i,), depth + 1)
            self.emit("]", path)
        elif not isinstance(v, dict):
            self.emit("?", path)
        else:
            self.emit("{", path)
            for j, (k, item) in enumerate(v.items()):
                if j:
                    self.emit(",", path)
                self.key(k, path)
                self.generic(item, path + (k,), depth + 1)
            self.emit("}", path)

    def keyword(self, v: Any, path: tuple):
        """A value that is a keyword (Version, Effect) is written verbatim."""
        if type(v) is str:
            self.emit(_KEYWORDS.get(v) or json.dumps(v), path)
        else:
            self.generic(v, path, 2)

    def policy_member(self, k: str, v: Any):
        """`{k: v}` as a document skeleton; statements that are objects are written `{}` (each is
        checked on its own)."""
        self.emit("{", ())
        self.key(k, ())
        p = (k,)
        if k == "Version":
            self.keyword(v, p)
        elif k == "Statement" and type(v) is list:
            self.emit("[", p)
            prev = None
            first = True
            for i, st in enumerate(v):
                tok = "{}" if isinstance(st, dict) else _scalar_token(st)
                if tok is not None and tok == prev and tok != "{}":
                    continue
                prev = tok
                if not first:
                    self.emit(",", p)
                first = False
                if isinstance(st, dict):
                    self.emit("{}", p + (i,))
                else:
                    self.generic(st, p + (i,), 2)
            self.emit("]", p)
        elif k == "Statement" and isinstance(v, dict):
            self.emit("{}", p)
        else:
            self.generic(v, p, 1)
        self.emit("}", ())

    def statement_member(self, member: dict, path: tuple):
        """A one-member statement (as made by :func:`_member_skeletons`) at ``path``."""
        self.emit("{", path)
        for k, v in member.items():
            self.key(k, path)
            p = path + (k,)
            if k == "Effect":
                self.keyword(v, p)
            elif k in ("Principal", "NotPrincipal") and type(v) is str:
                self.emit('"*"' if v == "*" else "s", p)
            elif k == "Condition" and isinstance(v, dict) and v:
                self.emit("{", p)
                for op, block in v.items():
                    self.key(op, p)
                    if isinstance(block, dict) and block:
                        self.emit("{", p + (op,))
                        for ck, cv in block.items():
                            self.key(ck, p + (op,), condition_key=True)
                            self.generic(cv, p + (op, ck), 4)
                        self.emit("}", p + (op,))
                    else:
                        self.generic(block, p + (op,), 3)
                self.emit("}", p)
            else:
                self.generic(v, p, 2)
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

_TOKEN_NAMES = {"s": "string", "n": "number", "b": "boolean", "z": "`null`", "[": "list", "{": "object", "{}": "object", "]": "end of the list", "}": "end of the object", ",": "further item", "@": "nesting", "?": "value that is not JSON"}


def _closest(word: str, choices: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6) or [c for c in choices if c.lower() == word.lower()][:1]


def _misspelt(d: dict, element: str, choices: Iterable[str]) -> bool:
    """Whether some unknown key of ``d`` is most likely a misspelling of ``element``."""
    return any(k not in choices and _closest(str(k), choices) == [element] for k in d)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = _closest(str(word), choices)
    return f"did you mean `{close[0]}`?" if close else ""


def _element_of(path: tuple) -> Optional[str]:
    for p in reversed(path):
        if isinstance(p, str) and (p in _SHAPES):
            return p
    return None


def _skeleton_diagnostic(doc: Any, sk: _Skeleton, err: grammar.SkeletonError, src: Source) -> Diagnostic:
    i = sk.token_at(err.offset) if err is not None else min(1, len(sk.parts) - 1)
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
            return Diagnostic(name, line, col, f"unknown element {code(k)} in a policy document", _suggest(k, TOP_ELEMENTS) or "a policy document has only `Version`, `Id` and `Statement`")
        if parent[-1] == "Condition":
            k = str(k)
            if k.split(":")[-1] == "NullIfExists":
                return Diagnostic(name, line, col, f"unknown condition operator {code(k)}", "`Null` takes no `IfExists` suffix: it already tests whether the key exists")
            hint = _suggest(k.split(":")[-1].replace("IfExists", ""), _CONDITION_OPERATORS)
            return Diagnostic(name, line, col, f"unknown condition operator {code(k)}", hint or "see the condition operators in the IAM JSON policy reference")
        if parent[-1] in ("Principal", "NotPrincipal"):
            return Diagnostic(name, line, col, f"unknown principal type {code(k)}", _suggest(k, PRINCIPAL_TYPES) or "use `AWS`, `Service`, `Federated` or `CanonicalUser`")
        if parent[-1] == "Statement" or isinstance(parent[-1], int):
            return Diagnostic(name, line, col, f"unknown element {code(k)} in a statement", _suggest(k, STATEMENT_ELEMENTS) or "a statement has only " + ", ".join(f"`{e}`" for e in STATEMENT_ELEMENTS))
        elem = _element_of(parent) or "this element"
        return Diagnostic(name, line, col, f"unexpected key {code(k)} in `{elem}`", f"`{elem}` must be {_SHAPES.get(elem, 'as the IAM policy grammar says')}")
    elem = _element_of(path)
    value = _value_at(doc, path)
    if elem == "Effect" and isinstance(value, str):
        return Diagnostic(name, line, col, f"{code(value)} is not a valid effect", "`Effect` must be exactly `Allow` or `Deny` (case-sensitive)")
    if elem == "Version" and isinstance(value, str):
        return Diagnostic(name, line, col, f"unsupported policy version {code(value)}", "`Version` must be `2012-10-17` (or the older `2008-10-17`)")
    if elem in ("Principal", "NotPrincipal") and isinstance(value, str):
        return Diagnostic(name, line, col, f"`{elem}` given as the string {code(value)}", "only `*` may stand alone; write a map such as `{\"AWS\": \"arn:aws:iam::111122223333:root\"}` (or `Service` / `Federated`)")
    found = _TOKEN_NAMES.get(tok, "value")
    if tok == "]" and elem in ("Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal"):
        what = path[-1] if path[-1] in PRINCIPAL_TYPES else elem
        return Diagnostic(name, line, col, f"empty list in `{what}`", f"`{what}` must be a string or a non-empty list of strings")
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


def _scalar_text(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is str:
        return v
    return json.dumps(v)


_OPERATORS: dict[str, tuple[Optional[str], str, bool]] = {}


def _split_operator(op: str) -> tuple[Optional[str], str, bool]:
    """`ForAnyValue:StringLikeIfExists` -> ("ForAnyValue", "StringLike", True)."""
    got = _OPERATORS.get(op)
    if got is None:
        name, quant = op, None
        if name.startswith("ForAllValues:"):
            quant, name = "ForAllValues", name[13:]
        elif name.startswith("ForAnyValue:"):
            quant, name = "ForAnyValue", name[12:]
        if_exists = name.endswith("IfExists")
        if if_exists:
            name = name[:-8]
        got = _OPERATORS[op] = (quant, name, if_exists)
    return got


# Strings already known to be valid, so each distinct string is checked once per process.
_GOOD_ACTIONS: set[str] = set()
_GOOD_RESOURCES: set[str] = set()
_GOOD_AWS_PRINCIPALS: set[str] = set()


def _is_resource(r: str) -> bool:
    return r == "*" or grammar.is_arn(r) or r.startswith("${") or "*" in r.split(":", 1)[0]


def _is_aws_principal(v: str) -> bool:
    return v == "*" or grammar.is_arn(v) or grammar.is_account_id(v) or _UNIQUE_ID.match(v) is not None


class _Lowering:
    """The typed pass over one document: member shapes (through the grammar), then the rules AWS
    enforces, per policy kind.  Every problem found is reported; a statement with an error is left
    out of the model."""

    __slots__ = ("tolerant", "doc", "kind", "takes_principal", "src", "diags", "version", "variables", "bad", "fine_elements")

    def __init__(self, doc: dict, kind: PolicyKind, src: Source, diags: Diagnostics, version: Optional[str], tolerant: bool = False):
        self.tolerant = tolerant
        self.doc = doc
        self.kind = kind
        self.takes_principal = kind.takes_principal
        self.src = src
        self.diags = diags
        self.version = version
        self.variables = version == "2012-10-17"
        self.bad = False
        self.fine_elements = _FINE_ELEMENTS[kind]

    def error(self, path: tuple, message: str, hint: str, key: bool = False, fatal: bool = False):
        """An error leaves the statement out.  In tolerant mode (evaluating policies as given, e.g.
        a simulated request) an error that leaves the statement's meaning clear is a warning and
        the statement is kept: an invalid action pattern matches nothing, an element not allowed
        in this kind of policy is ignored by the evaluation."""
        line, col = self.src.position(path, key=key)
        if self.tolerant and not fatal:
            self.diags.add(Diagnostic(self.src.file, line, col, message, hint, "warning"))
            return
        self.bad = True
        self.diags.add(Diagnostic(self.src.file, line, col, message, hint))

    def warn(self, path: tuple, message: str, hint: str):
        line, col = self.src.position(path)
        self.diags.add(Diagnostic(self.src.file, line, col, message, hint, "warning"))

    def duplicates(self, d: dict, path: tuple):
        seen: dict[str, int] = {}
        for k in d.duplicates:
            n = seen[k] = seen.get(k, 0) + 1
            line, col = self.src.position(path + (k,), key=True, occurrence=n)
            self.bad = True
            self.diags.add(Diagnostic(self.src.file, line, col, f"duplicate element {code(k)}", "each key may appear once in a JSON object; AWS rejects the policy"))

    def condition_duplicates(self, cond: dict, path: tuple):
        if type(cond) is _Duplicates:
            self.duplicates(cond, path)
        for op, block in cond.items():
            if type(block) is _Duplicates:
                self.duplicates(block, path + (op,))

    def shape_errors(self, member: dict, path: tuple, skeleton: str):
        """Report why a statement member does not fit the grammar."""
        sk = _Skeleton()
        sk.statement_member(member, path)
        err = grammar.check_skeleton(sk.text(), "statement") or grammar.check_skeleton(skeleton, "statement")
        self.bad = True
        self.diags.add(_skeleton_diagnostic(self.doc, sk, err, self.src))

    # ------------------------------------------------------------------ statements

    def statement(self, st: dict, index: int, path: tuple) -> Optional[Statement]:
        self.bad = False
        if type(st) is _Duplicates:
            self.duplicates(st, path)
        shaped = {}  # the members whose shape is right
        unknown = None
        good = _GOOD_SKELETONS
        for k, v in st.items():
            if type(v) is str:
                skeleton = _STRING_MEMBER.get(k)  # Sid, Action, Resource ...
                if skeleton is None:
                    skeleton = _EFFECT_MEMBER.get(v, "{Effect:@}") if k == "Effect" else _member_skeleton(k, v)
            else:
                skeleton = _member_skeleton(k, v)
            if skeleton is not None:
                if skeleton in good:
                    shaped[k] = v
                    continue
                if grammar.check_skeleton(skeleton, "statement") is None:
                    good.add(skeleton)
                    shaped[k] = v
                    continue
                self.shape_errors({k: v}, path, skeleton)
                ok = False
            else:  # a Condition map, checked in pieces
                ok = True
                for skeleton, op, ck in _condition_pieces(k, v):
                    if skeleton not in good:
                        if grammar.check_skeleton(skeleton, "statement") is not None:
                            self.shape_errors(_condition_member(k, v, op, ck), path, skeleton)
                            ok = False
                        else:
                            good.add(skeleton)
                if ok:
                    shaped[k] = v
                    if type(v) is _Duplicates or _Duplicates in map(type, v.values()):
                        self.condition_duplicates(v, path + (k,))
                    continue
            if k not in _STATEMENT_SET:
                unknown = unknown or []
                unknown.append(str(k))
        if "Principal" in shaped or "NotPrincipal" in shaped:
            for el in ("Principal", "NotPrincipal"):
                if type(shaped.get(el)) is _Duplicates:
                    self.duplicates(shaped[el], path + (el,))
        if unknown:  # a misspelt element counts as the element it was meant to be
            present = set(st)
            for k in unknown:
                present.update(_closest(k, STATEMENT_ELEMENTS))
            self.element_rules(st, present, path)
        else:
            elements = tuple(st)
            if elements not in self.fine_elements:
                before = len(self.diags.items)
                self.element_rules(st, st, path)
                if len(self.diags.items) == before and self.kind is not _RCP and "NotPrincipal" not in st:
                    # these rules then depend on nothing but the elements present and the kind
                    if len(self.fine_elements) > 10_000:
                        self.fine_elements.clear()
                    self.fine_elements.add(elements)

        version = self.version
        el = "Action" if "Action" in shaped else "NotAction"
        actions = shaped.get(el)
        if actions is not None:
            actions = (actions,) if type(actions) is str else tuple(actions)
            if not _GOOD_ACTIONS.issuperset(actions):
                listed = type(shaped[el]) is list
                for i, a in enumerate(actions):
                    if a in _GOOD_ACTIONS:
                        continue
                    if grammar.is_action_pattern(a):
                        _GOOD_ACTIONS.add(a)
                    else:
                        self.error(path + (el, i) if listed else path + (el,), f"{code(a)} is not an action", "write `service:ActionName` (wildcards `*` and `?` allowed), e.g. `s3:GetObject`")
        resources = None
        el = "Resource" if "Resource" in shaped else "NotResource"
        if el in shaped:
            resources = (shaped[el],) if type(shaped[el]) is str else tuple(shaped[el])
            if not _GOOD_RESOURCES.issuperset(resources):
                listed = type(shaped[el]) is list
                for i, r in enumerate(resources):
                    if r in _GOOD_RESOURCES:
                        continue
                    p = path + (el, i) if listed else path + (el,)
                    if not _is_resource(r):
                        self.error(p, f"{code(r)} is not an ARN", "write the resource's ARN (`arn:partition:service:region:account:resource`) or `*`")
                    elif self.template(r, p):
                        _GOOD_RESOURCES.add(r)
        principals = None
        el = "Principal" if "Principal" in shaped else "NotPrincipal"
        if el in shaped:
            principals = self.principal(shaped[el], path + (el,))
        conditions = self.conditions(shaped["Condition"], path + ("Condition",)) if "Condition" in shaped else ()
        if self.bad:
            return None
        return Statement(
            index,  # index, sid, effect
            st.get("Sid"),
            st["Effect"],
            actions,  # actions, not_action
            "NotAction" in st,
            resources,  # resources, not_resource
            "NotResource" in st,
            principals,  # principals, not_principal
            "NotPrincipal" in st,
            conditions,
            path,
        )

    def element_rules(self, st: dict, present: set, path: tuple):
        """Which elements a statement must have, may not have, or may not have together."""
        kind = self.kind
        if "Effect" not in present:
            self.error(path, "statement has no `Effect`", "add `\"Effect\": \"Allow\"` or `\"Effect\": \"Deny\"`", fatal=True)
        if "Action" in st and "NotAction" in st:
            self.error(path + ("NotAction",), "statement has both `Action` and `NotAction`", "a statement takes exactly one of them", key=True, fatal=True)
        elif "Action" not in present and "NotAction" not in present:
            self.error(path, "statement has neither `Action` nor `NotAction`", "add the actions the statement is about", fatal=True)
        elif "NotAction" in st and kind is PolicyKind.RCP:
            self.error(path + ("NotAction",), "`NotAction` is not allowed in a resource control policy", "list the actions with `Action`", key=True)
        has_res = "Resource" in present or "NotResource" in present
        if "Resource" in st and "NotResource" in st:
            self.error(path + ("NotResource",), "statement has both `Resource` and `NotResource`", "a statement takes exactly one of them", key=True, fatal=True)
        elif kind is PolicyKind.TRUST and has_res:
            el = "Resource" if "Resource" in st else "NotResource"
            self.error(path + (el,), f"`{el}` is not allowed in a role trust policy", "a trust policy is about the role itself: remove the element", key=True)
        elif kind not in (PolicyKind.TRUST, PolicyKind.RESOURCE) and not has_res:
            # (a resource-based policy may leave Resource out: Amazon ECR repository policies do,
            # and the statement is then about the resource the policy is attached to)
            self.error(path, "statement has neither `Resource` nor `NotResource`", "add `\"Resource\": \"*\"` or the ARNs the statement is about", fatal=True)
        has_pr = "Principal" in present or "NotPrincipal" in present
        if "Principal" in st and "NotPrincipal" in st:
            self.error(path + ("NotPrincipal",), "statement has both `Principal` and `NotPrincipal`", "a statement takes exactly one of them", key=True, fatal=True)
        elif has_pr and not self.takes_principal:
            el = "Principal" if "Principal" in st else "NotPrincipal"
            self.error(path + (el,), f"`{el}` is not allowed in {_a(kind)} policy", "such a policy applies to the principals it is attached to: remove the element", key=True)
        elif self.takes_principal and not has_pr:
            self.error(path, f"statement has no `Principal` (required in {_a(kind)} policy)", "name who the statement is about, e.g. `\"Principal\": {\"AWS\": \"arn:aws:iam::111122223333:root\"}`", fatal=True)
        elif "NotPrincipal" in st and kind is not PolicyKind.RESOURCE:
            self.error(path + ("NotPrincipal",), f"`NotPrincipal` is not allowed in {_a(kind)} policy", "use `Principal` with a condition on `aws:PrincipalArn` instead", key=True)
        elif "NotPrincipal" in st and st.get("Effect") == "Allow":
            self.error(path + ("NotPrincipal",), "`NotPrincipal` is only supported with `\"Effect\": \"Deny\"`", "use `Principal` to allow, or make the statement a `Deny`", key=True)
        elif kind is PolicyKind.RCP and "Principal" in st and st["Principal"] != "*":
            self.error(path + ("Principal",), "the `Principal` of a resource control policy must be `*`", "write `\"Principal\": \"*\"` and narrow it with a condition on `aws:PrincipalArn`")

    def principal(self, v: Any, path: tuple) -> tuple[Principal, ...]:
        if type(v) is str:
            return (_ANY_PRINCIPAL,)
        out = []
        for t, vals in v.items():
            listed = type(vals) is list
            for i, val in enumerate(vals if listed else (vals,)):
                if t == "AWS" and val not in _GOOD_AWS_PRINCIPALS:
                    p = path + (t, i) if listed else path + (t,)
                    if not _is_aws_principal(val):
                        self.error(p, f"{code(val)} is not a valid AWS principal", "use an account id, an IAM or STS ARN, or `*`")
                        continue
                    if self.template(val, p):
                        _GOOD_AWS_PRINCIPALS.add(val)
                elif "${" in val:  # (the grammar let only strings through)
                    self.template(val, path + (t, i) if listed else path + (t,))
                out.append(Principal(t, val))
        return tuple(out)

    def conditions(self, block: dict, path: tuple) -> tuple[Condition, ...]:
        out = []
        for op, entries in block.items():
            quant, base, if_exists = _split_operator(op)
            for key, vals in entries.items():
                listed = type(vals) is list
                values = tuple(map(_scalar_text, vals)) if listed else (vals,) if type(vals) is str else (_scalar_text(vals),)
                for i, val in enumerate(values):
                    if "${" in val:
                        self.template(val, path + (op, key, i) if listed else path + (op, key))
                out.append(Condition(op, base, quant, if_exists, key, values, path + (op, key)))
        return tuple(out)

    def template(self, text: str, path: tuple) -> bool:
        """Check the policy variables of a string; True when it has none (nothing to report ever)."""
        if "${" not in text:
            return True
        if not self.variables:
            self.warn(path, f"{code(text)} is literal text here: policy variables need `\"Version\": \"2012-10-17\"`", "add `\"Version\": \"2012-10-17\"` to the policy if a variable was meant")
        elif not grammar.is_template(text):
            self.error(path, f"malformed policy variable in {code(text)}", "write variables as `${aws:username}` or `${aws:PrincipalTag/key, 'default'}`")
        return False


_STATEMENT_SET = frozenset(STATEMENT_ELEMENTS)
# Per policy kind, the element lists (keys of a statement, in order) that the element rules
# already passed without a word.
_FINE_ELEMENTS: dict[PolicyKind, set[tuple]] = {k: set() for k in PolicyKind}
# (reading a member off the enum class is slow enough to show in a bulk load)
_RCP = PolicyKind.RCP
_STATEMENT_PATHS = [("Statement", i) for i in range(256)]  # shared by the statements of every document
_ORGANIZATION_KINDS = (PolicyKind.SCP, PolicyKind.RCP)
_ANY_PRINCIPAL = Principal("*", "*")


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
    """Decoded JSON → Policy.  Every problem is reported to ``diags`` (in strict mode the first
    error raises InputError); statements with errors are left out.  Returns None when the
    document as a whole is unusable."""
    if type(kind) is not PolicyKind:
        kind = PolicyKind(kind)
    file = source.file
    if not isinstance(doc, dict):
        line, col = source.position(())
        diags.add(Diagnostic(file, line, col, f"a policy document must be a JSON object, not {_describe(doc)}", "write `{\"Version\": \"2012-10-17\", \"Statement\": [...]}`"))
        return None
    version = doc.get("Version")
    version = version if type(version) is str else None
    low = _Lowering(doc, kind, source, diags, version, tolerant)
    if type(doc) is _Duplicates:
        low.duplicates(doc, ())
    usable = True
    for k, v in doc.items():
        skeleton = _top_skeleton(k, v)
        if skeleton in _GOOD_TOP_SKELETONS:
            continue
        if grammar.check_skeleton(skeleton, "policy") is None:
            _GOOD_TOP_SKELETONS.add(skeleton)
        else:
            sk = _Skeleton()
            sk.policy_member(k, v)
            err = grammar.check_skeleton(sk.text(), "policy") or grammar.check_skeleton(skeleton, "policy")
            diags.add(_skeleton_diagnostic(doc, sk, err, source))
            if k == "Statement" and type(v) is not list:
                usable = False
    if "Statement" not in doc:
        usable = False
        if not _misspelt(doc, "Statement", TOP_ELEMENTS):
            line, col = source.position(())
            diags.add(Diagnostic(file, line, col, "policy document has no `Statement`", "add `\"Statement\": [...]` with at least one statement"))
    if kind in _ORGANIZATION_KINDS and (version == "2008-10-17" or "Version" not in doc):
        # AWS Organizations: every SCP and RCP has `"Version": "2012-10-17"` (other values are
        # reported above by the grammar)
        line, col = source.position(("Version",) if "Version" in doc else ())
        diags.add(Diagnostic(file, line, col, f"{_a(kind)} policy must have `\"Version\": \"2012-10-17\"`", "write `\"Version\": \"2012-10-17\"` in the policy"))
    if not usable:
        return None
    sts = doc["Statement"]
    statements = []
    if type(sts) is list:
        for i, st in enumerate(sts):
            if isinstance(st, dict):
                s = low.statement(st, i, _STATEMENT_PATHS[i] if i < 256 else ("Statement", i))
                if s is not None:
                    statements.append(s)
    else:
        s = low.statement(sts, 0, ("Statement",))
        if s is not None:
            statements.append(s)
    doc_id = doc.get("Id")
    return Policy(kind, name, version, doc_id if type(doc_id) is str else None, tuple(statements), source)


def parse_policy_text(
    text: str,
    kind: PolicyKind | str = PolicyKind.IDENTITY,
    file: str = "<policy>",
    name: Optional[str] = None,
    strict: bool = True,
    diags: Optional[Diagnostics] = None,
) -> tuple[Optional[Policy], Diagnostics]:
    """Policy JSON text → (policy or None, diagnostics).  Text that is not JSON raises InputError
    (``unreadable``); with ``strict`` the first error in the policy raises InputError too."""
    diags = diags if diags is not None else Diagnostics(strict=strict)
    kind = PolicyKind(kind)
    source = Source(file, text)
    known = _documents.get((text, kind))
    if known is not None:  # the same document again (a managed policy in every account)
        version, doc_id, statements = known
        return Policy(kind, name or file, version, doc_id, statements, source), diags
    before = len(diags.items)
    with gc_paused():
        policy = parse_document(decode_json(text, file), kind, name or file, source, diags)
    if policy is not None and len(diags.items) == before:
        if len(_documents) >= 4096:
            _documents.clear()
        _documents[(text, kind)] = (policy.version, policy.id, policy.statements)
    return policy, diags


# Valid documents already parsed, by content and kind: the typed statements carry no file and no
# name (their positions are paths, resolved against each file's own text), so they are shared.
_documents: dict[tuple[str, PolicyKind], tuple] = {}


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
