"""Bad input: every case gets one located diagnostic (exact line and column), the documented exit
code (2: unreadable or not JSON, 1: an invalid policy) and no traceback, through the CLI.

Each expected place is written out as numbers and cross-checked against the place of a marker in
the text, so a test fails if either the product or the arithmetic here is wrong."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasoner.cli import main
from reasoner.diagnostics import InputError
from reasoner.parse import decode_json, parse_policy_text

GOOD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def place(text: str | bytes, marker: str | bytes, nth: int = 0) -> tuple[int, int]:
    """1-based line and column (in characters) of the ``nth`` occurrence of ``marker``."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(marker, i + 1)
    before = text[:i]
    if isinstance(before, bytes):
        before = before.decode("utf-8", "replace")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def run_parse(tmp_path: Path, data: str | bytes, *args: str, name: str = "p.json"):
    f = tmp_path / name
    f.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    result = CliRunner().invoke(main, ["parse", "--json", *args, str(f)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    out = json.loads(result.output)
    assert len(out) == 1 and out[0]["file"] == str(f)
    return result.exit_code, out[0]


def one_error(tmp_path, data, exit_code, line, col, *fragments, args=()):
    code, report = run_parse(tmp_path, data, *args)
    assert code == exit_code, report
    assert report["ok"] is False
    assert len(report["errors"]) == 1, report["errors"]
    err = report["errors"][0]
    assert (err["line"], err["column"]) == (line, col), err
    for frag in fragments:
        assert frag in err["message"], err
    assert err["message"] == err["message"].strip() and "\n" not in err["message"]
    assert err["message"][0].islower() or err["message"][0] == "`"
    assert err["hint"]
    return err


# ------------------------------------------------------------------ not JSON at all: exit 2


def test_truncated_json_points_at_the_end(tmp_path):
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [{"Effect": "Allow"'
    assert place(text, '"Allow"') == (3, 28)
    err = one_error(tmp_path, text, 2, 3, 35, "ends too early")
    assert "truncated" in err["hint"]


def test_empty_file(tmp_path):
    one_error(tmp_path, "", 2, 1, 1, "empty")
    one_error(tmp_path, "  \n\n ", 2, 1, 1, "empty")


def test_trailing_comma_points_at_the_comma(tmp_path):
    text = '{\n  "Statement": [\n    {"Effect": "Allow", "Action": "s3:*", "Resource": "*",}\n  ]\n}'
    assert place(text, ",}") == (3, 58)
    one_error(tmp_path, text, 2, 3, 58, "trailing comma", "object")
    text = '{"Statement": [{"Effect": "Allow", "Action": ["s3:*",], "Resource": "*"}]}'
    assert place(text, ",]") == (1, 53)
    one_error(tmp_path, text, 2, 1, 53, "trailing comma", "list")


def test_non_utf8_bytes_point_at_the_byte(tmp_path):
    data = b'{"Version": "2012-10-17",\n "Statement": [{"Sid": "caf\xe9", "Effect": "Allow"}]}'
    assert place(data, b"\xe9") == (2, 28)
    one_error(tmp_path, data, 2, 2, 28, "`0xe9`", "UTF-8")


def test_nul_in_a_string(tmp_path):
    text = '{"Version": "2012-10-17",\n "Statement": [{"Sid": "a\x00b", "Effect": "Allow"}]}'
    assert place(text, "\x00") == (2, 26)
    one_error(tmp_path, text, 2, 2, 26, "control character", "\\u0000")


def test_nesting_20000_deep(tmp_path):
    """The C decoder gives up (RecursionError); the place reported is the bracket that opens
    level 65, the first level deeper than any policy can need."""
    text = '{"Statement": ' + "[" * 20_000 + "]" * 20_000 + "}"
    assert text.index("[") == 14
    t0 = time.perf_counter()
    one_error(tmp_path, text, 2, 1, 14 + 64, "nests more than 64 levels")
    assert time.perf_counter() - t0 < 10


def test_nesting_that_decodes_but_is_too_deep(tmp_path):
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ' + "[" * 200 + "]" * 200 + ', "Resource": "*"}]}'
    code, report = run_parse(tmp_path, text)
    assert code == 1
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(1, 71 + 1)]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity(tmp_path, constant):
    text = '{"Version": "2012-10-17", "Statement": [{"Sid": "NaN Infinity", "Effect": "Allow", "Action": "s3:*",\n "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": ' + constant + "}}}]}"
    assert place(text, constant, 0 if constant.startswith("-") else 1) == (2, 68)
    one_error(tmp_path, text, 2, 2, 68, f"`{constant}`")


def test_more_text_after_the_document(tmp_path):
    text = json.dumps(GOOD) + "\n{}"
    one_error(tmp_path, text, 2, 2, 1, "more text after")


# ------------------------------------------------------------------ JSON, but not a valid policy: exit 1


def test_top_level_array(tmp_path):
    one_error(tmp_path, "\n  [" + json.dumps(GOOD) + "]", 1, 2, 3, "must be a JSON object", "list")


def test_effect_allow_lowercase(tmp_path):
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n      "Effect": "allow",\n      "Action": "s3:GetObject",\n      "Resource": "*"\n    }\n  ]\n}'
    assert place(text, '"allow"') == (5, 17)
    err = one_error(tmp_path, text, 1, 5, 17, "`allow` is not a valid effect")
    assert "Allow" in err["hint"] and "case" in err["hint"]


def test_unknown_operator(tmp_path):
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",\n  "Condition": {"StringEqualz": {"aws:username": "bob"}}}]}'
    assert place(text, '"StringEqualz"') == (2, 17)
    err = one_error(tmp_path, text, 1, 2, 17, "unknown condition operator `StringEqualz`")
    assert "`StringEquals`" in err["hint"]


def test_if_exists_is_not_allowed_on_null(tmp_path):
    """IAM User Guide, condition operators: "...IfExists" may follow every operator name
    *except* the Null condition — `Null` itself tests whether the key is present."""
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NullIfExists": {"aws:TokenIssueTime": "true"}}}]}'
    line, col = place(text, '"NullIfExists"')
    err = one_error(tmp_path, text, 1, line, col, "`NullIfExists`")
    assert col == 110 and "`Null`" in err["hint"]


def test_misspelled_element(tmp_path):
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",\n    "Actions": "s3:GetObject", "Resource": "*"}]}'
    assert place(text, '"Actions"') == (2, 5)
    err = one_error(tmp_path, text, 1, 2, 5, "unknown element `Actions`")
    assert err["hint"] == "did you mean `Action`?"


def test_misspelled_top_element(tmp_path):
    text = '{"Version": "2012-10-17", "Statment": []}'
    err = one_error(tmp_path, text, 1, 1, 27, "unknown element `Statment`")
    assert err["hint"] == "did you mean `Statement`?"


def test_duplicate_keys_point_at_the_repeat(tmp_path):
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",\n "Action": "ec2:*", "Resource": "*"}]}'
    assert place(text, '"Action"', 1) == (2, 2)
    one_error(tmp_path, text, 1, 2, 2, "duplicate element `Action`")


def test_duplicate_keys_three_times_each_repeat_reported(tmp_path):
    text = '{"Version": "2012-10-17", "Version": "2012-10-17", "Version": "2012-10-17", "Statement": ' + json.dumps(GOOD["Statement"]) + "}"
    code, report = run_parse(tmp_path, text)
    assert code == 1
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(1, 27), (1, 52)]


def test_duplicate_keys_in_a_condition_block(tmp_path):
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringEquals": {"aws:username": "a", "aws:username": "b"}}}]}'
    one_error(tmp_path, text, 1, *place(text, '"aws:username"', 1), "duplicate element `aws:username`")


# ------------------------------------------------------------------ every error of a statement


def test_all_errors_of_a_statement_are_reported(tmp_path):
    text = (
        '{\n  "Version": "2012-10-17",\n  "Statement": [{\n'
        '    "Effect": "allow",\n'
        '    "Actions": "s3:GetObject",\n'
        '    "Resource": ["arn:aws:s3:::b", 7],\n'
        '    "Condition": {"StringEqualz": {"k:x": "v"}, "Bool": {"aws:SecureTransport": [true]}, "NumericLessThan": {"a:b": {"x": 1}}},\n'
        '    "Colour": "blue"\n'
        "  }]\n}"
    )
    code, report = run_parse(tmp_path, text)
    assert code == 1
    got = [(e["line"], e["column"], e["message"]) for e in report["errors"]]
    assert got == [
        (4, 15, "`allow` is not a valid effect"),
        (5, 5, "unknown element `Actions` in a statement"),
        (6, 36, "unexpected number in `Resource`"),
        (7, 19, "unknown condition operator `StringEqualz`"),
        (7, 117, "unexpected object in `Condition`"),
        (8, 5, "unknown element `Colour` in a statement"),
    ]
    assert place(text, "7]") == (6, 36)
    assert place(text, '{"x"') == (7, 117)


def test_several_statements_each_report(tmp_path):
    st = '{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}'
    text = '{"Version": "2012-10-17", "Statement": [' + st + ",\n" + st.replace('"Allow"', '"Permit"') + ",\n" + st.replace('"s3:*"', '"s3"') + "]}"
    code, report = run_parse(tmp_path, text)
    assert code == 1
    assert [(e["line"], e["column"]) for e in report["errors"]] == [place(text, '"Permit"'), place(text, '"s3"')]
    assert [e["message"] for e in report["errors"]] == ["`Permit` is not a valid effect", "`s3` is not an action"]


# ------------------------------------------------------------------ size


def _big_policy(n: int, bad_at: int | None = None) -> str:
    actions = [f"s3:GetObjectVersion{i:07d}" for i in range(n)]
    if bad_at is not None:
        actions[bad_at] = "not an action"
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": f"S{j}", "Effect": "Allow", "Action": actions[j::4], "Resource": "*"} for j in range(4)]}
    return json.dumps(doc, indent=2)


def test_a_policy_of_several_megabytes(tmp_path):
    text = _big_policy(150_000)
    assert len(text) > 5_000_000
    t0 = time.perf_counter()
    code, report = run_parse(tmp_path, text)
    assert (code, report["ok"], report["errors"], report["warnings"]) == (0, True, [], [])
    assert time.perf_counter() - t0 < 30


def test_a_late_error_in_a_big_policy_is_located_exactly(tmp_path):
    text = _big_policy(150_000, bad_at=149_999)
    line, col = place(text, '"not an action"')
    assert line > 150_000
    one_error(tmp_path, text, 1, line, col, "`not an action` is not an action")


def test_many_errors_are_located_in_linear_time():
    """20,000 bad actions in one list: each is located; finding the places walks the list once."""
    actions = [f"bad{i}" for i in range(20_000)]
    text = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}, indent=1)
    t0 = time.perf_counter()
    pol, diags = parse_policy_text(text, strict=False)
    assert time.perf_counter() - t0 < 20
    assert pol is not None and pol.statements == ()
    assert len(diags.errors) == 20_000
    last = diags.errors[-1]
    assert (last.line, last.column) == place(text, '"bad19999"')


# ------------------------------------------------------------------ API: strict and lenient


def test_strict_mode_raises_on_the_first_error_lenient_collects_all():
    text = json.dumps({"Statement": [{"Effect": "allow", "Action": "x", "Resource": "*"}]})
    with pytest.raises(InputError) as e:
        parse_policy_text(text, strict=True)
    assert len(e.value.diagnostics) == 1 and not e.value.unreadable
    pol, diags = parse_policy_text(text, strict=False)
    assert [d.message for d in diags.errors] == ["`allow` is not a valid effect", "`x` is not an action"]
    assert pol is not None and pol.statements == ()


def test_decode_json_marks_unreadable():
    with pytest.raises(InputError) as e:
        decode_json("{", "f.json")
    assert e.value.unreadable and e.value.diagnostics[0].file == "f.json"


def test_user_text_in_messages_stays_on_one_line(tmp_path):
    text = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow\n#end", "Action": "s3:*", "Resource": "*"}]})
    err = one_error(tmp_path, text, 1, 1, 52, "is not a valid effect")
    assert err["message"] == "`Allow\\n#end` is not a valid effect"


# ------------------------------------------------------------------ CLI contract


def test_json_output_shape_for_several_files(tmp_path):
    good, bad, broken = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "broken.json"
    good.write_text(json.dumps({"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}"}]}))
    bad.write_text(json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}))
    broken.write_text("{")
    result = CliRunner().invoke(main, ["parse", "--json", str(good), str(bad)])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert [set(o) for o in out] == [{"file", "ok", "errors", "warnings"}] * 2
    assert [(o["file"], o["ok"]) for o in out] == [(str(good), True), (str(bad), False)]
    assert out[0]["errors"] == [] and len(out[0]["warnings"]) == 1
    assert set(out[0]["warnings"][0]) == {"line", "column", "message", "hint"}
    assert out[1]["errors"] == [{"line": 1, "column": 16, "message": "statement has neither `Resource` nor `NotResource`", "hint": "add `\"Resource\": \"*\"` or the ARNs the statement is about"}]
    result = CliRunner().invoke(main, ["parse", "--json", str(good), str(broken), str(bad)])
    assert result.exit_code == 2
    assert [o["ok"] for o in json.loads(result.output)] == [True, False, False]


def test_text_output_and_exit_codes(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    r = CliRunner().invoke(main, ["parse", str(good)])
    assert (r.exit_code, r.output) == (0, f"{good}: ok\n")
    r = CliRunner().invoke(main, ["parse", str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["parse", "--kind", "nonsense", str(good)])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["parse", "--kind", "trust", str(good)])
    assert r.exit_code == 1
    assert f"{good}:1:" in r.output and "error: `Resource` is not allowed in a role trust policy" in r.output


def test_facts_command_exit_codes(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Statement": [{"Effect": "allow", "Action": "s3:*", "Resource": "*"}]}))
    r = CliRunner().invoke(main, ["facts", str(bad)])
    assert r.exit_code == 1 and "is not a valid effect" in r.output and "Traceback" not in r.output
    bad.write_text("[")
    r = CliRunner().invoke(main, ["facts", str(bad)])
    assert r.exit_code == 2


def _installed_command() -> str:
    exe = Path(sys.executable).parent / ("iam-reasoner.exe" if os.name == "nt" else "iam-reasoner")
    assert exe.exists(), f"the console script is not installed beside {sys.executable}"
    return str(exe)


@pytest.mark.parametrize(
    "data, exit_code",
    [
        (b'{"Version": "2012-10-17", "Statement": [{"Effect": "Allow"', 2),
        (b"", 2),
        (b"[1, 2]", 1),
        (b'{"Statement": [{"Effect": "Allow",}]}', 2),
        (b'{"Statement": [{"Sid": "\xff"}]}', 2),
        (b'{"Statement": [{"Sid": "\x00"}]}', 2),
        (b"[" * 20_000 + b"]" * 20_000, 2),
        (b'{"Statement": [{"Effect": "allow", "Action": "s3:*", "Resource": "*"}]}', 1),
        (b'{"Statement": [{"Effect": "Allow", "Actions": "s3:*", "Resource": "*", "Condition": {"Foo": {}}}]}', 1),
        (b'{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": NaN}]}', 2),
    ],
)
def test_installed_command_never_prints_a_traceback(tmp_path, data, exit_code):
    f = tmp_path / "p.json"
    f.write_bytes(data)
    proc = subprocess.run([_installed_command(), "parse", str(f)], capture_output=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == exit_code, proc
    assert b"Traceback" not in proc.stderr and b"Traceback" not in proc.stdout
    lines = (proc.stdout + proc.stderr).decode().splitlines()
    located = [ln for ln in lines if ln.startswith(f"{f}:") and ": error: " in ln]
    assert located, lines
