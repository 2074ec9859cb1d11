"""The provenance graph of a job: nodes read once, edges from ``.info`` dependencies, Ruby's text report.

``build(ref)`` reads every job reachable from ``ref`` (each path once, cycles cut) into ``Node`` objects; ``report``
prints them as Ruby's ``Step.prov_report`` (post-order, one space of indent per level, repeats as single lines).
The graph is also what ``--json``, ``--dot`` and ``--plot`` draw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .fingerprint import color, fingerprint, status_color
from .jobs import dependency_refs, load_info, mtime, recursive_inputs, result_exists, shown_status
from .target import JobRef

MTIME_SLACK = 2.0  # seconds a dependency may be newer than the root before Ruby flags it


@dataclass(eq=False)
class Node:
    """One job of the provenance graph."""

    ref: JobRef
    info: dict[str, Any] | None
    status: str
    exists: bool
    mtime: float | None
    dependencies: list[Node] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.ref.display

    @property
    def is_job(self) -> bool:
        """Ruby ``Step.job_path?``: the fourth segment from the end is ``jobs``."""
        parts = self.path.split("/")
        return len(parts) >= 4 and parts[-4] == "jobs"

    @property
    def workflow(self) -> str:
        if not self.is_job:
            return "-"
        return self.path.split("/")[-3]

    @property
    def task(self) -> str:
        parts = self.path.split("/")
        if not self.is_job:
            return ""
        return parts[-2]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def shown_status(self) -> str:
        return self.status if self.is_job else "file"


def build(ref: JobRef) -> Node:
    """Read ``ref`` and everything it depends on (each path once)."""
    nodes: dict[str, Node] = {}

    def visit(r: JobRef, stack: frozenset[str]) -> Node:
        if r.display in nodes:
            return nodes[r.display]
        info = load_info(r)
        exists = result_exists(r)
        node = Node(r, info, shown_status(r, info, exists), exists, mtime(r))
        nodes[r.display] = node
        for dep in dependency_refs(r, info):
            if dep.display in stack:  # a cycle in hand-edited infos: do not recurse forever
                continue
            node.dependencies.append(visit(dep, stack | {r.display}))
        return node

    return visit(ref, frozenset())


def walk(root: Node) -> list[Node]:
    """Every node once, dependencies before dependants."""
    out: list[Node] = []
    seen: set[int] = set()

    def go(n: Node) -> None:
        if id(n) in seen:
            return
        seen.add(id(n))
        for d in n.dependencies:
            go(d)
        out.append(n)

    go(root)
    return out


def edges(root: Node) -> list[tuple[Node, Node]]:
    """(dependency, dependant) pairs, each once."""
    out, seen = [], set()
    for n in walk(root):
        for d in n.dependencies:
            if (id(d), id(n)) not in seen:
                seen.add((id(d), id(n)))
                out.append((d, n))
    return out


class Reporter:
    """Ruby ``Step.prov_report`` over a built graph."""

    def __init__(
        self,
        root: Node,
        colored: bool = False,
        inputs: list[str] | None = None,
        info_fields: list[str] | None = None,
        expand_repeats: bool = False,
    ):
        self.root = root
        self.colored = colored
        self.inputs = inputs or []
        self.info_fields = info_fields or []
        self.expand_repeats = expand_repeats

    def c(self, name: str, text: str) -> str:
        return color(name if self.colored else None, text)

    def message(self, node: Node, flat_color: str | None = None) -> str:
        status = node.shown_status
        parts = [self.c("magenta", node.workflow), self.c("yellow", node.task), node.path]
        if not node.is_job:  # Ruby: workflow '-', the (blanked) task name dropped
            parts = [self.c("magenta", "-"), node.path]
        line = self.c(status_color(status) if node.is_job else "green", status) + " " + " ".join(parts)
        root_mtime = self.root.mtime if self.root.exists else None
        if node.exists and root_mtime is not None and node.mtime is not None and root_mtime - node.mtime < -MTIME_SLACK:
            line += " (" + self.c("red", "Mtime out of sync") + ")"
        if self.inputs:
            values = recursive_inputs(node.ref)
            for name in self.inputs:
                if values.get(name) is not None:
                    line += f"\t{self.c('magenta', name)}={fingerprint(values[name])}"
        for fld in self.info_fields:
            # Ruby's prov blanks task_name in memory before printing, so it never shows.
            value = None if fld == "task_name" else (node.info or {}).get(fld)
            if value is not None:
                line += f"\t{self.c('magenta', fld)}={fingerprint(value)}"
        if flat_color and self.colored:
            plain = color(None, line)
            return color(flat_color, _uncolor(plain))
        return line

    def lines(self, node: Node | None = None, offset: int = 0, seen: set[Any] | None = None) -> list[str]:
        node = node or self.root
        seen = set() if seen is None else seen
        out: list[str] = []
        for dep in node.dependencies:
            if dep.path not in seen:
                seen.add(dep.path)
                out.extend(self.lines(dep, offset + 1, seen))
            elif self.expand_repeats:
                out.extend(self.lines(dep, offset + 1, set(seen)))
            else:
                out.append(" " * (offset + 1) + self.message(dep, flat_color=status_color(dep.shown_status)))
        out.append(" " * offset + self.message(node))
        return out


def _uncolor(s: str) -> str:

    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def to_json(root: Node) -> dict[str, Any]:
    """The tree as nested dicts (repeated dependencies appear in full under every dependant)."""

    def conv(n: Node, stack: frozenset[int]) -> dict[str, Any]:
        return {
            "path": n.path,
            "workflow": n.workflow,
            "task": n.task,
            "name": n.name,
            "status": n.shown_status,
            "result_exists": n.exists,
            "dependencies": [conv(d, stack | {id(n)}) for d in n.dependencies if id(d) not in stack],
        }

    return conv(root, frozenset())


DOT_COLORS = {"red": "#e06c75", "green": "#98c379", "yellow": "#e5c07b", "blue": "#61afef", "cyan": "#56b6c2"}


def to_dot(root: Node) -> str:
    """Graphviz DOT text: one box per job filled with its status colour, edges from dependency to dependant."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace('"', '\\"')

    def q(s: str) -> str:
        return '"' + esc(s) + '"'

    ids = {id(n): f"n{i}" for i, n in enumerate(walk(root))}
    out = ["digraph provenance {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for n in walk(root):
        fill = DOT_COLORS[status_color(n.shown_status)] if n.is_job else DOT_COLORS["green"]
        label = '"' + "\\n".join(esc(x) for x in (n.workflow, n.task, n.name, f"[{n.shown_status}]")) + '"'
        extra = ", penwidth=3" if n is root else ""
        out.append(f"  {ids[id(n)]} [label={label}, fillcolor={q(fill)}, tooltip={q(n.path)}{extra}];")
    for d, n in edges(root):
        out.append(f"  {ids[id(d)]} -> {ids[id(n)]};")
    out.append("}")
    return "\n".join(out) + "\n"
