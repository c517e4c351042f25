"""The `iam-reasoner` command: a thin layer over the Python API.

Exit codes (relied upon by scripts and CI):
  0  success / answered / every file valid
  1  a policy is invalid (parse), or a CI assertion found what it forbids
  2  unreadable input (not a file, not UTF-8, not JSON) or a usage error
  3  an internal error (a bug: please report it with the input)
"""
from __future__ import annotations

import click

from .common import main

from . import parse_cmd  # noqa: F401  (registers its commands)
from . import load_cmd  # noqa: F401
from . import collect_cmd  # noqa: F401
from . import simulate_cmd  # noqa: F401
from . import query_cmd  # noqa: F401
from . import escalate_cmd  # noqa: F401
from . import check_cmd  # noqa: F401
from . import ask_cmd  # noqa: F401

__all__ = ["main"]
