"""The differential oracle: edit operators applied mechanically to every flow of the library; a warm run over the
original's store must give every task the value a cold run gives, or recompute it."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import oracle_driver
import pytest

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)


def test_warm_equals_cold_under_every_edit_of_every_flow(tmp_path):
    """The matrix: every edit operator at (up to a few, or in `make soak` all) sites of every flow of the library,
    each flow in a worker process (two at a time)."""
    flows = oracle_driver.flow_names()
    per_operator = None if os.environ.get("SCOUT_PERSIST_SOAK") else 6

    def run(flow: str) -> tuple[str, dict, list]:
        cells, results = oracle_driver.edit_cells(flow, tmp_path / flow, per_operator)
        return flow, cells, results

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, flows))
    every = [cell for _, cells, _ in done for cell in cells.values()]
    operators = {cell.operator for cell in every}
    print(
        f"\noracle: {len(operators)} edit operators x {len(flows)} flows = {len(every)} (flow, operator) cells, "
        f"{sum(c.sites for c in every)} edited versions run warm and cold"
    )
    print(oracle_driver.matrix(every))
    for flow, _, results in done:
        original = results[0]
        assert not original["flow_error"] and not original["errors"], f"{flow}: the original flow must run through"
        assert not original["failures"], f"{flow}: a rerun over the first run's store differs: {original['failures']}"
    failing = [f"{cell.flow}: {f}" for cell in every for f in cell.failures]
    assert not failing, "\n".join(failing[:40])
    assert len(flows) >= 5 and len(operators) >= 40


@pytest.mark.parametrize("flow", oracle_driver.flow_names())
def test_an_unchanged_flow_reuses_everything_in_another_process_seed_and_folder(flow, tmp_path):
    """Spurious misses: the same code and inputs in a new process, with another PYTHONHASHSEED and another checkout
    folder, must compute the same key and signature for every task (so a warm run reuses everything)."""
    data = tmp_path / "data"
    first = oracle_driver.signatures_in_fresh_process(flow, tmp_path / "checkout-a", data, "1")
    for seed in ("2", "3", "4"):
        other = oracle_driver.signatures_in_fresh_process(flow, tmp_path / "elsewhere" / seed, data, seed)
        assert first.keys() == other.keys()
        differ = {name: (first[name], other[name]) for name in first if first[name] != other[name]}
        assert not differ, f"signatures differ between processes (PYTHONHASHSEED 1 and {seed}): {differ}"


def test_inputs_that_compute_differently_never_share_a_job(tmp_path):
    """Input operators: for each pair (a, b) a computation tells apart, a run with b over the store of a run with a
    gives what a cold run with b gives."""
    results = oracle_driver.input_cells(tmp_path)
    print(f"\ninput operators: {len(results)}")
    for r in results:
        print(f"  {'FAIL' if r['failures'] else 'ok  '} {r['id']}")
    assert len(results) >= 30
    errors = [(r["id"], r["errors"]) for r in results if any(r["errors"])]
    assert not errors, f"the probe flow must run through: {errors}"
    failing = [f"{r['id']}: {f['why']}" for r in results for f in r["failures"]]
    assert not failing, "\n".join(failing)
