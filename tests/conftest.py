"""Shared test fixtures.  Material no one here wrote is read from ../shared (beside the checkout);
a test that needs it fails loudly when it is missing, it never skips."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"required test material is missing: {p} (the shared/ folder must sit beside the checkout)")
    return p


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture
def forks(monkeypatch):
    """A list that grows by one each time the code under test forks a process (os.fork, counted,
    still real)."""
    import os

    counted: list = []
    real_fork = os.fork

    def counting_fork():
        counted.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counting_fork)
    return counted


def synthetic_estate(tmp_path_factory, name: str, roles: int, policies: int, seed: int):
    """A seeded multi-account estate of the benchmarks' generator (benchmarks/synth.py), loaded.
    It draws real AWS managed policies from ../shared: missing, the tests that use it fail."""
    import sys

    from reasoner.load import load

    shared_path("data", "aws-managed-policies.jsonl")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import synth

    root = tmp_path_factory.mktemp(name) / f"org-{seed}"
    synth.generate(root, roles, policies, seed, single=False)
    return load(str(root))
