"""The conformance suite every store passes: subclass :class:`StoreConformance` and provide a ``store`` fixture.

    from scout_persist.testing import StoreConformance

    class TestMyBackend(StoreConformance):
        @pytest.fixture
        def store(self):
            return Store("mybackend://bucket/unique-root")  # empty, unique per test

Checks go through the store and, by a *side door*, straight to the storage (a separate fsspec file system on the
store's URL; override :meth:`StoreConformance.side_door` for a backend fsspec cannot open).  Behaviour a backend
cannot have is skipped by its :class:`~scout_persist.store.Capabilities` (folders, conditional writes, multipart).
The suite needs pytest (``pip install 'scout-persist[testing]'``); ``import scout_persist`` never imports it.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from ..errors import CorruptPayloadError, KeyNotFound, StorageError, UnsafePathError
from ..zstd_codec import compress_stream, open_decompressed
from . import ABSENT, SINGLE_PUT_MAX, Conflict, Store

UNSAFE_KEYS = ["../escape", "a/../../escape", "/abs/key", "nul\x00key"]
LARGE_SIZE = 3 * SINGLE_PUT_MAX + 12345  # past the single-PUT limit: object stores take the multipart path
CHUNK = 1 << 20


def _chunks(total: int, seed: bytes = b"scout") -> Iterator[bytes]:
    """Deterministic, incompressible-looking bytes in CHUNK pieces."""
    block = hashlib.sha256(seed).digest() * (CHUNK // 32)
    sent, counter = 0, 0
    while sent < total:
        piece = counter.to_bytes(8, "little") + block[8:]
        piece = piece[: total - sent]
        yield piece
        sent += len(piece)
        counter += 1


class _Boom(Exception):
    """Raised inside a writer block to abort it."""


class StoreConformance:
    """Behaviour every :class:`~scout_persist.store.Store` backend must show."""

    # -- side door ------------------------------------------------------------------
    def side_door(self, store: Store) -> tuple[Any, str]:
        """The storage of ``store`` without it: ``(fs, root)`` of a separate fsspec file system on its URL."""
        import fsspec.core  # lazy: local stores never load fsspec

        fs, root = fsspec.core.url_to_fs(store.url, **store.storage_options)
        return fs, root

    def test_writes_land_where_the_side_door_sees_them(self, store: Store) -> None:
        store.put("side/a", b"through the store")
        fs, root = self.side_door(store)
        fs.invalidate_cache()
        assert fs.cat_file(f"{root}/side/a") == b"through the store"
        fs.pipe_file(f"{root}/side/b", b"through the side door")
        store.forget("side/b")
        assert store.get("side/b") == b"through the side door"
        store.delete("side/a")
        fs.invalidate_cache()
        assert not fs.exists(f"{root}/side/a")

    def test_a_store_travels_to_workers(self, store: Store) -> None:
        """Blocks and tasks are pickled to process-pool and Dask workers: a store must survive it."""
        store.put("pickled", b"v")
        copy = pickle.loads(pickle.dumps(store))  # noqa: S301 - the test's own pickle
        assert copy.url == store.url and copy.get("pickled") == b"v"

    def test_conditional_writes_are_atomic_where_declared(self, store: Store) -> None:
        if not store.capabilities.conditional_writes:
            pytest.skip("this backend declares no conditional writes (leases there use lock files)")
        first = store.put_if("cond", b"one", ABSENT)
        with pytest.raises(Conflict):
            store.put_if("cond", b"two", ABSENT)
        second = store.put_if("cond", b"two", first)
        with pytest.raises(Conflict):
            store.put_if("cond", b"three", first)  # the version moved on
        assert store.get_versioned("cond").version == second
        assert not store.delete_if("cond", first) and store.delete_if("cond", second)
        assert not store.exists("cond")

    def test_a_refused_conditional_write_that_read_the_entry_tells_what_it_found(self, store: Store) -> None:
        if not store.capabilities.conditional_writes:
            pytest.skip("this backend declares no conditional writes (leases there use lock files)")
        version = store.put_if("cond", b"one", ABSENT)
        with pytest.raises(Conflict) as refused:
            store.put_if("cond", b"two", ABSENT)
        if refused.value.read:  # optional: what the backend read when refusing spares the caller a read
            found = refused.value.current
            assert found is not None and (found.data, found.version) == (b"one", version)
        store.delete("cond")
        with pytest.raises(Conflict) as refused:
            store.put_if("cond", b"three", version)  # gone since
        assert not refused.value.read or refused.value.current is None
        assert not store.exists("cond")

    # -- put / get ------------------------------------------------------------------
    def test_put_get_roundtrip(self, store: Store) -> None:
        store.put("var/jobs/W/t/Default", b"hello\n")
        assert store.get("var/jobs/W/t/Default") == b"hello\n"

    def test_put_replaces_whole_value(self, store: Store) -> None:
        store.put("k", b"a much longer first value")
        store.put("k", b"short")
        assert store.get("k") == b"short"

    def test_empty_and_binary_values(self, store: Store) -> None:
        store.put("empty", b"")
        store.put("bin", bytes(range(256)))
        assert store.get("empty") == b""
        assert store.get("bin") == bytes(range(256))
        assert store.size("empty") == 0

    def test_get_missing_names_key_and_store(self, store: Store) -> None:
        with pytest.raises(KeyNotFound) as err:
            store.get("no/such/entry")
        assert "no/such/entry" in str(err.value) and store.url in str(err.value)
        assert isinstance(err.value, FileNotFoundError)

    def test_get_folder_is_not_an_entry(self, store: Store) -> None:
        store.put("folder/inside", b"x")
        with pytest.raises(KeyNotFound, match="folder"):
            store.get("folder")
        with pytest.raises(KeyNotFound, match="folder"):
            store.open("folder")

    def test_put_below_an_entry_is_a_storage_error_and_keeps_the_entry(self, store: Store) -> None:
        store.put("entry", b"keep me")
        if store.capabilities.folders:
            with pytest.raises(StorageError, match="entry"):
                store.put("entry/child", b"x")
        else:
            # Object stores have no folders: "entry/child" is just another key next to "entry".
            # Other backends with folders refuse it like local files do.
            try:
                store.put("entry/child", b"x")
            except StorageError as err:
                assert "entry" in str(err)
            else:
                assert store.get("entry/child") == b"x"
        assert store.get("entry") == b"keep me"

    def test_put_over_a_folder_is_refused_and_keeps_the_folder(self, store: Store) -> None:
        store.put("f/inside", b"x")
        if store.capabilities.folders:
            with pytest.raises(StorageError, match="folder"):
                store.put("f", b"y")
        assert store.get("f/inside") == b"x"

    def test_unicode_and_space_keys(self, store: Store) -> None:
        key = "var/jobs/W/t/Blueberry muffin ñ·x"
        store.put(key, b"v")
        assert store.get(key) == b"v"
        assert list(store.list("var/jobs/W/t")) == [key]

    # -- exists / isdir ---------------------------------------------------------------
    def test_exists_entries_and_folders(self, store: Store) -> None:
        assert not store.exists("a/b")
        store.put("a/b", b"x")
        assert store.exists("a/b")
        assert store.exists("a")
        assert store.isdir("a") and not store.isdir("a/b")
        assert not store.exists("a/c")

    def test_exists_never_reads_the_payload(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        store.put("payload", b"x" * 1000)

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise AssertionError("exists() read a payload")

        with monkeypatch.context() as patch:
            for name in ("get", "get_versioned", "open"):
                patch.setattr(store.backend, name, refuse)
            fs = getattr(store.backend, "fs", None)  # the file system of an fsspec backend
            for name in ("cat_file", "cat", "open", "_open", "get_file"):
                if hasattr(fs, name):
                    patch.setattr(fs, name, refuse)
            patch.setattr("builtins.open", refuse)
            found, missing = store.exists("payload"), store.exists("missing")
        assert found and not missing

    # -- delete ------------------------------------------------------------------
    def test_delete_entry_and_missing(self, store: Store) -> None:
        store.put("d/x", b"1")
        store.delete("d/x")
        assert not store.exists("d/x")
        store.delete("d/x")  # absent: ignored
        with pytest.raises(KeyNotFound):
            store.get("d/x")

    def test_delete_folder_needs_recursive(self, store: Store) -> None:
        store.put("tree/a", b"1")
        store.put("tree/sub/b", b"2")
        if store.capabilities.local_paths:
            with pytest.raises(StorageError, match="recursive=True"):
                store.delete("tree")
            assert store.get("tree/a") == b"1"
        store.delete("tree", recursive=True)
        assert list(store.list("tree")) == []
        assert not store.exists("tree/sub/b")

    # -- list / ls ---------------------------------------------------------------
    def test_list_is_sorted_recursive_files_only(self, store: Store) -> None:
        for key in ["p/z", "p/a", "p/sub/m", "p/sub/deeper/q", "pp/other", "p2"]:
            store.put(key, b"v")
        assert list(store.list("p")) == ["p/a", "p/sub/deeper/q", "p/sub/m", "p/z"]
        assert list(store.list("p/sub")) == ["p/sub/deeper/q", "p/sub/m"]
        assert list(store.list()) == sorted(["p/z", "p/a", "p/sub/m", "p/sub/deeper/q", "pp/other", "p2"])
        assert list(store.list("missing")) == []

    def test_ls_names_directly_below(self, store: Store) -> None:
        for key in ["q/a", "q/b/c", "q/b/d"]:
            store.put(key, b"v")
        assert store.ls("q") == ["a", "b"]
        assert store.ls("q/b") == ["c", "d"]
        assert store.ls("nothing/here") == []

    def test_key_of_inverts_path(self, store: Store) -> None:
        store.put("x/y z", b"1")
        assert store.key_of(store.path("x/y z")) == "x/y z"
        with pytest.raises(UnsafePathError):
            store.key_of("/definitely/elsewhere")

    # -- size / mtime ------------------------------------------------------------------
    def test_size_and_mtime(self, store: Store) -> None:
        before = time.time()
        store.put("s", b"12345")
        assert store.size("s") == 5
        mtime = store.mtime("s")
        assert mtime is None or before - 5 <= mtime <= time.time() + 5
        with pytest.raises(KeyNotFound, match="missing"):
            store.size("missing")
        with pytest.raises(KeyNotFound, match="missing"):
            store.mtime("missing")

    # -- open ---------------------------------------------------------------------
    def test_open_streams(self, store: Store) -> None:
        store.put("o", b"0123456789")
        with store.open("o") as fh:
            assert fh.read(4) == b"0123"
            assert fh.read() == b"456789"

    def test_open_readers_are_independent(self, store: Store) -> None:
        store.put("o", b"abcdef")
        with store.open("o") as one, store.open("o") as two:
            assert one.read(3) == b"abc"
            assert two.read(3) == b"abc"

    def test_open_missing_and_write_modes(self, store: Store) -> None:
        with pytest.raises(KeyNotFound, match="nope"):
            store.open("nope")
        with pytest.raises(ValueError, match="writer"):
            store.open("o", "wb")

    # -- writer ---------------------------------------------------------------------
    def test_writer_streams_and_publishes_at_the_end(self, store: Store) -> None:
        with store.writer("w/out") as fh:
            fh.write(b"part1,")
            fh.write(b"part2")
            assert not store.exists("w/out")
        assert store.get("w/out") == b"part1,part2"
        assert list(store.list("w")) == ["w/out"]

    @pytest.mark.parametrize("size", [10, LARGE_SIZE], ids=["small", "large"])
    def test_writer_abort_publishes_nothing(self, store: Store, size: int) -> None:
        with pytest.raises(_Boom):
            with store.writer("w/aborted") as fh:
                for piece in _chunks(size):
                    fh.write(piece)
                raise _Boom("the task failed mid-write")
        assert not store.exists("w/aborted")
        assert list(store.list()) == []

    def test_writer_abort_keeps_the_old_value(self, store: Store) -> None:
        store.put("w/kept", b"old")
        with pytest.raises(_Boom):
            with store.writer("w/kept") as fh:
                fh.write(b"new, half written")
                raise _Boom()
        assert store.get("w/kept") == b"old"
        assert list(store.list("w")) == ["w/kept"]

    def test_caller_errors_pass_through_the_writer_unchanged(self, store: Store) -> None:
        with pytest.raises(FileNotFoundError) as err:
            with store.writer("w/x"):
                raise FileNotFoundError("the caller's own input is missing")
        assert "caller's own" in str(err.value) and not isinstance(err.value, KeyNotFound)

    def test_large_streaming_write_and_read(self, store: Store) -> None:
        expected = hashlib.sha256()
        with store.writer("big/blob") as fh:
            for piece in _chunks(LARGE_SIZE):
                expected.update(piece)
                fh.write(piece)
        assert store.size("big/blob") == LARGE_SIZE
        got = hashlib.sha256()
        with store.open("big/blob") as fh:
            while piece := fh.read(CHUNK):
                got.update(piece)
        assert got.hexdigest() == expected.hexdigest()

    def test_compressed_stream_through_the_store(self, store: Store) -> None:
        plain = b"".join(b"row %d\tvalue\n" % i for i in range(200_000))
        with store.writer("c/result") as fh:
            record = compress_stream(io.BytesIO(plain), fh, "zstd:3")
        assert store.size("c/result") == record["stored_size"] < len(plain) // 5
        with store.open("c/result") as fh:
            assert open_decompressed(fh, store.where("c/result"), record).read() == plain

    def test_truncated_payload_is_detected_naming_the_url(self, store: Store) -> None:
        with store.writer("c/result") as fh:
            record = compress_stream(io.BytesIO(b"payload " * 100_000), fh, "zstd:3")
        store.put("c/result", store.get("c/result")[:-3])
        with store.open("c/result") as fh, pytest.raises(CorruptPayloadError, match="c/result"):
            open_decompressed(fh, store.where("c/result")).read()
        with store.open("c/result") as fh, pytest.raises(CorruptPayloadError, match="truncated"):
            open_decompressed(fh, store.where("c/result"), record).read()

    # -- concurrency ------------------------------------------------------------------
    def test_readers_see_old_or_new_never_partial(self, store: Store) -> None:
        values = [b"A" * 200_000, b"B" * 300_000]
        store.put("atomic", values[0])
        stop = threading.Event()
        seen: list[bytes] = []

        def writer() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                store.put("atomic", values[i % 2])

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(30):
                seen.append(store.get("atomic"))
        finally:
            stop.set()
            thread.join()
        assert all(value in values for value in seen)

    # -- exclusive create --------------------------------------------------------------
    def test_create_is_exclusive(self, store: Store) -> None:
        assert store.create("locks/one", b"first") is True
        assert store.create("locks/one", b"second") is False
        assert store.get("locks/one") == b"first"

    def test_create_racing_threads_one_winner(self, store: Store) -> None:
        results: dict[int, bool] = {}
        start = threading.Barrier(8)

        def contend(i: int) -> None:
            start.wait()
            results[i] = store.create("race/lock", b"owner %d" % i)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [i for i, won in results.items() if won]
        assert len(winners) == 1
        assert store.get("race/lock") == b"owner %d" % winners[0]

    def test_create_leaves_no_temporary_entries(self, store: Store) -> None:
        store.create("c1", b"x")
        store.create("c1", b"y")
        assert list(store.list()) == ["c1"]
        assert store.ls() == ["c1"]

    # -- keys ---------------------------------------------------------------------------
    @pytest.mark.parametrize("key", UNSAFE_KEYS)
    def test_unsafe_keys_are_refused_everywhere(self, store: Store, key: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.get(key),
            lambda: store.put(key, b"x"),
            lambda: store.create(key, b"x"),
            lambda: store.exists(key),
            lambda: store.delete(key),
            lambda: list(store.list(key)),
            lambda: store.ls(key),
            lambda: store.size(key),
            lambda: store.open(key),
            lambda: store.writer(key).__enter__(),
        ]
        for call in calls:
            with pytest.raises(UnsafePathError) as err:
                call()
            assert repr(key) in str(err.value)
        assert list(store.list()) == []

    def test_child_store_is_rooted_below(self, store: Store) -> None:
        child = store.child("sub/root")
        child.put("k", b"v")
        assert store.get("sub/root/k") == b"v"
        assert list(child.list()) == ["k"]
        with pytest.raises(UnsafePathError):
            child.get("../escape")
