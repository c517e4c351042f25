"""The benchmarks' estate generator: the same seed gives the same bytes, and what it writes loads
with the counts its manifest claims (no timing here: figures are the benchmarks' business)."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import synth  # noqa: E402

from reasoner.load import load  # noqa: E402

from .conftest import shared_path  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _managed_policies():
    """The generator draws real AWS managed policies from ../shared: missing, every test here fails."""
    shared_path("data", "aws-managed-policies.jsonl")


def digest(d: Path) -> dict[str, str]:
    return {str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def estate(tmp_path_factory, _managed_policies):
    d = tmp_path_factory.mktemp("synth") / "a"
    m = synth.generate(d, 80, 40, 11)
    return d, m


def test_same_seed_same_bytes(estate, tmp_path):
    d, _ = estate
    synth.generate(tmp_path / "b", 80, 40, 11)
    assert digest(d) == digest(tmp_path / "b")
    synth.generate(tmp_path / "c", 80, 40, 12)
    assert digest(d) != digest(tmp_path / "c")


def test_loads_with_the_counts_claimed(estate):
    d, m = estate
    est = load(d, strict=True)
    assert not est.warnings and not est.missing
    assert sorted(est.accounts) == sorted(m["accounts"])
    for aid, acct in est.accounts.items():
        claimed = {k: v for k, v in m["accounts"][aid].items() if k != "name"}
        assert acct.counts() == claimed, aid
    assert m["totals"]["roles"] == 80
    assert m["totals"]["distinct_managed_policies"] == 40
    distinct = {arn for acct in est.accounts.values() for arn in acct.managed_policies}
    assert len(distinct) == 40
    assert est.organization is not None and est.organization.scps


def test_what_the_estate_holds(estate):
    d, m = estate
    est = load(d)
    roles = [r for a in est.accounts.values() for r in a.roles.values()]
    assert any(r.boundary for r in roles)
    kinds = {pr.type for r in roles if r.trust for st in r.trust.statements for pr in st.principals or ()}
    assert {"AWS", "Service", "Federated"} <= kinds
    arns = {r.arn for r in roles}
    for p in m["planted"]:
        assert p["principal"] in arns
    assert {p["method"] for p in m["planted"]} == {"lambda_create_invoke", "iam_create_policy_version", "ec2_run_instances"}
    q = m["questions"]
    assert q["chained_role"] in arns and q["passrole_target"] in arns and q["bucket_object"].startswith("arn:aws:s3:::")


def test_single_account_variant(tmp_path):
    m = synth.generate(tmp_path / "one", 80, 40, 11, single=True)
    est = load(tmp_path / "one", strict=True)
    assert list(est.accounts) == [m["single_account"]]
    acct = est.accounts[m["single_account"]]
    assert acct.counts() == {k: v for k, v in m["accounts"][m["single_account"]].items() if k != "name"}
    assert all(f":{m['single_account']}:" in r for r in acct.roles)
