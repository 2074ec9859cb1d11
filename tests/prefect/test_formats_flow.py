"""Typed formats and file outputs through real Prefect flows, on a local root and on S3: the first run and the cached
run hand downstream tasks equal values (same type, dtype, index), each job records its format, and file outputs are
committed into ``<job>.files/``, listed with checksums and read back."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from scout_persist.job import Job
from scout_persist.store import Store

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

TASKS = """
    import json, os
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from prefect import flow
    from prefect_scout import job_files, scout_task

    def _note(name):
        with open(os.environ["FORMATS_LOG"], "a") as fh:
            fh.write(name + "\\n")

    @scout_task(workflow="Formats")
    def array():
        _note("array")
        return np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]

    @scout_task(workflow="Formats")
    def frame():
        _note("frame")
        return pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", None], "c": pd.Categorical(["x", "y", "x"])},
                            index=pd.Index(["r1", "r2", "r3"], name="ID"))

    @scout_task(workflow="Formats")
    def series():
        _note("series")
        return pd.Series([1.5, 2.5], index=pd.to_datetime(["2026-01-01", "2026-01-02"]), name="v")

    @scout_task(workflow="Formats")
    def table():
        _note("table")
        return pa.table({"a": [1, 2], "b": ["x", None]}).replace_schema_metadata({"k": "v"})

    @scout_task(workflow="Formats")
    def tensors():
        _note("tensors")
        return {"w": np.ones((2, 3), dtype=np.float16), "b": np.arange(3, dtype=np.int64)}

    @scout_task(workflow="Formats", format="json")
    def summary():
        _note("summary")
        return {"pair": (1, 2), "total": 0.5}

    @scout_task(workflow="Formats", format="pickle")
    def forced():
        _note("forced")
        return np.arange(3)

    @scout_task(workflow="Formats")
    def other():
        _note("other")
        return {"set": {1, 2}}

    @scout_task(workflow="Formats", type="tsv")
    def scout_table():
        _note("scout_table")
        return pd.DataFrame({"Letter": ["a", "b"], "Number": [1, 2]}, index=pd.Index(["row1", "row2"], name="ID"))

    @scout_task(workflow="Formats", type="file")
    def report():
        _note("report")
        files = job_files()
        files.put("counts.json", b'{"n": 3}')
        with files.open("sub/table.tsv", "w") as fh:
            fh.write("k\\tv\\n")
        with open(files.path("plots/fig.bin"), "wb") as fh:
            fh.write(bytes(range(256)))
        return files.path("sub/table.tsv")

    def describe(v):
        if isinstance(v, np.ndarray):
            return ["ndarray", str(v.dtype), list(v.shape), v.tolist(), bool(v.flags.writeable)]
        if isinstance(v, (pd.DataFrame, pd.Series)):
            dtypes = [str(v.dtype)] if isinstance(v, pd.Series) else [str(t) for t in v.dtypes]
            return [type(v).__name__, dtypes, repr(v.index), v.to_json(date_format="iso"), v.attrs]
        if isinstance(v, pa.Table):
            return ["Table", str(v.schema), v.to_pydict(), v.schema.metadata == {b"k": b"v"}]
        if isinstance(v, dict) and v and all(isinstance(x, np.ndarray) for x in v.values()):
            return ["dict", list(v), [[str(x.dtype), x.tolist()] for x in v.values()]]
        if isinstance(v, str) and ".files/" in v:
            import fsspec

            with fsspec.open(v, "r") as fh:
                return ["path", v, fh.read()]
        return [type(v).__name__, repr(v)]

    @scout_task(workflow="Formats")
    def consume(**values) -> int:
        with open(os.environ["FORMATS_SEEN"], "a") as fh:
            fh.write(json.dumps({k: describe(v) for k, v in sorted(values.items())}, default=str) + "\\n")
        return len(values)

    PRODUCERS = (array, frame, series, table, tensors, summary, forced, other, scout_table, report)

    @flow(name="Formats")
    def formats_flow():
        made = {f.__name__: f.submit() for f in PRODUCERS}
        return consume.submit(**made).result()
"""

EXPECTED_FORMATS = {
    "array": "npy",
    "frame": "parquet",
    "series": "parquet",
    "table": "arrow",
    "tensors": "safetensors",
    "summary": "json",
    "forced": "pickle",
    "other": "pickle",
    "scout_table": "scout",
    "report": "scout",
}


def _module(tmp_path: Path, name: str):
    import importlib.util

    source = tmp_path / f"{name}.py"
    source.write_text(textwrap.dedent(TASKS))
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _run_twice(module, root_url: str, tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    log, seen = tmp_path / "ran.log", tmp_path / "seen.log"
    monkeypatch.setenv("FORMATS_LOG", str(log))
    monkeypatch.setenv("FORMATS_SEEN", str(seen))
    assert module.formats_flow() == len(EXPECTED_FORMATS)
    assert sorted(_ran(log)) == sorted(EXPECTED_FORMATS)
    store = Store(root_url)
    consumer = [k for k in store.list("var/jobs/Formats/consume") if k.endswith(".info")]
    assert len(consumer) == 1
    store.delete(consumer[0])  # the consumer runs again; every producer is a cache hit
    assert module.formats_flow() == len(EXPECTED_FORMATS)
    assert sorted(_ran(log)) == sorted(EXPECTED_FORMATS)  # no producer body ran again
    first, cached = [json.loads(line) for line in seen.read_text().splitlines()]
    return first, cached


def _check(first: dict, cached: dict, root_url: str) -> None:
    assert first == cached
    assert first["array"][:3] == ["ndarray", "float32", [4, 3]] and first["array"][4] is True
    assert first["frame"][1] == ["int64", "str", "category"] and "name='ID'" in first["frame"][2]
    assert first["series"][0] == "Series" and "DatetimeIndex" in first["series"][2]
    assert first["table"][0] == "Table" and first["table"][3] is True
    assert first["tensors"][:2] == ["dict", ["w", "b"]] and first["tensors"][2][0][0] == "float16"
    assert first["summary"] == ["dict", repr({"pair": [1, 2], "total": 0.5})]
    assert first["forced"][0] == "ndarray"
    assert first["other"] == ["dict", repr({"set": {1, 2}})]
    assert first["scout_table"][1] == ["str", "int64"]
    assert first["report"][0] == "path" and first["report"][2] == "k\tv\n"
    assert first["report"][1].endswith("/var/jobs/Formats/report/Default.files/sub/table.tsv")
    store = Store(root_url)
    for task, fmt in EXPECTED_FORMATS.items():
        (info_key,) = [k for k in store.list(f"var/jobs/Formats/{task}") if k.endswith(".info")]
        info = json.loads(store.get(info_key))
        assert info["status"] == "done" and info["payload"]["format"] == fmt, (task, info["payload"])
        if fmt not in ("scout", "pickle"):  # compressed arrays: envelope parts (version 2); plain ones, version 1
            chunked = fmt in ("npy", "safetensors") and info["payload"]["codec"] != "none"
            assert info["payload"]["version"] == (2 if chunked else 1), (task, info["payload"])
        assert info["type"] == {"json": "json", "scout": info["type"]}.get(fmt, "binary")
    table_bytes = store.get("var/jobs/Formats/scout_table/Default.tsv")
    assert table_bytes == b"#: :type=:list\n#ID\tLetter\tNumber\nrow1\ta\t1\nrow2\tb\t2\n"
    report = Job.at(store, "var/jobs/Formats/report/Default")
    assert report.files() == ["counts.json", "plots/fig.bin", "sub/table.tsv"]
    assert sorted(report.info["files"]) == report.files()
    assert report.read_file("plots/fig.bin") == bytes(range(256))
    with report.open_file("counts.json") as fh:
        assert json.loads(fh.read()) == {"n": 3}
    assert report.load() == report.file("sub/table.tsv")


@pytest.mark.parametrize("compression", ["zstd:3", "none"])
def test_every_format_first_run_equals_cached_run_local(compression, scout_root, tmp_path, monkeypatch):
    """Uncompressed, the NPY and Arrow hits are memory maps of the job files (handed to Prefect as the result)."""
    monkeypatch.setenv("SCOUT_PERSIST_COMPRESSION", compression)
    module = _module(tmp_path, f"formats_tasks_local_{compression.replace(':', '')}")
    first, cached = _run_twice(module, str(scout_root), tmp_path, monkeypatch)
    _check(first, cached, str(scout_root))
    # the uncompressed-by-default formats are real files other tools open: Parquet, Arrow IPC
    import pyarrow.parquet as pq

    (frame_file,) = [p for p in (scout_root / "var/jobs/Formats/frame").iterdir() if p.suffix != ".info"]
    assert pq.read_table(frame_file).num_rows == 3
    assert not list((scout_root / "tmp/scout_persist/files").iterdir())  # no stage left behind


@pytest.mark.s3
def test_every_format_first_run_equals_cached_run_on_s3(s3_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", s3_url)
    module = _module(tmp_path, "formats_tasks_s3")
    first, cached = _run_twice(module, s3_url, tmp_path, monkeypatch)
    _check(first, cached, s3_url)


FAILING = """
    from prefect import flow
    from prefect_scout import job_files, scout_task

    @scout_task(workflow="Failing", type="file")
    def half_written():
        files = job_files()
        files.put("a.txt", b"a")
        raise RuntimeError("planned failure after one file")

    @flow(name="Failing")
    def failing_flow():
        return half_written()
"""


def test_a_failed_task_publishes_none_of_its_files(scout_root, tmp_path):
    import importlib.util

    source = tmp_path / "failing_tasks.py"
    source.write_text(textwrap.dedent(FAILING))
    spec = importlib.util.spec_from_file_location("failing_tasks", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(Exception, match="planned failure"):
        module.failing_flow()
    job = scout_root / "var/jobs/Failing/half_written/Default"
    assert json.loads(Path(str(job) + ".info").read_text())["status"] == "error"
    assert not Path(str(job) + ".files").exists()
    assert not list((scout_root / "tmp/scout_persist/files").iterdir())


def test_job_files_outside_a_scout_task_names_the_fix():
    from prefect_scout import job_files

    with pytest.raises(Exception, match=r"outside the body of a running scout task.*@scout_task.*JobWriter"):
        job_files()


def test_format_declared_with_a_scout_type_or_unknown_is_refused_at_decoration():
    from prefect_scout import scout_task

    with pytest.raises(Exception, match=r"format='parquet' applies to results of any Python type.*type='tsv'"):
        scout_task(type="tsv", format="parquet")(lambda: 1)
    with pytest.raises(Exception, match=r"format 'feather' is unknown; known formats: pickle, npy, parquet"):
        scout_task(format="feather")(lambda: 1)


def test_a_scout_task_killed_mid_write_leaves_no_partial_files_folder(tmp_path):
    """A real flow in a child process (its own ephemeral API), SIGKILLed inside job_files() writes."""
    import os
    import signal
    import subprocess
    import time

    root, marker = tmp_path / "scout", tmp_path / "marker"
    here = Path(__file__).resolve().parent
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, SCOUT_PERSIST_URL=str(root), PREFECT_HOME=str(tmp_path / "home"))
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # the session's server: no ephemeral API to start
    child = subprocess.Popen(
        [sys.executable, str(here / "files_flow_child.py"), str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert child.poll() is None, "the child flow ended before it could be killed"
            assert time.monotonic() < deadline, "the child flow never reached its file writes"
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the child and the API server it started
        child.wait(timeout=60)
    (info_path,) = (root / "var/jobs/Killed/report").glob("*.info")
    assert json.loads(info_path.read_text())["status"] == "start"
    assert not list((root / "var/jobs/Killed/report").glob("*.files"))  # nothing published, not even a.txt
    staged = list((root / "tmp/scout_persist/files").iterdir())
    assert len(staged) == 1 and (staged[0] / "a.txt").exists()  # the stage stays for gc, outside the job


POOL = """
    import os
    import numpy as np
    from prefect import flow
    from prefect_scout import job_files, scout_task

    @scout_task(workflow="Pool", type="file")
    def report() -> str:
        with open(os.environ["FORMATS_LOG"], "a") as fh:
            fh.write("report\\n")
        job_files().put("pid.txt", str(os.getpid()).encode())
        return job_files().path("pid.txt")

    @scout_task(workflow="Pool")
    def array():
        with open(os.environ["FORMATS_LOG"], "a") as fh:
            fh.write("array\\n")
        return np.arange(6, dtype=np.int16).reshape(2, 3)

    @scout_task(workflow="Pool")
    def consume(path, arr) -> str:
        with open(path) as fh:
            return f"{fh.read()}:{arr.dtype}:{arr.tolist()}"

    @flow(name="Pool")
    def pool_flow():
        return consume.submit(report.submit(), array.submit()).result()
"""


@pytest.mark.timeout(300)
def test_job_files_and_formats_in_a_process_pool(scout_root, tmp_path, monkeypatch):
    """The task bodies run in worker processes: job_files() finds the worker's own run, results cross processes."""
    import importlib.util
    import os

    import cloudpickle
    from prefect.task_runners import ProcessPoolTaskRunner

    log = tmp_path / "ran.log"
    monkeypatch.setenv("FORMATS_LOG", str(log))
    source = tmp_path / "pool_tasks.py"
    source.write_text(textwrap.dedent(POOL))
    spec = importlib.util.spec_from_file_location("pool_tasks", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pool_tasks"] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    pool = module.pool_flow.with_options(task_runner=ProcessPoolTaskRunner(max_workers=1))
    first = pool()
    worker_pid, dtype, values = first.split(":")
    assert worker_pid != str(os.getpid()) and dtype == "int16" and values == "[[0, 1, 2], [3, 4, 5]]"
    for info in (scout_root / "var/jobs/Pool/consume").glob("*.info"):
        info.unlink()
    assert pool() == first and sorted(_ran(log)) == ["array", "report"]  # producers cached, same values
    report = Job(str(scout_root / "var/jobs/Pool/report/Default"))
    assert report.files() == ["pid.txt"] and report.read_file("pid.txt").decode() == worker_pid
