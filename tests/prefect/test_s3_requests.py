"""S3 requests of a scout task, counted by a proxy in front of moto: a save is the .info GET and three PUTs (the
.info itself is the lease), a hit two GETs; a hit whose result file vanished takes the lease and recomputes once.
The run record (var/runs) adds one PUT when the run starts, one when it ends, and at most one per finished task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fsspec.config
import pytest
from prefect import flow

from prefect_scout import scout_task
from scout_persist.runs import list_runs
from scout_persist.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from faulty_proxy import FaultyProxy

pytestmark = pytest.mark.s3


@scout_task(workflow="Requests", type="integer")
def plus_one(x: int = 41) -> int:
    with open(os.environ["BODY_LOG"], "a") as fh:
        fh.write("ran\n")
    return x + 1


@flow(name="Requests", persist_result=False)
def one_task(x: int) -> int:
    return plus_one(x)


@pytest.fixture
def proxied_root(s3_url, s3_endpoint, tmp_path, monkeypatch):
    """SCOUT_PERSIST_URL on a fresh bucket, every plug-in request going through a counting proxy."""
    proxy = FaultyProxy(s3_endpoint).start()
    monkeypatch.setitem(fsspec.config.conf, "s3", {**fsspec.config.conf["s3"], "endpoint_url": proxy.url})
    monkeypatch.setenv("SCOUT_PERSIST_URL", s3_url)
    monkeypatch.setenv("BODY_LOG", str(tmp_path / "bodies.log"))
    monkeypatch.setenv("SCOUT_PERSIST_RUN_FLUSH", "3600")  # the run record: written at start and end only
    yield s3_url, proxy
    proxy.stop()


def _is_run_record(line: str) -> bool:
    return "/var/runs/" in line.split(" ")[1]


def _run(proxy: FaultyProxy, x: int, log: Path) -> list[str]:
    """The job requests of one run of the flow; its run record's requests are checked here: a PUT of its
    run.json when it starts and one when it ends."""
    start = len(proxy.log)
    assert one_task(x) == x + 1
    lines = proxy.log[start:]
    record = [line for line in lines if _is_run_record(line)]
    assert [line.split(" ")[0] for line in record] == ["PUT", "PUT"], record
    assert all(line.split(" ")[1].split("?")[0].endswith("/run.json") for line in record), record
    return [line for line in lines if not _is_run_record(line)]


def test_hit_is_two_gets_and_takes_no_lock(proxied_root, tmp_path):
    url, proxy = proxied_root
    log = Path(os.environ["BODY_LOG"])
    saved = _run(proxy, 1, log)
    # .info GET (404), .info PUT start (If-None-Match: the lease), result PUT (If-None-Match), .info PUT done
    # (If-Match): no lock file on S3
    assert [line.split(" ")[0] for line in saved] == ["GET", "PUT", "PUT", "PUT"], saved
    assert [line.split(" ")[1].split("?")[0].endswith(".info") for line in saved] == [True, True, False, True]
    assert "persist_locks" not in "".join(saved)
    hit = _run(proxy, 1, log)
    assert [line.split(" ")[0] for line in hit] == ["GET", "GET"], hit
    assert hit[0].split("?")[0].endswith(".info") and "persist_locks" not in "".join(hit)
    assert log.read_text().splitlines() == ["ran"]
    store = Store(url)
    assert not list(store.list("tmp/persist_locks"))


def test_done_job_without_result_file_recomputes_under_the_lock(proxied_root, tmp_path):
    url, proxy = proxied_root
    log = Path(os.environ["BODY_LOG"])
    _run(proxy, 2, log)
    store = Store(url)
    [result] = [k for k in store.list("var/jobs/Requests") if not k.endswith(".info")]
    store.delete(result)  # .info still says done
    again = _run(proxy, 2, log)
    assert log.read_text().splitlines() == ["ran", "ran"]
    methods = [line.split(" ")[0] for line in again]
    assert methods[:3] == ["GET", "GET", "GET"] and methods[3] == "PUT"  # .info, result (404), .info again, lease
    assert again[3].split(" ")[1].split("?")[0].endswith(".info") and "persist_locks" not in "".join(again)
    assert store.get(result) == b"3"
    assert not list(store.list("tmp/persist_locks"))
    assert [line.split(" ")[0] for line in _run(proxy, 2, log)] == ["GET", "GET"]


@scout_task(workflow="Requests", type="integer")
def ten_times(i: int) -> int:
    return i * 10 + 1000


@flow(name="Requests", persist_result=False)
def many_tasks(n: int) -> list[int]:
    return [f.result() for f in [ten_times.submit(i) for i in range(n)]]


@pytest.mark.parametrize("flush", ["0", "1"])
def test_the_run_record_costs_at_most_one_put_per_task(proxied_root, monkeypatch, flush):
    """Unbatched (flush 0): exactly one PUT per finished task plus the start and the end of the run; batched (the
    default, 1 s): tasks finishing within the same second share one PUT."""
    url, proxy = proxied_root
    monkeypatch.setenv("SCOUT_PERSIST_RUN_FLUSH", flush)
    n = 12
    start = len(proxy.log)
    assert many_tasks(n) == [i * 10 + 1000 for i in range(n)]
    record = [line for line in proxy.log[start:] if _is_run_record(line)]
    assert {line.split(" ")[0] for line in record} == {"PUT"}
    if flush == "0":
        assert len(record) == n + 2, record
    else:
        assert 2 <= len(record) <= n, record
    (run,) = [r for r in list_runs(Store(url)) if r.record.get("parameters") == {"n": n}]
    assert run.status == "completed" and run.job_counts() == {"done": n} and len(run.jobs()) == n
