"""The plug-in's settings: Prefect's ephemeral server gets the time it needs to start (unless the user chose one), and
``resume --root`` hands the store to the flow explicitly (no rewrite of ``os.environ``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

from scout_persist import runs as core
from scout_persist.cli import main
from scout_persist.store import Store

PROBE = (
    "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; "
    "before = s.value(); import prefect_scout; print(before, s.value())"
)


def _probe(**env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    full.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[-2]


def test_importing_the_plug_in_gives_the_ephemeral_server_time_to_start(tmp_path):
    from prefect_scout.settings import SERVER_STARTUP_SECONDS

    home = str(tmp_path / "prefect-home")
    assert _probe(PREFECT_HOME=home) == f"20 {SERVER_STARTUP_SECONDS}"  # Prefect's default, then ours
    assert _probe(PREFECT_HOME=home, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="33") == "33 33"  # theirs wins


FLOW = """
    import os
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="integer")
    def double(n: int) -> int:
        with open(os.environ["ROOTED_LOG"], "a") as fh:  # what the body sees as $SCOUT_PERSIST_URL
            fh.write(os.environ["SCOUT_PERSIST_URL"] + "\\n")
        return 2 * n

    @flow(name="Rooted")
    def rooted(n: int = 4):
        return double(n)
"""


def test_resume_with_root_writes_to_that_store_whatever_the_variable_says(tmp_path, monkeypatch, capsys):
    first, other, log = tmp_path / "first", tmp_path / "other", tmp_path / "bodies.log"
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(first))
    monkeypatch.setenv("ROOTED_LOG", str(log))
    path = tmp_path / "rooted_flow.py"
    path.write_text(textwrap.dedent(FLOW))
    spec = importlib.util.spec_from_file_location("rooted_flow", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["rooted_flow"] = module
    try:
        spec.loader.exec_module(module)
        assert module.rooted(4) == 8
    finally:
        sys.modules.pop("rooted_flow", None)
    (old,) = core.list_runs(Store(str(first)), "Rooted")
    before = dict(os.environ)
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(other))
    code = main(["resume", old.run_id, "--root", str(first), "--from", "double"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert dict(os.environ) == {**before, "SCOUT_PERSIST_URL": str(other)}  # the environment was never rewritten
    runs = core.list_runs(Store(str(first)), "Rooted")
    assert len(runs) == 2 and any(r.run_id != old.run_id for r in runs)
    assert not other.exists()  # nothing went to $SCOUT_PERSIST_URL
    assert log.read_text().split() == [str(first), str(other)]  # the resumed body ran, its environment untouched


def _flow_module(tmp_path, name: str, source: str = FLOW):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUBMITTED = """
    from prefect import flow
    from prefect_scout import scout_task

    @scout_task(type="integer")
    def one() -> int:
        return 1

    @scout_task(type="integer")
    def plus(x: int) -> int:
        return x + 1

    @flow(name="Submitted")
    def submitted():
        return plus.submit(one.submit()).result()
"""


def test_a_malformed_root_fails_the_flow_with_its_own_message(tmp_path, monkeypatch):
    from prefect.exceptions import UnfinishedRun

    from scout_persist.errors import InvalidInputError

    module = _flow_module(tmp_path, "submitted_flow", SUBMITTED)
    monkeypatch.chdir(tmp_path)
    for value, words in (("s3:/scout", "is missing the '//' after 's3:'"), (" /data/x", "starts with white space")):
        monkeypatch.setenv("SCOUT_PERSIST_URL", value)
        state = module.submitted(return_state=True)
        assert state.is_failed()
        try:
            state.result()
        except UnfinishedRun as exc:
            raise AssertionError(f"Prefect's UnfinishedRun hid the message: {exc}") from exc
        except InvalidInputError as exc:
            assert f"SCOUT_PERSIST_URL={value!r} {words}" in str(exc)
        else:
            raise AssertionError("the flow completed on a malformed root")
    assert sorted(os.listdir(tmp_path)) == ["submitted_flow.py"]  # no folder 's3:' nor ' '


def test_a_root_spelled_with_a_trailing_slash_still_resumes_from_a_task(tmp_path, monkeypatch, capsys):
    root, log = tmp_path / "scout", tmp_path / "bodies.log"
    monkeypatch.setenv("SCOUT_PERSIST_URL", f"{root}/")
    monkeypatch.setenv("ROOTED_LOG", str(log))
    sys.modules["slash_flow"] = module = _flow_module(tmp_path, "slash_flow")
    try:
        assert module.rooted(5) == 10
    finally:
        sys.modules.pop("slash_flow", None)
    (old,) = core.list_runs(Store(str(root)), "Rooted")
    assert not [j for j in core.read_run(Store(str(root)), "Rooted", old.run_id).jobs() if j.get("store")]
    code = main(["resume", old.run_id, "--from", "double"])
    out, err = capsys.readouterr()
    assert code == 0 and "removed var/jobs/Rooted/double/" in out, out + err
    assert len(log.read_text().split()) == 2
