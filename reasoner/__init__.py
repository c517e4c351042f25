"""iam-reasoner: who can do what on which resource in an AWS estate, and why.

One pipeline: load → parse → model → facts → ground/solve → answer → render.
"""
from __future__ import annotations

from .diagnostics import Diagnostic, InputError
from .model import Condition, Policy, PolicyKind, Principal, Statement
from .parse import parse_policy, parse_policy_file, parse_policy_text

__version__ = "0.1.0"

__all__ = [
    "Condition",
    "Diagnostic",
    "InputError",
    "Policy",
    "PolicyKind",
    "Principal",
    "Statement",
    "parse_policy",
    "parse_policy_file",
    "parse_policy_text",
]
