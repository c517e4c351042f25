"""Every notebook runs top to bottom in a real `python3` ipykernel (this interpreter's), with
notebooks/ as its working directory, and shows what it promises."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook, executed once.  The kernel is a `python3` kernelspec for this interpreter,
    first on the Jupyter path: it runs in the environment under test whatever other kernelspecs
    the machine has."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name="python3", prefix=str(prefix))
    spec = json.loads((prefix / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    before = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    try:
        out = {}
        for path in NOTEBOOKS:
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}).execute()
            out[path.name] = nb
        return out
    finally:
        if before is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = before


def outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def all_text(nb) -> str:
    parts = []
    for o in outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/plain", ""))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["tour.ipynb"]
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors_and_draws(path, executed):
    nb = executed[path.name]
    outs = outputs(nb)
    errors = [o for o in outs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)
    assert not [o for o in outs if o.output_type == "stream" and o.name == "stderr" and "Traceback" in o.text]
    pictures = [o for o in outs if o.output_type in ("execute_result", "display_data") and ("<svg" in o.data.get("image/svg+xml", "") or "<svg" in o.data.get("text/html", ""))]
    assert pictures, "no answer was drawn"
    # every code cell ran, in order
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))


def test_tour_shows_the_expected_answers(executed):
    nb = executed["tour.ipynb"]
    text = all_text(nb)
    assert "principals in 3 accounts" in text
    # who can read the production data
    for who in ("user/breakglass", "222222222222:role/OrganizationAccountAccessRole", "role/orders-lambda", "role/prod-readonly"):
        assert who in text, who
    # the chain across accounts
    assert "arn:aws:iam::333333333333:user/alice → arn:aws:iam::333333333333:role/deployer → arn:aws:iam::222222222222:role/prod-deploy" in text
    # the denial and the escalations
    assert "can arn:aws:iam::333333333333:user/carol iam:CreateUser on *: ImplicitlyDenied" in text
    assert "arn:aws:iam::333333333333:user/bob iam_create_policy_version" in text
    assert "arn:aws:iam::333333333333:user/ci-bot lambda_create_invoke" in text
    # pictures: who-can, can (twice), escalations as inline SVG in HTML; Mermaid and DOT as text
    html = [o.data["text/html"] for o in outputs(nb) if o.output_type == "execute_result" and "text/html" in o.data]
    assert len(html) == 4 and all("<svg" in h and "proof" in h for h in html)
    assert "role/prod-deploy" in html[1] and "function:orders-api" in html[1]
    assert "administrator" in html[3]
    assert "flowchart LR" in text and "digraph answer {" in text
