"""A single authorization request and the policies in force for it.

The JSON schema is the one of ``../shared/conformance/README.md`` (documented for users in the
README): principal, action, resource, resourceAccount, context, identityPolicies,
resourcePolicy, scps, rcps (levels root first), permissionBoundary, sessionPolicy,
vpcEndpointPolicies, wildcardOnlyAction.
"""
from __future__ import annotations

import json
import marshal
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from .diagnostics import Diagnostic, Diagnostics, InputError
from .locate import Source
from .model import Policy, PolicyKind
from .parse import gc_paused, parse_document


@dataclass(slots=True)
class Request:
    id: Any
    principal: str
    action: str
    resource: str
    resource_account: Optional[str] = None
    context: dict[str, list[str]] = field(default_factory=dict)
    identity: list[Policy] = field(default_factory=list)
    resource_policy: Optional[Policy] = None
    scps: list[list[Policy]] = field(default_factory=list)
    rcps: list[list[Policy]] = field(default_factory=list)
    boundary: list[Policy] = field(default_factory=list)
    session: list[Policy] = field(default_factory=list)
    vpce: list[Policy] = field(default_factory=list)
    wildcard_only: bool = False
    # analysis: keys not in `context` are unknown (None), except those listed as known-absent
    unknown_context: bool = False
    absent_keys: frozenset = frozenset()
    known_prefixes: tuple = ()  # keys under these prefixes are known: absent when not given
    # analysis: values an unknown key is known *not* to have (an account outside the collected
    # organization has some aws:PrincipalOrgID, but not that organization's)
    excluded_values: dict = field(default_factory=dict)
    # facts only an estate knows (the simulate schema cannot say them)
    service_linked_role: bool = False
    management_principal: bool = False
    management_resource: bool = False
    warnings: list[Diagnostic] = field(default_factory=list)
    # where each policy object sits in the request's own text (for located reasons), when known
    source: Optional[Source] = None
    locations: dict = field(default_factory=dict)  # id(policy) -> JSON path in the request


REQUIRED = ("principal", "action")
KNOWN_FIELDS = {
    "id", "name", "principal", "action", "resource", "resourceAccount", "context", "identityPolicies",
    "resourcePolicy", "scps", "rcps", "permissionBoundary", "sessionPolicy", "vpcEndpointPolicies",
    "wildcardOnlyAction", "expected", "expected_blocked_by", "deriveContext", "engine", "unknownContext",
    "absentKeys",
}

_policy_cache: dict[tuple, Policy] = {}


def _error(source: Source, path: tuple, message: str, hint: str = "") -> InputError:
    line, col = source.position(path)
    return InputError([Diagnostic(source.file, line, col, message, hint)])


def normalize_context(ctx: Any, source: Source) -> dict[str, list[str]]:
    if ctx is None:
        return {}
    if not isinstance(ctx, dict):
        raise _error(source, ("context",), "`context` must be an object of keys to values", "write `{\"aws:SourceIp\": \"10.0.0.1\"}`")
    out: dict[str, list[str]] = {}
    for k, v in ctx.items():
        vals = v if isinstance(v, list) else [v]
        texts = []
        for x in vals:
            if isinstance(x, bool):
                texts.append("true" if x else "false")
            elif isinstance(x, (int, float, str)):
                texts.append(x if isinstance(x, str) else json.dumps(x))
            else:
                raise _error(source, ("context", k), f"context value of `{k}` must be a string, number, boolean or a list of them", "")
        out[k.lower()] = texts
    return out


def _as_given(doc: Any, kind: PolicyKind, name: str, src: Source, warnings: list) -> Any:
    """Policies in a request are evaluated as given.  Two shapes AWS would not store are read the
    way their authors meant them, with a warning: a Principal written as a bare ARN string
    (read as `{"AWS": ...}`), and a VPC endpoint policy statement without Principal (read as `*`,
    the endpoint policy default)."""
    if not isinstance(doc, dict):
        return doc
    sts = doc.get("Statement")
    listed = isinstance(sts, list)
    changed = False
    out = []
    for i, st in enumerate(sts if listed else [sts]):
        path = ("Statement", i) if listed else ("Statement",)
        if isinstance(st, dict):
            for el in ("Principal", "NotPrincipal"):
                v = st.get(el)
                if isinstance(v, str) and v != "*":
                    line, col = src.position(path + (el,))
                    warnings.append(Diagnostic(src.file, line, col, f"`{el}` given as the string `{v}`: read as `{{\"AWS\": \"{v}\"}}`", "AWS accepts only `*` as a bare string principal", "warning"))
                    st = dict(st)
                    st[el] = {"AWS": v}
                    changed = True
            if name.startswith("vpcEndpointPolicies") and "Principal" not in st and "NotPrincipal" not in st:
                st = dict(st)
                st["Principal"] = "*"
                changed = True
        out.append(st)
    if not changed:
        return doc
    doc = dict(doc)
    doc["Statement"] = out if listed else out[0]
    return doc


def _policy(doc: Any, kind: PolicyKind, name: str, source: Source, path: tuple, warnings: list, locations: dict) -> Policy:
    if isinstance(doc, dict) and "policy" in doc and ("Statement" not in doc):
        name = str(doc.get("name") or name)
        path = path + ("policy",)
        doc = doc["policy"]
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            raise _error(source, path, f"policy `{name}` is a string that is not JSON", "give the policy document as a JSON object") from None
    # The same document recurs across requests: a document that parsed without a word is parsed
    # once and shared (its statements are then stated once per batch); where it sits in each
    # request is recorded in `locations`, so reasons stay located in the request's own text.
    try:
        key = (kind, name, marshal.dumps(doc))  # the decoded document's exact content and order
    except ValueError:
        key = (kind, name, json.dumps(doc, sort_keys=True, default=str))
    pol = _policy_cache.get(key)
    if pol is not None:
        locations[id(pol)] = path
        return pol
    diags = Diagnostics(strict=False)
    src = source.child(path)
    before = len(warnings)
    doc = _as_given(doc, kind, name, src, warnings)
    pol = parse_document(doc, kind, name, src, diags, tolerant=True)
    for d in diags.items:
        warnings.append(Diagnostic(d.file, d.line, d.column, d.message + " (statement ignored)" if d.severity == "error" else d.message, d.hint, "warning"))
    if pol is None:
        raise _error(source, path, f"policy `{name}` cannot be used", "; ".join(d.message for d in diags.items) or "")
    locations[id(pol)] = path
    if not diags.items and len(warnings) == before:
        if len(_policy_cache) > 20000:
            _policy_cache.clear()
        _policy_cache[key] = pol
    return pol


def _policies(obj: dict, field_name: str, kind: PolicyKind, source: Source, warnings: list, locations: dict) -> list[Policy]:
    v = obj.get(field_name)
    if v is None:
        return []
    if isinstance(v, dict):
        return [_policy(v, kind, field_name, source, (field_name,), warnings, locations)]
    if not isinstance(v, list):
        raise _error(source, (field_name,), f"`{field_name}` must be a policy document or a list of them", "")
    return [_policy(d, kind, f"{field_name}[{i}]", source, (field_name, i), warnings, locations) for i, d in enumerate(v)]


def _levels(obj: dict, field_name: str, kind: PolicyKind, source: Source, warnings: list, locations: dict) -> list[list[Policy]]:
    v = obj.get(field_name) or []
    if not isinstance(v, list):
        raise _error(source, (field_name,), f"`{field_name}` must be a list of levels, root first", "each level is a list of policy documents (or `{\"policies\": [...]}`)")
    levels = []
    for i, level in enumerate(v):
        path = (field_name, i)
        label = f"{field_name}[{i}]"
        if isinstance(level, dict) and "policies" in level:
            label = str(level.get("orgIdentifier") or label)
            docs, path = level["policies"], path + ("policies",)
        elif isinstance(level, dict):
            docs = [level]
            path = None
        else:
            docs = level
        if not isinstance(docs, list):
            raise _error(source, (field_name, i), f"level {i} of `{field_name}` must be a list of policies", "")
        levels.append([
            _policy(d, kind, f"{label}[{j}]", source, (path + (j,)) if path else (field_name, i), warnings, locations)
            for j, d in enumerate(docs)
        ])
    return levels


def request_from_json(obj: Any, source: Optional[Source] = None, unknown_context: bool = False) -> Request:
    """Build a Request from its JSON object; InputError (located) when it cannot be evaluated."""
    source = source or Source("<request>", None)
    if not isinstance(obj, dict):
        raise _error(source, (), "a request must be a JSON object", "see the request schema in the README")
    for f in REQUIRED:
        if not isinstance(obj.get(f), str) or not obj.get(f):
            raise _error(source, (f,) if f in obj else (), f"request has no `{f}`" if f not in obj else f"`{f}` must be a non-empty string", "see the request schema in the README")
    action = obj["action"]
    if ":" not in action and action != "*":
        raise _error(source, ("action",), f"`{action}` is not an action", "write `service:ActionName`, e.g. `s3:GetObject`")
    resource = obj.get("resource")
    if resource is None:
        resource = "*"
    if not isinstance(resource, str):
        raise _error(source, ("resource",), "`resource` must be a string (an ARN or `*`)", "")
    warnings: list[Diagnostic] = []
    locations: dict = {}
    ra = obj.get("resourceAccount")
    if ra is not None and not isinstance(ra, str):
        ra = str(ra)
    if ra is None:
        from .match import PrincipalInfo, split_arn

        parts = split_arn(resource)
        if parts and parts[4]:
            ra = parts[4]
        else:
            owner = PrincipalInfo(obj["principal"]).account
            if owner:
                ra = owner
                line, col = source.position(())
                warnings.append(Diagnostic(source.file, line, col, f"no `resourceAccount` given and `{resource}` names none: the principal's account `{owner}` is assumed", "give `resourceAccount` for a resource in another account", "warning"))
    absent = obj.get("absentKeys") or []
    req = Request(
        id=obj.get("id"),
        principal=obj["principal"],
        action=action,
        resource=resource,
        resource_account=ra,
        context=normalize_context(obj.get("context"), source),
        identity=_policies(obj, "identityPolicies", PolicyKind.IDENTITY, source, warnings, locations),
        resource_policy=None,
        scps=_levels(obj, "scps", PolicyKind.SCP, source, warnings, locations),
        rcps=_levels(obj, "rcps", PolicyKind.RCP, source, warnings, locations),
        boundary=_policies(obj, "permissionBoundary", PolicyKind.BOUNDARY, source, warnings, locations),
        session=_policies(obj, "sessionPolicy", PolicyKind.SESSION, source, warnings, locations),
        vpce=_policies(obj, "vpcEndpointPolicies", PolicyKind.RESOURCE, source, warnings, locations),
        wildcard_only=bool(obj.get("wildcardOnlyAction")),
        unknown_context=bool(obj.get("unknownContext", unknown_context)),
        absent_keys=frozenset(k.lower() for k in absent),
        warnings=warnings,
        source=source,
        locations=locations,
    )
    rp = obj.get("resourcePolicy")
    if rp is not None:
        kind = PolicyKind.TRUST if action.lower().startswith("sts:assumerole") else PolicyKind.RESOURCE
        req.resource_policy = _policy(rp, kind, "resourcePolicy", source, ("resourcePolicy",), warnings, locations)
    return req


def requests_from_json(objs: Iterable[Any], unknown_context: bool = False) -> list[Request]:
    """Many requests at once (see :func:`request_from_json`), with the cyclic garbage collector
    paused: a batch builds many small acyclic objects whose collection passes free nothing."""
    with gc_paused(long_lived=True):
        return [request_from_json(o, unknown_context=unknown_context) for o in objs]
