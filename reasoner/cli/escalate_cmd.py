"""`iam-reasoner escalations`: who can obtain more power than they hold."""
from __future__ import annotations

import click

from ..analysis import Analyzer
from ..escalate import MAX_STEPS, escalations
from ..load import load
from ..render import escalations_lines
from .common import guarded, main
from .load_cmd import snapshot_option


@main.command("escalations")
@snapshot_option
@click.option("--principal", metavar="ARN", help="Only this principal (and the roles it can reach).")
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True, dir_okay=False), metavar="FILE.lp", help="More escalation methods, in the predicate interface of encodings/escalate/core.lp.")
@click.option("--max-steps", type=click.IntRange(1, 32), default=MAX_STEPS, show_default=True)
@click.option("--json", "as_json", is_flag=True, help='{"findings": [{"principal", "method", "target", "conditions", "proof"}], "admins": [...]}')
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@guarded
def escalations_command(snapshot, principal, rules, max_steps, as_json, quiet):
    """Principals that can reach permissions they do not hold (PassRole to compute, policy
    versions, credentials of others, ...), each with its method and proof; and the principals that
    are administrators already."""
    estate = load(snapshot)
    analyzer = Analyzer(estate)
    progress = None if quiet or as_json else (lambda label: click.echo(f"… {label}", err=True))
    result = escalations(analyzer, principal, rules, max_steps, progress)
    if as_json:
        # (a finding at a time: the reasons of a large estate's proofs, all at once, would not fit)
        for piece in result.json_text(indent=2):
            click.echo(piece, nl=False)
        click.echo()
    else:
        for line in escalations_lines(result):  # (a finding at a time, as --json)
            click.echo(line)
