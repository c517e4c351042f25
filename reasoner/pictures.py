"""Pictures of answers: Graphviz DOT, Mermaid flowcharts, and for Jupyter an HTML block with an
inline SVG drawn here (a layered layout: no external program, no script, no network) and the proof
as nested lists.

Every answer becomes one small graph first: nodes for principals, roles and resources (and an
"administrator" node for escalations), edges for assume-role hops, escalation methods and the
final action, labelled with their conditions.  ``dot``, ``mermaid`` and ``svg`` draw that graph;
``mimebundle`` is what the result objects return from ``_repr_mimebundle_``.

Every string from a policy or an estate is escaped for the format it lands in: control characters
are first made visible (`\\n`), then DOT gets its quotes, backslashes and `&` escaped, Mermaid gets
numeric entity codes for anything outside a small safe set, and HTML/SVG get entity escapes.
"""
from __future__ import annotations

import hashlib
import html
import re
import textwrap
from dataclasses import dataclass, field
from typing import Optional

from .render import hop_label, outline

ADMIN = "::administrator"
MAX_PRINCIPALS = 40  # pictures draw this many principals (findings, admins); the proof lists them all
LINE = 44  # longest line of a node label
EDGE_LINE = 40  # longest line of an edge label

ALLOWED = ("Allowed", "ConditionallyAllowed")

NODE_STYLE = {  # kind: (fill, stroke)
    "user": ("#dbeafe", "#1e40af"),
    "role": ("#dcfce7", "#166534"),
    "account": ("#e0e7ff", "#3730a3"),
    "service": ("#f3e8ff", "#6b21a8"),
    "group": ("#e0f2fe", "#075985"),
    "policy": ("#f1f5f9", "#334155"),
    "federated": ("#fae8ff", "#86198f"),
    "resource": ("#fef3c7", "#92400e"),
    "admin": ("#fee2e2", "#991b1b"),
    "principal": ("#f1f5f9", "#334155"),
}
EDGE_COLOR = {
    "assume": "#2563eb",
    "action": "#15803d",
    "denied": "#dc2626",
    "method": "#b45309",
    "gives": "#991b1b",
    "admin": "#991b1b",
    "may": "#15803d",
}


# --------------------------------------------------------------------------- the graph


@dataclass
class Node:
    key: str
    kind: str
    lines: list
    title: str


@dataclass
class Edge:
    src: str
    dst: str
    kind: str
    label: list  # lines, control characters already visible
    conditional: bool = False
    title: list = field(default_factory=list)  # lines of the tooltip, likewise


@dataclass
class Graph:
    title: str
    nodes: dict = field(default_factory=dict)  # key → Node, in insertion order
    edges: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    _seen: set = field(default_factory=set, repr=False)

    def node(self, key: str, kind: Optional[str] = None, lines: Optional[list] = None) -> str:
        if key not in self.nodes:
            k = kind or node_kind(key)
            self.nodes[key] = Node(key, k, lines or node_lines(key, k), key if key != ADMIN else "arbitrary permissions")
        return key

    def edge(self, src: str, dst: str, kind: str, label: list, conditional: bool = False, title: Optional[list] = None) -> None:
        self.node(src)
        self.node(dst)
        key = (src, dst, kind, tuple(label))
        if key in self._seen:
            return
        self._seen.add(key)
        self.edges.append(Edge(src, dst, kind, label, conditional, [_visible(t) for t in (title or label)]))


_IAM = re.compile(r"arn:[^:]*:(?:iam|sts)::([^:]*):(.*)\Z", re.S)


def node_kind(key: str) -> str:
    if key == ADMIN:
        return "admin"
    if not key.startswith("arn:"):
        return "service" if "." in key else ("resource" if key == "*" else "principal")
    m = _IAM.match(key)
    if not m:
        return "resource"
    rest = m.group(2)
    if rest == "root":
        return "account"
    for prefix, kind in (("user/", "user"), ("role/", "role"), ("assumed-role/", "role"), ("group/", "group"), ("policy/", "policy"), ("saml-provider/", "federated"), ("oidc-provider/", "federated")):
        if rest.startswith(prefix):
            return kind
    return "resource"


def node_lines(key: str, kind: str) -> list:
    """A short label: what it is and where (the full ARN is the node's tooltip)."""
    if key == ADMIN:
        return ["administrator", "(arbitrary permissions)"]
    if key == "*":
        return ["* (any resource)"]
    m = _IAM.match(key)
    if m:
        account, rest = m.group(1), m.group(2)
        if rest == "root":
            return ["account root", account]
        if kind == "role" and rest.startswith("role/"):
            rest = "role/" + rest.rsplit("/", 1)[-1]  # the path is in the tooltip
        return [rest, account] if account else [rest]
    parts = key.split(":", 5)
    if key.startswith("arn:") and len(parts) == 6:
        where = " ".join(p for p in (parts[2], parts[4], parts[3]) if p)
        return [parts[5], where]
    return [key]


def _short(s: str, limit: int) -> str:
    s = _visible(s)
    if len(s) <= limit:
        return s
    half = (limit - 1) // 2
    return s[:half] + "…" + s[len(s) - (limit - 1 - half):]


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _visible(s: str) -> str:
    """Control characters as visible escapes: every picture stays on the lines it draws."""
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(m.group(), f"\\u{ord(m.group()):04x}"), str(s))


def _wrap(s: str, width: int = EDGE_LINE, lines: int = 3) -> list:
    """A label broken into lines of ``width`` (at most ``lines``, the last one cut with `…`)."""
    return textwrap.wrap(_visible(s), width, max_lines=lines, placeholder=" …", break_on_hyphens=False) or [""]


def _cond_lines(conditions) -> list:
    out = []
    for c in dict.fromkeys(conditions):  # once each, in order
        out += _wrap("if " + c, EDGE_LINE, 2)
    return out


def _hop_edge(g: Graph, hop, resource_key: Optional[str] = None) -> None:
    if hop.kind == "assume-role":
        g.edge(hop.principal, hop.resource, "assume", ["assumes"] + _cond_lines(hop.conditions), bool(hop.conditions) or hop.decision != "Allowed", _edge_title(hop))
        return
    target = resource_key or hop.resource
    if hop.decision in ALLOWED:
        g.edge(hop.principal, target, "action", [_visible(hop.action)] + _cond_lines(hop.conditions), bool(hop.conditions) or hop.decision != "Allowed", _edge_title(hop))
    else:
        label = [_visible(hop.action), hop.decision] + [x for b in hop.blocked_by for x in _wrap("blocked by " + b, EDGE_LINE, 2)]
        g.edge(hop.principal, target, "denied", label, True, _edge_title(hop))


def _edge_title(hop) -> list:
    return [hop_label(hop)] + [f"if {c}" for c in dict.fromkeys(hop.conditions)]


def graph(result) -> Graph:
    """The graph of an answer: WhoCan, CanResult, Escalations, WhatCan or Paths."""
    from .analysis import CanResult, WhoCan
    from .escalate import Escalations
    from .query import Paths, WhatCan

    if isinstance(result, WhoCan):
        return _whocan_graph(result)
    if isinstance(result, CanResult):
        return _can_graph(result)
    if isinstance(result, Escalations):
        return _escalations_graph(result)
    if isinstance(result, Paths):
        return _paths_graph(result)
    if isinstance(result, WhatCan):
        return _whatcan_graph(result)
    raise TypeError(f"no picture for {type(result).__name__}")


def _whocan_graph(r) -> Graph:
    resource = r.resource if r.resource is not None else "*"
    g = Graph(f"who can {r.action} on {resource}: {len(r.principals)} principal(s)")
    g.node(resource, "resource")
    for a in r.principals[:MAX_PRINCIPALS]:
        for h in a.hops:
            _hop_edge(g, h, resource if h.kind == "action" else None)
    if len(r.principals) > MAX_PRINCIPALS:
        g.notes.append(f"{len(r.principals) - MAX_PRINCIPALS} more principal(s) not drawn: see the proof")
    if not r.principals:
        g.notes.append("nobody")
    return g


def _can_graph(r) -> Graph:
    g = Graph(f"can {r.principal} {r.action} on {r.resource}: {r.decision}")
    g.node(r.principal)
    for h in r.hops:
        _hop_edge(g, h, r.resource if h.kind == "action" else None)
    return g


def _paths_graph(r) -> Graph:
    g = Graph(f"chains from {r.source} to {r.target}: {len(r.chains)}")
    g.node(r.source)
    g.node(r.target)
    for c in r.chains:
        for h in c:
            _hop_edge(g, h)
    if not r.chains:
        g.notes.append(f"no chain within {r.max_hops} hop(s)")
    return g


def _whatcan_graph(r) -> Graph:
    g = Graph(f"{r.principal} may do {len(r.actions)} action(s)" + (f" of {r.service}" if r.service else ""))
    g.node(r.principal)
    by_service: dict = {}
    for action, _d, conds in r.actions:
        by_service.setdefault(action.split(":", 1)[0], []).append(bool(conds))
    for svc, flags in sorted(by_service.items()):
        key = f"service:{svc}"
        g.node(key, "resource", [f"{svc}", f"{len(flags)} action(s)"])
        g.edge(r.principal, key, "may", ["may"] + ([f"{sum(flags)} under conditions"] if any(flags) else []), all(flags))
    return g


def _escalations_graph(r) -> Graph:
    g = Graph(f"privilege escalation: {len(r.findings)} finding(s), {len(r.admins)} administrator(s)")
    for f in r.findings[:MAX_PRINCIPALS]:
        title = _wrap(f.title)
        cond = _cond_lines(f.conditions)
        gained = f.gains[6:] if f.gains.startswith("raise:") else f.gains
        g.edge(f.principal, f.target, "method", title + cond, bool(f.conditions), [f"{f.principal}: {f.title} on {f.target}"] + [f"if {c}" for c in f.conditions])
        if f.gains == "admin":
            g.edge(f.target, ADMIN, "gives", ["gives arbitrary permissions"])
        elif gained != f.target:
            g.edge(f.target, gained, "gives", ["gives any permission"] if f.gains.startswith("raise:") else ["acts as"])
        for p, m, t in f.path[1:]:
            g.edge(p, t, "method", _wrap(m))
    for a in r.admins[:MAX_PRINCIPALS]:
        conds = r.admin_conditions.get(a) or []
        g.edge(a, ADMIN, "admin", ["is administrator"] + _cond_lines(conds), bool(conds))
    if len(r.findings) > MAX_PRINCIPALS:
        g.notes.append(f"{len(r.findings) - MAX_PRINCIPALS} more finding(s) not drawn: see the proof")
    if len(r.admins) > MAX_PRINCIPALS:
        g.notes.append(f"{len(r.admins) - MAX_PRINCIPALS} more administrator(s) not drawn: see the proof")
    if not r.findings:
        g.notes.append("no escalation found")
    return g


# --------------------------------------------------------------------------- DOT


def _dot(s: str) -> str:
    """Text for a double-quoted DOT string: backslashes, quotes and `&` (Graphviz reads HTML
    entities in labels) escaped, control characters made visible."""
    return _visible(s).replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")


def dot(result) -> str:
    """Graphviz DOT text of an answer (`dot -Tsvg` draws it)."""
    g = graph(result)
    ids = {k: f"n{i}" for i, k in enumerate(g.nodes)}
    out = [
        "digraph answer {",
        f'  graph [rankdir=LR, labelloc=t, fontname="Helvetica", fontsize=12, label="{_dot(g.title)}"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for key, n in g.nodes.items():
        fill, stroke = NODE_STYLE.get(n.kind, NODE_STYLE["principal"])
        shape = {"resource": "cylinder", "admin": "doubleoctagon", "service": "ellipse"}.get(n.kind, "box")
        label = "\\n".join(_dot(_short(x, LINE)) for x in n.lines)
        out.append(f'  {ids[key]} [label="{label}", tooltip="{_dot(n.title)}", shape={shape}, fillcolor="{fill}", color="{stroke}"];')
    for e in g.edges:
        style = "dashed" if e.conditional else "solid"
        label = "\\n".join(_dot(x) for x in e.label)
        tip = "\\n".join(_dot(x) for x in e.title)
        out.append(f'  {ids[e.src]} -> {ids[e.dst]} [label="{label}", tooltip="{tip}", color="{EDGE_COLOR[e.kind]}", fontcolor="{EDGE_COLOR[e.kind]}", style={style}];')
    for i, note in enumerate(g.notes):
        out.append(f'  note{i} [label="{_dot(note)}", shape=note, style=filled, fillcolor="#ffffff"];')
    out.append("}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- Mermaid

_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 :/._*@+,=?-]")


def _mm(s: str) -> str:
    """Text for a quoted Mermaid label: anything outside a small safe set as an entity code
    (`#34;`), so quotes, brackets, pipes, `<`, `&` and `;` never end a label or become markup."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in _visible(s))


def mermaid(result) -> str:
    """Mermaid flowchart text of an answer."""
    g = graph(result)
    ids = {k: f"n{i}" for i, k in enumerate(g.nodes)}
    out = ["flowchart LR", f"  %% {_mm(g.title)}"]
    shapes = {"resource": ('[("', '")]'), "admin": ('{{"', '"}}'), "role": ('(["', '"])'), "service": ('(("', '"))')}
    for key, n in g.nodes.items():
        open_, close = shapes.get(n.kind, ('["', '"]'))
        out.append(f"  {ids[key]}{open_}{'<br/>'.join(_mm(_short(x, LINE)) for x in n.lines)}{close}")
    for i, note in enumerate(g.notes):
        out.append(f'  note{i}["{_mm(note)}"]')
    link_styles = []
    for i, e in enumerate(g.edges):
        arrow = "-.->" if e.conditional else "-->"
        out.append(f'  {ids[e.src]} {arrow}|"{"<br/>".join(_mm(x) for x in e.label)}"| {ids[e.dst]}')
        link_styles.append(f"  linkStyle {i} stroke:{EDGE_COLOR[e.kind]},color:{EDGE_COLOR[e.kind]}")
    out += link_styles
    for kind in sorted({n.kind for n in g.nodes.values()}):
        fill, stroke = NODE_STYLE.get(kind, NODE_STYLE["principal"])
        members = ",".join(ids[k] for k, n in g.nodes.items() if n.kind == kind)
        out.append(f"  classDef {kind} fill:{fill},stroke:{stroke}")
        out.append(f"  class {members} {kind}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- SVG

CHAR = 7.2  # width of a character of the 12px monospace font
EDGE_CHAR = 6.2  # of the 10.5px one
TITLE_CHAR = 8.0  # of the bold 13px one
NODE_LINE = 16
LABEL_LINE = 13
V_GAP = 22
MARGIN = 20
VIRTUAL = "\0"  # keys of the points where a long edge crosses a layer


def _layers(g: Graph) -> dict:
    """A layer for every node: the longest chain of edges leading to it (edges closing a cycle
    are left out), so every edge that can point right does; then each node nothing leads to moves
    right, next to the nearest node it leads to."""
    succ: dict = {k: [] for k in g.nodes}
    for e in g.edges:
        succ[e.src].append(e.dst)
    state: dict = {}
    order: list = []
    back: set = set()
    for root in g.nodes:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[v] = 2
                order.append(v)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((v, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    layer = {k: 0 for k in g.nodes}
    for v in reversed(order):
        for w in succ[v]:
            if (v, w) not in back and layer[w] < layer[v] + 1:
                layer[w] = layer[v] + 1
    has_pred = {e.dst for e in g.edges if (e.src, e.dst) not in back and e.src != e.dst}
    for v in g.nodes:
        ahead = [layer[w] for w in succ[v] if (v, w) not in back and w != v]
        if v not in has_pred and ahead:
            layer[v] = min(ahead) - 1
    return layer


@dataclass
class _Route:
    edge: Edge
    keys: list  # src, the virtual points it crosses, dst
    forward: bool
    anchor: str = "mid"  # where the label sits: "src", "dst" or "mid"


def _routes(g: Graph, layer: dict) -> list:
    """Each edge as the chain of layers it crosses (a virtual point in each layer between)."""
    out = []
    out_deg: dict = {}
    in_deg: dict = {}
    for e in g.edges:
        out_deg[e.src] = out_deg.get(e.src, 0) + 1
        in_deg[e.dst] = in_deg.get(e.dst, 0) + 1
    for i, e in enumerate(g.edges):
        a, b = layer[e.src], layer[e.dst]
        forward = b > a
        keys = [e.src]
        if forward:
            for j in range(a + 1, b):
                v = f"{VIRTUAL}{i}.{j}"
                layer[v] = j
                keys.append(v)
        keys.append(e.dst)
        fan_in, fan_out = in_deg[e.dst] > 1, out_deg[e.src] > 1
        anchor = "dst" if fan_out and not fan_in else ("mid" if fan_out and fan_in else "src")
        out.append(_Route(e, keys, forward, anchor))
    return out


def _order(keys: list, layer: dict, routes: list) -> list:
    """Nodes of each layer, ordered by the mean position of their neighbours (a few sweeps)."""
    n_layers = max(layer.values(), default=-1) + 1
    rows = [[k for k in keys if layer[k] == i] for i in range(n_layers)]
    preds: dict = {k: [] for k in keys}
    succs: dict = {k: [] for k in keys}
    for r in routes:
        if r.forward:
            for a, b in zip(r.keys, r.keys[1:]):
                preds[b].append(a)
                succs[a].append(b)

    def sweep(neighbours, rng):
        for i in rng:
            pos = {k: j for row in rows for j, k in enumerate(row)}

            def key(k):
                ns = [pos[n] for n in neighbours[k]]
                return (sum(ns) / len(ns)) if ns else pos[k]

            rows[i] = sorted(rows[i], key=key)

    for _ in range(3):
        sweep(preds, range(1, n_layers))
        sweep(succs, range(n_layers - 2, -1, -1))
    return rows


def _label_size(lines: list) -> tuple:
    return max(len(x) for x in lines) * EDGE_CHAR + 8, LABEL_LINE * len(lines) + 4


def svg(result_or_graph) -> str:
    """An SVG picture of an answer, laid out here in layers from left to right: long edges pass
    between the nodes of the layers they cross, labels sit where their edges fan out."""
    g = result_or_graph if isinstance(result_or_graph, Graph) else graph(result_or_graph)
    layer = _layers(g)
    routes = _routes(g, layer)
    keys = list(g.nodes) + [k for r in routes for k in r.keys[1:-1]]
    rows = _order(keys, layer, routes)
    size = {}
    for k in keys:
        if k.startswith(VIRTUAL):
            size[k] = (0.0, 6.0)
        else:
            lines = [_short(x, LINE) for x in g.nodes[k].lines]
            size[k] = (max(len(x) for x in lines) * CHAR + 20, NODE_LINE * len(lines) + 12)
    # a node's slot is as tall as the labels that sit beside it; a gap as wide as its labels
    slot = dict((k, size[k][1]) for k in keys)
    gap_w = [70.0] * len(rows)
    for r in routes:
        w, h = _label_size(r.edge.label)
        if r.anchor == "src" or not r.forward:
            slot[r.keys[0]] = max(slot[r.keys[0]], h)
            i = layer[r.keys[0]]
        elif r.anchor == "dst":
            slot[r.keys[-1]] = max(slot[r.keys[-1]], h)
            i = layer[r.keys[-2]]
        else:
            i = layer[r.keys[0]]
        if r.forward:
            gap_w[i] = max(gap_w[i], w + 40)
    heights = [sum(slot[k] for k in row) + V_GAP * (len(row) - 1) for row in rows]
    total_h = max(heights, default=0)
    top = MARGIN + 24  # the title
    x, pos, col = MARGIN, {}, []
    for i, row in enumerate(rows):
        w = max(size[k][0] for k in row)
        col.append((x, w))
        y = top + (total_h - heights[i]) / 2
        for k in row:
            nw, nh = size[k]
            pos[k] = (x + (w - nw) / 2, y + (slot[k] - nh) / 2, nw, nh)
            y += slot[k] + V_GAP
        x += w + gap_w[i]
    loops = any(not r.forward for r in routes)
    notes_h = (len(g.notes) * 18 + 10) if g.notes else 0
    width = max((x - gap_w[-1] + MARGIN) if rows else 2 * MARGIN, min(len(_visible(g.title)), 160) * TITLE_CHAR + 2 * MARGIN)
    height = top + total_h + MARGIN + notes_h + (44 if loops else 0)
    uid = "ir" + hashlib.sha1("\n".join([g.title, *g.nodes, *(e.kind + e.src + e.dst for e in g.edges)]).encode("utf-8", "surrogatepass")).hexdigest()[:10]
    esc = lambda s: html.escape(_visible(s), quote=True)  # noqa: E731

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" font-family="ui-monospace, SFMono-Regular, Menlo, Consolas, monospace">',
        f"<title>{esc(g.title)}</title>",
        "<defs>",
    ]
    for kind, color in EDGE_COLOR.items():
        out.append(f'<marker id="{uid}-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    out.append(f'<text x="{MARGIN}" y="{MARGIN + 6}" font-size="13" font-weight="bold" fill="#111827">{esc(_short(g.title, 160))}</text>')

    labels = []
    for r in routes:
        e = r.edge
        color = EDGE_COLOR[e.kind]
        tip = "\n".join(esc(t) for t in e.title)
        dash = ' stroke-dasharray="6 4"' if e.conditional else ""
        lw, lh = _label_size(e.label)
        sx, sy, sw, sh = pos[e.src]
        dx, dy, dw, dh = pos[e.dst]
        if r.forward:
            pts = [(sx + sw, sy + sh / 2)]
            for v in r.keys[1:-1]:
                cx, cw = col[layer[v]]
                vy = pos[v][1] + pos[v][3] / 2
                pts += [(cx, vy), (cx + cw, vy)]
            pts.append((dx, dy + dh / 2))
            d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
            for j in range(1, len(pts)):
                (x1, y1), (x2, y2) = pts[j - 1], pts[j]
                if j % 2 == 1:  # across a gap
                    c = (x2 - x1) / 2
                    d += f" C{x1 + c:.1f},{y1:.1f} {x2 - c:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
                else:  # through a layer, between its nodes
                    d += f" L{x2:.1f},{y2:.1f}"
            if r.anchor == "src":
                mx, my = pts[0][0] + 12 + lw / 2, pts[0][1]
            elif r.anchor == "dst":
                mx, my = pts[-1][0] - 14 - lw / 2, pts[-1][1]
            else:
                (x1, y1), (x2, y2) = pts[0], pts[1]
                mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        else:  # back to an earlier layer (a cycle) or to itself: a loop below
            x1, y1, x2, y2 = sx + sw / 2, sy + sh, dx + dw / 2, dy + dh
            low = max(y1, y2) + 40
            bend = 30 if x1 == x2 else 0
            d = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{low:.1f} {x2 - bend - 30:.1f},{low:.1f} {x2:.1f},{y2:.1f}"
            mx, my = (x1 + x2) / 2, low - 6
        out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6"{dash} marker-end="url(#{uid}-{e.kind})"><title>{tip}</title></path>')
        labels.append((e, mx, my, color, tip))
    for k, n in g.nodes.items():
        nx, ny, nw, nh = pos[k]
        fill, stroke = NODE_STYLE.get(n.kind, NODE_STYLE["principal"])
        rx = {"resource": 2, "admin": 14, "role": 12}.get(n.kind, 5)
        out.append(f'<g class="node {esc(n.kind)}"><title>{esc(n.title)}</title>')
        out.append(f'<rect x="{nx:.1f}" y="{ny:.1f}" width="{nw:.1f}" height="{nh:.1f}" rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="1.4"/>')
        for i, line in enumerate(n.lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            fsize = 12 if i == 0 else 10.5
            out.append(f'<text x="{nx + nw / 2:.1f}" y="{ny + 6 + NODE_LINE * (i + 1) - 3:.1f}" text-anchor="middle" font-size="{fsize}"{weight} fill="#111827">{esc(_short(line, LINE))}</text>')
        out.append("</g>")
    for e, mx, my, color, tip in labels:  # labels last: above the lines
        w, h = _label_size(e.label)
        out.append(f'<g class="edge-label"><title>{tip}</title><rect x="{mx - w / 2:.1f}" y="{my - h / 2:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3" fill="#ffffff" fill-opacity="0.9"/>')
        for i, line in enumerate(e.label):
            out.append(f'<text x="{mx:.1f}" y="{my - h / 2 + 2 + LABEL_LINE * (i + 1) - 3:.1f}" text-anchor="middle" font-size="10.5" fill="{color}">{esc(line)}</text>')
        out.append("</g>")
    y = top + total_h + MARGIN + (44 if loops else 0) + 4
    for note in g.notes:
        out.append(f'<text x="{MARGIN}" y="{y:.0f}" font-size="11" font-style="italic" fill="#4b5563">{esc(note)}</text>')
        y += 18
    out.append("</svg>")
    return "\n".join(out)


# --------------------------------------------------------------------------- HTML and Jupyter


def _html_list(children) -> str:
    items = []
    for child in children:
        if isinstance(child, tuple):
            label, sub = child
            items.append(f"<li>{html.escape(_visible(label))}{_html_list(sub)}</li>")
        else:
            items.append(f"<li>{html.escape(_visible(child))}</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else ""


def to_html(result) -> str:
    """An HTML block: the title, the picture (inline SVG) and the proof as nested lists."""
    title, children = outline(result)
    return (
        '<div class="iam-reasoner-answer">'
        f'<div style="font-weight:bold;margin:4px 0">{html.escape(_visible(title))}</div>'
        f'<div style="overflow-x:auto">{svg(result)}</div>'
        f'<details><summary>proof</summary>{_html_list(children)}</details>'
        "</div>"
    )


def mimebundle(result) -> dict:
    """What Jupyter shows for an answer: the text tree, the HTML (picture and proof) and the
    picture alone as SVG."""
    from .query import text

    return {
        "text/plain": text(result),
        "text/html": to_html(result),
        "image/svg+xml": svg(result),
    }
