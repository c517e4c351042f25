"""What every command shares: the click group, exit codes and error reporting."""
from __future__ import annotations

import functools
import sys

import click

from ..diagnostics import InputError

EXIT_OK, EXIT_FINDING, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class Group(click.Group):
    def main(self, *args, **kwargs):  # usage errors exit 2 (click's default), never a traceback
        kwargs.setdefault("standalone_mode", True)
        return super().main(*args, **kwargs)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="iam-reasoner", prog_name="iam-reasoner")
def main() -> None:
    """Answer who can do what on which resource in an AWS estate, and why."""


def report(diagnostics, stream=None) -> None:
    stream = stream or sys.stderr
    for d in diagnostics:
        click.echo(str(d), file=stream)


def guarded(fn):
    """Turn InputError into located messages and exit 2, and any other exception into a one-line
    internal error with exit 3: the CLI never prints a Python traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            report(e.diagnostics)
            sys.exit(EXIT_INPUT)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except (KeyboardInterrupt, BrokenPipeError):
            sys.exit(130)
        except SystemExit:
            raise
        except RecursionError:
            click.echo("error: input nested too deeply to process", err=True)
            sys.exit(EXIT_INPUT)
        except Exception as e:  # pragma: no cover - a bug; the message says so
            click.echo(f"internal error: {type(e).__name__}: {e} (please report this with the input)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper
