"""Shared test fixtures: the Ruby ground truth and fresh store roots."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ruby_data import RUBY_FIXTURES

# Pickles are signed with the account's own key when $SCOUT_PERSIST_HMAC_KEY is unset: the suite and every process it
# starts share one key made for the session, and the account's real key file is left alone.
os.environ.setdefault("SCOUT_PERSIST_HMAC_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="scout-key-"), "pickle.key"))


@pytest.hookimpl(trylast=True)  # after the folders' own hooks have added their markers
def pytest_collection_modifyitems(items):
    """Files marked ``slow`` run first, the longest (``slow(seconds=...)``, default 60) first of all: under
    ``pytest -n`` (make test) each file goes to a worker in this order, and a long file started last would keep the
    whole suite waiting for it."""

    def expected_seconds(item: pytest.Item) -> float:
        slow = item.get_closest_marker("slow")
        return slow.kwargs.get("seconds", 60) if slow else 0

    items.sort(key=expected_seconds, reverse=True)


@pytest.fixture(scope="session")
def ruby_fixtures() -> Path:
    """The fixture folder written by the real Ruby Scout (read-only: copy before writing)."""
    return RUBY_FIXTURES


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((RUBY_FIXTURES / "manifest.json").read_text())


@pytest.fixture
def relocated_jobs(tmp_path) -> Path:
    """A fresh copy of the fixture scout root: every absolute path inside it is stale."""
    root = tmp_path / "elsewhere" / ".scout"
    shutil.copytree(RUBY_FIXTURES / "scout-jobs", root, symlinks=True)
    return root


# -- S3: a real HTTP endpoint (moto server on 127.0.0.1, port 0) --------------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """The session's moto S3 server (tests/s3_server.py): ``.url``, ``.reset()``, ``.create_bucket()``, ``.env()``."""
    from s3_server import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server) -> str:
    """URL of the session's S3 endpoint, e.g. ``http://127.0.0.1:41234``."""
    return s3_server.url


@pytest.fixture
def s3_url(s3_server, monkeypatch) -> str:
    """A fresh bucket on an emptied server; returns ``"s3://<bucket>/root"``.

    Configuration goes through fsspec's own environment convention, exactly as a user would do it:
    ``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``, ``FSSPEC_S3_SECRET`` (plus ``AWS_*`` credentials and region)
    are set for the test, so ``Store(s3_url)`` needs no storage_options and child processes inherit them.
    fsspec reads these variables once, at import, so the fixture also patches ``fsspec.config.conf``.
    """
    import fsspec.config

    s3_server.reset()
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(
        fsspec.config.conf,
        "s3",
        {
            **fsspec.config.conf.get("s3", {}),
            "endpoint_url": s3_server.url,
            "key": s3_server.env()["FSSPEC_S3_KEY"],
            "secret": s3_server.env()["FSSPEC_S3_SECRET"],
        },
    )
    return f"s3://{s3_server.create_bucket()}/root"
