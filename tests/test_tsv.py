"""Scout TSV <-> pandas (scout_persist.tsv): Ruby's TSV fixtures load as DataFrames, and a DataFrame written as
type='tsv' gives Ruby's bytes (byte for byte against the fixtures), with dtypes kept for our own jobs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scout_persist import payload
from scout_persist.errors import InvalidInputError, UnsupportedValueError
from scout_persist.job import Job, JobWriter
from scout_persist.rubyvalues import TSV
from scout_persist.scout_types import dump_tsv
from scout_persist.store import Store
from scout_persist.tsv import frame_of


def _tsv_cases(manifest) -> list[dict]:
    return [c for c in manifest["cases"] if c.get("task_type") == "tsv"]


def test_the_fixtures_hold_a_ruby_tsv_job(manifest):
    assert [c["path"] for c in _tsv_cases(manifest)] == ["var/jobs/ReturnCases/ret_tsv/Default.tsv"]


def test_ruby_tsv_jobs_load_as_dataframes(ruby_fixtures, manifest):
    for case in _tsv_cases(manifest):
        job = Job(str(ruby_fixtures / "scout-jobs" / case["path"]))
        df = job.load(as_="pandas")
        assert isinstance(df, pd.DataFrame)
        assert df.index.name == "ID" and list(df.index) == ["row1", "row2"]
        assert list(df.columns) == ["Letter", "Number"]
        assert df.loc["row2"].tolist() == ["b", "2"]  # Ruby's TSV values are strings
        assert df.attrs["scout_tsv"] == {"type": "list", "options": {}}


def test_a_table_loaded_from_a_ruby_fixture_writes_back_byte_for_byte(ruby_fixtures, manifest, tmp_path):
    for case in _tsv_cases(manifest):
        source = ruby_fixtures / "scout-jobs" / case["path"]
        df = Job(str(source)).load(as_="pandas")
        writer = JobWriter(Store(str(tmp_path)), case["path"], type="tsv")
        writer.setup()
        writer.save(df)
        job = writer.done()
        assert (tmp_path / case["path"]).read_bytes() == source.read_bytes()
        assert job.info["type"] == "tsv" and job.info["payload"]["type"] == "tsv"
        back = job.load(as_="pandas")
        pd.testing.assert_frame_equal(back, df)
        assert back.attrs == df.attrs
        assert isinstance(job.load(), pd.DataFrame)  # our job: the frame it was written from


def test_the_same_table_built_by_hand_with_numbers_gives_ruby_bytes(ruby_fixtures, tmp_path):
    """Ruby's table ``{"row1" => ["a", "1"], ...}``; the Python user has ints in the Number column."""
    df = pd.DataFrame({"Letter": ["a", "b"], "Number": [1, 2]}, index=pd.Index(["row1", "row2"], name="ID"))
    enc = payload.encode(df, "tsv", key="var/jobs/W/t/Default.tsv")
    source = ruby_fixtures / "scout-jobs/var/jobs/ReturnCases/ret_tsv/Default.tsv"
    assert enc.data == source.read_bytes()
    back = payload.decode(enc.data, enc.record, key="k")
    assert back["Number"].dtype == np.int64 and back["Number"].tolist() == [1, 2]  # our record keeps the dtype
    pd.testing.assert_frame_equal(enc.value, back)


def test_cells_are_written_as_ruby_writes_them():
    df = pd.DataFrame(
        {
            "f": [1e-7, 4.0, np.nan, np.inf],
            "b": [True, False, True, False],
            "i": [1, -2, 3, 40],
            "s": ["x", None, "ñandú", "z"],
        },
        index=pd.Index(["k1", "k2", "k3", "k4"], name="Key"),
    )
    enc = payload.encode(df, "tsv", key="k")
    assert enc.data.decode() == (
        "#: :type=:list\n#Key\tf\tb\ti\ts\n"
        "k1\t1.0e-07\ttrue\t1\tx\nk2\t4.0\tfalse\t-2\t\nk3\t\ttrue\t3\tñandú\n"
        "k4\tInfinity\tfalse\t40\tz\n"
    )
    pd.testing.assert_frame_equal(payload.decode(enc.data, enc.record, key="k"), df)


def test_series_single_and_double_tsvs():
    s = pd.Series([1.5, 2.5], index=pd.Index(["a", "b"], name="Gene"), name="Score")
    enc = payload.encode(s, "tsv", key="k")
    assert enc.data == b"#: :type=:single\n#Gene\tScore\na\t1.5\nb\t2.5\n"
    pd.testing.assert_series_equal(payload.decode(enc.data, enc.record, key="k"), s)
    ruby_double = TSV(
        key_field="Gene",
        fields=["Synonyms", "Ids"],
        type="double",
        data={"g1": [["a", "b"], ["1"]], "g2": [[], ["2", "3"]]},
        options={},
    )
    raw = dump_tsv(ruby_double)
    frame = frame_of(ruby_double)
    assert frame.loc["g1", "Synonyms"] == ["a", "b"] and frame.attrs["scout_tsv"]["type"] == "double"
    assert payload.encode(frame, "tsv", key="k").data == raw


def test_preamble_options_travel_in_attrs():
    from scout_persist.rubyvalues import Symbol

    ruby = TSV(
        key_field="ID",
        fields=["V"],
        type="list",
        data={"a": ["1"]},
        options={"namespace": Symbol("Hsa"), "cast": "to_i"},
    )
    raw = dump_tsv(ruby)
    assert raw.startswith(b"#: :cast=to_i#:namespace=:Hsa#:type=:list\n")
    frame = frame_of(ruby)
    assert payload.encode(frame, "tsv", key="k").data == raw


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"a": ["x\ty"]}), r"holds a tab or a newline, which a TSV cannot"),
        (
            pd.DataFrame({"a": [1, 2]}, index=["k", "k"]),
            r"the key 'k' appears more than once; Scout TSV keys are unique",
        ),
        (pd.DataFrame({0: [1]}), r"TSV field names are text"),
        (pd.DataFrame({"a": [1]}, index=pd.MultiIndex.from_tuples([("x", 1)])), r"reset the MultiIndex"),
        (pd.DataFrame({"a": [[1], 2]}), r"some cells are lists and others not"),
        (pd.DataFrame({"a": ["x", ""]}), r"cannot be stored as Scout type 'tsv' without change.*TSV cells are text"),
        (pd.DataFrame({"a": [[1, 2]]}), r"cannot be stored as Scout type 'tsv' without change"),
        (pd.DataFrame({"a": [["x|y"]]}), r"holds '\|', which separates values in a double TSV"),
    ],
)
def test_a_table_tsv_cannot_hold_is_refused_with_the_fix(frame, message):
    with pytest.raises(UnsupportedValueError, match=message):
        payload.encode(frame, "tsv", key="k")


def test_as_pandas_reads_other_results_and_refuses_the_rest(tmp_path):
    store = Store(str(tmp_path))

    def job_of(key, value, scout_type=None):
        w = JobWriter(store, key, type=scout_type)
        w.setup()
        w.save(value)
        return w.done()

    import pyarrow as pa

    assert job_of("var/jobs/W/a/x", pa.table({"a": [1]})).load(as_="pandas").equals(pd.DataFrame({"a": [1]}))
    assert job_of("var/jobs/W/n/x", np.eye(2)).load(as_="pandas").shape == (2, 2)
    assert list(job_of("var/jobs/W/j/x.json", [{"a": 1}, {"a": 2}], "json").load(as_="pandas")["a"]) == [1, 2]
    text = job_of("var/jobs/W/t/x", "plain", "text")
    with pytest.raises(InvalidInputError, match=r"its str result has no pandas form; as_='pandas' reads TSV"):
        text.load(as_="pandas")
    with pytest.raises(InvalidInputError, match=r"load\(as_='numpy'\): the only conversion is as_='pandas'"):
        text.load(as_="numpy")


def test_record_of_a_tsv_frame_is_in_info(tmp_path):
    df = pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="ID"))
    w = JobWriter(Store(str(tmp_path)), "var/jobs/W/t/x.tsv", type="tsv")
    w.setup()
    w.save(df)
    w.done()
    info = json.loads((tmp_path / "var/jobs/W/t/x.tsv.info").read_text())
    assert info["payload"]["pandas"]["columns"] == [["n", "int64"]] and info["type"] == "tsv"
