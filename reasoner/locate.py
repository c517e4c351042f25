"""Exact line:column of a JSON value, found from its path, only when a position is reported.

Documents are decoded with the fast C decoder, which keeps no positions.  A diagnostic or a proof
that needs the place of ``Statement[2].Action[0]`` asks a :class:`Source` for it; the source scans
its text along that path (skipping siblings by bracket matching) and remembers what it found.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence, Union

PathElem = Union[str, int]
Path = tuple

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)
_WS = re.compile(r"\s*")


@dataclass(eq=False)
class Source:
    """A text that policies were read from.  ``prefix`` is the JSON path of the policy document
    inside the text (a document nested in an account dump), ``label`` names it in messages."""

    file: str
    text: str | None = None
    prefix: tuple = ()
    embedded: bool = False  # the document was a JSON string inside the file: positions stop there
    _cache: dict = field(default_factory=dict, repr=False)
    _lines: list | None = field(default=None, repr=False)

    def child(self, prefix: Sequence[PathElem], embedded: bool = False) -> "Source":
        return Source(self.file, self.text, tuple(self.prefix) + tuple(prefix), embedded or self.embedded)

    def position(self, path: Sequence[PathElem] = (), key: bool = False, occurrence: int = 0) -> tuple[int, int]:
        """(line, column), 1-based, of the value at ``path`` under this source's prefix (of its key
        when ``key``).  Falls back to the nearest enclosing value that exists."""
        if self.text is None:
            return (0, 0)
        full = self.prefix if self.embedded else self.prefix + tuple(path)
        if self.embedded:
            key = False
        offset = _locate(self.text, full, key, occurrence, self._cache)
        return self.line_col(offset)

    def line_col(self, offset: int) -> tuple[int, int]:
        if self._lines is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._lines = starts
        import bisect

        line = bisect.bisect_right(self._lines, offset)
        return line, offset - self._lines[line - 1] + 1


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()


def _skip_value(text: str, pos: int) -> int:
    """Offset just past the JSON value starting at ``pos``."""
    depth = 0
    for m in _TOKEN.finditer(text, pos):
        tok = m.group()
        c = tok[0]
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth <= 0:
                return m.end()
        elif depth == 0:
            return m.end()
    return len(text)


def _locate(text: str, path: tuple, key: bool, occurrence: int, cache: dict) -> int:
    start_key = (path, key, occurrence)
    if start_key in cache:
        return cache[start_key]
    pos = _skip_ws(text, 0)
    best = pos
    for depth, elem in enumerate(path):
        last = depth == len(path) - 1
        found = _child(text, pos, elem, key and last, occurrence if last else 0)
        if found is None:
            break
        pos = found
        best = pos
    cache[start_key] = best
    return best


def _child(text: str, pos: int, elem: PathElem, want_key: bool, occurrence: int):
    if pos >= len(text):
        return None
    opener = text[pos]
    if isinstance(elem, int) and opener == "[":
        i = _skip_ws(text, pos + 1)
        for _ in range(elem):
            if i >= len(text) or text[i] == "]":
                return None
            i = _skip_ws(text, _skip_value(text, i))
            if i < len(text) and text[i] == ",":
                i = _skip_ws(text, i + 1)
        return i if i < len(text) and text[i] != "]" else None
    if isinstance(elem, str) and opener == "{":
        i = _skip_ws(text, pos + 1)
        seen = 0
        while i < len(text) and text[i] == '"':
            m = _TOKEN.match(text, i)
            import json

            try:
                name = json.loads(m.group())
            except ValueError:
                return None
            key_at = i
            i = _skip_ws(text, m.end())
            if i >= len(text) or text[i] != ":":
                return None
            i = _skip_ws(text, i + 1)
            if name == elem:
                if seen == occurrence:
                    return key_at if want_key else i
                seen += 1
            i = _skip_ws(text, _skip_value(text, i))
            if i < len(text) and text[i] == ",":
                i = _skip_ws(text, i + 1)
        return None
    return None
