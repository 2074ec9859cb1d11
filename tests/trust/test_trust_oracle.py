"""The differential oracle: edit operators applied mechanically to every flow of the library; a warm run over the
original's store must give every task the value a cold run gives, or recompute it."""

from __future__ import annotations

import oracle_driver
import pytest


@pytest.mark.parametrize("flow", oracle_driver.flow_names())
def test_warm_equals_cold_under_every_edit(flow, tmp_path):
    cells, results = oracle_driver.edit_cells(flow, tmp_path)
    print(f"\n{flow}: {len(cells)} operators, {sum(c.sites for c in cells.values())} cells")
    print(oracle_driver.matrix(list(cells.values())))
    original = results[0]
    assert not original["flow_error"] and not original["errors"], "the original flow must run through"
    assert not original["failures"], f"a rerun over the first run's store differs: {original['failures']}"
    failing = [f for c in cells.values() for f in c.failures]
    assert not failing, "\n".join(failing[:40])


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
