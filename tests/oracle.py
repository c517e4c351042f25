"""The reference simulator in ``../shared/oracle``, installed with npm and run as a separate
program (it is AGPL: it is only ever executed, never imported or copied).

``ensure_oracle()`` installs it once into a cache directory keyed by the hash of its
``package-lock.json`` and ``simulate.mjs`` (``$IAM_REASONER_ORACLE_CACHE``, default
``~/.cache/iam-reasoner-oracle``) and returns the folder holding ``simulate.mjs``.
``run_oracle(requests)`` decides a whole batch in one ``node simulate.mjs --batch --raw`` call.
Both raise :class:`OracleUnavailable` with the reason when node, npm or the oracle cannot run;
tests turn that into a failure, never a skip.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path(os.environ.get("IAM_REASONER_ORACLE_SRC", ROOT.parent / "shared" / "oracle"))
FILES = ("package.json", "package-lock.json", "simulate.mjs")


class OracleUnavailable(RuntimeError):
    pass


def _cache_root() -> Path:
    env = os.environ.get("IAM_REASONER_ORACLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "iam-reasoner-oracle"


def _key() -> str:
    h = hashlib.sha256()
    for name in FILES:
        p = SOURCE / name
        if not p.is_file():
            raise OracleUnavailable(f"the oracle source is missing: {p} (../shared/oracle must sit beside the checkout)")
        h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OracleUnavailable(f"`{name}` is not on PATH: the oracle needs Node.js 20 and npm")
    return path


def ensure_oracle() -> Path:
    """The installed oracle's folder, installing it on first use."""
    _tool("node")
    target = _cache_root() / _key()
    marker = target / ".installed"
    if marker.is_file():
        return target
    npm = _tool("npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    try:
        for name in FILES:
            shutil.copy2(SOURCE / name, work / name)
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise OracleUnavailable(f"`npm ci` failed for the oracle (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        (work / ".installed").write_text("ok\n")
        try:
            os.rename(work, target)  # atomic: a concurrent install that finished first wins
        except OSError:
            if not marker.is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def run_oracle(requests: list[dict], folder: Optional[Path] = None, raw: bool = True, timeout: float = 600) -> list[dict]:
    """The oracle's answers to a batch, in order (one process for the whole batch)."""
    folder = folder or ensure_oracle()
    args = [_tool("node"), "simulate.mjs", "--batch"] + (["--raw"] if raw else [])
    text = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run(args, cwd=folder, input=text, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise OracleUnavailable(f"the oracle exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(out) != len(requests):
        raise OracleUnavailable(f"the oracle answered {len(out)} of {len(requests)} requests:\n{proc.stderr[-3000:]}")
    for r, o in zip(requests, out):
        if o.get("id") != r.get("id"):
            raise OracleUnavailable(f"the oracle's answers are out of order: {o.get('id')!r} for {r.get('id')!r}")
    return out
