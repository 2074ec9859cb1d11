"""Prefect ports of the fixture workflows produce the job paths Ruby recorded in manifest.json.

Every completed fixture case expressible in Prefect is run as a flow (provided inputs = flow parameters,
``job_name`` = the id given to Ruby's ``Workflow#job``); the top job's key must equal Ruby's path, and every job the
run planned must be one Ruby recorded.  The cases left out are listed in INEXPRESSIBLE and in docs/prefect.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scout_persist.store import Store

RUBY = Path(__file__).resolve().parents[1] / "data" / "ruby-scout"
MANIFEST = json.loads((RUBY / "manifest.json").read_text())
LOC = MANIFEST["locations"]
INPUT_FILES = str(RUBY / "input_files")
STEPS = set(MANIFEST["steps"])

INEXPRESSIBLE = {
    "dep_override_step": "Workflow#task overrides (DepCases#base => path) have no Prefect equivalent",
    "dep_override_step_object": "Workflow#task overrides (DepCases#base => Step) have no Prefect equivalent",
    "dep_override_file": "Workflow#task overrides (DepCases#base => file) have no Prefect equivalent",
    "dep_failing": "Prefect never runs a task whose upstream failed, so the parent job is never named",
    "name_unicode_too_long": "a 150-character CJK name exceeds 255 bytes: no file system here can hold the job",
}
DIVERGENT = {  # same documented divergences as the core (docs/identity.md)
    "echo_string_keys": "quirk 7 fixed: input names are Symbols, the name is hashed",
    "dir_input": "quirk 9 fixed: clean directory digest",
}


def decode(v):
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, dict):
        kind = v.get("__ruby__")
        if kind == "Symbol":
            from scout_persist.rubyvalues import Symbol

            return Symbol(v["value"])
        if kind == "Hash":
            return {decode(k): decode(x) for k, x in v["pairs"]}
        if kind is None:
            return {k: decode(x) for k, x in v.items()}
        raise AssertionError(v)
    if isinstance(v, str) and v.startswith(LOC["input_files"]):
        return INPUT_FILES + v[len(LOC["input_files"]) :]
    return v


RUNNABLE = [c for c in MANIFEST["cases"] if not c.get("job_creation_error")]
EXPRESSIBLE = [c for c in RUNNABLE if c["case"] not in INEXPRESSIBLE and c["case"] not in DIVERGENT]
COUNT = {"reproduced": 0}


@pytest.fixture
def ruby_home(monkeypatch):
    monkeypatch.setenv("HOME", LOC["home"])  # identify() of input files depends on HOME, as in Ruby


@pytest.mark.parametrize("case", EXPRESSIBLE, ids=[c["case"] for c in EXPRESSIBLE])
def test_fixture_case_path(case, scout_root, ruby_home):
    from fixture_ports import drive

    provided = {k: decode(v["value"]) for k, v in (case["provided_inputs"] or {}).items()}
    drive(
        case["workflow"],
        case["task"],
        case["jobname_arg"],
        provided,
    )
    written = {key[: -len(".info")] for key in Store(str(scout_root)).list("var/jobs") if key.endswith(".info")}
    assert case["path"] in written, sorted(written)
    for key in written:  # every job the flow planned, dependencies included, is one Ruby recorded
        assert key in STEPS, key
    COUNT["reproduced"] += 1


def test_inexpressible_cases_are_documented():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "prefect.md").read_text()
    for name in list(INEXPRESSIBLE) + list(DIVERGENT):
        assert f"`{name}`" in doc, name
    assert len(EXPRESSIBLE) + len(INEXPRESSIBLE) + len(DIVERGENT) == len(RUNNABLE)
    print(
        f"\nprefect fixture paths: {len(EXPRESSIBLE)} expressible of {len(RUNNABLE)} completed cases "
        f"({len(INEXPRESSIBLE)} inexpressible, {len(DIVERGENT)} documented divergences)"
    )
    _ = os
