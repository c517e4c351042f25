"""`iam-reasoner escalations`: JSON output shape, a user's rules file through --rules."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from reasoner.cli import main

from .escalate_estates import Case, write_snapshot
from .test_escalate_paths import SETUPS, required

# A method the shipped rules do not have, in the documented predicate interface (core.lp):
# AWS Step Functions state machines run as a role that states.amazonaws.com may assume.
STEP_FUNCTIONS = """
method(sfn_create_start, "iam:PassRole + states:CreateStateMachine + states:StartExecution", "custom-sfn-001").
requires(sfn_create_start, "iam:passrole", on).
requires(sfn_create_start, "states:createstatemachine", any).
requires(sfn_create_start, "states:startexecution", any).
option(sfn_create_start, X, R, R) :- ready(X,sfn_create_start), trusts_service(R,"states.amazonaws.com"), X != R.
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "snapshot"
    lam = Case("200000000001", SETUPS["paths"]["lambda-001"], required("lambda-001"))
    sfn_setup = {"target": "role/admin", "roles": {"admin": {"trusts": "states.amazonaws.com", "admin": True}}, "at": {"iam:PassRole": "role/admin"}}
    sfn = Case("200000000002", sfn_setup, ["iam:PassRole", "states:CreateStateMachine", "states:StartExecution"])
    write_snapshot(root, [lam, sfn])
    return root, lam, sfn


def invoke(*args):
    return CliRunner().invoke(main, ["escalations", *args])


def test_json_shape(snapshot):
    root, lam, sfn = snapshot
    r = invoke("-s", str(root), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) >= {"findings", "admins"}
    assert f"arn:aws:iam::{lam.account}:role/admin" in out["admins"]
    (f,) = [f for f in out["findings"] if f["principal"] == lam.attacker]
    assert set(f) >= {"principal", "method", "target", "conditions", "proof"}
    assert f["method"] == "lambda_create_invoke"
    assert f["target"] == lam.target
    assert f["conditions"] == []
    assert f["steps_to_admin"] == 1
    hops = f["proof"]["hops"]
    assert sorted(h["action"].lower() for h in hops) == ["iam:passrole", "lambda:createfunction", "lambda:invokefunction"]
    # without the user's rules, Step Functions is no method
    assert not [f for f in out["findings"] if f["principal"] == sfn.attacker]


def test_rules_file_adds_a_method(snapshot, tmp_path):
    root, lam, sfn = snapshot
    rules = tmp_path / "stepfunctions.lp"
    rules.write_text(STEP_FUNCTIONS)
    r = invoke("-s", str(root), "--rules", str(rules), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    (f,) = [f for f in out["findings"] if f["principal"] == sfn.attacker]
    assert (f["method"], f["target"], f["steps_to_admin"]) == ("sfn_create_start", sfn.target, 1)
    assert f["title"] == "iam:PassRole + states:CreateStateMachine + states:StartExecution"
    # the shipped methods still run beside it
    assert [f["method"] for f in out["findings"] if f["principal"] == lam.attacker] == ["lambda_create_invoke"]
    text = invoke("-s", str(root), "--rules", str(rules), "-q")
    assert text.exit_code == 0
    assert f"{sfn.attacker}: iam:PassRole + states:CreateStateMachine + states:StartExecution on {sfn.target}" in text.output


def test_rules_file_that_does_not_load(snapshot, tmp_path):
    root, _, _ = snapshot
    bad = tmp_path / "bad.lp"
    bad.write_text("method(x, \"y\"")
    r = invoke("-s", str(root), "--rules", str(bad), "--json")
    assert r.exit_code == 2
    assert "does not load" in r.output and f"{bad}:2:1: error: rules file" in r.output and "syntax error" in r.output
    # a rule clingo cannot ground (an unsafe variable): the place it names, no traceback
    unsafe = tmp_path / "unsafe.lp"
    unsafe.write_text("% a method without its body\nneed(X, \"iam:passrole\", R) :- role(R).\n")
    r = invoke("-s", str(root), "--rules", str(unsafe))
    assert r.exit_code == 2, r.output
    assert f"{unsafe}:2:1: error: rules file" in r.output and "unsafe" in r.output and "Traceback" not in r.output
    r = invoke("-s", str(root), "--rules", str(tmp_path / "missing.lp"))
    assert r.exit_code == 2


def test_json_and_text_are_written_a_finding_at_a_time_as_one_document(snapshot, tmp_path_factory):
    """`--json` writes the findings one at a time, each proof's reasons located for it and not
    kept: the text is the document `json.dumps(as_json(), indent=2)` gives, byte for byte (also
    with no findings at all: an administrator asked about), and no decision of a proof holds its
    reasons afterwards."""
    from reasoner.analysis import Analyzer
    from reasoner.escalate import escalations
    from reasoner.load import load
    from reasoner.render import escalations_lines, text

    from .conftest import synthetic_estate

    est = synthetic_estate(tmp_path_factory, "stream", 60, 20, 5)
    some_admin = escalations(Analyzer(est)).admins[0]
    for principal in (None, some_admin):
        streamed = escalations(Analyzer(est), principal)
        written = "".join(streamed.json_text(indent=2))
        assert all(h.evaluation._reasons is None for f in streamed.findings for h in f.hops)
        whole = escalations(Analyzer(est), principal)
        assert written == json.dumps(whole.as_json(), indent=2)
        assert bool(whole.findings) == (principal is None)
        # the text tree too: a finding at a time, the tree `text` draws of the whole
        streamed = escalations(Analyzer(est), principal)
        lines = "\n".join(escalations_lines(streamed))
        assert all(h.evaluation._reasons is None for f in streamed.findings for h in f.hops)
        assert lines == text(escalations(Analyzer(est), principal)) and ("statement" in lines) == (principal is None)
    root, _, _ = snapshot
    r = invoke("-s", str(root), "--json")
    assert r.exit_code == 0 and r.output == json.dumps(escalations(Analyzer(load(root))).as_json(), indent=2) + "\n"
    r = invoke("-s", str(root), "-q")
    assert r.exit_code == 0 and r.output == text(escalations(Analyzer(load(root)))) + "\n"
