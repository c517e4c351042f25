"""`iam-reasoner collect`: read an AWS estate live and write a snapshot folder."""
from __future__ import annotations

import sys
from collections import Counter

import click

from ..collect import CollectError, collect
from .common import EXIT_INPUT, EXIT_OK, guarded, main

MAX_WARNING_LINES = 12


@main.command("collect")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="New or empty folder to write the snapshot into.")
@click.option("--profile", default=None, help="Named profile from the AWS configuration (default: the standard credential chain).")
@click.option("--region", "regions", multiple=True,
              help="Region of the regional services; repeat for several (default: the profile's region, else us-east-1).")
@click.option("--all-regions", is_flag=True, help="Every region enabled in the account (ec2:DescribeRegions).")
@click.option("--endpoint-url", default=None, help="Send every call to this endpoint (emulators, test servers).")
@click.option("--role-name", default=None,
              help="Collect every active account of the organization by assuming this role in it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@guarded
def collect_command(out, profile, regions, all_regions, endpoint_url, role_name, quiet):
    """Collect IAM and resource policies from AWS into a snapshot folder (read-only calls).

    Writes accounts/<id>/authorization-details.json and resources.json for each account,
    organization.json when the organization can be read, and collection-log.json listing what
    could not be collected.  Exit 0 when something was collected (with warnings for the gaps),
    2 when nothing could be (no credentials, endpoint unreachable, output folder not empty)."""
    show = not quiet

    def progress(steps):
        if not show:
            yield from steps
            return
        with click.progressbar(steps, label="collecting", file=sys.stderr, show_pos=True,
                               item_show_func=lambda s: s.label if s else "") as bar:
            yield from bar

    try:
        result = collect(out, profile=profile, regions=regions, all_regions=all_regions,
                         endpoint_url=endpoint_url, role_name=role_name, progress=progress)
    except CollectError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_INPUT)

    if result.gaps:
        groups = Counter((g.account, g.service, g.region, g.error or g.kind) for g in result.gaps)
        for i, ((account, service, region, error), n) in enumerate(sorted(groups.items())):
            if i == MAX_WARNING_LINES:
                click.echo(f"warning: … and {len(groups) - i} more", err=True)
                break
            where = " ".join(x for x in (account, region) if x)
            click.echo(f"warning: `{service}` in {where}: {error}" + (f" ({n} calls)" if n > 1 else ""), err=True)
        click.echo(f"warning: {len(result.gaps)} read(s) failed and are recorded as missing data; "
                   f"hint: see `{result.out / 'collection-log.json'}`", err=True)
    if not result.accounts:
        click.echo(f"error: nothing could be collected: no account's iam authorization details were readable; "
                   f"hint: see `{result.out / 'collection-log.json'}`", err=True)
        sys.exit(EXIT_INPUT)
    org = {"collected": ", organization", "not-in-use": "", "failed": ", organization not readable", "skipped": ""}
    click.echo(f"collected {len(result.accounts)} account(s){org.get(result.organization, '')} into `{result.out}`"
               + (f"; {len(result.failed_accounts)} account(s) failed" if result.failed_accounts else ""))
    sys.exit(EXIT_OK)
