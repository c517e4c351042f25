"""`iam-reasoner inspect`: the JSON contract, the text summary, exit codes."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from reasoner.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "load"
EXAMPLE = ROOT / "examples" / "estate"
COUNTS = ("users", "groups", "roles", "policies", "resource_policies", "workloads")


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_inspect_json_field_contract():
    r = run("inspect", "-s", str(EXAMPLE), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) >= {"accounts", "organization", "missing", "warnings", "read", "skipped"}
    assert out["organization"] is True and out["missing"] == [] and out["warnings"] == []
    assert set(out["accounts"]) == {"111111111111", "222222222222", "333333333333"}
    for counts in out["accounts"].values():
        assert set(COUNTS) <= set(counts)
        assert all(type(counts[k]) is int for k in COUNTS)
    assert out["accounts"]["333333333333"]["users"] == 4
    assert out["accounts"]["222222222222"]["resource_policies"] == 2
    assert out["accounts"]["333333333333"]["workloads"] == 2


def test_inspect_json_reports_missing_warnings_and_skipped():
    r = run("inspect", "--snapshot", str(DATA / "corrupt-snapshot"), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert "iam data not collected for account 210987654321" in out["missing"]
    w = next(w for w in out["warnings"] if "truncated" in w.get("hint", ""))
    assert w["file"].endswith("authorization-details.json") and (w["line"], w["column"]) == (10, 5)
    assert out["skipped"]["files"] == 1 and out["skipped"]["statements"] == 1


def test_inspect_text_summary(shared):
    r = run("inspect", "-s", str(shared("data", "dumps", "cloudsplaining-managed-policy-mismatch.json")))
    assert r.exit_code == 0, r.output
    assert "organization: not collected" in r.output
    assert re.search(r"123456789012\s+0\s+1\s+0\s+1", r.output)
    assert "AWSLambdaReadOnlyAccess" in r.output and "missing (3)" in r.output


def test_strict_corrupt_input_exits_2_with_a_location():
    r = run("inspect", "-s", str(DATA / "corrupt-snapshot"), "--strict")
    assert r.exit_code == 2
    assert re.search(r"resources\.json:25:23: error: `Alow` is not a valid effect", r.output)
    assert "Traceback" not in r.output


def test_strict_truncated_file_exits_2_in_a_real_process(tmp_path):
    snap = tmp_path / "snap"
    shutil.copytree(DATA / "corrupt-snapshot", snap)
    shutil.rmtree(snap / "accounts" / "123456789012")
    exe = shutil.which("iam-reasoner", path=str(Path(sys.executable).parent)) or "iam-reasoner"
    p = subprocess.run([exe, "inspect", "-s", str(snap), "--strict"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert re.search(r"210987654321/authorization-details\.json:10:5: error: malformed JSON", p.stderr)
    assert "hint:" in p.stderr
    assert "Traceback" not in p.stdout + p.stderr


def test_lenient_is_the_default_and_exits_0():
    r = run("inspect", "-s", str(DATA / "corrupt-snapshot"))
    assert r.exit_code == 0
    assert "2 problem(s)" in r.output and "skipped: 1 files, 1 statements" in r.output


def test_snapshot_option_is_required_and_must_exist(tmp_path):
    r = run("inspect")
    assert r.exit_code == 2 and "--snapshot" in r.output
    r = run("inspect", "-s", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_not_a_snapshot_exits_2(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("[1, 2]")
    r = run("inspect", "-s", str(f))
    assert r.exit_code == 2 and "neither a snapshot nor Terraform" in r.output


def test_terraform_account_id_option():
    r = run("inspect", "-s", str(DATA / "terraform-plan.json"), "--account-id", "444455556666", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["accounts"]["444455556666"]["roles"] == 2
