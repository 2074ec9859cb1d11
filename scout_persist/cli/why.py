"""``info --why``: would this job run again, and which component changed?

Checks, in order: the job's status; given inputs (``-s name=value``) against the recorded ones; the strong signature
(:mod:`scout_persist.signature`, the same code the Prefect plug-in uses) recorded in ``.info`` under ``signature``:
the per-input digests against the given values, the ``dependencies`` part recomputed from the dependencies' own
``.info``, and ``version``; and Ruby's freshness rule (a recursive dependency without a result, or with a result
newer than the job's).  The parts the plug-in found changed when it last recomputed the job
(``prefect.recomputed_because``) are shown as a note.
"""

from __future__ import annotations

from .. import signature as sig
from ..errors import InvalidInputError, UnsupportedValueError
from .fingerprint import fingerprint
from .jobs import dependency_refs, derived_status, load_info, mtime, own_inputs, recursive_inputs, result_exists
from .target import JobRef

TRUE_WORDS = {"true", "t", "yes", "y", "1", "on"}


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"input {pair!r} is not NAME=VALUE; write e.g. -s n=5 or -s list=a,b,c")
        out[name] = value
    return out


def coerce_like(text: str, recorded):
    """The command-line string as a value of the recorded value's type (bool, int, float, list, str)."""
    try:
        if isinstance(recorded, bool):
            return text.strip().lower() in TRUE_WORDS
        if isinstance(recorded, int):
            return int(text)
        if isinstance(recorded, float):
            return float(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"value {text!r} is not a {type(recorded).__name__} like the recorded {recorded!r}; give a number"
        ) from exc
    if isinstance(recorded, list):
        return [s for s in text.replace("\n", ",").split(",")] if text else []
    return text


def _value_digest(value) -> str:
    try:
        return sig.value_digest(value)
    except UnsupportedValueError:
        return f"<{type(value).__name__}>"


def signature_dependencies(ref: JobRef, info: dict) -> str:
    """The ``dependencies`` part recomputed from the dependencies' current ``.info`` (their result checksums)."""
    return sig.dependencies_digest([sig.dependency_token(dep.key, load_info(dep)) for dep in dependency_refs(ref, info)])


def _stale_dependencies(ref: JobRef, info: dict) -> list[str]:
    """Ruby's rule: a recursive dependency with an info and no result, or a result newer than the job's."""
    out, seen = [], set()
    job_mtime = mtime(ref)
    todo = dependency_refs(ref, info)
    while todo:
        dep = todo.pop(0)
        if dep.display in seen:
            continue
        seen.add(dep.display)
        dep_info = load_info(dep)
        if dep_info is None:
            continue
        exists = result_exists(dep)
        status = derived_status(dep_info, exists)
        if not exists:
            out.append(f"dependency {dep.display} has no result (status {status!r}): it runs again, then this job")
        elif job_mtime is not None and (mtime(dep) or 0) > job_mtime:
            out.append(f"dependency {dep.display} is newer than this job's result: Ruby Scout recomputes the job")
        todo.extend(dependency_refs(dep, dep_info))
    return out


def explain(ref: JobRef, info: dict, assignments: list[str], version: str | None = None) -> list[str]:
    """Lines saying why the job would rerun; a single ``up to date`` line when nothing would."""
    given = parse_assignments(assignments)
    reasons: list[str] = []
    status = derived_status(info, result_exists(ref))
    if status != "done":
        reasons.append(f"status is {status!r}, not 'done': the job runs again")
    own = own_inputs(info)
    known = recursive_inputs(ref) if given else {}
    for name, text in given.items():
        if name not in known:
            raise InvalidInputError(
                f"input {name!r} is not an input of {ref.display} or its dependencies; known: {', '.join(known) or 'none'}"
            )
        recorded = known[name]
        value = coerce_like(text, recorded)
        if _value_digest(value) != _value_digest(recorded):
            where = "" if name in own else " (an input of a dependency)"
            reasons.append(f"input {name!r} changed{where}: recorded {fingerprint(recorded)}, given {fingerprint(value)}")
    stored = sig.stored_signature(info)
    if stored is not None and stored.get("signature_version") != sig.SIGNATURE_VERSION:
        reasons.append(f"its signature was computed by another version of scout-persist "
                       f"({stored.get('signature_version', 1)!r}, now {sig.SIGNATURE_VERSION}): the plug-in recomputes it")
    elif stored is not None:
        digests = stored.get("inputs") if isinstance(stored.get("inputs"), dict) else {}
        changed = [n for n in given if n in digests and _value_digest(coerce_like(given[n], known[n])) != digests[n]]
        if changed:
            reasons.append(f"signature component 'inputs' changes with the given inputs ({', '.join(changed)})")
        if "dependencies" in stored and signature_dependencies(ref, info) != stored["dependencies"]:
            reasons.append("signature component 'dependencies' changed: a dependency was recomputed to other bytes")
        if version is not None and str(stored.get("version", "")) != version:
            reasons.append(f"signature component 'version' changed: recorded {stored.get('version')!r}, given {version!r}")
    reasons.extend(_stale_dependencies(ref, info))
    notes = []
    previous = (info.get("prefect") or {}).get("recomputed_because")
    if previous:
        notes.append(f"note: the last run recomputed this job because its {', '.join(map(str, previous))} changed")
    if not reasons:
        return ["up to date: status done, inputs and dependencies unchanged", *notes]
    return ["rerun: " + r for r in reasons] + notes
