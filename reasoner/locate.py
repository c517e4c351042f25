"""Exact line:column of a JSON value, found from its path, only when a position is reported.

Documents are decoded with the fast C decoder, which keeps no positions.  A diagnostic or a proof
that needs the place of ``Statement[2].Action[0]`` asks a :class:`Source` for it; the source scans
its text along that path and remembers, for every object or list it walked into, where each of its
members starts.  Asking for many places in one big document therefore costs one scan of each
container on the way, not one scan per question.
"""
from __future__ import annotations

import bisect
import json
import re
import weakref
import zlib
from collections import OrderedDict
from typing import Optional, Sequence, Union

PathElem = Union[str, int]

# One JSON token: a string, a structural character, or a bare word (number, true, false, null).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)
_WS = re.compile(r"[ \t\r\n]*")


class Source:
    """A text that policies were read from.  ``prefix`` is the JSON path of the policy document
    inside the text (a document nested in an account dump).  ``embedded`` marks a document that
    was a JSON *string* inside the file: positions then stop at that string.

    A long text (:data:`PACK_FROM` characters or more: an account's dump) is held by a
    :class:`_Packed`, which :func:`pack_long_texts` compresses (a long analysis calls it: a large
    estate's files are as large as the rest of its analysis, and only the few places a proof or a
    diagnostic cites are ever read from them); it is unpacked when a position in it is asked for."""

    __slots__ = ("file", "_held", "prefix", "embedded", "_index", "_lines")

    def __init__(self, file: str, text: Optional[str] = None, prefix: tuple = (), embedded: bool = False):
        self.file = file
        self._held = _Packed(text) if text is not None and len(text) >= PACK_FROM else text
        self.prefix = prefix
        self.embedded = embedded
        self._index: dict = {}
        self._lines: list = [None]  # shared with children

    @property
    def text(self) -> Optional[str]:
        held = self._held
        return held.unpacked() if isinstance(held, _Packed) else held

    def __repr__(self) -> str:
        return f"Source(file={self.file!r}, prefix={self.prefix!r}, embedded={self.embedded!r})"

    def child(self, prefix: Sequence[PathElem], embedded: bool = False) -> "Source":
        # one per policy document of a file: made without __init__, whose fresh index and line
        # table would be dropped at once (every field is set here)
        src = _new(Source)
        src.file = self.file
        src._held = self._held  # (the text as held: not unpacked for it)
        src.prefix = tuple(self.prefix) + tuple(prefix)
        src.embedded = embedded or self.embedded
        src._index = self._index  # same text: share what was learnt
        src._lines = self._lines
        return src

    def position(self, path: Sequence[PathElem] = (), key: bool = False, occurrence: int = -1) -> tuple[int, int]:
        """(line, column), 1-based, of the value at ``path`` under this source's prefix (of its key
        when ``key``).  A key given more than once is found at its last ``occurrence`` unless told
        otherwise (the decoder keeps the last value).  Falls back to the nearest enclosing value
        that exists; (0, 0) when there is no text."""
        if self._held is None:
            return (0, 0)
        if self.embedded:
            full, key = tuple(self.prefix), False
        else:
            full = tuple(self.prefix) + tuple(path)
        return self.line_col(self.offset(full, key, occurrence))

    def offset(self, path: tuple, key: bool = False, occurrence: int = -1) -> int:
        # (the text is read only for what was not learnt yet: a packed one is not unpacked)
        pos = self._index.get(-1)
        if pos is None:
            pos = self._index[-1] = _skip_ws(self.text, 0)
        for depth, elem in enumerate(path):
            last = depth == len(path) - 1
            members = self._members(pos)
            if members is None:
                break
            if isinstance(elem, int):
                if not isinstance(members, list) or not 0 <= elem < len(members):
                    break
                pos = members[elem]
            else:
                if not isinstance(members, dict) or elem not in members:
                    break
                places = members[elem]
                try:
                    key_at, value_at = places[occurrence if last else -1]
                except IndexError:
                    key_at, value_at = places[-1]
                if last and key:
                    return key_at
                pos = value_at
        return pos

    def _members(self, pos: int):
        """Offsets of the members of the container starting at ``pos``: a list of value offsets
        for a JSON list, a dict key -> [(key offset, value offset), ...] for an object.  Found
        container by container, along the paths asked: each member value is stepped over by the
        C JSON decoder (:func:`_scan_decoded`); text it cannot read (cut, not JSON, nested too
        deep) is read token by token (:func:`_scan`)."""
        got = self._index.get(pos)
        if got is None and pos not in self._index:
            try:
                got = _scan_decoded(self.text, pos)
            except (ValueError, IndexError, RecursionError):
                got = _scan(self.text, pos)
            self._index[pos] = got
        return got

    def line_col(self, offset: int) -> tuple[int, int]:
        starts = self._lines[0]
        if starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._lines[0] = starts  # every child source of this text sees it too
        line = bisect.bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1


_new = object.__new__

PACK_FROM = 1 << 18  # characters from which a source's text is kept compressed
UNPACKED = 4  # texts kept unpacked at a time, the most recently read


class _Packed:
    """A long text, as it was read until :func:`pack_long_texts` compresses it (zlib, its UTF-8
    bytes: lone surrogates, as decoding with ``surrogateescape`` leaves them, pass).  The last
    :data:`UNPACKED` packed texts read stay unpacked: positions are asked in runs over one file (a
    proof's statements, a file's diagnostics)."""

    __slots__ = ("text", "data", "__weakref__")

    def __init__(self, text: str):
        self.text: Optional[str] = text
        self.data: Optional[bytes] = None
        _LONG.add(self)

    def pack(self) -> None:
        if self.text is not None:
            self.data = zlib.compress(self.text.encode("utf-8", "surrogatepass"), 1)
            self.text = None
            _UNPACKED.pop(self, None)

    def unpacked(self) -> str:
        if self.text is not None:
            return self.text
        got = _UNPACKED.get(self)
        if got is not None:
            _UNPACKED.move_to_end(self)
            return got
        got = _UNPACKED[self] = zlib.decompress(self.data).decode("utf-8", "surrogatepass")
        while len(_UNPACKED) > UNPACKED:
            _UNPACKED.popitem(last=False)
        return got


def pack_long_texts() -> None:
    """Compress the long texts of every source alive (:class:`_Packed`).  Loading does not (it
    would take a sixth of a load's time); an analysis that runs long on a large estate does."""
    for held in list(_LONG):
        held.pack()


_LONG: "weakref.WeakSet[_Packed]" = weakref.WeakSet()
_UNPACKED: "OrderedDict[_Packed, str]" = OrderedDict()


_raw_decode = json.JSONDecoder().raw_decode
_scanstring = json.decoder.scanstring


def _scan_decoded(text: str, pos: int):
    """:func:`_scan`, with each member value stepped over by the C JSON decoder: the Python loop
    runs once per member, not once per token.  Raises ValueError / IndexError on text that is not
    JSON there (the caller then scans token by token)."""
    if pos >= len(text) or text[pos] not in "[{":
        return None
    is_obj = text[pos] == "{"
    close = "}" if is_obj else "]"
    members: dict | list = {} if is_obj else []
    ws, decode, scanstring = _WS.match, _raw_decode, _scanstring
    i = ws(text, pos + 1).end()
    if text[i] == close:
        return members
    while True:
        if is_obj:
            if text[i] != '"':
                raise ValueError("not a key")
            key_at = i
            key, i = scanstring(text, i + 1)
            i = ws(text, i).end()
            if text[i] != ":":
                raise ValueError("no colon")
            i = ws(text, i + 1).end()
            members.setdefault(key, []).append((key_at, i))
        else:
            members.append(i)
        _, i = decode(text, i)
        i = ws(text, i).end()
        if text[i] == close:
            return members
        if text[i] != ",":
            raise ValueError("not a member separator")
        i = ws(text, i + 1).end()


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def _scan(text: str, pos: int):
    """Members of the object or list that starts at ``pos`` (None if none starts there).  Scans
    the container once, at its own level, skipping nested containers by bracket counting."""
    if pos >= len(text) or text[pos] not in "[{":
        return None
    is_obj = text[pos] == "{"
    members: dict | list = {} if is_obj else []
    depth = 0
    expect_value = not is_obj  # in an object, the next string at depth 1 is a key
    key = None
    key_at = 0
    for m in _TOKEN.finditer(text, pos + 1):
        tok = m.group()
        c = tok[0]
        if depth == 0:
            if c in "]}":
                return members
            if c == ",":
                expect_value = not is_obj
                continue
            if c == ":":
                expect_value = True
                continue
            if is_obj and not expect_value:
                try:
                    key = json.loads(tok) if c == '"' else tok
                except ValueError:
                    key = tok
                key_at = m.start()
                continue
            # a value at this level
            if is_obj:
                members.setdefault(key, []).append((key_at, m.start()))
            else:
                members.append(m.start())
            expect_value = False
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
    return members
