"""The trust contract, tried the way users break it: a cached value is what this code computes now, or a miss.

Runs the same checks under the thread runner, a ProcessPoolTaskRunner and Dask (a loopback LocalCluster of worker
processes): an edited task body, first run vs cached run of every Scout type, tampered and damaged results.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from scout_persist.job import Job
from test_pickle_key import BROKEN as BROKEN_KEYS

RUNNERS = ("thread", "process", "dask")


@pytest.fixture(scope="module")
def dask_address():
    """One loopback Dask cluster (worker processes) for the module: clusters take seconds to start."""
    pytest.importorskip("prefect_dask")
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=1, processes=True, threads_per_worker=2, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    yield cluster.scheduler_address
    cluster.close()


def _runner(kind: str, dask_address: str | None):
    if kind == "thread":
        return ThreadPoolTaskRunner(max_workers=2)
    if kind == "process":
        return ProcessPoolTaskRunner(max_workers=1)
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    # The workers started with the environment of the first test: give them this test's store and log.
    env = {name: os.environ[name] for name in WORKER_ENV if name in os.environ}
    with Client(dask_address) as client:
        client.run(lambda: os.environ.update(env))
    return DaskTaskRunner(address=dask_address)


WORKER_ENV = ("SCOUT_PERSIST_URL", "TRUST_LOG", "SCOUT_PERSIST_HMAC_KEY", "SCOUT_PERSIST_COMPRESSION")


@pytest.fixture
def runner_for(request):
    def make(kind: str):
        return _runner(kind, request.getfixturevalue("dask_address") if kind == "dask" else None)

    return make


def _load_module(path: Path, name: str):
    """Import ``path`` as module ``name`` (a fresh module object each time), pickled by value to workers, as a
    script's or notebook's functions are."""
    import cloudpickle

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


EDITED = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    def _note():
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write("scale\\n")

    @scout_task(type="integer", workflow="Edit")
    def scale(x: int) -> int:
        _note()
        return x * {factor}

    @flow(name="Edit")
    def edit_flow(x: int = 3):
        return scale.submit(x).result()
"""


def _ran(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.timeout(240)
def test_an_edited_task_body_recomputes_under_every_runner(kind, runner_for, scout_root, tmp_path, monkeypatch):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "edited_tasks.py"
    name = f"edited_tasks_{kind}"

    def run(factor: int, runner_kind: str) -> int:
        source.write_text(textwrap.dedent(EDITED.format(factor=factor)))
        module = _load_module(source, name)
        return module.edit_flow.with_options(task_runner=runner_for(runner_kind))(3)

    assert run(7, kind) == 21 and _ran(log) == 1
    assert run(7, kind) == 21 and _ran(log) == 1  # cached
    assert run(9, kind) == 27 and _ran(log) == 2  # the constant changed: recomputed, never the old value
    other = "thread" if kind != "thread" else "process"
    assert run(9, other) == 27 and _ran(log) == 2  # another runner computes the same code identity: cached
    (info_path,) = (scout_root / "var/jobs/Edit/scale").glob("*.info")
    info = json.loads(info_path.read_text())
    assert info["prefect"]["recomputed_because"] == ["code: scale"]  # what changed, named


HELPER = """
    FACTOR = {factor}

    def scale_by(x):
        return x * FACTOR
"""
USES_HELPER = """
    import os
    from prefect import flow
    from prefect_scout import scout_task
    import {helpers} as helpers

    @scout_task(type="integer", workflow="EditHelper")
    def scaled(x: int) -> int:
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write("scaled\\n")
        return helpers.scale_by(x)

    @flow(name="EditHelper")
    def helper_flow(x: int = 3):
        return scaled.submit(x).result()
"""


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.timeout(240)
def test_an_edited_helper_in_another_module_recomputes_under_every_runner(
    kind, runner_for, scout_root, tmp_path, monkeypatch
):
    """The task's code is unchanged; the helper it calls, in the user's other module, is edited."""
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    helpers, tasks = f"edited_helpers_{kind}", f"uses_helper_{kind}"

    def run(factor: int) -> int:
        (tmp_path / f"{helpers}.py").write_text(textwrap.dedent(HELPER.format(factor=factor)))
        (tmp_path / f"{tasks}.py").write_text(textwrap.dedent(USES_HELPER.format(helpers=helpers)))
        _load_module(tmp_path / f"{helpers}.py", helpers)
        module = _load_module(tmp_path / f"{tasks}.py", tasks)
        return module.helper_flow.with_options(task_runner=runner_for(kind))(3)

    assert run(7) == 21 and _ran(log) == 1
    assert run(7) == 21 and _ran(log) == 1  # cached
    assert run(9) == 27 and _ran(log) == 2  # the helper changed: recomputed, never the old value


CONTRACT = """
    import json, os
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="binary", workflow="Contract")
    def raw_bytes() -> bytes:
        return bytes(range(256))

    @scout_task(type="string", workflow="Contract")
    def nothing() -> str:
        return None

    @scout_task(type="text", workflow="Contract")
    def padded() -> str:
        return "  padded  \\n"

    @scout_task(type="float", workflow="Contract")
    def whole() -> float:
        return 3

    @scout_task(type="json", workflow="Contract")
    def pairs() -> dict:
        return {"pair": (1, 2), "total": 992152.18}

    @scout_task(type="array", workflow="Contract")
    def words() -> list:
        return ("one", "two")

    @scout_task(workflow="Contract")
    def python_value() -> dict:
        return {"set": {1, 2}, "complex": 1 + 2j}

    @scout_task(workflow="Contract")
    def record(**values) -> int:
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write(json.dumps({k: [repr(v), type(v).__name__] for k, v in sorted(values.items())}) + "\\n")
        return len(values)

    @flow(name="Contract")
    def contract_flow():
        made = {f.__name__: f.submit() for f in (raw_bytes, nothing, padded, whole, pairs, words, python_value)}
        return record.submit(**made).result()
"""


@pytest.mark.parametrize("kind", RUNNERS)
@pytest.mark.timeout(240)
def test_first_run_and_cached_run_hand_on_equal_values(kind, runner_for, scout_root, tmp_path, monkeypatch):
    log = tmp_path / "seen.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "contract_tasks.py"
    source.write_text(textwrap.dedent(CONTRACT))
    module = _load_module(source, f"contract_tasks_{kind}")
    contract = module.contract_flow.with_options(task_runner=runner_for(kind))
    assert contract() == 7
    (record_info,) = (scout_root / "var/jobs/Contract/record").glob("*.info")
    record_info.unlink()  # the consumer runs again; every producer is a cache hit
    assert contract() == 7
    first, cached = [json.loads(line) for line in log.read_text().splitlines()]
    assert first == cached
    assert first["raw_bytes"] == [repr(bytes(range(256))), "bytes"]  # not 257 bytes
    assert first["nothing"] == ["None", "NoneType"]
    assert first["padded"] == [repr("  padded  \n"), "str"]
    assert first["whole"] == ["3.0", "float"]
    assert first["pairs"] == [repr({"pair": [1, 2], "total": 992152.18}), "dict"]
    assert first["words"] == [repr(["one", "two"]), "list"]
    (nothing_dir,) = [scout_root / "var/jobs/Contract/nothing"]
    assert [p.name.endswith(".info") for p in nothing_dir.iterdir()] == [True]  # None: no result file, as Ruby


REFUSED = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="{scout_type}", workflow="Refused")
    def produce():
        return {value}

    @scout_task(type="string", workflow="Refused")
    def consume(x) -> str:
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write("consume\\n")
        return "consumed"

    @flow(name="Refused")
    def refused_flow():
        made = produce.submit()
        consume.submit(made).wait()
        return made.result()
"""


@pytest.mark.parametrize(
    "scout_type, value, message",
    [
        ("integer", '"not a number"', r"Scout type 'integer'"),
        ("array", "[1, 2, 3]", r"Scout type 'array'.*type='json'"),
        ("string", '"  padded  "', r"type='text'"),
        ("json", "{1, 2}", r"Scout type 'json'"),
        ("pickle", "lambda: 1", r"cannot be pickled"),
    ],
)
def test_a_value_that_cannot_be_stored_fails_the_task_loudly(
    scout_type, value, message, scout_root, tmp_path, monkeypatch
):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "refused_tasks.py"
    source.write_text(textwrap.dedent(REFUSED.format(scout_type=scout_type, value=value)))
    module = _load_module(source, f"refused_{scout_type}")
    with pytest.raises(Exception, match=message) as err:
        module.refused_flow()
    assert "Refused#produce" in str(err.value) and "var/jobs/Refused/produce" in str(err.value)
    (info_path,) = (scout_root / "var/jobs/Refused/produce").glob("*.info")
    info = json.loads(info_path.read_text())
    assert info["status"] == "error" and info["messages"]
    assert not [p for p in info_path.parent.iterdir() if not p.name.endswith(".info")]  # no result file
    assert not (scout_root / "var/jobs/Refused/consume").exists() and _ran(log) == 0  # dependents never run


def test_a_bad_compression_setting_fails_the_task_naming_the_variable(scout_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_COMPRESSION", "zstd:99")
    source = tmp_path / "refused_tasks.py"
    source.write_text(textwrap.dedent(REFUSED.format(scout_type="pickle", value="{'a': 1}")))
    module = _load_module(source, "refused_compression")
    with pytest.raises(Exception, match=r"SCOUT_PERSIST_COMPRESSION.*zstd:99"):
        module.refused_flow()
    (info_path,) = (scout_root / "var/jobs/Refused/produce").glob("*.info")
    assert json.loads(info_path.read_text())["status"] == "error"


TAMPER = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    def _note(name):
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write(name + "\\n")

    @scout_task(type="json", workflow="Tamper")
    def total() -> dict:
        _note("total")
        return {{"total": 992152.18}}

    @scout_task(workflow="Tamper")
    def pickled() -> dict:
        _note("pickled")
        return {{"rows": list(range(50))}}

    @flow(name="Tamper")
    def tamper_flow():
        return total.submit().result(), pickled.submit().result()
"""


@pytest.mark.parametrize("kind", ("thread", "process"))
def test_tampered_or_damaged_results_are_recomputed_not_served(
    kind, runner_for, scout_root, tmp_path, monkeypatch, caplog
):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "tamper_tasks.py"
    source.write_text(textwrap.dedent(TAMPER.format()))
    module = _load_module(source, f"tamper_{kind}")
    tamper = module.tamper_flow.with_options(task_runner=runner_for(kind))
    expected = ({"total": 992152.18}, {"rows": list(range(50))})
    assert tamper() == expected and _ran(log) == 2
    (total_path,) = [p for p in (scout_root / "var/jobs/Tamper/total").iterdir() if not p.name.endswith(".info")]
    total_path.write_bytes(total_path.read_bytes().replace(b"992152.18", b"192152.18"))  # same size
    (pickle_path,) = [p for p in (scout_root / "var/jobs/Tamper/pickled").iterdir() if not p.name.endswith(".info")]
    damaged = bytearray(pickle_path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    pickle_path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="prefect_scout"):
        assert tamper() == expected  # never the tampered value, never a failed flow
    assert _ran(log) == 4
    if kind == "thread":
        warned = " ".join(r.getMessage() for r in caplog.records)
        assert str(total_path) in warned and "checksum" in warned
    assert Job(str(total_path)).load() == {"total": 992152.18}


SAME_NAME = """
    from prefect_scout import scout_task

    @scout_task(type="integer", workflow="Clash")
    def process(x: int) -> int:
        return x + {delta}
"""


def test_two_functions_claiming_one_task_are_refused_at_the_first_call(scout_root, tmp_path):
    a_path, b_path = tmp_path / "clash_a.py", tmp_path / "clash_b.py"
    a_path.write_text(textwrap.dedent(SAME_NAME.format(delta=1)))
    b_path.write_text(textwrap.dedent(SAME_NAME.format(delta=2)))
    a, b = _load_module(a_path, "clash_a"), _load_module(b_path, "clash_b")

    @flow(name="Clash")
    def clash_flow():
        return a.process(1), b.process(1)

    with pytest.raises(Exception) as err:
        clash_flow()
    message = str(err.value)
    assert "clash_a.process" in message and "clash_b.process" in message and "name=" in message
    assert (
        not (scout_root / "var/jobs/Clash/process").exists()
        or len(list((scout_root / "var/jobs/Clash/process").glob("*.info"))) <= 1
    )


EXPIRING = """
    import datetime, os
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="integer", workflow="Expiry", cache_expiration=datetime.timedelta(seconds={seconds}))
    def stamp() -> int:
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write("stamp\\n")
        return 1

    @flow(name="Expiry")
    def expiry_flow():
        return stamp()
"""


def test_cache_expiration_makes_an_expired_job_a_miss(scout_root, tmp_path, monkeypatch):
    import time

    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "expiring.py"
    source.write_text(textwrap.dedent(EXPIRING.format(seconds=6)))
    module = _load_module(source, "expiring")
    assert module.expiry_flow() == 1 and _ran(log) == 1
    assert module.expiry_flow() == 1 and _ran(log) == 1  # within its expiry: a hit
    (info_path,) = (scout_root / "var/jobs/Expiry/stamp").glob("*.info")
    assert "expires" in json.loads(info_path.read_text())["prefect"]
    time.sleep(6.2)
    assert module.expiry_flow() == 1 and _ran(log) == 2
    assert json.loads(info_path.read_text())["prefect"]["recomputed_because"] == ["expired"]


def test_unsigned_pickles_under_a_new_key_are_misses_with_one_warning(scout_root, tmp_path, monkeypatch, caplog):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "tamper_tasks.py"
    source.write_text(textwrap.dedent(TAMPER.format()))
    module = _load_module(source, "unsigned")
    module.tamper_flow()
    assert _ran(log) == 2
    monkeypatch.setenv("SCOUT_PERSIST_HMAC_KEY", "now signed with a team key of 32 bytes")
    from scout_persist.cli import main

    assert main(["verify", "--unsigned", str(scout_root)]) != 0
    with caplog.at_level(logging.WARNING, logger="prefect_scout"):
        assert module.tamper_flow()[1] == {"rows": list(range(50))}
    assert _ran(log) == 3  # the unsigned pickle was recomputed (and signed); the JSON job was reused
    warnings = [r for r in caplog.records if "HMAC" in r.getMessage()]
    assert len(warnings) == 1 and "verify --unsigned" in warnings[0].getMessage()
    assert module.tamper_flow()[1] == {"rows": list(range(50))} and _ran(log) == 3  # signed now: a hit
    assert main(["verify", "--unsigned", str(scout_root)]) == 0


class _Planted:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_is_never_unpickled_and_the_job_is_recomputed(scout_root, tmp_path, monkeypatch):
    """Someone who can write to the store (not read our key) replaces a pickled result and fixes its record."""
    from scout_persist import pickle_envelope
    from scout_persist.info import dumps_info

    monkeypatch.delenv("SCOUT_PERSIST_HMAC_KEY", raising=False)  # the default: the account's own key
    log, marker = tmp_path / "ran.log", tmp_path / "pwned"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "planted_tasks.py"
    source.write_text(textwrap.dedent(TAMPER.format()))
    module = _load_module(source, "planted")
    assert module.tamper_flow()[1] == {"rows": list(range(50))} and _ran(log) == 2
    (info_path,) = (scout_root / "var/jobs/Tamper/pickled").glob("*.info")
    key = str(info_path.relative_to(scout_root))[: -len(".info")]
    data, record = pickle_envelope.dump_pickle_with_record(_Planted(str(marker)), "none", hmac_key=b"", bind=key)
    info = json.loads(info_path.read_text())
    info["payload"] = {"format": "pickle", **{k: v for k, v in record.items() if k != "serializer"}}
    (scout_root / key).write_bytes(data)
    info_path.write_bytes(dumps_info(info))
    assert module.tamper_flow()[1] == {"rows": list(range(50))}
    assert not marker.exists() and _ran(log) == 3  # recomputed, never unpickled


@pytest.mark.parametrize("state", list(BROKEN_KEYS))
def test_a_planted_pickle_never_runs_in_a_flow_while_the_key_cannot_be_used(state, scout_root, tmp_path, monkeypatch):
    """The key breaks after a run (a key file made too open, emptied, replaced by a folder...): the next run fails
    with the key's error (the hit check cannot verify the stored pickle, the recomputed value cannot be signed), the
    pickle planted meanwhile is never unpickled, and nothing is stored unsigned."""
    from scout_persist import pickle_envelope, pickle_key
    from scout_persist.errors import PickleKeyError
    from scout_persist.info import dumps_info

    key_file = tmp_path / "config" / "pickle.key"
    monkeypatch.delenv("SCOUT_PERSIST_HMAC_KEY", raising=False)
    monkeypatch.setenv(pickle_key.KEY_FILE_ENV, str(key_file))
    log, marker = tmp_path / "ran.log", tmp_path / "pwned"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "broken_key_tasks.py"
    source.write_text(textwrap.dedent(TAMPER.format()))
    module = _load_module(source, "broken_key")
    assert module.tamper_flow()[1] == {"rows": list(range(50))} and _ran(log) == 2  # signed by the key made now
    (info_path,) = (scout_root / "var/jobs/Tamper/pickled").glob("*.info")
    key = str(info_path.relative_to(scout_root))[: -len(".info")]
    data, record = pickle_envelope.dump_pickle_with_record(_Planted(str(marker)), "none", hmac_key=b"", bind=key)
    info = json.loads(info_path.read_text())
    info["payload"] = {"format": "pickle", **{k: v for k, v in record.items() if k != "serializer"}}
    (scout_root / key).write_bytes(data)
    info_path.write_bytes(dumps_info(info))
    key_file.unlink()
    named, _ = BROKEN_KEYS[state](key_file, monkeypatch)
    with pytest.raises(PickleKeyError) as err:
        module.tamper_flow()
    assert named in str(err.value) and not marker.exists()
    after = json.loads(info_path.read_text())  # the task ran again and could not store its value: an error, not
    assert after["status"] == "error" and not (scout_root / key).exists()  # an unsigned pickle, nor the planted one


REWRITE = """
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="text", workflow="Rewrite", version="{version}")
    def note() -> str:
        return "{text}"

    @flow(name="Rewrite")
    def rewrite_flow():
        return note()
"""


def test_a_rewrite_whose_storage_fails_keeps_the_committed_job(scout_root, tmp_path, monkeypatch):
    from scout_persist.store import Store

    source = tmp_path / "rewrite.py"
    source.write_text(textwrap.dedent(REWRITE.format(version="1", text="old")))
    assert _load_module(source, "rewrite").rewrite_flow() == "old"
    (result,) = [p for p in (scout_root / "var/jobs/Rewrite/note").iterdir() if not p.name.endswith(".info")]
    info_before = Path(str(result) + ".info").read_bytes()
    real_put = Store.put

    def failing_put(self, key, data, **options):
        if key.endswith("Rewrite/note/" + result.name):
            raise OSError(28, "No space left on device")
        return real_put(self, key, data, **options)

    monkeypatch.setattr(Store, "put", failing_put)
    source.write_text(textwrap.dedent(REWRITE.format(version="2", text="new")))
    with pytest.raises(Exception, match=r"No space left.*previous result and its \.info were kept"):
        _load_module(source, "rewrite").rewrite_flow()  # the same module, edited and reloaded
    monkeypatch.undo()
    assert result.read_text() == "old" and Path(str(result) + ".info").read_bytes() == info_before
    assert Job(str(result)).load() == "old"


FAN = """
    import os
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_scout import scout_task

    @scout_task(workflow="Fan")
    def square(i: int) -> dict:
        with open(os.environ["TRUST_LOG"], "a") as fh:
            fh.write("square\\n")
        return {"i": i, "sq": i * i, "pad": "x" * 2000}

    @flow(name="Fan", task_runner=ThreadPoolTaskRunner(max_workers=16))
    def fan_flow(n: int = 40):
        return [f.result()["sq"] for f in [square.submit(i) for i in range(n)]]
"""


def test_many_concurrent_hits_never_lose_their_verified_values(scout_root, tmp_path, monkeypatch):
    """Dozens of cache hits at once in one process: each hands on the value its own check verified."""
    log = tmp_path / "ran.log"
    monkeypatch.setenv("TRUST_LOG", str(log))
    source = tmp_path / "fan_tasks.py"
    source.write_text(textwrap.dedent(FAN))
    module = _load_module(source, "fan_tasks")
    expected = [i * i for i in range(40)]
    assert module.fan_flow() == expected and _ran(log) == 40
    assert module.fan_flow() == expected and _ran(log) == 40  # all 40 were hits, none failed
