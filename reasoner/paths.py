"""Where the grammar and encoding files live.

In a wheel they are shipped inside the package as ``reasoner/_data/{grammar,encodings}``; in a
source checkout (or an editable install) they are the top-level ``grammar/`` and ``encodings/``
folders.  This module is the one place that knows.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def _root(kind: str) -> Path:
    for candidate in (_PKG / "_data" / kind, _PKG.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {kind} files of iam-reasoner are missing from this installation")


def grammar_dir() -> Path:
    return _root("grammar")


def encodings_dir() -> Path:
    return _root("encodings")


def grammar_file(name: str) -> Path:
    return grammar_dir() / name


def encoding_file(name: str) -> Path:
    return encodings_dir() / name
