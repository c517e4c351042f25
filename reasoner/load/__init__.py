"""Loading an estate: a snapshot folder, a lone authorization-details file, or Terraform JSON.

``load(path)`` tells them apart by content and returns one :class:`~reasoner.estate.Estate`.

Lenient (the default): everything that can be loaded is, every problem is kept as a located
diagnostic in ``Estate.warnings`` and counted in ``Estate.skipped``.  Strict: the first bad file or
policy raises :class:`~reasoner.diagnostics.InputError`.

Each file is decoded once.  Each distinct policy document is parsed once per kind: the same
AWS-managed policy recurs in every account, the same trust policy on many roles.
"""
from __future__ import annotations

import json
import marshal
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote

from ..diagnostics import Diagnostic, Diagnostics, InputError
from ..estate import Estate
from ..locate import Source
from ..model import Policy, PolicyKind
from ..parse import _no_constant, _pairs, decode_json, gc_paused, parse_document, read_text

__all__ = ["load", "Context", "detect"]

AUTHZ_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


def load(path: str | Path, strict: bool = False, account_id: Optional[str] = None) -> Estate:
    """Load whatever ``path`` holds: a snapshot folder (``accounts/<id>/...``), a lone
    authorization-details file (a one-account snapshot; its account id is read from the ARNs
    inside, or given as ``account_id``), or the JSON of `terraform show -json` (plan or state;
    ``account_id`` resolves ARNs that are known only after apply)."""
    with gc_paused(long_lived=True):  # decoded JSON and the model are acyclic; the estate stays
        return _load(path, strict, account_id)


def _load(path: str | Path, strict: bool, account_id: Optional[str]) -> Estate:
    from . import snapshot, terraform

    p = Path(path)
    ctx = Context(strict, str(path))
    if p.is_dir():
        snapshot.load_folder(ctx, p)
        return ctx.finish()
    if not p.exists():
        raise InputError(
            [Diagnostic(str(path), 0, 0, f"`{path}` does not exist", "give a snapshot folder, an authorization-details file or `terraform show -json` output")],
            unreadable=True,
        )
    loaded = ctx.read_json(p, required=True)
    doc, src = loaded
    kind = detect(doc)
    if kind == "authorization-details":
        snapshot.load_lone_file(ctx, doc, src, account_id)
    elif kind == "terraform":
        terraform.load_terraform(ctx, doc, src, account_id)
    else:
        raise InputError(
            [Diagnostic(src.file, 1, 1, f"`{src.file}` is neither a snapshot nor Terraform JSON", "give a snapshot folder, the output of `aws iam get-account-authorization-details` or of `terraform show -json`")],
            unreadable=True,
        )
    return ctx.finish()


def detect(doc: Any) -> Optional[str]:
    """"authorization-details", "terraform" or None, from a decoded file's shape."""
    if isinstance(doc, list):
        if doc and all(isinstance(page, dict) for page in doc) and any(k in page for page in doc for k in AUTHZ_KEYS):
            return "authorization-details"
        return None
    if not isinstance(doc, dict):
        return None
    if any(k in doc for k in AUTHZ_KEYS):
        return "authorization-details"
    if "format_version" in doc and any(k in doc for k in ("planned_values", "values", "resource_changes", "prior_state", "terraform_version")):
        return "terraform"
    return None


class Context:
    """What one load shares: the estate being built, strictness, counters and the cache of
    parsed policy documents."""

    def __init__(self, strict: bool, source: str):
        self.strict = strict
        self.estate = Estate(source=source)
        self.cache: dict[tuple, Policy] = {}
        self._missing_seen: set = set()
        self.dup_files: set[str] = set()  # files with a repeated key: their documents bypass the cache
        self._diags = Diagnostics(strict=strict)  # of one document at a time (its items are renewed)

    # ------------------------------------------------------------------ bookkeeping

    def count(self, what: str, n: int = 1) -> None:
        self.estate.read[what] = self.estate.read.get(what, 0) + n

    def skip(self, what: str, n: int = 1) -> None:
        self.estate.skipped[what] = self.estate.skipped.get(what, 0) + n

    def missing(self, text: str) -> None:
        if text not in self._missing_seen:
            self._missing_seen.add(text)
            self.estate.missing.append(text)

    def problem(self, source: Source, path: tuple, message: str, hint: str = "", severity: str = "error", key: bool = False) -> None:
        """A located problem: raises in strict mode when it is an error, else is kept."""
        line, col = source.position(path, key=key) if source is not None else (0, 0)
        d = Diagnostic(source.file if source is not None else self.estate.source, line, col, message, hint, severity)
        if self.strict and severity == "error":
            raise InputError([d])
        self.estate.warnings.append(d)

    def finish(self) -> Estate:
        self.estate.read["policy_documents"] = len(self.cache)
        return self.estate

    # ------------------------------------------------------------------ files

    def read_json(self, path: Path, required: bool = False, display: Optional[str] = None):
        """(decoded JSON, Source) of a file, decoded once.  An unreadable or malformed file raises
        in strict mode (or when ``required``); otherwise it is a located warning, the file is
        counted as skipped and None is returned."""
        name = display or str(path)
        try:
            text, name = read_text(path, name)
            doc, dups = loads(text, name)
        except InputError as e:
            if self.strict or required:
                raise
            self.estate.warnings.extend(e.diagnostics)
            self.skip("files")
            return None
        self.count("files")
        if dups:
            self.dup_files.add(name)
        return doc, Source(name, text)

    # ------------------------------------------------------------------ policies

    def policy(self, value: Any, kind: PolicyKind, name: str, source: Source, path: tuple, what: str) -> Optional[Policy]:
        """Parse the policy document at ``path`` of a file (a JSON object, or a JSON string,
        possibly URL-encoded as the IAM API returns it).  ``what`` names the counter
        (e.g. "inline_policies").  Returns None when the document is unusable."""
        dups = source.file in self.dup_files
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("{"):
                text = unquote(text).strip()
            src = source.child(path, embedded=True)
            try:
                doc, dups = loads(text, name)
            except InputError as e:
                d = e.diagnostics[0]
                self.problem(source, path, f"the policy document of `{name}` is not valid JSON: {d.message} (line {d.line}, column {d.column} of the document)", "the document is given as a string: it must decode to a JSON policy document")
                self.skip(what)
                return None
        elif isinstance(value, dict):
            doc = value
            src = source.child(path)
        else:
            self.problem(source, path, f"the policy document of `{name}` is {_describe(value)}", "a policy document is a JSON object (or a JSON string holding one)")
            self.skip(what)
            return None
        key = None
        if not dups:
            key = (kind, _content_key(doc))
            cached = self.cache.get(key)
            if cached is not None:
                self.count(what)
                return Policy(cached.kind, name, cached.version, cached.id, cached.statements, src)
        diags = self._diags
        diags.items = []
        pol = parse_document(doc, kind, name, src, diags)
        if diags.items:
            self.estate.warnings.extend(diags.items)
        if pol is None:
            self.skip(what)
            return None
        sts = doc.get("Statement")
        given = len(sts) if isinstance(sts, list) else 1
        if len(pol.statements) < given:
            self.skip("statements", given - len(pol.statements))
        elif key is not None and not diags.items:
            self.cache[key] = pol
        self.count(what)
        return pol


def loads(text: str, name: str) -> tuple[Any, bool]:
    """Decode JSON once with the C decoder; (value, whether some object repeats a key).  Objects
    with a repeated key are marked for the policy parser, which reports them.  Malformed text
    raises InputError with the exact place."""
    dups = []

    def hook(pairs):
        d = dict(pairs)
        if len(d) != len(pairs):
            dups.append(True)
            return _pairs(pairs)
        return d

    try:
        return json.loads(text, object_pairs_hook=hook, parse_constant=_no_constant), bool(dups)
    except (ValueError, RecursionError):
        decode_json(text, name)  # raises the located diagnostic
        raise InputError([Diagnostic(name, 1, 1, "malformed JSON", "fix the JSON syntax")], unreadable=True) from None


def _content_key(doc: Any) -> bytes | str:
    """What a decoded document holds, as a key: its marshal bytes (format 2, which writes every
    value by content alone, keys in file order, `1`, `1.0` and `true` apart), or its repr for a
    value marshal cannot write."""
    try:
        return marshal.dumps(doc, 2)
    except ValueError:
        return repr(doc)


def _describe(v: Any) -> str:
    if v is None:
        return "`null`"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, str):
        return "a string"
    return "an object"
