"""Run records written by real flows: what a record holds, failed runs, resume (code checks, --force, --from),
``reuse``, registry lineage, jobs from a process pool, concurrent flows.

Flows are written to temporary modules (as scripts are) and resumed in this process through the CLI, which loads
them again from their recorded entrypoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from scout_persist import runs as core
from scout_persist.cli import main
from scout_persist.signature import code_identity, dependency_token
from scout_persist.store import Store

PIPELINE = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    OFFSET = {offset}

    def note(name):
        with open(os.environ["RUNS_LOG"], "a") as fh:
            fh.write(name + "\\n")

    @scout_task(type="json")
    def load(n: int) -> list:
        note("load")
        return list(range(n))

    @scout_task(type="json")
    def scale(xs: list, factor: int = 3) -> list:
        note("scale")
        return [x * factor for x in xs]

    @scout_task(type="integer")
    def total(xs: list) -> int:
        note("total")
        return sum(xs) + OFFSET

    @flow(name="{flow}")
    def pipeline(n: int = 5):
        return total(scale(load(n)))
"""


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def log(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "bodies.log"
    monkeypatch.setenv("RUNS_LOG", str(path))
    return path


@pytest.fixture
def write_flow(tmp_path):
    """Write a flow module and import it; the module is dropped from sys.modules afterwards (a resume in this
    process then loads it from its file, as a fresh process would)."""
    names: list[str] = []

    def write(template: str, name: str, **fields) -> tuple[Path, object]:
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(template.format(**fields)))
        names.append(name)
        return path, _load(path, name)

    yield write
    for name in names:
        sys.modules.pop(name, None)


def bodies(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def only_run(store: Store, workflow: str | None = None) -> core.Run:
    (run,) = core.list_runs(store, workflow)
    return core.read_run(store, run.workflow, run.run_id)


# ----------------------------------------------------------------------------------------------- records
def test_a_flow_run_is_recorded_with_its_code_parameters_and_jobs(scout_root, write_flow, log):
    from prefect_scout import run_recorder as plugin_runs

    path, mod = write_flow(PIPELINE, "runs_recorded", offset=1000, flow="Recorded")
    assert mod.pipeline(4) == 1018
    store = Store(str(scout_root))
    run = only_run(store)
    rec = run.record
    assert (run.workflow, run.status, rec["status"], rec["flow"]) == ("Recorded", "completed", "completed", "Recorded")
    assert rec["entrypoint"] == "runs_recorded:pipeline" and rec["source_file"] == str(path)
    assert rec["parameters"] == {"n": 4} and rec["resumable"] is True and rec["parameter_digests"] == {}
    assert rec["pid"] == os.getpid() and rec["end"] is not None and rec["task_runner"] == "ThreadPoolTaskRunner"
    code = rec["code"]
    assert code["flow"] == code_identity(mod.pipeline.fn)
    assert code["tasks"] == {f"Recorded#{t}": code_identity(getattr(mod, t).fn) for t in ("load", "scale", "total")}
    assert code["hash"] == plugin_runs.code_of(mod.pipeline)[2] == core.code_hash(code["flow"], code["tasks"])
    assert code["ran"] == code["tasks"]
    jobs = {j["task"]: j for j in run.jobs()}
    assert set(jobs) == {"load", "scale", "total"}
    assert all(j["status"] == "done" and j["reused"] is False and j["seconds"] >= 0 for j in jobs.values())
    assert jobs["scale"]["dependencies"] == [jobs["load"]["key"]]
    assert jobs["total"]["dependencies"] == [jobs["scale"]["key"]]
    assert all(store.exists(j["key"] + ".info") for j in jobs.values())

    assert mod.pipeline(4) == 1018  # a second run: a second record, every job reused
    assert bodies(log) == ["load", "scale", "total"]
    newest, first = core.list_runs(store)
    assert first.run_id == run.run_id and newest.run_id != run.run_id
    again = core.read_run(store, newest.workflow, newest.run_id)
    assert [(j["task"], j["status"], j["reused"]) for j in again.jobs()] == [
        ("load", "done", True),
        ("scale", "done", True),
        ("total", "done", True),
    ]


FAILING = """
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="json")
    def load(n: int) -> list:
        return list(range(n))

    @scout_task(type="integer")
    def check(xs: list) -> int:
        raise ValueError(f"bad input {{len(xs)}}")

    @flow(name="Failing")
    def failing(n: int = 3):
        return check(load(n))
"""


def test_a_failed_flow_is_recorded_failed_with_its_failed_job(scout_root, write_flow):
    _, mod = write_flow(FAILING, "runs_failing")
    state = mod.failing(3, return_state=True)
    assert state.is_failed()
    run = only_run(Store(str(scout_root)))
    assert run.status == "failed" and "bad input 3" in run.record["error"]
    jobs = {j["task"]: j for j in run.jobs()}
    assert jobs["load"]["status"] == "done"
    assert jobs["check"]["status"] == "error" and jobs["check"]["error"] == "ValueError: bad input 3"


DATED = """
    import datetime
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="string")
    def stamp(day: str) -> str:
        return "stamped " + day

    @flow(name="Dated")
    def dated(when: datetime.date, label: str = "x"):
        return stamp(str(when) + label)
"""


def test_a_parameter_that_is_not_json_makes_the_run_not_resumable_and_says_so(scout_root, write_flow, capsys):
    import datetime

    _, mod = write_flow(DATED, "runs_dated")
    assert mod.dated(datetime.date(2026, 3, 4)) == "stamped 2026-03-04x"
    run = only_run(Store(str(scout_root)))
    assert run.record["parameters"] == {"label": "x"}
    assert run.record["parameter_digests"]["when"].startswith("datetime.date:")
    assert run.record["resumable"] is False
    code, _, err = cli(capsys, "resume", run.run_id)
    assert code == 2
    assert (
        f"run {run.run_id} cannot be resumed: parameter 'when' (datetime.date) is not plain JSON, so only its "
        "digest is recorded"
    ) in err
    code, out, _ = cli(capsys, "runs", "show", run.run_id)
    assert "  resumable   no: parameter 'when' (datetime.date) is not plain JSON" in out


# ------------------------------------------------------------------------------------------------ resume
def test_resume_refuses_changed_code_and_force_runs_it(scout_root, write_flow, log, capsys):
    path, mod = write_flow(PIPELINE, "runs_edited", offset=1000, flow="Edited")
    assert mod.pipeline(3) == 1009
    store = Store(str(scout_root))
    old = only_run(store)
    sys.modules.pop("runs_edited")
    path.write_text(textwrap.dedent(PIPELINE.format(offset=2000, flow="Edited")))  # total's module constant

    code, _, err = cli(capsys, "resume", old.run_id)
    assert code == 2
    assert (
        f"run {old.run_id} of flow Edited was made by other code: the scout task Edited#total changed (code "
        f"hash {old.record['code']['hash'][:12]} recorded,"
    ) in err
    assert "Resume with --force to run the current code" in err
    assert bodies(log) == ["load", "scale", "total"]
    assert len(core.list_runs(store)) == 1

    code, out, err = cli(capsys, "resume", old.run_id[:8], "--force")
    assert code == 0, err
    assert "resume --force: the scout task Edited#total changed" in err
    assert bodies(log) == ["load", "scale", "total", "total"]  # only the changed task ran again
    new = next(r for r in core.list_runs(store) if r.run_id != old.run_id)
    assert f"run {new.run_id} resumed run {old.run_id}: Completed" in out
    new = core.read_run(store, new.workflow, new.run_id)
    assert new.record["resumed_from"] == {"workflow": "Edited", "run_id": old.run_id, "from_task": None}
    assert new.record["parameters"] == {"n": 3} and new.record["code"]["hash"] != old.record["code"]["hash"]
    assert {j["task"]: j["reused"] for j in new.jobs()} == {"load": True, "scale": True, "total": False}
    assert [m["run_id"] for m in core.markers(store, "Edited", old.run_id, core.RESUMED_BY)] == [new.run_id]
    assert Store(str(scout_root)).exists(f"{old.dir}/resume.lock") is False  # the claim was released


def test_resume_from_a_task_recomputes_it_and_everything_downstream(scout_root, write_flow, log, capsys):
    _, mod = write_flow(PIPELINE, "runs_from", offset=0, flow="From")
    assert mod.pipeline(4) == 18
    store = Store(str(scout_root))
    old = only_run(store)
    sys.modules.pop("runs_from")
    code, _, err = cli(capsys, "resume", old.run_id, "--from", "nosuch")
    assert code == 2
    assert f"--from 'nosuch': run {old.run_id} has no job of that task; its tasks: load, scale, total" in err
    code, out, err = cli(capsys, "resume", old.run_id, "--from", "scale")
    assert code == 0, err
    removed = [line.split()[1] for line in out.splitlines() if line.startswith("removed ")]
    jobs = {j["task"]: j["key"] for j in old.jobs()}
    assert removed == sorted([jobs["scale"], jobs["total"]])
    assert bodies(log) == ["load", "scale", "total", "scale", "total"]
    new = next(r for r in core.list_runs(store) if r.run_id != old.run_id)
    assert new.record["resumed_from"]["from_task"] == "scale"


def test_resume_of_a_completed_run_reuses_every_job(scout_root, write_flow, log, capsys):
    _, mod = write_flow(PIPELINE, "runs_again", offset=0, flow="Again")
    assert mod.pipeline(2) == 3
    old = only_run(Store(str(scout_root)))
    sys.modules.pop("runs_again")
    code, _, err = cli(capsys, "resume", old.run_id)
    assert code == 0, err
    assert bodies(log) == ["load", "scale", "total"]


# ------------------------------------------------------------------------------------------------- reuse
CONSUMER = """
    import os
    from prefect import flow
    from prefect_scout import reuse, scout_task

    @scout_task(type="integer")
    def count(xs: list) -> int:
        with open(os.environ["RUNS_LOG"], "a") as fh:
            fh.write("count\\n")
        return len(xs) * 100

    @flow(name="Consumer")
    def consumer(run_id: str, task: str = "load"):
        return count(reuse(run=run_id, task=task))
"""


def test_reuse_returns_a_job_of_an_earlier_run_as_a_step_dependency(scout_root, write_flow, log, capsys):
    from prefect_scout import ReuseError, reuse as reuse_outside_a_flow

    _, producer = write_flow(PIPELINE, "runs_producer", offset=0, flow="Producer")
    assert producer.pipeline(7) == 63
    store = Store(str(scout_root))
    source = only_run(store, "Producer")
    load_key = next(j["key"] for j in source.jobs() if j["task"] == "load")
    _, consumer = write_flow(CONSUMER, "runs_consumer")
    assert consumer.consumer(source.run_id) == 700
    assert bodies(log) == ["load", "scale", "total", "count"]  # reused, not recomputed
    run = only_run(store, "Consumer")
    (count_job,) = run.jobs()  # the reused job is not one of the consumer's own jobs
    assert count_job["task"] == "count" and count_job["dependencies"] == [load_key]
    info = json.loads((scout_root / (count_job["key"] + ".info")).read_text())
    assert info["dependencies"] == [str(scout_root / load_key)]  # Scout's Step: dependency, as prov shows it
    assert info["inputs"] == [] and "xs" not in info["input_names"]
    assert run.reused() == [{"run_id": source.run_id, "workflow": "Producer", "task": "load", "job": load_key}]
    marks = core.markers(store, "Producer", source.run_id, core.REUSED_BY)
    assert [(m["run_id"], m["task"]) for m in marks] == [(run.run_id, "load")]
    code, out, _ = cli(capsys, "runs", "show", source.run_id)
    assert f"  reused by   run {run.run_id} (load)" in out

    assert reuse_outside_a_flow(run=source.run_id, task="load") == list(range(7))  # verified value, no lineage
    with pytest.raises(
        ReuseError,
        match=r"reuse\(run='nope', task='load'\): no run 'nope' in .*var/runs "
        r"\(workflows with runs: Consumer, Producer\)",
    ):
        consumer.consumer("nope")
    with pytest.raises(
        ReuseError,
        match=rf"reuse\(run='{source.run_id}', task='bake'\): run {source.run_id} "
        r"\(flow Producer\) has no job of task 'bake'; its tasks: load, scale, total",
    ):
        consumer.consumer(source.run_id, "bake")


EDITED_LOAD = PIPELINE.replace("return list(range(n))", "return list(range(1, n + 1))")


def _job(run: core.Run, task: str) -> dict:
    return next(j for j in run.jobs() if j["task"] == task)


def _runs_of(store: Store, workflow: str) -> list[core.Run]:
    """Oldest first, read whole."""
    return [core.read_run(store, r.workflow, r.run_id) for r in reversed(core.list_runs(store, workflow))]


def test_reuse_refuses_a_job_a_later_run_rewrote_and_names_what_changed(scout_root, write_flow, log):
    from prefect_scout import ReuseError, reuse as reuse_outside_a_flow

    _, first = write_flow(PIPELINE, "runs_rewritten", offset=0, flow="Rewritten")
    assert first.pipeline(4) == 18
    store = Store(str(scout_root))
    (r1,) = _runs_of(store, "Rewritten")
    load = _job(r1, "load")
    info = json.loads((scout_root / (load["key"] + ".info")).read_text())
    assert load["content"]["result"] == dependency_token(load["key"], info).rpartition("=")[2]  # what it held
    assert set(load["content"]["signature"]) == set(core.SIGNATURE_PARTS)
    assert all("content" in j for j in r1.jobs())
    _, consumer = write_flow(CONSUMER, "runs_rewritten_consumer")
    assert consumer.consumer(r1.run_id) == 400

    sys.modules.pop("runs_rewritten")
    _, second = write_flow(EDITED_LOAD, "runs_rewritten", offset=0, flow="Rewritten")  # the module, edited
    assert second.pipeline(4) == 30  # load's code changed: its job (same path) is rewritten by the second run
    r1, r2 = _runs_of(store, "Rewritten")
    assert _job(r2, "load")["key"] == load["key"] and _job(r2, "load")["reused"] is False
    for attempt in (lambda: consumer.consumer(r1.run_id), lambda: reuse_outside_a_flow(run=r1.run_id, task="load")):
        with pytest.raises(ReuseError) as err:
            attempt()
        message = str(err.value)
        assert f"reuse(run='{r1.run_id}', task='load'): job '{load['key']}' changed since run {r1.run_id} " in message
        assert "computed it: its result (checksum r:" in message and "signature code" in message
        assert f"scout-persist resume {r1.run_id}" in message
        assert f"reuse the run that wrote the job now (reuse(run='{r2.run_id}', task='load'))" in message
    assert reuse_outside_a_flow(run=r2.run_id, task="load") == [1, 2, 3, 4]  # the newer run's own value
    assert consumer.consumer(r2.run_id) == 400
    assert bodies(log).count("count") == 2  # the refused reuses computed nothing


def test_reuse_of_a_record_from_before_contents_trusts_only_jobs_its_run_wrote(scout_root, write_flow, log):
    from prefect_scout import ReuseError, reuse as reuse_outside_a_flow

    _, first = write_flow(PIPELINE, "runs_old_record", offset=0, flow="OldRecord")
    assert first.pipeline(3) == 9
    store = Store(str(scout_root))
    (r1,) = _runs_of(store, "OldRecord")
    record = json.loads(store.get(r1.key))
    for job in record["jobs"]:
        del job["content"]  # as an older scout-persist wrote it
    store.put(r1.key, json.dumps(record).encode())
    assert reuse_outside_a_flow(run=r1.run_id, task="load") == [0, 1, 2]  # its .info names r1: r1's value
    sys.modules.pop("runs_old_record")
    _, second = write_flow(EDITED_LOAD, "runs_old_record", offset=0, flow="OldRecord")
    assert second.pipeline(3) == 18
    _, r2 = _runs_of(store, "OldRecord")
    with pytest.raises(ReuseError) as err:
        reuse_outside_a_flow(run=r1.run_id, task="load")
    assert f"the record of run {r1.run_id} predates job checksums" in str(err.value)
    assert f"its .info names run {r2.run_id} as its writer" in str(err.value)
    assert f"reuse(run='{r2.run_id}', task='load')" in str(err.value)


def test_reuse_refuses_a_job_rewritten_between_its_check_and_its_hit(scout_root, write_flow, log, monkeypatch):
    from prefect_scout import ReuseError, reusing
    from scout_persist.checksums import checksum

    _, producer = write_flow(PIPELINE, "runs_raced", offset=0, flow="Raced")
    assert producer.pipeline(2) == 3
    store = Store(str(scout_root))
    (run,) = _runs_of(store, "Raced")
    key = _job(run, "load")["key"]
    checked = reusing._require_unchanged

    def check_then_rewrite(*args, **kwargs):
        checked(*args, **kwargs)  # passes; then another writer commits a new value before the hit check reads it
        data = b"[7,7]"
        info = json.loads(store.get(key + ".info"))
        info["payload"] = {**info["payload"], "stored_size": len(data), "checksum": checksum(data)}
        store.put(key, data)
        store.put(key + ".info", json.dumps(info).encode())

    monkeypatch.setattr(reusing, "_require_unchanged", check_then_rewrite)
    _, consumer = write_flow(CONSUMER, "runs_raced_consumer")
    with pytest.raises(ReuseError, match=r"was rewritten while it was being reused \(checksum r:\w+ recorded"):
        consumer.consumer(run.run_id)
    assert "count" not in bodies(log)


# ------------------------------------------------------------------------------------------------ lineage
LINEAGE = """
    from prefect import flow
    from prefect_scout import scout_task
    from scout_persist.registry import log_artifact, use_artifact

    @scout_task(type="string")
    def weights(seed: int) -> str:
        return "w" * seed

    @flow(name="Trainer")
    def train(seed: int, path: str):
        value = weights(seed)
        with open(path, "w") as fh:
            fh.write(value)
        return log_artifact("model", path).ref

    @flow(name="Scorer")
    def score(seed: int):
        weights(seed)
        return use_artifact("model:latest").read("model.txt").decode()
"""


def test_a_registry_version_and_the_runs_that_made_and_used_it_name_each_other(
    scout_root, write_flow, capsys, tmp_path
):
    _, mod = write_flow(LINEAGE, "runs_lineage")
    model = tmp_path / "model.txt"
    assert mod.train(3, str(model)) == "model:v0"
    assert mod.score(4) == "www"
    store = Store(str(scout_root))
    trainer, scorer = only_run(store, "Trainer"), only_run(store, "Scorer")
    assert trainer.artifacts()["logged"][0]["ref"] == "model:v0" and trainer.artifacts()["logged"][0]["new"] is True
    assert [a["ref"] for a in scorer.artifacts()["used"]] == ["model:v0"]
    code, out, _ = cli(capsys, "artifacts", "show", "model:v0", "--json")
    shown = json.loads(out)
    assert shown["produced_by_run"] == {"run_id": trainer.run_id, "workflow": "Trainer"}
    assert [u["run_id"] for u in shown["used_by_runs"]] == [scorer.run_id]
    code, out, _ = cli(capsys, "artifacts", "show", "model:v0")
    assert f"  run      logged by run {trainer.run_id} (Trainer)" in out
    assert f"  used by  run {scorer.run_id} (Scorer)" in out
    code, out, _ = cli(capsys, "runs", "show", scorer.run_id)
    assert "  used        artifact model:v0" in out


# ---------------------------------------------------------------------------------------- other processes
POOL = """
    from prefect import flow
    from prefect.task_runners import ProcessPoolTaskRunner
    from prefect_scout import scout_task

    @scout_task(type="integer")
    def square(i: int) -> int:
        return i * i + 1000

    @flow(name="Pool", task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pool(n: int = 3):
        return [f.result() for f in [square.submit(i) for i in range(n)]]
"""


@pytest.mark.timeout(240)
def test_jobs_finished_in_a_process_pool_are_recorded_one_file_each(scout_root, write_flow, capsys):
    import cloudpickle

    _, mod = write_flow(POOL, "runs_pool")
    cloudpickle.register_pickle_by_value(mod)
    assert mod.pool(3) == [1000, 1001, 1004]
    store = Store(str(scout_root))
    run = only_run(store)
    assert run.record["task_runner"] == "ProcessPoolTaskRunner"
    parts = store.ls(f"{run.dir}/parts")
    assert len(parts) == 3  # one entry per task, written by the worker
    assert sorted((j["task"], j["status"]) for j in run.jobs()) == [("square", "done")] * 3
    for job in run.jobs():  # a worker records what its job holds too
        info = json.loads(store.get(job["key"] + ".info"))
        assert job["content"]["result"] == dependency_token(job["key"], info).rpartition("=")[2]
    code, out, _ = cli(capsys, "runs", "--json")
    assert [len(r["jobs"]) for r in json.loads(out)] == [3]


MANY = """
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="integer")
    def item(i: int, tag: str) -> int:
        return i + 1000

    @flow(name="{flow}")
    def many(tag: str, n: int = 12):
        return [f.result() for f in [item.submit(i, tag) for i in range(n)]]
"""


def test_concurrent_flows_each_record_all_their_jobs(scout_root, write_flow):
    mods = [write_flow(MANY, f"runs_many_{k}", flow=f"Many{k}")[1] for k in range(2)]
    results: dict[int, object] = {}

    def go(k: int) -> None:
        results[k] = mods[k].many(f"t{k}")

    threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {0: list(range(1000, 1012)), 1: list(range(1000, 1012))}
    store = Store(str(scout_root))
    listed = core.list_runs(store)
    assert sorted(r.workflow for r in listed) == ["Many0", "Many1"]
    for r in listed:
        assert r.status == "completed" and r.job_counts() == {"done": 12}, r.record


# ------------------------------------------------------------------------------------------------ the docs
def test_the_runs_example_of_the_docs_runs(scout_root, capsys):
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "runs_demo.py"
    module = _load(example, "runs_demo_example")
    try:
        module.main()
    finally:
        sys.modules.pop("runs_demo_example", None)
    out = capsys.readouterr().out
    assert out.count("(measure ran for n=6)") == 1  # the resume and the report reuse it
    assert "first run: 1055" in out and "a report that reuses the first run's 'measure' job: 56" in out
    assert "resumed run" in out and ": Completed" in out
    assert "  reused by   run " in out
    assert "kept job     var/jobs/Measurements/measure/" in out and "reachable from a kept run" in out
    listed = core.list_runs(Store(str(scout_root)))
    assert sorted(r.flow for r in listed) == ["Measurements", "Report"]


# ------------------------------------------------------------------------------------------- failure paths
def test_resume_says_when_the_flow_no_longer_loads(scout_root, write_flow, log, capsys):
    path, mod = write_flow(PIPELINE, "runs_moved", offset=0, flow="Moved")
    assert mod.pipeline(2) == 3
    run = only_run(Store(str(scout_root)))
    sys.modules.pop("runs_moved")
    path.rename(path.with_name("elsewhere.py"))
    code, _, err = cli(capsys, "resume", run.run_id)
    assert code == 2
    assert (
        f"run {run.run_id} cannot be resumed: its flow 'Moved' does not load from its entrypoint (runs_moved:pipeline: "
    ) in err
    assert f"{path}:pipeline: the file does not exist); run resume from the folder the flow ran in" in err


def test_reuse_of_a_job_that_is_gone_or_damaged_says_to_resume_its_run(scout_root, write_flow, log):
    from prefect_scout import ReuseError

    _, producer = write_flow(PIPELINE, "runs_damaged", offset=0, flow="Damaged")
    assert producer.pipeline(3) == 9
    store = Store(str(scout_root))
    source = only_run(store, "Damaged")
    load_key = next(j["key"] for j in source.jobs() if j["task"] == "load")
    _, consumer = write_flow(CONSUMER, "runs_damaged_consumer")
    store.put(load_key, store.get(load_key) + b" ")  # its bytes no longer match their checksum
    with pytest.raises(
        ReuseError,
        match=rf"reuse\(run='{source.run_id}', task='load'\): job '{load_key}' no longer "
        r"passes the hit check .* cannot be reused; resume that run to recompute it",
    ):
        consumer.consumer(source.run_id)
    assert json.loads(store.get(load_key + ".info"))["status"] == "done"  # reuse never writes the other run's job
    store.delete(load_key + ".info")
    with pytest.raises(
        ReuseError,
        match=rf"job '.*{load_key}' of that run is gone \(cleaned or pruned\); resume the "
        rf"run to recompute it \(scout-persist resume {source.run_id}\)",
    ):
        consumer.consumer(source.run_id)
    assert "count" not in bodies(log)


def test_a_record_that_cannot_be_written_warns_and_the_flow_goes_on(scout_root, write_flow, log, caplog):
    (scout_root / "var").mkdir()
    (scout_root / "var" / "runs").write_text("a file where the runs folder should be")
    _, mod = write_flow(PIPELINE, "runs_unwritable", offset=0, flow="Unwritable")
    with caplog.at_level("WARNING", logger="prefect_scout"):
        assert mod.pipeline(2) == 3
    assert "scout-persist: the run record of flow run" in caplog.text
    assert "could not be written to" in caplog.text and "the flow goes on, the record may lag" in caplog.text


def test_a_flow_defined_inside_a_function_is_recorded_not_resumable(scout_root):
    from prefect import flow

    from prefect_scout import scout_task

    @scout_task(type="integer", workflow="Inner")
    def inner_task(x: int) -> int:
        return x + 1000

    @flow(name="Inner")
    def inner_flow(x: int = 1):
        return inner_task(x)

    assert inner_flow(2) == 1002
    run = only_run(Store(str(scout_root)))
    assert run.record["resumable"] is False and run.record["entrypoint"] is None
    assert (
        "is defined inside another function, so no entrypoint can load it; define the flow at module level"
        in run.record["not_resumable"]
    )


ASYNC = """
    import asyncio
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="integer")
    async def slow_square(i: int) -> int:
        await asyncio.sleep(0.01)
        return i * i + 1000

    @flow(name="Async")
    async def async_flow(n: int = 3):
        return [await slow_square(i) for i in range(n)]
"""


def test_an_async_flow_is_recorded_like_a_sync_one(scout_root, write_flow):
    import asyncio

    _, mod = write_flow(ASYNC, "runs_async")
    assert asyncio.run(mod.async_flow(3)) == [1000, 1001, 1004]
    run = only_run(Store(str(scout_root)))
    assert run.status == "completed" and run.record["parameters"] == {"n": 3}
    assert sorted((j["task"], j["status"], j["reused"]) for j in run.jobs()) == [("slow_square", "done", False)] * 3
