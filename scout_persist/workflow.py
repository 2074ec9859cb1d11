"""The exact identity of a Scout job: input coercion (§5), the ``_<md5>`` rule (§3) and the job key (§1-2).

Declare a workflow with :class:`Input`, :class:`Dep` and :meth:`Workflow.task`, then ask for
``Workflow.job(task, id, inputs)``.  :func:`job_identity` is the pure core for callers that already know the
keys of a job's dependencies.  Python input names are Ruby Symbols (SCOUT_FORMAT.md §13 quirk 7, fixed).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import rubytext
from .errors import InvalidInputError
from .layout import JOBS_DIR, check_job_name, extension_for, job_key_for
from .resource import find, identify
from .rubydigest import (
    digest_str,
    is_located,
    md5_hex,
    register_workflow_name,
    ruby_join,
    sanitize_filename,
)
from .rubytext import split_lines
from .rubyvalues import ScoutPath, Symbol, ruby_eq, same_as_default

DEFAULT_NAME = "Default"
_NO_LOAD_TYPES = {"path", "file", "folder", "binary", "tsv"}
# Inputs whose values name files or folders: Ruby's path rules apply to them even when strings are plain text.
PATH_TYPES = frozenset({"path", "file", "folder", "file_array"})


# --------------------------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Input:
    """A task input (Ruby ``input :name, :type, desc, default, options``)."""

    name: str
    type: str = "string"
    default: Any = None
    description: str = ""
    jobname: bool = False
    required: bool = False
    select_options: Sequence[Any] | None = None
    noload: bool = False
    asfile: bool = False
    stream: bool = False
    nofile: bool = False

    @property
    def opts_out_of_loading(self) -> bool:
        return self.noload or self.stream or self.nofile or self.asfile

    @property
    def names_paths(self) -> bool:
        """Typed as a file or folder (``path``, ``file``, ``folder``, ``file_array``, or ``asfile``)."""
        return self.type in PATH_TYPES or self.asfile


@dataclass(frozen=True)
class Dep:
    """A dependency (Ruby ``dep``): ``inputs`` are the fixed values of the declaration.

    ``compute(jobname, options)`` replaces Ruby's dep block and returns a dict of options (``{"inputs": {...}}``,
    optionally ``jobname``/``task``/``workflow``), a list of them, or ready :class:`JobSpec` objects.
    A fixed value that is a :class:`Symbol` naming an earlier dependency's task passes that job (``data: :base``).
    """

    task: str
    workflow: Workflow | None = None
    inputs: Mapping[str, Any] | None = None
    jobname: str | None = None
    canfail: bool = False
    compute: Callable[[str, dict[str, Any]], Any] | None = None


@dataclass
class Task:
    workflow: Workflow
    name: str
    type: str = "binary"
    inputs: tuple[Input, ...] = ()
    deps: tuple[Dep, ...] = ()
    extension: str | None = None

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]


@dataclass
class JobIdentity:
    """Everything that names a job; ``hash`` is None for a clean name, ``key`` is relative (``var/jobs/...``)."""

    id: str
    name: str
    hash: str | None
    digest_str: str
    key: str
    inputs: list[Any]
    input_names: list[str]
    non_default_inputs: list[str]
    provided_inputs: dict[str, Any]
    extension: str | None = None

    @classmethod
    def of_stored(cls, key: str, info: Mapping[str, Any]) -> JobIdentity:
        """The identity of the stored job at ``key`` as its ``.info`` tells it (its name is the key's last segment,
        no hash; input names and non-default inputs as recorded): a job reused as it is, not planned again."""
        name = key.rsplit("/", 1)[-1]
        return cls(
            id=name,
            name=name,
            hash=None,
            digest_str="",
            key=key,
            inputs=[],
            input_names=list(info.get("input_names") or []),
            non_default_inputs=list(info.get("non_default_inputs") or []),
            provided_inputs={},
        )


@dataclass
class JobSpec(JobIdentity):
    """A job of a declared workflow with its dependencies (JobSpec, or the path string that overrode one)."""

    workflow: str = ""
    task: str = ""
    type: str = "binary"
    dependencies: list[Any] = field(default_factory=list)
    overridden: bool = False

    @property
    def scout_step_path(self) -> str:
        """Lets a JobSpec be given as an input value or an override: it digests as ``Step: <key>``."""
        return self.key

    @property
    def task_name(self) -> str:
        return self.task


def deserialize(text: str, type: str, input_name: str = "?") -> Any:
    """Ruby ``Persist.deserialize`` for input Strings (§5.1 table)."""

    def json_input(t: str) -> Any:
        try:
            return json.loads(t)
        except ValueError as exc:
            raise InvalidInputError(
                f"input {input_name!r} of type json got {t!r}, which is not JSON ({exc}); pass a JSON text or "
                "the decoded value"
            ) from exc

    def yaml_input(t: str) -> Any:
        import yaml  # lazy: only :yaml values need it

        return yaml.safe_load(t)

    try:
        return rubytext.deserialize(text, type, {"json": json_input, "yaml": yaml_input})
    except LookupError:
        raise InvalidInputError(
            f"input {input_name!r} got the string {text!r} but Scout cannot parse a string as type {type!r} "
            f"(Ruby: 'Persist does not know :{type}'); pass an already-built value (e.g. a dict for :hash)"
        ) from None


def _load_file(path: str, type: str, input_name: str) -> Any:
    """Ruby ``Persist.load(file, type)`` for a String input naming an existing file."""
    if type == "json":
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    if type == "yaml":
        import yaml  # lazy: only :yaml values need it

        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    if type == "file_array":
        with open(path, encoding="utf-8") as fh:
            lines = split_lines(fh.read())
        d = os.path.dirname(path)
        return [d + f[1:] if f.startswith("./") else f for f in lines]
    if type in ("marshal", "serializer"):
        raise InvalidInputError(
            f"input {input_name!r} names the file {path!r} to load as {type}; loading Ruby Marshal inputs is not "
            "supported: pass the value itself"
        )
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return deserialize(fh.read(), type, input_name)


def format_input(value: Any, inp: Input, cwd: str | None = None, str_paths: bool = True) -> Any:
    """Ruby ``Task.format_input``: coerce one provided value by its declared type (§5.1).

    ``str_paths=False``: a String naming an existing file is not loaded (it is parsed as the text it is), unless the
    input is typed as a path (:attr:`Input.names_paths`).
    """
    return _format(value, inp.type, inp, cwd, str_paths or inp.names_paths)


def _format(value: Any, type: str, inp: Input, cwd: str | None, str_paths: bool = True) -> Any:
    if hasattr(value, "scout_step_path") or hasattr(value, "read"):
        return value
    if (
        isinstance(value, str)
        and not isinstance(value, Symbol)
        and type not in _NO_LOAD_TYPES
        and not inp.opts_out_of_loading
    ):
        # Quirk 8 fixed: Ruby expands "" to the working directory and crashes reading it; "" is just "".
        full = value if value.startswith("/") else os.path.join(cwd or os.getcwd(), value)
        if str_paths and value != "" and "\0" not in value and os.path.exists(full) and not os.path.isdir(full):
            return _load_file(full, type, inp.name)
        return deserialize(str(value), type, inp.name)
    m = re.search(r"(.*)_array", str(type))
    if m:
        if isinstance(value, (list, tuple)):
            return [_format(v, m.group(1), inp, cwd, str_paths) for v in value]
        return None
    return value


# ------------------------------------------------------------------------------------------ input array


def _lookup(provided: Mapping[str, Any], name: str) -> Any:
    return provided.get(name)


def assign_inputs(
    declared: Sequence[Input],
    provided: Mapping[str, Any],
    id: str | None,
    cwd: str | None = None,
    home: str | None = None,
    str_paths: bool = True,
) -> tuple[list[Any], list[str]]:
    """§5.3: the processed input array and the own non-default names ``N`` (Ruby ``Task#assign_inputs``)."""
    values: list[Any] = []
    non_default: list[str] = []
    for inp in declared:
        v = format_input(_lookup(provided, inp.name), inp, cwd, str_paths)
        same_default = same_as_default(v, inp.default)
        same_as_jobname = inp.jobname and id is not None and ruby_eq(id, v)
        if v is not None and not same_default and not same_as_jobname:
            non_default.append(inp.name)
            final = v
        elif inp.jobname and id is not None:
            non_default.append(inp.name)
            final = v if (v is not None and v is not False) else id
        else:
            final = inp.default
        if (
            isinstance(final, str)
            and not isinstance(final, (Symbol, ScoutPath))
            and (inp.type in ("file", "path") or inp.asfile)
        ):
            final = ScoutPath(final)
        if isinstance(final, ScoutPath) and inp.type == "file":
            final = ScoutPath(find(str(final), cwd=cwd, home=home))
        values.append(final)
    return values, non_default


def _jobname_input(declared: Sequence[Input]) -> Input | None:
    found = None
    for inp in declared:
        if inp.jobname:
            found = inp
    return found


def resolve_id(declared: Sequence[Input], provided: Mapping[str, Any], id: Any = None) -> str:
    """§2: explicit id, else the raw value of the jobname input, else ``Default``; then sanitized."""
    jn = _jobname_input(declared)
    if id is None and jn is not None:
        id = _lookup(provided, jn.name)
    if id is None:
        id = DEFAULT_NAME
    return sanitize_filename(str(id), 150)


def check_required(declared: Sequence[Input], provided: Mapping[str, Any], where: str = "") -> None:
    for inp in declared:
        if inp.required and _lookup(provided, inp.name) is None:
            raise InvalidInputError(
                f"input {inp.name!r}{where} is required but was not provided or is None "
                f"(Ruby: ParameterException); pass inputs={{{inp.name!r}: <value>}}"
            )


def job_identity(
    workflow: str,
    task: str,
    declared_inputs: Sequence[Input],
    provided_inputs: Mapping[str, Any] | None,
    dependency_keys: Sequence[Any] = (),
    id: str | None = None,
    extension: str | None = None,
    type: str | None = None,
    fixed_inputs: Iterable[str] | None = None,
    dependency_non_default_inputs: Iterable[str] = (),
    overridden: bool = False,
    cwd: str | None = None,
    home: str | None = None,
    str_paths: bool = True,
) -> JobIdentity:
    """The identity of one job given what its dependencies already are (pure; reads only input files).

    ``dependency_keys``: the direct dependencies in declaration order, as keys/paths (or objects with
    ``scout_step_path``); ``dependency_non_default_inputs``: the names the dependencies contribute to ``N``
    (names in ``fixed_inputs`` are dropped, as Ruby drops names fixed by a dep declaration); ``overridden``: a
    ``Workflow#task`` key replaced some dependency at any depth. ``extension="dep_task"`` takes the alias rule.
    ``str_paths=False`` drops Ruby's rule for Strings naming existing files or folders (loaded, digested by content)
    from every input not typed as a path (:attr:`Input.names_paths`): the key no longer depends on what the working
    directory holds.  The default is Ruby's rule, exactly.
    """
    provided = dict(provided_inputs or {})
    where = f" of task {workflow}#{task}"
    check_required(declared_inputs, provided, where)
    jid = resolve_id(declared_inputs, provided, id)
    inputs, non_default = assign_inputs(declared_inputs, provided, jid, cwd, home, str_paths)
    if str_paths:
        input_ds = digest_str(inputs, cwd=cwd, home=home)
    else:  # the input array digested item by item, as digest_str(list) does, each by its own rule
        input_ds = (
            "["
            + ruby_join(
                digest_str(v, cwd=cwd, home=home, str_paths=inp.names_paths) for v, inp in zip(inputs, declared_inputs)
            )
            + "]"
        )
    non_default = list(dict.fromkeys(non_default))
    fixed = set(fixed_inputs or ())
    non_default += [n for n in dependency_non_default_inputs if n not in fixed]

    override_keys = [k for k in provided if "#" in str(k)]
    overridden = bool(override_keys) and overridden
    non_default = [n for n in non_default if n not in override_keys and "#" not in n]
    np = [n for n in dict.fromkeys(non_default) if n in provided]
    jn = _jobname_input(declared_inputs)
    if jn is not None and jn.name in np and ruby_eq(provided.get(jn.name), jid):
        np.remove(jn.name)

    dep_paths = [getattr(d, "scout_step_path", d) for d in dependency_keys]
    deps_ds = "[" + ruby_join("Step: " + identify(os.fspath(p), home=home) for p in dep_paths) + "]"
    full = "{inputs=" + input_ds + ", dependencies=" + deps_ds + "}"
    if overridden or np:
        h: str | None = md5_hex(full)
        name = f"{jid}_{h}"
    else:
        h, name = None, jid
    check_job_name(name, f"{JOBS_DIR}/{workflow}/{task}")
    last = os.path.basename(os.fspath(dep_paths[-1])) if dep_paths else None
    ext = extension_for(type, extension, last)
    step_provided = {n: provided[n] for n in dict.fromkeys(non_default) if n in provided}
    return JobIdentity(
        id=jid,
        name=name,
        hash=h,
        digest_str=full,
        key=job_key_for(workflow, task, name, ext),
        inputs=inputs,
        input_names=[i.name for i in declared_inputs],
        non_default_inputs=non_default,
        provided_inputs=step_provided,
        extension=ext,
    )


# ------------------------------------------------------------------------------------------- workflows


class Workflow:
    """A declared Scout workflow: tasks with inputs and dependencies (identity only, no bodies)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tasks: dict[str, Task] = {}
        register_workflow_name(name)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r})"

    def task(
        self,
        name: str,
        type: str = "binary",
        inputs: Iterable[Input] = (),
        deps: Iterable[Dep] = (),
        extension: str | None = None,
    ) -> Task:
        t = Task(self, name, type or "binary", tuple(inputs), tuple(deps), extension)
        self.tasks[name] = t
        return t

    def alias_task(self, name: str, dep_workflow: Workflow | None, dep_task: str, **fixed: Any) -> Task:
        """Ruby ``dep_task``: one dependency, the dependency's type, the extension of its result file."""
        wf = dep_workflow or self
        target = wf._get(dep_task)
        return self.task(name, target.type, (), (Dep(dep_task, wf, fixed or None),), "dep_task")

    def _get(self, task: str) -> Task:
        try:
            return self.tasks[task]
        except KeyError:
            raise InvalidInputError(
                f"workflow {self.name} has no task {task!r}; declared tasks: {sorted(self.tasks)}"
            ) from None

    def job(
        self,
        task: str,
        id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        *,
        cwd: str | None = None,
        home: str | None = None,
    ) -> JobSpec:
        """The job Ruby's ``Workflow#job(task, id, inputs)`` would create, dependencies included."""
        return self._build(task, id, dict(inputs or {}), cwd, home)

    # -- internals ------------------------------------------------------------------------------------

    def _build(self, task_name: str, id: Any, provided: dict[str, Any], cwd: str | None, home: str | None) -> JobSpec:
        t = self._get(task_name)
        check_required(t.inputs, provided, f" of task {self.name}#{task_name}")
        jid = resolve_id(t.inputs, provided, id)
        deps, dep_nd, overridden = self._dependencies(t, jid, provided, cwd, home)
        ident = job_identity(
            self.name,
            task_name,
            t.inputs,
            provided,
            deps,
            id=jid,
            extension=t.extension,
            type=t.type,
            dependency_non_default_inputs=dep_nd,
            overridden=overridden,
            cwd=cwd,
            home=home,
        )
        return JobSpec(
            **vars(ident),
            workflow=self.name,
            task=task_name,
            type=t.type,
            dependencies=deps,
            overridden=overridden and any("#" in str(k) for k in provided),
        )

    def _dependencies(
        self, t: Task, id: str, provided: dict[str, Any], cwd: str | None, home: str | None
    ) -> tuple[list[Any], list[str], bool]:
        built: list[Any] = []
        non_default: list[str] = []
        overridden = False
        for dep in t.deps:
            wf = dep.workflow or self
            definition = dict(dep.inputs or {})
            dep_id = dep.jobname if dep.jobname is not None else id
            okey = f"{wf.name}#{dep.task}"
            if okey in provided:
                built.append(_override_value(provided[okey], okey))
                overridden = True
                continue
            if dep.compute is not None:
                parent_values, _ = assign_inputs(t.inputs, provided, dep_id, cwd, home)
                block_options = dict(definition)
                for k, v in zip(t.input_names, parent_values):
                    block_options.setdefault(k, v)
                for k, v in provided.items():
                    block_options.setdefault(k, v)
                res = dep.compute(dep_id, dict(block_options))
                for r in res if isinstance(res, list) else [res]:
                    if isinstance(r, Mapping):
                        job = self._load_dep(
                            t,
                            dep_id,
                            wf,
                            dep.task,
                            {**block_options, **r},
                            block_options,
                            built,
                            provided,
                            cwd,
                            home,
                            from_block=True,
                        )
                    else:
                        job = r
                    built.append(job)
                    non_default += self._filter(job, definition)
                    overridden = overridden or getattr(job, "overridden", False)
                continue
            step_options = dict(definition)
            for k, v in provided.items():
                step_options.setdefault(k, v)
            job = self._load_dep(t, dep_id, wf, dep.task, step_options, definition, built, provided, cwd, home)
            built.append(job)
            non_default += self._filter(job, definition)
            overridden = overridden or job.overridden
        return built, non_default, overridden

    @staticmethod
    def _filter(job: Any, definition: Mapping[str, Any]) -> list[str]:
        nd = getattr(job, "non_default_inputs", None)
        if nd is None:
            return []
        kept = [n for n in nd if n not in definition]
        job.non_default_inputs = kept  # Ruby mutates the dependency's list too (quirk 17)
        return list(kept)

    def _load_dep(
        self,
        parent: Task,
        dep_id: str,
        wf: Workflow,
        task: str,
        step_options: dict[str, Any],
        definition: Mapping[str, Any],
        built: list[Any],
        provided: Mapping[str, Any],
        cwd: str | None,
        home: str | None,
        from_block: bool = False,
    ) -> JobSpec:
        step_options = dict(step_options)
        if from_block:
            task = step_options.pop("task", task)
            wf = step_options.pop("workflow", wf)
        step_id: Any = step_options.pop("jobname", dep_id) if "jobname" in step_options else dep_id
        if step_id == DEFAULT_NAME:
            step_id = None
        step_inputs = dict(step_options.pop("inputs")) if "inputs" in step_options else step_options
        for k, v in definition.items():
            step_inputs.setdefault(k, v)
        parent_names = set(parent.input_names)
        resolved: dict[str, Any] = {}
        for k, v in step_inputs.items():
            if isinstance(v, Symbol):
                match = [d for d in built if getattr(d, "task_name", None) == str(v)]
                if match:
                    resolved[k] = match[0]
                elif str(v) in provided and str(v) in parent_names:
                    resolved[k] = provided[str(v)]
                elif str(v) in step_inputs and str(v) in parent_names:
                    resolved[k] = step_inputs[str(v)]
                else:
                    resolved[k] = v
            else:
                resolved[k] = v
        return wf._build(task, step_id, resolved, cwd, home)


def _override_value(value: Any, key: str) -> Any:
    if hasattr(value, "scout_step_path"):
        return value
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, Symbol):
        return os.fspath(value)
    raise InvalidInputError(
        f"override {key!r} got {value!r} ({type(value).__name__}); an override replaces a dependency and must be "
        "a job path (str) or a job (JobSpec / Step)"
    )


__all__ = [
    "Dep",
    "Input",
    "JobIdentity",
    "JobSpec",
    "Task",
    "Workflow",
    "assign_inputs",
    "format_input",
    "job_identity",
    "is_located",
]
