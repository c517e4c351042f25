"""The questions: who-can, can, what-can, path."""
from __future__ import annotations

import json
import sys

import click

from ..analysis import Analyzer, MAX_HOPS
from ..diagnostics import Diagnostic, InputError
from ..load import load
from ..render import can_text, tree, whocan_text
from .common import guarded, main
from .load_cmd import snapshot_option


def parse_context(items) -> dict:
    """`--context k=v` (repeat a key for a multi-valued one) → {key: [values]}."""
    ctx: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"`{item}` is not KEY=VALUE", param_hint="--context")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise click.BadParameter(f"`{item}` has no key", param_hint="--context")
        ctx.setdefault(k, []).append(v.strip())
    return ctx


context_option = click.option("--context", "context", multiple=True, metavar="KEY=VALUE", help="A request context value (repeat the option for more; repeat a key for several values). Keys not given are unknown: answers state the conditions they depend on.")
json_option = click.option("--json", "as_json", is_flag=True, help="JSON output.")
format_option = click.option("--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]), default=None, help="Output format (text by default; --json is --format json).")


def progress_reporter():
    """A progress bar on stderr for long evaluations (only on a terminal)."""
    import sys

    if not sys.stderr.isatty():
        return None
    state = {}

    def report(label, done, total):
        bar = state.get(label)
        if bar is None and total > 2000:
            bar = state[label] = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            bar.update(done - bar.pos)
            if done >= total:
                bar.__exit__(None, None, None)
                state.pop(label, None)

    return report


def _analyzer(snapshot) -> Analyzer:
    return Analyzer(load(snapshot), progress_reporter())


def _check_action(action: str) -> None:
    if action != "*" and ":" not in action:
        raise InputError([Diagnostic("<command line>", 0, 0, f"`{action}` is not an action", "write `service:ActionName`, e.g. `s3:GetObject`")], unreadable=True)


def _emit(result, fmt, as_json, text_fn):
    fmt = "json" if as_json else (fmt or "text")
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), indent=2))
    elif fmt in ("dot", "mermaid"):
        from .. import pictures

        click.echo(pictures.dot(result) if fmt == "dot" else pictures.mermaid(result))
    else:
        click.echo(text_fn(result))


@main.command("who-can")
@click.argument("action")
@click.argument("resource")
@snapshot_option
@context_option
@click.option("--resource-account", metavar="ID", help="The account that owns the resource (S3 ARNs carry none).")
@click.option("--direct", is_flag=True, help="Only principals allowed by their own policies: no role chains.")
@click.option("--max-hops", type=click.IntRange(1, 32), default=MAX_HOPS, show_default=True, help="Longest role chain considered.")
@json_option
@format_option
@guarded
def who_can_command(action, resource, snapshot, context, resource_account, direct, max_hops, as_json, fmt):
    """Every principal that can do ACTION on RESOURCE, directly or through role chains.

    RESOURCE is an ARN, a pattern (`arn:aws:s3:::bucket/*`: some resource of the set) or `*`
    for an action that takes no resource.  Exit 0 when answered, 2 on bad input."""
    _check_action(action)
    a = _analyzer(snapshot)
    res = None if resource == "*" and a.wildcard_only(action) else resource
    result = a.who_can(action, res, parse_context(context), resource_account, direct=direct, max_hops=max_hops)
    _emit(result, fmt, as_json, whocan_text)


@main.command("can")
@click.argument("principal")
@click.argument("action")
@click.argument("resource")
@snapshot_option
@context_option
@click.option("--resource-account", metavar="ID", help="The account that owns the resource.")
@click.option("--max-hops", type=click.IntRange(1, 32), default=MAX_HOPS, show_default=True)
@json_option
@format_option
@guarded
def can_command(principal, action, resource, snapshot, context, resource_account, max_hops, as_json, fmt):
    """Whether PRINCIPAL can do ACTION on RESOURCE, with the proof (for a denial: why not)."""
    _check_action(action)
    a = _analyzer(snapshot)
    res = None if resource == "*" and a.wildcard_only(action) else resource
    result = a.can(principal, action, res, parse_context(context), resource_account, max_hops)
    _emit(result, fmt, as_json, can_text)


@main.command("what-can")
@click.argument("principal")
@snapshot_option
@click.option("--service", metavar="PREFIX", help="Only this service's actions (e.g. s3).")
@context_option
@json_option
@guarded
def what_can_command(principal, snapshot, service, context, as_json):
    """The effective permissions of PRINCIPAL: catalogued actions it may do on some resource."""
    a = _analyzer(snapshot)
    if a.principals.get(a.base(principal)) is None:
        raise InputError([Diagnostic("<command line>", 0, 0, f"`{principal}` is not a principal of this estate", "give a user or role ARN from the snapshot (see `iam-reasoner inspect`)")], unreadable=True)
    rows = a.what_can(principal, service, parse_context(context))
    if as_json:
        click.echo(json.dumps({"principal": principal, "actions": [{"action": act, "decision": d, "conditions": c} for act, d, c in rows]}, indent=2))
        return
    items = [act + (f"  [if {' and '.join(c)}]" if c else "") for act, d, c in rows]
    click.echo("\n".join(tree(f"{principal} may do {len(rows)} action(s)" + (f" of {service}" if service else ""), items or ["nothing"])))


@main.command("path")
@click.argument("source", metavar="FROM")
@click.argument("target", metavar="TO")
@snapshot_option
@click.option("--all", "all_paths", is_flag=True, help="Every simple chain up to --max-hops, not only the shortest.")
@click.option("--max-hops", type=click.IntRange(1, 32), default=MAX_HOPS, show_default=True)
@json_option
@guarded
def path_command(source, target, snapshot, all_paths, max_hops, as_json):
    """The chains of role assumptions from FROM to the role TO."""
    a = _analyzer(snapshot)
    chains = a.paths(source, a.base(target), max_hops, all_paths)
    if as_json:
        click.echo(json.dumps({"from": source, "to": target, "paths": [[h.as_json() for h in c] for c in chains]}, indent=2))
        return
    from ..query import Paths
    from ..render import text

    click.echo(text(Paths(source, target, chains, max_hops, all_paths)))


@main.command("external-access")
@snapshot_option
@click.option("--zone", type=click.Choice(["account", "org"]), default="account", show_default=True, help="The zone of trust: the resource's own account, or the whole organization.")
@json_option
@guarded
def external_access_command(snapshot, zone, as_json):
    """Principals outside the zone of trust that can reach a resource (through its resource-based
    policy) or assume a role, directly or through chains."""
    result = _analyzer(snapshot).external_access(zone)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    by_res: dict = {}
    for res, action, a in result.items:
        label = a.principal + ("  via " + " → ".join(a.path[1:]) if not a.direct else "") + (f"  [if {' and '.join(a.conditions)}]" if a.conditions else "")
        by_res.setdefault(res, {}).setdefault(label, []).append(action)
    children = [(res, [f"{who}: {', '.join(sorted(acts))}" for who, acts in sorted(d.items())]) for res, d in sorted(by_res.items())]
    if not children:
        children.append("nobody outside the zone")
    if result.missing:
        children.append(("missing data (answers may be incomplete)", result.missing))
    click.echo("\n".join(tree(f"access from outside the {zone}: {len(by_res)} resource(s)", children)))
