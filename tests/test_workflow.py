from __future__ import annotations

import pytest

from scout_persist.rubydigest import Symbol
from scout_persist.errors import InvalidInputError, UnsafePathError
from scout_persist.rubytext import ruby_to_f, ruby_to_i
from scout_persist.workflow import Input, Workflow, job_identity, ruby_eq


def test_ruby_parsing_and_equality():
    assert ruby_to_i(" 1_000x") == 1000 and ruby_to_i("abc") == 0 and ruby_to_i("-5") == -5
    assert ruby_to_f("1e-7") == 1e-7 and ruby_to_f("abc") == 0.0 and ruby_to_f(".5") == 0.5
    assert not ruby_eq(True, 1) and not ruby_eq(Symbol("a"), "a") and ruby_eq(3, 3.0)


def test_job_identity_pure():
    ins = [Input("n", "integer", 1)]
    clean = job_identity("W", "t", ins, {"n": "1"}, [])
    assert clean.hash is None and clean.key == "var/jobs/W/t/Default"
    hashed = job_identity("W", "t", ins, {"n": True}, ["var/jobs/W/d/x"], id="j")
    assert hashed.digest_str == "{inputs=[true], dependencies=[Step: var/jobs/W/d/x]}"
    assert hashed.key.endswith("j_" + hashed.hash)


def test_boolean_and_array_coercion():
    ins = [Input("b", "boolean", False), Input("l", "integer_array", [])]
    j = job_identity("W", "t", ins, {"b": "On", "l": "4\n5\n"}, [])
    assert j.inputs == [False, [4, 5]]


def test_errors_name_value_and_fix():
    w = Workflow("Werr")
    w.task("t", inputs=[Input("needed", required=True), Input("h", "hash")])
    with pytest.raises(InvalidInputError, match="'needed'.*pass inputs"):
        w.job("t")
    with pytest.raises(InvalidInputError, match="hash"):
        w.job("t", inputs={"needed": "x", "h": "text"})
    with pytest.raises(UnsafePathError, match=r"'\.\./x"):
        w.job("t", "../x", {"needed": "x"})
