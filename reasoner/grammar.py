"""The Lark grammar of policy documents and of the languages inside their strings.

Loads ``grammar/policy.lark`` once.  Whole-token languages (action patterns, ARNs, condition
operators) are matched with the regular expressions of the grammar's own terminals; documents
(as skeletons, see the grammar) and strings with policy variables are parsed by Lark, each
distinct input once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from .paths import grammar_file


@lru_cache(maxsize=None)
def parser() -> Lark:
    return Lark(
        grammar_file("policy.lark").read_text(encoding="utf-8"),
        start=["policy", "statement", "template", "action_pattern", "arn", "account_id"],
        parser="lalr",
        lexer="contextual",
        propagate_positions=False,
        maybe_placeholders=False,
        cache=True,  # the analysed grammar is kept in the temp folder, keyed by its hash
    )


@lru_cache(maxsize=None)
def terminal_re(name: str) -> re.Pattern:
    for t in parser().terminals:
        if t.name == name:
            return re.compile(t.pattern.to_regexp(), re.S)
    raise KeyError(name)


def is_action_pattern(text: str) -> bool:
    return terminal_re("ACTION_PATTERN").fullmatch(text) is not None


def is_arn(text: str) -> bool:
    return terminal_re("ARN").fullmatch(text) is not None


def is_account_id(text: str) -> bool:
    return terminal_re("ACCOUNT_ID").fullmatch(text) is not None


def is_condition_operator(text: str) -> bool:
    return terminal_re("COND_OPERATOR").fullmatch(text) is not None


@dataclass(frozen=True)
class SkeletonError:
    offset: int  # character offset in the skeleton where the parser stopped
    expected: tuple[str, ...]


_checked: dict[tuple[str, str], "SkeletonError | None"] = {}


def check_skeleton(skeleton: str, start: str = "policy") -> SkeletonError | None:
    """None when the skeleton is valid for the rule ``start`` (``policy`` or ``statement``), else
    where the parser stopped and what it expected.  Each distinct skeleton is parsed once."""
    key = (skeleton, start)
    try:
        return _checked[key]
    except KeyError:
        pass
    try:
        parser().parse(skeleton, start=start)
        err = None
    except UnexpectedInput as e:
        expected = tuple(sorted(getattr(e, "expected", None) or getattr(e, "allowed", None) or ()))
        err = SkeletonError(getattr(e, "pos_in_stream", 0) or 0, expected)
    if len(_checked) > 100_000:
        _checked.clear()
    _checked[key] = err
    return err


@dataclass(frozen=True)
class Variable:
    """`${key}` or `${key, 'default'}`; escapes `${*}` `${?}` `${$}` have ``escape`` set."""

    key: str | None
    default: str | None = None
    escape: str | None = None


Part = "str | Variable"


@lru_cache(maxsize=None)
def _variable_re() -> re.Pattern:
    # the rule `variable: "${" (VAR_KEY [VAR_DEFAULT] | ESCAPE) "}"`, with the grammar's terminals
    key, default, escape = (terminal_re(t).pattern for t in ("VAR_KEY", "VAR_DEFAULT", "ESCAPE"))
    return re.compile(rf"\$\{{(?:(?:{key})(?:{default})?|(?:{escape}))\}}", re.S)


def is_template(text: str) -> bool:
    """Whether ``parse_template`` accepts the string: each `${` opens a well-formed variable (the
    text between variables is any text without `${`).  Checked with the grammar's terminals,
    without the parser."""
    pos = text.find("${")
    if pos < 0:
        return True
    match = _variable_re().match
    while pos >= 0:
        m = match(text, pos)
        if m is None:
            return False
        pos = text.find("${", m.end())
    return True


@lru_cache(maxsize=65536)
def parse_template(text: str) -> tuple | None:
    """Split a string into literal text and variables.  None when the text has a malformed
    `${...}`."""
    if "${" not in text:
        return (text,)
    try:
        tree = parser().parse(text, start="template")
    except UnexpectedInput:
        return None
    parts: list = []
    for child in tree.children:
        if isinstance(child, Token):
            parts.append(str(child))
            continue
        assert isinstance(child, Tree) and child.data == "variable"
        toks = [t for t in child.children if isinstance(t, Token)]
        if toks and toks[0].type == "ESCAPE":
            parts.append(Variable(None, None, str(toks[0])))
        else:
            key = str(toks[0])
            default = None
            if len(toks) > 1:
                d = str(toks[1])
                default = d[d.index("'") + 1 : -1]
            parts.append(Variable(key, default))
    return tuple(parts)
