"""Matching primitives: globs, ARNs, numbers, dates, IP ranges, principals.

These decide whether one *string* matches one *pattern*; nothing here decides a request.  The
evaluation logic (NotAction, set operators, IfExists, layers, the decision) lives in the
encodings, which receive the results of these primitives as facts.
"""
from __future__ import annotations

import base64
import ipaddress
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Optional

from .grammar import parse_template
from .memo import once_per_key


# ---------------------------------------------------------------- globs

# After policy-variable substitution a pattern may hold `*` and `?` that are *literal* (from
# `${*}`, `${?}` or a request value): they are carried as these two private-use characters, which
# the glob functions read as the plain characters, and `plain` turns back into text.
LITERAL_STAR, LITERAL_QMARK = "\ue000", "\ue001"


def plain(text: str) -> str:
    if LITERAL_STAR in text or LITERAL_QMARK in text:
        return text.replace(LITERAL_STAR, "*").replace(LITERAL_QMARK, "?")
    return text


def literal(text: str) -> str:
    """A text to be matched literally inside a pattern."""
    return text.replace("*", LITERAL_STAR).replace("?", LITERAL_QMARK)



@lru_cache(maxsize=65536)
def _glob_re(pattern: str, ignore_case: bool) -> re.Pattern:
    return re.compile(_field_re(pattern, False) + r"\Z", re.S | (re.I if ignore_case else 0))


def glob(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """`*` any run of characters (including none), `?` exactly one."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        pattern = plain(pattern)
        return pattern.lower() == text.lower() if ignore_case else pattern == text
    return _glob_re(pattern, ignore_case).match(text) is not None


def globs_intersect(a: str, b: str) -> bool:
    """Whether some string matches both glob patterns (used when a request names resources by a
    pattern, e.g. "anything under arn:aws:s3:::bucket/*")."""
    if a == "*" or b == "*":
        return True
    return _intersect(a, b)


@lru_cache(maxsize=65536)
def _intersect(a: str, b: str) -> bool:
    # states (i, j): a[:i] and b[:j] can produce the same string prefix
    seen = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        ca = a[i] if i < len(a) else None
        cb = b[j] if j < len(b) else None
        if ca == "*":
            stack.append((i + 1, j))  # * matches nothing
            if cb is not None:
                stack.append((i, j + 1))  # * absorbs b's next symbol (a char, ? or part of *)
        if cb == "*":
            stack.append((i, j + 1))
            if ca is not None:
                stack.append((i + 1, j))
        if ca is not None and cb is not None and ca != "*" and cb != "*":
            if ca == "?" or cb == "?" or plain(ca) == plain(cb):
                stack.append((i + 1, j + 1))
    return False


@lru_cache(maxsize=65536)
def _cover_re(pattern: str) -> re.Pattern:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(r"[^*?]")  # one definite character: never a whole wildcard
        else:
            out.append(re.escape(plain(ch)))
    return re.compile("".join(out) + r"\Z", re.S)


def glob_covers(pattern: str, request_pattern: str) -> bool:
    """Whether every string matching ``request_pattern`` matches ``pattern``: ``pattern`` matches
    the request pattern's own text, where its `*` may stand for the other's wildcards and its `?`
    only for a definite character (sound: never claims a cover that does not hold)."""
    if pattern == "*":
        return True
    return _cover_re(pattern).match(request_pattern) is not None


# ---------------------------------------------------------------- actions


def action_matches(pattern: str, action: str) -> bool:
    """Action names ignore case; a pattern matches within its service (`s3:Get*`)."""
    return glob(pattern, action, ignore_case=True)


# ---------------------------------------------------------------- ARNs and resources


def split_arn(arn: str) -> Optional[list[str]]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts


def arn_matches(pattern: str, arn: str, request_is_pattern: bool = False) -> bool:
    """ARN matching as IAM does it: partition, service, region and account are matched field by
    field (a wildcard stays inside its field), the resource part as a whole.  With
    ``request_is_pattern`` the request names a set of resources (`arn:aws:s3:::b/*`), and the
    question is whether the two sets meet."""
    if pattern == "*":
        return True
    if request_is_pattern and arn == "*":
        return True
    p = split_arn(pattern)
    a = split_arn(arn)
    test = globs_intersect if request_is_pattern else glob
    if p is None or a is None:
        return test(pattern, arn)
    for pf, af in zip(p[1:5], a[1:5]):
        if not test(pf, af):
            return False
    return test(p[5], a[5])


def arn_matcher(patterns) -> "Callable[[str], bool]":
    """A test equal to ``any(arn_matches(p, arn) for p in patterns)``: the ARN-shaped patterns
    compiled into one regular expression, each field as :func:`arn_matches` matches it (a
    wildcard of partition, service, region or account stays inside its field)."""
    patterns = tuple(patterns)
    if "*" in patterns:
        return lambda arn: True
    shaped = [parts for parts in map(split_arn, patterns) if parts is not None]
    other = [p for p in patterns if split_arn(p) is None]
    rx = None
    if shaped:
        alts = ("arn:" + ":".join(_field_re(f, i < 4) for i, f in enumerate(parts[1:])) for parts in shaped)
        rx = re.compile("(?:" + "|".join(alts) + r")\Z", re.S)

    def test(arn: str) -> bool:
        if split_arn(arn) is None:
            return any(arn_matches(p, arn) for p in patterns)
        if rx is not None and rx.match(arn) is not None:
            return True
        return any(glob(p, arn) for p in other)  # a pattern that is no ARN is matched whole

    return test


def _field_re(field: str, bounded: bool) -> str:
    """A glob as a regular expression: `*` any run of characters, `?` one (within an ARN field
    when ``bounded``: no colon), everything else itself."""
    out = []
    for ch in field:
        if ch == "*":
            out.append("[^:]*" if bounded else ".*")
        elif ch == "?":
            out.append("[^:]" if bounded else ".")
        else:
            out.append(re.escape(plain(ch)))
    return "".join(out)


def arn_covers(pattern: str, request_pattern: str) -> bool:
    """Whether the ARN pattern covers every resource the request pattern names (field by field,
    like :func:`arn_matches`)."""
    if pattern == "*":
        return True
    p = split_arn(pattern)
    a = split_arn(request_pattern)
    if p is None or a is None:
        return glob_covers(pattern, request_pattern)
    return all(glob_covers(pf, af) for pf, af in zip(p[1:], a[1:]))


# ---------------------------------------------------------------- policy variables


MISSING = object()


def substitute(text: str, context: dict[str, list[str]], enabled: bool) -> Optional[str]:
    """Replace policy variables in a policy string by request values.  Under a Version other than
    2012-10-17 the text is literal.  None when a variable has no value and no default (the
    element then matches nothing, as AWS documents).  Multi-valued keys cannot be variables."""
    if not enabled or "${" not in text:
        return text
    parts = parse_template(text)
    if parts is None:
        return text
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif part.escape is not None:
            out.append(literal(part.escape))  # ${*} is a literal asterisk, ${?} a question mark
        else:
            vals = context.get(part.key.lower())
            if vals is None or len(vals) != 1:
                if part.default is None:
                    return None
                out.append(literal(part.default))
            else:
                out.append(literal(vals[0]))  # a request value never acts as a wildcard
    return "".join(out)


def substitute_resource(text: str, context: dict[str, list[str]], enabled: bool) -> Optional[str]:
    """Policy variables in a Resource element: AWS substitutes them "only in the resource portion
    of the ARN", after the fifth colon; before it they are literal text."""
    if "${" not in text:
        return text
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        head = ":".join(parts[:5])
        tail = substitute(parts[5], context, enabled)
        return None if tail is None else head + ":" + tail
    return substitute(text, context, enabled)


# ---------------------------------------------------------------- condition operators


def _number(s: str) -> Optional[float]:
    try:
        return float(s)
    except ValueError:
        return None


def _date(s: str) -> Optional[float]:
    """ISO 8601 date/time or epoch seconds → epoch seconds (one scale for both)."""
    s = s.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return float(s)
    t = s.replace("Z", "+00:00").replace("z", "+00:00")
    for candidate in (t, t.replace(" ", "T")):
        try:
            d = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        return d.timestamp()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y%m%dT%H%M%SZ"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    return None


def _ip(policy_value: str, request_value: str) -> bool:
    try:
        net = ipaddress.ip_network(policy_value.strip(), strict=False)
        addr = ipaddress.ip_address(request_value.strip())
    except ValueError:
        return False
    return addr.version == net.version and addr in net


def _binary(policy_value: str, request_value: str) -> bool:
    try:
        return base64.b64decode(policy_value, validate=True) == base64.b64decode(request_value, validate=True)
    except ValueError:
        return policy_value == request_value


_COMPARE = {
    "Equals": lambda r, p: r == p,
    "LessThan": lambda r, p: r < p,
    "LessThanEquals": lambda r, p: r <= p,
    "GreaterThan": lambda r, p: r > p,
    "GreaterThanEquals": lambda r, p: r >= p,
}

POSITIVE_FORM = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def value_matches(base: str, policy_value: str, request_value: str) -> bool:
    """The positive form of ``base`` (StringNotEquals → StringEquals, ...) applied to one policy
    value and one request value.  Negation is the encodings' business."""
    op = POSITIVE_FORM.get(base, base)
    if op not in ("StringLike", "ArnLike", "ArnEquals"):
        policy_value = plain(policy_value)
    if op == "StringEquals":
        return policy_value == request_value
    if op == "StringEqualsIgnoreCase":
        return policy_value.lower() == request_value.lower()
    if op == "StringLike":
        return glob(policy_value, request_value)
    if op.startswith("Numeric") or op.startswith("Date"):
        read = _number if op.startswith("Numeric") else _date
        p, r = read(policy_value), read(request_value)
        if p is None or r is None:
            return False
        return _COMPARE[op.replace("Numeric", "").replace("Date", "")](r, p)
    if op == "Bool":
        return policy_value.lower() == request_value.lower()
    if op == "BinaryEquals":
        return _binary(policy_value, request_value)
    if op == "IpAddress":
        return _ip(policy_value, request_value)
    if op in ("ArnEquals", "ArnLike"):
        return arn_matches(policy_value, request_value)
    return False


# ---------------------------------------------------------------- principals

_ARN_PRINCIPAL = re.compile(r"arn:([^:]*):(iam|sts)::(\d{12}|aws):(.*)\Z", re.S)


class PrincipalInfo:
    """What the engine knows about a request's principal from its name alone."""

    __slots__ = ("text", "kind", "account", "partition", "name", "role_arn_suffix", "role_name", "session")

    def __init__(self, text: str):
        self.text = text
        self.kind = "unknown"
        self.account = None
        self.partition = "aws"
        self.name = None
        self.role_name = None
        self.session = None
        self.role_arn_suffix = None
        if text in ("anonymous", "*"):
            self.kind = "anonymous"
            return
        m = _ARN_PRINCIPAL.match(text)
        if not m:
            if re.fullmatch(r"\d{12}", text):
                self.kind, self.account = "root", text
            elif "." in text:
                self.kind = "service"
            return
        self.partition, svc, self.account, rest = m.groups()
        if svc == "iam":
            if rest == "root":
                self.kind = "root"
            elif rest.startswith("user/"):
                self.kind = "user"
                self.name = rest.rsplit("/", 1)[-1]
            elif rest.startswith("role/"):
                self.kind = "role"
                self.role_name = self.name = rest.rsplit("/", 1)[-1]
            elif rest.startswith("group/"):
                self.kind = "group"
        else:
            if rest.startswith("assumed-role/"):
                bits = rest.split("/")
                if len(bits) >= 3:
                    self.kind = "session"
                    self.role_name = bits[1]
                    self.session = "/".join(bits[2:])
            elif rest.startswith("federated-user/"):
                self.kind = "federated_user"
                self.name = rest.split("/", 1)[1]

    @property
    def principal_type(self) -> Optional[str]:
        """The value of aws:PrincipalType."""
        return {
            "user": "User",
            "role": "AssumedRole",
            "session": "AssumedRole",
            "root": "Account",
            "federated_user": "FederatedUser",
            "anonymous": "Anonymous",
        }.get(self.kind)

    @property
    def principal_arn(self) -> Optional[str]:
        """The value of aws:PrincipalArn: for a role session, the role's ARN (without path)."""
        if self.kind == "session":
            return f"arn:{self.partition}:iam::{self.account}:role/{self.role_name}"
        if self.kind == "root":
            return f"arn:{self.partition}:iam::{self.account}:root"
        if self.kind in ("user", "role", "federated_user"):
            return self.text
        return None


def principal_match(entry_type: str, value: str, who: PrincipalInfo) -> Optional[str]:
    """How a Principal entry names the request's principal: ``"direct"`` (the principal itself,
    `*`, its service or federation), ``"role"`` (the role of a role session), ``"account"`` (its
    account: access then needs an identity Allow too), or None.  Partial wildcards are not
    supported in Principal (AWS: use `*` alone), so other values are compared literally."""
    value = plain(value)
    if entry_type == "any" or (entry_type == "aws" and value == "*"):
        return "direct"
    if entry_type == "service":
        return "direct" if who.kind == "service" and value.lower() == who.text.lower() else None
    if entry_type == "federated":
        return "direct" if who.kind in ("federated", "service") and value == who.text else None
    if entry_type != "aws" or who.kind in ("anonymous", "service", "unknown"):
        return None
    if re.fullmatch(r"\d{12}", value):
        return "account" if value == who.account else None
    m = _ARN_PRINCIPAL.match(value)
    if not m:
        return None
    _, svc, acct, rest = m.groups()
    if acct != who.account:
        return None
    if svc == "iam" and rest == "root":
        return "account"
    if value == who.text:
        # the role's own ARN names the role, not one of its sessions: permissions boundaries and
        # session policies still limit what it grants
        return "role" if who.kind == "role" else "direct"
    if who.kind == "session" and svc == "iam" and rest.startswith("role/") and rest.rsplit("/", 1)[-1] == who.role_name:
        return "role"
    return None


principal_info = once_per_key(PrincipalInfo, 200_000)
""":class:`PrincipalInfo` of a principal, made once per name (the objects are not changed)."""
