"""The real Ruby Scout reads, loads and reuses the jobs our flows write, as it does its own.

Needs Ruby and the two Scout sources (see tests/data/ruby-scout/README.md for the versions):

    SCOUT_RUBY_LIBS=/opt/scout/scout-essentials/lib:/opt/scout/scout-gear/lib make test

Without them the module is skipped: the suite must not require Ruby, and every format this test exercises is also
checked against the files Ruby wrote (tests/test_job_fixtures.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from prefect import flow

from ruby_data import RUBY_FIXTURES

LIBS = [p for p in os.environ.get("SCOUT_RUBY_LIBS", "").split(os.pathsep) if p]
RUBY = shutil.which("ruby")
pytestmark = pytest.mark.skipif(
    not (LIBS and RUBY),
    reason="Ruby interop: set SCOUT_RUBY_LIBS to scout-essentials/lib and scout-gear/lib, with ruby on PATH",
)

WORKFLOWS = RUBY_FIXTURES / "workflows"
DRIVER = Path(__file__).with_name("ruby_read_jobs.rb")

# what Ruby's job.load gives for the value each port returned (fixture_ports.RETURNS), in Ruby's inspect
LOADED = {
    "ret_string": '"a plain string"',
    "ret_text": '"line one\\n"',  # Ruby's own task returns three lines: this one is ours, reused, not recomputed
    "ret_integer": "42",
    "ret_float": "3.14159",
    "ret_float_small": "1.0e-07",
    "ret_boolean_true": "true",
    "ret_boolean_false": "false",
    "ret_integer_array": "[1, 2, 3]",
    "ret_json": '{"a"=>1}',
    "ret_yaml": '{"name"=>"muffin"}',
    "ret_marshal": '{"a"=>1}',
    "ret_unicode": '"ñandú"',
    # Ruby writes binary results with a trailing newline and loads it back (its own 256-byte job loads as 257)
    "ret_binary": '"\\u0000\\u0001\\n"',
}
# jobs that leave no result: Ruby must treat ours exactly as it treats its own
NO_RESULT = ["ret_nil", "ret_error", "ret_runtime_error"]


def ask_ruby(home: Path, jobs: list[str]) -> dict[str, dict]:
    files = [str(WORKFLOWS / "workflows" / f) for f in ("return_cases.rb", "dep_cases.rb")]
    argv = [RUBY, *(f"-I{lib}" for lib in LIBS), str(DRIVER), *files, "--", *jobs]
    env = {**os.environ, "HOME": str(home), "TZ": "UTC", "SCOUTGT_PANTRY": str(RUBY_FIXTURES / "pantry")}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {row["job"]: row for row in rows}


@pytest.fixture
def ruby_home(tmp_path, monkeypatch) -> Path:
    """A HOME whose ~/.scout is our store root: where Ruby looks for jobs first."""
    home = tmp_path / "home"
    (home / ".scout").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(home / ".scout"))
    return home


def test_ruby_loads_and_reuses_our_results(ruby_home):
    from fixture_ports import RETURNS, drive

    @flow(name="ReturnCases", persist_result=False)
    def returns() -> dict[str, str]:
        futures = {name: RETURNS[name].submit() for name in [*LOADED, *NO_RESULT]}
        return {name: fut.wait() or fut.state.type.value for name, fut in futures.items()}

    states = returns()
    assert [n for n in LOADED if states[n] != "COMPLETED"] == []
    drive("DepCases", "chain", None, {})  # chain <- plus_one <- base, all written by us

    ours = ask_ruby(ruby_home, [f"ReturnCases:{n}" for n in LOADED] + ["DepCases:chain"])
    for name, loaded in LOADED.items():
        row = ours[f"ReturnCases:{name}"]
        assert (row["status"], row["done"], row.get("value"), row["untouched"]) == ("done", True, loaded, True), row
    chain = ours["DepCases:chain"]
    assert (chain["done"], chain["value"], chain["untouched"]) == (True, "4", True), chain
    assert Path(chain["path"]).is_relative_to(ruby_home / ".scout/var/jobs/DepCases/chain")


def test_ruby_treats_our_empty_and_failed_jobs_as_its_own(ruby_home, tmp_path):
    from fixture_ports import RETURNS

    @flow(name="ReturnCases", persist_result=False)
    def returns() -> None:
        for name in NO_RESULT:
            RETURNS[name].submit().wait()

    returns()
    jobs = [f"ReturnCases:{n}" for n in NO_RESULT]
    ours = ask_ruby(ruby_home, jobs)
    theirs_home = tmp_path / "ruby-home"
    (theirs_home / ".scout").mkdir(parents=True)
    ask_ruby(theirs_home, jobs)  # Ruby writes its own jobs ...
    theirs = ask_ruby(theirs_home, jobs)  # ... and meets them again
    seen = ("status", "done", "raised", "status_after", "untouched")
    for job in jobs:
        assert {k: ours[job].get(k) for k in seen} == {k: theirs[job].get(k) for k in seen}, (ours[job], theirs[job])
    assert ours["ReturnCases:ret_error"]["status"] == "error" and ours["ReturnCases:ret_nil"]["status"] == "done"
