"""Multipart uploads (#12 item 7): aborted on every failure path of ``Store.writer`` on S3, and ``gc --uploads``
lists and aborts the ones a writer killed with -9 left behind. Real child processes against the moto server."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from faulty_proxy import FaultyProxy
from scout_persist.cli import main
from scout_persist.errors import StorageError
from scout_persist.store import SINGLE_PUT_MAX, Store, s3 as store_s3

pytestmark = pytest.mark.s3

KEY = "var/jobs/W/t/big"
COMPLETE = r"[?&]uploadId="  # POST ...?uploadId= completes an upload, DELETE ...?uploadId= aborts it

WRITER = textwrap.dedent(
    """
    import os, signal, sys, time
    from scout_persist.store import SINGLE_PUT_MAX, Store
    url, mode = sys.argv[1:3]
    with Store(url).writer("var/jobs/W/t/big") as fh:
        fh.write(b"\\x01" * SINGLE_PUT_MAX)  # past the single-PUT limit: the multipart upload begins, part 1 is sent
        fh.write(b"\\x02" * 1024)
        print("started", flush=True)
        if mode == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: KeyboardInterrupt in the middle of the block
        elif mode == "exit":
            sys.exit(3)
        time.sleep(600)
    """
)


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def uploads_in(endpoint: str, bucket: str) -> list[str]:
    """Keys of the incomplete uploads of the bucket, seen by boto3 directly (not through our code)."""
    return sorted(u["Key"] for u in _client(endpoint).list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def objects_in(endpoint: str, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in _client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))


def start_writer(url: str, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()
    return proc


def run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("mode", ["sigint", "exit"])
def test_interrupt_and_exit_in_the_block_abort_the_upload(s3_url, s3_endpoint, mode):
    bucket = s3_url.split("/")[2]
    proc = start_writer(s3_url, mode)
    _, err = proc.communicate(timeout=120)
    if mode == "sigint":
        assert proc.returncode != 0 and "KeyboardInterrupt" in err
    else:
        assert proc.returncode == 3, err
    assert uploads_in(s3_endpoint, bucket) == [] and objects_in(s3_endpoint, bucket) == []


def test_kill_9_leaves_an_upload_that_gc_lists_then_aborts(s3_url, s3_endpoint, capsys):
    bucket, root = s3_url[5:].split("/", 1)
    # uploads outside the store root are none of gc's business, also under a look-alike prefix
    client = _client(s3_endpoint)
    for other in ("elsewhere/x", f"{root}2/x"):
        client.create_multipart_upload(Bucket=bucket, Key=other)
    proc = start_writer(s3_url, "hang")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert f"{root}/{KEY}" in uploads_in(s3_endpoint, bucket)  # the orphan: parts stored, no object
    assert objects_in(s3_endpoint, bucket) == []

    time.sleep(1.5)
    rc, out, err = run(capsys, "gc", s3_url, "--uploads", "--older-than", "1", "--dry-run")  # 1 hour
    assert rc == 0 and out == "" and "would abort 0 incomplete uploads idle for more than 1.0h" in err
    rc, out, err = run(capsys, "gc", s3_url, "--uploads", "--older-than", "1s", "--dry-run")
    assert rc == 0 and out.startswith("would abort") and KEY in out and out.count("\n") == 1
    assert "dry run: nothing aborted" in err
    assert f"{root}/{KEY}" in uploads_in(s3_endpoint, bucket)  # a dry run aborts nothing
    rc, out, err = run(capsys, "gc", s3_url, "--uploads", "--older-than", "1s", "--json")
    rows = __import__("json").loads(out)
    assert rc == 0 and [(r["key"], r["aborted"]) for r in rows] == [(KEY, True)]
    assert uploads_in(s3_endpoint, bucket) == ["elsewhere/x", f"{root}2/x"]
    assert objects_in(s3_endpoint, bucket) == []
    rc, out, err = run(capsys, "gc", s3_url, "--uploads", "--older-than", "0")
    assert rc == 0 and out == "" and "aborted 0 incomplete uploads" in err


@pytest.fixture
def proxied(s3_url, s3_endpoint):
    proxy = FaultyProxy(s3_endpoint).start()
    options = {"endpoint_url": proxy.url, "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}}}
    yield Store(s3_url, **options), proxy, s3_url.split("/")[2]
    proxy.stop()


def test_a_failing_commit_aborts_the_upload(proxied, s3_endpoint):
    store, proxy, bucket = proxied
    rule = proxy.add_rule("fail", method="POST", path=COMPLETE, times=None)
    with pytest.raises(StorageError) as err:
        with store.writer(KEY) as fh:
            fh.write(b"\x01" * (SINGLE_PUT_MAX + 10))
    assert rule.hits >= 1 and KEY in str(err.value)
    assert uploads_in(s3_endpoint, bucket) == [] and objects_in(s3_endpoint, bucket) == []


def test_a_large_put_uses_the_aborting_writer(proxied, s3_endpoint, monkeypatch):
    store, proxy, bucket = proxied
    monkeypatch.setattr(store_s3, "PUT_MULTIPART_MIN", SINGLE_PUT_MAX + 1)  # not 100 MiB in a test
    proxy.add_rule("fail", method="POST", path=COMPLETE, times=None)
    with pytest.raises(StorageError):
        store.put(KEY, b"\x01" * (SINGLE_PUT_MAX + 10))
    assert uploads_in(s3_endpoint, bucket) == [] and objects_in(s3_endpoint, bucket) == []
    proxy.heal()
    store.put(KEY, b"\x02" * (SINGLE_PUT_MAX + 10))
    assert store.size(KEY) == SINGLE_PUT_MAX + 10 and uploads_in(s3_endpoint, bucket) == []


def test_an_abort_that_fails_keeps_the_first_error_and_says_how_to_clean(proxied, s3_url, s3_endpoint, caplog, capsys):
    store, proxy, bucket = proxied
    proxy.add_rule("fail", method="POST", path=COMPLETE, times=None)
    proxy.add_rule("fail", method="DELETE", path=COMPLETE, times=None)
    with caplog.at_level(logging.WARNING, logger="scout_persist.store"):
        with pytest.raises(StorageError) as err:
            with store.writer(KEY) as fh:
                fh.write(b"\x01" * (SINGLE_PUT_MAX + 10))
    assert "writing" in str(err.value) and KEY in str(err.value)  # the commit's error, not the abort's
    warning = caplog.text
    assert "could not abort the multipart upload" in warning and KEY in warning
    assert f"scout-persist gc --uploads {s3_url} --dry-run" in warning
    proxy.heal()
    [orphan] = store.incomplete_uploads()
    assert orphan.key == KEY and orphan.upload_id in warning
    rc, out, _ = run(capsys, "gc", s3_url, "--uploads", "--older-than", "0")
    assert rc == 0 and out.startswith("aborted") and uploads_in(s3_endpoint, bucket) == []
    assert store.abort_upload(orphan) is False  # already gone


def test_stores_without_multipart_uploads_say_so(tmp_path, capsys):
    with pytest.raises(StorageError) as err:
        Store(str(tmp_path)).incomplete_uploads()
    assert "has no multipart uploads" in str(err.value) and str(tmp_path) in str(err.value)
    rc, _, err = run(capsys, "gc", str(tmp_path), "--uploads")
    assert rc == 2 and "a local store has no multipart uploads" in err
    rc, _, err = run(capsys, "gc", str(tmp_path), "--uploads", "--older-than", "soon")
    assert rc == 2 and "'soon' is not an age" in err
    rc, _, err = run(capsys, "gc", str(tmp_path))
    assert rc == 2 and "--max-size SIZE" in err and "--uploads" in err
