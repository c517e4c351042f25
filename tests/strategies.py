"""Generators of IAM requests with the policies in force, in the request schema of
``../shared/conformance/README.md``.

Every generator takes a *chooser*, so one description of the input space serves two drivers:

* :func:`requests` / :func:`request_strategy` — hypothesis strategies (shrinking, fixed seeds);
* :func:`random_requests` — a seeded :class:`random.Random` that yields thousands of requests in a
  fraction of a second, for batch runs against the oracle and for benchmarks.

The space is the one where two faithful simulators must agree.  It leaves out, on purpose, the
situations where the reference simulator is known to depart from AWS's documentation (see the
oracle's README): epoch and ISO dates are never mixed, every policy has Version 2012-10-17, the
principal is never the account root user, multi-valued keys are used only under ForAllValues /
ForAnyValue, operators are the documented ones, and the request's resource never holds `*` or `?`.
"""
from __future__ import annotations

import copy
import random
from typing import Any, Callable, Sequence

from hypothesis import strategies as st

# ---------------------------------------------------------------- choosers


class RandomChooser:
    """Choices from a seeded random generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def choice(self, seq: Sequence):
        return seq[self.rng.randrange(len(seq))]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class DrawChooser:
    """Choices drawn through hypothesis, so that failing examples shrink."""

    def __init__(self, draw: Callable):
        self.draw = draw

    def choice(self, seq: Sequence):
        return self.draw(st.sampled_from(seq))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        # shrinks towards "no": the simpler input
        return self.draw(st.integers(0, 99)) >= round(100 * (1 - p))


def some(c, gen: Callable, lo: int, hi: int) -> list:
    return [gen() for _ in range(c.integer(lo, hi))]


def one_or_list(c, values: list):
    return values[0] if len(values) == 1 and c.chance(0.5) else values


# ---------------------------------------------------------------- the estate

A1, A2 = "111111111111", "222222222222"
ACCOUNTS = (A1, A2)
USERS = ("alice", "bob")
ROLES = ("dev", "ops")
SESSIONS = ("s1", "s2")
REGION = "us-east-1"

ACTIONS = {
    "s3": ("GetObject", "PutObject", "DeleteObject", "ListBucket", "GetBucketPolicy"),
    "sqs": ("SendMessage", "ReceiveMessage", "DeleteQueue"),
    "dynamodb": ("GetItem", "PutItem", "Query"),
}


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def session_arn(account: str, role: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def principal(c) -> str:
    """An IAM user or a role session (never the account root user: the oracle does not treat it
    specially, AWS does)."""
    account = c.choice(ACCOUNTS)
    roll = c.integer(0, 99)
    if roll < 45:
        return user_arn(account, c.choice(USERS))
    if roll < 88:
        return session_arn(account, c.choice(ROLES), c.choice(SESSIONS))
    if roll < 93:
        return f"arn:aws:sts::{account}:federated-user/carol"
    if roll < 97:
        return "anonymous"
    return "sns.amazonaws.com"


def account_of(arn: str) -> str:
    """The principal's account (the other account for those that have none)."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else A2


def resource_for(c, service: str, action: str) -> tuple[str, str]:
    """A concrete resource ARN for the action and the account that owns it."""
    account = c.choice(ACCOUNTS)
    if service == "s3":
        bucket = c.choice(("bucket-a", "bucket-b"))
        if action in ("ListBucket", "GetBucketPolicy"):
            return f"arn:aws:s3:::{bucket}", account
        key = c.choice(("key1", "home/alice/notes.txt", "home/bob/x", "dir/key2"))
        return f"arn:aws:s3:::{bucket}/{key}", account
    if service == "sqs":
        return f"arn:aws:sqs:{REGION}:{account}:{c.choice(('queue-a', 'queue-b'))}", account
    return f"arn:aws:dynamodb:{REGION}:{account}:table/{c.choice(('orders', 'users'))}", account


# ---------------------------------------------------------------- context keys

# key -> (kind, request values, policy values)
KEYS: dict[str, tuple[str, tuple, tuple]] = {
    "aws:SourceIp": (
        "ip",
        ("10.1.2.3", "192.168.7.9", "172.20.0.1", "2001:db8::5"),
        # no 0.0.0.0/0 (nor any range with a zero first octet and a prefix under 8): AWS, "IP
        # address condition operators", takes any CIDR range ("standard CIDR format"); the oracle
        # matches nothing against 0.0.0.0/0 or 0.0.0.0/1.
        ("10.0.0.0/8", "10.1.2.0/24", "10.1.2.3/32", "192.168.0.0/16", "2001:db8::/32", "128.0.0.0/1", "172.16.0.0/12"),
    ),
    "aws:CurrentTime": (
        "date",
        ("2024-05-01T12:00:00Z", "2023-12-31T23:59:59Z", "2025-06-15T08:30:00Z"),
        ("2024-01-01T00:00:00Z", "2024-05-01T12:00:00Z", "2025-01-01T00:00:00Z", "2023-06-01T00:00:00Z", "2024-05-01", "2024-05-01T12:00:00.000Z"),
    ),
    "aws:MultiFactorAuthPresent": ("bool", ("true", "false"), ("true", "false")),
    "aws:SecureTransport": ("bool", ("true", "false"), ("true", "false")),
    "s3:max-keys": ("number", ("10", "100", "7", "50"), ("10", "50", "100", "7", "0", "7.0", "9.5")),
    "aws:SourceArn": (
        "arn",
        (f"arn:aws:sns:{REGION}:{A1}:topic-a", f"arn:aws:sns:{REGION}:{A2}:topic-b", f"arn:aws:s3:::bucket-a"),
        (
            f"arn:aws:sns:{REGION}:{A1}:topic-a",
            f"arn:aws:sns:*:{A1}:*",
            f"arn:aws:sns:{REGION}:{A2}:topic-?",
            "arn:aws:s3:::bucket-*",
            f"arn:aws:sns:{REGION}:*:topic-a",
            "arn:aws:*:*:*:*",
        ),
    ),
    "aws:RequestTag/team": ("string", ("dev", "prod", "Dev", "qa"), ("dev", "prod", "DEV", "d*", "*", "pr?d", "q")),
    "s3:prefix": ("string", ("home/alice/", "home/bob/", "public/"), ("home/*", "home/alice/", "public/", "home/${aws:username}/", "*/", "home/${aws:username, 'bob'}/", "pub${*}")),
    "aws:TagKeys": ("multi", (("team",), ("team", "env"), ("owner", "team"), ("env",)), ("team", "env", "owner", "t*", "cost")),
}

OPERATORS = {
    "string": ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike"),
    "multi": ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "StringEqualsIgnoreCase"),
    "number": ("NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"),
    "date": ("DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"),
    "bool": ("Bool",),
    "ip": ("IpAddress", "NotIpAddress"),
    "arn": ("ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"),
}


def context(c) -> dict:
    """The request context: each known key given or not, with one value (a list for the
    multi-valued aws:TagKeys)."""
    out: dict[str, Any] = {}
    for key, (kind, req_values, _) in KEYS.items():
        if c.chance(0.55):
            v = c.choice(req_values)
            out[key] = list(v) if kind == "multi" else v
    return out


def condition_clause(c, req: dict) -> tuple[str, str, Any]:
    """(operator, key, value) — one clause of a Condition block."""
    ctx = req.get("context", {})
    key = c.choice(tuple(KEYS))
    kind, req_values, pol_values = KEYS[key]
    if c.chance(0.12):
        return "Null", key, c.choice(("true", "false"))
    op = c.choice(OPERATORS[kind])
    if kind == "multi":
        # multi-valued keys only under a set operator (the oracle never matches them otherwise)
        op = c.choice(("ForAllValues:", "ForAnyValue:")) + op
    elif c.chance(0.1) and kind == "string":
        op = c.choice(("ForAllValues:", "ForAnyValue:")) + op
    # IfExists only on plain operators.  AWS: "If the key is not present, evaluate the condition
    # element as true" ("...IfExists condition operators"), with no exception for set operators;
    # the oracle keeps ForAnyValue:...IfExists false for an absent key.
    if c.chance(0.2) and not op.startswith("For"):
        op += "IfExists"
    # bias the values towards the request's own so that both outcomes happen
    pool = list(pol_values)
    if key in ctx and kind != "multi" and kind != "ip" and c.chance(0.4):
        pool = [ctx[key]]
    values = list(dict.fromkeys(c.choice(pool) for _ in range(c.integer(1, 2))))
    if c.chance(0.1):
        key = c.choice((key.upper(), key.lower()))  # key names ignore case
    if _negated(op) and not is_user(req["principal"]):
        # AWS, "Policy variables with no value": "Inverted condition operators like
        # StringNotEquals or StringNotLike do match against a null value"; the oracle lets the
        # clause fail instead.  ${aws:username} has no value for a role session: keep it away
        # from negated operators there.
        values = [v for v in values if "${" not in v] or ["home/x/"]
    return op, key, one_or_list(c, values)


def _negated(op: str) -> bool:
    base = op.split(":")[-1].replace("IfExists", "")
    return "Not" in base


def is_user(principal: str) -> bool:
    return ":user/" in principal


def condition_block(c, req: dict, lo: int = 0, hi: int = 2) -> dict:
    block: dict[str, dict] = {}
    for _ in range(c.integer(lo, hi)):
        op, key, value = condition_clause(c, req)
        if key in block.get(op, {}):
            continue
        block.setdefault(op, {})[key] = value
    return block


# ---------------------------------------------------------------- elements


def action_pattern(c, action: str) -> str:
    service, name = action.split(":")
    other = c.choice([s for s in ACTIONS if s != service])
    options = [
        action,
        action.lower(),
        action.upper(),
        f"{service}:*",
        f"{service}:{name[:3]}*",
        f"{service}:*{name[-4:]}",
        f"{service}:?{name[1:]}",
        "*",
        f"{other}:*",
        f"{service}:{c.choice(ACTIONS[service])}",
        f"{service}:{c.choice(ACTIONS[service])[:2]}*",
    ]
    return c.choice(options)


def resource_pattern(c, resource: str, account: str) -> str:
    parts = resource.split(":", 5)
    service = parts[2]
    other_account = A2 if account == A1 else A1
    if service == "s3":
        bucket = parts[5].split("/")[0]
        options = [
            resource,
            "*",
            f"arn:aws:s3:::{bucket}/*",
            f"arn:aws:s3:::{bucket}",
            "arn:aws:s3:::bucket-?/*",
            f"arn:aws:s3:::{bucket}*",
            "arn:aws:s3:::*",
            f"arn:aws:s3:::{bucket.upper()}/*",
            f"arn:aws:s3:::{bucket}/home/${{aws:username}}/*",
            "arn:aws:s3:::bucket-b/*",
            "arn:aws:*:*:*:*",
        ]
    else:
        rest = parts[5]
        options = [
            resource,
            "*",
            f"arn:aws:{service}:*:{account}:*",
            f"arn:aws:{service}:{REGION}:*:{rest[:-1]}*",
            f"arn:aws:{service}:{REGION}:{other_account}:{rest}",
            f"arn:aws:{service}:{REGION}:{account}:{rest.upper()}",
            f"arn:aws:{service}:*:*:*",
            "arn:aws:*:*:*:*",
            f"arn:aws:{service}:{REGION}:{account}:${{aws:username}}*",
            f"arn:aws:{service}:{REGION}:${{aws:PrincipalAccount}}:*",  # literal: not the resource part
            f"arn:aws:{service}:?s-east-1:{account}:{rest}",
        ]
    return c.choice(options)


def action_element(c, req: dict, negatable: bool = True) -> dict:
    pats = list(dict.fromkeys(action_pattern(c, req["action"]) for _ in range(c.integer(1, 2))))
    name = "NotAction" if negatable and c.chance(0.15) else "Action"
    return {name: one_or_list(c, pats)}


def resource_element(c, req: dict, negatable: bool = True) -> dict:
    pats = list(dict.fromkeys(resource_pattern(c, req["resource"], req["resourceAccount"]) for _ in range(c.integer(1, 2))))
    name = "NotResource" if negatable and c.chance(0.15) else "Resource"
    if name == "NotResource" and not is_user(req["principal"]):
        # AWS, "Policy variables with no value": a Resource or NotResource entry whose variable
        # has no value "will not match any resource", so NotResource then covers everything; the
        # oracle drops the statement.  ${aws:username} has no value for a role session.
        pats = [x for x in pats if "${" not in x] or ["arn:aws:s3:::bucket-b/*"]
    return {name: one_or_list(c, pats)}


def principal_entry(c, req: dict) -> Any:
    """A Principal value that may or may not name the request's principal."""
    p = req["principal"]
    account = account_of(p)
    other = A2 if account == A1 else A1
    options: list[Any] = [{"AWS": account}, {"AWS": f"arn:aws:iam::{account}:root"}, {"AWS": user_arn(other, "alice")}, {"AWS": other}]
    if not (req.get("sessionPolicy") and account == req["resourceAccount"]):
        # AWS, "Session policies": "A resource-based policy can specify the ARN of the session as
        # a principal. [...] The resource-based policy permissions are not limited by the session
        # policy."  The oracle lets the session policy limit them (and a `*` grant with them), so
        # a same-account session with a session policy is never named directly here.
        options += ["*", {"AWS": "*"}] + ([{"AWS": p}] if p.startswith("arn:") else [])
    if p == "sns.amazonaws.com":
        options += [{"Service": p}, {"Service": "sqs.amazonaws.com"}]
    if ":assumed-role/" in p:
        role = p.split("/")[1]
        options += [{"AWS": role_arn(account, role)}, {"AWS": role_arn(account, role)}]
    else:
        options += [{"AWS": user_arn(account, c.choice(USERS))}]
    return c.choice(options)


def statement(c, req: dict, layer: str) -> dict:
    """One statement for a policy of ``layer``: identity, boundary, session, scp, resource, rcp."""
    st: dict[str, Any] = {}
    if c.chance(0.3):
        st["Sid"] = f"S{c.integer(0, 99)}"
    if layer == "rcp":
        effect = "Deny"  # RCPs hold Deny statements (RCPFullAWSAccess grants, always attached)
    elif layer == "scp":
        effect = "Deny" if c.chance(0.3) else "Allow"
    else:
        effect = "Deny" if c.chance(0.18) else "Allow"
    st["Effect"] = effect
    if layer == "resource":
        if c.chance(0.12) and effect == "Deny":
            st["NotPrincipal"] = {"AWS": c.choice((req["principal"], f"arn:aws:iam::{account_of(req['principal'])}:root", user_arn(A2, "bob")))}
        else:
            st["Principal"] = principal_entry(c, req)
    elif layer == "rcp":
        st["Principal"] = "*"
    st.update(action_element(c, req, negatable=layer != "rcp"))
    st.update(resource_element(c, req))
    cond = condition_block(c, req, 0, 2 if c.chance(0.5) else 0)
    if cond:
        st["Condition"] = cond
    return st


def policy(c, req: dict, layer: str, lo: int = 1, hi: int = 3) -> dict:
    return {"Version": "2012-10-17", "Statement": some(c, lambda: statement(c, req, layer), lo, hi)}


def full_access(c) -> dict:
    """FullAWSAccess, the SCP attached by default to every level."""
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def org_levels(c, req: dict, layer: str) -> list:
    levels = []
    for _ in range(c.integer(1, 3)):
        level = []
        if layer == "scp" and c.chance(0.6):
            level.append(full_access(c))
        level += some(c, lambda: policy(c, req, layer, 1, 2), 0 if level else 1, 1)
        levels.append(level)
    return levels


def request(c, rid: Any = None) -> dict:
    """One request with the policies in force for it."""
    p = principal(c)
    service = c.choice(tuple(ACTIONS))
    name = c.choice(ACTIONS[service])
    resource, raccount = resource_for(c, service, name)
    if c.chance(0.35):
        raccount = account_of(p)
        if service != "s3":
            resource = resource.replace(A1, raccount).replace(A2, raccount)
    req: dict[str, Any] = {
        "id": rid,
        "principal": p,
        "action": f"{service}:{name}",
        "resource": resource,
        "resourceAccount": raccount,
        "context": context(c),
        "wildcardOnlyAction": False,
        "deriveContext": True,
    }
    iam_identity = p.startswith("arn:")
    req["identityPolicies"] = some(c, lambda: policy(c, req, "identity"), 0, 2) if iam_identity else []
    if (":assumed-role/" in p or ":federated-user/" in p) and c.chance(0.3):
        req["sessionPolicy"] = policy(c, req, "session")
    if c.chance(0.2) and (":user/" in p or ":assumed-role/" in p):
        req["permissionBoundary"] = policy(c, req, "boundary")
    if c.chance(0.45 if iam_identity else 0.9):
        req["resourcePolicy"] = policy(c, req, "resource")
    if c.chance(0.25) and iam_identity:
        req["scps"] = org_levels(c, req, "scp")
    if c.chance(0.2):
        req["rcps"] = org_levels(c, req, "rcp")
    return req


def random_requests(seed: int, n: int, prefix: str = "r") -> list[dict]:
    """``n`` requests from a seeded generator (same seed, same requests)."""
    c = RandomChooser(random.Random(seed))
    return [request(c, f"{prefix}{i}") for i in range(n)]


# ---------------------------------------------------------------- hypothesis strategies


@st.composite
def request_strategy(draw, rid: Any = "h") -> dict:
    return request(DrawChooser(draw), rid)


@st.composite
def statement_strategy(draw, req: dict, layer: str) -> dict:
    return statement(DrawChooser(draw), req, layer)


@st.composite
def policy_strategy(draw, req: dict, layer: str) -> dict:
    return policy(DrawChooser(draw), req, layer)


# ---------------------------------------------------------------- editing requests


POLICY_FIELDS = ("identityPolicies", "resourcePolicy", "permissionBoundary", "sessionPolicy")


def statements_of(doc: dict) -> list:
    s = doc["Statement"]
    return s if isinstance(s, list) else [s]


def variants(req: dict):
    """Smaller versions of a request, one edit each (for minimising a disagreement): drop a
    policy, a level, a statement, a condition clause, a context key, an element value."""
    def edited(f):
        r = copy.deepcopy(req)
        f(r)
        return r

    for field in ("resourcePolicy", "permissionBoundary", "sessionPolicy", "scps", "rcps"):
        if field in req:
            yield edited(lambda r, f=field: r.pop(f))
    for i in range(len(req.get("identityPolicies", []))):
        yield edited(lambda r, i=i: r["identityPolicies"].pop(i))
    for field in ("scps", "rcps"):
        for i, level in enumerate(req.get(field, [])):
            yield edited(lambda r, f=field, i=i: r[f].pop(i))
            for j in range(len(level)):
                if len(level) > 1:
                    yield edited(lambda r, f=field, i=i, j=j: r[f][i].pop(j))
    for k in list(req.get("context", {})):
        yield edited(lambda r, k=k: r["context"].pop(k))
    for path, doc in _documents(req):
        sts = statements_of(doc)
        for si, s in enumerate(sts):
            if len(sts) > 1:
                yield edited(lambda r, path=path, si=si: _set_statements(_get(r, path), [x for n, x in enumerate(statements_of(_get(r, path))) if n != si]))
            for op, clauses in s.get("Condition", {}).items():
                for key in clauses:
                    def drop(r, path=path, si=si, op=op, key=key):
                        stm = statements_of(_get(r, path))[si]
                        del stm["Condition"][op][key]
                        if not stm["Condition"][op]:
                            del stm["Condition"][op]
                        if not stm["Condition"]:
                            del stm["Condition"]
                    yield edited(drop)
            for el in ("Action", "NotAction", "Resource", "NotResource"):
                v = s.get(el)
                if isinstance(v, list) and len(v) > 1:
                    for vi in range(len(v)):
                        yield edited(lambda r, path=path, si=si, el=el, vi=vi: statements_of(_get(r, path))[si].__setitem__(el, [x for n, x in enumerate(statements_of(_get(r, path))[si][el]) if n != vi]))
            if "Sid" in s:
                yield edited(lambda r, path=path, si=si: statements_of(_get(r, path))[si].pop("Sid"))


def _documents(req: dict):
    for i in range(len(req.get("identityPolicies", []))):
        yield ("identityPolicies", i), req["identityPolicies"][i]
    for f in ("resourcePolicy", "permissionBoundary", "sessionPolicy"):
        if f in req:
            yield (f,), req[f]
    for f in ("scps", "rcps"):
        for i, level in enumerate(req.get(f, [])):
            for j, doc in enumerate(level):
                yield (f, i, j), doc


def _get(r: dict, path: tuple):
    x = r
    for p in path:
        x = x[p]
    return x


def _set_statements(doc: dict, sts: list) -> None:
    doc["Statement"] = sts


def minimise(req: dict, disagrees: Callable[[list[dict]], list[bool]], rounds: int = 60) -> dict:
    """Greedy one-edit-at-a-time reduction of ``req`` while ``disagrees`` holds.  ``disagrees``
    takes a batch of candidates and says for each whether it still shows the difference, so a
    round costs one batch on each side."""
    for _ in range(rounds):
        cands = list(variants(req))
        if not cands:
            break
        hits = disagrees(cands)
        for cand, hit in zip(cands, hits):
            if hit:
                req = cand
                break
        else:
            break
    return req
