"""Draw a provenance graph with matplotlib (no Graphviz binary): dependencies above, the job at the bottom.

Layers: a job without dependencies sits in layer 0, any other one layer below its deepest dependency; within a
layer jobs are ordered by the mean position of their dependencies, to keep edges short. Boxes are filled with the
status colour of ``prov`` (green done, red error/aborted, yellow waiting/setup, blue missing/cleaned, cyan other);
the job asked for gets a thick border.
"""

from __future__ import annotations

import os

from ..errors import InvalidInputError
from .fingerprint import status_color
from .provenance import Node, edges, walk

FILL = {"red": "#f4a6a6", "green": "#b5e3a1", "yellow": "#f7e08f", "blue": "#a9c8f0", "cyan": "#a6e3e3"}
FORMATS = (".png", ".svg", ".pdf")


def layers(root: Node) -> list[list[Node]]:
    """Nodes grouped by longest distance from a leaf, each layer ordered to follow its dependencies."""
    level: dict[int, int] = {}
    for n in walk(root):  # dependencies come first
        level[id(n)] = 1 + max((level[id(d)] for d in n.dependencies), default=-1)
    grouped: dict[int, list[Node]] = {}
    for n in walk(root):
        grouped.setdefault(level[id(n)], []).append(n)
    out: list[list[Node]] = []
    pos: dict[int, float] = {}
    for lv in sorted(grouped):
        row = grouped[lv]
        if out:
            row.sort(key=lambda n: sum(pos[id(d)] for d in n.dependencies) / max(len(n.dependencies), 1))
        for i, n in enumerate(row):
            pos[id(n)] = i - (len(row) - 1) / 2
        out.append(row)
    return out


def _short(s: str, limit: int = 28) -> str:
    return s if len(s) <= limit else s[: limit - 12] + "…" + s[-11:]


def plot(root: Node, filename: str) -> str:
    """Write the graph of ``root`` to ``filename`` (.png, .svg or .pdf); returns the absolute file name."""
    ext = os.path.splitext(filename)[1].lower()
    if ext not in FORMATS:
        raise InvalidInputError(
            f"plot file {filename!r} has extension {ext or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
    except ImportError as exc:  # pragma: no cover - matplotlib is the `plot` extra
        raise InvalidInputError("prov --plot needs matplotlib: pip install 'scout-persist[plot]'") from exc

    rows = layers(root)
    width = max(len(r) for r in rows)
    box_w, box_h, gap_x, gap_y = 3.2, 1.1, 0.6, 1.0
    scale = 0.8  # inches per data unit, the same on both axes
    span_x = width * (box_w + gap_x) + 0.6
    span_y = len(rows) * (box_h + gap_y) - gap_y + 0.6
    fig = Figure(figsize=(max(3.5, span_x * scale), span_y * scale + 0.9))
    ax = fig.add_axes((0.0, 0.5 / (span_y * scale + 0.9), 1.0, span_y * scale / (span_y * scale + 0.9)))
    ax.set_axis_off()
    centre: dict[int, tuple[float, float]] = {}
    for depth, row in enumerate(rows):
        y = -(depth * (box_h + gap_y))
        for i, n in enumerate(row):
            x = (i - (len(row) - 1) / 2) * (box_w + gap_x)
            centre[id(n)] = (x, y)
            colour = FILL[status_color(n.shown_status)] if n.is_job else FILL["green"]
            ax.add_patch(FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02,rounding_size=0.15",
                facecolor=colour, edgecolor="#222222", linewidth=2.8 if n is root else 1.0, zorder=2,
            ))
            label = f"{n.workflow} · {n.task}\n{_short(n.name)}\n[{n.shown_status}]"
            ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3)
    for dep, node in edges(root):
        (x0, y0), (x1, y1) = centre[id(dep)], centre[id(node)]
        ax.add_patch(FancyArrowPatch(
            (x0, y0 - box_h / 2), (x1, y1 + box_h / 2), arrowstyle="-|>", mutation_scale=12,
            color="#444444", linewidth=1.0, zorder=1,
        ))
    xs = [c[0] for c in centre.values()]
    ys = [c[1] for c in centre.values()]
    half = max(span_x * scale, 3.5) / scale / 2
    mid = (min(xs) + max(xs)) / 2
    ax.set_xlim(mid - half, mid + half)
    ax.set_ylim(min(ys) - box_h / 2 - 0.3, max(ys) + box_h / 2 + 0.3)
    statuses = sorted({n.shown_status for n in walk(root)})
    fig.legend(
        handles=[Patch(facecolor=FILL[status_color(s)], edgecolor="#222222", label=s) for s in statuses],
        loc="lower center", fontsize=8, frameon=False, ncol=len(statuses),
    )
    fig.suptitle(f"provenance of {root.workflow}/{root.task}/{_short(root.name, 60)}", fontsize=9)
    path = os.path.abspath(filename)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
