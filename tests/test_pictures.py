"""Pictures of answers: the graph drawn for each kind of answer, DOT / Mermaid / HTML / SVG that
stay well-formed whatever the policies hold (quotes, `<`, `&`, newlines), and the layout."""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasoner import pictures
from reasoner.analysis import Access, Analyzer, CanResult, Hop, WhoCan
from reasoner.cli import main
from reasoner.escalate import Escalations, Finding
from reasoner.load import load
from reasoner.query import ask, text
from reasoner.render import whocan_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "estate"
DEV = "arn:aws:iam::333333333333"
PROD = "arn:aws:iam::222222222222"
ORDERS_API = "arn:aws:lambda:us-east-1:222222222222:function:orders-api"
SVG = "{http://www.w3.org/2000/svg}"

# strings a policy or an estate may hold, each hostile to one of the formats
USER = 'arn:aws:iam::123456789012:user/a"b<c>&d\ne|f]g;h'
ROLE = "arn:aws:iam::123456789012:role/</text><script>alert(1)</script>"
BUCKET = 'arn:aws:s3:::bucket/"quoted" & <angled>\\back|slash'
SID = 'Sid"<&>\nsecond line'
COND = 'StringEquals aws:username "x\\"y" <&> --> ]) |pipe| ;'
NASTY = [USER, ROLE, BUCKET, COND]


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer(load(EXAMPLE))


def reasons(policy: str, sid: str) -> dict:
    ref = {"policy": policy, "statement": sid, "index": 0, "effect": "Allow", "where": "f.json:1:2"}
    return {"identity": {"allow": [ref], "deny": [], "checked": [policy]}}


@pytest.fixture
def nasty_whocan() -> WhoCan:
    assume = Hop("assume-role", USER, "sts:AssumeRole", ROLE, "ConditionallyAllowed", [COND], reasons("arn:aws:iam::123456789012:policy/p&q", SID))
    act = Hop("action", ROLE, "s3:GetObject", BUCKET, "Allowed", [], reasons("arn:aws:iam::123456789012:policy/<b>", SID))
    direct = Hop("action", USER, "s3:GetObject", BUCKET, "ConditionallyAllowed", [COND], reasons("arn:aws:iam::123456789012:policy/p&q", SID))
    return WhoCan(
        "s3:GetObject",
        BUCKET,
        [Access(ROLE, [], [ROLE], [act]), Access(USER, [COND], [USER, ROLE], [assume, act]), Access(USER + "2", [COND], [USER + "2"], [direct])],
        ['missing "data" <here> & there'],
    )


@pytest.fixture
def nasty_escalations() -> Escalations:
    hop = Hop("action", USER, "iam:PassRole", ROLE, "Allowed", [], reasons("p", SID))
    f = Finding(USER, "m&<x>", 'Pass "role" <to> & run', ROLE, ROLE, [COND], [hop], [(USER, "m&<x>", ROLE)], 1)
    return Escalations([f], [ROLE], [], {ROLE: [COND]})


# --------------------------------------------------------------------------- the graphs


def edges(g):
    return [(e.src, e.dst, e.kind) for e in g.edges]


def test_can_through_a_chain(analyzer):
    r = ask(analyzer, f"can alice do lambda:UpdateFunctionCode on {ORDERS_API}")
    g = pictures.graph(r)
    assert edges(g) == [
        (f"{DEV}:user/alice", f"{DEV}:role/deployer", "assume"),
        (f"{DEV}:role/deployer", f"{PROD}:role/prod-deploy", "assume"),
        (f"{PROD}:role/prod-deploy", ORDERS_API, "action"),
    ]
    first = g.edges[0]
    assert first.conditional and first.label[0] == "assumes" and any("MultiFactorAuthPresent" in x for x in first.label)
    assert not g.edges[1].conditional  # deployer → prod-deploy needs nothing more
    assert [n.kind for n in g.nodes.values()] == ["user", "role", "role", "resource"]
    assert g.nodes[f"{DEV}:user/alice"].lines == ["user/alice", "333333333333"]
    assert g.nodes[ORDERS_API].lines == ["function:orders-api", "lambda 222222222222 us-east-1"]


def test_a_denial_is_a_red_dashed_edge_saying_why(analyzer):
    r = ask(analyzer, "can carol do iam:CreateUser on *")
    g = pictures.graph(r)
    (e,) = g.edges
    assert (e.src, e.dst, e.kind) == (f"{DEV}:user/carol", "*", "denied")
    assert e.label == ["iam:CreateUser", "ImplicitlyDenied", "blocked by pb"]
    dot = pictures.dot(r)
    assert re.search(r'n0 -> n1 \[label="iam:CreateUser\\nImplicitlyDenied\\nblocked by pb", .*color="#dc2626".*style=dashed\];', dot)


def test_who_can_draws_every_principal_and_its_chain(analyzer):
    r = ask(analyzer, "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/*")
    g = pictures.graph(r)
    res = "arn:aws:s3:::example-dev-uploads/*"
    assert set(g.nodes) == {a.principal for a in r} | {res, f"{DEV}:role/OrganizationAccountAccessRole"}
    actors = {e.src for e in g.edges if e.kind == "action"}
    assert actors == {a.path[-1] for a in r}
    assert ("arn:aws:iam::111111111111:user/breakglass", f"{DEV}:role/OrganizationAccountAccessRole", "assume") in edges(g)
    assert all(e.dst == res for e in g.edges if e.kind == "action")


def test_escalations_lead_to_the_administrator(analyzer):
    r = ask(analyzer, "escalations")
    g = pictures.graph(r)
    es = edges(g)
    assert (f"{DEV}:user/bob", f"{DEV}:policy/bob-self-service", "method") in es
    assert (f"{DEV}:policy/bob-self-service", pictures.ADMIN, "gives") in es
    assert (f"{DEV}:user/ci-bot", f"{DEV}:role/dev-admin", "method") in es
    assert {e.src for e in g.edges if e.kind == "admin"} == set(r.admins)
    assert g.nodes[pictures.ADMIN].lines == ["administrator", "(arbitrary permissions)"]
    # the administrator is drawn right of everything that leads to it
    svg = pictures.svg(r)
    boxes = node_boxes(svg)
    admin = boxes["arbitrary permissions"]
    leading = [boxes[g.nodes[e.src].title] for e in g.edges if e.dst == pictures.ADMIN]
    assert len(leading) == len(r.admins) + 1
    assert all(admin[0] > x + w for x, y, w, h in leading)


def test_path_and_what_can_have_pictures(analyzer):
    p = ask(analyzer, "path from breakglass to role/deployer all")
    assert edges(pictures.graph(p)) == [
        ("arn:aws:iam::111111111111:user/breakglass", f"{DEV}:role/OrganizationAccountAccessRole", "assume"),
        (f"{DEV}:role/OrganizationAccountAccessRole", f"{DEV}:role/deployer", "assume"),
    ]
    w = ask(analyzer, "what can carol")
    g = pictures.graph(w)
    assert g.nodes["service:iam"].lines == ["iam", "2 action(s)"]
    assert sum(int(n.lines[1].split()[0]) for k, n in g.nodes.items() if k.startswith("service:")) == len(w.actions)


def test_large_answers_draw_a_bounded_picture_and_prove_everything():
    hop = lambda i: Hop("action", f"arn:aws:iam::123456789012:user/u{i}", "s3:GetObject", "arn:aws:s3:::b/*", "Allowed", [], {})  # noqa: E731
    n = pictures.MAX_PRINCIPALS + 10
    r = WhoCan("s3:GetObject", "arn:aws:s3:::b/*", [Access(f"arn:aws:iam::123456789012:user/u{i}", [], [f"arn:aws:iam::123456789012:user/u{i}"], [hop(i)]) for i in range(n)], [])
    g = pictures.graph(r)
    assert len(g.nodes) == pictures.MAX_PRINCIPALS + 1
    assert g.notes == ["10 more principal(s) not drawn: see the proof"]
    page = pictures.to_html(r)
    assert all(f"user/u{i}" in page for i in range(n))
    assert "10 more principal(s) not drawn" in pictures.svg(r)


# --------------------------------------------------------------------------- escaping

DOT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
DOT_STATEMENT = re.compile(r'^\s*(digraph answer \{|\}|(graph|node|edge) \[.*\];|n\d+ \[.*\];|n\d+ -> n\d+ \[.*\];|note\d+ \[.*\];)$')


def dot_decode(s: str) -> str:
    """A DOT string's text: the escapes undone (\\n between our own lines)."""
    out, i = [], 0
    body = s[1:-1]
    while i < len(body):
        if body[i] == "\\":
            out.append("\n" if body[i + 1] == "n" else body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return html.unescape("".join(out)) if "&" in body else "".join(out)


@pytest.mark.parametrize("which", ["whocan", "escalations"])
def test_dot_stays_well_formed_and_keeps_every_string(which, nasty_whocan, nasty_escalations):
    r = nasty_whocan if which == "whocan" else nasty_escalations
    dot = pictures.dot(r)
    strings = DOT_STRING.findall(dot)
    for line in dot.splitlines():
        bare = DOT_STRING.sub('""', line)
        assert DOT_STATEMENT.match(bare), line
        assert not re.search(r'[<>&"\\]', DOT_STRING.sub("", bare).replace(" -> ", " ")), line
    for s in strings:
        assert re.fullmatch(r"[^&]*(&amp;[^&]*)*", s), s  # `&` only as `&amp;`: Graphviz reads entities
    decoded = [dot_decode(s) for s in strings]
    for original in ([USER, ROLE] if which == "escalations" else [USER, ROLE, BUCKET]):
        visible = original.replace("\n", "\\n")
        assert visible in decoded, original  # the tooltip holds the whole ARN


MM_LABEL = r'"[^"]*"'
MM_LINE = re.compile(
    r"^(flowchart LR|  %% [^\n]*"
    rf"|  n\d+(\[{MM_LABEL}\]|\[\({MM_LABEL}\)\]|\(\[{MM_LABEL}\]\)|\{{\{{{MM_LABEL}\}}\}}|\(\({MM_LABEL}\)\))"
    r"|  note\d+\[" + MM_LABEL + r"\]"
    rf"|  n\d+ (-->|-\.->)\|{MM_LABEL}\| n\d+"
    r"|  linkStyle \d+ stroke:#[0-9a-f]{6},color:#[0-9a-f]{6}|  classDef \w+ fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6}|  class [n\d,]+ \w+)$"
)


def mm_decode(label: str) -> list:
    return [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), part) for part in label.split("<br/>")]


@pytest.mark.parametrize("which", ["whocan", "escalations"])
def test_mermaid_stays_well_formed_and_keeps_every_string(which, nasty_whocan, nasty_escalations):
    r = nasty_whocan if which == "whocan" else nasty_escalations
    mm = pictures.mermaid(r)
    for line in mm.splitlines():
        assert MM_LINE.match(line), line
    labels = re.findall(r'"([^"]*)"', mm)
    for label in labels:
        bare = re.sub(r"#\d+;|<br/>", "", label)
        assert re.fullmatch(r"[A-Za-z0-9 :/._*@+,=?…-]*", bare.replace("…", "")), label
    decoded = [x for label in labels for x in mm_decode(label)]
    assert any("user/a\"b<c>&d\\ne|f]g;h" in x for x in decoded)
    assert any('if StringEquals aws:username "x\\"y"' in x for x in decoded)


ALLOWED_TAGS = {"div", "details", "summary", "ul", "li"} | {SVG + t for t in ("svg", "title", "defs", "marker", "path", "text", "g", "rect")}


@pytest.mark.parametrize("which", ["whocan", "escalations"])
def test_html_and_svg_are_well_formed_and_inject_nothing(which, nasty_whocan, nasty_escalations):
    r = nasty_whocan if which == "whocan" else nasty_escalations
    bundle = pictures.mimebundle(r)
    page = ET.fromstring(bundle["text/html"])  # well-formed: every string escaped, no control character
    tags = {el.tag for el in page.iter()}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    everything = "".join(page.itertext())
    assert "</text><script>alert(1)</script>" in everything  # as text, not as elements
    assert 'user/a"b<c>&d\\ne|f]g;h' in everything
    if which == "whocan":
        assert 'statement Sid"<&>\\nsecond line' in everything  # the proof, as nested lists
        assert 'missing "data" <here> & there' in everything
    svg = ET.fromstring(bundle["image/svg+xml"])
    assert svg.tag == SVG + "svg"
    assert not [el for el in svg.iter() if "script" in el.tag.lower() or any(k.startswith("on") for k in el.attrib)]


# --------------------------------------------------------------------------- Jupyter and layout


def test_mimebundle_of_real_answers(analyzer):
    r = ask(analyzer, "who can s3:GetObject on arn:aws:s3:::example-prod-data/*")
    bundle = r._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    assert bundle["text/plain"] == whocan_text(r)
    assert "<svg" in bundle["text/html"] and "<details><summary>proof</summary><ul>" in bundle["text/html"]
    esc = ask(analyzer, "escalations")
    assert esc._repr_mimebundle_()["text/plain"] == text(esc)
    for q in ("path from alice to role/deployer", "what can carol in service iam", f"can alice do lambda:UpdateFunctionCode on {ORDERS_API}"):
        b = ask(analyzer, q)._repr_mimebundle_()
        ET.fromstring(b["image/svg+xml"])
        assert b["text/plain"].strip()


def node_boxes(svg: str) -> dict:
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(SVG + "g"):
        if "node" not in g.get("class", "").split():
            continue
        rect = g.find(SVG + "rect")
        out[g.find(SVG + "title").text] = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
    return out


@pytest.mark.parametrize(
    "query",
    [
        "who can s3:PutObject on arn:aws:s3:::example-dev-uploads/*",
        "escalations",
        f"can alice do lambda:UpdateFunctionCode on {ORDERS_API}",
        "what can alice",
    ],
)
def test_layout_nodes_do_not_overlap_and_fit(analyzer, query):
    r = ask(analyzer, query)
    svg = pictures.svg(r)
    root = ET.fromstring(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    boxes = node_boxes(svg)
    assert len(boxes) == len(pictures.graph(r).nodes)
    items = list(boxes.values())
    for i, (x, y, w, h) in enumerate(items):
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height
        for x2, y2, w2, h2 in items[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "nodes overlap"
    drawn = [p for p in root.iter(SVG + "path") if p.get("marker-end")]
    assert len(drawn) == len(pictures.graph(r).edges)
    # edges that point right start at their source's right side and end at the target's left side
    g = pictures.graph(r)
    for e, p in zip(g.edges, drawn):
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", p.get("d"))]
        sx, sy, sw, sh = boxes[g.nodes[e.src].title]
        dx, dy, dw, dh = boxes[g.nodes[e.dst].title]
        if dx > sx + sw:
            assert abs(nums[0] - (sx + sw)) < 0.2 and abs(nums[-2] - dx) < 0.2


def test_long_edges_pass_between_the_nodes_of_the_layers_they_cross(analyzer):
    r = ask(analyzer, "escalations")
    svg = pictures.svg(r)
    root = ET.fromstring(svg)
    boxes = node_boxes(svg)
    for p in root.iter(SVG + "path"):
        if not p.get("marker-end"):
            continue
        # the straight runs (L) through a layer never cross a node's box
        d = p.get("d")
        points = [tuple(map(float, m)) for m in re.findall(r"(-?\d+\.?\d*),(-?\d+\.?\d*)", d)]
        for m in re.finditer(r"L(-?\d+\.?\d*),(-?\d+\.?\d*)", d):
            x2, y2 = float(m.group(1)), float(m.group(2))
            i = points.index((x2, y2))
            x1, y1 = points[i - 1]
            for bx, by, bw, bh in boxes.values():
                assert not (by < y1 < by + bh and min(x1, x2) < bx + bw and max(x1, x2) > bx), d


def test_cli_questions_draw_dot_and_mermaid():
    r = CliRunner().invoke(main, ["who-can", "s3:GetObject", "arn:aws:s3:::example-prod-data/*", "-s", str(EXAMPLE), "--format", "mermaid"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("flowchart LR\n") and r.output.count('[("example-prod-data/*<br/>s3")]') == 1
    r = CliRunner().invoke(main, ["can", f"{DEV}:user/alice", "lambda:UpdateFunctionCode", ORDERS_API, "-s", str(EXAMPLE), "--format", "dot"])
    assert r.exit_code == 0, r.output
    assert r.output.count(" -> ") == 3 and 'label="role/prod-deploy\\n222222222222"' in r.output
