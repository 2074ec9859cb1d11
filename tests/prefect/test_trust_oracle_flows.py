"""The oracle end to end: one flow whose tasks each carry one class of past wrong values, edited all at once, run
through Prefect under the thread, process-pool and Dask runners: version 1 on a store, version 2 on that store
(warm) and on an empty one (cold); every task's warm value must equal its cold value.

Classes (issue: trust, part 3): arguments left out of the key (``*args``, a literal beside a future, a value changed
in place after a direct call), a format that does not round-trip (a transposed array in a dict of arrays), a
dependency token missing part of a value (an upstream array reshaped), code identity gaps (a user decorator's body,
a library function bound to a module name, a builtin default), an input that digests equal but computes differently
(a folder changed inside a sub-folder).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from test_trust import RUNNERS, _load_module, dask_address, runner_for  # noqa: F401 - fixtures used by name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trust"))
from oracle_strict import difference

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

SOURCE = """
    import functools
    import os
    from pathlib import Path

    import numpy as np
    from prefect import flow
    from prefect_scout import scout_task

    AGG = np.{agg}


    def traced(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs) {wrapper_op}

        return wrapper


    def _ran(name):
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write(name + "\\n")


    @scout_task(type="integer", workflow="OracleE2E")
    def base(k: int = 1) -> int:
        _ran("base")
        return k * 10


    @scout_task(type="integer", workflow="OracleE2E")
    def star(a: int, *rest: int) -> int:
        _ran("star")
        return a + 2 * sum(rest)


    @scout_task(type="integer", workflow="OracleE2E")
    def combine(parts: list) -> int:
        _ran("combine")
        return sum(parts)


    @scout_task(workflow="OracleE2E")
    def grid(n: int = 6):
        _ran("grid")
        return np.arange(n, dtype=float).reshape{shape}


    @scout_task(type="float", workflow="OracleE2E")
    def col_sums(g) -> float:
        _ran("col_sums")
        return float(g.sum(axis=0)[-1])


    @scout_task(type="float", workflow="OracleE2E")
    @traced
    def aggregate(g) -> float:
        _ran("aggregate")
        return float(AGG(g**2))


    @scout_task(type="integer", workflow="OracleE2E")
    def pick(xs: list, f={pick}) -> int:
        _ran("pick")
        return f(xs)


    @scout_task(workflow="OracleE2E")
    def frame(n: int = 3) -> dict:
        _ran("frame")
        return {{"x": np.arange(n, dtype=float)}}


    @scout_task(type="float", workflow="OracleE2E")
    def total(d: dict) -> float:
        _ran("total")
        return float(d["x"].sum() + d["y"].sum())


    @scout_task(type="integer", workflow="OracleE2E")
    def folder_size(folder: Path) -> int:
        _ran("folder_size")
        return sum(len(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file())


    @scout_task(workflow="OracleE2E")
    def views(n: int = 4) -> dict:
        _ran("views")
        return {{"t": np.arange(n * 2, dtype=float).reshape(n, 2).T, "c": np.arange(3.0)}}


    @scout_task(type="float", workflow="OracleE2E")
    def first_row(v: dict) -> float:
        _ran("first_row")
        return float(v["t"][0].sum() * 10 + v["t"][1][0])


    @flow(name="OracleE2E")
    def oracle_flow(folder: str):
        b = base.submit(1)
        d = frame(3)
        d["y"] = d["x"] * {factor}
        g = grid.submit()
        futures = {{
            "star": star.submit(1, {rest}),
            "combine": combine.submit([b, {k}]),
            "col_sums": col_sums.submit(g),
            "aggregate": aggregate.submit(g),
            "pick": pick.submit([3, 1, 2]),
            "total": total.submit(d),
            "folder_size": folder_size.submit(Path(folder)),
            "first_row": first_row.submit(views.submit()),
        }}
        return {{name: f.result() for name, f in futures.items()}}
"""
VERSION_1 = {"agg": "mean", "wrapper_op": "+ 0", "shape": "(2, 3)", "pick": "min", "factor": 2, "rest": 2, "k": 1}
VERSION_2 = {"agg": "median", "wrapper_op": "+ 1", "shape": "(3, 2)", "pick": "max", "factor": 3, "rest": 3, "k": 2}


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.timeout(300)
def test_warm_equals_cold_for_every_class_under_every_runner(kind, runner_for, tmp_path, monkeypatch):  # noqa: F811
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "deep.txt").write_text("deep")
    source = tmp_path / f"oracle_e2e_{kind}.py"

    def run(version: dict, root: Path) -> dict:
        monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
        source.write_text(textwrap.dedent(SOURCE.format(**version)))
        module = _load_module(source, f"oracle_e2e_{kind}")
        return module.oracle_flow.with_options(task_runner=runner_for(kind))(str(folder))

    warm_root, cold_root = tmp_path / "warm", tmp_path / "cold"
    first = run(VERSION_1, warm_root)
    again = run(VERSION_1, warm_root)
    assert {name: difference(first[name], again[name]) for name in first} == dict.fromkeys(first)
    ran_before = log.read_text().split()
    (folder / "sub" / "deep.txt").write_text("DEEPER")  # the input changed inside a sub-folder
    warm = run(VERSION_2, warm_root)
    warm_ran = log.read_text().split()[len(ran_before) :]
    cold = run(VERSION_2, cold_root)
    unchanged = {name for name in first if difference(first[name], cold[name]) is None}
    assert unchanged == {"first_row"}, "every edit changes its task's value (else its cell proves nothing)"
    wrong = {name: difference(warm[name], cold[name]) for name in cold if difference(warm[name], cold[name])}
    assert not wrong, f"warm values differ from cold values under the {kind} runner: {wrong}"
    assert "base" not in warm_ran and "frame" not in warm_ran and "views" not in warm_ran, warm_ran  # unchanged: hits
