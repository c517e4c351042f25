"""Model → ASP facts, as clingo symbols (never program text).

The schema is documented, predicate by predicate, in ``encodings/doc.lp`` (``FACT_SCHEMA_VERSION``
must match the version written there).  Policies are numbered by the caller (``pid``): the number
is the handle by which encodings and answers refer back to the :class:`~reasoner.model.Policy`.
"""
from __future__ import annotations

from typing import Iterable

from clingo import Function, Number, String, Symbol

from .model import Policy
from .parse import gc_paused

FACT_SCHEMA_VERSION = 3

_strings: dict[str, Symbol] = {}
_numbers: list[Symbol] = [Number(i) for i in range(1024)]
_constants: dict[str, Symbol] = {}


def string(s: str) -> Symbol:
    sym = _strings.get(s)
    if sym is None:
        if len(_strings) > 500_000:
            _strings.clear()
        sym = _strings[s] = String(s)
    return sym


_more_numbers: dict[int, Symbol] = {}


def number(n: int) -> Symbol:
    """The symbol of an integer; one object per value (callers may compare symbols by identity)."""
    if 0 <= n < 1024:
        return _numbers[n]
    sym = _more_numbers.get(n)
    if sym is None:
        if len(_more_numbers) > 1_000_000:
            _more_numbers.clear()
        sym = _more_numbers[n] = Number(n)
    return sym


def constant(name: str) -> Symbol:
    sym = _constants.get(name)
    if sym is None:
        sym = _constants[name] = Function(name)
    return sym


def fact(name: str, *args: Symbol) -> Symbol:
    return Function(name, args)


_PRINCIPAL_TYPE = {"AWS": "aws", "Service": "service", "Federated": "federated", "CanonicalUser": "canonical_user", "*": "any"}
_lower: dict[str, Symbol] = {}
_EFFECT = {"Allow": Function("allow"), "Deny": Function("deny")}


def _lowered(s: str) -> Symbol:
    sym = _lower.get(s)
    if sym is None:
        if len(_lower) > 500_000:
            _lower.clear()
        sym = _lower[s] = string(s.lower())
    return sym


def policy_facts(pid: int, policy: Policy) -> list[Symbol]:
    """The facts of one policy (see encodings/doc.lp, section "policies"), as clingo symbols.
    Every string argument is a clingo string symbol, made once per distinct string; the cost is
    clingo's symbol constructor, so the loop below does nothing else."""
    F = Function
    S_ = string
    out: list[Symbol] = []
    add = out.append
    P = number(pid)
    with gc_paused():
        add(F("policy", (P, constant(policy.kind.value))))
        add(F("policy_name", (P, S_(policy.name))))
        if policy.version is not None:
            add(F("policy_version", (P, S_(policy.version))))
        for st in policy.statements:
            S = number(st.index)
            add(F("stmt", (P, S, _EFFECT[st.effect])))
            if st.sid is not None:
                add(F("sid", (P, S, S_(st.sid))))
            if st.not_action:
                add(F("not_action", (P, S)))
            for a in st.actions:
                add(F("action", (P, S, _lowered(a))))
            if st.resources is None:
                add(F("no_resource", (P, S)))
            else:
                if st.not_resource:
                    add(F("not_resource", (P, S)))
                for r in st.resources:
                    add(F("resource", (P, S, S_(r))))
            if st.principals is None:
                add(F("no_principal", (P, S)))
            else:
                if st.not_principal:
                    add(F("not_principal", (P, S)))
                for pr in st.principals:
                    add(F("principal", (P, S, constant(_PRINCIPAL_TYPE[pr.type]), S_(pr.value))))
            for c, cond in enumerate(st.conditions):
                C = number(c)
                add(F("cond", (P, S, C, S_(cond.base), _lowered(cond.key))))
                if cond.quantifier == "ForAllValues":
                    add(F("cond_for_all_values", (P, S, C)))
                elif cond.quantifier == "ForAnyValue":
                    add(F("cond_for_any_value", (P, S, C)))
                if cond.if_exists:
                    add(F("cond_if_exists", (P, S, C)))
                for i, v in enumerate(cond.values):
                    add(F("cond_value", (P, S, C, number(i), S_(v))))
    return out


def facts_text(symbols: Iterable[Symbol]) -> str:
    """Facts as clingo-readable text (for people and for `iam-reasoner facts`): clingo itself
    writes each symbol, so every string is escaped the way clingo reads it back."""
    return "".join(f"{sym}.\n" for sym in symbols)


def add_facts(backend, symbols: Iterable[Symbol]) -> int:
    """Add facts through a clingo backend; returns how many."""
    n = 0
    add_atom, add_rule = backend.add_atom, backend.add_rule
    for sym in symbols:
        add_rule([add_atom(sym)])
        n += 1
    return n
