"""`iam-reasoner ask` and `iam-reasoner repl`: outputs, JSON, exit codes, and the REPL fed through a
pipe in a real process."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from reasoner.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "estate")
DEV = "arn:aws:iam::333333333333"
EXE = shutil.which("iam-reasoner", path=str(Path(sys.executable).parent)) or "iam-reasoner"


def run(*args):
    return CliRunner().invoke(main, list(args))


def repl(stdin: str, *extra):
    return subprocess.run([EXE, "repl", "-s", EXAMPLE, *extra], input=stdin, capture_output=True, text=True, timeout=300)


def test_ask_who_can_text():
    r = run("ask", "who can s3:GetObject on arn:aws:s3:::example-prod-data/* where aws:SecureTransport = true", "-s", EXAMPLE)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("who can s3:GetObject on arn:aws:s3:::example-prod-data/*: 4 principal(s)\n")
    assert "arn:aws:iam::222222222222:role/orders-lambda" in r.output


def test_ask_json_has_the_shape_of_the_matching_command():
    q = "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/* where aws:SourceIp = 198.51.100.1"
    r = run("ask", q, "-s", EXAMPLE, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    same = run("who-can", "s3:PutObject", "arn:aws:s3:::example-dev-uploads/*", "-s", EXAMPLE, "--context", "aws:SourceIp=198.51.100.1", "--json")
    assert got == json.loads(same.output)
    assert f"{DEV}:user/ci-bot" not in {p["principal"] for p in got["principals"]}

    r = run("ask", "can alice do lambda:UpdateFunctionCode on arn:aws:lambda:us-east-1:222222222222:function:orders-api", "-s", EXAMPLE, "--json")
    out = json.loads(r.output)
    assert {"decision", "conditions", "path", "proof"} <= set(out)
    assert out["path"] == [f"{DEV}:user/alice", f"{DEV}:role/deployer", "arn:aws:iam::222222222222:role/prod-deploy"]

    out = json.loads(run("ask", "escalations for bob", "-s", EXAMPLE, "--json").output)
    assert [(f["principal"], f["method"]) for f in out["findings"]] == [(f"{DEV}:user/bob", "iam_create_policy_version")]
    out = json.loads(run("ask", "what can carol in service iam", "-s", EXAMPLE, "--json").output)
    assert [a["action"] for a in out["actions"]] == ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"]
    out = json.loads(run("ask", "path from alice to role/deployer", "-s", EXAMPLE, "--json").output)
    assert out["from"] == f"{DEV}:user/alice" and [h["resource"] for h in out["paths"][0]] == [f"{DEV}:role/deployer"]


def test_ask_pictures():
    r = run("ask", "can alice do lambda:UpdateFunctionCode on arn:aws:lambda:us-east-1:222222222222:function:orders-api", "-s", EXAMPLE, "--format", "mermaid")
    assert r.exit_code == 0 and r.output.startswith("flowchart LR\n")
    assert r.output.count("-->") + r.output.count("-.->") == 3
    r = run("ask", "escalations", "-s", EXAMPLE, "--format", "dot")
    assert r.exit_code == 0 and r.output.startswith("digraph answer {") and "administrator" in r.output


def test_ask_bad_query_exits_2_located_without_traceback():
    r = run("ask", "who can s3:GetObject on bucket", "-s", EXAMPLE)
    assert r.exit_code == 2
    assert "<query>:1:25: error: expected a resource (an ARN, an ARN pattern or `*`), found `bucket`" in r.output
    assert "hint: " in r.output and "                          ^" in r.output
    assert "Traceback" not in r.output


def test_ask_unknown_name_exits_2():
    r = run("ask", "what can zed", "-s", EXAMPLE)
    assert r.exit_code == 2
    assert "<query>:1:10: error: no principal of this estate is named `zed`" in r.output


def test_ask_bad_query_fails_before_reading_the_snapshot(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    r = run("ask", "who can", "-s", str(tmp_path / "broken.json"))
    assert r.exit_code == 2 and "<query>:1:8: error: the query ends too early" in r.output


def test_ask_unreadable_snapshot_exits_2(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    r = run("ask", "who can s3:GetObject on *", "-s", str(tmp_path / "broken.json"))
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_repl_answers_line_by_line_through_a_pipe():
    p = repl(
        "help\n"
        "\n"
        "# a comment\n"
        "who can directly s3:PutObject on arn:aws:s3:::example-dev-uploads/*\n"
        "format json\n"
        "can alice do s3:GetObject on arn:aws:s3:::example-dev-uploads/x\n"
        "escalations for bob\n"
        "quit\n"
        "who can s3:GetObject on *\n"  # after quit: never read
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    out = p.stdout
    assert out.startswith("questions (keywords in any case")
    assert "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/*: 6 principal(s)" in out
    rest = out[out.index("\n{") + 1:]
    dec = json.JSONDecoder()
    can, n = dec.raw_decode(rest)
    assert can["principal"] == f"{DEV}:user/alice" and can["decision"] in ("Allowed", "ConditionallyAllowed")
    esc, m = dec.raw_decode(rest[n:].lstrip())
    assert [f["method"] for f in esc["findings"]] == ["iam_create_policy_version"]
    assert rest[n:].lstrip()[m:].strip() == ""  # nothing after quit
    assert "iam>" not in out  # no prompt when the input is not a terminal


def test_repl_goes_on_after_a_bad_query_and_exits_2():
    p = repl("foo\nwhat can carol in service iam\nformat yaml\n")  # no quit: the end of input leaves
    assert p.returncode == 2
    assert "<query>:1:1: error: unknown question `foo`" in p.stderr
    assert "`format yaml` is not a format command" in p.stderr
    assert "arn:aws:iam::333333333333:user/carol may do 2 action(s) of iam" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_repl_unreadable_snapshot_exits_2(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    p = subprocess.run([EXE, "repl", "-s", str(tmp_path / "broken.json")], input="quit\n", capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_repl_at_a_terminal_prompts_and_answers():
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    p = subprocess.Popen([EXE, "repl", "-s", EXAMPLE], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)

    def read_until(marker: str, seconds: float = 60) -> str:
        out, end = "", time.time() + seconds
        while marker not in out and time.time() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    out += os.read(master, 65536).decode()
                except OSError:
                    break
        return out

    try:
        assert "principal(s) loaded" in read_until("iam> ")
        os.write(master, b"what can carol in service iam\n")
        assert "arn:aws:iam::333333333333:user/carol may do 2 action(s) of iam" in read_until("iam> ")
        os.write(master, b"quit\n")
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)


def test_ask_help_lists_every_form():
    r = run("ask", "--help")
    assert r.exit_code == 0
    for form in ("who can [directly] ACTION on RESOURCE", "can PRINCIPAL do ACTION on RESOURCE", "what can PRINCIPAL [in service PREFIX]", "path from PRINCIPAL to ROLE [all]", "escalations [for PRINCIPAL]"):
        assert form in r.output, form
