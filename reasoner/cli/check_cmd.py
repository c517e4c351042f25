"""`iam-reasoner check`: CI assertions that fail the build when a forbidden path appears."""
from __future__ import annotations

import json
import sys

import click

from ..analysis import Analyzer
from ..assertions import check, validate
from ..load import load
from ..locate import Source
from ..parse import decode_json, read_text
from ..render import tree
from .common import EXIT_FINDING, EXIT_OK, guarded, main
from .load_cmd import snapshot_option


@main.command("check")
@click.argument("assertions", type=click.Path(dir_okay=False))
@snapshot_option
@click.option("--json", "as_json", is_flag=True, help="One object per assertion: name, ok, question, offenders.")
@guarded
def check_command(assertions, snapshot, as_json):
    """Check the assertions in ASSERTIONS (a JSON list) against an estate.

    Exit 0 when every assertion holds, 1 when one fails (its offenders are listed with their
    paths and conditions), 2 on unreadable input."""
    text, name = read_text(assertions)
    items = validate(decode_json(text, name), Source(name, text))
    outcomes = check(Analyzer(load(snapshot)), items)
    if as_json:
        click.echo(json.dumps([o.as_json() for o in outcomes], indent=2))
    else:
        for o in outcomes:
            if o.ok:
                click.echo(f"ok    {o.name}")
            else:
                lines = [
                    f"{x['principal']}" + (f" → {x['resource']}" if "resource" in x else "") + (f"  via {' → '.join(x['path'][1:])}" if len(x.get("path", [])) > 1 else "") + (f"  [if {' and '.join(x['conditions'])}]" if x.get("conditions") else "")
                    for x in o.offenders
                ]
                click.echo("\n".join(tree(f"FAIL  {o.name} ({o.question})", lines)))
        failed = sum(1 for o in outcomes if not o.ok)
        click.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    sys.exit(EXIT_FINDING if any(not o.ok for o in outcomes) else EXIT_OK)
