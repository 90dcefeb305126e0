"""Charts drawn on the server as SVG: a run's steps as a Gantt chart, a series over time, a lineage
graph, and a rule's outcomes as a strip. Every text is escaped; no script runs in the browser."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from html import escape
from typing import Any

COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "waiting": "#f9a825",
    "skipped": "#9e9e9e",
    "pending": "#bdbdbd",
}


def gantt(attempts: list[dict[str, Any]], width: int = 900) -> str:
    """One bar per attempt on a shared time axis, coloured by state, with its metrics as a tooltip."""
    timed: list[tuple[dict[str, Any], dt.datetime, dt.datetime]] = []
    for a in attempts:
        began = _at(a["started_at"])
        if began is not None:
            timed.append((a, began, _at(a["ended_at"]) or began))
    if not timed:
        return _empty("no step attempts to draw", width)
    start = min(s for _, s, _ in timed)
    end = max(e for _, _, e in timed)
    span = max((end - start).total_seconds(), 0.001)
    label_w, row_h, top = 190, 22, 24
    plot_w = width - label_w - 20
    height = top + row_h * len(timed) + 10
    parts = [_svg_open(width, height, "run timeline")]
    for tick in range(5):
        x = label_w + plot_w * tick / 4
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{top - 10}" class="axis">{span * tick / 4:.1f}s</text>')
    for row, (attempt, s, e) in enumerate(timed):
        y = top + row * row_h
        x = label_w + plot_w * (s - start).total_seconds() / span
        w = max(plot_w * (e - s).total_seconds() / span, 2.0)
        colour = COLOURS.get(attempt["state"], "#607d8b")
        metrics = attempt.get("metrics", {})
        tip = "\n".join(
            [f"{attempt['step']} #{attempt['attempt']}: {attempt['state']}"]
            + [f"{k}: {v}" for k, v in metrics.items()]
            + ([f"error: {attempt['error']}"] if attempt.get("error") else [])
        )
        label = f"{attempt['step']} #{attempt['attempt']}"
        parts.append(f'<text x="4" y="{y + 15}" class="label">{escape(label)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" rx="3" fill="{colour}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        engine = metrics.get("engine")
        if engine:
            at_x = min(x + w + 4, width - 60)
            parts.append(f'<text x="{at_x:.1f}" y="{y + 15}" class="note">{escape(str(engine))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def series(
    points: list[tuple[str, float]], title: str, unit: str = "", width: int = 640, height: int = 180
) -> str:
    """A line over time (``(iso time, value)`` points, oldest first) with its last value labelled."""
    if not points:
        return _empty(f"no {title} recorded", width)
    left, right, top, bottom = 60, 20, 20, 30
    values = [v for _, v in points]
    high = max(values) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points) - 1, 1)
    coords = [(left + i * step, top + plot_h * (1 - v / high)) for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts = [_svg_open(width, height, title)]
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="grid"/>'
    )
    parts.append(f'<text x="4" y="{top + 4}" class="axis">{escape(_short(high))}{escape(unit)}</text>')
    parts.append(f'<text x="4" y="{top + plot_h}" class="axis">0</text>')
    parts.append(f'<polyline points="{path}" class="line"/>')
    for (x, y), (at, value) in zip(coords, points, strict=True):
        tip = escape(f"{at}: {_short(value)}{unit}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" class="dot"><title>{tip}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="axis">{escape(points[0][0][:10])}</text>')
    parts.append(
        f'<text x="{width - right - 70}" y="{height - 8}" class="axis">{escape(points[-1][0][:10])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def outcome_strip(history: list[dict[str, Any]], width: int = 260) -> str:
    """A rule's outcomes oldest to newest as green (passed) and red (failed) cells."""
    shown = list(reversed(history[:40]))
    if not shown:
        return ""
    cell = min(12.0, width / len(shown))
    parts = [_svg_open(int(cell * len(shown)) + 2, 16, "outcomes")]
    for i, h in enumerate(shown):
        colour = COLOURS["succeeded"] if h["passed"] else COLOURS["failed"]
        tip = f"{h['ds']}: {'passed' if h['passed'] else 'failed'} ({h.get('message') or ''})"
        parts.append(
            f'<rect x="{i * cell + 1:.1f}" y="2" width="{max(cell - 2, 1):.1f}" height="12" fill="{colour}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def lineage_graph(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], root: str, width: int = 960
) -> str:
    """Nodes in columns by distance from the root (upstream left, downstream right), edges as curves."""
    if not nodes:
        return _empty("no lineage recorded for this table", width)
    ids = {n["id"] for n in nodes}
    upstream: dict[str, list[str]] = defaultdict(list)
    downstream: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        upstream[e["target"]].append(e["source"])
        downstream[e["source"]].append(e["target"])
    level: dict[str, int] = {}
    roots = [n["id"] for n in nodes if n["id"] == root or n.get("table") == root]
    frontier = roots or [nodes[0]["id"]]
    for r in frontier:
        level[r] = 0
    for links, sign in ((upstream, -1), (downstream, 1)):
        todo = list(frontier)
        while todo:
            current = todo.pop()
            for nxt in links.get(current, []):
                if nxt in ids and nxt not in level:
                    level[nxt] = level[current] + sign
                    todo.append(nxt)
    for n in nodes:
        level.setdefault(n["id"], 0)
    low, high = min(level.values()), max(level.values())
    columns: dict[int, list[str]] = defaultdict(list)
    for node_id in sorted(level, key=lambda i: (level[i], i)):
        columns[level[node_id]].append(node_id)
    box_w, box_h, gap_y = 220, 26, 10
    col_w = max((width - 20) / max(high - low + 1, 1), box_w + 30)
    height = 20 + max(len(c) for c in columns.values()) * (box_h + gap_y)
    total_w = int(max(width, col_w * (high - low + 1) + 20))
    pos: dict[str, tuple[float, float]] = {}
    for lvl, members in columns.items():
        for i, node_id in enumerate(members):
            pos[node_id] = (10 + (lvl - low) * col_w, 10 + i * (box_h + gap_y))
    labels = {n["id"]: n for n in nodes}
    parts = [_svg_open(total_w, int(height), "lineage")]
    for e in edges:
        if e["source"] not in pos or e["target"] not in pos:
            continue
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        sx, sy, tx, ty = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
        mid = (sx + tx) / 2
        tip = e.get("transform") or e.get("model") or ""
        curve = f"M{sx:.1f},{sy:.1f} C{mid:.1f},{sy:.1f} {mid:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
        parts.append(f'<path d="{curve}" class="edge"><title>{escape(str(tip))}</title></path>')
    for node_id, (x, y) in pos.items():
        node = labels[node_id]
        text = node["table"] + (f".{node['column']}" if node.get("column") else "")
        cls = "node root" if node_id in roots else "node"
        parts.append(
            f'<g class="{cls}"><rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="4"/>'
            f'<text x="{x + 6:.1f}" y="{y + 17:.1f}">{escape(_fit(text, 34))}</text>'
            f"<title>{escape(text)} ({escape(str(node.get('kind') or ''))})</title></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
    )


def _empty(text: str, width: int) -> str:
    return f'{_svg_open(width, 30, text)}<text x="4" y="20" class="note">{escape(text)}</text></svg>'


def _at(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _short(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}"


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else "…" + text[-(chars - 1) :]
