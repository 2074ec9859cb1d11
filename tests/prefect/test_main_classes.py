"""Results holding instances of a class defined in the flow's own script (run as ``python pipeline.py``, so the class
is ``__main__.RidgeModel``) load where that class can be found — ``resume`` maps ``__main__`` to the flow's module —
and elsewhere fail with a message naming the class and the fix, never ``CorruptPayloadError``, never a recompute.

The script runs for real as ``__main__`` in a child process (against this session's Prefect API); resume and
``Job.load`` then run in this process, whose ``__main__`` is pytest's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scout_persist import runs as core
from scout_persist.cli import main
from scout_persist.errors import ClassNotImportable, CorruptPayloadError
from scout_persist.job import Job
from scout_persist.store import Store
from scout_persist.unpickling import main_module

SCRIPT = """
    import os
    from prefect import flow
    from prefect_scout import scout_task


    class RidgeModel:
        def __init__(self, alpha):
            self.alpha = alpha
            self.coef = [alpha * 2]

        def predict(self, x):
            return self.coef[0] * x


    def note(name):
        with open(os.environ["MAIN_LOG"], "a") as fh:
            fh.write(name + "\\n")


    @scout_task
    def train(alpha: float = 0.5):
        note("train")
        return RidgeModel(alpha)


    @scout_task
    def evaluate(model, x: float = 3.0) -> float:
        note("evaluate")
        return model.predict(x)


    @flow(name="Ridge")
    def pipeline(alpha: float = 0.5):
        return evaluate(train(alpha))


    if __name__ == "__main__":
        print(pipeline(2.0))
"""


@pytest.fixture
def script_run(tmp_path, scout_root, monkeypatch):
    """Run the script as __main__ in a child process; returns (script path, the run, the train job's key)."""
    from prefect.settings import PREFECT_API_URL

    folder = tmp_path / "project"
    folder.mkdir()
    script = folder / "ridge_pipeline.py"
    script.write_text(textwrap.dedent(SCRIPT))
    log = tmp_path / "bodies.log"
    monkeypatch.setenv("MAIN_LOG", str(log))
    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=folder, env=env, capture_output=True, text=True, timeout=400
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "12.0"
    store = Store(str(scout_root))
    (listed,) = core.list_runs(store, "Ridge")
    run = core.read_run(store, "Ridge", listed.run_id)
    train_key = next(j["key"] for j in run.jobs() if j["task"] == "train")
    return script, run, train_key, log


def _bodies(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def _load_script_as(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_load_elsewhere_names_the_class_and_the_fix(script_run, scout_root):
    script, _run, train_key, _log = script_run
    job = Job(str(scout_root / train_key))
    assert job.status == "done"
    with pytest.raises(ClassNotImportable) as err:
        job.load()
    assert not isinstance(err.value, CorruptPayloadError)
    msg = str(err.value)
    assert "class 'RidgeModel' of __main__" in msg and "not importable here" in msg, msg
    assert "move RidgeModel to a module" in msg and train_key in msg, msg
    # where the script's module is known, the same bytes load
    module = _load_script_as(script, "ridge_pipeline_elsewhere")
    with main_module(module):
        model = job.load()
    assert isinstance(model, module.RidgeModel) and model.coef == [4.0]


def test_job_load_from_another_process_is_no_corrupt_payload(script_run, scout_root):
    _script, _run, train_key, _log = script_run
    code = f"from scout_persist.job import Job; Job({str(scout_root / train_key)!r}).load()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "ClassNotImportable" in done.stderr and "class 'RidgeModel' of __main__" in done.stderr, done.stderr
    assert "CorruptPayloadError" not in done.stderr


def test_resume_from_a_task_reuses_the_upstream_model(script_run, scout_root, capsys):
    _script, run, train_key, log = script_run
    assert _bodies(log) == ["train", "evaluate"]
    before = json.loads((scout_root / f"{train_key}.info").read_text())
    code = main(["resume", run.run_id, "--from", "evaluate"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert _bodies(log) == ["train", "evaluate", "evaluate"], "train was recomputed although --from evaluate"
    after = json.loads((scout_root / f"{train_key}.info").read_text())
    assert after == before  # the upstream job was reused, not rewritten
    store = Store(str(scout_root))
    new = next(r for r in core.list_runs(store, "Ridge") if r.run_id != run.run_id)
    jobs = {j["task"]: j["reused"] for j in core.read_run(store, "Ridge", new.run_id).jobs()}
    assert jobs == {"train": True, "evaluate": False}
    assert "cannot be used" not in err and "recomputing" not in err


def test_resume_of_the_whole_run_reuses_every_job(script_run, scout_root, capsys):
    _script, run, _train_key, log = script_run
    code = main(["resume", run.run_id])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert _bodies(log) == ["train", "evaluate"]  # nothing recomputed
