"""The rules the plug-in asks the core for when it plans a call, without Prefect: an upstream job read from the store,
its dependency token, a reused job's identity, a format declaration checked, how a served job was written."""

from __future__ import annotations

import pytest

from scout_persist import signature
from scout_persist.attempt import Attempt, JobSetup, Served
from scout_persist.callplan import JobIdentity, check_format, upstream_at, upstream_token
from scout_persist.errors import InvalidInputError
from scout_persist.info import read_info
from scout_persist.store import Store

KEY = "var/jobs/W/square/Default"
SETUP = JobSetup("W", "square", "integer", inputs=[3], input_names=["x"])


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(str(tmp_path / "root"))


def _commit(store: Store, value, setup: JobSetup = SETUP, key: str = KEY) -> None:
    attempt = Attempt(store, key, signature.compute({"x": 3}, [], "code", "1"), setup=setup)
    assert attempt.acquire(timeout=10)
    attempt.verdict()
    attempt.commit(value)
    attempt.release()


def test_an_upstream_is_read_from_its_info_and_a_job_without_a_workflow_is_none(store):
    assert upstream_at(store, KEY) is None  # no .info: no job
    _commit(store, 9)
    found = upstream_at(store, KEY)
    assert found is not None and found.key == KEY
    assert found.token == upstream_token(store, KEY) == signature.dependency_token(KEY, read_info(store, KEY + ".info"))
    store.put("var/jobs/W/plain/Default.info", b'{"status": "done"}')  # names no workflow: not a Scout job
    assert upstream_at(store, "var/jobs/W/plain/Default") is None


def test_a_reused_jobs_identity_is_what_its_info_records():
    ident = JobIdentity.of_stored(KEY, {"input_names": ["x"], "non_default_inputs": ["x"], "inputs": [3]})
    assert (ident.id, ident.name, ident.hash, ident.key) == ("Default", "Default", None, KEY)
    assert ident.input_names == ["x"] and ident.non_default_inputs == ["x"] and ident.inputs == []


@pytest.mark.parametrize(
    ("format", "scout_type", "match"),
    [("hdf5", None, "unknown"), ("npy", "integer", "Scout type")],
)
def test_a_format_declaration_is_checked_naming_the_task(format, scout_type, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        check_format(format, scout_type, "square")
    assert "'square'" in str(err.value)
    check_format(None, "integer", "square")  # no format: nothing to check
    check_format("pickle", None, "square")


def test_a_served_job_says_how_it_was_written(store):
    _commit(store, {"any": "python value"}, setup=JobSetup("W", "square", None))
    info = read_info(store, KEY + ".info")
    assert Served(None, info, None, "t").scout_type == "pickle"
    assert Served(None, {"type": "integer"}, None, "t").scout_type == "integer"
    assert Served(None, {}, None, "t").scout_type == "binary"
