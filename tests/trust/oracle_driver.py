"""Builds the oracle's cells (flow x operator x site), runs them in worker processes, and prints the matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import oracle_edits

HERE = Path(__file__).resolve().parent
FLOWS = HERE / "flows"
CHILD = HERE / "oracle_child.py"


def flow_names() -> list[str]:
    return sorted(p.name for p in FLOWS.iterdir() if (p / "pipeline.py").exists())


def flow_files(name: str) -> dict[str, str]:
    root = FLOWS / name
    return oracle_edits.normalise(
        {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}
    )


@dataclass
class Cell:
    flow: str
    operator: str
    sites: int = 0
    invalid: int = 0
    failures: list[str] = field(default_factory=list)
    recomputed: int = 0
    spurious: int = 0  # a neutral edit that changed a signature


def run_child(job: dict, seed: str = "0", timeout: float = 600) -> list[dict]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "SCOUT_ORACLE_ENGINE": "core", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, str(CHILD)],
        input=json.dumps(job, default=str),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"oracle worker failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


# CPython 3.11's ast module is not thread-safe ("AST constructor recursion depth mismatch" when two threads parse
# or unparse at once): the matrix runs flows on two threads, so their edits are made one flow at a time.
_AST_LOCK = threading.Lock()


def _edited_variants(files: dict[str, str], per_operator: int | None) -> tuple[list[dict], dict[str, tuple[str, bool]]]:
    """The original and one variant per chosen edit site and per neutral source edit, with (operator, neutral)."""
    by_operator: dict[str, list] = defaultdict(list)
    for site in oracle_edits.sites(files):
        by_operator[site.operator].append(site)
    variants = [{"id": "original", "files": files}]
    meta: dict[str, tuple[str, bool]] = {}
    for operator, found in sorted(by_operator.items()):
        step = max(1, len(found) // per_operator) if per_operator else 1
        chosen = found[::step][:per_operator] if per_operator else found
        for n, site in enumerate(chosen):
            vid = f"{operator}#{n}"
            variants.append({"id": vid, "files": oracle_edits.apply(files, site)})
            meta[vid] = (operator, site.kind in oracle_edits.NEUTRAL)
    for n, (operator, edited) in enumerate(oracle_edits.source_variants(files)):
        vid = f"{operator}#{n}"
        variants.append({"id": vid, "files": edited})
        meta[vid] = (operator, True)
    return variants, meta


def edit_cells(flow: str, work: Path, per_operator: int | None = 6) -> tuple[dict[str, Cell], list[dict]]:
    """Every operator's sites in ``flow`` (at most ``per_operator`` each, spread over the file), run warm vs cold."""
    with _AST_LOCK:
        variants, meta = _edited_variants(flow_files(flow), per_operator)
    results = run_child({"flow": flow, "work": str(work), "variants": variants})
    baseline = {(f["call"], f["why"]) for f in results[0]["failures"]}  # reported once, by the original's rerun
    cells: dict[str, Cell] = {}
    for result in results[1:]:
        operator, neutral = meta[result["id"]]
        cell = cells.setdefault(operator, Cell(flow, operator))
        cell.sites += 1
        if "invalid" in result:
            cell.invalid += 1
            continue
        if "crash" in result:
            cell.failures.append(f"{result['id']}: worker crash {result['crash'][-600:]}")
            continue
        cell.failures += [
            f"{result['id']} {f['call']}: {f['why']}"
            for f in result["failures"]
            if (f["call"], f["why"]) not in baseline
        ]
        cell.recomputed += result["misses"]
        if neutral and result["unchanged"] != result["calls"]:
            cell.spurious += 1
            cell.failures.append(
                f"{result['id']}: a neutral edit changed {result['calls'] - result['unchanged']} signatures"
            )
    return cells, results


def matrix(cells: list[Cell]) -> str:
    flows = sorted({c.flow for c in cells})
    operators = sorted({c.operator for c in cells})
    grid = {(c.flow, c.operator): c for c in cells}
    width = max(len(o) for o in operators)
    lines = [f"{'operator':<{width}}  " + "  ".join(f"{f:>9}" for f in flows)]
    for op in operators:
        row = []
        for f in flows:
            c = grid.get((f, op))
            row.append(
                "        ." if c is None else f"{'FAIL' if c.failures else 'ok'}{c.sites - c.invalid:>3}/{c.sites:<2}"
            )
        lines.append(f"{op:<{width}}  " + "  ".join(f"{r:>9}" for r in row))
    return "\n".join(lines)


def signatures_in_fresh_process(flow: str, work: Path, data: Path, seed: str) -> dict:
    """Key and signature of every call of the original flow, computed by a fresh process with ``seed`` from a
    checkout in ``work`` (its inputs in ``data``)."""
    job = {
        "flow": flow,
        "work": str(work),
        "data": str(data),
        "variants": [{"id": "original", "files": flow_files(flow)}],
    }
    results = run_child(job, seed)
    return results[0]["signatures"]


def input_cells(work: Path) -> list[dict]:
    """Every input operator on the probe flow: warm (over the store of a run with ``a``) vs cold, with ``b``."""
    return run_child({"mode": "inputs", "work": str(work), "files": flow_files("probe")})
