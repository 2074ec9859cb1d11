"""Output persistence outside Prefect (scout_persist.save/load/exists/invalidate), the maximum entry size, and
``scout-persist gc --max-size`` least recently used first over jobs and saved outputs."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

import scout_persist
from scout_persist.cli import main
from scout_persist.errors import CorruptPayloadError, InvalidInputError, KeyNotFound
from scout_persist.job import JobWriter
from scout_persist.outputs import CacheSizeWarning
from scout_persist.persist_cache import persist
from scout_persist.store import Store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def root_url(request, tmp_path) -> str:
    return str(tmp_path / "root") if request.param == "local" else request.getfixturevalue("s3_url")


def test_save_load_exists_invalidate(root_url):
    frame = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="ID"))
    values = {
        "hist": np.histogram(np.arange(100), bins=5)[0],
        "table": frame,
        "notes": {"k": [1, 2]},
        "anything": {"set": {1, 2}},
    }
    formats = {"hist": "npy", "table": "parquet", "notes": "json", "anything": "pickle"}
    for key, value in values.items():
        assert not scout_persist.exists(key, store=root_url)
        back = scout_persist.save(value, key, store=root_url, format="json" if key == "notes" else None)
        assert scout_persist.exists(key, store=root_url)
        loaded = scout_persist.load(key, store=root_url)
        if isinstance(value, np.ndarray):
            assert np.array_equal(loaded, value) and loaded.dtype == value.dtype and np.array_equal(back, loaded)
        elif isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(loaded, value) and pd.testing.assert_frame_equal(back, loaded)
        else:
            assert loaded == value == back
    store = Store(root_url)
    for key, fmt in formats.items():
        sidecar = json.loads(store.get(f"var/cache/persistence/{key}.info"))
        assert sidecar["payload"]["format"] == fmt and sidecar["key"] == key
    persist("ruby_style", "json", lambda: {"kept": True}, store=root_url)  # persist() entries are not save()'s
    assert scout_persist.invalidate("hist", store=root_url) == 1
    assert not scout_persist.exists("hist", store=root_url)
    assert scout_persist.invalidate("hist", store=root_url) == 0
    assert scout_persist.invalidate(store=root_url) == 3
    assert sorted(store.list("var/cache/persistence")) == [  # persist()'s entry and its signature sidecar
        "var/cache/persistence/ruby_style",
        "var/cache/persistence/ruby_style.info",
    ]
    with pytest.raises(KeyNotFound, match=r"no saved output .*table.* \(nothing was saved under this key"):
        scout_persist.load("table", store=root_url)


def test_save_and_persist_name_the_same_file(tmp_path):
    from scout_persist.persist_cache import locate

    scout_persist.save(np.arange(3), "a/b", store=str(tmp_path))
    assert locate("a/b", store=str(tmp_path)).key == "var/cache/persistence/a\u00b7b"
    assert (tmp_path / "var/cache/persistence/a\u00b7b").exists()


def test_a_damaged_output_is_not_returned(tmp_path):
    scout_persist.save(np.arange(1000), "arr", store=str(tmp_path), compression="none")
    path = tmp_path / "var/cache/persistence/arr"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptPayloadError, match="does not match the checksum"):
        scout_persist.load("arr", store=str(tmp_path))


def test_outputs_over_the_maximum_entry_size_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOUT_PERSIST_MAX_ENTRY_SIZE", "1K")
    big = np.arange(1000, dtype=np.int64)
    with pytest.warns(
        CacheSizeWarning,
        match=r"the output is 8\d\d\d bytes, over \$SCOUT_PERSIST_MAX_ENTRY_SIZE=1K "
        r"\(1024 bytes\); it was not cached",
    ):
        back = scout_persist.save(big, "big", store=str(tmp_path), compression="none")
    assert back is big and not scout_persist.exists("big", store=str(tmp_path))
    scout_persist.save(np.arange(10), "small", store=str(tmp_path))
    assert scout_persist.exists("small", store=str(tmp_path))
    calls = []
    with pytest.warns(CacheSizeWarning, match="not cached"):
        assert persist("p", "json", lambda: calls.append(1) or list(range(1000)), store=str(tmp_path)) == list(
            range(1000)
        )
    with pytest.warns(CacheSizeWarning):
        persist("p", "json", lambda: calls.append(1) or list(range(1000)), store=str(tmp_path))
    assert len(calls) == 2  # not cached: computed again
    monkeypatch.setenv("SCOUT_PERSIST_MAX_ENTRY_SIZE", "lots")
    with pytest.raises(InvalidInputError, match=r"\$SCOUT_PERSIST_MAX_ENTRY_SIZE: size 'lots' is not a number"):
        scout_persist.save(np.arange(3), "x", store=str(tmp_path))


def test_bad_keys_and_none_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="output key '' is not usable"):
        scout_persist.save(1, "", store=str(tmp_path))
    with pytest.raises(InvalidInputError, match=r"save\(None, 'k'\): None is not an output; invalidate\('k'\)"):
        scout_persist.save(None, "k", store=str(tmp_path))


def _age(path, seconds_ago: float, used_ago: float | None = None) -> None:
    now = time.time()
    used = now - (seconds_ago if used_ago is None else used_ago)
    os.utime(path, (used, now - seconds_ago))


def _job(store: Store, name: str, size: int) -> str:
    writer = JobWriter(store, f"var/jobs/W/t/{name}", type="binary")
    writer.setup()
    writer.save(b"x" * size)
    writer.done()
    return f"var/jobs/W/t/{name}"


def test_gc_max_size_removes_least_recently_used_first(tmp_path, capsys):
    store = Store(str(tmp_path))
    root = tmp_path
    for i, name in enumerate(["old", "mid", "new"]):
        scout_persist.save(np.zeros(1000, dtype=np.int64), name, store=str(root), compression="none")
        _age(root / f"var/cache/persistence/{name}", 3000 - i * 1000)
    scout_persist.save(np.zeros(1000, dtype=np.int64), "pinned", store=str(root), compression="none", pin=True)
    _age(root / "var/cache/persistence/pinned", 9000)
    for i, name in enumerate(["job_old", "job_new"]):
        key = _job(store, name, 8000)
        for suffix in ("", ".info"):
            _age(root / (key + suffix), 2500 - i * 2000)
    # "old" was written first but loaded a moment ago: recently used
    scout_persist.load("old", store=str(root))

    def size(*paths):
        return sum((root / p).stat().st_size for p in paths)

    entries = [f"var/cache/persistence/{n}{s}" for n in ("old", "mid", "new", "pinned") for s in ("", ".info")]
    jobs = [f"var/jobs/W/t/{n}{s}" for n in ("job_old", "job_new") for s in ("", ".info")]
    total = size(*entries, *jobs)
    # room for everything but the two least recently used: job_old (2500 s ago), then mid (2000 s ago)
    limit = (
        total
        - size("var/jobs/W/t/job_old", "var/jobs/W/t/job_old.info")
        - size("var/cache/persistence/mid", "var/cache/persistence/mid.info")
    )
    capsys.readouterr()
    assert main(["gc", str(root), "--max-size", str(limit), "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[-1] for line in out.splitlines()] == ["W/t/job_old", "var/cache/persistence/mid"]
    assert scout_persist.exists("mid", store=str(root))
    assert main(["gc", str(root), "--max-size", str(limit)]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[-1] for line in out.splitlines()] == ["W/t/job_old", "var/cache/persistence/mid"]
    assert "gc: 2 entries" in err
    assert not scout_persist.exists("mid", store=str(root)) and not (root / "var/jobs/W/t/job_old").exists()
    # nothing fits under 1 byte but the pinned output stays whatever the budget
    assert main(["gc", str(root), "--max-size", "1"]) == 0
    out, err = capsys.readouterr()
    assert scout_persist.exists("pinned", store=str(root)) and not scout_persist.exists("old", store=str(root))
    assert "remain above the limit" in err and "pinned or running" in err


def test_loads_record_a_use_without_changing_the_modification_time(tmp_path):
    scout_persist.save(np.arange(3), "a", store=str(tmp_path))
    path = tmp_path / "var/cache/persistence/a"
    os.utime(path, (1_000_000, 1_000_000))
    scout_persist.load("a", store=str(tmp_path))
    st = os.stat(path)
    assert st.st_mtime == 1_000_000 and st.st_atime > time.time() - 60


def test_a_sidecar_without_a_record_is_refused(tmp_path):
    scout_persist.save(np.arange(3), "a", store=str(tmp_path))
    (tmp_path / "var/cache/persistence/a.info").write_text(json.dumps({"status": "done"}))
    with pytest.raises(CorruptPayloadError, match=r"a.info holds no payload record; it was not written by save\(\)"):
        scout_persist.load("a", store=str(tmp_path))
