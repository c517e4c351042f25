"""The rules AWS enforces on policy documents, per policy kind, and the typed model they give.

Where a rule is subtle, the docstring quotes the AWS documentation it follows."""
from __future__ import annotations

import json

import pytest

from reasoner.model import Condition, PolicyKind, Principal
from reasoner.parse import parse_policy, parse_policy_text


def doc(*statements, version="2012-10-17", **top):
    d = {"Version": version} if version is not None else {}
    d.update(top)
    d["Statement"] = list(statements)
    return json.dumps(d, indent=1)


def st(base=None, **members):
    """A statement: the base one (or ``base``) with members changed; None removes a member."""
    out = dict(base) if base is not None else {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    for k, v in members.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def messages(text, kind="identity"):
    pol, diags = parse_policy_text(text, kind, strict=False)
    return [d.message for d in diags.errors], [d.message for d in diags.warnings], pol


def errors(text, kind="identity"):
    return messages(text, kind)[0]


# ------------------------------------------------------------------ the model


def test_every_element_reaches_the_model():
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "policy-id",
            "Statement": [
                {
                    "Sid": "One",
                    "Effect": "Deny",
                    "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:root", "444455556666"], "Service": "ec2.amazonaws.com", "Federated": "cognito-identity.amazonaws.com", "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
                    "NotAction": ["s3:Get*", "s3:?ut*"],
                    "NotResource": "arn:aws:s3:::bucket/*",
                    "Condition": {
                        "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["team-*", "env"]},
                        "Bool": {"aws:SecureTransport": False},
                        "NumericLessThanEquals": {"s3:max-keys": 10, "s3:x": [1.5, "2"]},
                        "Null": {"aws:TokenIssueTime": "true"},
                    },
                },
                {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": ["*"]},
            ],
        },
        indent=2,
    )
    pol, diags = parse_policy_text(text, "resource")
    assert diags.items == []
    assert (pol.kind, pol.version, pol.id, len(pol.statements)) == (PolicyKind.RESOURCE, "2012-10-17", "policy-id", 2)
    a, b = pol.statements
    assert (a.index, a.sid, a.effect, a.actions, a.not_action) == (0, "One", "Deny", ("s3:Get*", "s3:?ut*"), True)
    assert (a.resources, a.not_resource, a.not_principal) == (("arn:aws:s3:::bucket/*",), True, True)
    assert a.principals == (
        Principal("AWS", "arn:aws:iam::111122223333:root"),
        Principal("AWS", "444455556666"),
        Principal("Service", "ec2.amazonaws.com"),
        Principal("Federated", "cognito-identity.amazonaws.com"),
        Principal("CanonicalUser", "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"),
    )
    path = ("Statement", 0, "Condition")
    assert a.conditions == (
        Condition("ForAnyValue:StringLikeIfExists", "StringLike", "ForAnyValue", True, "aws:TagKeys", ("team-*", "env"), path + ("ForAnyValue:StringLikeIfExists", "aws:TagKeys")),
        Condition("Bool", "Bool", None, False, "aws:SecureTransport", ("false",), path + ("Bool", "aws:SecureTransport")),
        Condition("NumericLessThanEquals", "NumericLessThanEquals", None, False, "s3:max-keys", ("10",), path + ("NumericLessThanEquals", "s3:max-keys")),
        Condition("NumericLessThanEquals", "NumericLessThanEquals", None, False, "s3:x", ("1.5", "2"), path + ("NumericLessThanEquals", "s3:x")),
        Condition("Null", "Null", None, False, "aws:TokenIssueTime", ("true",), path + ("Null", "aws:TokenIssueTime")),
    )
    assert (b.principals, b.actions, b.resources, b.sid, b.label) == ((Principal("*", "*"),), ("*",), ("*",), None, "#1")
    assert pol.where(("Statement", 1, "Action")) == "<policy>:" + "%d:%d" % pol.position(("Statement", 1, "Action"))
    assert pol.position(("Statement", 1, "Action"))[0] > 1


def test_statement_may_be_a_single_object():
    pol = parse_policy(json.dumps({"Version": "2012-10-17", "Statement": st(Sid="Only")}))
    assert [s.sid for s in pol.statements] == ["Only"]
    assert pol.statements[0].path == ("Statement",)


def test_parse_policy_accepts_a_decoded_document():
    pol = parse_policy({"Version": "2012-10-17", "Statement": [st()]}, "boundary", name="b")
    assert (pol.kind, pol.name, pol.statements[0].actions) == (PolicyKind.BOUNDARY, "b", ("s3:GetObject",))
    assert pol.position(("Statement", 0)) == (0, 0)  # no text: no position


# ------------------------------------------------------------------ Effect, Action, Resource


@pytest.mark.parametrize("effect", ["allow", "ALLOW", "Permit", "", " Allow"])
def test_effect_is_exactly_allow_or_deny(effect):
    assert errors(doc(st(Effect=effect))) == [f"`{effect}` is not a valid effect"]


def test_effect_must_be_present():
    assert errors(doc(st(Effect=None))) == ["statement has no `Effect`"]


def test_action_xor_not_action():
    assert errors(doc(st(NotAction="s3:*"))) == ["statement has both `Action` and `NotAction`"]
    assert errors(doc(st(Action=None))) == ["statement has neither `Action` nor `NotAction`"]
    assert errors(doc(st(Action=None, NotAction=["s3:*"]))) == []


def test_resource_xor_not_resource():
    assert errors(doc(st(NotResource="*"))) == ["statement has both `Resource` and `NotResource`"]
    assert errors(doc(st(Resource=None))) == ["statement has neither `Resource` nor `NotResource`"]
    assert errors(doc(st(Resource=None, NotResource="arn:aws:s3:::b"))) == []


def test_resource_policies_may_leave_resource_out():
    """Amazon ECR repository policies name no Resource: the statement is about the repository the
    policy is attached to.  Identity-side policies still need one."""
    from reasoner.parse import parse_policy

    pol = parse_policy({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImage"}]}, "resource")
    assert pol.statements[0].resources is None


def test_empty_lists_are_rejected():
    assert errors(doc(st(Action=[]))) == ["empty list in `Action`"]
    assert errors(doc(st(Resource=[]))) == ["empty list in `Resource`"]


@pytest.mark.parametrize("action", ["s3", "s3:", ":Get", "s3:Get Object", "s3:Get/Object", "", 7])
def test_action_pattern_syntax(action):
    got = errors(doc(st(Action=["s3:GetObject", action])))
    assert len(got) == 1
    assert got[0] == (f"`{action}` is not an action" if isinstance(action, str) else "unexpected number in `Action`")


@pytest.mark.parametrize("action", ["*", "s3:*", "s3:Get*", "s3:?etObject", "iam:PassRole", "ec2:Describe*", "a4b:Get*", "execute-api:Invoke", "s3:*Object*"])
def test_action_patterns_accepted(action):
    assert errors(doc(st(Action=action))) == []


@pytest.mark.parametrize("resource", ["*", "arn:aws:s3:::bucket/*", "arn:aws-cn:ec2:cn-north-1:111122223333:instance/*", "arn:*:iam::*:role/x", "arn:aws:s3:::b/${aws:username}/*", "arn:aws:execute-api:*:*:*/GET/a:b/c"])
def test_resources_accepted(resource):
    assert errors(doc(st(Resource=resource))) == []


@pytest.mark.parametrize("resource", ["bucket", "arn:aws:s3", "s3:::bucket", "arn:aws:s3::bucket"])
def test_resources_rejected(resource):
    assert errors(doc(st(Resource=resource))) == [f"`{resource}` is not an ARN"]


# ------------------------------------------------------------------ Principal, per kind


@pytest.mark.parametrize("kind", ["identity", "scp", "boundary", "session"])
def test_principal_only_in_resource_trust_and_rcp_policies(kind):
    """IAM User Guide, Principal: "You cannot use the Principal element in an identity-based
    policy"; SCPs, permissions boundaries and session policies are identity-side too."""
    got = errors(doc(st(Principal="*")), kind)
    assert len(got) == 1 and got[0].startswith("`Principal` is not allowed in ")
    assert errors(doc(st(NotPrincipal={"AWS": "111122223333"}, Effect="Deny")), kind)[0].startswith("`NotPrincipal` is not allowed in ")


@pytest.mark.parametrize("kind", ["resource", "trust", "rcp"])
def test_principal_required_where_it_belongs(kind):
    resource = None if kind == "trust" else "*"
    assert errors(doc(st(Resource=resource)), kind) == [f"statement has no `Principal` (required in {'a role trust' if kind == 'trust' else 'a resource-based' if kind == 'resource' else 'a resource control'} policy)"]


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": "111122223333"},
        {"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:sts::111122223333:assumed-role/r/s", "AIDAJQABLZS4A3QDU576Q"]},
        {"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
        {"Federated": "arn:aws:iam::111122223333:saml-provider/p"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
    ],
)
def test_principal_forms(principal):
    assert errors(doc(st(Principal=principal)), "resource") == []


@pytest.mark.parametrize(
    "principal, message",
    [
        ("arn:aws:iam::111122223333:root", "`Principal` given as the string `arn:aws:iam::111122223333:root`"),
        ({"Aws": "*"}, "unknown principal type `Aws`"),
        ({"AWS": "bob"}, "`bob` is not a valid AWS principal"),
        ({"AWS": []}, "empty list in `AWS`"),
        (["*"], "unexpected list in `Principal`"),
    ],
)
def test_principal_errors(principal, message):
    assert errors(doc(st(Principal=principal)), "resource") == [message]


def test_trust_policy_has_no_resource():
    """The issue and the IAM User Guide: a role trust policy names who may assume the role;
    the role itself is the resource, so `Resource` / `NotResource` are rejected."""
    ok = st(Resource=None, Principal={"Service": "ec2.amazonaws.com"}, Action="sts:AssumeRole")
    assert errors(doc(ok), "trust") == []
    assert errors(doc(st(ok, Resource="*")), "trust") == ["`Resource` is not allowed in a role trust policy"]
    assert errors(doc(st(ok, NotResource="*")), "trust") == ["`NotResource` is not allowed in a role trust policy"]


def test_not_principal_rules():
    """IAM User Guide, NotPrincipal: "You cannot use the NotPrincipal element in an IAM
    identity-based policy nor in an IAM role trust policy" and "NotPrincipal must be used with
    "Effect":"Deny". Using it with "Effect":"Allow" is not supported."""
    deny = st(Effect="Deny", NotPrincipal={"AWS": "arn:aws:iam::111122223333:root"})
    assert errors(doc(deny), "resource") == []
    assert errors(doc(st(deny, Effect="Allow")), "resource") == ["`NotPrincipal` is only supported with `\"Effect\": \"Deny\"`"]
    assert errors(doc(st(deny, Resource=None)), "trust") == ["`NotPrincipal` is not allowed in a role trust policy"]
    assert errors(doc(st(deny, Principal="*")), "resource") == ["statement has both `Principal` and `NotPrincipal`"]


def test_resource_control_policies():
    """AWS Organizations, RCP syntax: the elements of an RCP are Version, Statement, Sid, Effect,
    Principal, Action, Resource / NotResource and Condition (no NotAction, no NotPrincipal);
    "Every RCP must include a Version element with the value 2012-10-17"; the principal is given
    as `"*"` and narrowed with conditions."""
    ok = st(Effect="Deny", Principal="*", Action="s3:*")
    assert errors(doc(ok), "rcp") == []
    assert errors(doc(st(ok, Action=None, NotAction="s3:Get*")), "rcp") == ["`NotAction` is not allowed in a resource control policy"]
    assert errors(doc(st(ok, Principal={"AWS": "111122223333"})), "rcp") == ["the `Principal` of a resource control policy must be `*`"]
    assert errors(doc(st(ok, Principal=None, NotPrincipal={"AWS": "111122223333"})), "rcp") == ["`NotPrincipal` is not allowed in a resource control policy"]
    assert errors(doc(ok, version=None), "rcp") == ["a resource control policy must have `\"Version\": \"2012-10-17\"`"]
    assert errors(doc(ok, version="2008-10-17"), "rcp") == ["a resource control policy must have `\"Version\": \"2012-10-17\"`"]


def test_service_control_policies():
    """AWS Organizations, SCP syntax: no Principal / NotPrincipal; Version 2012-10-17."""
    assert errors(doc(st(Effect="Deny", NotAction="s3:*", Action=None)), "scp") == []
    assert errors(doc(st(), version=None), "scp") == ["a service control policy must have `\"Version\": \"2012-10-17\"`"]


# ------------------------------------------------------------------ Version and variables


def test_version_values():
    assert errors(doc(st(), version="2012-10-17")) == []
    assert errors(doc(st(), version="2008-10-17")) == []
    assert errors(doc(st(), version=None)) == []
    assert errors(doc(st(), version="2012-10-18")) == ["unsupported policy version `2012-10-18`"]
    assert errors(doc(st(), version=20121017)) == ["unexpected number in `Version`"]


@pytest.mark.parametrize("version", ["2008-10-17", None])
def test_variables_are_literal_text_before_2012_10_17(version):
    """IAM User Guide, Version: with 2008-10-17 "newer features such as policy variables will not
    work with your policy. For example, variables such as ${aws:username} aren't recognized as
    variables and are instead treated as literal strings in the policy."  A policy without
    Version is read as 2008-10-17, so the same holds.  A warning, not an error: the policy is
    valid, it just may not mean what its author wanted."""
    text = doc(st(Resource="arn:aws:s3:::home/${aws:username}/*", Condition={"StringEquals": {"aws:x": "${aws:y"}}), version=version)
    errs, warns, pol = messages(text)
    assert errs == []
    assert warns == [
        "`arn:aws:s3:::home/${aws:username}/*` is literal text here: policy variables need `\"Version\": \"2012-10-17\"`",
        "`${aws:y` is literal text here: policy variables need `\"Version\": \"2012-10-17\"`",
    ]
    assert not pol.variables_enabled


@pytest.mark.parametrize(
    "text",
    ["${aws:username}", "${aws:PrincipalTag/team}", "${*}", "${?}", "${$}", "${aws:PrincipalTag/team, 'none'}", "${aws:x,'d'}", "a${aws:a}b${aws:b}c", "arn:aws:s3:::${s3:prefix}/*"],
)
def test_variables_accepted(text):
    resource = text if text.startswith("arn:") else "arn:aws:s3:::b/" + text
    errs, warns, _ = messages(doc(st(Resource=resource, Condition={"StringLike": {"s3:prefix": text}})))
    assert (errs, warns) == ([], [])


@pytest.mark.parametrize("text", ["${aws:username", "${}", "${ aws:x}", "${aws:x, d}", "${aws:x, 'd'"])
def test_variables_malformed(text):
    errs = errors(doc(st(Condition={"StringLike": {"s3:prefix": ["ok", text]}})))
    assert errs == [f"malformed policy variable in `{text}`"]


# ------------------------------------------------------------------ Condition


def test_condition_values_take_json_booleans_and_numbers():
    """IAM User Guide, grammar: "Quotation marks are optional for numeric and Boolean values"."""
    text = doc(st(Condition={"Bool": {"aws:SecureTransport": True, "aws:MultiFactorAuthPresent": [False]}, "NumericGreaterThan": {"s3:max-keys": -3.25}}))
    errs, _, pol = messages(text)
    assert errs == []
    assert [c.values for c in pol.statements[0].conditions] == [("true",), ("false",), ("-3.25",)]


@pytest.mark.parametrize("value, message", [(None, "unexpected `null` in `Condition`"), ({"a": 1}, "unexpected object in `Condition`"), ([["a"]], "unexpected list in `Condition`")])
def test_condition_values_reject_other_json(value, message):
    assert errors(doc(st(Condition={"StringEquals": {"aws:x": value}}))) == [message]


def test_condition_shapes():
    assert errors(doc(st(Condition={}))) == []
    assert errors(doc(st(Condition={"StringEquals": {}}))) == []
    assert errors(doc(st(Condition={"StringEquals": "x"}))) == ["unexpected string in `Condition`"]
    assert errors(doc(st(Condition=["x"]))) == ["unexpected list in `Condition`"]


def test_a_document_seen_again_is_not_parsed_again():
    text = doc(st(Sid="Again"))
    first, _ = parse_policy_text(text, "identity", file="a.json", name="A")
    second, diags = parse_policy_text("\n" + text, "identity", file="b.json", name="B")
    third, _ = parse_policy_text(text, "identity", file="c.json", name="C")
    assert diags.items == []
    assert third.statements is first.statements and second.statements is not first.statements
    assert (third.name, third.source.file) == ("C", "c.json")
    assert third.position(("Statement", 0, "Sid")) == first.position(("Statement", 0, "Sid"))
    assert second.position(("Statement", 0, "Sid"))[0] == first.position(("Statement", 0, "Sid"))[0] + 1
    # a document with a warning or an error is parsed (and reported) every time
    warned = doc(st(Resource="arn:aws:s3:::${aws:username}"), version=None)
    assert len(messages(warned)[1]) == 1 and len(messages(warned)[1]) == 1
    assert parse_policy_text(text, "resource", strict=False)[1].errors  # the kind is part of the key


def test_tolerant_mode_keeps_only_statements_whose_meaning_is_clear():
    """Tolerant mode (evaluating policies as given) turns errors that leave a statement's meaning
    clear into warnings; a statement missing, or doubling, Action, Resource or Principal has no
    clear meaning and is still left out."""
    from reasoner.diagnostics import Diagnostics
    from reasoner.locate import Source
    from reasoner.parse import parse_document

    def tolerant(statement, kind="identity"):
        diags = Diagnostics(strict=False)
        pol = parse_document({"Version": "2012-10-17", "Statement": [statement]}, kind, "p", Source("p"), diags, tolerant=True)
        return len(pol.statements), [d.severity for d in diags.items]

    assert tolerant(st(Action=["s3:GetObject", "nope"])) == (1, ["warning"])
    for bad in (st(Action=None), st(NotAction="s3:*"), st(Resource=None), st(NotResource="*"), st(Effect=None)):
        assert tolerant(bad) == (0, ["error"]), bad
    assert tolerant(st(), "resource") == (0, ["error"])
    assert tolerant(st(Principal="*", NotPrincipal="*"), "resource")[0] == 0


def test_documents_built_in_python_with_values_json_cannot_hold():
    """parse_policy takes decoded documents from other loaders (YAML gives dates, code gives
    tuples or integer keys): each is a located-by-path error, never a crash."""
    import datetime

    from reasoner.diagnostics import Diagnostics
    from reasoner.locate import Source
    from reasoner.parse import parse_document

    def problems(d, kind="identity"):
        diags = Diagnostics(strict=False)
        parse_document(d, kind, "p", Source("p"), diags)
        return [x.message for x in diags.items]

    base = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    assert problems({"Statement": [dict(base, Condition={"DateLessThan": {"aws:CurrentTime": datetime.date(2020, 1, 1)}})]}) == ["unexpected value that is not JSON in `Condition`"]
    assert problems({"Statement": [dict(base, Action=("s3:*",))]}) == ["unexpected value that is not JSON in `Action`"]
    assert problems({"Statement": [{**base, 1: "x"}]}) == ["unknown element `1` in a statement"]
    assert problems({"Statement": [dict(base, Condition={"StringLike": {5: "a"}})]}) == ["unexpected key `5` in `Condition`"]
    assert problems({"Statement": [dict(base, Principal={9: "a"})]}, "resource") == ["unknown principal type `9`"]
