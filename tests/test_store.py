"""Store behaviour specific to one backend, real processes racing, and errors at the boundary."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest

from faulty_proxy import FaultyProxy
from scout_persist import store as store_module
from scout_persist.errors import StorageError
from scout_persist.store import ABSENT, TEMP_PREFIX, Conflict, Store, default_url, faults as store_faults

RACE_SCRIPT = r"""
import json, sys
from scout_persist.store import Store
store = Store(sys.argv[1])
me = sys.argv[2]
sys.stdin.readline()  # start together
won = [k for k in range(int(sys.argv[3])) if store.create(f"race/{k}", me.encode())]
print(json.dumps(won))
"""


def race(url: str, keys: int = 15, processes: int = 2) -> dict[str, list[int]]:
    """Run ``processes`` Python processes that each try to create the same ``keys`` entries."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_SCRIPT, url, f"p{i}", str(keys)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    time.sleep(1.0)  # let both import and build their store before the start signal
    outputs = {}
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs[f"p{i}"] = json.loads(out)
    return outputs


def check_one_winner_per_key(store: Store, outcome: dict[str, list[int]], keys: int) -> None:
    for k in range(keys):
        winners = [name for name, won in outcome.items() if k in won]
        assert len(winners) == 1, f"key race/{k}: winners {winners}"
        assert store.get(f"race/{k}") == winners[0].encode()


def test_create_race_between_processes_local(tmp_path):
    url = str(tmp_path / "root")
    outcome = race(url)
    check_one_winner_per_key(Store(url), outcome, 15)


@pytest.mark.s3
def test_create_race_between_processes_s3(s3_url):
    # The children get the endpoint only through FSSPEC_S3_* variables inherited from this process.
    outcome = race(s3_url)
    check_one_winner_per_key(Store(s3_url), outcome, 15)


# -- local specifics ------------------------------------------------------------------
def test_local_writer_uses_a_hidden_temp_name_in_the_same_folder(tmp_path):
    store = Store(str(tmp_path / "root"))
    with store.writer("var/jobs/W/t/Default") as fh:
        fh.write(b"partial")
        names = os.listdir(tmp_path / "root/var/jobs/W/t")
        assert len(names) == 1 and names[0].startswith(TEMP_PREFIX)
        assert store.ls("var/jobs/W/t") == []
        assert list(store.list("var")) == []
    assert os.listdir(tmp_path / "root/var/jobs/W/t") == ["Default"]


def test_local_temp_name_fits_long_file_names(tmp_path):
    store = Store(str(tmp_path / "root"))
    key = "d/" + "é" * 120  # 240 bytes: near the 255-byte name limit
    store.put(key, b"v")
    assert store.get(key) == b"v"


def test_local_exists_does_not_open_a_fifo(tmp_path):
    # Opening a FIFO for reading blocks until a writer appears: exists() must only stat it.
    store = Store(str(tmp_path / "root"))
    os.makedirs(tmp_path / "root")
    os.mkfifo(tmp_path / "root" / "pipe")
    done = threading.Event()
    result = []
    thread = threading.Thread(target=lambda: (result.append(store.exists("pipe")), done.set()), daemon=True)
    thread.start()
    assert done.wait(5), "exists() blocked on the FIFO: it opened the payload"
    assert result == [True]


def test_store_rooted_at_a_file_raises_storage_error(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    for root in (tmp_path / "afile", tmp_path / "afile" / "below"):  # refused when opened, before any write
        with pytest.raises(StorageError) as err:
            Store(str(root))
        assert f"{str(tmp_path / 'afile')!r} is a file, not a folder" in str(err.value)
    assert (tmp_path / "afile").read_bytes() == b"x"


def test_delete_root_needs_recursive(tmp_path):
    store = Store(str(tmp_path / "root"))
    store.put("a", b"1")
    with pytest.raises(Exception, match="recursive=True"):
        store.delete("")
    assert store.get("a") == b"1"


def test_default_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(tmp_path / "env-root"))
    assert default_url() == str(tmp_path / "env-root")
    Store().put("k", b"v")
    assert (tmp_path / "env-root" / "k").read_bytes() == b"v"
    monkeypatch.delenv("SCOUT_PERSIST_URL")
    assert default_url() == "~/.scout"


def test_unknown_protocol_is_a_storage_error_with_the_fix():
    with pytest.raises(StorageError, match="nosuchproto://x"):
        Store("nosuchproto://x/root")


# -- S3 specifics -----------------------------------------------------------------------
def _boto_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.mark.s3
def test_s3_aborted_large_writer_leaves_no_multipart_upload(s3_url, s3_endpoint):
    store = Store(s3_url)
    bucket = s3_url.split("/")[2]
    with pytest.raises(RuntimeError):
        with store.writer("big") as fh:
            for _ in range(3):
                fh.write(b"\x01" * store_module.SINGLE_PUT_MAX)
            raise RuntimeError("abort")
    client = _boto_client(s3_endpoint)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


@pytest.mark.s3
def test_s3_exclusive_create_is_a_conditional_put(s3_url, s3_endpoint):
    store = Store(s3_url)
    assert store.create("lock", b"mine")
    # Another client bypassing our store sees the same rule: the server refuses the second create.
    client = _boto_client(s3_endpoint)
    bucket, root = s3_url[5:].split("/", 1)
    with pytest.raises(Exception) as err:
        client.put_object(Bucket=bucket, Key=f"{root}/lock", Body=b"theirs", IfNoneMatch="*")
    assert "PreconditionFailed" in str(err.value)
    assert store.get("lock") == b"mine"


@pytest.mark.parametrize("where", ["memory", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_refused_conditional_write_hands_back_what_the_store_read(where, request):
    """S3 reads a refused entry back anyway (to tell a lost reply of its own write), memory:// has it at hand: the
    Conflict carries it, so a refused lease acquisition costs no second read."""
    url = request.getfixturevalue("s3_url") if where == "s3" else f"memory://refused-{uuid.uuid4().hex}"
    store = Store(url)
    version = store.put_if("var/jobs/W/t/Default.info", b"theirs", ABSENT)
    with pytest.raises(Conflict) as refused:
        store.put_if("var/jobs/W/t/Default.info", b"mine", ABSENT)
    assert refused.value.read and refused.value.current is not None
    assert (refused.value.current.data, refused.value.current.version) == (b"theirs", version)


@pytest.mark.s3
def test_s3_sees_changes_made_by_another_client(s3_url, s3_endpoint):
    store = Store(s3_url)
    assert list(store.list()) == []
    bucket, root = s3_url[5:].split("/", 1)
    _boto_client(s3_endpoint).put_object(Bucket=bucket, Key=f"{root}/external", Body=b"x")
    assert store.exists("external")
    assert list(store.list()) == ["external"]


def test_unreachable_endpoint_is_a_storage_error_naming_the_url(monkeypatch):
    monkeypatch.setattr(store_faults, "RETRY_BASE_DELAY", 0.001)
    store = Store(
        "s3://no-bucket/root",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        key="k",
        secret="s",
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
    )
    started = time.time()
    with pytest.raises(StorageError, match="s3://no-bucket/root/k"):
        store.get("k")
    assert time.time() - started < 60


# -- retries -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc, transient",
    [
        (OSError(errno.EIO, "An error occurred (InternalError) when calling GetObject: 500"), True),
        (OSError("503 Service Unavailable"), True),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), True),
        (TimeoutError("read timed out"), True),
        (FileNotFoundError("no such key"), False),
        (FileExistsError("exists"), False),
        (PermissionError("Access Denied"), False),
        (OSError(errno.EINVAL, "bad request"), False),
    ],
)
def test_transient_errors_are_classified(exc, transient):
    assert store_module.is_transient(exc) is transient


def test_retry_recovers_from_transient_errors_with_backoff(monkeypatch):
    monkeypatch.setattr(store_faults, "RETRY_BASE_DELAY", 0.001)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("An error occurred (InternalError): 500 We encountered an internal error")
        return b"ok"

    assert store_faults.retry(flaky) == b"ok"
    assert len(calls) == 3

    def always_failing():
        calls.append(1)
        raise OSError("503 SlowDown")

    calls.clear()
    with pytest.raises(OSError, match="503"):
        store_faults.retry(always_failing)
    assert len(calls) == store_module.RETRIES

    def not_found():
        calls.append(1)
        raise FileNotFoundError("gone")

    calls.clear()
    with pytest.raises(FileNotFoundError):
        store_faults.retry(not_found)
    assert len(calls) == 1


# -- transient S3 failures over real HTTP ------------------------------------------------------
@pytest.mark.s3
def test_s3_put_and_get_survive_injected_500s(s3_url, s3_server, monkeypatch):
    monkeypatch.setattr(store_faults, "RETRY_BASE_DELAY", 0.01)
    env = s3_server.env()
    proxy = FaultyProxy(s3_server.url).start()
    try:
        # botocore's own retries off: the store's retry is what must absorb the failures.
        store = Store(
            s3_url,
            endpoint_url=proxy.url,
            key=env["FSSPEC_S3_KEY"],
            secret=env["FSSPEC_S3_SECRET"],
            config_kwargs={"retries": {"max_attempts": 1}},
            skip_instance_cache=True,
        )
        proxy.fail_next(2)
        store.put("flaky/value", b"made it")
        assert proxy.injected == 2
        proxy.fail_next(2)
        assert store.get("flaky/value") == b"made it"
        assert proxy.injected == 4
        proxy.fail_next(100)
        with pytest.raises(StorageError, match="flaky/value"):
            store.get("flaky/value")
        assert proxy.injected - 4 >= store_module.RETRIES  # every store attempt reached the server (s3fs adds its own)
    finally:
        proxy.stop()


def test_durability_setting_is_checked_and_fast_mode_still_writes_atomically(tmp_path, monkeypatch):
    from scout_persist.errors import InvalidInputError

    store = Store(str(tmp_path / "root"))
    monkeypatch.setenv("SCOUT_PERSIST_DURABILITY", "sometimes")
    with pytest.raises(InvalidInputError, match=r"SCOUT_PERSIST_DURABILITY='sometimes'.*'safe'.*'fast'"):
        store.put("k", b"v")
    assert not store.exists("k")
    monkeypatch.setenv("SCOUT_PERSIST_DURABILITY", "fast")
    store.put("k", b"v")
    with store.writer("w") as fh:
        fh.write(b"streamed")
    assert store.get("k") == b"v" and store.get("w") == b"streamed"
    assert [name for name in store.ls("") if name.startswith(".tmp")] == []
