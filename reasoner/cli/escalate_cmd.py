"""`iam-reasoner escalations`: who can obtain more power than they hold."""
from __future__ import annotations

import json

import click

from ..analysis import Analyzer
from ..escalate import MAX_STEPS, escalations
from ..load import load
from ..render import _hop_children, hop_label, tree
from .common import guarded, main
from .load_cmd import snapshot_option


def escalations_text(result) -> str:
    children = []
    for f in result.findings:
        label = f"{f.principal}: {f.title} on {f.target}"
        if f.gains.startswith("raise:"):
            label += f" (gives {f.gains[6:]} any permission)"
        elif f.gains != "admin":
            label += f" (acts as {f.gains})"
        if f.steps_to_admin is not None:
            label += f" — administrator in {f.steps_to_admin} step(s)"
        if f.conditions:
            label += "  [if " + " and ".join(f.conditions) + "]"
        sub = [(hop_label(h), _hop_children(h)) for h in f.hops]
        if f.path and len(f.path) > 1:
            sub.append(("way to administrator", [f"{p}: {m} on {t}" for p, m, t in f.path]))
        children.append((label, sub))
    if not result.findings:
        children.append("no escalation found")
    admin_items = [a + (f"  [if {' and '.join(result.admin_conditions[a])}]" if result.admin_conditions.get(a) else "") for a in result.admins]
    children.append((f"administrators already ({len(result.admins)})", admin_items or ["none"]))
    if result.missing:
        children.append(("missing data (findings may be incomplete)", result.missing))
    return "\n".join(tree(f"privilege escalation: {len(result.findings)} finding(s)", children))


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
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        click.echo(escalations_text(result))
