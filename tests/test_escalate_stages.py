"""The escalation rules grounded in stages (reasoner/staged.py): the split follows what each
predicate depends on, and the report is the one the whole program gives, for the shipped rules,
for a user's rules whose options read the answers, and when the forked solver fails."""
from __future__ import annotations

import json
import os
import signal

import pytest

from reasoner import staged
from reasoner.analysis import Analyzer
from reasoner.escalate import escalations, rule_files
from reasoner.paths import encoding_file

from .conftest import synthetic_estate


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    return synthetic_estate(tmp_path_factory, "stages", 120, 40, 11)


def _report(est, **kw) -> str:
    return json.dumps(escalations(Analyzer(est), **kw).as_json(), sort_keys=True)


def _heads(statements) -> set:
    return {(st.head.atom.symbol.name, len(st.head.atom.symbol.arguments)) for st in statements
            if st.head.atom.ast_type == staged.A.ASTType.SymbolicAtom}


def _bodies(statements) -> set:
    out: set = set()
    for st in statements:
        for lit in st.body:
            staged._atoms(lit, out)
    return out


def test_the_shipped_rules_split_by_what_reads_the_answers_and_the_edges():
    split = staged.stages(rule_files())
    assert split is not None and list(split.programs) == ["base", "edged", "after"] and split.grown == "edged"
    base, edged, after = (split.programs[k] for k in ("base", "edged", "after"))
    # nothing before `after` reads an answer of the evaluation; everything that does is after
    assert not (_bodies(base) | _bodies(edged)) & staged.ANSWERS
    assert {("escalation", 4), ("granted", 3), ("raised", 5), ("admin_dist", 2), ("next_step", 4)} <= _heads(after)
    # conditional/4 is there for rules that read it: with none, nothing shown depends on it
    assert ("conditional", 4) not in _heads(after)
    assert not (_heads(base) | _heads(edged)) & _heads(after)
    # `base` reads no edge: it runs once, while the edges into administrators are evaluated;
    # `edged` holds the options that read edges and, copied, the rules that read what they derive
    assert not _bodies(base) & staged.EDGES
    assert {("option", 4), ("need", 3), ("need_as_trusted", 3), ("ready", 2), ("also_requires", 6), ("need_edges_from", 1)} <= _heads(base)
    assert _heads(edged) == {("option", 4), ("need", 3), ("need_as_trusted", 3), ("also_requires", 6)}
    assert {str(st) for st in edged if ("assumes", 2) in _bodies([st])} and len(edged) < 15
    # after reads the options and what they require, from both; edged reads base's filters
    assert {("option", 4), ("requires", 3), ("also_requires", 6)} <= split.inputs["after"]
    assert {("ready", 2), ("reachable_from", 2), ("requires", 3)} <= split.inputs["edged"]
    assert ("option", 4) not in split.inputs["edged"]  # only the options edged derives itself
    # the ways left apart (the driver decides them alone, once the edges on them are known):
    # `after` keeps the escalations, without the distances
    apart = staged.stages(rule_files(), apart=frozenset({encoding_file("escalate/ways.lp")}))
    assert ("escalation", 4) in _heads(apart.programs["after"])
    assert not {("raised", 5), ("admin_dist", 2), ("next_step", 4), ("fwd", 3)} & _heads(apart.programs["after"])
    assert not {("admin_dist", 2), ("next_step", 4), ("raised", 5)} & apart.shows


def test_rules_no_shown_atom_depends_on_are_left_out_only_when_that_cannot_change_the_models(tmp_path):
    """A rule whose atoms nothing shown (nor a constraint) depends on is not grounded; one that
    reads conditional/4 brings it back; and rules left out must not read what they derive other
    than positively (`p :- not q. q :- not p.` has two models, and a constraint over the rest
    could still see none): otherwise nothing is left out."""
    reads = tmp_path / "reads.lp"
    reads.write_text('flagged(X) :- conditional(X,M,R,G).\n#show flagged/1.\n')
    split = staged.stages(rule_files([reads]))
    assert ("conditional", 4) in _heads(split.programs["after"]) and ("flagged", 1) in _heads(split.programs["after"])
    unread = tmp_path / "unread.lp"
    unread.write_text('lonely(X) :- escalation(X,M,R,G).\n')
    split = staged.stages(rule_files([unread]))
    assert ("lonely", 1) not in _heads(split.programs["after"])
    cycle = tmp_path / "cycle.lp"
    cycle.write_text('odd(X) :- escalation(X,M,R,G), not even(X).\neven(X) :- escalation(X,M,R,G), not odd(X).\n')
    split = staged.stages(rule_files([cycle]))
    assert {("odd", 1), ("even", 1), ("conditional", 4), ("lonely", 1)} & _heads(split.programs["after"]) == {("odd", 1), ("even", 1), ("conditional", 4)}


def test_rules_not_linear_in_what_reads_edges_keep_one_stage_before(tmp_path):
    """A rule that joins two atoms derived from edges cannot be split into base and edged
    parts: the options and their needs then run as one stage, after the edges asked for."""
    f = tmp_path / "join.lp"
    f.write_text('pair(X,Y) :- option(M,X,R,G), option(M,Y,R,G), X != Y.\n#show pair/2.\n')
    split = staged.stages(rule_files([f]))
    assert split is not None and list(split.programs) == ["edges", "before", "after"] and split.grown == "before"


def test_rules_the_split_cannot_place_run_as_one_program(tmp_path):
    for text in ("{ extra(1) }.", "#external ext(1).", "p(1;2).", "#program more."):
        f = tmp_path / "odd.lp"
        f.write_text(text + "\n")
        assert staged.stages(rule_files([f])) is None, text


def test_staged_and_whole_program_give_the_same_report(estate, monkeypatch):
    stages_run: list = []
    run = staged.Solver.run

    def counting(self, stage, facts, answers):
        stages_run.append(stage)
        return run(self, stage, facts, answers)

    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    monkeypatch.setattr(staged.Solver, "run", counting)
    split = _report(estate)
    assert stages_run[:2] == ["base", "edged"] and "after" in stages_run and stages_run.count("base") == 1
    # the ways to arbitrary permissions are decided once, alone, after the edges on them
    assert stages_run[-1] == "ways" and stages_run.count("ways") == 1
    stages_run.clear()
    monkeypatch.setattr(staged, "stages", lambda files, apart=frozenset(): None)
    whole = _report(estate)
    assert set(stages_run) <= {"before", "after", "ways"}
    assert split == whole
    assert json.loads(split)["findings"]


def test_after_solved_in_parts_by_actor_gives_the_same_report(estate, monkeypatch):
    """The shipped `after` rules are actor-local (an escalation of X reads only what X may do and
    atoms that name no actor): solved in parts, each with every atom of some actors, the report
    is the one solved whole; rules that join two actors are never split."""
    split = staged.stages(rule_files(), apart=frozenset({encoding_file("escalate/ways.lp")}))
    assert staged._actor_local(split.programs["after"])
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    whole = _report(estate)
    parts: list = []
    solve = staged.Solver._solve

    def counting(self, build, lists, handles, **kw):
        parts.append(sum(len(x) for x in lists) + len(handles))
        return solve(self, build, lists, handles, **kw)

    monkeypatch.setattr(staged.Solver, "_solve", counting)
    monkeypatch.setattr(staged, "PART", 30)
    assert _report(estate) == whole
    # (base, edged, the after parts; the ways are solved in the solver's process, not through
    # _solve): `after` was solved in three parts or more
    assert len(parts) >= 5 and json.loads(whole)["findings"]


def test_a_small_after_stage_is_solved_in_two_halves_side_by_side(estate, monkeypatch):
    """Below PART atoms named by an actor (and from SIDE_BY_SIDE on), `after` is solved in two
    halves at once, each in a process forked for it, where stages are solved in forked processes
    (a Worker's solver) and two processes may work: the report is the one solved whole, and the
    second half's process was started before the first's was waited for."""
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    whole = _report(estate)
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    # the solver here (not in a process of its own, whose module this test cannot set), forking
    # a process for each stage as a Worker's does
    monkeypatch.setattr(staged, "_own_process", lambda: False)
    made = staged.Solver.__init__

    def forking(self, *args, **kw):
        made(self, *args, **kw)
        self.fork_stages = True

    monkeypatch.setattr(staged.Solver, "__init__", forking)
    monkeypatch.setattr(staged, "SIDE_BY_SIDE", 10)
    problems: list = []
    forked = staged.Solver._solved_forked

    waited: list = []  # the processes each wait of the solver's stages was for
    inside: list = []

    def counting(self, build, todo, *args):
        problems.append(len(todo))
        inside.append(1)
        try:
            return forked(self, build, todo, *args)
        finally:
            inside.pop()

    collect = staged._evaluate._collect

    def waiting(started):
        if inside:
            waited.append({pid for pid, _ in started})
        return collect(started)

    monkeypatch.setattr(staged.Solver, "_solved_forked", counting)
    monkeypatch.setattr(staged._evaluate, "_collect", waiting)
    assert _report(estate) == whole
    assert problems.count(2) == 1 and len(problems) >= 3, problems  # base, edged: one process each
    # the halves: two processes, both started before either was waited for
    halves = [w for w in waited if len(w) == 2]
    assert len(halves) == 1, waited
    # without the halves (a stage of fewer atoms), every stage is one process
    monkeypatch.setattr(staged, "SIDE_BY_SIDE", 10**9)
    problems.clear()
    assert _report(estate) == whole
    assert problems and set(problems) == {1}


@pytest.mark.parametrize("rule", [
    "pair(X,Y) :- escalation(X,M,R,G), escalation(Y,M,R,G), X != Y.",  # two actors
    "any_escalation :- escalation(X,M,R,G).",  # an atom of no actor derived
    "granted(X,A,R) :- can(Y,A,R), assumes(X,Y).",  # another actor's answer
    'escalation("arn:aws:iam::1:role/r",M,R,G) :- option(M,X,R,G).',  # no actor variable
])
def test_rules_that_are_not_actor_local_are_recognised(rule):
    from clingo.ast import parse_string
    stmts: list = []
    parse_string(rule, stmts.append)
    assert not staged._actor_local([st for st in stmts if st.ast_type == staged.A.ASTType.Rule])


# A method whose options read an answer (allowed to pass the role: then the function must be
# creatable): its need atoms come from the stage after the answers, which asks again.
PASS_THEN_CREATE = """
method(user_pass_then_create, "iam:PassRole then lambda:CreateFunction", "user-1").
requires(user_pass_then_create, "lambda:createfunction", any).
option(user_pass_then_create, X, R, R) :- granted(X, "iam:passrole", R), trusts_service(R, "lambda.amazonaws.com"), principal(X), not admin(X), X != R.
need(X, "iam:passrole", R) :- ready(X, lambda_create_invoke), acts_from(X, Acct), reachable_from(Acct, R), trusts_service(R, "lambda.amazonaws.com"), X != R.
"""


def test_options_that_read_answers_are_asked_for_again(estate, tmp_path, monkeypatch):
    rules = tmp_path / "pass-then-create.lp"
    rules.write_text(PASS_THEN_CREATE)
    split = staged.stages(rule_files([rules]))
    assert split is not None and ("option", 4) in _heads(split.programs["after"]) and ("need", 3) in _heads(split.programs["after"])
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    stages_run: list = []
    run = staged.Solver.run
    monkeypatch.setattr(staged.Solver, "run", lambda self, stage, *a: stages_run.append(stage) or run(self, stage, *a))
    staged_report = json.loads(_report(estate, rules=[rules]))
    assert stages_run.count("after") >= 2  # what the options need, then the options that read the answers
    monkeypatch.setattr(staged, "stages", lambda files, apart=frozenset(): None)
    whole = json.loads(_report(estate, rules=[rules]))
    assert staged_report == whole
    assert any(f["method"] == "user_pass_then_create" for f in whole["findings"])


def test_a_solver_process_that_dies_is_replaced_here(estate, monkeypatch):
    """The solver's process (a new interpreter, each stage solved in a fork of it) is killed
    as `after` is sent to it: this process runs the stages itself, replaying the calls made so
    far, and the report is the same as with every stage solved here."""
    monkeypatch.setenv("IAM_REASONER_JOBS", "1")
    here = _report(estate)
    run, send = staged.Solver.run, staged.Worker.send
    calls: list = []
    workers: list = []

    def counting(self, stage, facts, answers):  # (runs in this process only: the worker is not a fork)
        calls.append(stage)
        return run(self, stage, facts, answers)

    def killing(self, stage, facts, answers):
        # (killed before the call is written: it cannot have answered, however fast it would be)
        if stage == "after" and self.pid is not None and not workers:
            workers.append((self.pid, open(f"/proc/{self.pid}/cmdline", "rb").read()))
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        return send(self, stage, facts, answers)

    monkeypatch.setattr(staged.Solver, "run", counting)
    monkeypatch.setattr(staged.Worker, "send", killing)
    monkeypatch.setenv("IAM_REASONER_JOBS", "2")
    calls.clear()
    assert _report(estate) == here
    assert workers and b"_serve" in workers[0][1]  # there was a solver process, and it was killed
    # here: the calls before `after` replayed, then `after` and what follows
    assert calls[: calls.index("after")] and "after" in calls


def test_the_ways_are_the_solvers_last_stage_solved_in_its_own_process(monkeypatch, forks):
    """The ways, the last stage, are solved in the solver's process itself, in a Worker's too
    (``fork_stages``: every other stage in a fork), once what only other stages read is let go:
    the same atoms either way; asked for another stage afterwards, the solver says so (a Worker
    then replays the calls in the analysis' process)."""
    from clingo import Function, String

    def fresh(fork_stages):
        s = staged.Solver(rule_files(), staged.stages(rule_files(), apart=frozenset({encoding_file("escalate/ways.lp")})))
        s.fork_stages = fork_stages
        a, b, c = (f"arn:aws:iam::111111111111:role/{n}" for n in "abc")
        s.escalation = [Function("escalation", [String(a), Function("iam_attach_role_policy"), String(b), String(b)]),
                        Function("escalation", [String(b), Function("iam_put_role_policy"), String(b), Function("admin")]),
                        Function("escalation", [String(c), Function("iam_pass_role"), String(a), Function("raise", [String(a)])])]
        facts = [("principal", (p,), True) for p in (a, b, c)] + [("assumes", (c, a), True), ("max_steps", (6,), True)]
        return s, facts

    here, facts = fresh(False)
    forks.clear()
    expected = sorted(here.run("ways", facts, []))
    assert len(forks) == 0 and any(t.startswith("admin_dist(") for t in expected)
    assert here.facts is None and here.answers is None
    # (c raises a, which it acts as by assuming it: two steps; by a, three)
    assert 'admin_dist("arn:aws:iam::111111111111:role/c",2)' in expected
    own, facts = fresh(True)
    got = sorted(own.run("ways", facts, []))
    assert len(forks) == 0 and got == expected
    assert own.facts is None and own.answers is None  # (let go before the ways were grounded)
    with pytest.raises(RuntimeError, match="last stage"):
        own.run("after", [], [])
