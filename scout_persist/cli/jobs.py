"""What the CLI reads of a job: its ``.info``, whether the result exists, its mtime, its dependencies.

Reading goes through the core's one ``.info`` reader (:mod:`scout_persist.info`: Ruby JSON, Marshal fallback,
``noinfo`` on garbage); statuses are the core's (:mod:`scout_persist.job_status`, Ruby ``prov``'s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import InfoFormatError, InvalidInputError, JobNotFound, KeyNotFound
from ..info import info_bytes, loads_info
from ..job import Job
from ..job_status import job_status
from ..store import Store
from .target import JobRef


def load_info_bytes(ref: JobRef) -> bytes | None:
    """The raw ``.info`` of ``ref``; None when there is no info file."""
    return info_bytes(ref.store, ref.info_key)


def load_info(ref: JobRef) -> dict[str, Any] | None:
    """The decoded ``.info`` of ``ref``; None when there is no info file."""
    data = load_info_bytes(ref)
    return None if data is None else loads_info(data, ref.display + ".info")


def not_a_job(ref: JobRef) -> Exception:
    """The error for a JOB argument that names no job: a workflow/task folder, a folder of jobs, or nothing."""
    parts = ref.key.split("/")
    is_dir = ref.store.isdir(ref.key)
    if len(parts) < 5 and ref.key.startswith("var/jobs"):
        what = {2: "the jobs folder", 3: "a workflow folder", 4: "a task folder"}.get(len(parts), "a folder")
        hint = "ls " + repr(ref.root)
        if len(parts) >= 3:
            hint += f" -w {parts[2]!r}" + (f" -t {parts[3]!r}" if len(parts) >= 4 else "")
        return InvalidInputError(
            f"{ref.display!r} is {what}, not a job; give one job inside it, as <root>/var/jobs/<Workflow>/<task>/"
            f"<name> (scout-persist {hint} lists them)"
        )
    if is_dir and not ref.store.exists(ref.info_key):
        return InvalidInputError(
            f"{ref.display!r} is a folder without a .info, not a job; give one job inside it "
            f"(scout-persist ls lists them)"
        )
    return JobNotFound(
        f"no job at {ref.display!r}: neither its result nor its .info exists; "
        "give the path of a job result (without .info), e.g. ~/.scout/var/jobs/Baking/bake_muffin_tray/Default"
    )


def info_problem(ref: JobRef) -> str | None:
    """Why the ``.info`` of ``ref`` cannot be read (the strict reader's message), or None when it can."""
    data = load_info_bytes(ref)
    if data is None:
        return None
    try:
        loads_info(data, ref.display + ".info", strict=True)
    except InfoFormatError as exc:
        return str(exc)
    return None


def result_exists(ref: JobRef) -> bool:
    return ref.store.exists(ref.key)


def mtime(ref: JobRef) -> float | None:
    try:
        return ref.store.mtime(ref.key)
    except (KeyNotFound, OSError):
        return None


def shown_status(where: JobRef | Store, info: dict[str, Any] | None, exists: bool, key: str | None = None) -> str:
    """The status the CLI shows (:func:`scout_persist.job_status.job_status`, Ruby ``prov``'s). ``where``: a JobRef,
    or a Store with ``key``."""
    if isinstance(where, JobRef):
        return job_status(where.store, where.key, info, exists)
    assert key is not None  # a Store comes with the key
    return job_status(where, key, info, exists)


def dependency_refs(ref: JobRef, info: dict[str, Any] | None) -> list[JobRef]:
    """The direct dependencies recorded in ``info``, relocated onto the store of ``ref`` by ``Job.dependencies``."""
    if not (info or {}).get("dependencies"):
        return []
    return [JobRef(dep.store, dep.key) for dep in Job.at(ref.store, ref.key, info=info).dependencies]


def recursive_dependencies(ref: JobRef, follow: Callable[[JobRef], bool] | None = None) -> list[JobRef]:
    """Every job ``ref`` depends on, directly or not, each once, in discovery order; a dependency for which
    ``follow`` says False is neither listed nor walked."""
    out: list[JobRef] = []
    seen = {ref.display}
    todo = [ref]
    while todo:
        current = todo.pop(0)
        for dep in dependency_refs(current, load_info(current)):
            if dep.display in seen:
                continue
            seen.add(dep.display)
            if follow is None or follow(dep):
                out.append(dep)
                todo.append(dep)
    return out


def own_inputs(info: dict[str, Any] | None) -> dict[str, Any]:
    """``input_names`` paired with ``inputs`` (Ruby's named inputs of a re-read job)."""
    info = info or {}
    names = info.get("input_names") or []
    values = info.get("inputs")
    if isinstance(values, dict):  # rbbt-era info: inputs already a map
        return dict(values)
    values = values or []
    return {str(n): (values[i] if i < len(values) else None) for i, n in enumerate(names)}


def recursive_inputs(
    ref: JobRef, info: dict[str, Any] | None = None, _seen: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Ruby ``Step#recursive_inputs``: each dependency's inputs first, the job's own values winning (``info``: the
    job's ``.info`` when already read; every ``.info`` is read once)."""
    info = load_info(ref) if info is None else info
    acc = own_inputs(info)
    if ref.display in _seen:
        return acc
    seen = _seen | {ref.display}
    for dep in dependency_refs(ref, info):
        merged = recursive_inputs(dep, None, seen)
        merged.update(acc)
        acc = merged
    return acc
