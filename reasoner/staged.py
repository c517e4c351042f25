"""The escalation rules grounded in stages, in a process of their own.

The rules (``encodings/escalate/`` and a user's files) are parsed once and split by what their
predicates depend on (:func:`stages`):

- ``after``: the rules that depend on the answers of request evaluation (``can/3``, ``can_if/3``
  and their ``as_trusted`` forms): ``escalation/4``, ``conditional/4`` (when a rule reads it:
  rules no shown atom depends on are left out, :func:`_needed`), ``ways.lp`` (unless the
  driver runs it as a stage of its own, ``ways``: ``stages(apart=...)``).  They are
  grounded over the atoms of the stages before that they read (``option/4``,
  ``also_requires/6``, ...), handed over as clingo's own symbols, never as text;
- before them, when the rules are linear in what the rules reading ``assumes/2`` derive
  (:func:`_edged`): ``base``, every other rule but those, run once (it reads no edge, so the
  edges into administrators are evaluated meanwhile), and ``edged``, the rules that read
  ``assumes/2`` with copies of those that read what they derive, run again as edges are added;
- otherwise ``before``, all of them, run again as edges are added, after ``edges``, the part the
  edges asked for (``need_edges_into/1``, ``need_edges_from/1``) depend on.

The estate's facts and the answers reach the rules as symbols made from plain values
(:func:`symbol`).  Rules the split cannot place (program parts, externals, optimisation,
scripts, choice or disjunctive heads, pools, theory atoms) run as one program each time: the
split is a matter of cost, never of answers.

A :class:`Solver` runs in a process of its own (:class:`Worker`: a new interpreter, not a copy
of the caller's heap) where processes may be started (``evaluate._jobs``); it keeps what later
stages read from earlier ones between calls, and solves each stage in a process forked for it,
so that the symbols of a large estate's groundings (clingo never frees a symbol) go with that
process and only the atoms later stages read come back, as plain values.
"""
from __future__ import annotations

import marshal
import os
import re
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Optional

import clingo
import clingo.ast as A

from . import evaluate as _evaluate
from .diagnostics import Diagnostic, InputError
from .evaluate import _die_with_parent
from .facts import add_facts, add_handles, argument_texts, from_plain, handles_of, plain_terms, shown_split
from .paths import encoding_file

ANSWERS = frozenset({("can", 3), ("can_if", 3), ("can_as_trusted", 3), ("can_if_as_trusted", 3)})
EDGES_ASKED = frozenset({("need_edges_into", 1), ("need_edges_from", 1)})
ONCE = ("need(", "need_as_trusted(")  # atoms sent once: a later stage's copy is not sent again


# -- the split -----------------------------------------------------------------------------------

class Stages:
    """The rules in stages (see the module's docstring): for each stage its statements (clingo
    AST nodes), the signatures of earlier stages' atoms it reads (``inputs``) and of its own
    atoms that later stages read (``keeps``), in the order the stages first run."""

    def __init__(self, programs: dict, inputs: dict, keeps: dict, shows: frozenset, common: list, grown: str):
        self.programs = programs  # stage -> statements
        self.inputs = inputs  # stage -> signatures read from earlier stages
        self.keeps = keeps  # stage -> signatures of its atoms later stages read
        self.shows = shows  # signatures shown by the files
        self.common = common  # constant definitions: in every stage
        self.grown = grown  # the stage to run again when edges were added
        self.apart: frozenset = frozenset()  # the files left out, run by the driver (``ways``)

    @property
    def first(self) -> str:
        return next(iter(self.programs))


class Rules:
    """Rule files read and checked once (:func:`read_rules`): their statements (clingo's AST, the
    #include directives followed) and the facts they state by themselves, by signature."""

    def __init__(self, statements: list, facts: dict):
        self.statements = statements
        self.facts = facts  # (name, arity) -> [symbol]


_READ_RULES: dict = {}  # (path, mtime, size) of each file -> Rules


def read_rules(files: list[Path]) -> Rules:
    """The rule files parsed, then grounded without an estate (which finds unsafe variables and
    the like, and gives the facts they state), once while they do not change; an InputError that
    names the place clingo reported (file:line:column) when they do not load."""
    key = tuple((str(f), *_stamp(f)) for f in files)
    got = _READ_RULES.get(key)
    if got is not None:
        return got
    stmts: list = []
    messages: list = []

    def log(code, msg):
        messages.append(msg.strip())

    try:
        A.parse_files([str(f) for f in files], stmts.append, logger=log, message_limit=20)
        ctl = clingo.Control(["--warn=none"], logger=log, message_limit=20)
        with A.ProgramBuilder(ctl) as b:
            for st in stmts:
                b.add(st)
        ctl.ground([("base", [])])
    except RuntimeError as e:
        raise _load_error(files, messages, e) from None
    facts: dict = {}
    for a in ctl.symbolic_atoms:
        if a.is_fact and a.symbol.type == clingo.SymbolType.Function:
            facts.setdefault((a.symbol.name, len(a.symbol.arguments)), []).append(a.symbol)
    got = _READ_RULES[key] = Rules(stmts, facts)
    return got


def _stamp(f: Path) -> tuple:
    try:
        st = os.stat(f)
    except OSError:
        return (None, None)
    return (st.st_mtime_ns, st.st_size)


_PLACE = re.compile(r"(?P<file>.+?):(?P<line>\d+):(?P<column>\d+)(?:-\d+(?::\d+)?)?: (?P<what>.*)", re.S)


def _load_error(files: list[Path], messages: list, e: Exception) -> InputError:
    """The first problem clingo reported, at the place it names."""
    first = next((m for m in messages if "error" in m), messages[0] if messages else str(e))
    m = _PLACE.match(first)
    name, line, column, what = (m["file"], int(m["line"]), int(m["column"]), m["what"]) if m else (str(files[-1]), 0, 0, first)
    what = " ".join(what.split()).removeprefix("error: ")
    return InputError([Diagnostic(name, line, column, f"rules file `{name}` does not load: {what}",
                                  "check the file with `clingo --mode=gringo --text`")], unreadable=True)


def stages(files: list[Path], apart: frozenset = frozenset()) -> Optional[Stages]:
    """The rule files split in stages, or None when a statement is of a kind the split does not
    place (the rules then run as one program).  The statements of the files ``apart`` (included
    by ``files``) are left out: the driver runs them as a stage of their own (``ways``)."""
    split = _stages(files, apart)
    if split is not None:
        split.apart = frozenset(apart)
    return split


def _stages(files: list[Path], apart: frozenset) -> Optional[Stages]:
    stmts = read_rules(files).statements
    if apart:
        away = {os.path.realpath(f) for f in apart}
        stmts = [st for st in stmts if os.path.realpath(st.location.begin.filename) not in away]
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
    rules = _needed(rules, shows)
    # the predicates that depend on the answers, through any rule (positive or not)
    later = _closure(rules, ANSWERS)
    reads_answers = [r[1] in later or (r[1] is None and bool(r[2] & later)) for r in rules]
    before = [r for r, late in zip(rules, reads_answers) if not late]
    after = [r for r, late in zip(rules, reads_answers) if late]
    after_reads = {x for _, _, body in after for x in body if x not in later}
    shows = frozenset(shows)
    split = _edged(before, after, after_reads, later, shows, common)
    if split is not None:
        return split
    heads = {sig for _, sig, _ in before if sig is not None}
    interface = frozenset(after_reads & heads)
    programs = {}
    # the part of `before` the edges asked for depend on: a stage of its own, unless they are
    # asked through the options themselves
    wanted = _depended_on(before, set(EDGES_ASKED))
    if any(sig in EDGES_ASKED for _, sig, _ in before) and ("option", 4) not in wanted:
        programs["edges"] = [st for st, sig, _ in before if sig in wanted]
    programs["before"] = [st for st, _, _ in before]
    programs["after"] = [st for st, _, _ in after]
    return Stages(programs, {"after": interface}, {"before": interface}, shows, common, "before")


def _needed(rules: list, shows: set) -> list:
    """The rules a shown atom or a constraint depends on, through any rule; the others are left
    out (their atoms are not shown and change no shown atom: ``conditional/4``, for rules a user
    may add, when no rule reads it), when that cannot change the models: no rule left out reads
    an atom of those left out other than positively and plainly in its body (what they derive
    over the rest is then one least model, whatever the rest is)."""
    wanted = set(shows)
    for _, sig, body in rules:
        if sig is None:
            wanted |= body
    wanted = _depended_on(rules, wanted)
    out = [r for r in rules if r[1] in wanted or r[1] is None]
    if len(out) == len(rules):
        return rules
    dropped = {sig for _, sig, _ in rules if sig not in wanted and sig is not None}
    for st, sig, _ in rules:
        if sig in dropped and _non_monotone(st) & dropped:
            return rules
    return out


def _depended_on(rules: list, wanted: set) -> set:
    """``wanted`` and the signatures its atoms depend on, through the rules (positively or not)."""
    grew = True
    while grew:
        grew = False
        for _, sig, body in rules:
            if sig in wanted and not body <= wanted:
                wanted |= body
                grew = True
    return wanted


def _non_monotone(st) -> set:
    """The signatures of a rule's body atoms other than those of plain positive literals."""
    out: set = set()
    for lit in st.body:
        if lit.ast_type == A.ASTType.Literal and lit.sign == A.Sign.NoSign and lit.atom.ast_type == A.ASTType.SymbolicAtom:
            continue
        _atoms(lit, out)
    return out


# the place of the actor among the arguments of the atoms the escalation rules derive for an actor
# from what the actor may do (:func:`_actor_local`)
ACTOR = {("option", 4): 1, ("also_requires", 6): 1, ("escalation", 4): 0, ("conditional", 4): 0,
         ("granted", 3): 0, ("granted_as_trusted", 3): 0, **{sig: 0 for sig in ANSWERS}}
PART = 50_000  # atoms named by an actor in one part of an actor-local stage (Solver._solve_in_parts)
# from that many atoms named by an actor (and up to two parts' worth), an actor-local stage solved
# in forked processes is solved in two halves side by side, each in a process of its own
SIDE_BY_SIDE = 20_000


def _actor_local(statements: list) -> bool:
    """Whether every rule derives an atom of an actor (:data:`ACTOR`) from atoms of that actor
    and atoms that name none, which no rule derives: each of its atoms of a kind in ACTOR has
    the head's actor variable at the actor's place.  Then its ground rules for one actor share
    no atom with those for another but those no rule derives."""
    for st in statements:
        if st.ast_type != A.ASTType.Rule:
            return False
        atom = st.head.atom if st.head.ast_type == A.ASTType.Literal else None
        if atom is None or atom.ast_type != A.ASTType.SymbolicAtom or atom.symbol.ast_type != A.ASTType.Function:
            return False
        sig = (atom.symbol.name, len(atom.symbol.arguments))
        if sig not in ACTOR:
            return False
        actor = atom.symbol.arguments[ACTOR[sig]]
        if actor.ast_type != A.ASTType.Variable or actor.name == "_":
            return False
        found: list = []
        for lit in st.body:
            if not _functions(lit, found):
                return False
        for name, args in found:
            if (name, len(args)) in ACTOR:
                a = args[ACTOR[(name, len(args))]]
                if a.ast_type != A.ASTType.Variable or a.name != actor.name:
                    return False
    return True


def _functions(node, out: list) -> bool:
    """Add the (name, arguments) of the atoms under an AST node to ``out``; False when one is of a
    kind the split does not place (a pool, a theory atom)."""
    t = node.ast_type
    if t == A.ASTType.TheoryAtom:
        return False
    if t == A.ASTType.SymbolicAtom:
        sym = node.symbol
        if sym.ast_type == A.ASTType.UnaryOperation:  # classical negation
            sym = sym.argument
        if sym.ast_type != A.ASTType.Function:
            return False
        out.append((sym.name, sym.arguments))
        return True
    for key in node.child_keys:
        val = getattr(node, key)
        if isinstance(val, A.AST):
            if not _functions(val, out):
                return False
        elif val is not None and not isinstance(val, (str, int)):
            for v in val:
                if isinstance(v, A.AST) and not _functions(v, out):
                    return False
    return True


EDGES = frozenset({("assumes", 2)})  # the facts added as edges are evaluated


def _edged(before: list, after: list, after_reads: set, later: set, shows: frozenset, common: list) -> Optional[Stages]:
    """The split in which the rules that read assume-role edges run in a stage of their own
    (``edged``), over the atoms of the rest (``base``), so that ``base`` runs once, while the
    edges are still being evaluated, and only ``edged`` runs again when edges are added.

    ``edged`` holds the rules that read ``assumes/2`` and, copied from ``base``, those that read
    what they derive (Δ), given only the Δ atoms ``edged`` derives; ``after`` reads the atoms of
    both.  That is the same as one program when each rule reads Δ and ``assumes/2`` once at most,
    positively and directly in its body (the rules are linear in them: their consequences of a
    union are the union of their consequences), and a rule that reads ``assumes/2`` reads no Δ;
    otherwise None."""
    reading_edges = [r for r in before if r[2] & EDGES]
    if not reading_edges:
        return None
    delta = _closure(before, EDGES) - EDGES
    if None in delta:
        return None
    touched = delta | EDGES
    for st, sig, body in before:
        if not body & touched:
            continue
        if sig is None or _occurrences(st, touched) != 1:
            return None
        if body & EDGES and body & delta:
            return None
    base = [r for r in before if not r[2] & EDGES]
    edged = [r for r in before if r[2] & touched]
    base_heads = {sig for _, sig, _ in base if sig is not None}
    edged_heads = {sig for _, sig, _ in edged if sig is not None}
    edged_reads = {x for _, _, body in edged for x in body if x not in touched and x in base_heads}
    keeps = {"base": frozenset((edged_reads | after_reads) & base_heads), "edged": frozenset(after_reads & edged_heads)}
    inputs = {"edged": frozenset(edged_reads), "after": frozenset(after_reads & (base_heads | edged_heads))}
    programs = {"base": [st for st, _, _ in base], "edged": [st for st, _, _ in edged], "after": [st for st, _, _ in after]}
    return Stages(programs, inputs, keeps, shows, common, "edged")


def _closure(rules: list, seeds) -> set:
    """The signatures that depend on ``seeds`` through the rules, with the seeds."""
    out = set(seeds)
    grew = True
    while grew:
        grew = False
        for _, sig, body in rules:
            if sig is not None and sig not in out and body & out:
                out.add(sig)
                grew = True
    return out


def _occurrences(rule, sigs) -> int:
    """How many times the rule's body reads one of ``sigs``; a read that is not a positive
    literal directly in the body (negated, in a condition or an aggregate) counts as two."""
    n = 0
    for lit in rule.body:
        if lit.ast_type == A.ASTType.Literal and lit.atom.ast_type == A.ASTType.SymbolicAtom:
            found: set = set()
            _atoms(lit.atom, found)
            if found & sigs:
                n += 1 if lit.sign == A.Sign.NoSign else 2
            continue
        found = set()
        _atoms(lit, found)
        if found & sigs:
            n += 2
    return n


def _atoms(node, out: set) -> bool:
    """Add the signatures of the atoms under an AST node to ``out``; False when one is of a kind
    the split does not place (a pool, a theory atom)."""
    found: list = []
    ok = _functions(node, found)
    out.update((name, len(args)) for name, args in found)
    return ok


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
        self.facts: dict = {}  # signature -> symbols of the facts so far
        self._reading: dict = {}  # stage -> the signatures its program reads or shows (None: any)
        self.answers: list = []  # ... of the answers so far
        self.kept: dict = {}  # stage -> signature -> handles of its atoms that later stages read
        self.escalation: list = []  # handles of the escalation/4 atoms of the last `after`
        self.sent: set = set()
        self.fork_stages = False  # each stage solved in a process forked for it (set in a Worker)
        self.finished = False  # the ways were solved here, the last stage (:meth:`run`)

    def run(self, stage: str, facts: list, answers: list) -> list[str]:
        if self.finished:
            raise RuntimeError("the ways were the last stage: this solver has let go of the others' atoms")
        for f in facts:
            sig = (f[0], len(f[1])) if type(f) is tuple and len(f) == 3 else None
            got = self.facts.get(sig)
            if got is None:
                got = self.facts[sig] = []
            got.append(from_plain(f))
        self.answers += [from_plain(a) for a in answers]
        facts = answers = None  # (plain values: gone once made symbols, where the caller holds none)
        split = self.split
        escalation = frozenset({("escalation", 4)})
        if stage == "ways":
            ways = encoding_file("escalate/ways.lp")
            symbol_lists = self._facts(stage, read_rules([ways]).statements, ())
            # the last stage, solved in this process even in a Worker's (``fork_stages``): a fork
            # would copy the pages of this heap it touches on top of its own grounding, and this
            # process ends with the analysis anyway.  What only the other stages read goes first.
            self.finished = True
            self.facts = self.answers = self.kept = None
            _trim()
            texts, _ = self._solve_here(lambda ctl: ctl.load(str(ways)), symbol_lists, self.escalation)
            symbol_lists = None
        elif split is None:
            texts, kept = self._solve(self._builder(read_rules(self.files).statements, ()), [*self._facts(stage, None, ()), self.answers], [],
                                      keep=escalation, texts_too=escalation)
            self.escalation = kept.get(("escalation", 4), [])
        elif stage == "edges":
            texts, _ = self._solve(self._builder(split.programs["edges"], EDGES_ASKED), self._facts(stage, split.programs["edges"], EDGES_ASKED), [])
        else:
            wanted = split.inputs.get(stage, frozenset())
            handles = [(sig, hs) for earlier, kept in self.kept.items() if earlier != stage for sig, hs in kept.items() if sig in wanted]
            keep = split.keeps.get(stage, frozenset())
            if stage == "after":
                keep = keep | escalation
            facts = self._signed_facts(stage, split.programs[stage], split.shows | keep)
            if stage == "after":
                facts.append((None, self.answers))  # (the answers: can/3, can_if/3, ... alike)
            by_actor = stage == "after" and _actor_local(split.programs[stage])
            texts, kept = self._solve_in_parts(self._builder(split.programs[stage], split.shows | keep), handles, facts,
                                               keep, split.shows, by_actor, packed=escalation if stage == "after" else frozenset())
            self.kept[stage] = kept
            if stage == "after":
                self.escalation = kept.get(("escalation", 4), [])
        out = []
        for t in texts:
            if t.startswith(ONCE):
                if t in self.sent:
                    continue
                self.sent.add(t)
            out.append(t)
        return out

    def _facts(self, stage: str, statements: Optional[list], shows) -> list:
        return [syms for _, syms in self._signed_facts(stage, statements, shows)]

    def _signed_facts(self, stage: str, statements: Optional[list], shows) -> list:
        """The facts a stage's program may read, (signature, symbols) for each signature: those
        its statements name (in a body, a head, a condition) or show; all of them when its
        statements are not known or name an atom of a kind not followed (a fact no rule reads and
        no #show names changes no shown atom: left out, it is not grounded)."""
        if stage not in self._reading:
            reads: Optional[set] = None
            if statements is not None:
                reads = set(shows)
                for st in statements:
                    if st.ast_type == A.ASTType.ShowSignature:
                        reads.add((st.name, st.arity))
                    elif not _atoms(st, reads):
                        reads = None
                        break
            self._reading[stage] = reads
        reads = self._reading[stage]
        return [(sig, syms) for sig, syms in self.facts.items() if reads is None or sig in reads]

    def _builder(self, statements: list, shows):
        common = self.split.common if self.split is not None else []

        def build(ctl) -> None:
            with A.ProgramBuilder(ctl) as b:
                for st in common:
                    b.add(st)
                for st in statements:
                    b.add(st)
                for sig in sorted(shows):
                    b.add(_show(sig, _LOC))

        return build

    def _solve(self, build, symbol_lists: list, handles, keep: frozenset = frozenset(),
               texts_too: frozenset = frozenset(), packed: frozenset = frozenset()) -> tuple[list[str], dict]:
        """The stage's shown atoms: texts, and the kept ones as handles.  In a :class:`Worker`
        (``fork_stages``) it is solved in a process forked for it, which hands the kept atoms back as
        plain values: what the grounding made (clingo's symbols are never freed) goes with that
        process, and this one holds only the facts and the atoms later stages read.  Those of the
        signatures ``packed`` stay plain values, packed (:class:`Packed`), until first read."""
        if self.fork_stages:
            got = self._solved_forked(build, [(symbol_lists, handles)], keep, texts_too, packed)
            if got is not None:
                return got[0]
        return self._solve_here(build, symbol_lists, handles, keep, texts_too)

    def _solved_forked(self, build, problems: list, keep: frozenset, texts_too: frozenset,
                       packed: frozenset) -> Optional[list]:
        """Each of ``problems`` (symbol lists, handles) solved in a process forked for it, all of
        them side by side: their (texts, kept atoms), in order; None when a process could not be
        started or failed (those started are stopped)."""
        started: list = []
        for symbol_lists, handles in problems:
            got = _evaluate._start(lambda s=symbol_lists, h=handles: self._solved_plain(build, s, h, keep, texts_too))
            if got is None:
                _evaluate._stop(started)
                return None
            started.append(got)
        results = _evaluate._collect(started)
        if results is None:
            return None
        out = []
        for texts, kept in results:
            out.append((texts, {sig: Packed(plain) if sig in packed else handles_of(plain) for sig, plain in kept.items()}))
        results = None
        _trim()
        return out

    def _solve_in_parts(self, build, handles: list, facts: list, keep: frozenset, texts_too: frozenset,
                        by_actor: bool, packed: frozenset = frozenset()) -> tuple[list[str], dict]:
        """:meth:`_solve` over the atoms of earlier stages (``handles``) and the facts, each given
        as (signature, atoms); the answers' signature is None.  ``by_actor``: the stage's rules
        are actor-local (:func:`_actor_local`), and it is solved in parts of at most :data:`PART`
        atoms named by an actor, one after another (each in a process of its own, in a Worker):
        each part holds every atom of some actors, and all the atoms that name none.  The ground
        program of such rules is the union of those of its parts, which share no atom they
        derive: the shown atoms are the union of the parts'.  A stage of :data:`SIDE_BY_SIDE`
        such atoms or more but no more than two parts' worth is solved in two halves at once,
        where two processes may work (together about the memory of a part of 2 × PART)."""
        def actor_at(sig):
            return 0 if sig is None else ACTOR.get(sig)  # (every answer names its actor first)

        named = sum(len(items) for sig, items in handles + facts if actor_at(sig) is not None)
        parts = max(1, -(-named // PART)) if by_actor else 1
        side_by_side = (by_actor and parts <= 2 and named >= SIDE_BY_SIDE and self.fork_stages
                        and _evaluate.processes() > 1)
        if side_by_side:
            parts = 2

        def placed(sig, items):
            pos = actor_at(sig)
            if parts == 1 or pos is None:
                return items, None
            return items, [zlib.crc32(t.encode()) % parts for t in argument_texts(items, pos)]

        handles = [placed(sig, hs) for sig, hs in handles]
        facts = [placed(sig, syms) for sig, syms in facts]

        def mine(items, where, i):
            return items if where is None else [x for x, p in zip(items, where) if p == i]

        def problem(i):
            return [mine(syms, where, i) for syms, where in facts], [h for hs, where in handles for h in mine(hs, where, i)]

        texts: list = []
        kept: dict = {}

        def add(got_texts, got_kept):
            texts.extend(got_texts)
            for sig, hs in got_kept.items():
                kept.setdefault(sig, Packed() if isinstance(hs, Packed) else []).extend(hs)

        if side_by_side:
            both = self._solved_forked(build, [problem(0), problem(1)], keep, texts_too, packed)
            if both is not None:
                for got in both:
                    add(*got)
                return texts, kept
        for i in range(parts):
            add(*self._solve(build, *problem(i), keep=keep, texts_too=texts_too, packed=packed))
        return texts, kept

    def _solved_plain(self, build, symbol_lists, handles, keep, texts_too) -> tuple:
        _die_with_parent()
        texts, kept = self._solve_here(build, symbol_lists, handles, keep, texts_too)
        return texts, {sig: plain_terms(hs) for sig, hs in kept.items()}

    def _solve_here(self, build, symbol_lists: list, handles, keep: frozenset = frozenset(),
                    texts_too: frozenset = frozenset()) -> tuple[list[str], dict]:
        ctl = clingo.Control(["--warn=none"])
        build(ctl)
        with ctl.backend() as b:
            for syms in symbol_lists:
                add_facts(b, syms)
            add_handles(b, list(handles))
        # the facts are the control's now: the lists of their symbols (every caller hands over a
        # list of its own) go before the grounding, and their memory back to the system
        symbol_lists.clear()
        _trim()
        ctl.ground([("base", [])])
        got: tuple = ([], {})
        with ctl.solve(yield_=True) as h:
            for m in h:
                got = shown_split(m, keep, texts_too)
                break
        del ctl, h
        _trim()  # the ground program is gone: its memory back to the system, not kept for later
        return got


class Packed:
    """Atoms a stage's process handed back as plain values (:func:`plain_terms`), kept packed
    (marshal) and made handles (:func:`handles_of`) only when first read, as a list: the
    escalation atoms of `after` are read here only when the ways are solved in this process,
    and as symbols they would stay (clingo frees none) — some 120 MB at 20,000 roles."""

    __slots__ = ("_packs", "_handles")

    def __init__(self, plain: Optional[list] = None):
        self._packs = [marshal.dumps(plain)] if plain else []
        self._handles: Optional[list] = None

    def extend(self, other) -> None:
        """Add ``other``'s atoms (another Packed's still packed when neither was read)."""
        if self._handles is None and isinstance(other, Packed) and other._handles is None:
            self._packs += other._packs
        else:
            self._made().extend(other)

    def _made(self) -> list:
        if self._handles is None:
            made: list = []
            for p in self._packs:
                made += handles_of(marshal.loads(p))
            self._handles, self._packs = made, []
        return self._handles

    def __iter__(self):
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())

    def __getitem__(self, i):
        return self._made()[i]


def _trim() -> None:
    """Give the memory freed by a grounding back to the system (glibc's ``malloc_trim``) where
    there is such a call; a stage's program is freed when it is read, but the allocator would keep
    its pages for the life of the process."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes
            import ctypes.util

            _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


# -- a process of its own --------------------------------------------------------------------------

def _own_process() -> bool:
    """Whether the rules may be solved in a process of their own: where two processes may work
    (``evaluate.processes``), on POSIX, not from a process forked to decide requests.  Other
    threads running here (a Jupyter kernel's) are no reason not to, as they are for forking
    (``evaluate._jobs``): the process is a new interpreter (fork and exec), which inherits none of
    their locks; and in a long-lived kernel the symbols the grounding makes, never freed by
    clingo, go with it."""
    return os.name == "posix" and not _evaluate._FORKED and _evaluate.processes() > 1


class Worker:
    """A :class:`Solver` in a process of its own (:meth:`_start`), called through pipes (marshal);
    when no process may be started, or it fails, the solver runs here (replaying the calls made
    so far)."""

    def __init__(self, solver: Solver):
        self.solver = solver  # this process's copy, used only when the other process is not
        # the calls answered by the solver's process, replayed here if it fails: each as the
        # message it was sent as, compressed (a large estate's facts are hundreds of MB as values)
        self.calls: list = []
        self.pending = None  # (stage, the call) sent and not yet received
        self.sent_ok = False
        self.pid = None
        self.proc = None
        self.local = not _own_process()
        if not self.local:
            self._start()

    def _start(self) -> None:
        """Start the solver's process: a new interpreter (not a fork of this one, whose heap it
        would copy page by page as this process goes on writing it), reading calls from one pipe
        and answering on another; it makes the split of the same rule files itself."""
        try:
            down_r, down_w = os.pipe()
            up_r, up_w = os.pipe()
        except OSError:
            self.local = True
            return
        package_home = str(Path(__file__).resolve().parent.parent)
        code = "import sys; sys.path.insert(0, sys.argv[1]); from reasoner.staged import _serve; _serve(int(sys.argv[2]), int(sys.argv[3]))"
        try:
            proc = subprocess.Popen([sys.executable, "-c", code, package_home, str(down_r), str(up_w)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    pass_fds=(down_r, up_w), close_fds=True)
        except (OSError, ValueError, subprocess.SubprocessError):
            for fd in (down_r, down_w, up_r, up_w):
                os.close(fd)
            self.local = True
            return
        os.close(down_r)
        os.close(up_w)
        self.proc = proc
        self.pid = proc.pid
        self.down = os.fdopen(down_w, "wb")
        self.up = os.fdopen(up_r, "rb")
        split = self.solver.split
        self.pending = ("init", [str(f) for f in self.solver.files], None if split is None else [str(f) for f in split.apart])
        self.sent_ok = False
        try:
            _write_message(self.down, self.pending)
            self.sent_ok = True
        except (OSError, ValueError):
            pass
        self.pending = None

    def run(self, stage: str, facts: list, answers: list) -> list[str]:
        self.send(stage, facts, answers)
        return self.receive()

    def send(self, stage: str, facts: list, answers: list) -> None:
        """Start a stage (:meth:`Solver.run`); its atoms are read with :meth:`receive`, and this
        process may work meanwhile.  Once sent, the call is kept only as its message, compressed."""
        call = (stage, facts, answers)
        self.sent_ok = False
        if self.local:
            self.pending = (stage, call)
            return
        data = marshal.dumps(call)
        call = facts = answers = None
        try:
            _write_data(self.down, data)
            self.sent_ok = True
        except (OSError, ValueError):
            pass
        self.pending = (stage, zlib.compress(data, 1))

    def receive(self) -> list[str]:
        (_, call), self.pending = self.pending, None
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
                self.solver.run(*_unpack(earlier))  # this process's solver catches up
            self.calls = []
            call = _unpack(call)
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
        except OSError:
            pass
        try:
            self.proc.wait()
        except OSError:
            pass


def _serve(down: int, up: int) -> None:
    """The solver's process (:meth:`Worker._start`): the rule files and those left apart first,
    then each call's stage solved, its answer or its error written back, until the pipe closes."""
    code = 1
    try:
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the caller's to handle
        _evaluate._FORKED = True
        with os.fdopen(down, "rb") as rd, os.fdopen(up, "wb") as wr:
            init = _read_message(rd)
            if init is None or init[0] != "init":
                return
            files = [Path(f) for f in init[1]]
            split = None if init[2] is None else stages(files, apart=frozenset(Path(f) for f in init[2]))
            solver = Solver(files, split)
            solver.fork_stages = True
            while True:
                msg = _read_message(rd)
                if msg is None:
                    break
                args, msg = list(msg), None  # (the call's facts referenced by the call alone)
                try:
                    reply = ("ok", solver.run(args.pop(0), args.pop(0), args.pop(0)))
                except BaseException as e:  # reported; the caller runs the stage itself
                    reply = ("error", f"{type(e).__name__}: {e}")
                msg = None
                _write_message(wr, reply)
                reply = None
                _trim()
        code = 0
    finally:
        os._exit(code)


def _unpack(message: bytes) -> tuple:
    return marshal.loads(zlib.decompress(message))


PIECE = 50_000  # the items of a long list in a message written a frame at a time (_write_message)
_PIECES = "\0pieces"  # the head of a message written in pieces (no stage has this name)


def _write_message(f, obj) -> None:
    """``obj`` as a frame (marshal); a pair whose second item is a long list (a stage's atoms as
    texts, hundreds of MB at 20,000 roles) as a head and the list in pieces of :data:`PIECE`
    items, each a frame of its own: neither side then holds the whole list's bytes beside it."""
    if type(obj) is tuple and len(obj) == 2 and type(obj[1]) is list and len(obj[1]) > PIECE:
        items = obj[1]
        _write_data(f, marshal.dumps((_PIECES, obj[0], -(-len(items) // PIECE))))
        for at in range(0, len(items), PIECE):
            _write_data(f, marshal.dumps(items[at : at + PIECE]))
        return
    _write_data(f, marshal.dumps(obj))


def _write_data(f, data: bytes) -> None:
    f.write(struct.pack("<Q", len(data)))
    f.write(data)
    f.flush()


def _read_message(f):
    """A message :func:`_write_message` wrote (its pieces put together), None at the end of the
    pipe or when it ends within a message."""
    msg = _read_frame(f)
    if type(msg) is tuple and len(msg) == 3 and msg[0] == _PIECES:
        items: list = []
        for _ in range(msg[2]):
            piece = _read_frame(f)
            if type(piece) is not list:
                return None
            items += piece
        return (msg[1], items)
    return msg


def _read_frame(f):
    head = f.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    data = f.read(n)
    if len(data) < n:
        return None
    return marshal.loads(data)
