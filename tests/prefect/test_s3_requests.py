"""S3 requests of a scout task, counted by a proxy in front of moto: a new job is three PUTs (the .info itself is the
lease, and its conditional create is the lookup), a hit two GETs (after a refused create in a process that cannot know
the job exists: once per task, however many runs map it); a hit whose result file vanished takes the lease and
recomputes once.  The run record (var/runs) adds one PUT when the run starts, one when it ends, and at most one per
finished task."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import fsspec.config
import pytest
from prefect import flow

from prefect_scout import scout_task
from scout_persist import presence
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


def _answered(proxy: FaultyProxy, start: int) -> list[str]:
    """``STATUS METHOD`` and whether the object is the ``.info``, for each job request since ``start``."""
    out = []
    for line in proxy.answered(start):
        status, method, target = line.split(" ", 2)
        if "/var/runs/" not in target:
            out.append(f"{status} {method} {'info' if target.split('?')[0].endswith('.info') else 'result'}")
    return out


def test_a_new_job_is_three_puts_and_a_hit_two_gets_without_a_lock(proxied_root, tmp_path):
    url, proxy = proxied_root
    log = Path(os.environ["BODY_LOG"])
    start = len(proxy.log)
    saved = _run(proxy, 1, log)
    # .info PUT start (If-None-Match: *, the lease, and the lookup: nothing read before it), result PUT
    # (If-None-Match), .info PUT done (If-Match): no lock file on S3
    assert _answered(proxy, start) == ["200 PUT info", "200 PUT result", "200 PUT info"], saved
    assert "persist_locks" not in "".join(saved)
    start = len(proxy.log)
    hit = _run(proxy, 1, log)
    assert _answered(proxy, start) == ["200 GET info", "200 GET result"], hit  # a job this process saw
    assert "persist_locks" not in "".join(hit)
    assert log.read_text().splitlines() == ["ran"]
    store = Store(url)
    assert not list(store.list("tmp/persist_locks"))


def test_a_hit_in_a_process_new_to_the_store_follows_a_refused_create(proxied_root):
    url, proxy = proxied_root
    log = Path(os.environ["BODY_LOG"])
    _run(proxy, 3, log)
    [info_key] = [k for k in Store(url).list("var/jobs/Requests") if k.endswith(".info")]
    before = Store(url).get(info_key)
    presence.forget_all()  # what a new process knows of the store: nothing
    start = len(proxy.log)
    _run(proxy, 3, log)
    # the create refused (412, nothing written), the .info as S3 read it back (done: a hit), the result
    assert _answered(proxy, start) == ["412 PUT info", "200 GET info", "200 GET result"]
    assert Store(url).get(info_key) == before and log.read_text().splitlines() == ["ran"]


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


def test_mapped_tasks_in_a_process_new_to_the_store_probe_once(proxied_root):
    """New jobs: 3 requests each; cached, in a process that knows nothing of them: the first run's create is refused,
    the others, which waited for that answer, read first: 2 each."""
    url, proxy = proxied_root
    n = 12
    presence.forget_all()
    start = len(proxy.log)
    assert many_tasks(n) == [i * 10 + 1000 for i in range(n)]
    new = _answered(proxy, start)
    assert len(new) == 3 * n and sorted(set(new)) == ["200 PUT info", "200 PUT result"], new
    presence.forget_all()
    start = len(proxy.log)
    assert many_tasks(n) == [i * 10 + 1000 for i in range(n)]
    cached = _answered(proxy, start)
    assert cached.count("412 PUT info") == 1 and len(cached) == 2 * n + 1, cached
    assert sorted(set(cached)) == ["200 GET info", "200 GET result", "412 PUT info"]


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
