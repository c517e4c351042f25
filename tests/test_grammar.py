"""The mini-languages of the grammar (grammar/policy.lark): condition operators, action patterns,
ARNs, policy variables, and the document skeleton rules."""
from __future__ import annotations

import itertools

import pytest

from reasoner import grammar
from reasoner.grammar import Variable, parse_template
from reasoner.paths import grammar_file

# IAM User Guide, "IAM JSON policy elements: Condition operators": every operator AWS defines.
OPERATORS = [
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
    "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
    "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
    "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
]  # fmt: skip


@pytest.mark.parametrize("prefix, op, suffix", list(itertools.product(["", "ForAllValues:", "ForAnyValue:"], OPERATORS, ["", "IfExists"])))
def test_every_operator_with_set_prefix_and_if_exists(prefix, op, suffix):
    name = prefix + op + suffix
    assert grammar.is_condition_operator(name + ":")
    assert grammar.check_skeleton("{Condition:{" + name + ":{k:s}}}", "statement") is None


def test_null_takes_no_if_exists():
    """IAM User Guide: "...IfExists" can be added to any condition operator name "except the Null
    condition"."""
    assert grammar.check_skeleton("{Condition:{Null:{k:s}}}", "statement") is None
    assert grammar.check_skeleton("{Condition:{NullIfExists:{k:s}}}", "statement") is not None


@pytest.mark.parametrize("name", ["StringEqual", "stringequals", "ForAllValue:StringLike", "ForAnyValues:StringLike", "StringLikeIfExist", "IfExists", "ForAllValues:", "StringLike:StringLike", "BoolIfExistsIfExists"])
def test_unknown_operators(name):
    assert not grammar.is_condition_operator(name + ":")


def test_mini_language_terminals_come_from_the_grammar_file():
    text = grammar_file("policy.lark").read_text(encoding="utf-8")
    for name in ("ACTION_PATTERN", "ARN", "ACCOUNT_ID", "COND_OPERATOR"):
        assert f"\n{name}:" in text
        assert grammar.terminal_re(name).pattern  # compiled from the parser's own terminals


@pytest.mark.parametrize("text, ok", [("*", True), ("s3:GetObject", True), ("s3:*", True), ("s3:Get?bject", True), ("*:*", True), ("s3", False), ("s3:", False), ("s3:Get Object", False), ("s3:a:b", False)])
def test_action_patterns(text, ok):
    assert grammar.is_action_pattern(text) is ok


@pytest.mark.parametrize(
    "text, ok",
    [
        ("arn:aws:s3:::bucket", True),
        ("arn:aws:iam::111122223333:role/path/name", True),
        ("arn:aws-us-gov:ec2:us-gov-west-1:111122223333:instance/i-1", True),
        ("arn:aws:lambda:us-east-1:111122223333:function:f:1", True),
        ("arn:${aws:partition}:s3:::b/${aws:username}", True),
        ("arn:aws:s3::bucket", False),
        ("arn:aws s3:::b", False),
        ("aws:s3:::b", False),
    ],
)
def test_arns(text, ok):
    assert grammar.is_arn(text) is ok


def test_account_ids():
    assert grammar.is_account_id("111122223333")
    assert not grammar.is_account_id("11112222333")
    assert not grammar.is_account_id("11112222333a")


def test_templates():
    assert parse_template("plain") == ("plain",)
    assert parse_template("a/${aws:username}/b") == ("a/", Variable("aws:username"), "/b")
    assert parse_template("${aws:PrincipalTag/team, 'none'}") == (Variable("aws:PrincipalTag/team", "none"),)
    assert parse_template("${aws:x,''}") == (Variable("aws:x", ""),)
    assert parse_template("${*}${?}${$}") == (Variable(None, None, "*"), Variable(None, None, "?"), Variable(None, None, "$"))
    assert parse_template("$ {x} $x") == ("$ {x} $x",)
    for bad in ("${aws:x", "${}", "${aws:x, d}", "${ aws:x}", "${**}"):
        assert parse_template(bad) is None, bad


def test_document_skeletons():
    ok = [
        '{Version:"2012-10-17",Statement:[{}]}',
        '{Id:s,Statement:{}}',
        "{Statement:[{},{}]}",
        "{}",
    ]
    bad = ['{Version:"2012-10-18",Statement:[{}]}', "{Statement:s}", "{Statement:[s]}", "{Sid:s}", "{@:s}"]
    assert [grammar.check_skeleton(s, "policy") for s in ok] == [None] * len(ok)
    assert all(grammar.check_skeleton(s, "policy") is not None for s in bad)


def test_statement_skeletons():
    ok = [
        '{Sid:s,Effect:"Allow",Action:[s],Resource:s}',
        '{Effect:"Deny",NotPrincipal:{AWS:[s],Service:s},NotAction:s,NotResource:[s]}',
        '{Principal:"*"}',
        "{Condition:{StringLike:{k:[s,n,b],k:b}}}",
    ]
    bad = ['{Effect:"allow"}', "{Action:[]}", "{Principal:s}", "{Principal:{Aws:s}}", "{Condition:{StringLike:{k:{}}}}", "{Action:n}", "{Actions:s}"]
    assert [grammar.check_skeleton(s, "statement") for s in ok] == [None] * len(ok)
    errs = [grammar.check_skeleton(s, "statement") for s in bad]
    assert all(e is not None for e in errs)
    assert errs[-1].offset == 1  # stops at the unknown element name
