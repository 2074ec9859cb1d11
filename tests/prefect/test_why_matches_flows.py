"""``scout-persist info --why`` says "would be reused" exactly when a flow over the job is ``Cached``.

One relocated copy of the Ruby fixture tree serves the whole module.  For the fixture cases a flow can run (the
ports of tests/prefect/fixture_ports.py, as in test_fixture_paths.py), ``--why`` is asked about every job the cases
reach *just before* their flow runs, then the flow runs and the state of each job's first task run is compared
with the verdict.  Cases are chosen so that every job reachable from a runnable case is checked at least once, and
cases with the same workflow and provided inputs share one flow run (its parameters); later flows also meet the
jobs earlier ones rewrote (signed by the plug-in), so both kinds of jobs are compared.

Two dependencies are made newer than their dependents: one by an hour (Ruby would recompute the dependent; the
plug-in reuses it, and ``--why`` follows the plug-in with a note saying what Ruby would do) and one by 1.5 s (within
the slack ``prov`` allows for copied and uploaded trees: no note at all).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
from pathlib import Path

import pytest

from prefect_scout import plans
from prefect_scout.task import ScoutTask
from scout_persist import verdict as rule
from scout_persist.cli import main as cli
from test_fixture_paths import EXPRESSIBLE, LOC, RUBY, decode

FIXED_MTIME = 1_700_000_000
NEWER_BY_AN_HOUR = ("var/jobs/Baking/whisk_eggs/Normal muffin", "var/jobs/Baking/prepare_batter/Normal muffin")
NEWER_WITHIN_SLACK = (
    "var/jobs/Baking/whisk_eggs/Blueberry muffin",
    "var/jobs/Baking/prepare_batter/Blueberry muffin_d49308d8c17791326011a6198cb598c2",
)


def _reached(root: Path, key: str, acc: dict[str, None]) -> None:
    """``key`` and every job its ``.info`` depends on, recursively (dependencies relocated by their var/jobs tail)."""
    if key in acc:
        return
    acc[key] = None
    info = root / f"{key}.info"
    if info.exists():
        for dep in json.loads(info.read_text()).get("dependencies") or []:
            if "/var/jobs/" in dep:
                _reached(root, "var/jobs/" + dep.split("/var/jobs/", 1)[1], acc)


def _covering_cases() -> list[dict]:
    """The runnable cases, in manifest order, that reach a fixture job no earlier chosen case reaches."""
    seen: set[str] = set()
    chosen = []
    for case in EXPRESSIBLE:
        jobs: dict[str, None] = {}
        _reached(RUBY / "scout-jobs", case["path"], jobs)
        if set(jobs) - seen:
            chosen.append(case)
            seen |= set(jobs)
    return chosen


def _groups(cases: list[dict]) -> list[list[dict]]:
    """Cases that can share one flow run: same workflow, same provided inputs (= the flow's parameters)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for case in cases:
        groups.setdefault((case["workflow"], json.dumps(case["provided_inputs"], sort_keys=True)), []).append(case)
    return list(groups.values())


CASES = _covering_cases()
GROUPS = _groups(CASES)
TALLY = {"reused": 0, "rerun": 0, "undecided": 0, "jobs": set()}
# the first words --why gives for a rerun -> the reason codes of the plug-in's own verdict that say the same
WHY_TO_CODES = {
    "would rerun: status is 'done' but its result file is missing": {rule.MISSING_RESULT},
    "would rerun: status is": {rule.STATUS},
    "would rerun: its result cannot be used": {rule.CORRUPT, rule.UNTRUSTED},
    "would rerun: it expired": {rule.EXPIRED},
    "would rerun: signature component": {rule.SIGNATURE},
    "would rerun: its signature was computed by another version": {rule.SIGNATURE},
}


def _codes_of(line: str) -> set[str]:
    for start, codes in WHY_TO_CODES.items():  # the most specific start first (dicts keep their order)
        if line.startswith(start):
            return codes
    raise AssertionError(f"no reason code for --why's {line!r}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("why") / "copied" / ".scout"
    shutil.copytree(RUBY / "scout-jobs", root, symlinks=True)
    for dirpath, dirs, files in os.walk(root):  # a checkout leaves arbitrary times; set them, then move two
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
    for (dep, _), shift in ((NEWER_BY_AN_HOUR, 3600), (NEWER_WITHIN_SLACK, 1.5)):
        os.utime(root / dep, (FIXED_MTIME + shift, FIXED_MTIME + shift))
    return root


def why(capsys, root: Path, key: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = cli(["info", "--why", str(root / key)])
    return rc, capsys.readouterr().out.splitlines()


def run_cases(cases: list[dict]) -> None:
    """One flow run (named after the workflow, parameters = the shared provided inputs) driving each case in turn,
    each under its own job name, as fixture_ports.drive does for one."""
    from prefect import flow

    from fixture_ports import DRIVERS, job_name

    def body(**params):
        for case in cases:
            jid = case["jobname_arg"]
            if jid is not None:
                with job_name(jid):
                    future = DRIVERS[case["workflow"]](case["task"], params, jid)
            else:
                future = DRIVERS[case["workflow"]](case["task"], params, jid)
            future.wait()

    provided = {k: decode(v["value"]) for k, v in (cases[0]["provided_inputs"] or {}).items()}
    body.__signature__ = inspect.Signature(
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None) for k in provided]
    )
    flow(body, name=cases[0]["workflow"], validate_parameters=False, persist_result=False)(**provided)


@pytest.mark.parametrize("cases", GROUPS, ids=[f"{g[0]['case']}+{len(g) - 1}" for g in GROUPS])
def test_why_agrees_with_the_flow(cases, tree, capsys, monkeypatch):
    monkeypatch.setenv("HOME", LOC["home"])  # identify() of input files, as in test_fixture_paths
    monkeypatch.setenv("SCOUT_PERSIST_URL", str(tree))
    submitted = []
    submit = ScoutTask.submit

    def recording(self, *args, **kwargs):
        future = submit(self, *args, **kwargs)
        submitted.append(future)
        return future

    monkeypatch.setattr(ScoutTask, "submit", recording)
    plugin: dict[str, rule.Verdict] = {}  # task run id -> the first verdict of its attempt
    judge = plans.TaskRunAttempt.verdict

    def judging(self, *, decode=True):
        found = judge(self, decode=decode)
        plugin.setdefault(str(self.plan.task_run_id), found)
        return found

    monkeypatch.setattr(plans.TaskRunAttempt, "verdict", judging)
    jobs: dict[str, None] = {}
    for case in cases:
        _reached(tree, case["path"], jobs)
    verdicts = {key: why(capsys, tree, key) for key in jobs if (tree / f"{key}.info").exists()}

    run_cases(cases)

    compared = set()
    for future in submitted:
        future.wait()
        attempt = plans.for_run(future.task_run_id)
        assert isinstance(attempt, plans.TaskRunAttempt), attempt
        plan = attempt.plan
        if plan.job_key in compared:  # a job planned again in this flow: the first run is the one --why spoke of
            continue
        compared.add(plan.job_key)
        cached = future.state.name == "Cached"
        rc, lines = verdicts.get(plan.job_key, (2, ["(no .info: nothing to reuse)"]))
        TALLY["jobs"].add(plan.job_key)
        if lines and lines[0].startswith("would rerun unless"):
            TALLY["undecided"] += 1  # honest either way: it depends on bytes not yet computed
            continue
        said_reused = rc == 0 and lines[0].startswith("would be reused")
        assert said_reused == cached, (plan.job_key, future.state.name, lines)
        # the plug-in's own verdict (the attempt of that task run) says the same, for the same reason
        verdict = plugin[str(future.task_run_id)]
        assert isinstance(verdict, rule.Served) == said_reused, (plan.job_key, verdict, lines)
        if not said_reused and plan.job_key in verdicts:
            assert any(verdict.has(code) for code in _codes_of(lines[0])), (plan.job_key, verdict, lines)
        TALLY["reused" if cached else "rerun"] += 1


def test_times_are_notes_not_verdicts(tree, capsys):
    """Ruby's freshness rule is a note beyond the slack, and nothing within it; the verdict stays the plug-in's."""
    rc, lines = why(capsys, tree, NEWER_BY_AN_HOUR[1])
    assert rc == 0 and lines[0].startswith("would be reused: status done, result readable as 'string'")
    assert any(
        line.startswith("note: Ruby Scout would recompute this job: dependency ")
        and "Baking/whisk_eggs/Normal muffin is 3600 s newer than its result (more than the 2 s" in line
        for line in lines
    ), lines
    rc, lines = why(capsys, tree, NEWER_WITHIN_SLACK[1])
    assert rc == 0 and lines == [lines[0]] and lines[0].startswith("would be reused")


def test_every_verdict_was_compared():
    """The comparison ran over both verdicts and every fixture job the chosen cases reach (run after them)."""
    if len(TALLY["jobs"]) < 100:
        pytest.skip("run together with test_why_agrees_with_the_flow")
    assert TALLY["reused"] > 100 and TALLY["rerun"] >= 4, TALLY
    print(
        f"\n--why vs flows: {TALLY['reused']} reused, {TALLY['rerun']} rerun, {TALLY['undecided']} undecided, "
        f"{len(TALLY['jobs'])} jobs, {len(CASES)} cases"
    )
