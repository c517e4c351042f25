"""The wheel ships the grammar and the encodings inside the package, and `reasoner.paths` finds
them there when the package is not a source checkout: built with hatchling (the project's build
backend), unpacked into a folder, and run from another folder."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_grammar_and_encodings_and_paths_find_them(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    if importlib.util.find_spec("hatchling") is not None:  # the backend is here: call it directly
        cmd = [sys.executable, "-c", "import sys; from hatchling.build import build_wheel; build_wheel(sys.argv[1])", str(out)]
    else:  # pip fetches the backend into an isolated build environment
        cmd = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(out)]
    build = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = out.glob("iam_reasoner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "reasoner/_data/grammar/policy.lark" in names
    shipped = {n for n in names if n.startswith("reasoner/_data/encodings/") and n.endswith(".lp")}
    in_tree = {"reasoner/_data/encodings/" + p.relative_to(ROOT / "encodings").as_posix() for p in (ROOT / "encodings").rglob("*.lp")}
    assert "reasoner/_data/encodings/doc.lp" in shipped and shipped >= in_tree
    assert "reasoner/paths.py" in names and "reasoner/cli/parse_cmd.py" in names
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "iam-reasoner = reasoner.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    policy = elsewhere / "p.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    probe = (
        "import json, reasoner, reasoner.paths as p\n"
        "print(json.dumps([reasoner.__file__, str(p.grammar_file('policy.lark')), str(p.encoding_file('doc.lp'))]))\n"
        "from reasoner.cli import main\n"
        "main(['parse', 'p.json'])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    first, rest = run.stdout.split("\n", 1)
    module, grammar, doc = (Path(x) for x in json.loads(first))
    assert module.is_relative_to(site)
    assert grammar == site / "reasoner" / "_data" / "grammar" / "policy.lark" and grammar.is_file()
    assert doc == site / "reasoner" / "_data" / "encodings" / "doc.lp" and doc.is_file()
    assert rest == "p.json: ok\n"
