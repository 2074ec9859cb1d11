"""One Prefect test harness for the whole session (ephemeral API, PREFECT_HOME in a tmp dir, heartbeats off)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "baking_flow.py"
RUBY_JOBS = Path(__file__).resolve().parents[1] / "data" / "ruby-scout" / "scout-jobs"


def pytest_collection_modifyitems(items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_HOME: str(home)}):
        with prefect_test_harness(server_startup_timeout=120):
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
                yield


@pytest.fixture
def scout_root(tmp_path, monkeypatch) -> Path:
    """A fresh, empty store root named by SCOUT_PERSIST_URL."""
    root = tmp_path / "scout"
    root.mkdir()
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
    return root


@pytest.fixture
def body_log(tmp_path, monkeypatch) -> Path:
    """Side-effect file: the example's task bodies append their name to it."""
    log = tmp_path / "bodies.log"
    monkeypatch.setenv("BAKING_BODY_LOG", str(log))
    return log


@pytest.fixture(scope="session")
def baking_module():
    spec = importlib.util.spec_from_file_location("baking_flow_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def legacy_root(tmp_path, monkeypatch) -> Path:
    """The Ruby scout-jobs tree copied into a fresh root, named by SCOUT_PERSIST_URL."""
    root = tmp_path / "elsewhere" / ".scout"
    shutil.copytree(RUBY_JOBS, root, symlinks=True)
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(root))
    return root
