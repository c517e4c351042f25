"""Structured problems found in user input.

A diagnostic names a place (file, line, column), says what is wrong in one lowercase sentence with
the user's text in backticks, and gives a hint.  ``Diagnostics`` collects them; in strict mode the
first error raises ``InputError``, in lenient mode errors are kept and work goes on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    message: str
    hint: str = ""
    severity: str = "error"  # "error" | "warning"

    def as_json(self) -> dict:
        return {"line": self.line, "column": self.column, "message": self.message, "hint": self.hint}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class InputError(Exception):
    """Input that cannot be used; carries its diagnostics.  ``unreadable`` marks input that is not
    even JSON (or not readable at all), which the CLI reports with exit code 2."""

    def __init__(self, diagnostics: Iterable[Diagnostic], unreadable: bool = False):
        self.diagnostics = list(diagnostics)
        self.unreadable = unreadable
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class Diagnostics:
    strict: bool = True
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, d: Diagnostic) -> None:
        self.items.append(d)
        if self.strict and d.severity == "error":
            raise InputError([d])

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def code(text: object, limit: int = 80) -> str:
    """User text for a message: in backticks, on one line (control characters escaped), and cut
    to ``limit`` characters."""
    s = _CONTROL.sub(lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(m.group(), f"\\u{ord(m.group()):04x}"), str(text))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return f"`{s}`"
