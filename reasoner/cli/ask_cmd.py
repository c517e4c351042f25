"""`iam-reasoner ask 'QUERY'` and `iam-reasoner repl`: the query language of grammar/query.lark."""
from __future__ import annotations

import json
import sys

import click

from ..analysis import Analyzer
from ..diagnostics import InputError
from ..load import load
from ..query import HELP, QUESTIONS, QueryError, parse, run, text
from .common import EXIT_INPUT, EXIT_INTERNAL, guarded, main, report
from .load_cmd import snapshot_option

FORMATS = ("text", "json", "dot", "mermaid")


def render(result, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), indent=2)
    if fmt in ("dot", "mermaid"):
        from .. import pictures

        try:
            return (pictures.dot if fmt == "dot" else pictures.mermaid)(result).rstrip("\n")
        except TypeError:
            return text(result)  # an answer with no picture (none so far): its text
    return text(result)


def report_query_error(e: QueryError, stream=None) -> None:
    stream = stream or sys.stderr
    report(e.diagnostics, stream)
    pointer = e.pointer()
    if pointer:
        click.echo(pointer, file=stream)


ASK_HELP = (
    "Answer one QUERY in the query language (grammar/query.lark):\n\n\b\n"
    + "\n".join(f"  {form}" for form, _ in QUESTIONS)
    + """

\b
e.g.
  iam-reasoner ask 'who can s3:GetObject on arn:aws:s3:::prod-data/* where aws:SourceIp = 10.1.2.3' -s SNAP
  iam-reasoner ask 'can alice do s3:GetObject on arn:aws:s3:::prod-data/report.csv' -s SNAP
  iam-reasoner ask 'path from alice to role/deployer all' -s SNAP

Keywords are case-insensitive.  PRINCIPAL is an ARN or a name of the estate (`alice`,
`user/alice`, `role/deployer`); quote a value with spaces ('a b').  Exit 0 when answered, 2 on a
bad query or input."""
)


@main.command("ask", help=ASK_HELP)
@click.argument("query")
@snapshot_option
@click.option("--json", "as_json", is_flag=True, help="JSON output (the shape of the matching command: who-can, can, what-can, path, escalations).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Output format (text by default; --json is --format json).")
@guarded
def ask_command(query, snapshot, as_json, fmt):
    fmt = "json" if as_json else (fmt or "text")
    try:
        q = parse(query)  # before loading: a bad query fails fast
        analyzer = Analyzer(load(snapshot))
        result = run(q, analyzer, query)
    except QueryError as e:
        report_query_error(e)
        sys.exit(EXIT_INPUT)
    click.echo(render(result, fmt))


REPL_HELP = HELP + """
commands:
  help                      this text
  format text|json|dot|mermaid
                            how answers are shown (text by default)
  quit                      leave (so do `exit` and end of input)"""


def _read(interactive: bool):
    """The next line, or None at the end of input.  At a terminal: a prompt, line editing and
    history; Ctrl-C drops the line being typed."""
    if not interactive:
        line = sys.stdin.readline()
        return line if line else None
    while True:
        try:
            return input("iam> ")
        except EOFError:
            click.echo()
            return None
        except KeyboardInterrupt:
            click.echo()


@main.command("repl")
@snapshot_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="How answers are shown (the `format` command changes it).")
@guarded
def repl_command(snapshot, fmt):
    """Load a snapshot once and answer queries line by line from standard input (a terminal, or
    a pipe: `printf 'who can ...\\nquit\\n' | iam-reasoner repl -s SNAP`).

    Errors are reported on standard error and the REPL goes on.  Exit 0 when every query was
    answered, 2 when one was not (or the snapshot could not be read), 3 after an internal error."""
    analyzer = Analyzer(load(snapshot))
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:  # pragma: no cover - not on every platform
            pass
        click.echo(f"{len(analyzer.principals)} principal(s) loaded. `help` lists the questions, `quit` leaves.")
    failed = internal = False
    escalation_cache: dict = {}
    while True:
        line = _read(interactive)
        if line is None:
            break
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0].lower()
        if word in ("quit", "exit") and len(line.split()) == 1:
            break
        if word in ("help", "?") and len(line.split()) == 1:
            click.echo(REPL_HELP)
            continue
        if word == "format":
            parts = line.split()
            if len(parts) == 2 and parts[1].lower() in FORMATS:
                fmt = parts[1].lower()
                continue
            click.echo(f"<repl>: error: `{line}` is not a format command\n  hint: write `format text`, `format json`, `format dot` or `format mermaid`", err=True)
            failed = True
            continue
        try:
            q = parse(line)
            key = repr(q)
            if key.startswith("EscalationsQuery") and key in escalation_cache:
                result = escalation_cache[key]  # the estate does not change while the REPL runs
            else:
                result = run(q, analyzer, line)
                if key.startswith("EscalationsQuery"):
                    escalation_cache[key] = result
        except QueryError as e:
            report_query_error(e)
            failed = True
            continue
        except InputError as e:
            report(e.diagnostics)
            failed = True
            continue
        except Exception as e:  # a bug: said in one line, and the REPL goes on
            click.echo(f"internal error: {type(e).__name__}: {e} (please report this with the query)", err=True)
            internal = True
            continue
        click.echo(render(result, fmt))
    sys.exit(EXIT_INTERNAL if internal else EXIT_INPUT if failed else 0)
