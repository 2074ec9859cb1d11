"""Python declarations of the fixture workflows (tests/data/ruby-scout/workflows/*.rb), identity only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scout_persist.rubyvalues import Symbol
from scout_persist.workflow import Dep, Input, Workflow

_spec = importlib.util.spec_from_file_location(
    "baking_example", Path(__file__).resolve().parent.parent / "docs" / "examples" / "baking.py"
)
_baking = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_baking)
Baking: Workflow = _baking.Baking

InputCases = Workflow("InputCases")
InputCases.task(
    "echo",
    "json",
    [
        Input("str", "string", "hello"),
        Input("int", "integer", 3),
        Input("flt", "float", 0.5),
        Input("flag", "boolean", False),
        Input("list", "array", ["a", "b"]),
        Input("choice", "select", "red", select_options=["red", "green", "blue"]),
        Input("sym", "string", Symbol("alpha")),
        Input("opt", "string"),
    ],
)
InputCases.task("float_task", "float", [Input("x", "float", 0.5)])
InputCases.task("int_task", "integer", [Input("n", "integer", 7)])
InputCases.task("bool_task", "boolean", [Input("b", "boolean", True)])
InputCases.task("array_task", "array", [Input("items", "array", [])])
InputCases.task("int_array_task", "integer", [Input("nums", "integer_array", [1, 2])])
InputCases.task("hash_task", "json", [Input("opts", "hash", None)])
InputCases.task("text_task", "text", [Input("txt", "text", "default text\n")])
InputCases.task("file_task", "string", [Input("data", "file")])
InputCases.task("file_array_task", "array", [Input("files", "file_array")])
InputCases.task("dir_task", "array", [Input("dir", "folder")])
InputCases.task("path_task", "string", [Input("p", "path", "some/relative/path")])
InputCases.task("jobname_task", "string", [Input("name", "string", None, jobname=True)])
InputCases.task("required_task", "string", [Input("needed", "string", None, required=True)])
InputCases.task("two_inputs", "string", [Input("first", "string", "first default"), Input("second", "integer", 1)])

ReturnCases = Workflow("ReturnCases")
for _name, _type in [
    ("ret_string", "string"),
    ("ret_symbol_as_string", "string"),
    ("ret_text", "text"),
    ("ret_integer", "integer"),
    ("ret_float", "float"),
    ("ret_float_small", "float"),
    ("ret_boolean_true", "boolean"),
    ("ret_boolean_false", "boolean"),
    ("ret_array", "array"),
    ("ret_array_mixed", "array"),
    ("ret_integer_array", "integer_array"),
    ("ret_json", "json"),
    ("ret_yaml", "yaml"),
    ("ret_marshal", "marshal"),
    ("ret_binary", "binary"),
    ("ret_tsv", "tsv"),
    ("ret_path", "path"),
    ("ret_file", "file"),
    ("with_files", "string"),
    ("ret_error", "string"),
    ("ret_runtime_error", "string"),
    ("tmp_path_write", "text"),
    ("with_messages", "string"),
    ("ret_stream", "array"),
    ("ret_nil", "string"),
    ("ret_unicode", "string"),
]:
    ReturnCases.task(_name, _type)
ReturnCases.task("csv_table", "text", extension="csv")
ReturnCases.task("ext_txt", "string", extension="txt")

DepCases = Workflow("DepCases")
DepCases.task("base", "integer", [Input("n", "integer", 1)])
DepCases.task("plus_one", "integer", deps=[Dep("base")])
DepCases.task("fixed_dep", "integer", deps=[Dep("base", inputs={"n": 10})])
DepCases.task("two_bases", "array", deps=[Dep("base", inputs={"n": 3}), Dep("base", inputs={"n": 4})])
DepCases.task("named_dep", "integer", deps=[Dep("base", jobname="fixed_name")])


def _to_i(v):
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


DepCases.task(
    "block_dep",
    "integer",
    deps=[Dep("base", compute=lambda jobname, options: {"inputs": {"n": _to_i(options.get("n")) + 100}})],
)
DepCases.task(
    "multi_block_dep",
    "array",
    deps=[Dep("base", compute=lambda jobname, options: [{"inputs": {"n": 5}}, {"inputs": {"n": 6}}])],
)
DepCases.task("cross_wf", "string", deps=[Dep("whisk_eggs", workflow=Baking)])
DepCases.task("chain", "integer", [Input("factor", "integer", 2)], deps=[Dep("plus_one")])
DepCases.task("consume", "integer", [Input("data", "integer")])
DepCases.task("input_from_dep", "integer", deps=[Dep("base"), Dep("consume", inputs={"data": Symbol("base")})])
DepCases.alias_task("alias_base", DepCases, "base")
DepCases.task("maybe_fail", "string", [Input("fail", "boolean", False)])
DepCases.task("canfail_dep", "string", deps=[Dep("maybe_fail", inputs={"fail": True}, canfail=True)])
DepCases.task("failing_dep", "string", deps=[Dep("maybe_fail", inputs={"fail": True})])

WORKFLOWS = {w.name: w for w in (Baking, InputCases, ReturnCases, DepCases)}
