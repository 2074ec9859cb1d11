"""Audit mode through Prefect: a fraction of hits computed again and compared with the stored value.

The flows read an outside input the signature cannot see (a file named by an environment variable), so a changed
input leaves a stale hit — exactly what an audit is for.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest
from prefect.task_runners import ProcessPoolTaskRunner

from scout_persist import runs as core
from scout_persist.cli import main
from scout_persist.store import Store
from test_trust import _load_module

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

FLOW = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="string", workflow="Audited")
    def read_outside() -> str:
        with open(os.environ["AUDIT_LOG"], "a") as fh:
            fh.write("read\\n")
        with open(os.environ["AUDIT_INPUT"]) as fh:  # an input the signature cannot see
            return fh.read().strip()

    @scout_task(type="string", workflow="Audited")
    def shout(text: str) -> str:
        return text.upper()

    @flow(name="Audited")
    def audited_flow() -> str:
        return shout.submit(read_outside.submit()).result()
"""


@pytest.fixture
def audited(tmp_path, monkeypatch, scout_root):
    source = tmp_path / "audited_flow.py"
    source.write_text(textwrap.dedent(FLOW))
    outside = tmp_path / "outside.txt"
    outside.write_text("first")
    log = tmp_path / "ran.log"
    monkeypatch.setenv("AUDIT_INPUT", str(outside))
    monkeypatch.setenv("AUDIT_LOG", str(log))
    module = _load_module(source, "audited_flow")
    return module, outside, log, scout_root


def _ran(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def _latest_run(root: Path) -> core.Run:
    store = Store(str(root))
    listed = max(core.list_runs(store, "Audited"), key=lambda r: str(r.record.get("start") or ""))
    return core.read_run(store, listed.workflow, listed.run_id)


def _info(root: Path, task: str) -> dict:
    (path,) = (root / "var/jobs/Audited" / task).glob("*.info")
    return json.loads(path.read_text())


def test_an_audit_of_an_equal_hit_is_recorded_ok(audited, monkeypatch):
    module, _, log, root = audited
    assert module.audited_flow() == "FIRST" and _ran(log) == 1
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT", "1")
    assert module.audited_flow() == "FIRST" and _ran(log) == 2  # the hit was computed again
    assert "audit" not in _info(root, "read_outside")  # nothing to note: equal
    run = _latest_run(root)
    jobs = {j["task"]: j for j in run.jobs()}
    assert jobs["read_outside"]["audit"]["mismatch"] is None and jobs["read_outside"]["reused"] is True


def test_a_mismatch_is_warned_noted_and_listed_and_the_hit_stands(audited, monkeypatch, caplog, capsys):
    module, outside, log, root = audited
    assert module.audited_flow() == "FIRST"
    outside.write_text("second")  # the outside input changed: the stored job is stale
    assert module.audited_flow() == "FIRST" and _ran(log) == 1  # a plain hit serves the stale value
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT", "1")
    with caplog.at_level(logging.WARNING):
        assert module.audited_flow() == "FIRST"  # no replacement asked: the run goes on as the hit
    assert _ran(log) == 2
    warning = " ".join(r.getMessage() for r in caplog.records if "AUDIT MISMATCH" in r.getMessage())
    assert "Audited#read_outside" in warning and "read_outside" in warning and "'first' != 'second'" in warning
    noted = _info(root, "read_outside")["audit"]
    assert noted["mismatch"] and noted["replaced"] is False and noted["task"] == "Audited#read_outside"
    assert main(["runs", "show", _latest_run(root).run_id, "--root", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "audit MISMATCH" in shown and "1 mismatch(es)" in shown


def test_a_mismatch_replaces_the_job_when_asked(audited, monkeypatch):
    module, outside, log, root = audited
    assert module.audited_flow() == "FIRST"
    outside.write_text("second")
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT", "1")
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT_REPLACE", "1")
    assert module.audited_flow() == "SECOND"  # replaced, and its dependent recomputed from it
    assert _info(root, "read_outside")["prefect"]["recomputed_because"] == ["audit"]
    monkeypatch.delenv("SCOUT_PERSIST_AUDIT")
    assert module.audited_flow() == "SECOND" and _ran(log) == 2  # a plain hit of the replaced job


def test_an_audited_hit_reaches_the_flow_from_a_worker_process(audited, monkeypatch):
    module, outside, log, root = audited
    flow = module.audited_flow.with_options(task_runner=ProcessPoolTaskRunner(max_workers=1))
    assert flow() == "FIRST"
    outside.write_text("second")
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT", "1")
    assert flow() == "FIRST" and _ran(log) == 2
    assert _info(root, "read_outside")["audit"]["mismatch"]


def test_a_bad_audit_fraction_fails_the_task_with_the_rule(audited, monkeypatch):
    module, *_ = audited
    monkeypatch.setenv("SCOUT_PERSIST_AUDIT", "2")
    with pytest.raises(Exception, match=r"SCOUT_PERSIST_AUDIT='2' is not a fraction of cache hits"):
        module.audited_flow()
