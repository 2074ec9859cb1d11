"""The plan of one task call: which arguments are Scout inputs and which are dependencies, the Ruby-exact job key,
and the strong signature — every rule in one place, used by the Prefect plug-in and by anything else that runs
Python functions as Scout tasks.

Rules (docs/prefect.md, docs/identity.md):

* An argument fed *only* by upstream jobs (a future, a list of futures, a value a task call returned) is a Scout
  dependency: it enters the key as ``Step: var/jobs/...``.  An argument that mixes upstream values with literals
  (``combine([b, 2])``) is a dependency for each upstream job *and* an input, its value the literal structure with
  each upstream job in place (``[Step(b), 2]``).  Every other argument is an input, typed from its annotation.
* ``*args`` and ``**kwargs`` are inputs named after their parameter (``array`` and ``hash`` types) when not empty.
* The signature digests **every** argument by value, including those fed by upstream jobs (a value changed in place
  after a task returned it is another input); an upstream value that cannot be digested counts by its job's token.
  Dependencies enter it by their tokens (:func:`scout_persist.signature.dependency_token`), and the code by its
  identity (:mod:`scout_persist.codeidentity`).
* Arguments in ``ignore`` take part in neither key nor signature.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import formats, signature
from .codeidentity import CodeIdentity, identify
from .errors import InvalidInputError, ScoutPersistError, UnsupportedValueError
from .info import read_info
from .rubydigest import digest_str
from .rubyvalues import Step
from .workflow import Input, JobIdentity, job_identity  # JobIdentity: what a CallPlan names, for its callers

if TYPE_CHECKING:
    from .store import Store

JOBNAME_MARK = "scout:jobname"
T = TypeVar("T")


class ScoutKeyError(ScoutPersistError, ValueError):
    """The Scout job key of a task call could not be computed; the task fails instead of running uncached."""


@dataclass(frozen=True)
class TaskDecl:
    """What a task declares (None: take it from the flow / function)."""

    workflow: str | None = None
    name: str | None = None
    type: str | None = None
    extension: str | None = None
    version: str | None = None
    ignore: tuple[str, ...] = ()
    types: Mapping[str, str] | None = None
    url: str | None = None
    step_inputs: tuple[str, ...] = ()  # arguments whose upstream job is an input value (Ruby ``data: :base``)
    format: str | None = None  # payload format of results of any Python type (None: chosen by the value's type)
    # Ruby's ``:string`` rule: a str naming an existing file or folder is loaded / digested by its content.  Off, only
    # inputs typed as paths (Path annotations, types= path/file/folder/file_array) are read from disk.
    ruby_strings: bool = False
    # audit mode (scout_persist.audit): the fraction of hits computed again and compared (None: $SCOUT_PERSIST_AUDIT)
    audit: float | None = None
    audit_replace: bool | None = None  # a mismatch replaces the stored job (None: $SCOUT_PERSIST_AUDIT_REPLACE)


@dataclass(frozen=True)
class Upstream:
    """A job whose result feeds an argument: its key, its :func:`~scout_persist.signature.dependency_token` and
    the non-default inputs it passes on to its dependents (Ruby's inherited inputs)."""

    key: str
    token: str
    inherited: tuple[str, ...] = ()


def upstream_from_info(
    key: str, info: Mapping[str, Any] | None, fixed: Sequence[str] = (), store: Store | None = None
) -> Upstream:
    """An upstream job read from its ``.info`` (in ``store``: a Ruby job counts by its result bytes): inputs fixed
    by the caller are not inherited by dependents."""
    info = info or {}
    record = info.get("prefect") if isinstance(info.get("prefect"), Mapping) else {}
    fixed_names = set(fixed) | set((record or {}).get("fixed_inputs") or ())
    inherited = tuple(n for n in info.get("non_default_inputs") or [] if n not in fixed_names)
    return Upstream(key, signature.dependency_token(key, info, store), inherited)


def upstream_at(store: Store, key: str) -> Upstream | None:
    """The upstream job at ``key`` in ``store`` as its ``.info`` tells it now; None when no ``.info`` names a
    workflow (not a Scout job)."""
    info = read_info(store, key + ".info")
    if not info or not info.get("workflow"):
        return None
    return upstream_from_info(key, info, store=store)


def upstream_token(store: Store, key: str) -> str:
    """The :func:`~scout_persist.signature.dependency_token` of the job at ``key`` in ``store``, from its ``.info`` as
    it is now."""
    return signature.dependency_token(key, read_info(store, key + ".info"), store)


@dataclass(frozen=True)
class UpstreamRef:
    """In an argument's template: the place of a value that an upstream run (by id) produced."""

    run: str


@dataclass(frozen=True)
class CallPlan:
    """One planned call: where its job lives and what must match for a stored job to count."""

    workflow: str
    task: str
    job_key: str  # var/jobs/<Workflow>/<task>/<name>[.ext]
    identity: JobIdentity
    dependencies: tuple[str, ...]  # job keys of the direct dependencies, in order
    signature: Mapping[str, Any]
    code: CodeIdentity = field(repr=False, compare=False, default=CodeIdentity("", {}))


# ------------------------------------------------------------------------------------------ annotations
_SIMPLE_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", tuple: "array"}
_SIMPLE_TYPES[dict] = "hash"
_NAMED_TYPES = {
    "bool": "boolean",
    "int": "integer",
    "float": "float",
    "str": "string",
    "list": "array",
    "dict": "hash",
    "list[str]": "array",
    "list[int]": "integer_array",
    "list[float]": "float_array",
    "Path": "file",
    "pathlib.Path": "file",
    "JobName": "string",
}


def hints(fn: Any) -> dict[str, Any]:
    """The parameter annotations of ``fn``, resolved where they can be."""
    made_of = _made_of(fn)
    if made_of is not None and not any(isinstance(a, str) for a in fn.__annotations__.values()):
        # no name to resolve: the hints are what the annotations are, made once per version of the function
        return dict(_kept(_hints, fn, made_of, lambda: _resolve_hints(fn)))
    return _resolve_hints(fn)


def _resolve_hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - hints that do not resolve: the raw annotations
        return dict(getattr(fn, "__annotations__", {}) or {})


def call_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``inspect.signature(fn)``, made once per version of a plain function (a new code object, defaults,
    annotations, ``__signature__`` or ``__wrapped__`` make it again): a task's calls all ask for it."""
    made_of = _made_of(fn)
    if made_of is None:
        return inspect.signature(fn)
    return _kept(_signatures, fn, made_of, lambda: inspect.signature(fn))


def _made_of(fn: Any) -> tuple[Any, ...] | None:
    """What ``inspect.signature`` and ``typing.get_type_hints`` read of a plain function (None: not one)."""
    if not isinstance(fn, types.FunctionType):
        return None
    return (
        fn.__code__,
        fn.__defaults__,
        fn.__dict__.get("__signature__"),
        fn.__dict__.get("__wrapped__"),
        *itertools.chain.from_iterable((fn.__kwdefaults__ or {}).items()),
        None,
        *itertools.chain.from_iterable(fn.__annotations__.items()),
    )


def _kept(table: dict[int, tuple[Any, Any, Any]], fn: Any, made_of: tuple[Any, ...], make: Callable[[], T]) -> T:
    found = table.get(id(fn))
    # the very same objects (never ==: a default may be an array, whose == is no answer)
    if found is not None and found[0] is fn and len(found[1]) == len(made_of):
        if all(a is b for a, b in zip(found[1], made_of)):
            return cast(T, found[2])
    value = make()
    if len(table) >= 4096:  # a process that makes functions without end must not grow without bound
        table.clear()
    table[id(fn)] = (fn, made_of, value)  # the function itself is kept: its id cannot be reused meanwhile
    return value


_signatures: dict[int, tuple[Any, Any, Any]] = {}
_hints: dict[int, tuple[Any, Any, Any]] = {}


def is_jobname(hint: Any) -> bool:
    """Whether an annotation marks Scout's ``jobname: true`` input (``JobName``)."""
    if isinstance(hint, str):
        return hint.replace(" ", "") in ("JobName", "prefect_scout.JobName")
    return JOBNAME_MARK in getattr(hint, "__metadata__", ())


def scout_type_of(hint: Any) -> str:
    """The Scout input type for a parameter annotation (``string`` when unknown)."""
    if hint is inspect.Parameter.empty or hint is None:
        return "string"
    if isinstance(hint, str):
        text = hint.replace(" ", "").replace("Optional[", "").rstrip("]") if hint.startswith("Optional[") else hint
        text = text.split("|")[0] if "|" in text else text
        return _NAMED_TYPES.get(text, "string")
    if getattr(hint, "__metadata__", None) is not None:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin is typing.Union or (origin is not None and type(hint).__name__ == "UnionType"):
        return scout_type_of(args[0]) if args else "string"
    if origin in (list, tuple):
        inner = _SIMPLE_TYPES.get(args[0]) if args else None
        return f"{inner}_array" if inner in ("integer", "float", "boolean") else "array"
    if origin is dict:
        return "hash"
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "file"
    return _SIMPLE_TYPES.get(hint, "string")


# ------------------------------------------------------------------------------------------------ values
def identity_value(value: Any, where: str) -> Any:
    """A value the Ruby key can digest: Scout values as they are, anything else as a content token."""
    try:
        digest_str(value, str_paths=False)  # only whether it can be digested: no need to look at the disk
        return value
    except UnsupportedValueError:
        return f"<{type(value).__name__} {_content_digest(value, where)}>"


def provided_value(value: Any) -> Any:
    """A flow parameter among the provided inputs: digested like an input when it can be; else a constant token
    (a parameter this task does not take as an input must not make it fail; one it takes is digested as its own)."""
    try:
        return identity_value(value, "flow parameter")
    except ScoutKeyError:
        return f"<{type(value).__name__}>"


def _content_digest(value: Any, where: str) -> str:
    try:
        return signature.value_digest(value, where)
    except UnsupportedValueError as exc:
        raise ScoutKeyError(str(exc)) from None


class _Token:
    """An upstream job inside a template, digested by its token."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __scout_digest__(self) -> tuple[str, str]:
        return ("upstream", self.token)


def _substitute(template: Any, swap: Callable[[UpstreamRef], Any], depth: int = 0) -> Any:
    """``template`` with each :class:`UpstreamRef` replaced by ``swap(ref)`` (containers rebuilt, same types)."""
    if isinstance(template, UpstreamRef):
        return swap(template)
    if depth > 32:
        return template
    if isinstance(template, list):
        return [_substitute(v, swap, depth + 1) for v in template]
    if isinstance(template, tuple) and not hasattr(template, "_fields"):
        return tuple(_substitute(v, swap, depth + 1) for v in template)
    if isinstance(template, dict):
        return {k: _substitute(v, swap, depth + 1) for k, v in template.items()}
    if isinstance(template, (set, frozenset)):
        return type(template)(_substitute(v, swap, depth + 1) for v in template)
    return template


def only_upstream(template: Any) -> bool:
    """Whether a template holds nothing but upstream values (a future, or a list/tuple of futures)."""
    if isinstance(template, UpstreamRef):
        return True
    return isinstance(template, (list, tuple)) and bool(template) and all(isinstance(v, UpstreamRef) for v in template)


def check_format(format: str | None, scout_type: str | None, task: str) -> None:
    """InvalidInputError (at decoration time) for an unknown ``format``, or one given with a Scout type (whose bytes
    Ruby reads); ``task`` names the task in the message."""
    if format is None:
        return
    if format != "pickle":
        try:
            formats.get(format)
        except InvalidInputError as exc:
            raise InvalidInputError(f"@scout_task {task!r}: {exc}") from None
    if scout_type not in (None, "", "pickle", "binary"):
        raise InvalidInputError(
            f"@scout_task {task!r}: format={format!r} applies to results of any Python type (type=None); type="
            f"{scout_type!r} is a Scout type whose bytes Ruby reads: drop format= or type="
        )


# ------------------------------------------------------------------------------------------------- plan
def plan_call(
    fn: Callable[..., Any],
    decl: TaskDecl,
    workflow: str,
    arguments: Mapping[str, Any],
    upstream: Mapping[str, Sequence[tuple[str, Upstream | None]]] | None = None,
    templates: Mapping[str, Any] | None = None,
    provided: Mapping[str, Any] | None = None,
    job_id: str | None = None,
) -> CallPlan:
    """Plan one call of ``fn`` (the user's function) as a Scout task of ``workflow``.

    ``arguments``: the call's values by parameter name (as bound; ``*args`` a tuple, ``**kwargs`` a dict; upstream
    values resolved); ``upstream``: parameter -> ``[(run id, Upstream or None for a run that is not a Scout job)]``;
    ``templates``: parameter -> the argument as passed, with :class:`UpstreamRef` where an upstream value goes
    (absent: the argument is the upstream value itself); ``provided``: the flow run's parameters (Scout's provided
    inputs); ``job_id``: the Scout job name in force.  Raises :class:`ScoutKeyError` naming the argument and fix.
    """
    task_name = decl.name or fn.__name__
    where_task = f"scout task {workflow}#{task_name}"
    ignore = set(decl.ignore)
    upstream = upstream or {}
    templates = templates or {}
    annotations = hints(fn)
    declared: list[Input] = []
    own: dict[str, Any] = {}
    dep_keys: list[str] = []
    dep_nd: list[str] = []
    tokens: list[str] = []
    digests: dict[str, str] = {}
    for pname, param in call_signature(fn).parameters.items():
        if pname in ignore:
            continue
        hint = annotations.get(pname, param.annotation)
        variadic = param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        if variadic:
            default: Any = None
            value = arguments.get(pname) or None
        else:
            default = None if param.default is inspect.Parameter.empty else param.default
            value = arguments.get(pname, default)
        where = f"input {pname!r} of {where_task}"
        fed = list(upstream.get(pname, ()))
        jobs = {run: up for run, up in fed if up is not None}
        if fed and pname in decl.step_inputs:
            if len(fed) != 1 or not jobs:
                raise ScoutKeyError(
                    f"step input {pname!r} of {workflow}#{task_name} receives {len(fed)} upstream results"
                    + ("" if jobs else " that are not Scout jobs")
                    + "; a step input takes exactly one scout task result"
                )
            (up,) = jobs.values()
            declared.append(Input(pname, (decl.types or {}).get(pname) or scout_type_of(hint), None))
            own[pname] = Step(up.key)
            digests[pname] = signature.value_digest(("step", up.token))
            continue
        template = templates.get(pname, UpstreamRef(fed[0][0]) if len(fed) == 1 else None)
        if fed and len(jobs) == len(fed):
            for up in jobs.values():
                dep_keys.append(up.key)
                dep_nd.extend(up.inherited)
                tokens.append(up.token)
            digests[pname] = _fed_digest(value, template, jobs, where)
            if template is None or only_upstream(template):
                continue
            # literals beside upstream values: an input too, each upstream job in its place
            value = _substitute(template, functools.partial(_step_of, jobs))
        stype = (decl.types or {}).get(pname) or ("hash" if param.kind == param.VAR_KEYWORD else None)
        stype = stype or ("array" if param.kind == param.VAR_POSITIONAL else scout_type_of(hint))
        declared.append(Input(pname, stype, identity_value(default, where), jobname=is_jobname(hint)))
        if value is not None:
            own[pname] = identity_value(list(value) if isinstance(value, tuple) and variadic else value, where)
        if pname not in digests:
            digests[pname] = _content_digest(arguments.get(pname, default) if not variadic else value, where)
    given = {k: provided_value(v) for k, v in (provided or {}).items() if v is not None and k not in ignore}
    for inp in declared:
        given.pop(inp.name, None)
    given.update(own)
    try:
        ident = job_identity(
            workflow,
            task_name,
            declared,
            given,
            dep_keys,
            id=job_id,
            extension=decl.extension,
            type=decl.type,
            dependency_non_default_inputs=dep_nd,
            str_paths=decl.ruby_strings,
        )
    except ScoutPersistError:
        raise
    except Exception as exc:  # a bug or an odd value: still fail loudly, with the context
        raise ScoutKeyError(
            f"Scout job identity of {workflow}#{task_name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    code = identify(fn)
    result = {"type": decl.type, "format": decl.format, "extension": decl.extension}
    sig = signature.compute({}, tokens, code, decl.version, where=where_task, digests=digests, declared=result)
    return CallPlan(workflow, task_name, ident.key, ident, tuple(dep_keys), sig, code)


def _step_of(jobs: Mapping[str, Upstream], ref: UpstreamRef) -> Step | None:
    up = jobs.get(ref.run)
    return None if up is None else Step(up.key)


def _fed_digest(value: Any, template: Any, jobs: Mapping[str, Upstream], where: str) -> str:
    """An argument fed by upstream jobs: by its value (what the task receives), else by the template with each
    job's token in its place (an upstream value of a type that cannot be digested)."""
    try:
        return signature.value_digest(value, where)
    except UnsupportedValueError:
        pass
    if template is None:
        return signature.value_digest(tuple(("upstream", up.token) for up in jobs.values()))
    try:
        return signature.value_digest(
            _substitute(template, lambda ref: _Token(jobs[ref.run].token) if ref.run in jobs else None), where
        )
    except UnsupportedValueError as exc:
        raise ScoutKeyError(str(exc)) from None


__all__ = [
    "JOBNAME_MARK",
    "CallPlan",
    "JobIdentity",
    "ScoutKeyError",
    "TaskDecl",
    "Upstream",
    "UpstreamRef",
    "call_signature",
    "check_format",
    "hints",
    "identity_value",
    "is_jobname",
    "only_upstream",
    "plan_call",
    "provided_value",
    "scout_type_of",
    "upstream_at",
    "upstream_from_info",
    "upstream_token",
]
