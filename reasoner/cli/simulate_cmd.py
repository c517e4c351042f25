"""`iam-reasoner simulate`: decide single requests, with their reasons."""
from __future__ import annotations

import json
import sys

import click

from ..diagnostics import InputError
from ..evaluate import Decision, evaluate
from ..locate import Source
from ..parse import decode_bytes, decode_json, gc_paused
from ..render import decision_tree
from ..request import request_from_json
from .common import EXIT_INPUT, EXIT_OK, guarded, main

CHUNK = 5000


def _read(file: str) -> tuple[str, str]:
    if file == "-":
        return decode_bytes(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    from ..parse import read_text

    return read_text(file)


@main.command("simulate")
@click.argument("file", default="-", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--batch", is_flag=True, help="JSON lines in: one request a line, one decision a line out.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per request: id, decision, reasons, blocked_by.")
@click.option("--unknown-context", is_flag=True, help="Keys the request does not give are unknown, not absent: decisions may be ConditionallyAllowed with the residual conditions.")
@guarded
def simulate_command(file, batch, as_json, unknown_context):
    """Decide requests as AWS would, and say why.

    A request is JSON in the schema of the README (principal, action, resource, context and the
    policies in force).  Exit 0 when every request was decided, 2 when the input is unreadable
    or a request cannot be evaluated (its line says why and the batch goes on)."""
    text, name = _read(file)
    if not batch:
        obj = decode_json(text, name)
        req = request_from_json(obj, Source(name, text), unknown_context)
        decision = evaluate([req])[0]
        _emit(decision, req, as_json)
        sys.exit(EXIT_OK)
    failed = False
    pending: list = []  # (lineno, request or Decision)

    def flush():
        reqs = [r for _, r in pending if not isinstance(r, Decision)]
        decided = iter(evaluate(reqs)) if reqs else iter(())
        for _, r in pending:
            if isinstance(r, Decision):
                _emit(r, None, as_json)
            else:
                _emit(next(decided), r, as_json)
        pending.clear()

    with gc_paused():  # a batch builds many small acyclic objects
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            label = f"{name}#{lineno}"
            try:
                obj = decode_json(line, label)
                req = request_from_json(obj, Source(label, line), unknown_context)
            except InputError as e:
                failed = True
                rid = None
                try:
                    rid = json.loads(line).get("id")
                except (ValueError, AttributeError):
                    pass
                d = e.diagnostics[0]
                pending.append((lineno, Decision(rid if rid is not None else lineno, "Error", error=f"line {lineno}: {d.message}" + (f" (column {d.column})" if d.column else ""))))
            else:
                pending.append((lineno, req))
            if len(pending) >= CHUNK:
                flush()
        flush()
    sys.exit(EXIT_INPUT if failed else EXIT_OK)


def _emit(decision: Decision, req, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(decision.as_json()))
    else:
        click.echo(decision_tree(decision, req))
