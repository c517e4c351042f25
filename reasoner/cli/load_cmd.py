"""`iam-reasoner inspect`: what a snapshot (or Terraform JSON) holds, what it lacks, what was wrong.

``snapshot_option`` is the ``-s/--snapshot PATH`` option every command that reads an estate uses.
"""
from __future__ import annotations

import json
import sys

import click

from ..load import load
from .common import guarded, main, report

snapshot_option = click.option(
    "-s",
    "--snapshot",
    "snapshot",
    required=True,
    type=click.Path(exists=True, file_okay=True, dir_okay=True),
    metavar="PATH",
    help="A snapshot folder, an authorization-details file, or `terraform show -json` output.",
)

COLUMNS = ("users", "groups", "roles", "policies", "inline_policies", "resource_policies", "workloads", "credentials")


@main.command("inspect")
@snapshot_option
@click.option("--json", "as_json", is_flag=True, help="Counts, missing data and warnings as JSON.")
@click.option("--strict", is_flag=True, help="Stop at the first bad file or policy (exit 2).")
@click.option("--account-id", metavar="ID", help="Account of a lone file or of a Terraform plan whose ARNs are known only after apply.")
@guarded
def inspect_command(snapshot, as_json, strict, account_id):
    """Load an estate and summarise it: accounts, principals, policies, what is missing.

    Exit 0 when it loaded (lenient mode keeps going past bad files and policies and lists them as
    warnings), 2 when the input is unreadable or, with --strict, at the first problem."""
    estate = load(snapshot, strict=strict, account_id=account_id)
    if as_json:
        click.echo(json.dumps(estate.summary(), indent=2))
        return
    org = estate.organization
    click.echo(f"estate: {snapshot}")
    if org is not None:
        click.echo(
            f"organization {org.id or '?'}: management account {org.master_account or '?'}, "
            f"{len(org.accounts)} account(s), {len(org.ous) - len(org.roots)} OU(s), {len(org.scps)} SCP(s), {len(org.rcps)} RCP(s)"
        )
    else:
        click.echo("organization: not collected")
    width = max([len(a) + (len(estate.accounts[a].name) + 3 if estate.accounts[a].name else 0) for a in estate.accounts] + [7])
    click.echo(f"{'account':<{width}}  " + "  ".join(f"{c.replace('_policies', '').replace('inline', 'inline'):>9}" for c in COLUMNS))
    for aid, acct in sorted(estate.accounts.items()):
        label = f"{aid} ({acct.name})" if acct.name else aid
        counts = acct.counts()
        click.echo(f"{label:<{width}}  " + "  ".join(f"{counts[c]:>9}" for c in COLUMNS))
    skipped = {k: v for k, v in estate.skipped.items() if v}
    if skipped:
        click.echo("skipped: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(skipped.items())))
    if estate.missing:
        click.echo(f"missing ({len(estate.missing)}):")
        for m in estate.missing:
            click.echo(f"  - {m}")
    if estate.warnings:
        click.echo(f"{len(estate.warnings)} problem(s):")
        report(estate.warnings, sys.stdout)
    else:
        click.echo("no problems found")
