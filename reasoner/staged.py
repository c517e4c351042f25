"""The escalation rules grounded in stages, in a process of their own.

The rules (``encodings/escalate/`` and a user's files) are parsed once and split by what their
predicates depend on (:func:`stages`):

- ``before``: every rule that does not depend on the answers of request evaluation (``can/3``,
  ``can_if/3`` and their ``as_trusted`` forms): the options of the methods, the permissions they
  need (``need/3``), the edges they read (``need_edges_into/1``, ``need_edges_from/1``);
- ``after``: the rules that do (``escalation/4``, ``conditional/4``, ``ways.lp``), grounded over the
  atoms of ``before`` they read (its *interface*: ``option/4``, ``also_requires/6``, ...), which
  are handed over as clingo's own symbols, never as text;
- ``edges``: the part of ``before`` that the edges asked for depend on, grounded first, so that
  ``before`` runs once with those edges known.

The estate's facts and the answers reach the rules as symbols made from plain values
(:func:`symbol`).  Rules the split cannot place (program parts, externals, optimisation,
scripts, choice or disjunctive heads, pools, theory atoms) run as one program each time, as
before: the split is a matter of cost, never of answers.

A :class:`Solver` runs in a forked process (:class:`Worker`) where one may be forked
(``evaluate._jobs``), so that the symbols of a large estate's groundings go with that process;
it keeps what ``after`` needs from ``before`` between calls.
"""
from __future__ import annotations

import marshal
import os
import signal
import struct
from pathlib import Path
from typing import Optional

import clingo
import clingo.ast as A

from . import evaluate as _evaluate
from .diagnostics import Diagnostic, InputError
from .facts import add_facts, add_handles, function, number, shown_split, string
from .paths import encoding_file

ANSWERS = frozenset({("can", 3), ("can_if", 3), ("can_as_trusted", 3), ("can_if_as_trusted", 3)})
EDGES_ASKED = frozenset({("need_edges_into", 1), ("need_edges_from", 1)})
ONCE = ("need(", "need_as_trusted(")  # atoms sent once: a later stage's copy is not sent again


# -- plain values <-> symbols ------------------------------------------------------------------
#
# A term as plain data (marshal): a str is a string, an int a number, (name, arguments, positive)
# a function (a constant when it has no arguments), ("#inf",) and ("#sup",) the bounds.

def symbol(p) -> clingo.Symbol:
    if type(p) is str:
        return string(p)
    if type(p) is int:
        return number(p)
    if len(p) == 3:
        name, args, positive = p
        if positive:
            return function(name, [symbol(a) for a in args])
        return clingo.Function(name, [symbol(a) for a in args], False)
    return clingo.Infimum if p[0] == "#inf" else clingo.Supremum


# -- the split -----------------------------------------------------------------------------------

class Stages:
    """The rules in stages (see the module's docstring); statements are clingo AST nodes."""

    def __init__(self, before: list, after: list, edges: Optional[list], interface: frozenset, shows: frozenset, common: list):
        self.before = before
        self.after = after
        self.edges = edges  # None: no stage of its own
        self.interface = interface  # signatures of `before` that `after` reads
        self.shows = shows  # signatures shown by the files
        self.common = common  # constant definitions: in every stage


def parse(files: list[Path]) -> list:
    """The statements of the rule files (their #include directives followed), or an InputError
    naming what clingo reported."""
    stmts: list = []
    messages: list = []
    try:
        A.parse_files([str(f) for f in files], stmts.append, logger=lambda code, msg: messages.append(msg.strip()), message_limit=20)
    except RuntimeError as e:
        detail = "; ".join(messages) or str(e)
        name = str(files[-1]) if len(files) > 1 else str(files[0])
        raise InputError([Diagnostic(name, 0, 0, f"rules file `{name}` does not load: {detail}",
                                     "check the file with `clingo --mode=gringo --text`")], unreadable=True) from None
    return stmts


def stages(files: list[Path]) -> Optional[Stages]:
    """The rule files split in stages, or None when a statement is of a kind the split does not
    place (the rules then run as one program)."""
    stmts = parse(files)
    rules = []  # (statement, head signature or None for a constraint, body signatures)
    shows, common = set(), []
    for st in stmts:
        t = st.ast_type
        if t == A.ASTType.Comment:
            continue
        if t == A.ASTType.Program:
            if st.name != "base" or len(st.parameters):
                return None
            continue
        if t == A.ASTType.ShowSignature:
            if not st.positive:
                return None
            shows.add((st.name, st.arity))
            continue
        if t == A.ASTType.Definition:
            common.append(st)
            continue
        if t != A.ASTType.Rule:
            return None
        head = st.head
        if head.ast_type != A.ASTType.Literal or head.sign != A.Sign.NoSign:
            return None
        atom = head.atom
        if atom.ast_type == A.ASTType.BooleanConstant:
            sig = None
        elif atom.ast_type == A.ASTType.SymbolicAtom and atom.symbol.ast_type == A.ASTType.Function and not atom.symbol.external:
            sig = (atom.symbol.name, len(atom.symbol.arguments))
        else:
            return None
        body: set = set()
        for lit in st.body:
            if not _atoms(lit, body):
                return None
        rules.append((st, sig, body))
    if not shows:
        return None  # everything is shown: no stage could keep its interface to itself
    # the predicates that depend on the answers, through any rule (positive or not)
    later = set(ANSWERS)
    grew = True
    while grew:
        grew = False
        for _, sig, body in rules:
            if sig is not None and sig not in later and body & later:
                later.add(sig)
                grew = True
    before = [(st, sig, body) for st, sig, body in rules if not (sig in later or (sig is None and body & later))]
    after = [(st, sig, body) for st, sig, body in rules if sig in later or (sig is None and body & later)]
    heads_before = {sig for _, sig, _ in before if sig is not None}
    interface = frozenset(s for _, _, body in after for s in body if s not in later and s in heads_before)
    # the part of `before` the edges asked for depend on
    wanted = set(EDGES_ASKED)
    grew = True
    while grew:
        grew = False
        for _, sig, body in before:
            if sig in wanted and not body <= wanted:
                wanted |= body
                grew = True
    edges = [st for st, sig, _ in before if sig in wanted]
    if not any(sig in EDGES_ASKED for _, sig, _ in before) or ("option", 4) in wanted:
        edges = None  # nothing asked, or asked through the options themselves: no stage of its own
    return Stages([st for st, _, _ in before], [st for st, _, _ in after], edges, interface, frozenset(shows), common)


def _atoms(node, out: set) -> bool:
    """Add the signatures of the atoms under an AST node to ``out``; False when one is of a kind
    the split does not place (a pool, a theory atom)."""
    t = node.ast_type
    if t == A.ASTType.TheoryAtom:
        return False
    if t == A.ASTType.SymbolicAtom:
        sym = node.symbol
        if sym.ast_type == A.ASTType.UnaryOperation:  # classical negation
            sym = sym.argument
        if sym.ast_type != A.ASTType.Function:
            return False
        out.add((sym.name, len(sym.arguments)))
        return True
    for key in node.child_keys:
        val = getattr(node, key)
        if isinstance(val, A.AST):
            if not _atoms(val, out):
                return False
        elif val is not None and not isinstance(val, (str, int)):
            for v in val:
                if isinstance(v, A.AST) and not _atoms(v, out):
                    return False
    return True


def _show(sig: tuple, loc) -> A.AST:
    return A.ShowSignature(loc, sig[0], sig[1], True)


_LOC = A.Location(A.Position("<stages>", 1, 1), A.Position("<stages>", 1, 1))


# -- solving -------------------------------------------------------------------------------------

class Solver:
    """Grounds and solves the rules over the facts, a stage at a time (:class:`Stages`), or the
    whole program when they are not split (``stages`` None).  Each call takes the facts and the
    answers added since the last (plain, :func:`symbol`) and returns the shown atoms as clingo
    writes them, the need atoms sent before left out."""

    def __init__(self, files: list[Path], split: Optional[Stages]):
        self.files = files
        self.split = split
        self.facts: list = []  # symbols of the facts so far
        self.answers: list = []  # ... of the answers so far
        self.interface: list = []  # handles of the atoms of `before` that `after` reads
        self.escalation: list = []  # handles of the escalation/4 atoms of the last `after`
        self.sent: set = set()

    def run(self, stage: str, facts: list, answers: list) -> list[str]:
        self.facts += [symbol(f) for f in facts]
        self.answers += [symbol(a) for a in answers]
        split = self.split
        if stage == "ways":
            texts, _ = self._solve(lambda ctl: ctl.load(str(encoding_file("escalate/ways.lp"))), [self.facts], self.escalation)
        elif split is None:
            texts, self.escalation = self._solve(self._load_all, [self.facts, self.answers], (), keep=frozenset({("escalation", 4)}), also=True)
        elif stage == "edges":
            texts, _ = self._solve(self._builder(split.edges, EDGES_ASKED), [self.facts], ())
        elif stage == "before":
            shows = split.shows | split.interface
            texts, self.interface = self._solve(self._builder(split.before, shows), [self.facts], (),
                                                keep=split.interface, also_texts=split.shows)
        else:  # after
            texts, self.escalation = self._solve(self._builder(split.after, split.shows), [self.facts, self.answers], self.interface,
                                                 keep=frozenset({("escalation", 4)}), also=True)
        out = []
        for t in texts:
            if t.startswith(ONCE):
                if t in self.sent:
                    continue
                self.sent.add(t)
            out.append(t)
        return out

    def _load_all(self, ctl) -> None:
        for f in self.files:
            ctl.load(str(f))

    def _builder(self, statements: list, shows):
        common = self.split.common

        def build(ctl) -> None:
            with A.ProgramBuilder(ctl) as b:
                for st in common:
                    b.add(st)
                for st in statements:
                    b.add(st)
                for sig in sorted(shows):
                    b.add(_show(sig, _LOC))

        return build

    def _solve(self, build, symbol_lists: list, handles, keep: frozenset = frozenset(), also: bool = False,
               also_texts: frozenset = frozenset()) -> tuple[list[str], list]:
        ctl = clingo.Control(["--warn=none"])
        build(ctl)
        with ctl.backend() as b:
            for syms in symbol_lists:
                add_facts(b, syms)
            add_handles(b, list(handles))
        ctl.ground([("base", [])])
        with ctl.solve(yield_=True) as h:
            for m in h:
                return shown_split(m, keep, keep if also else also_texts)
        return [], []


# -- a process of its own --------------------------------------------------------------------------

class Worker:
    """A :class:`Solver` in a forked process, called through pipes (marshal); when no process may
    be forked, or it fails, the solver runs here (replaying the calls made so far)."""

    def __init__(self, solver: Solver):
        self.solver = solver  # this process's copy, used only when the forked one is not
        self.calls: list = []
        self.pid = None
        self.local = _evaluate._jobs() < 2
        if not self.local:
            self._start()

    def _start(self) -> None:
        try:
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
        except OSError:
            self.local = True
            return
        try:
            pid = os.fork()
        except OSError:
            for fd in (down_r, down_w, up_r, up_w):
                os.close(fd)
            self.local = True
            return
        if pid == 0:
            code = 1
            try:
                _evaluate._FORKED = True
                os.close(down_w)
                os.close(up_r)
                with os.fdopen(down_r, "rb") as rd, os.fdopen(up_w, "wb") as wr:
                    while True:
                        msg = _read_message(rd)
                        if msg is None:
                            break
                        try:
                            reply = ("ok", self.solver.run(*msg))
                        except BaseException as e:  # reported; the caller runs the stage itself
                            reply = ("error", f"{type(e).__name__}: {e}")
                        _write_message(wr, reply)
                code = 0
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        self.pid = pid
        self.down = os.fdopen(down_w, "wb")
        self.up = os.fdopen(up_r, "rb")

    def run(self, stage: str, facts: list, answers: list) -> list[str]:
        self.send(stage, facts, answers)
        return self.receive()

    def send(self, stage: str, facts: list, answers: list) -> None:
        """Start a stage (:meth:`Solver.run`); its atoms are read with :meth:`receive`, and this
        process may work meanwhile."""
        self.pending = (stage, facts, answers)
        self.sent_ok = False
        if not self.local:
            try:
                _write_message(self.down, self.pending)
                self.sent_ok = True
            except (OSError, ValueError):
                pass

    def receive(self) -> list[str]:
        call, self.pending = self.pending, None
        if not self.local:
            reply = None
            if self.sent_ok:
                try:
                    reply = _read_message(self.up)
                except (OSError, ValueError, EOFError):
                    reply = None
            if reply is not None and reply[0] == "ok":
                self.calls.append(call)
                return reply[1]
            self.close()
            self.local = True
            for earlier in self.calls:
                self.solver.run(*earlier)  # this process's solver catches up
        self.calls.append(call)
        return self.solver.run(*call)

    def close(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        for f in (self.down, self.up):
            try:
                f.close()
            except OSError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


def _write_message(f, obj) -> None:
    data = marshal.dumps(obj)
    f.write(struct.pack("<Q", len(data)))
    f.write(data)
    f.flush()


def _read_message(f):
    head = f.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = f.read(n)
    if len(data) < n:
        return None
    return marshal.loads(data)
