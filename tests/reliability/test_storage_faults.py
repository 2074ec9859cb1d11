"""Injected storage faults: S3 answering 500s, an endpoint that goes down mid-job, a full disk.

Each fault ends in a retry that succeeds or a clear error; data committed before the fault stays readable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from faulty_proxy import FaultyProxy
from scout_persist.errors import ScoutPersistError
from scout_persist.job import Job, JobWriter
from scout_persist.store import Store

pytestmark = pytest.mark.s3


@pytest.fixture
def proxied(s3_url, s3_endpoint):
    """(store through the fault proxy, direct store, proxy) on one fresh bucket."""
    proxy = FaultyProxy(s3_endpoint).start()
    # s3fs/botocore retry with backoff; keep the number of attempts small so a dead endpoint fails fast.
    options = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"max_attempts": 3, "mode": "standard"}}}
    yield Store(s3_url, **options), Store(s3_url), proxy
    proxy.stop()


def write_job(store: Store, key: str, value) -> Job:
    writer = JobWriter(store, key, type="json")
    writer.setup(inputs=[], input_names=[])
    writer.start()
    writer.save(value)
    return writer.done()


def test_a_few_500s_are_retried(proxied):
    store, direct, proxy = proxied
    proxy.fail_next(2)
    write_job(store, "var/jobs/W/t/flaky", {"ok": 1})
    assert proxy.injected == 2
    assert Job.at(direct, "var/jobs/W/t/flaky").load() == {"ok": 1}


def test_persistent_500s_give_a_clear_error_and_keep_committed_data(proxied):
    store, direct, proxy = proxied
    write_job(store, "var/jobs/W/t/kept", {"v": "committed"})
    proxy.fail_next(1000)
    with pytest.raises((ScoutPersistError, OSError)) as err:
        write_job(store, "var/jobs/W/t/kept", {"v": "overwrite that never lands"})
    assert "var/jobs/W/t/kept" in str(err.value) or "InternalError" in str(err.value) or "500" in str(err.value)
    proxy.heal()
    job = Job.at(direct, "var/jobs/W/t/kept")
    # Either the old job is still done with its value, or the rewrite's setup got through and it is not done:
    # never a done job with a wrong or missing result.
    assert job.status != "done" or job.load() == {"v": "committed"}


def test_endpoint_down_mid_job_then_back(proxied):
    store, direct, proxy = proxied
    write_job(store, "var/jobs/W/t/before", [1, 2, 3])
    writer = JobWriter(store, "var/jobs/W/t/interrupted", type="json")
    writer.setup(inputs=[], input_names=[])
    writer.start()
    proxy.stop()
    assert proxy.refuses_connections()
    with pytest.raises((ScoutPersistError, OSError)):
        writer.save({"never": "stored"})
    proxy.start()  # same port: the endpoint is back
    assert Job.at(direct, "var/jobs/W/t/before").load() == [1, 2, 3]
    assert Job.at(direct, "var/jobs/W/t/interrupted").status == "start"  # not done: the next run recomputes
    assert write_job(store, "var/jobs/W/t/interrupted", {"second": "try"}).load() == {"second": "try"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE needs a POSIX child process")
def test_disk_full_keeps_the_previous_result(tmp_path):
    """A per-process file size limit (RLIMIT_FSIZE) makes writes fail with EFBIG, as a full disk or quota would."""
    root = tmp_path / "root"
    write_job(Store(str(root)), "var/jobs/W/t/big", {"small": True})
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        from scout_persist.job import JobWriter
        from scout_persist.store import Store
        w = JobWriter(Store({str(root)!r}), "var/jobs/W/t/big", type="text")
        w.setup(inputs=[], input_names=[]); w.start()
        try:
            w.save("x" * 1_000_000)
        except OSError as exc:
            print(type(exc).__name__, exc)
            sys.exit(3)
        w.done()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "big" in proc.stdout  # the error names the job's file
    assert "previous result and its .info were kept" in proc.stdout
    job = Job.at(Store(str(root)), "var/jobs/W/t/big")
    assert job.status == "done" and job.load() == {"small": True}  # the committed job, as it was
    assert not [p for p in root.rglob("*") if ".tmp" in p.name], "a temporary file was left behind"
