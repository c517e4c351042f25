"""Random documents near the policy language: the front end never crashes, every diagnostic is
located inside the text on one line, and the fast skeleton writer (no positions) and the slow one
(positions, used to report) always agree on what the grammar accepts."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner import grammar
from reasoner import parse as P
from reasoner.diagnostics import InputError

WORDS = ["Version", "Id", "Statement", "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition",
         "AWS", "Service", "Federated", "CanonicalUser", "StringLike", "ForAnyValue:StringEquals", "NullIfExists", "Null", "BoolIfExists", "Actions", "x y", "é"]  # fmt: skip
STRINGS = ["Allow", "Deny", "allow", "2012-10-17", "2008-10-17", "*", "s3:GetObject", "s3", "arn:aws:s3:::b/${aws:username}", "${aws:x", "arn:aws:iam::111122223333:root", "111122223333", '"); #script', "\n"]

scalars = st.one_of(st.sampled_from(STRINGS), st.text(max_size=5), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False), st.none())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=4), inner, max_size=4)), max_leaves=12)
statements = st.dictionaries(st.sampled_from(WORDS), values, max_size=7)
documents = st.one_of(
    st.fixed_dictionaries({"Version": st.sampled_from(["2012-10-17", "2008-10-17", "x"]), "Statement": st.lists(statements | values, max_size=3)}),
    st.dictionaries(st.sampled_from(WORDS), values, max_size=4),
    values,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(["identity", "resource", "trust", "scp", "rcp", "boundary", "session"]), st.sampled_from([None, 0, 2]))
def test_never_crashes_and_always_locates(doc, kind, indent):
    text = json.dumps(doc, indent=indent)
    lines = text.split("\n")
    try:
        pol, diags = P.parse_policy_text(text, kind, file="f", strict=False)
    except InputError as e:  # only JSON too deep for the decoder
        assert e.unreadable
        return
    for d in diags.items:
        assert 1 <= d.line <= len(lines) and 1 <= d.column <= len(lines[d.line - 1]) + 1, (d, text)
        assert "\n" not in d.message and d.hint and "\n" not in d.hint
    if pol is not None:
        assert all(s.effect in ("Allow", "Deny") for s in pol.statements)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(WORDS), values)
def test_fast_and_slow_skeletons_agree(key, value):
    fast = P._member_skeleton(key, value)
    pieces = [(fast, {key: value})] if fast is not None else list(P._member_skeletons(key, value))
    for skeleton, member in pieces:
        slow = P._Skeleton()
        slow.statement_member(member, ("Statement", 0))
        assert (grammar.check_skeleton(skeleton, "statement") is None) == (grammar.check_skeleton(slow.text(), "statement") is None), (skeleton, slow.text())
    top = P._top_skeleton(key, value)
    slow = P._Skeleton()
    slow.policy_member(key, value)
    assert (grammar.check_skeleton(top, "policy") is None) == (grammar.check_skeleton(slow.text(), "policy") is None), (top, slow.text())
