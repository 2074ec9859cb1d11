"""Replay the Ruby `scout workflow task` captures (tests/data/ruby-scout/cli/) through task_args + Workflow.job.

For each capture with a ``NAME.spy_path`` (Ruby's absolute job path), the command line ``NAME.cmd`` is parsed the
way Ruby's CLI parses it, the job is built with our Workflow.job, and
* the ``{inputs, dependencies}`` strings we hash (dependencies first, as Ruby computes them) and their md5s equal
  the lines of ``NAME.digests.jsonl`` (no file = Ruby hashed nothing = every job has a clean name);
* our job key equals the spy path after the Scout root prefix.
``-pf`` runs (stdout = job path) and ``--save_inputs`` runs (stdout = saved input names) are checked too.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from fixture_workflows import WORKFLOWS
from ruby_data import RUBY_FIXTURES
from scout_persist.rubydigest import md5_hex
from scout_persist.task_args import parse_task_argv, recursive_inputs

CLI = RUBY_FIXTURES / "cli"
MANIFEST = json.loads((RUBY_FIXTURES / "manifest.json").read_text())
SCOUT_ROOT = MANIFEST["locations"]["scout_root"]
HOME = MANIFEST["locations"]["home"]
PLACEHOLDERS = {
    "{SCOUT_ROOT}/": str(RUBY_FIXTURES / "scout-jobs") + "/",
    "{WORKFLOWS}/": str(RUBY_FIXTURES / "workflows") + "/",
    "{INPUT_FILES}/": str(RUBY_FIXTURES / "input_files") + "/",
}

SPIED = sorted(p.name[: -len(".spy_path")] for p in CLI.glob("*.spy_path"))
WITH_DIGESTS = sorted(p.name[: -len(".digests.jsonl")] for p in CLI.glob("*.digests.jsonl"))

# Captures where we deliberately differ from Ruby: name -> (reason, how Ruby's string maps to ours).
KNOWN_DIFFERENCES = {
    "task_dir": (
        "quirk 9 fixed (SCOUT_FORMAT.md §4.6): Ruby's directory-digest cache was polluted in that process and "
        "appended ', nil' to the directory's digest; we hash the clean form, so the md5 and the path differ",
        lambda ruby_str: ruby_str.replace("], nil]", "]]", 1),
    ),
}


def argv_of(name: str) -> list[str]:
    """The arguments after `scout workflow task`, placeholders replaced by the fixture folders."""
    words = shlex.split((CLI / f"{name}.cmd").read_text())
    assert words[:3] == ["scout", "workflow", "task"], words
    out = []
    for w in words[3:]:
        for placeholder, real in PLACEHOLDERS.items():
            w = w.replace(placeholder, real)
        out.append(w)
    return out


def workflow_of_rb(arg: str):
    """The declared Python workflow for a `.rb` file: the module that `extend Workflow` in it."""
    text = Path(arg).read_text()
    names = re.findall(r"^module (\w+)\s*\n\s*extend Workflow", text, re.M)
    assert len(names) == 1, (arg, names)
    return WORKFLOWS[names[0]]


def build(name: str, tmp_path):
    cmd = parse_task_argv(argv_of(name), workflow_of_rb, cwd=str(tmp_path), home=HOME)
    return cmd, cmd.job(cwd=str(tmp_path), home=HOME)


def hashed_in_order(job):
    """The jobs whose name carries `_<md5>`, each after its dependencies (the order Ruby hashes them)."""
    for dep in job.dependencies:
        if hasattr(dep, "dependencies"):
            yield from hashed_in_order(dep)
    if job.hash is not None:
        yield job


def ruby_lines(name: str) -> list[dict]:
    path = CLI / f"{name}.digests.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spy_key(name: str) -> str:
    spy = (CLI / f"{name}.spy_path").read_text().strip()
    assert spy.startswith(SCOUT_ROOT), spy
    return spy[len(SCOUT_ROOT) :]


def test_every_digest_log_has_a_spy_path():
    assert WITH_DIGESTS and set(WITH_DIGESTS) <= set(SPIED)


def check_capture(name: str, tmp_path) -> int:
    """Assert one spied capture; return how many digest lines Ruby logged for it."""
    _, job = build(name, tmp_path)
    ours = [(j.hash, j.digest_str) for j in hashed_in_order(job)]
    ruby = [(line["md5"], line["digest_str"]) for line in ruby_lines(name)]
    assert ours == ruby
    for md5, s in ruby:
        assert md5_hex(s) == md5
    assert job.key == spy_key(name)
    return len(ruby)


@pytest.mark.parametrize("name", [n for n in SPIED if n not in KNOWN_DIFFERENCES])
def test_capture_digests_and_path(name, tmp_path):
    check_capture(name, tmp_path)


@pytest.mark.parametrize("name", sorted(KNOWN_DIFFERENCES))
def test_known_difference(name, tmp_path):
    reason, to_ours = KNOWN_DIFFERENCES[name]
    _, job = build(name, tmp_path)
    ours = [(j.hash, j.digest_str) for j in hashed_in_order(job)]
    ruby = ruby_lines(name)
    assert ours != [(line["md5"], line["digest_str"]) for line in ruby], f"{name} now matches Ruby: drop it"
    expected = [to_ours(line["digest_str"]) for line in ruby]
    assert [s for _, s in ours] == expected, reason
    assert [h for h, _ in ours] == [md5_hex(s) for s in expected]
    # the path differs from Ruby's only by the md5 of the top job
    assert job.key == spy_key(name).replace(ruby[-1]["md5"], ours[-1][0])


PRINTPATH = sorted(
    p.name[: -len(".cmd")]
    for p in CLI.glob("task_*.cmd")
    if re.search(r"(^| )(-pf|--printpath)( |$)", p.read_text())
    and (CLI / (p.name[:-4] + ".rc")).read_text().strip() == "0"
    and p.name[:-4] not in KNOWN_DIFFERENCES  # its path is checked in test_known_difference
)


@pytest.mark.parametrize("name", PRINTPATH)
def test_printpath_runs(name, tmp_path):
    """`-pf` runs print the job path: ours (including --load_inputs) is the same key."""
    _, job = build(name, tmp_path)
    printed = (CLI / f"{name}.stdout").read_text().strip()
    assert printed.startswith(SCOUT_ROOT)
    assert job.key == printed[len(SCOUT_ROOT) :]


SAVE_INPUTS = sorted(p.name[: -len(".cmd")] for p in CLI.glob("task_*.cmd") if "--save_inputs" in p.read_text())


@pytest.mark.parametrize("name", SAVE_INPUTS)
def test_save_inputs_names(name, tmp_path):
    """Ruby's `--save_inputs` prints the recursive inputs the command line provided, in declaration order."""
    cmd, _ = build(name, tmp_path)
    order = list(dict.fromkeys(i.name for i in recursive_inputs(cmd.workflow, cmd.task)))
    provided = [n for n in order if n in cmd.inputs]
    assert provided == (CLI / f"{name}.stdout").read_text().split()


def test_count_of_captures_checked(tmp_path, capsys):
    """Every digest log is checked, exactly or as a named known difference; print the totals."""
    exact = [n for n in SPIED if n not in KNOWN_DIFFERENCES]
    lines = sum(check_capture(n, tmp_path) for n in exact)
    assert set(WITH_DIGESTS) <= set(exact) | set(KNOWN_DIFFERENCES)
    assert set(KNOWN_DIFFERENCES) <= set(SPIED)
    logs = [n for n in WITH_DIGESTS if n not in KNOWN_DIFFERENCES]
    with capsys.disabled():
        print(
            f"\ncli task captures: {len(exact)} spied jobs reproduced ({len(logs)} with digest logs, {lines} digest "
            f"lines; {len(exact) - len(logs)} clean-named), {len(KNOWN_DIFFERENCES)} known difference(s): "
            f"{sorted(KNOWN_DIFFERENCES)}; {len(PRINTPATH)} -pf paths, {len(SAVE_INPUTS)} --save_inputs lists"
        )
    assert len(exact) + len(KNOWN_DIFFERENCES) == len(SPIED) > 0 and lines > 0


@pytest.mark.parametrize("name", [n for n in SPIED if n not in KNOWN_DIFFERENCES][:4])
def test_the_path_command_names_the_job_ruby_ran(name, tmp_path, capsys, monkeypatch):
    """`scout-persist path -m <declarations> <scout workflow task arguments>` prints the path Ruby wrote."""
    from scout_persist.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", HOME)
    declarations = str(Path(__file__).resolve().parent / "fixture_workflows.py")
    rc = main(["path", "-m", declarations, "--root", SCOUT_ROOT, "--json", "--", *argv_of(name)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["key"] == spy_key(name)
    assert out["path"] == SCOUT_ROOT.rstrip("/") + "/" + spy_key(name)
    if out["hash"] is not None:
        assert md5_hex(out["digest_str"]) == out["hash"]


def test_the_path_command_explains_a_bad_module_or_workflow(tmp_path, capsys):
    from scout_persist.cli import main

    assert main(["path", "-m", str(tmp_path / "nope.py"), "Baking", "bake"]) == 2
    assert "--module" in capsys.readouterr().err
    (tmp_path / "flows.txt").write_text("x = 1\n")  # a file, but not one Python imports
    assert main(["path", "-m", str(tmp_path / "flows.txt"), "Baking", "bake"]) == 2
    assert "is not a Python file" in capsys.readouterr().err
    declarations = str(Path(__file__).resolve().parent / "fixture_workflows.py")
    assert main(["path", "-m", declarations, "NoSuchFlow", "t"]) == 2
    err = capsys.readouterr().err
    assert "'NoSuchFlow' is not declared" in err and "Baking" in err
