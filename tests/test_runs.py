"""Run records in the core (:mod:`scout_persist.runs`): keys, parameters, lease judgement by the store's clock,
listing, finding, pruning plans and registry lineage, all without Prefect."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import time

import pytest

from scout_persist import runs
from scout_persist.errors import InvalidInputError, KeyNotFound, UnsafePathError
from scout_persist.registry import Registry
from scout_persist.store import Store


def make_record(
    run_id: str,
    workflow: str = "Demo",
    status: str = "completed",
    start: float | None = None,
    jobs: list[dict] | None = None,
    lease: float = 60.0,
    **extra,
) -> dict:
    start = time.time() if start is None else start
    record = {
        "format": runs.FORMAT,
        "run_id": run_id,
        "workflow": workflow,
        "flow": workflow,
        "entrypoint": "flows.py:demo",
        "code": {"hash": "h", "flow": "f", "tasks": {}},
        "parameters": {},
        "resumable": True,
        "host": "elsewhere",
        "pid": 1,
        "pid_hostname": "elsewhere",
        "start": dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat(),
        "end": None if status == "running" else dt.datetime.fromtimestamp(start + 5, dt.timezone.utc).isoformat(),
        "status": status,
        "lease": {"seconds": lease, "refresh": lease / 3, "seq": 1},
        "jobs": jobs or [],
    }
    record.update(extra)
    return record


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


def write_job(store: Store, key: str, run_id: str | None, deps: list[str] = (), status: str = "done") -> None:
    info = {
        "status": status,
        "workflow": key.split("/")[2],
        "task_name": key.split("/")[3],
        "dependencies": [store.path(d) for d in deps],
        "pid": 4242,
        "pid_hostname": "elsewhere",
    }
    if run_id is not None:
        info["prefect"] = {"flow_run_id": run_id}
    store.put(key + ".info", json.dumps(info).encode())
    if status == "done":
        store.put(key, b"result")


def age_record(store: Store, record: dict, seconds: float) -> None:
    """Make the record's last write ``seconds`` old by the file system's clock."""
    path = store.path(runs.record_key(record["workflow"], record["run_id"]))
    past = time.time() - seconds
    os.utime(path, (past, past))


# ------------------------------------------------------------------------------------------------ keys
def test_run_keys_live_beside_the_jobs():
    assert runs.record_key("Baking", "0f8c2d3e-1") == "var/runs/Baking/0f8c2d3e-1/run.json"
    assert runs.part_key("Baking", "r1", "t1") == "var/runs/Baking/r1/parts/t1.json"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 200, None])
def test_a_run_id_that_could_escape_is_refused(bad):
    with pytest.raises(UnsafePathError, match="is not a run id: run ids are Prefect flow run ids"):
        runs.check_run_id(bad)


def test_a_workflow_with_a_slash_cannot_name_a_run_folder():
    with pytest.raises(UnsafePathError, match="cannot name a run folder: it is one path segment"):
        runs.run_dir("a/b", "r1")


# ------------------------------------------------------------------------------------------ parameters
def test_json_parameters_are_kept_as_they_are():
    plain, digests, why = runs.record_parameters({"n": 3, "name": "x", "xs": [1, 2.5, None], "m": {"a": True}})
    assert plain == {"n": 3, "name": "x", "xs": [1, 2.5, None], "m": {"a": True}}
    assert digests == {} and why is None


def test_a_parameter_that_is_not_json_is_kept_by_digest_and_the_run_is_not_resumable():
    plain, digests, why = runs.record_parameters({"n": 3, "when": dt.date(2026, 1, 2), "path": pathlib.PurePath("a")})
    assert plain == {"n": 3}
    assert digests["when"].startswith("datetime.date:") and len(digests["when"]) > 20
    assert digests["path"].startswith("pathlib.PurePosixPath:")
    assert why.startswith("parameter 'when' (datetime.date), 'path' (pathlib.PurePosixPath) are not plain JSON")
    assert "a resume could not pass them again; pass JSON values" in why


@pytest.mark.parametrize("value", [(1, 2), {1: "a"}, float("nan"), {"a": {1, 2}}, b"x"])
def test_values_that_do_not_come_back_from_json_as_themselves_are_not_plain(value):
    assert not runs.is_plain_json(value)


def test_the_run_lease_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.setenv(runs.LEASE_ENV, "5")
    assert runs.lease_seconds() == 5.0
    monkeypatch.setenv(runs.LEASE_ENV, "0")
    with pytest.raises(InvalidInputError, match=r"SCOUT_PERSIST_RUN_LEASE='0' is not a number of seconds > 0"):
        runs.lease_seconds()
    monkeypatch.setenv(runs.FLUSH_ENV, "0")
    assert runs.flush_seconds() == 0.0
    monkeypatch.setenv(runs.FLUSH_ENV, "soon")
    with pytest.raises(InvalidInputError, match=r"SCOUT_PERSIST_RUN_FLUSH='soon' is not a number of seconds >= 0"):
        runs.flush_seconds()


# --------------------------------------------------------------------------------------------- judging
def test_a_running_record_past_its_lease_by_the_store_clock_is_crashed():
    record = make_record("r1", status="running", lease=10)
    status, reason = runs.judge(record, age=11.0)
    assert status == runs.CRASHED
    assert "last renewed 11.0s ago by the store's clock, past its lease of 10s" in reason
    assert runs.judge(record, age=9.0)[0] == runs.RUNNING


def test_without_a_store_age_only_the_observer_clock_can_tell():
    record = make_record("r1", status="running", lease=10)
    status, reason = runs.judge(record, age=None)
    assert status == runs.RUNNING and "cannot be judged" in reason
    status, reason = runs.judge(record, age=None, unchanged_for=12.0)
    assert status == runs.CRASHED and "not been renewed for 12.0s (watched here)" in reason


def test_a_writer_this_machine_sees_running_is_never_crashed():
    from scout_persist.process import Identity

    me = Identity.current()
    record = make_record(
        "r1",
        status="running",
        lease=1,
        host=me.host,
        pid=me.pid,
        identity={"boot_id": me.boot_id, "pidns": me.pidns, "start": me.start},
    )
    status, reason = runs.judge(record, age=1000.0)
    assert status == runs.RUNNING and "is running on this machine" in reason


def test_a_finished_record_keeps_its_status_whatever_its_age():
    assert runs.judge(make_record("r1", status="failed"), age=1e9) == ("failed", "")


# ------------------------------------------------------------------------------------------ listing
def test_runs_are_listed_newest_first_and_a_stale_running_one_is_crashed(store):
    now = time.time()
    for i, status in enumerate(["completed", "failed", "running", "running"]):
        runs.write_record(store, make_record(f"r{i}", status=status, start=now - 100 + i, lease=30))
    age_record(store, make_record("r2"), 120)  # r2 has not been renewed for 120 s (lease 30 s)
    listed = runs.list_runs(store)
    assert [r.run_id for r in listed] == ["r3", "r2", "r1", "r0"]
    assert [r.status for r in listed] == ["running", "crashed", "failed", "completed"]
    assert "past its lease of 30s" in listed[1].reason


def test_an_unreadable_record_is_skipped_and_described(store):
    runs.write_record(store, make_record("good"))
    store.put(runs.record_key("Demo", "bad"), b"{not json")
    problems: list[str] = []
    assert [r.run_id for r in runs.list_runs(store, problems=problems)] == ["good"]
    assert len(problems) == 1 and "var/runs/Demo/bad/run.json" in problems[0] and "is not JSON" in problems[0]


def test_find_run_takes_a_unique_start_of_an_id(store):
    runs.write_record(store, make_record("abc123"))
    runs.write_record(store, make_record("abd456", workflow="Other"))
    assert runs.find_run(store, "abc") == ("Demo", "abc123")
    assert runs.find_run(store, "Other/abd456") == ("Other", "abd456")
    with pytest.raises(InvalidInputError, match=r"run id 'ab' matches 2 runs \(.*\); give more of the id"):
        runs.find_run(store, "ab")
    with pytest.raises(
        KeyNotFound,
        match=r"no run 'zzz' in .*var/runs \(workflows with runs: Demo, Other\); "
        r"list runs with: scout-persist runs",
    ):
        runs.find_run(store, "zzz")


def test_job_of_names_the_tasks_a_run_has(store):
    jobs = [
        {"key": "var/jobs/Demo/a/x", "task": "a", "workflow": "Demo", "status": "done"},
        {"key": "var/jobs/Demo/b/1", "task": "b", "workflow": "Demo", "status": "done"},
        {"key": "var/jobs/Demo/b/2", "task": "b", "workflow": "Demo", "status": "done"},
    ]
    runs.write_record(store, make_record("r1", jobs=jobs))
    run = runs.load_run(store, "r1")
    assert runs.job_of(run, "a")["key"] == "var/jobs/Demo/a/x"
    assert runs.job_of(run, "b", name="2")["key"] == "var/jobs/Demo/b/2"
    with pytest.raises(KeyNotFound, match=r"run r1 \(flow Demo\) has no job of task 'c'; its tasks: a, b"):
        runs.job_of(run, "c")
    with pytest.raises(InvalidInputError, match=r"run r1 has 2 jobs of task 'b' \(1, 2\); choose one with name="):
        runs.job_of(run, "b")


def test_jobs_recorded_by_other_processes_are_merged_into_the_run(store):
    runs.write_record(store, make_record("r1", jobs=[{"key": "var/jobs/Demo/a/x", "task": "a", "status": "start"}]))
    runs.write_part(store, "Demo", "r1", "t1", {"key": "var/jobs/Demo/a/x", "task": "a", "status": "done"})
    runs.write_part(store, "Demo", "r1", "t2", {"key": "var/jobs/Demo/b/y", "task": "b", "status": "error"})
    runs.write_part(store, "Demo", "r1", "n1", {"kind": "artifact_used", "ref": "model:v1"})
    run = runs.read_run(store, "Demo", "r1")
    assert {j["key"]: j["status"] for j in run.jobs()} == {"var/jobs/Demo/a/x": "done", "var/jobs/Demo/b/y": "error"}
    assert run.artifacts()["used"] == [{"ref": "model:v1"}]


# ------------------------------------------------------------------------------------------ job content
SIG = {"signature_version": 3, "inputs": {"n": "d1"}, "dependencies": "d2", "code": "c1", "version": ""}
KEY = "var/jobs/Demo/a/x"


def test_a_jobs_content_is_its_result_checksum_and_a_digest_of_each_signature_part():
    content = runs.job_content(f"{KEY}=blake3:abc", KEY, SIG)
    assert content["result"] == "blake3:abc"
    assert set(content["signature"]) == set(runs.SIGNATURE_PARTS)
    assert runs.job_content(f"{KEY}=blake3:abc", KEY, dict(SIG)) == content  # a pure function of the values
    assert runs.job_content(f"{KEY}=legacy:2026-01-01", KEY, None) == {"result": "legacy:2026-01-01"}  # Ruby's job
    assert runs.content_changes(content, content) == []


def test_content_changes_name_the_result_and_each_signature_part_that_changed():
    then = runs.job_content(f"{KEY}=blake3:abc", KEY, SIG)
    now = runs.job_content(f"{KEY}=blake3:def", KEY, {**SIG, "code": "c2", "inputs": {"n": "d9"}})
    assert runs.content_changes(then, now) == [
        "result (checksum blake3:abc then, blake3:def now)",
        "signature inputs",
        "signature code",
    ]
    same_bytes = runs.job_content(f"{KEY}=blake3:abc", KEY, {**SIG, "version": "2"})
    assert runs.content_changes(then, same_bytes) == ["signature version"]  # recomputed, even to the same bytes
    # a side without a signature (a job Ruby wrote, or rewrote): the result alone decides
    assert runs.content_changes(then, runs.job_content(f"{KEY}=blake3:abc", KEY, None)) == []


def test_a_job_rewritten_after_its_run_is_named_with_what_changed(store):
    content = runs.job_content(f"{KEY}=blake3:abc", KEY, SIG)
    entry = {"key": KEY, "task": "a", "status": "done", "reused": False, runs.CONTENT: content}
    runs.write_record(store, make_record("r1", jobs=[entry]))
    run = runs.load_run(store, "r1")
    info = {"prefect": {"flow_run_id": "r2"}}
    assert runs.still_holds(run, entry, info, content) is None  # whoever wrote it last: the same content
    why = runs.still_holds(run, entry, info, runs.job_content(f"{KEY}=blake3:def", KEY, {**SIG, "code": "c2"}))
    assert why == (
        f"job {KEY!r} changed since run r1 computed it: its result (checksum blake3:abc then, blake3:def now), "
        "signature code"
    )
    assert "since run r1 reused it" in runs.still_holds(run, {**entry, "reused": True}, info, {"result": "x"})


def test_a_record_from_before_contents_vouches_only_for_jobs_its_run_wrote(store):
    entry = {"key": KEY, "task": "a", "status": "done", "reused": False}  # no content: an older record
    runs.write_record(store, make_record("r1", jobs=[entry]))
    run = runs.load_run(store, "r1")
    now = {"result": "blake3:abc"}
    assert runs.still_holds(run, entry, {"prefect": {"flow_run_id": "r1"}}, now) is None
    why = runs.still_holds(run, entry, {"prefect": {"flow_run_id": "r2"}}, now)
    assert why == (
        f"the record of run r1 predates job checksums (it was written by an older scout-persist), and job {KEY!r} "
        "cannot be shown to still hold that run's value: its .info names run r2 as its writer"
    )
    assert "names no recorded run as its writer" in runs.still_holds(run, entry, {}, now)  # Ruby's, or no run's
    assert runs.writer_run_of({"prefect": {"flow_run_id": "r1"}}) == "r1" and runs.writer_run_of({}) is None


# ------------------------------------------------------------------------------------------ pruning
def test_prune_removes_only_jobs_reachable_from_nothing_kept(store):
    """Old run r0 wrote a, b (b depends on shared s), p (pinned by the registry) and e (failed); new run r1 wrote s
    and reuses a; legacy job l (no run in its .info) is listed by r0 too."""
    now = time.time()
    j = "var/jobs/Demo"
    write_job(store, f"{j}/s/1", "r1")
    write_job(store, f"{j}/a/1", "r0")
    write_job(store, f"{j}/b/1", "r0", deps=[f"{j}/s/1"])
    write_job(store, f"{j}/b/2", "r0")
    write_job(store, f"{j}/p/1", "r0")
    write_job(store, f"{j}/e/1", None, status="error")
    write_job(store, f"{j}/l/1", None)
    old_jobs = [
        {"key": k, "task": k.split("/")[3], "status": "done"}
        for k in (f"{j}/a/1", f"{j}/b/1", f"{j}/b/2", f"{j}/p/1", f"{j}/e/1", f"{j}/l/1")
    ]
    runs.write_record(store, make_record("r0", start=now - 1000, jobs=old_jobs, pid=4242))
    runs.write_record(
        store,
        make_record(
            "r1",
            start=now - 10,
            jobs=[{"key": f"{j}/s/1", "task": "s"}],
            reused=[{"run_id": "r0", "task": "a", "job": f"{j}/a/1"}],
        ),
    )
    Registry(store).log_job("pinned", store.path(f"{j}/p/1"))
    plan = runs.plan_prune(store, keep_last=1)
    assert [r.run_id for r in plan.remove_runs] == ["r0"] and [r.run_id for r in plan.keep_runs] == ["r1"]
    assert plan.remove_jobs == [f"{j}/b/1", f"{j}/b/2", f"{j}/e/1"]
    assert plan.kept_jobs == {
        f"{j}/a/1": "reachable from a kept run",
        f"{j}/p/1": "reachable from a registry version",
        f"{j}/l/1": "not written by a recorded run (its .info names none)",
    }


def test_prune_never_removes_a_live_run(store):
    runs.write_record(store, make_record("r0", status="running", start=time.time() - 10 * 86400))
    plan = runs.plan_prune(store, older_than_days=1)
    assert plan.remove_runs == [] and [r.run_id for r in plan.keep_runs] == ["r0"]


def test_prune_needs_exactly_one_rule(store):
    with pytest.raises(InvalidInputError, match="exactly one of --keep-last N or --older-than DAYS"):
        runs.plan_prune(store)
    with pytest.raises(InvalidInputError, match="exactly one of"):
        runs.plan_prune(store, keep_last=1, older_than_days=1)
    with pytest.raises(InvalidInputError, match=r"--keep-last -1: keep a number of runs >= 0"):
        runs.plan_prune(store, keep_last=-1)


# -------------------------------------------------------------------------------------------- lineage
def test_a_version_logged_in_a_run_names_it_and_a_use_names_the_consumer(store, tmp_path):
    notes: list[tuple[str, dict]] = []
    current = runs.CurrentRun("run-1", "Demo", "Demo", store.url, note=lambda k, d: notes.append((k, d)))
    previous = runs.set_current_run_provider(lambda: current)
    try:
        src = tmp_path / "model.txt"
        src.write_text("weights")
        reg = Registry(store)
        logged = reg.log_artifact("model", str(src))
        assert logged.manifest["run"] == {"run_id": "run-1", "workflow": "Demo"}
        current.run_id = "run-2"
        again = reg.log_artifact("model", str(src))  # the same content: the same version, still noted
        assert again.version == logged.version
        used = reg.use_artifact("model:v0")
    finally:
        runs.set_current_run_provider(previous)
    assert notes == [
        ("artifact_logged", {"ref": "model:v0", "digest": logged.digest, "new": True}),
        ("artifact_logged", {"ref": "model:v0", "digest": logged.digest, "new": False}),
        ("artifact_used", {"ref": "model:v0", "digest": used.digest}),
    ]
    by = reg.used_by("model:v0")
    assert [(u["run_id"], u["workflow"], u["ref"]) for u in by] == [("run-2", "Demo", "model:v0")]
    reg.use_artifact("model:v0")  # outside a run: nothing recorded
    assert len(reg.used_by("model:v0")) == 1


def test_a_failing_provider_never_breaks_a_registry_read(store, tmp_path):
    def broken():
        raise RuntimeError("no context")

    previous = runs.set_current_run_provider(broken)
    try:
        src = tmp_path / "f.txt"
        src.write_text("x")
        Registry(store).log_artifact("thing", str(src))
        assert Registry(store).use_artifact("thing").version == "v0"
    finally:
        runs.set_current_run_provider(previous)
    assert "run" not in Registry(store).resolve("thing").manifest


def test_a_failing_lineage_note_warns_and_the_registry_call_succeeds(store, tmp_path, caplog):
    def note(kind, data):
        raise OSError("the run's store is down")

    previous = runs.set_current_run_provider(lambda: runs.CurrentRun("run-9", "Demo", "Demo", store.url, note=note))
    try:
        src = tmp_path / "f.txt"
        src.write_text("x")
        with caplog.at_level("WARNING"):
            assert Registry(store).log_artifact("thing", str(src)).version == "v0"
            assert Registry(store).use_artifact("thing").version == "v0"
    finally:
        runs.set_current_run_provider(previous)
    assert "artifact thing:v0: run run-9 could not record that it logged it (the run's store is down)" in caplog.text
    assert "artifact thing:v0: its use by run run-9 was not recorded (the run's store is down)" in caplog.text


def test_reading_records_that_are_not_runs_names_them(store):
    store.put(runs.record_key("Demo", "r1"), json.dumps({"format": "something-else"}).encode())
    with pytest.raises(
        InvalidInputError,
        match=r"run record '.*var/runs/Demo/r1/run.json' is not a "
        r"scout-persist-run/1 record",
    ):
        runs.read_run(store, "Demo", "r1")
    with pytest.raises(
        KeyNotFound,
        match=r"no run record '.*var/runs/Demo/r2/run.json'; list runs with: "
        r"scout-persist runs",
    ):
        runs.read_run(store, "Demo", "r2")
    with pytest.raises(InvalidInputError, match="empty run id; give a run id as printed by: scout-persist runs"):
        runs.find_run(store, " ")
    with pytest.raises(InvalidInputError, match=r"--older-than -2: give a number of days >= 0"):
        runs.plan_prune(store, older_than_days=-2)


def test_runs_on_s3_are_read_concurrently_and_listed_newest_first(s3_url):
    store = Store(s3_url)
    now = time.time()
    for i in range(12):
        runs.write_record(store, make_record(f"r{i:02d}", start=now - 100 + i))
    problems: list[str] = []
    listed = runs.list_runs(store, problems=problems)
    assert [r.run_id for r in listed] == [f"r{i:02d}" for i in reversed(range(12))] and problems == []


def test_a_listing_reads_what_precedes_the_jobs_and_the_whole_record_on_demand(store):
    jobs = [{"key": f"var/jobs/Demo/a/{i}", "task": "a", "status": "done" if i else "error"} for i in range(3)]
    record = make_record("r1", parameters={"x": 1, "jobs": [1, 2]}, note=',"jobs":[ in a string')
    record.pop("jobs")
    record["counts"] = {"done": 2, "error": 1}
    record["jobs"] = jobs  # last, after the counts: as the plug-in writes records
    runs.write_record(store, record)
    (run,) = runs.list_runs(store)
    assert run.whole is False and "jobs" not in run.record and run.record["parameters"] == {"x": 1, "jobs": [1, 2]}
    assert run.job_counts() == {"done": 2, "error": 1}
    assert [j["key"] for j in run.jobs()] == [j["key"] for j in jobs] and run.whole is True
    head, whole = runs.decode_head(runs.encode(make_record("r2")), "r2")  # jobs not last, no counts: read whole
    assert whole is True and head["jobs"] == []
