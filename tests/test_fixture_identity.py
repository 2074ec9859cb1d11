"""Replay every case of the Ruby fixture manifest through scout_persist.workflow and compare identities."""

from __future__ import annotations

import json

import pytest

from fixture_workflows import WORKFLOWS
from ruby_data import RUBY_FIXTURES
from scout_persist.errors import InvalidInputError
from scout_persist.layout import persistence_path
from scout_persist.rubydigest import md5_hex
from scout_persist.rubyvalues import Step, Symbol

MANIFEST = json.loads((RUBY_FIXTURES / "manifest.json").read_text())
LOC = MANIFEST["locations"]
HOME = LOC["home"]
INPUT_FILES = str(RUBY_FIXTURES / "input_files")
CASES = MANIFEST["cases"]
STEPS = MANIFEST["steps"]

# Documented divergences (docs/identity.md): case -> why.
DIVERGENT = {
    "echo_string_keys": "quirk 7 fixed: String keys are Symbols, the name is hashed",
    "dir_input": "quirk 9 fixed: clean directory digest, no process-history pollution",
}
EMPTY_STRING_CASES = {"echo_str_empty", "two_inputs_empty_first"}  # quirk 8 fixed: "" accepted

COUNTS = {"completed": 0, "reproduced": 0, "steps": 0, "divergent": 0, "failed_in_ruby": 0, "persist": 0}


def decode(v, relocate=True):
    if isinstance(v, list):
        return [decode(x, relocate) for x in v]
    if isinstance(v, dict):
        kind = v.get("__ruby__")
        if kind == "Symbol":
            return Symbol(v["value"])
        if kind == "Hash":
            return {decode(k, relocate): decode(x, relocate) for k, x in v["pairs"]}
        if kind in ("Path", "Step"):
            return (
                Step(MANIFEST["original_prefix"] + v["path"])
                if kind == "Step"
                else MANIFEST["original_prefix"] + v["path"]
            )
        if kind is None:
            return {k: decode(x, relocate) for k, x in v.items()}
        raise AssertionError(f"unexpected fixture value {v}")
    if relocate and isinstance(v, str) and v.startswith(LOC["input_files"]):
        return INPUT_FILES + v[len(LOC["input_files"]) :]
    return v


def provided_of(case):
    out = {}
    for name, spec in (case["provided_inputs"] or {}).items():
        # override targets keep their original location: identify() of them depends on it (quirk 10)
        out[name] = decode(spec["value"], relocate="#" not in name)
    return out


def build(case, tmp_path):
    wf = WORKFLOWS[case["workflow"]]
    return wf.job(case["task"], case["jobname_arg"], provided_of(case), cwd=str(tmp_path), home=HOME)


def walk(job):
    yield job
    for d in job.dependencies:
        if hasattr(d, "dependencies"):
            yield from walk(d)


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_case_identity(case, tmp_path):
    name = case["case"]
    if case.get("job_creation_error"):
        COUNTS["failed_in_ruby"] += 1
        if name in EMPTY_STRING_CASES:
            job = build(case, tmp_path)
            # the leading "" digests to "" and vanishes from the input array (quirk 1)
            expected_head = {"echo_str_empty": "{inputs=[3, 0.500000, ", "two_inputs_empty_first": "{inputs=[2]"}
            assert job.hash is not None and job.digest_str.startswith(expected_head[name])
            assert job.key.startswith(f"var/jobs/{case['workflow']}/{case['task']}/{case['jobname_arg']}_")
            return
        assert "required" in case["job_creation_error"]
        with pytest.raises(InvalidInputError, match="needed"):
            build(case, tmp_path)
        return
    job = build(case, tmp_path)
    if name in DIVERGENT:
        COUNTS["divergent"] += 1
        if name == "echo_string_keys":
            assert job.key == "var/jobs/InputCases/echo/strkeys_3747e524abe333ca62deb9e481daed9b.json"
        else:
            clean = (
                "{inputs=[Directory MD5: [File MD5: bf072e9119077b4e76437a93986787ef, "
                "File MD5: 30cf3d7d133b08543cb6c8933c29dfd7]], dependencies=[]}"
            )
            assert job.digest_str == clean and job.hash == md5_hex(clean) == "d25d4f05f339591d26eb0b8bdcadff30"
        return
    COUNTS["completed"] += 1
    assert job.key == case["path"]
    assert job.hash == case["hash"]
    if case["hash"]:
        assert job.digest_str == case["digest_str"] == case["digest_str_recomputed"]
    # every process_inputs call Ruby made (top task first, then dependencies) is one of our jobs
    ours = list(walk(job))
    for call in case["process_inputs_calls"]:
        matching = [
            j
            for j in ours
            if (j.workflow, j.task) == (call["workflow"], call["task"])
            and j.digest_str.startswith("{inputs=" + call["input_digest_str"] + ", dependencies=")
        ]
        assert matching, (call, [j.digest_str for j in ours])
    for j in ours:
        if j.key in STEPS:
            st = STEPS[j.key]
            assert j.hash == st["hash"]
            if st["hash"]:
                assert j.digest_str == st["digest_str"]
            COUNTS["steps"] += 1
        else:
            assert case.get("run_error") or name.startswith("name_unicode"), j.key
    COUNTS["reproduced"] += 1


def test_digests_seen_are_md5_of_their_strings():
    for md5, s in MANIFEST["digests_seen"].items():
        assert md5_hex(s) == md5


def test_persist_names():
    for p in MANIFEST["persist"]:
        opts = dict(decode(p["options"]))
        other = opts.pop("other", None)
        prefix = opts.pop("prefix", None)
        d = p["file"].rsplit("/", 1)[0] if "var/workflows" in p["file"] else "var/cache/persistence"
        assert persistence_path(p["name"], prefix=prefix, other=other, dir=d, **opts) == p["file"], p
        COUNTS["persist"] += 1


def test_report_counts(capsys):
    total = sum(1 for c in CASES if not c.get("job_creation_error") and c["case"] not in DIVERGENT)
    with capsys.disabled():
        print(
            f"\nfixture identity: {COUNTS['reproduced']}/{total} completed cases reproduced "
            f"({COUNTS['steps']} step identities checked, {COUNTS['divergent']} documented divergences, "
            f"{COUNTS['failed_in_ruby']} cases Ruby refused, {COUNTS['persist']} persist names)"
        )
