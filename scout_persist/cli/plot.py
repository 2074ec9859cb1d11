"""Draw a provenance graph with matplotlib (no Graphviz binary): dependencies above, the job at the bottom.

Layers: a job without dependencies sits in layer 0, any other one layer below its deepest dependency; within a
layer jobs are ordered by the mean position of their dependencies, to keep edges short. A layer wider than
``PER_ROW`` boxes wraps onto several rows, so a fan-in of 30 jobs is a block of boxes, not a 10 000-pixel strip.
Boxes are filled with the status colour of ``prov`` (green done, red error/aborted, yellow waiting/setup, blue
missing/cleaned, cyan other); the job asked for gets a thick border. An edge that spans rows runs through the gaps
between them and down a lane clear of every box on its way, never through a box. Jobs are labelled by their names
without ``_<md5>`` (the part that differs, for long ids of one task), plus the inputs (``-i``) and info fields
(``-if``) asked for. The image never exceeds ``MAX_INCHES`` at ``DPI``: bigger graphs are drawn smaller.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import InvalidInputError
from .fingerprint import fingerprint, status_color
from .jobs import recursive_inputs
from .provenance import Node, edges, walk

FILL = {"red": "#f4a6a6", "green": "#b5e3a1", "yellow": "#f7e08f", "blue": "#a9c8f0", "cyan": "#a6e3e3"}
FORMATS = (".png", ".svg", ".pdf")
PER_ROW = 5  # boxes per row before a layer wraps
LABEL_CHARS = 30  # characters per label line
MAX_INCHES = (16.0, 22.0)  # width, height bound of the figure
DPI = 110


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


def wrapped(rows: list[list[Node]], per_row: int = PER_ROW) -> list[tuple[list[Node], bool]]:
    """Each layer cut into rows of at most ``per_row`` boxes; ``(row, True)`` starts a new layer."""
    out = []
    for layer in rows:
        for i in range(0, len(layer), per_row):
            out.append((layer[i : i + per_row], i == 0))
    return out


def _short(s: str, limit: int = 28) -> str:
    if len(s) <= limit:
        return s
    head = (limit - 1) // 2
    return s[:head] + "…" + s[len(s) - (limit - 1 - head) :]


_HASHED = re.compile(r"^(.*)_[0-9a-f]{32}(\.[^/]*)?$", re.S)


def distinct_names(nodes: list[Node], limit: int = LABEL_CHARS) -> dict[int, str]:
    """A short name per node: the whole name when it fits, else the part that differs from the other jobs of its
    task, after the shared part (their ``_<md5>`` hashes dropped: a hash tells a reader nothing)."""
    by_task: dict[tuple[str, str], list[Node]] = {}
    for n in nodes:
        by_task.setdefault((n.workflow, n.task), []).append(n)
    out: dict[int, str] = {}
    for group in by_task.values():
        names = [n.name for n in group]
        clean = [m.group(1) + (m.group(2) or "") if (m := _HASHED.match(x)) else x for x in names]
        if len(set(clean)) == len(clean):
            names = clean  # the hashes are not what tells these jobs apart (nor a job alone in its task)
        # character by character on purpose: the labels' common text, not a path
        prefix = os.path.commonprefix(names) if len(group) > 1 else ""  # noqa: RUF071
        suffix = os.path.commonprefix([x[::-1] for x in names])[::-1] if len(group) > 1 else ""  # noqa: RUF071
        for n, name in zip(group, names):
            if len(name) <= limit:
                out[id(n)] = name
                continue
            cut = min(len(suffix), len(name) - len(prefix))
            middle = name[len(prefix) : len(name) - cut]
            if not middle:
                out[id(n)] = _short(name, limit)
                continue
            middle = _short(middle, limit - 2)
            tail = "…" if cut else ""
            room = limit - len(middle) - len(tail)
            lead = prefix if len(prefix) <= room else "…" + prefix[len(prefix) - room + 1 :]
            out[id(n)] = lead + middle + tail
    return out


def labels(root: Node, inputs: list[str] | None = None, info_fields: list[str] | None = None) -> dict[int, list[str]]:
    """The text lines of each box: workflow · task, the distinct name, [status], then name=value per input/field."""

    nodes = walk(root)
    names = distinct_names(nodes)
    out: dict[int, list[str]] = {}
    for n in nodes:
        lines = [_short(f"{n.workflow} · {n.task}", LABEL_CHARS), names[id(n)], f"[{n.shown_status}]"]
        if inputs:
            values = recursive_inputs(n.ref) if n.is_job else {}
            lines += [_short(f"{k}={fingerprint(values[k])}", LABEL_CHARS) for k in inputs if values.get(k) is not None]
        for fld in info_fields or []:
            value = None if fld == "task_name" else (n.info or {}).get(fld)
            if value is not None:
                lines.append(_short(f"{fld}={fingerprint(value)}", LABEL_CHARS))
        out[id(n)] = lines
    return out


def route(
    start: tuple[float, float],
    end: tuple[float, float],
    between: list[float],
    box_w: float,
    below_start: float | None = None,
    above_end: float | None = None,
    margin: float = 0.2,
) -> list[tuple[float, float]]:
    """The points of an edge from ``start`` (a box's bottom) to ``end`` (a box's top): straight between adjacent
    rows; else down to the gap ``below_start``, across to a lane clear of the boxes centred at ``between`` (the rows
    on the way), down that lane to the gap ``above_end``, and across to ``end``."""
    x0, x1 = start[0], end[0]
    if not between or below_start is None or above_end is None:
        return [start, end]
    taken = sorted((x - box_w / 2 - margin, x + box_w / 2 + margin) for x in between)
    free: list[tuple[float, float]] = []
    left = float("-inf")
    for a, b in taken:
        if a > left:
            free.append((left, a))
        left = max(left, b)
    free.append((left, float("inf")))
    want = (x0 + x1) / 2
    lane = min((min(max(want, a), b) for a, b in free), key=lambda x: abs(x - want))
    return [start, (x0, below_start), (lane, below_start), (lane, above_end), (x1, above_end), end]


def plot(root: Node, filename: str, inputs: list[str] | None = None, info_fields: list[str] | None = None) -> str:
    """Write the graph of ``root`` to ``filename`` (.png, .svg or .pdf); returns the absolute file name."""
    ext = os.path.splitext(filename)[1].lower()
    if ext not in FORMATS:
        raise InvalidInputError(
            f"plot file {filename!r} has extension {ext or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    try:
        import matplotlib  # optional (plot extra)
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
        from matplotlib.path import Path as MplPath
    except ImportError as exc:  # pragma: no cover - matplotlib is the `plot` extra
        raise InvalidInputError("prov --plot needs matplotlib: pip install 'scout-persist[plot]'") from exc

    text = labels(root, inputs, info_fields)
    box_w, gap_x, gap_layer, gap_wrap = 3.4, 0.6, 1.0, 0.45
    box_h = 0.3 + 0.32 * max(len(lines) for lines in text.values())

    def fit(per_row: int) -> tuple[float, list[Any], float, float]:
        """(inches per data unit, rows, width and height in data units) when layers wrap at ``per_row``."""
        rows = wrapped(layered, per_row)
        span_x = max(len(r) for r, _ in rows) * (box_w + gap_x) - gap_x + 0.6
        span_y = sum(box_h + (gap_layer if new else gap_wrap) for _, new in rows) - gap_layer + 0.6
        return min(0.8, MAX_INCHES[0] / span_x, (MAX_INCHES[1] - 0.9) / span_y), rows, span_x, span_y

    layered = layers(root)
    widest = max(len(layer) for layer in layered)
    # PER_ROW boxes a row, more when a huge layer would otherwise make a tall strip of tiny boxes
    scale, rows, span_x, span_y = max(
        (fit(k) for k in range(PER_ROW, max(widest, PER_ROW) + 1)), key=lambda f: f[0] + 1e-9 * -f[2]
    )
    font = max(8 * scale / 0.8, 3.0)
    title = f"provenance of {root.workflow}/{root.task}/{_short(root.name, 60)}"
    fig_w = min(max(3.5, span_x * scale, len(title) * 9 * 0.55 / 72 + 0.4), MAX_INCHES[0])
    fig_h = span_y * scale + 0.9
    fig = Figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.0, 0.5 / fig_h, 1.0, span_y * scale / fig_h))
    ax.set_axis_off()
    centre: dict[int, tuple[float, float]] = {}
    row_of: dict[int, int] = {}
    row_y: list[float] = []
    y = 0.0
    for i, (row, new_layer) in enumerate(rows):
        if i:
            y -= box_h + (gap_layer if new_layer else gap_wrap)
        row_y.append(y)
        for j, n in enumerate(row):
            x = (j - (len(row) - 1) / 2) * (box_w + gap_x)
            centre[id(n)] = (x, y)
            row_of[id(n)] = i
            colour = FILL[status_color(n.shown_status)] if n.is_job else FILL["green"]
            ax.add_patch(
                FancyBboxPatch(
                    (x - box_w / 2, y - box_h / 2),
                    box_w,
                    box_h,
                    boxstyle="round,pad=0.02,rounding_size=0.15",
                    facecolor=colour,
                    edgecolor="#222222",
                    linewidth=2.8 if n is root else 1.0,
                    zorder=2,
                )
            )
            ax.text(x, y, "\n".join(text[id(n)]), ha="center", va="center", fontsize=font, zorder=3)
    pairs = edges(root)
    boxes_in_row: list[list[float]] = [[] for _ in rows]
    for key, (bx, _) in centre.items():
        boxes_in_row[row_of[key]].append(bx)
    for dep, node in pairs:
        (x0, y0), (x1, y1) = centre[id(dep)], centre[id(node)]
        r0, r1 = row_of[id(dep)], row_of[id(node)]
        points = route(
            (x0, y0 - box_h / 2),
            (x1, y1 + box_h / 2),
            [x for r in range(r0 + 1, r1) for x in boxes_in_row[r]],
            box_w,
            below_start=(row_y[r0] + row_y[r0 + 1]) / 2 if r1 > r0 + 1 else None,
            above_end=(row_y[r1 - 1] + row_y[r1]) / 2 if r1 > r0 + 1 else None,
        )
        ax.add_patch(
            FancyArrowPatch(
                path=MplPath(points),
                arrowstyle="-|>",
                mutation_scale=12 * scale / 0.8,
                color="#444444",
                linewidth=1.0,
                alpha=0.5 if len(pairs) > 12 else 1.0,
                zorder=1,
            )
        )
    half = fig_w / scale / 2  # the axes span the figure: the same inches per unit on both axes
    ax.set_xlim(-half, half)
    ax.set_ylim(y - box_h / 2 - 0.3, box_h / 2 + 0.3)
    statuses = sorted({n.shown_status for n in walk(root)})
    fig.legend(
        handles=[Patch(facecolor=FILL[status_color(s)], edgecolor="#222222", label=s) for s in statuses],
        loc="lower center",
        fontsize=8,
        frameon=False,
        ncol=len(statuses),
    )
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / fig_h, va="top")
    path = os.path.abspath(filename)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text: searchable, selectable
        fig.savefig(path, dpi=DPI)
    return path
