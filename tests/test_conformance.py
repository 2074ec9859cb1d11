"""The shipped conformance suite on every backend: local files, memory:// and S3 over HTTP (moto)."""

from __future__ import annotations

import uuid

import pytest

from scout_persist.store import Store
from scout_persist.testing import StoreConformance


class TestLocalStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path) -> Store:
        return Store(str(tmp_path / "root"))


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Store:
        # memory:// is one dict per process: a unique root per test keeps tests apart.
        store = Store(f"memory://conformance-{uuid.uuid4().hex}")
        yield store
        store.delete("", recursive=True)


class TestGenericBackendStore(StoreConformance):
    """A backend the store has no special case for (fsspec's dir:// over local files): temp key + move,
    fsspec's "xb" exclusive create."""

    @pytest.fixture
    def store(self, tmp_path) -> Store:
        import fsspec

        store = Store("dir://root", path=str(tmp_path), fs=fsspec.filesystem("file"))
        assert not store.capabilities.conditional_writes and not store.capabilities.local_paths
        return store


@pytest.mark.s3
class TestS3Store(StoreConformance):
    @pytest.fixture
    def store(self, s3_url) -> Store:
        return Store(s3_url)
