"""The messages between the analysis and the rules' solver process (staged._write_message and
_read_message), and the atoms a stage's process hands back kept packed (staged.Packed)."""
from __future__ import annotations

import io
import marshal
import struct

import clingo

from reasoner import staged
from reasoner.facts import plain_terms, shown_split


def _frames(data: bytes) -> list:
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack("<Q", data[at : at + 8])
        out.append(marshal.loads(data[at + 8 : at + 8 + n]))
        at += 8 + n
    return out


def test_a_long_list_goes_in_pieces_and_comes_back_whole(monkeypatch):
    monkeypatch.setattr(staged, "PIECE", 3)
    texts = [f'escalation("arn:aws:iam::1:role/r{i}",m,"*",admin)' for i in range(10)]
    buf = io.BytesIO()
    staged._write_message(buf, ("ok", texts))
    frames = _frames(buf.getvalue())
    assert len(frames) == 1 + 4, "not written in pieces of PIECE items"
    assert [len(f) for f in frames[1:]] == [3, 3, 3, 1]
    buf.seek(0)
    assert staged._read_message(buf) == ("ok", texts)
    assert staged._read_message(buf) is None  # the end of the pipe


def test_short_messages_are_one_frame_and_a_cut_message_is_none(monkeypatch):
    monkeypatch.setattr(staged, "PIECE", 3)
    for msg in [("ok", ["a", "b"]), ("error", "ValueError: x"), ("init", ["f.lp"], None), ("after", [], [])]:
        buf = io.BytesIO()
        staged._write_message(buf, msg)
        assert len(_frames(buf.getvalue())) == 1
        buf.seek(0)
        assert staged._read_message(buf) == msg
    buf = io.BytesIO()
    staged._write_message(buf, ("ok", [str(i) for i in range(7)]))
    cut = buf.getvalue()[:-5]  # the last piece cut short: the solver's process died writing it
    assert staged._read_message(io.BytesIO(cut)) is None


def _handles(program: str) -> list:
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], program)
    ctl.ground([("base", [])])
    with ctl.solve(yield_=True) as h:
        for m in h:
            _, kept = shown_split(m, frozenset({("escalation", 4)}))
            return kept.get(("escalation", 4), [])
    return []


def test_packed_atoms_are_made_when_first_read_and_are_the_atoms():
    one = plain_terms(_handles('escalation("a",m,"r",admin). escalation("b",m,"r",raise("c")).'))
    two = plain_terms(_handles('escalation("d",n,"*",admin).'))
    packed = staged.Packed()
    packed.extend(staged.Packed(one))
    packed.extend(staged.Packed(two))
    assert packed._handles is None, "made before anyone read them"
    got = sorted(repr(p) for p in plain_terms(list(packed)))
    assert got == sorted(repr(p) for p in one + two)
    assert len(packed) == 3 and packed._handles is not None
    assert plain_terms([packed[0]]) in ([p] for p in one + two)
    # extended once made: still every atom of both
    packed.extend(staged.Packed(two))
    assert sorted(repr(p) for p in plain_terms(list(packed))) == sorted(repr(p) for p in one + two + two)
    assert list(staged.Packed([])) == [] and list(staged.Packed()) == []


def test_the_facts_handed_to_a_solve_are_let_go_before_it_grounds(tmp_path, monkeypatch):
    """A solve takes the lists of fact symbols it is handed (each caller hands over a list of its
    own): they are emptied once the facts are the control's, before the grounding, and the
    atoms shown are those of the facts."""
    rules = tmp_path / "r.lp"
    rules.write_text("b(X) :- a(X).\n#show b/1.\n")
    lists = [[clingo.Function("a", [clingo.String(f"p{i}")]) for i in range(5)]]
    seen: list = []

    def build(ctl):
        ctl.load(str(rules))

    solver = staged.Solver([rules], None)
    real_ground = clingo.Control.ground

    def ground(ctl, parts, *a, **k):
        seen.append(len(lists))
        return real_ground(ctl, parts, *a, **k)

    monkeypatch.setattr(clingo.Control, "ground", ground)
    texts, _ = solver._solve_here(build, lists, [])
    assert seen == [0], "the lists were still held when the grounding began"
    assert sorted(texts) == sorted(f'b("p{i}")' for i in range(5))
