"""Server-rendered SVG charts: no script, no library, every label escaped.

Colours are presentation attributes, not `style`, so that the dashboard's Content-Security-Policy (which allows
no inline style) leaves them alone.
"""

from __future__ import annotations

from typing import Any, Sequence

from markupsafe import Markup

from memcube.models import DayCount, DayJobs, Lineage, LineageNode

STATE_COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "queued": "#9e9e9e"}
BAR = "#3f6fb5"
LINE = "#e08a00"
NODE_WIDTH = 210


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> Markup:
    return Markup('<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" width="{w}" height="{h}" '
                  'viewBox="0 0 {w} {h}"><title>{t}</title>{b}</svg>').format(
        w=width, h=height, t=title, b=Markup("".join(body)))


def _text(x: float, y: float, text: Any, *, anchor: str = "start", size: int = 11, fill: str = "#333") -> str:
    return str(Markup('<text x="{x:.1f}" y="{y:.1f}" font-size="{s}" text-anchor="{a}" fill="{f}">{t}</text>').format(
        x=x, y=y, s=size, a=anchor, f=fill, t=text))


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "") -> str:
    title = Markup("<title>{}</title>").format(tip) if tip else Markup("")
    return str(Markup('<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{f}">{t}</rect>').format(
        x=x, y=y, w=max(w, 0.0), h=max(h, 0.0), f=fill, t=title))


def bar_chart(counts: dict[str, int], title: str) -> Markup:
    """Horizontal bars, one per key, largest first."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return Markup('<p class="muted">none</p>')
    top = max(v for _, v in items) or 1
    width, label_w, row = 360, 110, 22
    body = []
    for i, (name, value) in enumerate(items):
        y = i * row + 4
        body.append(_text(0, y + 13, name))
        body.append(_rect(label_w, y, (width - label_w - 60) * value / top, row - 8, BAR, f"{name}: {value}"))
        body.append(_text(label_w + (width - label_w - 60) * value / top + 6, y + 13, value))
    return _svg(width, len(items) * row + 8, title, body)


def growth_chart(growth: Sequence[DayCount]) -> Markup:
    """Memories created per day (bars, left scale) and held at the end of each day (line, right scale)."""
    width, height, left, right, top, bottom = 640, 200, 40, 60, 16, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(growth), 1)
    most = max((d.count for d in growth), default=0) or 1
    lo = min((d.total or 0 for d in growth), default=0)
    hi = max((d.total or 0 for d in growth), default=0)
    span = (hi - lo) or 1
    step = plot_w / n
    body = [_rect(left, top, plot_w, plot_h, "#fafafa")]
    points = []
    for i, day in enumerate(growth):
        h = plot_h * day.count / most
        body.append(_rect(left + i * step + 1, top + plot_h - h, step - 2, h, BAR,
                          f"{day.day}: {day.count} created, {day.total} held"))
        y = top + plot_h - plot_h * ((day.total or 0) - lo) / span * 0.9 - plot_h * 0.05
        points.append(f"{left + (i + 0.5) * step:.1f},{y:.1f}")
    if points:
        body.append(str(Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>').format(
            " ".join(points), LINE)))
    body.append(_text(left - 4, top + 10, most, anchor="end"))
    body.append(_text(left - 4, top + plot_h, 0, anchor="end"))
    body.append(_text(width - right + 4, top + 10, f"{hi} held", fill=LINE))
    body.append(_text(width - right + 4, top + plot_h, f"{lo}", fill=LINE))
    if growth:
        body.append(_text(left, height - 8, growth[0].day))
        body.append(_text(left + plot_w, height - 8, growth[-1].day, anchor="end"))
    return _svg(width, height, "memories created per day (bars) and held (line)", body)


def jobs_chart(days: Sequence[DayJobs]) -> Markup:
    """Jobs created per day, stacked by state, with a legend."""
    width, height, left, right, top, bottom = 640, 200, 40, 110, 16, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(days), 1)
    most = max((sum(d.by_state.values()) for d in days), default=0) or 1
    step = plot_w / n
    body = [_rect(left, top, plot_w, plot_h, "#fafafa")]
    states = list(STATE_COLOURS) + sorted({s for d in days for s in d.by_state} - set(STATE_COLOURS))
    for i, day in enumerate(days):
        y = top + plot_h
        for state in states:
            count = day.by_state.get(state, 0)
            if not count:
                continue
            h = plot_h * count / most
            y -= h
            body.append(_rect(left + i * step + 1, y, step - 2, h, STATE_COLOURS.get(state, "#6d4c41"),
                              f"{day.day}: {count} {state}"))
    for j, state in enumerate(states):
        body.append(_rect(width - right + 10, top + j * 16, 10, 10, STATE_COLOURS.get(state, "#6d4c41")))
        body.append(_text(width - right + 24, top + j * 16 + 9, state))
    body.append(_text(left - 4, top + 10, most, anchor="end"))
    body.append(_text(left - 4, top + plot_h, 0, anchor="end"))
    if days:
        body.append(_text(left, height - 8, days[0].day))
        body.append(_text(left + plot_w, height - 8, days[-1].day, anchor="end"))
    return _svg(width, height, "jobs per day by state", body)


def _node(x: float, y: float, node: LineageNode | None, label: str, href: str | None) -> str:
    fill = "#fff8e1" if node is None else ("#eeeeee" if not node.found else "#e8f0fb")
    box = (str(Markup('<rect x="{x:.1f}" y="{y:.1f}" width="{w}" height="28" rx="4" fill="{f}" stroke="#7a8ba8"/>')
               .format(x=x, y=y, w=NODE_WIDTH, f=fill))
           + _text(x + 6, y + 18, label[:34] + ("…" if len(label) > 34 else "")))
    if href is None:
        return box
    return str(Markup('<a href="{h}">{b}</a>').format(h=href, b=Markup(box)))


def _label(node: LineageNode) -> str:
    if not node.found:
        return f"{str(node.id)[:8]} (not found)"
    return f"{node.kind} · {node.content or '(empty)'}"


def lineage_graph(lineage: Lineage, root: dict[str, Any]) -> Markup:
    """The cube in the middle, what it was derived from on the left, what was derived from it on the right; each
    box links to its cube. Deeper levels are in the lists beside the graph."""
    left, right = lineage.ancestors, lineage.descendants
    rows = max(len(left), len(right), 1)
    height = rows * 36 + 8
    width = 3 * NODE_WIDTH + 2 * 70
    cx, cy = NODE_WIDTH + 70, (height - 28) / 2
    body = []
    for column, nodes, x in ((left, left, 0), (right, right, 2 * (NODE_WIDTH + 70))):
        for i, node in enumerate(nodes):
            y = 4 + i * 36
            x1, x2 = (x + NODE_WIDTH, cx) if column is left else (cx + NODE_WIDTH, x)
            body.append(str(Markup('<line x1="{a:.1f}" y1="{b:.1f}" x2="{c:.1f}" y2="{d:.1f}" stroke="#7a8ba8"/>')
                            .format(a=x1, b=y + 14, c=x2, d=cy + 14)))
            body.append(_node(x, y, node, _label(node), f"/dashboard/memories/{node.id}"))
    body.append(_node(cx, cy, None, f"this {root['kind']} · v{root['version']}", None))
    return _svg(width, height, "lineage: derived from (left), derived from it (right)", body)
