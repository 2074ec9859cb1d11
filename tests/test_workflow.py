from __future__ import annotations

import pytest

from scout_persist.errors import InvalidInputError, UnsafePathError
from scout_persist.rubytext import ruby_to_f, ruby_to_i
from scout_persist.rubyvalues import Symbol, ruby_eq
from scout_persist.workflow import Input, Workflow, job_identity


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
    with pytest.raises(InvalidInputError, match=r"'needed'.*pass inputs"):
        w.job("t")
    with pytest.raises(InvalidInputError, match="hash"):
        w.job("t", inputs={"needed": "x", "h": "text"})
    with pytest.raises(UnsafePathError, match=r"'\.\./x"):
        w.job("t", "../x", {"needed": "x"})


def test_strings_naming_files_follow_ruby_unless_str_paths_is_off(tmp_path, ruby_fixtures):
    """Ruby's :string rule makes a key depend on the working directory; str_paths=False keeps strings as text,
    except for inputs typed as paths. The default stays Ruby-exact (the fixture case echo_existing_file_as_string)."""
    from scout_persist.rubydigest import digest_str

    ins = [Input("split", "string", "train"), Input("data", "file"), Input("out", "folder")]
    given = {"split": "valid", "data": str(tmp_path / "x.txt"), "out": "reports"}
    (tmp_path / "x.txt").write_text("one")
    before = {
        mode: job_identity("W", "pick", ins, given, [], cwd=str(tmp_path), str_paths=mode) for mode in (True, False)
    }
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / "a.csv").write_text("1,2")
    after = {
        mode: job_identity("W", "pick", ins, given, [], cwd=str(tmp_path), str_paths=mode) for mode in (True, False)
    }
    assert before[True].key != after[True].key  # Ruby: ./valid/ appearing changes the job
    assert "Directory MD5: [" in after[True].digest_str
    assert before[False].key == after[False].key and after[False].digest_str.startswith("{inputs=[valid, File MD5: ")
    (tmp_path / "x.txt").write_text("two")  # a path-typed input is read by content in both modes
    assert job_identity("W", "pick", ins, given, [], cwd=str(tmp_path), str_paths=False).key != after[False].key
    assert digest_str(["valid", {"k": "valid"}], cwd=str(tmp_path), str_paths=False) == "[valid, {k=valid}]"
    assert digest_str(["valid"], cwd=str(tmp_path)) == "[Directory MD5: [" + f"File MD5: {_md5('1,2')}]]"

    sample = str(ruby_fixtures / "input_files" / "sample.txt")
    echo = [Input("str", "string", "hello")]
    ruby = job_identity("InputCases", "echo", echo, {"str": sample}, [], id="strfile")
    assert ruby.digest_str == "{inputs=[sample content], dependencies=[]}"  # the file's content, as Ruby
    plain = job_identity("InputCases", "echo", echo, {"str": sample}, [], id="strfile", str_paths=False)
    assert plain.digest_str == "{inputs=[" + sample + "], dependencies=[]}" and plain.inputs == [sample]


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()
