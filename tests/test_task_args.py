"""Unit tests of scout_persist.task_args: Ruby's `scout workflow task` argument reading."""

from __future__ import annotations

import re

import pytest

from fixture_workflows import WORKFLOWS, DepCases, InputCases
from ruby_data import RUBY_FIXTURES
from scout_persist.errors import InvalidInputError, ScoutPersistError
from scout_persist.rubyvalues import ScoutPath, Step
from scout_persist.task_args import (
    input_shortcuts,
    load_inputs,
    parse_task_argv,
    recursive_inputs,
    split_list,
    task_job,
)
from scout_persist.workflow import Input, Workflow

CLI = RUBY_FIXTURES / "cli"


def parse(*args, cwd=None):
    return parse_task_argv(list(args), WORKFLOWS, cwd=cwd)


def test_positional_jobname_and_command_options(tmp_path):
    cmd = parse("--nocolor", "InputCases", "echo", "--str", "world", "-jn", "cli echo", "-pf", cwd=tmp_path)
    assert cmd.workflow is InputCases and cmd.task == "echo" and cmd.jobname == "cli echo"
    assert cmd.inputs == {"str": "world"}
    assert cmd.options == {"nocolor": True, "jobname": "cli echo", "printpath": True}
    assert cmd.rest == []


def test_values_stay_raw_strings_and_last_one_wins(tmp_path):
    cmd = parse("InputCases", "echo", "--int", "5", "--flt=0.25", "--str=a=b", "--int", "6", cwd=tmp_path)
    assert cmd.inputs == {"int": "6", "flt": "0.25", "str": "a=b"}
    assert cmd.job(cwd=str(tmp_path)).inputs[:3] == ["a=b", 6, 0.25]


@pytest.mark.parametrize(
    "args, value",
    [
        (["--flag"], True),
        (["--flag=false"], False),
        (["--flag=no"], False),
        (["--flag=F"], False),
        (["--flag=0"], True),  # Ruby: only F false FALSE no are false
        (["--flag", "false"], False),  # the next word is taken as the value, as Ruby does (with a warning)
        (["--flag", "FALSE"], False),
    ],
)
def test_boolean_flags(args, value, tmp_path):
    cmd = parse("InputCases", "echo", *args, cwd=tmp_path)
    assert cmd.inputs == {"flag": value}
    assert cmd.rest == []


def test_boolean_flag_does_not_swallow_other_words(tmp_path):
    cmd = parse("InputCases", "echo", "--flag", "world", cwd=tmp_path)
    assert cmd.inputs == {"flag": True} and cmd.rest == ["world"]


def test_shortcuts_match_rubys_help_output():
    """`scout workflow task ... echo -h` printed the shortcuts Ruby assigned; ours are the same."""
    help_text = (CLI / "task_help.stdout").read_text()
    inputs_part = help_text.split("\nInputs\n", 1)[1]
    ruby = dict(re.findall(r"^-(\S+),--(\w+)", inputs_part, re.M))
    assert ruby and input_shortcuts(InputCases, "echo") == ruby


def test_shortcuts_parse(tmp_path):
    cmd = parse("InputCases", "echo", "-s", "x", "-fl", "-sy", "beta", "-i=4", cwd=tmp_path)
    assert cmd.inputs == {"str": "x", "flag": True, "sym": "beta", "int": "4"}


def test_lists_split_on_commas_unless_a_file(tmp_path):
    (tmp_path / "items.txt").write_text("4\n5\n")
    assert parse("InputCases", "echo", "--list", "a,b,", cwd=tmp_path).inputs == {"list": ["a", "b"]}
    assert parse("InputCases", "echo", "--list", "", cwd=tmp_path).inputs == {"list": []}
    assert parse("InputCases", "echo", "--list", ",a", cwd=tmp_path).inputs == {"list": ["", "a"]}
    cmd = parse("InputCases", "echo", "--list", "items.txt", cwd=tmp_path)
    assert cmd.inputs == {"list": "items.txt"}
    assert cmd.job(cwd=str(tmp_path)).inputs[4] == ["4", "5"]  # the job loads the file as lines
    # file lists are always split, even when the whole value names a file
    (tmp_path / "a,b").write_text("x")
    files = parse("InputCases", "file_array_task", "--files", str(tmp_path / "a,b"), cwd=tmp_path)
    assert files.inputs == {"files": [str(tmp_path / "a"), "b"]}


def test_recursive_inputs_follow_dependencies():
    assert [i.name for i in recursive_inputs(DepCases, "chain")] == ["factor", "n"]
    assert [i.name for i in recursive_inputs(DepCases, "fixed_dep")] == []  # n fixed by `dep :base, n: 10`
    assert [i.name for i in recursive_inputs(DepCases, "two_bases")] == []
    assert [i.name for i in recursive_inputs(DepCases, "block_dep")] == ["n"]


def test_dependency_input_reaches_the_dependency(tmp_path):
    job = task_job(["DepCases", "chain", "--n", "6", "-jn", "c"], WORKFLOWS, cwd=str(tmp_path))
    base = job.dependencies[0].dependencies[0]
    assert base.inputs == [6] and base.hash is not None and job.hash is not None


def test_override_deps(tmp_path):
    target = tmp_path / "other"
    target.write_text("1\n")
    cmd = parse("DepCases", "plus_one", "-od", f"DepCases#base={target}", cwd=tmp_path)
    assert cmd.inputs == {"DepCases#base": str(target)}
    job = cmd.job(cwd=str(tmp_path))
    assert job.dependencies == [str(target)] and job.hash is not None


def test_double_dash_stops_option_reading(tmp_path):
    cmd = parse("InputCases", "echo", "--", "--str", "x", cwd=tmp_path)
    assert cmd.inputs == {} and cmd.rest == ["--", "--str", "x"]


def test_unknown_options_are_left_over_as_ruby_does(tmp_path):
    cmd = parse("InputCases", "echo", "--bogus", "--str", "x", cwd=tmp_path)
    assert cmd.inputs == {"str": "x"} and cmd.rest == ["--bogus"]


def test_global_flag_reaches_an_input_of_the_same_name(tmp_path):
    wf = Workflow("TaskArgsGlobals")
    wf.task("t", "string", [Input("nocolor", "boolean", False)])
    cmd = parse_task_argv(["--nocolor", "TaskArgsGlobals", "t"], {"TaskArgsGlobals": wf}, cwd=str(tmp_path))
    assert cmd.inputs == {"nocolor": True}


def test_resolver_function(tmp_path):
    cmd = parse_task_argv(["whatever.rb", "echo"], lambda arg: InputCases, cwd=str(tmp_path))
    assert cmd.workflow is InputCases


def test_split_list():
    assert split_list("a,b,,") == ["a", "b"] and split_list("") == [] and split_list("a,,b") == ["a", "", "b"]


def test_load_inputs_from_ruby_saved_directory(tmp_path):
    saved = RUBY_FIXTURES / "scout-jobs" / "var" / "cli_saved_inputs" / "echo_cli_saved"
    loaded = load_inputs(InputCases, "echo", str(saved), cwd=str(tmp_path))
    assert loaded == {"str": "saved", "int": 9, "list": ["x", "y"]}
    cmd = parse("InputCases", "echo", "--str", "cli", "--load_inputs", str(saved), cwd=tmp_path)
    assert cmd.inputs["str"] == "saved"  # loaded values win over the command line, as Ruby's merge


def test_load_inputs_special_files(tmp_path):
    d = tmp_path / "saved"
    (d / "saved_input_files").mkdir(parents=True)
    (d / "saved_input_files" / "sample-abc.txt").write_text("content")
    (d / "data.as_file").write_text("./saved_input_files/sample-abc.txt\n")
    (d / "p.as_path").write_text("some/where\n")
    (d / "DepCases#base.as_file").write_text("/x/y\n")
    assert load_inputs(InputCases, "file_task", str(d)) == {
        "data": str(d / "saved_input_files" / "sample-abc.txt"),
        "DepCases#base": "/x/y",
    }
    got = load_inputs(InputCases, "path_task", str(d))
    assert got["p"] == "some/where" and isinstance(got["p"], ScoutPath)
    (d / "nums").write_text("7\n8\n")
    assert load_inputs(InputCases, "int_array_task", str(d))["nums"] == [7, 8]
    (d / "dir").write_text("  /data/dir\n")
    assert load_inputs(InputCases, "dir_task", str(d))["dir"] == "/data/dir"
    (d / "p").write_text("ignored\n")
    (d / "p.as_path").unlink()
    assert load_inputs(InputCases, "path_task", str(d))["p"] == ScoutPath(str(d / "p"))
    (d / "n.as_step").write_text("/abs/var/jobs/DepCases/base/Default\n")
    assert load_inputs(DepCases, "base", str(d))["n"] == Step("/abs/var/jobs/DepCases/base/Default")


# ------------------------------------------------------------------------------------------- failures


def test_option_without_value_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match=r"'--str' needs a value"):
        parse("InputCases", "echo", "--str", cwd=tmp_path)


def test_missing_workflow_or_task(tmp_path):
    with pytest.raises(InvalidInputError, match="needs <workflow> <task>"):
        parse("InputCases", "-jn", "x", cwd=tmp_path)


def test_unknown_workflow_and_task(tmp_path):
    with pytest.raises(InvalidInputError, match=r"unknown workflow 'Nope'.*InputCases"):
        parse("Nope", "echo", cwd=tmp_path)
    with pytest.raises(InvalidInputError, match="no task 'nope'"):
        parse("InputCases", "nope", cwd=tmp_path)


def test_bad_override_deps(tmp_path):
    with pytest.raises(InvalidInputError, match=r"-od 'base=/x' is not 'Workflow#task=<path>'"):
        parse("DepCases", "plus_one", "-od", "base=/x", cwd=tmp_path)


def test_load_inputs_refuses_a_saved_tsv(tmp_path):
    wf = Workflow("TaskArgsTsv")
    wf.task("t", "string", [Input("table", "tsv")])
    (tmp_path / "table").write_text("#: a\n")
    with pytest.raises(InvalidInputError, match="--table"):
        load_inputs(wf, "t", str(tmp_path))


def test_load_inputs_needs_a_directory(tmp_path):
    f = tmp_path / "inputs.tar.gz"
    f.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="is not a directory") as info:
        parse("InputCases", "echo", "--load_inputs", str(f), cwd=tmp_path)
    assert isinstance(info.value, ScoutPersistError)
