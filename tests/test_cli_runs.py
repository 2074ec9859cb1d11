"""``scout-persist runs``, ``runs show``, ``runs prune`` and the refusals of ``resume`` that need no flow, on records
written by hand (the records Prefect writes are tested in tests/prefect/test_run_records.py)."""

from __future__ import annotations

import json
import time

import pytest

from scout_persist import runs
from scout_persist.cli import main
from scout_persist.registry import Registry
from scout_persist.store import Store
from test_runs import age_record, make_record, write_job


@pytest.fixture
def root(tmp_path, monkeypatch) -> Store:
    store = Store(str(tmp_path / "root"))
    monkeypatch.setenv("SCOUT_PERSIST_URL", store.url)
    return store


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def three_runs(store: Store) -> None:
    now = time.time()
    jobs = [
        {
            "key": "var/jobs/Demo/a/x",
            "task": "a",
            "workflow": "Demo",
            "status": "done",
            "seconds": 0.25,
            "reused": False,
            "dependencies": [],
        },
        {
            "key": "var/jobs/Demo/b/y",
            "task": "b",
            "workflow": "Demo",
            "status": "error",
            "error": "ValueError: no",
            "dependencies": ["var/jobs/Demo/a/x"],
        },
    ]
    runs.write_record(store, make_record("run-old", start=now - 300, status="completed", jobs=jobs[:1]))
    runs.write_record(
        store,
        make_record(
            "run-failed", start=now - 200, status="failed", jobs=jobs, error="Flow run encountered an exception"
        ),
    )
    runs.write_record(store, make_record("run-dead", start=now - 100, status="running", lease=5, parameters={"n": 3}))
    age_record(store, make_record("run-dead"), 60)


def test_runs_lists_newest_first_with_the_judged_status(root, capsys):
    three_runs(root)
    code, out, err = cli(capsys, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "STARTED", "(UTC)", "TIME", "FLOW", "JOBS"]
    assert [line.split()[0] for line in lines[1:]] == ["run-dead", "run-failed", "run-old"]
    assert [line.split()[1] for line in lines[1:]] == ["crashed", "failed", "completed"]
    assert "1/2 done (1 error)" in lines[2]
    assert "3 runs in" in err


def test_runs_json_filters_by_status_and_carries_the_jobs(root, capsys):
    three_runs(root)
    code, out, _ = cli(capsys, "runs", "--status", "failed,crashed", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["run_id"], r["status"], r["recorded_status"]) for r in rows] == [
        ("run-dead", "crashed", "running"),
        ("run-failed", "failed", "failed"),
    ]
    assert "past its lease of 5s" in rows[0]["status_reason"]
    assert [j["status"] for j in rows[1]["jobs"]] == ["done", "error"]


def test_an_unknown_status_is_refused_naming_the_statuses(root, capsys):
    code, _, err = cli(capsys, "runs", "--status", "finished")
    assert code == 2
    assert "--status finished: a run's status is one of running, completed, failed, cancelled, crashed" in err


def test_runs_on_a_store_without_runs_says_so(root, capsys):
    code, out, err = cli(capsys, "runs")
    assert code == 0 and out == "" and "no runs in" in err


def test_runs_show_prints_parameters_timings_and_each_job(root, capsys):
    three_runs(root)
    code, out, _ = cli(capsys, "runs", "show", "run-f")
    assert code == 0
    assert out.startswith("run run-failed  (flow Demo)")
    assert "  status      failed" in out and "  error       Flow run encountered an exception" in out
    assert "(5.0s)" in out
    assert f"done    ran      250ms  a                    {root.path('var/jobs/Demo/a/x')}" in out
    assert "      ValueError: no" in out


def test_runs_show_json_has_the_record_and_the_lineage(root, capsys):
    three_runs(root)
    runs.write_marker(root, "Demo", "run-dead", runs.RESUMED_BY, "run-new", {"run_id": "run-new"})
    code, out, _ = cli(capsys, "runs", "--root", root.url, "show", "run-dead", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "crashed" and shown["parameters"] == {"n": 3}
    assert shown["resumed_by"] == [{"run_id": "run-new"}] and shown["reused_by"] == []


def test_runs_show_of_an_unknown_run_names_the_fix(root, capsys):
    three_runs(root)
    code, _, err = cli(capsys, "runs", "show", "nope")
    assert code == 2
    assert "no run 'nope' in" in err and "list runs with: scout-persist runs" in err


def test_runs_show_plot_draws_the_run(root, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    three_runs(root)
    write_job(root, "var/jobs/Demo/a/x", "run-failed")
    write_job(root, "var/jobs/Demo/b/y", "run-failed", deps=["var/jobs/Demo/a/x"], status="error")
    target = tmp_path / "run.svg"
    code, out, _ = cli(capsys, "runs", "show", "run-failed", "--plot", str(target))
    assert code == 0 and out.strip() == str(target)
    svg = target.read_text()
    assert "Demo · run" in svg and "Demo · a" in svg and "Demo · b" in svg


def test_prune_dry_run_then_prune(root, capsys):
    """The old run's own job goes; the job the kept run also lists stays; dry run deletes nothing."""
    now = time.time()
    write_job(root, "var/jobs/Demo/a/old", "r-old")
    write_job(root, "var/jobs/Demo/a/shared", "r-old")
    write_job(root, "var/jobs/Demo/a/new", "r-new")
    runs.write_record(
        root,
        make_record(
            "r-old",
            start=now - 50,
            jobs=[
                {"key": "var/jobs/Demo/a/old", "task": "a", "status": "done"},
                {"key": "var/jobs/Demo/a/shared", "task": "a", "status": "done"},
            ],
        ),
    )
    runs.write_record(
        root,
        make_record(
            "r-new",
            start=now,
            jobs=[
                {"key": "var/jobs/Demo/a/new", "task": "a", "status": "done"},
                {"key": "var/jobs/Demo/a/shared", "task": "a", "status": "done", "reused": True},
            ],
        ),
    )
    code, out, err = cli(capsys, "runs", "prune", "--keep-last", "1", "--dry-run")
    assert code == 0
    assert "would delete run  r-old" in out and "would delete job  var/jobs/Demo/a/old" in out
    assert "kept job     var/jobs/Demo/a/shared: reachable from a kept run" in out
    assert "(dry run: nothing deleted)" in err
    assert root.exists("var/jobs/Demo/a/old") and root.exists(runs.record_key("Demo", "r-old"))
    code, out, err = cli(capsys, "runs", "prune", "--keep-last", "1", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["runs_deleted"] == ["r-old"] and report["jobs_deleted"] == ["var/jobs/Demo/a/old"]
    assert not root.exists("var/jobs/Demo/a/old") and not root.exists("var/jobs/Demo/a/old.info")
    assert root.exists("var/jobs/Demo/a/shared") and root.exists("var/jobs/Demo/a/new")
    assert not root.exists("var/runs/Demo/r-old")
    assert [r.run_id for r in runs.list_runs(root)] == ["r-new"]


def test_prune_keeps_what_a_registry_version_needs(root, capsys):
    write_job(root, "var/jobs/Demo/a/dep", "r-old")
    write_job(root, "var/jobs/Demo/b/top", "r-old", deps=["var/jobs/Demo/a/dep"])
    runs.write_record(
        root,
        make_record(
            "r-old",
            start=time.time() - 3 * 86400,
            jobs=[
                {"key": "var/jobs/Demo/a/dep", "task": "a", "status": "done"},
                {"key": "var/jobs/Demo/b/top", "task": "b", "status": "done"},
            ],
        ),
    )
    Registry(root).log_job("top", root.path("var/jobs/Demo/b/top"))
    code, out, _ = cli(capsys, "runs", "prune", "--older-than", "1")
    assert code == 0
    assert "deleted run  r-old" in out
    assert "kept job     var/jobs/Demo/a/dep: reachable from a registry version" in out
    assert root.exists("var/jobs/Demo/a/dep") and root.exists("var/jobs/Demo/b/top")


def test_prune_needs_a_rule(root, capsys):
    with pytest.raises(SystemExit):
        main(["runs", "prune"])
    assert "one of the arguments --keep-last --older-than is required" in capsys.readouterr().err


# --------------------------------------------------------------------------------- resume refusals
def test_resume_needs_a_run_or_incomplete(root, capsys):
    code, _, err = cli(capsys, "resume")
    assert code == 2 and "resume needs a RUN id (scout-persist runs lists them), or --incomplete" in err
    code, _, err = cli(capsys, "resume", "abc", "--incomplete")
    assert code == 2 and "resume takes a RUN or --incomplete, not both" in err
    code, _, err = cli(capsys, "resume", "--incomplete", "--from", "a")
    assert code == 2 and "--from TASK restarts one run from a task; give that RUN" in err


def test_resume_refuses_a_live_run(root, capsys):
    runs.write_record(root, make_record("r-live", status="running", lease=60))
    code, _, err = cli(capsys, "resume", "r-live")
    assert code == 2
    assert "run r-live of flow Demo is still running (its lease (60s) was renewed" in err
    assert (
        "wait for it to end (scout-persist runs show r-live), or, if its process is gone, for its lease to "
        "lapse about" in err
    )


def test_resume_refuses_a_run_that_is_not_resumable(root, capsys):
    runs.write_record(
        root, make_record("r-x", resumable=False, not_resumable="parameter 'd' (datetime.date) is not plain JSON")
    )
    code, _, err = cli(capsys, "resume", "r-x")
    assert code == 2 and "run r-x cannot be resumed: parameter 'd' (datetime.date) is not plain JSON" in err


def test_resume_incomplete_with_nothing_crashed_says_so(root, capsys):
    runs.write_record(root, make_record("r-ok"))
    code, _, err = cli(capsys, "resume", "--incomplete")
    assert code == 0 and "resume --incomplete: no crashed run to resume in" in err


def test_resume_refuses_a_run_another_restorer_holds(root, capsys):
    from scout_persist.locks import Lock

    runs.write_record(root, make_record("r-dead", status="running", lease=5))
    age_record(root, make_record("r-dead"), 60)
    lock = Lock(root, "var/runs/Demo/r-dead/resume.lock", owner="scout-persist resume r-dead")
    lock.host = "other-host"  # a restorer on another machine, alive as far as its lease says
    assert lock.acquire(timeout=0)
    try:
        code, _, err = cli(capsys, "resume", "r-dead")
        assert code == 2 and "run r-dead is being resumed by host other-host" in err
        code, _, err = cli(capsys, "resume", "--incomplete")
        assert code == 0 and "skipped: run r-dead is being resumed by host other-host" in err
    finally:
        lock.release()


def _held_job_lock(store: Store, key: str):
    """The lock of job ``key``, held by a live writer on another machine."""
    from scout_persist.layout import lock_key_for
    from scout_persist.locks import Lock

    lock = Lock(store, lock_key_for(store.path(key)))
    lock.host = "other-host"
    assert lock.acquire(timeout=0)
    return lock


def test_prune_skips_a_job_whose_lock_is_held_and_says_so(root, capsys):
    write_job(root, "var/jobs/Demo/a/old", "r-old")
    runs.write_record(
        root,
        make_record(
            "r-old", start=time.time() - 50, jobs=[{"key": "var/jobs/Demo/a/old", "task": "a", "status": "done"}]
        ),
    )
    runs.write_record(root, make_record("r-new"))
    lock = _held_job_lock(root, "var/jobs/Demo/a/old")
    try:
        code, _, err = cli(capsys, "runs", "prune", "--keep-last", "1")
    finally:
        lock.release()
    assert code == 1
    assert "skipped Demo/a/old: locked by host other-host" in err
    assert "runs prune: 1 runs and 0 jobs deleted, 1 runs kept; 1 jobs skipped (locked or running)" in err
    assert root.exists("var/jobs/Demo/a/old")


def test_resume_from_refuses_when_a_job_to_recompute_is_held(root):
    from scout_persist.cli.resume import _clean_from
    from scout_persist.errors import InvalidInputError

    write_job(root, "var/jobs/Demo/a/1", "r1")
    write_job(root, "var/jobs/Demo/b/1", "r1", deps=["var/jobs/Demo/a/1"])
    runs.write_record(
        root,
        make_record(
            "r1",
            jobs=[
                {"key": "var/jobs/Demo/a/1", "task": "a", "status": "done", "dependencies": []},
                {"key": "var/jobs/Demo/b/1", "task": "b", "status": "done", "dependencies": ["var/jobs/Demo/a/1"]},
            ],
        ),
    )
    lock = _held_job_lock(root, "var/jobs/Demo/b/1")
    try:
        with pytest.raises(
            InvalidInputError,
            match=r"--from 'a': var/jobs/Demo/b/1 could not be removed \(locked or "
            r"running\); wait for the run using them to end",
        ):
            _clean_from(root, runs.read_run(root, "Demo", "r1"), "a")
    finally:
        lock.release()
    assert not root.exists("var/jobs/Demo/a/1") and root.exists("var/jobs/Demo/b/1")


def test_plotting_a_run_without_jobs_says_so(root, capsys, tmp_path):
    runs.write_record(root, make_record("r-empty"))
    code, _, err = cli(capsys, "runs", "show", "r-empty", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and "run r-empty has no jobs to plot" in err


def test_resume_without_the_plugin_names_the_extra(root, capsys, monkeypatch):
    runs.write_record(root, make_record("r-done"))
    monkeypatch.setitem(__import__("sys").modules, "prefect_scout.resuming", None)
    code, _, err = cli(capsys, "resume", "r-done")
    assert code == 2
    assert "resume runs the flow with Prefect and the prefect_scout plug-in, which do not import here" in err
    assert "pip install 'scout-persist[prefect]'" in err


def test_where_the_store_tells_no_age_resume_watches_the_record(capsys, monkeypatch):
    """memory:// gives no age: a record rewritten while watched is live; one left alone for its lease is not."""
    import threading

    from scout_persist.cli import resume as resume_cli

    monkeypatch.setattr(resume_cli, "WATCH_POLL", 0.05)
    store = Store("memory://runs-watch")
    runs.write_record(
        store, make_record("r-mem", status="running", lease=0.5, resumable=False, not_resumable="test record")
    )
    stop = threading.Event()

    def renew() -> None:
        seq = 0
        while not stop.wait(0.01):
            seq += 1
            runs.write_record(
                store,
                make_record(
                    "r-mem", status="running", lease=0.5, resumable=False, not_resumable="test record", seq=seq
                ),
            )

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        code, _, err = cli(capsys, "resume", "r-mem", "--root", store.url)
    finally:
        stop.set()
        renewer.join()
    assert code == 2
    assert "does not tell the age of run records; watching run r-mem for up to 0.5s" in err
    assert "run r-mem of flow Demo is still running: its record was renewed while watched" in err
    code, _, err = cli(capsys, "resume", "r-mem", "--root", store.url)  # nobody renews it now
    assert code == 2 and "run r-mem cannot be resumed: test record" in err


def test_the_progress_bar_appears_only_when_the_listing_is_slow(root, capsys, monkeypatch):
    from scout_persist.cli import runs as runs_cli

    three_runs(root)
    monkeypatch.setattr(runs_cli, "SLOW", 3600.0)  # never slow enough
    code, _, err = cli(capsys, "runs", "--progress")
    assert code == 0 and "runs [" not in err
    monkeypatch.setattr(runs_cli, "SLOW", 0.0)  # always slow enough
    code, _, err = cli(capsys, "runs", "--progress")
    assert code == 0 and "runs [##############################] 3/3" in err
    code, _, err = cli(capsys, "runs", "--progress", "--no-progress")
    assert code == 0 and "runs [" not in err
