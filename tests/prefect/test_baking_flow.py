"""The Baking flow through Prefect: Ruby-exact job paths and bytes, Scout .info lifecycle, cache hits, legacy reuse."""

from __future__ import annotations

import json
from pathlib import Path

from scout_persist import Job
from scout_persist.info import SETUP_KEYS
from scout_prefect_helpers import ran

RUBY = Path(__file__).resolve().parents[1] / "data" / "ruby-scout"
MANIFEST = json.loads((RUBY / "manifest.json").read_text())
CASES = {c["case"]: c for c in MANIFEST["cases"]}
TASKS = ["whisk_eggs", "prepare_batter", "bake_muffin_tray"]


def ruby_tree(case: str) -> list[str]:
    """The job keys Ruby recorded for a Baking case: the job and its dependencies."""
    top = CASES[case]["path"]
    name = top.rsplit("/", 1)[1].split("_")[0]
    return sorted(
        s for s in MANIFEST["steps"] if s.startswith("var/jobs/Baking/") and s.rsplit("/", 1)[1].split("_")[0] == name
    )


def run_both(baking):
    return [baking.baking("Normal muffin", None), baking.baking("Blueberry muffin", True)]


def test_baking_writes_ruby_exact_jobs_then_hits(scout_root, body_log, baking_module):
    first = run_both(baking_module)
    assert ran(body_log) == TASKS * 2
    for out in first:
        assert set(out["states"].values()) == {"Completed"}

    written = sorted(
        str(p.relative_to(scout_root))
        for p in (scout_root / "var/jobs").rglob("*")
        if p.is_file() and not p.name.endswith(".info")
    )
    expected = sorted(ruby_tree("baking_normal") + ruby_tree("baking_blueberry"))
    assert written == expected and len(written) == 6
    for key in expected:
        # Scout's result bytes: identical to what Ruby wrote for the same job
        assert (scout_root / key).read_bytes() == (RUBY / "scout-jobs" / key).read_bytes(), key
        info = json.loads((scout_root / (key + ".info")).read_text())
        ruby_info = json.loads((RUBY / "scout-jobs" / (key + ".info")).read_text())
        assert list(info)[: len(SETUP_KEYS) + 1] == list(SETUP_KEYS) + ["start"]
        assert list(info)[-3:] == ["time_elapsed", "total_time_elapsed", "end"]
        assert info["status"] == "done" and "prefect" in info
        for k in ("task_name", "workflow", "provided_inputs", "non_default_inputs", "inputs", "input_names", "type"):
            assert info[k] == ruby_info[k], (key, k)
        assert [d.split("/var/jobs/")[1] for d in info["dependencies"]] == [
            d.split("/var/jobs/")[1] for d in ruby_info["dependencies"]
        ]

    second = run_both(baking_module)
    assert ran(body_log) == TASKS * 2  # no body ran again
    for a, b in zip(first, second):
        assert a["tray"] == b["tray"]
        assert set(b["states"].values()) == {"Cached"}
    assert first[0]["tray"] == CASES["baking_normal"]["loaded_result"]
    assert first[1]["tray"] == CASES["baking_blueberry"]["loaded_result"]


def test_legacy_ruby_jobs_are_reused(legacy_root, body_log, baking_module):
    before = {p: p.read_bytes() for p in (legacy_root / "var/jobs/Baking").rglob("*") if p.is_file()}
    outs = run_both(baking_module)
    assert ran(body_log) == []  # every task was a cache hit on Ruby's jobs
    assert outs[0]["tray"] == CASES["baking_normal"]["loaded_result"]
    assert outs[1]["tray"] == CASES["baking_blueberry"]["loaded_result"]
    for out in outs:
        assert set(out["states"].values()) == {"Cached"}
    after = {p: p.read_bytes() for p in (legacy_root / "var/jobs/Baking").rglob("*") if p.is_file()}
    assert after == before  # reading Ruby's jobs never rewrites them


def test_job_reads_back_through_core(scout_root, body_log, baking_module):
    baking_module.baking("Blueberry muffin", True)
    key = CASES["baking_blueberry"]["path"]
    job = Job(str(scout_root / key))
    assert job.status == "done"
    assert job.load() == CASES["baking_blueberry"]["loaded_result"]
    assert [d.task_name for d in job.dependencies] == ["prepare_batter"]
    assert job.inputs == {} and job.info["signature"]["version"] == ""
