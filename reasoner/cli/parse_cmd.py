"""`iam-reasoner parse` and `iam-reasoner facts`."""
from __future__ import annotations

import json
import sys

import click

from ..diagnostics import Diagnostics, InputError
from ..facts import facts_text, policy_facts
from ..model import PolicyKind
from ..parse import parse_policy_text, read_text
from .common import EXIT_FINDING, EXIT_INPUT, EXIT_OK, guarded, main, report

KINDS = [k.value for k in PolicyKind]


@main.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(KINDS), default="identity", show_default=True, help="Which rules apply: the kind of policy the files hold.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file: file, ok, errors, warnings.")
@guarded
def parse_command(files, kind, as_json):
    """Check policy documents against the IAM policy language.

    Exit 0 when every file is valid, 1 when a policy is invalid, 2 when a file is unreadable or
    not JSON."""
    results = []
    worst = EXIT_OK
    for f in files:
        diags = Diagnostics(strict=False)
        unreadable = False
        try:
            text, name = read_text(f)
            parse_policy_text(text, kind, name, name, strict=False, diags=diags)
        except InputError as e:
            diags.items.extend(e.diagnostics)
            unreadable = e.unreadable
        ok = not diags.errors
        worst = max(worst, EXIT_INPUT if unreadable else (EXIT_OK if ok else EXIT_FINDING))
        results.append((f, ok, diags))
    if as_json:
        out = [
            {
                "file": f,
                "ok": ok,
                "errors": [d.as_json() for d in diags.errors],
                "warnings": [d.as_json() for d in diags.warnings],
            }
            for f, ok, diags in results
        ]
        click.echo(json.dumps(out, indent=2))
    else:
        for f, ok, diags in results:
            report(diags.items, sys.stdout)
            if ok:
                click.echo(f"{f}: ok" + (f" ({len(diags.warnings)} warning(s))" if diags.warnings else ""))
    sys.exit(worst)


@main.command("facts")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", type=click.Choice(KINDS), default="identity", show_default=True, help="Which rules apply: the kind of policy the file holds.")
@guarded
def facts_command(file, kind):
    """Print the ASP facts of one policy, as clingo-readable text (schema: encodings/doc.lp).

    Exit 0 with the facts, 1 when the policy is invalid, 2 when the file is unreadable or not
    JSON."""
    text, name = read_text(file)
    diags = Diagnostics(strict=False)
    policy, _ = parse_policy_text(text, kind, name, name, strict=False, diags=diags)
    report(diags.items)
    if diags.errors or policy is None:
        sys.exit(EXIT_FINDING)
    click.echo(facts_text(policy_facts(1, policy)), nl=False)
