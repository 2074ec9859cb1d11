"""Errors, resume, damaged entries, signatures, Python values, async tasks and loud key failures."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from prefect import flow

from prefect_scout import ScoutInfoStorage, ScoutStorage, job_name, scout_task
from prefect_scout.storage import CacheMiss
from scout_persist import Job
from scout_persist.info import InfoFile
from scout_persist.store import Store


def note(name: str) -> None:
    with open(os.environ["BODY_LOG"], "a") as fh:
        fh.write(name + "\n")


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "bodies.log"
    monkeypatch.setenv("BODY_LOG", str(path))
    return lambda: path.read_text().split() if path.exists() else []


@scout_task(type="string")
def fragile(x: int = 1) -> str:
    note("fragile")
    if os.path.exists(os.environ["FRAGILE_FAIL"]):
        raise ValueError(f"planned failure for x={x}")
    return f"ok {x}"


@flow(name="Lifecycle")
def fragile_flow(x: int = 1):
    return fragile(x)


def _counted(n: int = 2) -> int:
    note("counted")
    return n * 10


counted = scout_task(_counted, type="integer", version="1", name="counted")
counted_v2 = scout_task(_counted, type="integer", version="2", name="counted")


@scout_task(ignore=("verbose",))
def python_value(n: int = 1, verbose: bool = False) -> dict:
    note("python_value")
    return {"n": n, "set": {1, 2, 3}, "bytes": b"\x00\xff"}


@flow(name="Lifecycle")
def counted_flow(n: int = 2, v2: bool = False):
    return (counted_v2 if v2 else counted)(n)


@flow(name="Lifecycle")
def python_flow(n: int = 1, verbose: bool = False):
    return python_value(n, verbose=verbose)


def test_error_job_then_retry(scout_root, log, tmp_path, monkeypatch):
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setenv("FRAGILE_FAIL", str(flag))
    state = fragile_flow(5, return_state=True)
    assert state.is_failed()
    job = Job(str(scout_root / "var/jobs/Lifecycle/fragile/Default_") + _hash_of(scout_root, "fragile"))
    assert job.status == "error"
    assert not os.path.exists(job.path)  # only .info remains, as in Ruby
    exc = job.exception
    assert exc.message == "planned failure for x=5"
    assert any("test_lifecycle.py" in line and "fragile" in line for line in exc.backtrace)
    assert job.info["messages"][-1] == "ValueError: planned failure for x=5"
    # Prefect's record of the failed run's exception (random key) never lands in var/jobs
    assert [p.name for p in (scout_root / "var/jobs").iterdir()] == ["Lifecycle"]
    assert list(job.info)[-4:] == ["exception", "end", "backtrace", "messages"]
    flag.unlink()
    assert fragile_flow(5) == "ok 5"  # the error job is retried, not reused
    assert log() == ["fragile", "fragile"]
    assert Job(job.path).status == "done"


def _hash_of(root, task):
    names = [p.name for p in (root / "var/jobs/Lifecycle" / task).iterdir() if p.name.endswith(".info")]
    assert len(names) == 1, names
    return names[0][len("Default_") : -len(".info")]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_start_job_of_dead_process_is_recomputed(scout_root, log):
    key = "var/jobs/Lifecycle/counted/Default_" + _first_run_hash(scout_root, log)
    info = InfoFile(Store(str(scout_root)), key)
    info.setup(task_name="counted", workflow="Lifecycle", type="integer", pid=_dead_pid())
    info.start()
    os.unlink(scout_root / key)  # killed before writing its result
    assert counted_flow(7) == 70
    assert log() == ["counted", "counted"]
    assert Job(str(scout_root / key)).status == "done"
    assert counted_flow(7) == 70  # and now done jobs are reused
    assert log() == ["counted", "counted"]


def _first_run_hash(root, log):
    assert counted_flow(7) == 70
    assert log() == ["counted"]
    return _hash_of(root, "counted")


def test_damaged_result_is_a_miss_not_a_failure(scout_root, log):
    key = "var/jobs/Lifecycle/counted/Default_" + _first_run_hash(scout_root, log)
    meta = ScoutInfoStorage()
    cache_key = key[len("var/jobs/") :]
    assert json.loads(meta.read_path(cache_key, _sync=True))["serializer"]["scout_type"] == "integer"
    (scout_root / key).write_bytes(b"99")  # same size, other bytes: the checksum tells
    with pytest.raises(CacheMiss, match="checksum"):
        meta.read_path(cache_key, _sync=True)
    (scout_root / key).write_bytes(b"7")  # truncated: the recorded size no longer matches
    with pytest.raises(CacheMiss, match="holds 1 bytes"):
        meta.read_path(cache_key, _sync=True)
    assert counted_flow(7) == 70
    assert log() == ["counted", "counted"]
    assert (scout_root / key).read_bytes() == b"70"


def test_version_bump_recomputes_and_says_why(scout_root, log):
    key = "var/jobs/Lifecycle/counted/Default_" + _first_run_hash(scout_root, log)
    assert counted_flow(7, v2=True) == 70
    assert log() == ["counted", "counted"]
    info = json.loads((scout_root / (key + ".info")).read_text())
    assert info["prefect"]["recomputed_because"] == ["version"]
    assert info["signature"]["version"] == "2"


def test_python_values_pickle_and_ignored_arguments(scout_root, log):
    first = python_flow(3)
    assert first["set"] == {1, 2, 3}
    assert python_flow(3, verbose=True) == first  # ignored argument: same job, a hit
    assert log() == ["python_value"]
    (path,) = [p for p in (scout_root / "var/jobs/Lifecycle/python_value").iterdir() if not p.name.endswith(".info")]
    job = Job(str(path))
    assert job.info["type"] == "binary" and job.info["payload"]["format"] == "pickle"
    assert job.load() == first


@scout_task(type="json")
async def async_echo(word: str = "hi") -> dict:
    note("async_echo")
    await asyncio.sleep(0)
    return {"word": word}


@flow(name="Lifecycle")
async def async_flow(word: str = "hi"):
    return await async_echo(word)


def test_async_task_uses_async_paths(scout_root, log):
    assert asyncio.run(async_flow("yo")) == {"word": "yo"}
    assert asyncio.run(async_flow("yo")) == {"word": "yo"}
    assert log() == ["async_echo"]
    (path,) = [p for p in (scout_root / "var/jobs/Lifecycle/async_echo").iterdir() if p.name.endswith(".json")]
    assert path.read_bytes() == b'{"word":"yo"}'


@flow(name="Lifecycle")
def escaping_flow():
    with job_name("../../escape"):
        return fragile(1)


def test_key_errors_fail_the_task_loudly(scout_root, log, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAGILE_FAIL", str(tmp_path / "never"))
    state = escaping_flow(return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=r"job name '\.\./\.\./escape'"):
        state.result()
    assert log() == []  # the body never ran uncached
    assert not (scout_root / "var").exists() or not any((scout_root / "var/jobs").rglob("*.info"))


def test_blocks_accept_sync_and_async_calls(scout_root):
    from prefect_scout import ScoutSerializer
    from scout_persist.errors import CorruptPayloadError, KeyNotFound, ScoutPersistError
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    storage, meta = ScoutStorage(), ScoutInfoStorage()
    assert storage._resolve_path("W/t/x") == storage._resolve_path(storage._resolve_path("W/t/x"))
    JobWriter(Store(str(scout_root)), "var/jobs/W/t/x", type="text").run(lambda: "abc")
    record = json.loads(meta.read_path("W/t/x", _sync=True))
    assert record["storage_key"] == "W/t/x" and record["serializer"]["scout_type"] == "text"
    # The result read hands the verified value over as a token the serializer redeems, once
    token = storage.read_path("W/t/x", _sync=True)
    assert ScoutSerializer().loads(token) == "abc"
    with pytest.raises(CorruptPayloadError, match="without passing the scout hit check"):
        ScoutSerializer().loads(token)
    assert ScoutSerializer().loads(asyncio.run(storage.aread_path("W/t/x"))) == "abc"
    assert json.loads(asyncio.run(meta.aread_path("W/t/x")))["storage_key"] == "W/t/x"
    # Writes through the blocks store nothing: the scout task wrapper commits jobs itself.
    for write in (
        lambda: storage.write_path("W/t/y", b"def", _sync=True),
        lambda: asyncio.run(storage.awrite_path("W/t/y", b"def")),
    ):
        with pytest.raises(ScoutPersistError, match="no scout task run of this process committed"):
            write()
    assert not (scout_root / "var/jobs/W/t/y").exists()
    with pytest.raises(KeyNotFound):
        meta.read_path("W/t/y", _sync=True)  # a result without .info is never a hit
    # Prefect's record of a failed run (a random key) is quietly not kept: the job's .info has the exception
    assert storage.write_path("0123456789abcdef", b"exception record", _sync=True) == "0123456789abcdef"
    assert not any(p.name == "0123456789abcdef" for p in scout_root.rglob("*"))


@flow(name="Lifecycle")
def options_flow(n: int = 2):
    with job_name("renamed"):
        return counted.with_options(retries=1, tags=["x"])(n)


def test_with_options_keeps_scout_behaviour(scout_root, log):
    assert options_flow(4) == 40
    (result,) = [p.name for p in (scout_root / "var/jobs/Lifecycle/counted").iterdir() if not p.name.endswith(".info")]
    assert result.startswith("renamed_")  # job_name still applies to a task rebuilt by with_options
    with pytest.raises(Exception, match="would break its Scout job key"):
        counted.with_options(cache_policy=None)


from prefect import task  # noqa: E402


@task
def plain_source(k: int) -> int:
    return k * 100


@flow(name="Lifecycle")
def mixed_flow(k: int = 1):
    return counted.submit(plain_source.submit(k)).result()


def test_plain_task_upstream_is_an_input_by_value(scout_root, log):
    assert mixed_flow(1) == 1000
    assert mixed_flow(2) == 2000  # another upstream value: another job, not a stale hit
    assert mixed_flow(1) == 1000
    assert log() == ["counted", "counted"]
    infos = sorted((scout_root / "var/jobs/Lifecycle/counted").glob("*.info"))
    assert len(infos) == 2
    assert sorted(json.loads(p.read_text())["inputs"] for p in infos) == [[100], [200]]
