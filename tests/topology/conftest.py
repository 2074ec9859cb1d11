"""The topology's long-lived parts, started once for tests/topology: a Prefect server (its own PREFECT_HOME, SQLite)
and a moto S3 server, both on 127.0.0.1 with ports chosen by the OS.  Workers, pools and buckets are per test.

``SCOUT_PERSIST_SOAK=1`` (``make soak``) runs the long variants: more flow runs, more tasks, more kills.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.s3)
            item.add_marker(pytest.mark.slow(seconds=300))  # the longest files: scheduled first


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory):
    """``prefect server start`` in its own folder; ``.url`` is its API URL (``http://127.0.0.1:<port>/api``)."""
    from topology import PrefectServer

    for attempt in range(3):  # the free port it was given may be taken before it binds: then another one
        server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
        try:
            server.start_and_wait()
            break
        except AssertionError:
            server.stop()
            if attempt == 2 or "address already in use" not in server.tail().lower():
                raise
        except BaseException:
            server.stop()
            raise
    yield server
    server.stop()


@pytest.fixture(scope="package")
def patience(prefect_server):
    """Wait limits scaled by how slow this machine was to start the server (see topology.Patience)."""
    from topology import Patience

    return Patience.from_server_start(prefect_server.started_in)


@pytest.fixture(scope="package")
def topology_s3():
    """The topology's own moto S3 server (no other test resets it): ``.url``, ``.create_bucket()``, ``.env()``."""
    import logging

    from s3_server import S3Server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown a failure's report
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def api(prefect_server):
    """A Prefect client of the topology's server (the test process's own Prefect settings are left alone)."""
    from workpool import Api

    return Api(prefect_server.url)


@pytest.fixture
def say(capsys):
    """Print a line of the scenario's account (what ran where, the counts) past pytest's capture."""

    def print_line(text: str) -> None:
        with capsys.disabled():
            print(f"\n[topology] {text}", end="")

    return print_line
