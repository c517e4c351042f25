"""Model → ASP facts, as clingo symbols (never program text).

The schema is documented, predicate by predicate, in ``encodings/doc.lp`` (``FACT_SCHEMA_VERSION``
must match the version written there).  Policies are numbered by the caller (``pid``): the number
is the handle by which encodings and answers refer back to the :class:`~reasoner.model.Policy`.
"""
from __future__ import annotations

from typing import Iterable

from clingo import Function, Infimum, Number, String, Supremum, Symbol, SymbolType

from .memo import once_per_key
from .model import Policy
from .parse import gc_paused

FACT_SCHEMA_VERSION = 3

_numbers: list[Symbol] = [Number(i) for i in range(1024)]


def string(s: str) -> Symbol:
    """The string symbol of ``s``; one object per value."""
    return _string(s)


_more_numbers = once_per_key(Number, 1_000_000)


def number(n: int) -> Symbol:
    """The symbol of an integer; one object per value (callers may compare symbols by identity)."""
    return _numbers[n] if 0 <= n < 1024 else _more_numbers(n)


constant = once_per_key(Function, 100_000)
""":func:`clingo.Function` of a name without arguments; one object per name."""


def fact(name: str, *args: Symbol) -> Symbol:
    return Function(name, args)


_PRINCIPAL_TYPE = {"AWS": "aws", "Service": "service", "Federated": "federated", "CanonicalUser": "canonical_user", "*": "any"}
_EFFECT = {"Allow": Function("allow"), "Deny": Function("deny")}


_lowered = once_per_key(lambda s: string(s.lower()), 500_000)


def policy_facts(pid: int, policy: Policy) -> list[Symbol]:
    """The facts of one policy (see encodings/doc.lp, section "policies"), as clingo symbols.
    Every string argument is a clingo string symbol, made once per distinct string; the cost is
    clingo's symbol constructor (:func:`function`), so the loop below does nothing else."""
    F = function
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
    if _LIB is not None and hasattr(backend, "_rep"):
        return add_handles(backend, [s._rep for s in symbols])
    n = 0
    add_atom, add_rule = backend.add_atom, backend.add_rule
    for sym in symbols:
        add_rule([add_atom(sym)])
        n += 1
    return n


# --- Bulk traffic with clingo ---------------------------------------------------------------
#
# A batch of requests turns into some 20 facts a request, each a clingo function symbol added
# to a backend as a fact, and into some 6 shown atoms a request read back.  clingo's Python API
# makes each of those steps through several small CFFI calls and allocations (about 12 µs a
# fact); the functions below make the same calls of clingo's C API (symbol construction,
# backend atoms and rules, symbol printing) with buffers allocated once (about 3 µs a fact).
# They build symbols only from symbols: no program text is ever formed or parsed.  Where the
# installed clingo does not expose its C API module, the public API is used.

try:  # clingo's own CFFI module (clingo 5.5 and later)
    from clingo._internal import _ffi as _FFI, _lib as _LIB
except ImportError:  # pragma: no cover - other clingo builds
    _FFI = _LIB = None


def add_fact_tuples(backend, facts: Iterable[tuple]) -> int:
    """Add facts given as ``(name, arguments)`` pairs (arguments: clingo symbols) through a
    clingo backend, as :func:`add_facts` would add ``Function(name, arguments)``; returns how
    many."""
    if _LIB is None or not hasattr(backend, "_rep"):
        return add_facts(backend, (Function(name, args) for name, args in facts))
    lib, ffi = _LIB, _FFI
    create, add_atom, rule = lib.clingo_symbol_create_function, lib.clingo_backend_add_atom, lib.clingo_backend_rule
    rep = backend._rep
    sym = ffi.new("clingo_symbol_t*")
    atom = ffi.new("clingo_atom_t*")
    null = ffi.NULL
    n = 0
    for name, args in facts:
        k = len(args)
        if not create(_c_name(name), [a._rep for a in args] if k else null, k, True, sym) or not add_atom(rep, sym, atom) or not rule(rep, False, atom, 1, null, 0):
            raise RuntimeError(_clingo_error())
        n += 1
    return n


_c_name = once_per_key(str.encode, 10_000)  # a predicate name as the C API takes it


def _clingo_error() -> str:
    msg = _LIB.clingo_error_message()
    return _FFI.string(msg).decode() if msg != _FFI.NULL else "clingo error"


def shown_texts(model) -> list[str]:
    """The shown atoms of a model, each as clingo writes it (``str(symbol)``)."""
    if _LIB is None or not hasattr(model, "_rep"):
        return [str(s) for s in model.symbols(shown=True)]
    syms = _shown_handles(model)
    return _texts(syms[i] for i in range(len(syms)))


def _shown_handles(model):
    """The handles of a model's shown atoms (a C array)."""
    lib, ffi = _LIB, _FFI
    show = lib.clingo_show_type_shown
    size = ffi.new("size_t*")
    if not lib.clingo_model_symbols_size(model._rep, show, size):
        raise RuntimeError(_clingo_error())
    syms = ffi.new("clingo_symbol_t[]", size[0])
    if not lib.clingo_model_symbols(model._rep, show, syms, size[0]):
        raise RuntimeError(_clingo_error())
    return syms


def _texts(syms) -> list[str]:
    """Each of clingo's symbols (handles) as clingo writes it."""
    lib, ffi = _LIB, _FFI
    size = ffi.new("size_t*")
    to_size, to_string = lib.clingo_symbol_to_string_size, lib.clingo_symbol_to_string
    cap = 256
    buf = ffi.new("char[]", cap)
    out = []
    string_of = ffi.string
    for s in syms:
        if not to_size(s, size):
            raise RuntimeError(_clingo_error())
        k = size[0]
        if k > cap:
            cap = 2 * k
            buf = ffi.new("char[]", cap)
        if not to_string(s, buf, k):
            raise RuntimeError(_clingo_error())
        out.append(string_of(buf).decode())
    return out


def shown_split(model, keep: frozenset, texts_too: frozenset = frozenset()) -> tuple[list[str], dict]:
    """The shown atoms of a model: as clingo writes them (``str(symbol)``), except those whose
    signature ``(name, arity)`` is in ``keep``, given instead, by signature, as handles to state
    them again in another control of this process (:func:`add_handles`), and written too only
    when their signature is in ``texts_too``."""
    if _LIB is None or not hasattr(model, "_rep"):
        texts, kept = [], {}
        for sym in model.symbols(shown=True):
            sig = (sym.name, len(sym.arguments)) if sym.type == SymbolType.Function else None
            if sig in keep:
                kept.setdefault(sig, []).append(sym)
                if sig not in texts_too:
                    continue
            texts.append(str(sym))
        return texts, kept
    lib, ffi = _LIB, _FFI
    syms = _shown_handles(model)
    n = len(syms)
    size = ffi.new("size_t*")
    kinds = {}  # (name pointer, arity) -> (the list its handles go to, or None; written too?)
    if keep:
        function = lib.clingo_symbol_type_function
        kind_of, name_of, arguments_of = lib.clingo_symbol_type, lib.clingo_symbol_name, lib.clingo_symbol_arguments
        name = ffi.new("char const**")
        args = ffi.new("clingo_symbol_t const**")
        string_of = ffi.string
    kept: dict = {}
    rest = []
    for i in range(n):
        s = syms[i]
        if keep and kind_of(s) == function:
            if not name_of(s, name) or not arguments_of(s, args, size):
                raise RuntimeError(_clingo_error())
            key = (int(ffi.cast("uintptr_t", name[0])), size[0])  # names are interned: one pointer each
            k = kinds.get(key)
            if k is None:
                sig = (string_of(name[0]).decode(), size[0])
                k = kinds[key] = (kept.setdefault(sig, []) if sig in keep else None, sig in texts_too)
            if k[0] is not None:
                k[0].append(int(s))
                if not k[1]:
                    continue
        rest.append(s)
    return _texts(rest), kept


def add_handles(backend, handles: list) -> int:
    """State as facts the atoms given as handles by :func:`shown_split` (of this process)."""
    if not handles:
        return 0
    if _LIB is None or not hasattr(backend, "_rep") or not isinstance(handles[0], int):
        return add_facts(backend, handles)
    lib, ffi = _LIB, _FFI
    add_atom, rule, rep = lib.clingo_backend_add_atom, lib.clingo_backend_rule, backend._rep
    atom = ffi.new("clingo_atom_t*")
    sym = ffi.new("clingo_symbol_t*")
    null = ffi.NULL
    for h in handles:
        sym[0] = h
        if not add_atom(rep, sym, atom) or not rule(rep, False, atom, 1, null, 0):
            raise RuntimeError(_clingo_error())
    return len(handles)


def literals(ctl, symbols: list) -> list:
    """The program literal of each atom (a clingo symbol) of a grounded control, None for an atom
    the grounding does not hold (``ctl.symbolic_atoms[symbol].literal``, a few C calls each)."""
    if _LIB is None or not hasattr(ctl, "_rep"):
        got = [ctl.symbolic_atoms[s] for s in symbols]
        return [a.literal if a is not None else None for a in got]
    lib, ffi = _LIB, _FFI
    atoms = ffi.new("clingo_symbolic_atoms_t**")
    if not lib.clingo_control_symbolic_atoms(ctl._rep, atoms):
        raise RuntimeError(_clingo_error())
    atoms = atoms[0]
    it, end = ffi.new("clingo_symbolic_atom_iterator_t*"), ffi.new("clingo_symbolic_atom_iterator_t*")
    same, lit = ffi.new("bool*"), ffi.new("clingo_literal_t*")
    find, equal, literal = lib.clingo_symbolic_atoms_find, lib.clingo_symbolic_atoms_iterator_is_equal_to, lib.clingo_symbolic_atoms_literal
    if not lib.clingo_symbolic_atoms_end(atoms, end):
        raise RuntimeError(_clingo_error())
    out: list = []
    for s in symbols:
        if not find(atoms, s._rep, it) or not equal(atoms, it[0], end[0], same):
            raise RuntimeError(_clingo_error())
        if same[0]:
            out.append(None)
            continue
        if not literal(atoms, it[0], lit):
            raise RuntimeError(_clingo_error())
        out.append(lit[0])
    return out


def _from_c(create):
    """A function calling one of clingo's C symbol constructors, ``create(..., out)``, and
    returning the symbol it made."""
    out = _FFI.new("clingo_symbol_t*")
    new_symbol = Symbol.__new__

    def make(*args) -> Symbol:
        if not create(*args, out):
            raise RuntimeError(_clingo_error())
        sym = new_symbol(Symbol)
        sym._rep = out[0]
        return sym

    return make


def _make_function():
    """``function(name, arguments)``: ``clingo.Function(name, arguments)``, made by one call of
    clingo's C symbol constructor (about 2.5 µs a symbol instead of 5.6 µs)."""
    if _LIB is None:
        return lambda name, args: Function(name, args)
    make, null = _from_c(_LIB.clingo_symbol_create_function), _FFI.NULL

    def function(name: str, args) -> Symbol:
        return make(_c_name(name), [a._rep for a in args] if args else null, len(args), True)

    return function


def _make_string():
    """``clingo.String(s)``, by one call of clingo's C constructor."""
    if _LIB is None:
        return String
    make = _from_c(_LIB.clingo_symbol_create_string)
    return lambda s: make(s.encode())


function = _make_function()
_string = once_per_key(_make_string(), 500_000)


# --- Atoms across processes -------------------------------------------------------------------
#
# A symbol's handle is good only in the process whose symbol table made it.  To hand atoms from
# one process to another they travel as plain values (marshal): a str is a string, an int a
# number, (name, arguments, positive) a function, ("#inf",) and ("#sup",) the bounds.

def plain_terms(handles: list) -> list:
    """The atoms given as handles (:func:`shown_split`) as plain values; equal subterms are one
    object, so that marshal writes each once."""
    if not handles:
        return []
    if _LIB is None or not isinstance(handles[0], int):
        return [_plain_symbol(s) for s in handles]
    lib, ffi = _LIB, _FFI
    kind_of = lib.clingo_symbol_type
    NUMBER, STRING, FUNCTION = lib.clingo_symbol_type_number, lib.clingo_symbol_type_string, lib.clingo_symbol_type_function
    INF = lib.clingo_symbol_type_infimum
    name_of, arguments_of, string_of, number_of = lib.clingo_symbol_name, lib.clingo_symbol_arguments, lib.clingo_symbol_string, lib.clingo_symbol_number
    positive_of = lib.clingo_symbol_is_positive
    chars = ffi.new("char const**")
    args = ffi.new("clingo_symbol_t const**")
    size = ffi.new("size_t*")
    num = ffi.new("int*")
    flag = ffi.new("bool*")
    text = ffi.string
    memo: dict = {}

    def plain(h: int):
        got = memo.get(h)
        if got is not None:
            return got
        k = kind_of(h)
        if k == STRING:
            if not string_of(h, chars):
                raise RuntimeError(_clingo_error())
            got = text(chars[0]).decode()
        elif k == NUMBER:
            if not number_of(h, num):
                raise RuntimeError(_clingo_error())
            got = num[0]
        elif k == FUNCTION:
            if not name_of(h, chars) or not arguments_of(h, args, size) or not positive_of(h, flag):
                raise RuntimeError(_clingo_error())
            name = text(chars[0]).decode()
            subs = [int(args[0][i]) for i in range(size[0])]
            positive = bool(flag[0])  # (read before the arguments: they reuse the buffers)
            got = (name, tuple(plain(s) for s in subs), positive)
        else:
            got = ("#inf",) if k == INF else ("#sup",)
        memo[h] = got
        return got

    return [plain(int(h)) for h in handles]


def _plain_symbol(s: Symbol):
    if s.type == SymbolType.String:
        return s.string
    if s.type == SymbolType.Number:
        return s.number
    if s.type == SymbolType.Function:
        return (s.name, tuple(_plain_symbol(a) for a in s.arguments), s.positive)
    return ("#inf",) if s.type == SymbolType.Infimum else ("#sup",)


def from_plain(p) -> Symbol:
    """The symbol of a plain value (:func:`plain_terms`), made in this process."""
    if type(p) is str:
        return string(p)
    if type(p) is int:
        return number(p)
    if len(p) == 3:
        name, args, positive = p
        if positive:
            return function(name, [from_plain(a) for a in args])
        return Function(name, [from_plain(a) for a in args], False)
    return Infimum if p[0] == "#inf" else Supremum


def handles_of(plain: list) -> list:
    """The atoms given as plain values (:func:`plain_terms`) made in this process, as handles
    (:func:`add_handles`); a subterm met again is made once."""
    memo: dict = {}

    def make(p) -> Symbol:
        if type(p) is str:
            return string(p)
        if type(p) is int:
            return number(p)
        got = memo.get(p)
        if got is None:
            if len(p) == 3 and p[2]:
                got = function(p[0], [make(a) for a in p[1]])
            else:
                got = from_plain(p)
            memo[p] = got
        return got

    if _LIB is None:
        return [make(p) for p in plain]
    return [int(make(p)._rep) for p in plain]


def argument_texts(atoms: list, pos: int) -> list[str]:
    """For each atom, given as a handle (:func:`shown_split`) or a symbol, its argument at
    ``pos``: a string's own characters, anything else as clingo writes it."""
    if not atoms:
        return []
    if _LIB is None or not (isinstance(atoms[0], int) or hasattr(atoms[0], "_rep")):
        return [a.arguments[pos].string if a.arguments[pos].type == SymbolType.String else str(a.arguments[pos]) for a in atoms]
    lib, ffi = _LIB, _FFI
    arguments_of, kind_of, string_of = lib.clingo_symbol_arguments, lib.clingo_symbol_type, lib.clingo_symbol_string
    STRING = lib.clingo_symbol_type_string
    args = ffi.new("clingo_symbol_t const**")
    size = ffi.new("size_t*")
    chars = ffi.new("char const**")
    text = ffi.string
    memo: dict = {}
    out = []
    for a in atoms:
        h = a if isinstance(a, int) else a._rep
        if not arguments_of(h, args, size):
            raise RuntimeError(_clingo_error())
        if size[0] <= pos:
            raise ValueError(f"an atom without argument {pos}")
        arg = int(args[0][pos])
        got = memo.get(arg)
        if got is None:
            if kind_of(arg) == STRING:
                if not string_of(arg, chars):
                    raise RuntimeError(_clingo_error())
                got = text(chars[0]).decode()
            else:
                got = _texts([arg])[0]
            memo[arg] = got
        out.append(got)
    return out
