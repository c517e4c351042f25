"""The typed model of IAM policies: what a policy *means*, apart from how its JSON was written.

Every element keeps its JSON path inside its :class:`~reasoner.locate.Source`, so a file:line:col
can be given for it when a diagnostic or a proof reports it (positions are found only then).
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Optional

from .locate import Source


class PolicyKind(str, enum.Enum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"
    SCP = "scp"
    RCP = "rcp"
    BOUNDARY = "boundary"
    SESSION = "session"

    @property
    def takes_principal(self) -> bool:
        """Principal / NotPrincipal belong to resource-based and trust policies (and RCPs, whose
        statements name the principal `*`)."""
        return self in _TAKE_PRINCIPAL


_TAKE_PRINCIPAL = frozenset((PolicyKind.RESOURCE, PolicyKind.TRUST, PolicyKind.RCP))


PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")


def _direct_init(cls):
    """Give a frozen dataclass an ``__init__`` that writes the instance's ``__dict__`` directly.
    The generated one calls ``object.__setattr__`` once per field, three times slower: a large
    estate builds some 30,000 statements, conditions and policies.  Same parameters and defaults
    (fields with a ``default_factory`` are not supported); equality, hash and repr are the
    dataclass's own."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    defaults = {}
    params = []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a default_factory needs the generated __init__")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    d[{f.name!r}] = {f.name}\n" for f in fields)
    ns: dict = {}
    exec(f"def __init__(self, {', '.join(params)}):\n    d = self.__dict__\n{body}", defaults, ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init
    return cls


@_direct_init
@dataclass(frozen=True)
class Principal:
    """One entry of a Principal element: ``type`` is AWS / Service / Federated / CanonicalUser, or
    ``*`` for the bare ``"Principal": "*"``."""

    type: str
    value: str


@_direct_init
@dataclass(frozen=True)
class Condition:
    """One clause: operator, key and the values the policy gives (as strings: JSON booleans and
    numbers are written the way AWS compares them)."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # "StringLike"
    quantifier: Optional[str]  # "ForAllValues" | "ForAnyValue" | None
    if_exists: bool
    key: str
    values: tuple[str, ...]
    path: tuple = ()

    @property
    def negated(self) -> bool:
        return self.base in NEGATED_OPERATORS


NEGATED_OPERATORS = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
        "ArnNotEquals",
        "ArnNotLike",
    }
)


@_direct_init
@dataclass(frozen=True)
class Statement:
    index: int
    sid: Optional[str]
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_action: bool
    resources: Optional[tuple[str, ...]]  # None when the statement has no Resource element
    not_resource: bool
    principals: Optional[tuple[Principal, ...]]  # None when no Principal element
    not_principal: bool
    conditions: tuple[Condition, ...]
    path: tuple = ()

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"#{self.index}"


@_direct_init
@dataclass(frozen=True)
class Policy:
    """A parsed policy document of one kind.  ``name`` is how answers cite it (a policy ARN, an
    inline policy's owner and name, or a file name)."""

    kind: PolicyKind
    name: str
    version: Optional[str]
    id: Optional[str]
    statements: tuple[Statement, ...]
    source: Source = field(compare=False, hash=False, repr=False, default=None)

    @property
    def variables_enabled(self) -> bool:
        """Policy variables are only substituted under Version 2012-10-17; elsewhere `${...}` is
        literal text."""
        return self.version == "2012-10-17"

    def position(self, path: tuple = ()) -> tuple[int, int]:
        return self.source.position(path) if self.source is not None else (0, 0)

    def where(self, path: tuple = ()) -> str:
        line, col = self.position(path)
        file = self.source.file if self.source is not None else "<memory>"
        return f"{file}:{line}:{col}" if line else file
