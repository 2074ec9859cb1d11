"""The oracle's worker process: runs one flow of the library, original and variants, warm and cold, in core mode.

Reads a job (JSON) on stdin: ``{"flow": name, "work": folder, "variants": [{"id": ..., "files": {...}}, ...],
"parameters": {...}?}``; the first variant is the original.  For the original it makes the first run over an empty
store, then a warm run over that store (every job a hit).  For every other variant: a warm run over the original's
store and a cold run over an empty one; a task whose warm value differs from its cold value is a failure (the cache
handed back a value this code does not compute).  Prints one JSON result per variant.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import oracle_runtime  # noqa: E402 - after the path it lives on
from oracle_strict import difference  # noqa: E402

PACKAGE = "oracle_flow"


def _materialise(work: Path, variant: str, files: dict[str, str]) -> Path:
    root = work / variant
    if root.exists():
        shutil.rmtree(root)
    for rel, text in files.items():
        target = root / PACKAGE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def _import(root: Path):
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        return importlib.import_module(f"{PACKAGE}.pipeline")
    finally:
        sys.path.remove(str(root))


def _compare(warm: oracle_runtime.CoreRun, cold: oracle_runtime.CoreRun) -> dict:
    failures, hits, misses = [], 0, 0
    for name, w in warm.calls.items():
        c = cold.calls.get(name)
        hits += w.hit
        misses += not w.hit
        if c is None:
            continue
        if w.error or c.error:
            same = w.error == c.error
            why = None if same else f"warm {w.error or 'value'} vs cold {c.error or 'value'}"
        else:
            why = difference(w.value, c.value)
        if why is not None:
            failures.append({"call": name, "hit": w.hit, "why": why[:300]})
    return {"failures": failures, "hits": hits, "misses": misses}


def _pairs(job: dict, work: Path) -> list[dict]:
    """Input operators: the flow run with ``a``, then with ``b`` warm (over the first store) and cold."""
    import oracle_inputs

    module = _import(_materialise(work, "original", job["files"]))
    chosen = [op for op in oracle_inputs.OPERATORS if not job.get("inputs") or op.name in job["inputs"]]
    results = []
    for i, op in enumerate(chosen):
        folder = work / f"input{i}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b = op.make(folder)
        store: dict = {}
        first = oracle_runtime.run_core(module.main, store, x=a)
        if op.between is not None:
            op.between(folder)
        warm = oracle_runtime.run_core(module.main, dict(store), x=b)
        cold = oracle_runtime.run_core(module.main, {}, x=b)
        results.append({"id": op.name, **_compare(warm, cold), "errors": [first.error, warm.error, cold.error]})
    return results


def main() -> None:
    job = json.loads(sys.stdin.read())
    if job.get("mode") == "inputs":
        home = Path(job["work"]) / "home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["HOME"] = str(home)
        json.dump(_pairs(job, Path(job["work"])), sys.stdout, default=str)
        return
    work = Path(job["work"])
    data = Path(job.get("data") or work / "data")
    data.mkdir(parents=True, exist_ok=True)
    variants = job["variants"]
    original = variants[0]
    module = _import(_materialise(work, "original", original["files"]))
    parameters = job.get("parameters") or module.parameters(data)
    first_store: dict = {}
    first = oracle_runtime.run_core(module.main, first_store, **parameters)
    rerun = oracle_runtime.run_core(module.main, dict(first_store), **parameters)
    results = [
        {
            "id": original["id"],
            **_compare(rerun, first),
            "signatures": {n: [c.key, c.signature] for n, c in first.calls.items()},
            "errors": {n: c.error for n, c in first.calls.items() if c.error},
            "flow_error": first.error,
        }
    ]
    for i, variant in enumerate(variants[1:]):
        try:
            module = _import(_materialise(work, f"v{i}", variant["files"]))
        except Exception as exc:  # noqa: BLE001 - an edit that breaks the import: no cell
            results.append({"id": variant["id"], "invalid": f"{type(exc).__name__}: {exc}"})
            continue
        try:
            warm = oracle_runtime.run_core(module.main, dict(first_store), **parameters)
            cold = oracle_runtime.run_core(module.main, {}, **parameters)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            results.append({"id": variant["id"], "crash": traceback.format_exc()[-2000:], "type": type(exc).__name__})
            continue
        unchanged = sum(
            1
            for n, c in warm.calls.items()
            if n in first.calls and c.signature == first.calls[n].signature and c.key == first.calls[n].key
        )
        results.append({"id": variant["id"], **_compare(warm, cold), "unchanged": unchanged, "calls": len(warm.calls)})
        shutil.rmtree(work / f"v{i}", ignore_errors=True)
    json.dump(results, sys.stdout, default=str)


if __name__ == "__main__":
    os.environ.setdefault("SCOUT_ORACLE_ENGINE", "core")
    main()
