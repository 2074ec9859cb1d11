"""Eight processes asking for one uncached result compute it once; pickles from others are not trusted."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from scout_persist.errors import UntrustedPayloadError
from scout_persist.persist_cache import persist
from scout_persist.pickle_envelope import dump_pickle, load_pickle
from scout_persist.pickle_key import HMAC_ENV

pytestmark = pytest.mark.slow  # one of the longest files: scheduled first (tests/conftest.py)

PROCESSES = 8


def _ask(url: str, counter: str, barrier, out) -> None:
    def compute():
        with open(counter, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough that every other process is waiting on the lock
        return {"answer": 42, "by": os.getpid()}

    barrier.wait()
    out.put(persist("expensive_result", "pickle", compute, store=url))


def run_eight(url: str, tmp_path) -> tuple[list[str], list]:
    ctx = multiprocessing.get_context("spawn")
    counter = tmp_path / "computations"
    barrier, out = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_ask, args=(url, str(counter), barrier, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return counter.read_text().split(), results


def test_eight_processes_one_computation_local(tmp_path):
    computations, results = run_eight(str(tmp_path / "root"), tmp_path)
    assert len(computations) == 1
    assert all(r == results[0] for r in results) and results[0]["answer"] == 42


@pytest.mark.s3
def test_eight_processes_one_computation_s3(s3_url, tmp_path):
    computations, results = run_eight(s3_url, tmp_path)
    assert len(computations) == 1
    assert all(r == results[0] for r in results)


class _Boobytrap:
    """Unpickling this would create a file: proof that a payload was (or was not) unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_from_someone_else_is_refused_before_unpickling(tmp_path, monkeypatch):
    trap = tmp_path / "unpickled"
    monkeypatch.delenv(HMAC_ENV, raising=False)
    foreign = dump_pickle(_Boobytrap(str(trap)))  # written without any key: no HMAC
    forged = dump_pickle(_Boobytrap(str(trap)), hmac_key=b"attacker key")
    monkeypatch.setenv(HMAC_ENV, "our team key, of 32 bytes or more")
    for payload in (foreign, forged):
        with pytest.raises(UntrustedPayloadError) as err:
            load_pickle(payload, where="var/jobs/W/t/job")
        assert "var/jobs/W/t/job" in str(err.value) and HMAC_ENV in str(err.value)
    assert not trap.exists(), "a payload was unpickled before its HMAC was checked"
    ours = dump_pickle({"fine": True})
    assert load_pickle(ours) == {"fine": True}


def test_tampered_payload_with_a_valid_key_is_refused(monkeypatch):
    monkeypatch.setenv(HMAC_ENV, "our team key, of 32 bytes or more")
    data = bytearray(dump_pickle({"x": list(range(100))}))
    data[-5] ^= 0x01
    with pytest.raises(UntrustedPayloadError):
        load_pickle(bytes(data), where="tampered")
