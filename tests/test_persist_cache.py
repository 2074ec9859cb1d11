"""persist(): Scout's persist cache names, Ruby's entries read and written, options, decorator, real processes."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from scout_persist.errors import InvalidInputError, LockTimeout, UnsafePathError, UnsupportedValueError
from scout_persist.layout import lock_key_for
from scout_persist.locks import Lock
from scout_persist.persist_cache import MEMORY_CACHE, locate, persist, workflow_persist
from scout_persist.rubyvalues import Symbol
from scout_persist.store import Store
from test_job_fixtures import ruby_value, same

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PY = sys.executable

WORKER = r"""
import os, sys, time
from scout_persist.persist_cache import persist
url, side, start = sys.argv[1:4]
def compute():
    with open(side, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    return {"answer": 42, "by": os.getpid()}
while time.time() < float(start):
    time.sleep(0.005)
value = persist("shared entry", "json", compute, store=url)
print(value["by"], flush=True)
"""


def ruby_options(options: dict) -> dict:
    """The manifest's encoded Ruby options hash as persist() keywords (Symbol keys kept for hashing)."""

    def decode(v):
        if isinstance(v, dict) and v.get("__ruby__") == "Hash":
            return {decode(k): decode(x) for k, x in v["pairs"]}
        if isinstance(v, dict) and v.get("__ruby__") == "Symbol":
            return Symbol(v["value"])
        if isinstance(v, dict):
            return {k: decode(x) for k, x in v.items()}
        return v

    return {str(k): v for k, v in decode(options).items()}


def never():
    raise AssertionError("the cached value should have been used")


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


@pytest.fixture
def ruby_root(tmp_path, ruby_fixtures) -> Store:
    root = tmp_path / "copy" / ".scout"
    shutil.copytree(ruby_fixtures / "scout-jobs" / "var", root / "var", symlinks=True)
    return Store(str(root))


def call_args(entry: dict) -> dict:
    kwargs = ruby_options(entry["options"])
    if entry.get("via"):
        return dict(workflow=entry["via"], **kwargs)
    return kwargs


def run_entry(entry: dict, fn, **kw):
    args = call_args(entry)
    if "workflow" in args:
        workflow = args.pop("workflow")
        return workflow_persist(workflow, entry["name"], entry["type"], fn, **args, **kw)
    return persist(entry["name"], entry["type"], fn, **args, **kw)


# -- Ruby's entries ---------------------------------------------------------------------------------------------
def test_names_match_every_fixture_entry(manifest):
    for entry in manifest["persist"]:
        args = call_args(entry)
        dir = f"var/workflows/{args.pop('workflow')}/persist" if "workflow" in args else None
        assert locate(entry["name"], store="/nowhere", dir=dir, **args).key == entry["file"], entry["case"]
    assert len(manifest["persist"]) == 10


def test_ruby_entries_are_hits(ruby_root, manifest, ruby_fixtures):
    for entry in manifest["persist"]:
        value = run_entry(entry, never, store=ruby_root)
        want = ruby_value(entry["reloaded"], ruby_root.root, manifest, ruby_fixtures)
        assert same(value, want), (entry["case"], value, want)
        assert run_entry(entry, never, store=ruby_root, no_load=True) == f"{ruby_root.url}/{entry['file']}"


def test_our_entries_have_rubys_bytes(store, ruby_root, manifest, ruby_fixtures):
    for entry in manifest["persist"]:
        value = ruby_value(entry["returned"], ruby_root.root, manifest, ruby_fixtures)
        if entry["type"] == "marshal":
            from scout_persist.ruby_marshal import loads

            value = loads(ruby_root.get(entry["file"]))
        returned = run_entry(entry, lambda: value, store=store)
        assert returned is value
        assert store.get(entry["file"]) == ruby_root.get(entry["file"]), entry["case"]
        assert not store.exists(lock_key_for(entry["file"]))  # the lock is gone once computed


# -- options ----------------------------------------------------------------------------------------------------
def test_update_no_load_persist_false(store):
    calls = []

    def compute():
        calls.append(1)
        return len(calls)

    assert persist("n", "integer", compute, store=store) == 1
    assert persist("n", "integer", compute, store=store) == 1
    assert persist("n", "integer", compute, store=store, update=True) == 2
    assert persist("n", "integer", never, store=store) == 2
    assert persist("n", "integer", compute, store=store, update=3600) == 2  # fresh enough
    old = time.time() - 7200
    os.utime(store.path("var/cache/persistence/n"), (old, old))
    assert persist("n", "integer", compute, store=store, update=3600) == 3
    assert persist("n", "integer", compute, store=store, update=datetime.datetime.now() + datetime.timedelta(1)) == 4
    assert persist("n", "integer", never, store=store, no_load=True) == store.url + "/var/cache/persistence/n"
    assert persist("n", "integer", compute, store=store, persist=False) == 5
    assert store.get("var/cache/persistence/n") == b"4"
    with pytest.raises(InvalidInputError) as err:
        persist("n", "integer", compute, store=store, update="yesterday")
    assert "yesterday" in str(err.value)


def test_dir_and_path(store, tmp_path):
    assert persist("x", "string", lambda: "in dir", store=store, dir="var/elsewhere") == "in dir"
    assert store.get("var/elsewhere/x") == b"in dir"
    outside = tmp_path / "outside" / "exact.txt"
    assert persist("ignored", "string", lambda: "exact", store=store, path=str(outside)) == "exact"
    assert outside.read_bytes() == b"exact"
    assert persist("ignored", "string", never, store=store, path=str(outside)) == "exact"
    assert persist("y", "text", lambda: "abs dir", store=store, dir=str(tmp_path / "absdir")) == "abs dir"
    assert (tmp_path / "absdir" / "y").read_text() == "abs dir"
    assert persist("k", "string", lambda: "rel path", store=store, path="var/p/k") == "rel path"
    assert store.get("var/p/k") == b"rel path"


def test_none_is_not_stored_and_errors_store_nothing(store):
    assert persist("none", "json", lambda: None, store=store) is None
    assert not store.exists("var/cache/persistence/none")
    with pytest.raises(ZeroDivisionError):
        persist("boom", "json", lambda: 1 / 0, store=store)
    assert not store.exists("var/cache/persistence/boom")
    assert not store.exists(lock_key_for("var/cache/persistence/boom"))
    assert persist("boom", "json", lambda: 1 / 0, store=store, canfail=True) is None
    with pytest.raises(UnsupportedValueError):
        persist("bad", "integer", lambda: [1, 2], store=store)
    assert not store.exists("var/cache/persistence/bad")


def test_failed_update_keeps_the_old_entry(store):
    persist("kept", "json", lambda: {"v": 1}, store=store)
    with pytest.raises(RuntimeError):
        persist("kept", "json", lambda: (_ for _ in ()).throw(RuntimeError("no")), store=store, update=True)
    assert persist("kept", "json", never, store=store) == {"v": 1}


def test_corrupt_entry_is_recomputed(store):
    store.put("var/cache/persistence/obj", b"not a pickle at all")
    assert persist("obj", "pickle", lambda: {1, 2, 3}, store=store) == {1, 2, 3}
    assert persist("obj", "pickle", never, store=store) == {1, 2, 3}


def test_memory_type(store):
    MEMORY_CACHE.clear()
    calls = []
    f = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert persist("m", "memory", f, store=store) == 1
    assert persist("m", "memory", f, store=store) == 1
    assert persist("m", "memory", f, store=store, update=True) == 2
    repo: dict = {}
    assert persist("m", "memory", f, store=store, repo=repo) == 3 and len(repo) == 1
    assert not store.exists("var/cache/persistence/m")


def test_lock_is_held_while_computing(store):
    lock_key = lock_key_for("var/cache/persistence/slow")
    seen = []

    def compute():
        seen.append(store.exists(lock_key))
        return "done"

    assert persist("slow", "string", compute, store=store) == "done"
    assert seen == [True] and not store.exists(lock_key)
    holder = Lock(store, lock_key)
    holder.acquire()
    try:
        with pytest.raises(LockTimeout) as err:
            persist("slow", "string", lambda: "x", store=store, lock_timeout=0.2, update=True)
        assert lock_key in str(err.value)
        assert store.get("var/cache/persistence/slow") == b"done"
    finally:
        holder.release()


def test_threads_compute_once(store):
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        return ["a", "b"]

    out = []
    threads = [
        threading.Thread(target=lambda: out.append(persist("t", "array", compute, store=store))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and out == [["a", "b"]] * 6


# -- decorator and workflow variant ---------------------------------------------------------------------------------
CALLS: list = []  # module data, not a closure cell: a closure's values are part of the code identity


def test_decorator_one_entry_per_call(store):
    calls = CALLS
    calls.clear()

    @persist(type="json", store=store)
    def square(x, power=2):
        CALLS.append(x)
        return x**power

    assert square(3) == 9 and square(3) == 9 and square(x=3, power=2) == 9
    assert square(4) == 16 and calls == [3, 4]
    loc = square.location(3)
    assert loc.key.startswith("var/cache/persistence/" + square.persist_name + ":")
    assert loc.key == locate(square.persist_name, store=store, other={"x": 3, "power": 2}).key
    assert store.get(loc.key) == b"9"

    @persist("fixed name", "string", store=store)
    def hello():
        CALLS.append("hello")
        return "hi"

    assert hello() == "hi" and hello() == "hi" and calls.count("hello") == 1
    assert store.get("var/cache/persistence/fixed_name") == b"hi"

    @persist
    def bare():
        return {"ok": True}

    assert bare.persist_name.endswith("bare")


def test_decorator_with_undigestable_argument_fails_clearly(store):
    @persist(type="json", store=store)
    def f(obj):
        return 1

    with pytest.raises(UnsupportedValueError):
        f(object())


def test_workflow_persist(store):
    assert workflow_persist("Baking", "flour", "json", lambda: {"g": 500}, store=store) == {"g": 500}
    assert store.get("var/workflows/Baking/persist/flour") == b'{"g":500}'
    for bad in ("../x", "a/b", "", 3):
        with pytest.raises(InvalidInputError) as err:
            workflow_persist(bad, "flour", "json", lambda: 1, store=store)
        assert repr(bad) in str(err.value)
    with pytest.raises(InvalidInputError):
        workflow_persist("Baking", "flour", "json", lambda: 1, store=store, dir="x")


def test_bad_names_and_functions(store):
    for bad in ("", "..", ".", None, 5):
        with pytest.raises(InvalidInputError) as err:
            persist(bad, "json", lambda: 1, store=store)
        assert repr(bad) in str(err.value)
    with pytest.raises(UnsafePathError):
        persist("a\x00b", "json", lambda: 1, store=store)
    with pytest.raises(UnsafePathError):
        persist("x", "json", lambda: 1, store=store, dir="../out")
    with pytest.raises(UnsafePathError):
        persist("x", "json", lambda: 1, store=store, path="../out")
    with pytest.raises(InvalidInputError):
        persist("x", "json", 42, store=store)
    # '/' in a name stays inside the folder: it becomes '·'
    persist("a/../../b", "json", lambda: 1, store=store)
    assert store.exists("var/cache/persistence/a\u00b7..\u00b7..\u00b7b")


# -- real processes ----------------------------------------------------------------------------------------------------
def _contend(url: str, side, n: int) -> list[str]:
    start = time.time() + 2.0
    procs = [
        subprocess.Popen([PY, "-c", WORKER, url, str(side), str(start)], stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=180)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return outs


def test_four_processes_compute_once(store, tmp_path):
    side = tmp_path / "side-effect"
    outs = _contend(store.url, side, 4)
    runs = side.read_text().splitlines()
    assert len(runs) == 1  # the acceptance criterion: one computation for 4 concurrent callers
    assert outs == [runs[0]] * 4  # everyone got the value the single run stored
    assert persist("shared entry", "json", never, store=store)["by"] == int(runs[0])


def test_processes_compute_once_on_s3(s3_url, tmp_path):
    side = tmp_path / "side-effect"
    outs = _contend(s3_url, side, 3)
    runs = side.read_text().splitlines()
    assert len(runs) == 1 and outs == [runs[0]] * 3
    assert Store(s3_url).exists("var/cache/persistence/shared_entry")


# -- Ruby's name collides; the recorded signature does not ---------------------------------------------------------
def test_a_dose_that_rounds_like_another_is_its_own_entry(store):
    """Ruby's digest_str writes 10.04 and 10.01 as '10.0': one file name for both, yet never the other's value."""

    @persist(type="float", store=store)
    def dose(mg):
        return mg * 2

    assert dose.location(10.01).key == dose.location(10.04).key  # Ruby's name: kept exactly
    assert dose(10.01) == 20.02
    assert dose(10.04) == 20.08  # the neighbouring dose's entry is a miss
    assert dose(10.01) == 20.02  # two callers alternating on one name recompute each time, never serve the other


def test_long_lists_differing_past_rubys_abbreviation_do_not_collide(store):
    a = list(range(200_000))
    b = list(a)
    b[1000] = -1
    calls = []

    def total(values):
        calls.append(1)
        return sum(values)

    assert locate("sum", store=store, other={"v": a}).key == locate("sum", store=store, other={"v": b}).key
    assert persist("sum", "integer", lambda: total(a), store=store, other={"v": a}) == sum(a)
    assert persist("sum", "integer", lambda: total(b), store=store, other={"v": b}) == sum(b)
    assert persist("sum", "integer", never, store=store, other={"v": b}) == sum(b) and len(calls) == 2
    assert persist("sum", "integer", never, store=store, other={"v": b}, no_load=True).endswith(
        locate("sum", store=store, other={"v": b}).key
    )


def test_an_edited_decorated_function_does_not_get_its_old_value(store):
    @persist("scaled", "integer", store=store)
    def scale(x):
        return x * 2

    assert scale(3) == 6
    first = scale.location(3).key

    @persist("scaled", "integer", store=store)
    def scale(x):  # the same function, edited
        return x * 3

    assert scale.location(3).key == first and scale(3) == 9


def test_the_sidecar_records_the_signature_and_the_bytes(store):
    from scout_persist.checksums import checksum
    from scout_persist.persist_cache import entry_signature

    persist("dose", "float", lambda: 20.08, store=store, other={"mg": 10.04})
    loc = locate("dose", store=store, other={"mg": 10.04})
    side = json.loads(store.get(loc.sidecar))
    assert side["writer"] == "scout_persist.persist" and side["status"] == "done"
    assert side["signature"] == entry_signature("dose", "float", {"other": {"mg": 10.04}})
    assert side["signature"] != entry_signature("dose", "float", {"other": {"mg": 10.01}})
    assert side["payload"] == {"format": "scout", "type": "float", "stored_size": 5, "checksum": checksum(b"20.08")}
    assert store.get(loc.key) == b"20.08"  # Ruby's bytes


def test_an_entry_whose_bytes_are_not_the_ones_its_sidecar_names_is_a_miss(store):
    """A write cut between the sidecar and the entry, or an entry Ruby rewrote (Ruby keeps no sidecar)."""
    persist("n", "integer", lambda: 1, store=store)
    store.put("var/cache/persistence/n", b"2")
    assert persist("n", "integer", lambda: 3, store=store) == 3
    assert persist("n", "integer", never, store=store) == 3
    store.delete("var/cache/persistence/n")  # the sidecar of a new value was written, the value was not
    assert persist("n", "integer", lambda: 4, store=store) == 4
    assert persist("n", "integer", never, store=store, no_load=True) == store.url + "/var/cache/persistence/n"
    store.put("var/cache/persistence/n", b"5")
    assert persist("n", "integer", lambda: 6, store=store, no_load=True) == store.url + "/var/cache/persistence/n"
    assert store.get("var/cache/persistence/n") == b"6"  # no_load verifies the bytes too


def test_the_sidecar_is_written_before_the_entry(store, monkeypatch):
    order = []
    real_put = Store.put

    def put(self, key, data, **options):
        order.append(key.rsplit("/", 1)[-1])
        return real_put(self, key, data, **options)

    monkeypatch.setattr(Store, "put", put)
    persist("ordered", "string", lambda: "x", store=store)
    assert [k for k in order if k.startswith("ordered")] == ["ordered.info", "ordered"]


def test_a_sidecar_that_is_not_persists_is_a_miss(store):
    import scout_persist

    scout_persist.save({"saved": True}, "shared name", store=store)  # save() writes its own sidecar
    assert persist("shared name", "json", lambda: {"computed": True}, store=store) == {"computed": True}
    assert persist("shared name", "json", never, store=store) == {"computed": True}
    store.put("var/cache/persistence/shared_name.info", b"{not json")
    assert persist("shared name", "json", lambda: {"again": True}, store=store) == {"again": True}


def test_entries_without_a_sidecar_keep_rubys_rules(store):
    """Ruby's entries (and ours from before signatures) carry no signature: served by their name, as Ruby does."""
    key = locate("dose", store=store, other={"mg": 10.01}).key
    store.put(key, b"20.02")
    assert persist("dose", "float", never, store=store, other={"mg": 10.04}) == 20.02  # Ruby's name, Ruby's rule
    assert not store.exists(key + ".info")


def test_memory_entries_are_kept_by_signature_too(store):
    repo: dict = {}
    assert persist("m", "memory", lambda: "a", store=store, repo=repo, other={"x": 10.01}) == "a"
    assert persist("m", "memory", lambda: "b", store=store, repo=repo, other={"x": 10.04}) == "b"
    assert persist("m", "memory", never, store=store, repo=repo, other={"x": 10.01}) == "a"


def test_colliding_entries_on_s3(s3_url):
    assert persist("dose", "float", lambda: 20.02, store=s3_url, other={"mg": 10.01}) == 20.02
    assert persist("dose", "float", lambda: 20.08, store=s3_url, other={"mg": 10.04}) == 20.08
    assert persist("dose", "float", never, store=s3_url, other={"mg": 10.04}) == 20.08
