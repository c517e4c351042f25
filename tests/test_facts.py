"""Facts are clingo symbols, never program text: strings from a policy cannot change the program.
The schema in encodings/doc.lp names every predicate the front end makes."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager

import clingo
from click.testing import CliRunner

from reasoner.cli import main
from reasoner.facts import FACT_SCHEMA_VERSION, add_fact_tuples, add_facts, facts_text, function, literals, policy_facts, shown_texts, string
from reasoner.parse import parse_policy_text
from reasoner.paths import encoding_file, encodings_dir

NASTY = [
    'say "hi"',
    "back\\slash\\",
    "end). evil.",
    "a :- b.",
    "% not a comment",
    "two\nlines\r\n",
    '#script (python)\nimport os\nos.system("touch /tmp/owned")\n#end.',
    '"). #show. a :- not a. #program base. %',
    "tab\there \u00e9\u4e2d\U0001f600 \\\" \x01",
    "#include \"/etc/passwd\".",
]


def nasty_policy() -> dict:
    statements = []
    for i, s in enumerate(NASTY):
        statements.append(
            {
                "Sid": s,
                "Effect": "Allow" if i % 2 else "Deny",
                "Action": ["s3:GetObject", "s3:*"],
                "Resource": ["arn:aws:s3:::bucket/" + s, "*"],
                "Condition": {"StringLike": {"aws:PrincipalTag/" + s.replace("\n", "_"): [s, "plain"]}, "ForAnyValue:StringEquals": {"aws:TagKeys": s}},
            }
        )
    statements.append({"Sid": NASTY[6], "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/" + NASTY[2]}, "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


def parse(doc: dict, kind="identity"):
    pol, diags = parse_policy_text(json.dumps(doc), kind, file="nasty.json")
    assert diags.items == []
    return pol


@contextmanager
def first_model(add, shows: str):
    """The model of facts added through a backend by ``add(backend)``, with ``shows``."""
    ctl = clingo.Control(["--warn=none"])
    with ctl.backend() as backend:
        add(backend)
    ctl.add("base", [], shows)
    ctl.ground([("base", [])])
    with ctl.solve(yield_=True) as handle:
        yield next(iter(handle))


def atoms_of(ctl: clingo.Control) -> set[clingo.Symbol]:
    ctl.ground([("base", [])])
    models = []
    with ctl.solve(yield_=True) as handle:
        for m in handle:
            models.append(set(m.symbols(atoms=True)))
    assert len(models) == 1
    return models[0]


def strings_of(symbols, name: str, arity: int, arg: int) -> list[str]:
    return sorted(s.arguments[arg].string for s in symbols if s.name == name and len(s.arguments) == arity)


def test_injection_through_the_backend_changes_nothing():
    """The issue: strings with `"`, `\\`, `).`, `:-`, `%`, newlines and `#script ... #end` in Sids,
    ARNs and condition values cannot change the program: the facts read back equal the input and
    nothing else appears."""
    doc = nasty_policy()
    trust = parse({"Version": "2012-10-17", "Statement": [doc["Statement"][-1]]}, "trust")
    identity = parse({"Version": "2012-10-17", "Statement": doc["Statement"][:-1]})
    symbols = list(policy_facts(1, identity)) + list(policy_facts(2, trust))
    ctl = clingo.Control(["--warn=none"])
    with ctl.backend() as backend:
        assert add_facts(backend, symbols) == len(symbols)
    got = atoms_of(ctl)
    assert got == set(symbols)
    assert len(symbols) == len(set(symbols))
    assert strings_of(got, "sid", 3, 2) == sorted(NASTY + [NASTY[6]])
    assert strings_of(got, "resource", 3, 2) == sorted(["arn:aws:s3:::bucket/" + s for s in NASTY] + ["*"] * len(NASTY))
    cond_values = strings_of(got, "cond_value", 5, 4)
    assert cond_values == sorted(NASTY * 2 + ["plain"] * len(NASTY))
    keys = strings_of(got, "cond", 5, 4)
    assert keys == sorted(["aws:principaltag/" + s.replace("\n", "_").lower() for s in NASTY] + ["aws:tagkeys"] * len(NASTY))
    assert strings_of(got, "principal", 4, 3) == ["arn:aws:iam::111122223333:role/" + NASTY[2]]
    assert len(identity.statements) == len(NASTY) and len(trust.statements) == 1


def test_bulk_facts_equal_the_public_api_and_read_back_as_clingo_writes_them():
    """The bulk path (clingo's C symbol API with buffers made once, used for request batches)
    adds exactly the facts the public API adds, nasty strings included, and reads shown atoms
    back as `str(symbol)` does; a fact of many arguments is added whole, not truncated."""
    doc = nasty_policy()
    identity = parse({"Version": "2012-10-17", "Statement": doc["Statement"][:-1]})
    symbols = list(policy_facts(1, identity))
    tuples = [(s.name, s.arguments) for s in symbols]
    tuples.append(("wide", [clingo.Number(i) for i in range(40)] + [clingo.String(NASTY[6])]))
    tuples.append(("zero", []))
    expected = set(symbols) | {clingo.Function(n, a) for n, a in tuples[-2:]}
    for text in NASTY + ["", "caf\u00e9"]:
        assert string(text) == clingo.String(text) and string(text).string == text
    made = [function(n, a) for n, a in tuples]
    assert made == [clingo.Function(n, a) for n, a in tuples]
    assert [str(m) for m in made] == [str(clingo.Function(n, a)) for n, a in tuples]
    assert len({hash(m) for m in made}) == len(set(made)) and made[-1].name == "zero" and made[-2].arguments[-1].string == NASTY[6]

    ctl = clingo.Control(["--warn=none"])
    with ctl.backend() as backend:
        assert add_fact_tuples(backend, iter(tuples)) == len(tuples)
    ctl.add("base", [], "#show sid/3. #show wide/41. #show zero/0.")
    got = atoms_of(ctl)
    assert got == expected

    with first_model(lambda backend: add_fact_tuples(backend, tuples), "#show sid/3. #show wide/41. #show zero/0.") as model:
        texts = shown_texts(model)
        assert texts == [str(s) for s in model.symbols(shown=True)]
    assert len(texts) == len(NASTY) + 2 and any(t.startswith("wide(0,1,") for t in texts)
    assert sorted(clingo.parse_term(t) for t in texts if t.startswith("sid(")) == sorted(s for s in symbols if s.name == "sid")

    huge = [clingo.Number(i) for i in range(300)]
    ctl = clingo.Control(["--warn=none"])
    with ctl.backend() as backend:
        assert add_fact_tuples(backend, [("huge", huge)]) == 1
    ctl.add("base", [], "#show huge/300.")
    assert atoms_of(ctl) == {clingo.Function("huge", huge)}


def test_program_literals_equal_the_public_api():
    """`literals` (clingo's C API, used to solve residual variants under assumptions) gives the
    program literal `symbolic_atoms[...]` gives for facts, derived atoms and externals, nasty
    strings included, and None for an atom the grounding does not hold."""
    ctl = clingo.Control(["--warn=none"])
    with ctl.backend() as backend:
        add_fact_tuples(backend, [("p", [string(t)]) for t in NASTY] + [("n", [clingo.Number(i)]) for i in range(5)])
    ctl.add("base", [], "q(X) :- n(X), X > 1, not r(X). r(3). #external e(X) : n(X). [free]")
    ctl.ground([("base", [])])
    present = [clingo.Function("p", [clingo.String(t)]) for t in NASTY]
    present += [clingo.Function(name, [clingo.Number(i)]) for name in ("n", "q", "r", "e") for i in range(5)]
    absent = [clingo.Function("p", [clingo.String("absent")]), clingo.Function("q", [clingo.Number(9)]), clingo.Function("zz", [])]
    want = [ctl.symbolic_atoms[s] for s in present + absent]
    got = literals(ctl, present + absent)
    assert got == [a.literal if a is not None else None for a in want]
    assert got[-3:] == [None, None, None] and sum(g is None for g in got) == 3 + 3 + 4  # q(0), q(1), q(3), r(0,1,2,4)
    externals = [g for s, g in zip(present, got) if s.name == "e"]
    assert len(set(externals)) == 5 and all(ctl.symbolic_atoms[s].is_external for s in present if s.name == "e")


def test_facts_text_reads_back_as_the_same_symbols():
    """`iam-reasoner facts` prints text; clingo reading that text gets exactly the symbols."""
    doc = nasty_policy()
    doc["Statement"] = doc["Statement"][:-1]
    policy = parse(doc)
    symbols = set(policy_facts(1, policy))
    text = facts_text(policy_facts(1, policy))
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], text)
    assert atoms_of(ctl) == symbols
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == len(symbols) + 1  # one fact a line: newlines are escaped
    assert all(line.endswith(").") for line in lines[:-1])


def test_facts_command_prints_the_same_symbols(tmp_path):
    doc = nasty_policy()
    doc["Statement"] = doc["Statement"][:-1]
    f = tmp_path / "nasty.json"
    f.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    r = CliRunner().invoke(main, ["facts", str(f)])
    assert r.exit_code == 0, r.output
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], r.output)
    pol, _ = parse_policy_text(f.read_text(encoding="utf-8"), "identity", str(f))
    assert atoms_of(ctl) == set(policy_facts(1, pol))
    assert "policy_name(1,\"%s\")." % str(f) in r.output


def test_fact_shapes():
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Sid": "S",
                "Effect": "Deny",
                "NotAction": "S3:GetObject",
                "NotResource": "arn:aws:s3:::b",
                "NotPrincipal": {"Service": "ec2.amazonaws.com"},
                "Condition": {"ForAllValues:StringLikeIfExists": {"AWS:TagKeys": ["a", True]}},
            },
        }
    )
    pol, _ = parse_policy_text(text, "resource")
    got = {str(s) for s in policy_facts(7, pol)}
    assert got == {
        "policy(7,resource)",
        'policy_name(7,"<policy>")',
        'policy_version(7,"2012-10-17")',
        "stmt(7,0,deny)",
        'sid(7,0,"S")',
        "not_action(7,0)",
        'action(7,0,"s3:getobject")',
        "not_resource(7,0)",
        'resource(7,0,"arn:aws:s3:::b")',
        "not_principal(7,0)",
        'principal(7,0,service,"ec2.amazonaws.com")',
        'cond(7,0,0,"StringLike","aws:tagkeys")',
        "cond_for_all_values(7,0,0)",
        "cond_if_exists(7,0,0)",
        'cond_value(7,0,0,0,"a")',
        'cond_value(7,0,0,1,"true")',
    }
    pol, _ = parse_policy_text(json.dumps({"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*"}}), "trust")
    assert {str(s) for s in policy_facts(1, pol) if s.name.startswith("no_")} == {"no_resource(1,0)"}
    pol, _ = parse_policy_text(json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}))
    assert {str(s) for s in policy_facts(1, pol) if s.name.startswith("no_")} == {"no_principal(1,0)"}


def _documented() -> dict[str, int]:
    text = encoding_file("doc.lp").read_text(encoding="utf-8")
    out = {}
    for m in re.finditer(r"^%\s+([a-z_]+)\(([^)]*)\)", text, re.M):
        out[m.group(1)] = len(m.group(2).split(","))
    return out


def test_schema_documents_every_predicate_and_its_version():
    text = encoding_file("doc.lp").read_text(encoding="utf-8")
    assert text.startswith(f"% iam-reasoner fact schema, version {FACT_SCHEMA_VERSION} ")
    documented = _documented()
    doc = nasty_policy()
    pol, _ = parse_policy_text(json.dumps({"Version": "2012-10-17", "Statement": doc["Statement"][-1:]}), "trust")
    made = {(s.name, len(s.arguments)) for s in policy_facts(1, pol)}
    pol, _ = parse_policy_text(json.dumps({"Statement": [{"Effect": "Deny", "NotAction": "a:b", "NotResource": "*", "Condition": {"ForAllValues:StringEqualsIfExists": {"a:b": "c"}}}]}))
    made |= {(s.name, len(s.arguments)) for s in policy_facts(1, pol)}
    assert {name for name, _ in made} >= {"policy", "sid", "action", "resource", "principal", "cond_value", "not_action", "cond_for_all_values", "cond_if_exists", "no_resource", "no_principal"}
    for name, arity in made:
        assert documented.get(name) == arity, (name, arity)


def test_no_script_in_any_encoding():
    for f in encodings_dir().rglob("*.lp"):
        assert "#script" not in f.read_text(encoding="utf-8"), f


def test_shown_atoms_kept_as_handles_state_the_same_atoms_again():
    """A stage's atoms kept as handles (`shown_split`) and stated in another control
    (`add_handles`) are the same atoms, nasty strings included; the rest are written as clingo
    writes them, and a kept signature is also written when asked."""
    from reasoner.facts import add_handles, shown_split

    doc = nasty_policy()
    symbols = list(policy_facts(1, parse({"Version": "2012-10-17", "Statement": doc["Statement"][:-1]})))
    with first_model(lambda backend: add_facts(backend, symbols), "#show sid/3. #show stmt/3. #show action/3. #show policy/2.") as model:
        everything = [str(s) for s in model.symbols(shown=True)]
        texts, kept = shown_split(model, frozenset({("sid", 3), ("action", 3), ("absent", 1)}), frozenset({("action", 3)}))
        assert sorted(texts) == sorted(t for t in everything if not t.startswith("sid("))
        assert set(kept) == {("sid", 3), ("action", 3)}  # a signature with no atom has no entry
    again = clingo.Control(["--warn=none"])
    with again.backend() as backend:
        assert add_handles(backend, kept[("sid", 3)] + kept[("action", 3)]) == len(kept[("sid", 3)]) + len(kept[("action", 3)])
    again.add("base", [], "#show sid/3. #show action/3.")
    stated = atoms_of(again)
    assert stated == {s for s in symbols if s.name in ("sid", "action")}
    assert {s.arguments[2].string for s in stated if s.name == "sid"} >= set(NASTY[:3])


def test_atoms_made_in_another_process_come_back_as_the_same_symbols():
    """A stage solved in a forked process (staged.Solver, in its worker) hands its kept atoms
    back as plain values (`plain_terms`), which this process makes symbols again (`handles_of`):
    atoms only the other process made — nasty strings, negative functions, tuples, numbers and
    the bounds — come back as the very symbols clingo makes here (the C path equals the public
    API's, both ways)."""
    from reasoner import evaluate
    from reasoner.facts import add_handles, handles_of, plain_terms, shown_split

    doc = nasty_policy()
    symbols = list(policy_facts(1, parse({"Version": "2012-10-17", "Statement": doc["Statement"][:-1]})))
    rules = 'made(S, -f(S, h(-7)), (S, 1), (), #inf, #sup) :- sid(_, _, S). made(-g, "", (2,), -1, 0, x) :- sid(_, _, _). #show made/6.'

    def solved_there():
        with first_model(lambda backend: add_facts(backend, symbols), rules) as model:
            _, kept = shown_split(model, frozenset({("made", 6)}))
        handles = kept[("made", 6)]
        return plain_terms(handles), len(handles)

    started = evaluate._start(solved_there)
    assert started is not None
    (plain, _), = evaluate._collect([started])
    expected = set()
    for s in symbols:
        if s.name == "sid":
            sid = s.arguments[2]
            expected.add(clingo.Function("made", [sid, clingo.Function("f", [sid, clingo.Function("h", [clingo.Number(-7)])], False),
                                                   clingo.Tuple_([sid, clingo.Number(1)]), clingo.Tuple_([]),
                                                   clingo.Infimum, clingo.Supremum]))
    expected.add(clingo.Function("made", [clingo.Function("g", [], False), clingo.String(""), clingo.Tuple_([clingo.Number(2)]),
                                          clingo.Number(-1), clingo.Number(0), clingo.Function("x")]))
    assert len(plain) == len(expected) == len(NASTY) + 1
    handles = handles_of(plain)
    assert sorted(handles) == sorted(int(s._rep) for s in expected)
    assert sorted(map(repr, plain_terms(handles))) == sorted(map(repr, plain_terms(list(expected))))  # C path == public API
    again = clingo.Control(["--warn=none"])
    with again.backend() as backend:
        add_handles(backend, handles)
    again.add("base", [], "#show made/6.")
    assert atoms_of(again) == expected
