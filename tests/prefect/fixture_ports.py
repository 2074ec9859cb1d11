"""Prefect ports of the fixture workflows (tests/data/ruby-scout/workflows/*.rb) as scout tasks.

Bodies are trivial: these ports exist to check job identities.  They mirror Ruby tasks, so every one takes Ruby's
``:string`` rule (``ruby_strings=True``: a str naming an existing file or folder is read by content).  Each Ruby
declaration becomes a scout task whose signature carries the inputs (types from annotations or ``types=``,
defaults from the signature); each Ruby ``dep`` becomes an upstream task whose future is passed in.  :func:`drive`
runs the jobs Ruby's ``Workflow#job(task, id, inputs)`` would create, with the provided inputs as the flow run's
parameters.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.utilities.annotations import allow_failure

from prefect_scout import JobName, fixed, job_name, scout_task
from scout_persist.rubyvalues import TSV, Symbol

# ----------------------------------------------------------------------------------------------- Baking


@scout_task(type="string", workflow="Baking", ruby_strings=True)
def whisk_eggs() -> str:
    return "Whisking eggs from share/pantry/eggs"


@scout_task(type="string", workflow="Baking", ruby_strings=True)
def prepare_batter(whisked_eggs: str, add_bluberries: bool | None = None) -> str:
    return f"Mixing base ({whisked_eggs}) with mixer (share/pantry/flour)"


@scout_task(type="string", workflow="Baking", ruby_strings=True)
def bake_muffin_tray(batter: str) -> str:
    return f"Baking batter ({batter})"


# ------------------------------------------------------------------------------------------- InputCases
IC = {"workflow": "InputCases", "ruby_strings": True}


@scout_task(type="json", types={"choice": "select"}, **IC)
def echo(
    str: str = "hello",
    int: int = 3,
    flt: float = 0.5,
    flag: bool = False,
    list: list = ["a", "b"],
    choice: str = "red",
    sym: str = Symbol("alpha"),
    opt: str | None = None,
) -> Any:
    return {"str": f"{str}"}


@scout_task(type="float", **IC)
def float_task(x: float = 0.5) -> float:
    return 1.0


@scout_task(type="integer", **IC)
def int_task(n: int = 7) -> int:
    return 1


@scout_task(type="boolean", **IC)
def bool_task(b: bool = True) -> bool:
    return True


@scout_task(type="array", **IC)
def array_task(items: list = []) -> list:
    return ["x"]


@scout_task(type="integer", **IC)
def int_array_task(nums: list[int] = [1, 2]) -> int:
    return 1


@scout_task(type="json", **IC)
def hash_task(opts: dict | None = None) -> Any:
    return {}


@scout_task(type="text", types={"txt": "text"}, **IC)
def text_task(txt: str = "default text\n") -> str:
    return "t"


@scout_task(type="string", **IC)
def file_task(data: Path | None = None) -> str:
    return "f"


@scout_task(type="array", types={"files": "file_array"}, **IC)
def file_array_task(files: list | None = None) -> list:
    return ["f"]


@scout_task(type="array", types={"dir": "folder"}, **IC)
def dir_task(dir: str | None = None) -> list:
    return ["d"]


@scout_task(type="string", types={"p": "path"}, **IC)
def path_task(p: str = "some/relative/path") -> str:
    return "p"


@scout_task(type="string", **IC)
def jobname_task(name: JobName = None) -> str:
    return "n"


@scout_task(type="string", **IC)
def required_task(needed: str) -> str:
    return "r"


@scout_task(type="string", **IC)
def two_inputs(first: str = "first default", second: int = 1) -> str:
    return "2"


# ------------------------------------------------------------------------------------------ ReturnCases
RC = {"workflow": "ReturnCases", "ruby_strings": True}
RETURNS: dict[str, Any] = {}


def _returning(name: str, value: Any) -> Any:
    def body() -> Any:
        return value

    body.__name__ = name
    return body


for _name, _type, _value, _ext in [
    ("ret_string", "string", "a plain string", None),
    ("ret_symbol_as_string", "string", "a_symbol", None),
    ("ret_text", "text", "line one\n", None),
    ("ret_integer", "integer", 42, None),
    ("ret_float", "float", 3.14159, None),
    ("ret_float_small", "float", 1e-07, None),
    ("ret_boolean_true", "boolean", True, None),
    ("ret_boolean_false", "boolean", False, None),
    ("ret_array", "array", ["one", 2], None),
    ("ret_array_mixed", "array", ["a", None], None),
    ("ret_integer_array", "integer_array", [1, 2, 3], None),
    ("ret_json", "json", {"a": 1}, None),
    ("ret_yaml", "yaml", {"name": "muffin"}, None),
    ("ret_binary", "binary", b"\x00\x01", None),
    ("ret_unicode", "string", "ñandú", None),
    ("with_files", "string", "files", None),
    ("with_messages", "string", "m", None),
    ("csv_table", "text", "a,b\n", "csv"),
    ("ext_txt", "string", "txt", "txt"),
    ("ret_marshal", "marshal", {"a": 1}, None),
    ("ret_tsv", "tsv", TSV("ID", ["Letter"], "list", {"row1": ["a"]}), None),
    ("ret_path", "path", "/tmp/out.txt", None),
    ("ret_file", "file", "/tmp/result.tsv", None),
    ("tmp_path_write", "text", "written\n", None),
    ("ret_stream", "array", ["s1", "s2"], None),
    ("ret_nil", "string", None, None),
]:
    RETURNS[_name] = scout_task(_returning(_name, _value), type=_type, extension=_ext, **RC)


def _raise():
    raise RuntimeError("Planned failure")


_raise.__name__ = "ret_runtime_error"
RETURNS["ret_runtime_error"] = scout_task(_raise, type="string", **RC)


def _raise_scout():
    raise RuntimeError("Planned failure")


_raise_scout.__name__ = "ret_error"
RETURNS["ret_error"] = scout_task(_raise_scout, type="string", **RC)

# --------------------------------------------------------------------------------------------- DepCases
DC = {"workflow": "DepCases", "ruby_strings": True}


@scout_task(type="integer", **DC)
def base(n: int = 1) -> int:
    return n if isinstance(n, int) else 0


@scout_task(type="integer", **DC)
def plus_one(base: int) -> int:
    return base + 1


@scout_task(type="integer", **DC)
def fixed_dep(base: int) -> int:
    return base


@scout_task(type="array", **DC)
def two_bases(first: int, second: int) -> list:
    return [first, second]


@scout_task(type="integer", **DC)
def named_dep(base: int) -> int:
    return base


@scout_task(type="integer", **DC)
def block_dep(base: int) -> int:
    return base


@scout_task(type="array", **DC)
def multi_block_dep(bases: list) -> list:
    return list(bases)


@scout_task(type="string", **DC)
def cross_wf(eggs: str) -> str:
    return eggs


@scout_task(type="integer", **DC)
def chain(plus_one: int, factor: int = 2) -> int:
    return plus_one * factor


@scout_task(type="integer", extension="dep_task", **DC)
def alias_base(base: int) -> int:
    return base


@scout_task(type="integer", step_inputs=("data",), **DC)
def consume(data: int | None = None) -> int:
    return data


@scout_task(type="integer", **DC)
def input_from_dep(base: int, consume: int) -> int:
    return consume


@scout_task(type="string", **DC)
def maybe_fail(fail: bool = False) -> str:
    if fail:
        raise RuntimeError("Planned dependency failure")
    return "fine"


@scout_task(type="string", **DC)
def canfail_dep(maybe: Any) -> str:
    return "recovered"


def _to_i(v: Any) -> int:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _dep_cases(task: str, p: dict[str, Any], jid: str | None) -> Any:
    """Run DepCases job ``task`` as Ruby would build it; returns the future of the top job."""
    n = {"n": p["n"]} if "n" in p else {}
    if task == "base":
        return base.submit(**n)
    if task == "plus_one":
        return plus_one.submit(base.submit(**n))
    if task == "fixed_dep":
        return fixed_dep.submit(base.submit(n=fixed(10)))
    if task == "two_bases":
        return two_bases.submit(base.submit(n=fixed(3)), base.submit(n=fixed(4)))
    if task == "named_dep":
        with job_name("fixed_name"):
            b = base.submit(**n)
        return named_dep.submit(b)
    if task == "block_dep":
        return block_dep.submit(base.submit(n=_to_i(p.get("n")) + 100))
    if task == "multi_block_dep":
        return multi_block_dep.submit([base.submit(n=5), base.submit(n=6)])  # block results are not fixed
    if task == "cross_wf":
        return cross_wf.submit(whisk_eggs.submit())
    if task == "chain":
        extra = {"factor": p["factor"]} if "factor" in p else {}
        return chain.submit(plus_one.submit(base.submit(**n)), **extra)
    if task == "alias_base":
        return alias_base.submit(base.submit(**n))
    if task == "input_from_dep":
        b = base.submit(**n)
        return input_from_dep.submit(b, consume.submit(data=fixed(b)))
    if task == "canfail_dep":
        return canfail_dep.submit(allow_failure(maybe_fail.submit(fail=fixed(True))))
    raise KeyError(task)


def _baking(task: str, p: dict[str, Any], jid: str | None) -> Any:
    if task == "whisk_eggs":
        return whisk_eggs.submit()
    extra = {"add_bluberries": p["add_bluberries"]} if "add_bluberries" in p else {}
    batter = prepare_batter.submit(whisk_eggs.submit(), **extra)
    return batter if task == "prepare_batter" else bake_muffin_tray.submit(batter)


_INPUT_TASKS = {
    t.name: t
    for t in (
        echo,
        float_task,
        int_task,
        bool_task,
        array_task,
        int_array_task,
        hash_task,
        text_task,
        file_task,
        file_array_task,
        dir_task,
        path_task,
        jobname_task,
        required_task,
        two_inputs,
    )
}


def _input_cases(task: str, p: dict[str, Any], jid: str | None) -> Any:
    return _INPUT_TASKS[task].submit(**p)


def _return_cases(task: str, p: dict[str, Any], jid: str | None) -> Any:
    return RETURNS[task].submit()


DRIVERS = {"Baking": _baking, "InputCases": _input_cases, "ReturnCases": _return_cases, "DepCases": _dep_cases}


def drive(workflow: str, task: str, jobname: str | None, provided: dict[str, Any]) -> Any:
    """Run the job as a flow named ``workflow`` whose parameters are exactly ``provided``; returns the top state."""

    def body(**params: Any) -> Any:
        ctx = job_name(jobname) if jobname is not None else None
        if ctx is not None:
            with ctx:
                fut = DRIVERS[workflow](task, params, jobname)
        else:
            fut = DRIVERS[workflow](task, params, jobname)
        fut.wait()
        return fut.task_run_id

    body.__signature__ = inspect.Signature(
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=None) for k in provided]
    )
    return flow(body, name=workflow, validate_parameters=False, persist_result=False)(**provided)
