"""``info --why``: would a flow reuse this job, and if not, what changed?

The verdict is the Prefect plug-in's own: the verdict of the job's attempt (:mod:`scout_persist.attempt`, the hit rule
of :mod:`scout_persist.verdict`), so ``--why`` never contradicts a flow:

* the job is reused when its ``.info`` says ``done``, its result can serve (no result at all for a task that
  returned None; else the bytes match the size and checksum ``.info`` records and, for a pickle, its HMAC verifies
  under the pickle key; a job Ruby wrote must load as its type), it has not expired, and — for jobs
  the plug-in wrote — its strong signature (:mod:`scout_persist.signature`, the plug-in's own algorithm) still
  holds: the inputs given with ``-s NAME=VALUE``, ``--task-version``, and the ``dependencies`` part recomputed from
  the dependencies' current ``.info``;
* a dependency that a flow would run again first (recursively by the same rule) leaves a job the plug-in wrote
  undecided — reused only if the new result has the same bytes — and does not matter for a job Ruby wrote, which
  carries no signature;
* Ruby Scout's own freshness rule (a dependency without a result, or whose result is newer than the job's by more
  than the slack ``prov`` allows for copied and uploaded trees) is reported as a ``note:``, never as the verdict:
  the plug-in does not compare times.

The task's code is part of the signature too, but the CLI does not have the code; the plug-in compares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import signature as sig
from ..attempt import Attempt
from ..errors import InvalidInputError, UnsupportedValueError
from ..verdict import MISSING_RESULT, STATUS, Served
from .fingerprint import fingerprint
from .jobs import dependency_refs, load_info, mtime, own_inputs, recursive_inputs, result_exists, shown_status
from .provenance import MTIME_SLACK
from .target import JobRef

TRUE_WORDS = {"true", "t", "yes", "y", "1", "on"}
REUSED = "would be reused"
RERUN = "would rerun"


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"input {pair!r} is not NAME=VALUE; write e.g. -s n=5 or -s list=a,b,c")
        out[name] = value
    return out


def coerce_like(text: str, recorded: Any) -> Any:
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
        return list(text.replace("\n", ",").split(",")) if text else []
    return text


def _value_digest(value: Any) -> str:
    try:
        return sig.value_digest(value)
    except UnsupportedValueError:
        return f"<{type(value).__name__}>"


def signature_dependencies(ref: JobRef, info: dict[str, Any]) -> str:
    """The ``dependencies`` part recomputed from the dependencies' current ``.info`` (their result checksums)."""
    return sig.dependencies_digest(
        [sig.dependency_token(dep.key, load_info(dep), dep.store) for dep in dependency_refs(ref, info)]
    )


# ------------------------------------------------------------------------------------------- the hit rule
def result_problem(ref: JobRef) -> str | None:
    """Why the stored job cannot serve a run as it is: the verdict of its attempt (:mod:`scout_persist.attempt`,
    the plug-in's hit rule) without an expected signature, its bytes checked but nothing unpickled; None if it can."""
    verdict = Attempt(ref.store, ref.key).verdict(decode=False)
    if isinstance(verdict, Served):
        return None
    if verdict.has(STATUS) or verdict.has(MISSING_RESULT):
        return f"{verdict.message}: the job runs again"
    return verdict.message


@dataclass
class Verdict:
    """``reused``, ``rerun`` or ``maybe`` (reused only if dependencies that run again give the same bytes)."""

    state: str
    reasons: list[str] = field(default_factory=list)


def _signature_problem(ref: JobRef, info: dict[str, Any], stored: Mapping[str, Any]) -> str | None:
    if stored.get("signature_version") != sig.SIGNATURE_VERSION:
        return (
            f"its signature was computed by another version of scout-persist "
            f"({stored.get('signature_version', 1)!r}, now {sig.SIGNATURE_VERSION}): the plug-in recomputes it"
        )
    return None


def dependency_verdict(
    ref: JobRef, memo: dict[str, Verdict] | None = None, _stack: frozenset[str] = frozenset()
) -> Verdict:
    """Whether a flow would reuse the job ``ref`` (a dependency: no given inputs or version), recursively."""
    memo = {} if memo is None else memo
    if ref.display in memo:
        return memo[ref.display]
    info = load_info(ref)
    if info is None:
        verdict = Verdict("rerun", ["it has no .info"])
    else:
        problem = result_problem(ref)
        stored = sig.stored_signature(info)
        if problem is None and stored is not None:
            problem = _signature_problem(ref, info, stored)
        if problem is not None:
            verdict = Verdict("rerun", [problem])
        elif stored is None:
            verdict = Verdict("reused")  # a Ruby job: no signature, its dependencies do not count
        else:
            deps = [d for d in dependency_refs(ref, info) if d.display not in _stack]
            pending = [d for d in deps if dependency_verdict(d, memo, _stack | {ref.display}).state != "reused"]
            if pending:
                verdict = Verdict("maybe", [d.display for d in pending])
            elif "dependencies" in stored and signature_dependencies(ref, info) != stored["dependencies"]:
                verdict = Verdict("rerun", ["signature component 'dependencies' changed"])
            else:
                verdict = Verdict("reused")
    memo[ref.display] = verdict
    return verdict


# ----------------------------------------------------------------------------------------- Ruby's view
def _ruby_freshness(ref: JobRef, info: dict[str, Any], memo: dict[str, Verdict]) -> list[str]:
    """Ruby's rule as notes: recursive dependencies without a result, or with a result newer than the job's by more
    than :data:`MTIME_SLACK` (copies and uploads do not keep modification times exactly)."""
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
        if dependency_verdict(dep, memo).state == "rerun":
            out.append(f"note: dependency {dep.display} runs again first ({dependency_verdict(dep, memo).reasons[0]})")
        if not exists:
            out.append(
                f"note: Ruby Scout would recompute this job: dependency {dep.display} has no result "
                f"(status {shown_status(dep, dep_info, exists)!r})"
            )
        elif job_mtime is not None:
            newer = (mtime(dep) or 0) - job_mtime
            if newer > MTIME_SLACK:
                out.append(
                    f"note: Ruby Scout would recompute this job: dependency {dep.display} is {newer:.0f} s "
                    f"newer than its result (more than the {MTIME_SLACK:g} s a copied or uploaded tree may "
                    "differ by); the plug-in does not compare times"
                )
        todo.extend(dependency_refs(dep, dep_info))
    return out


# --------------------------------------------------------------------------------------------- verdict
def explain(
    ref: JobRef, info: dict[str, Any], assignments: list[str], version: str | None = None
) -> tuple[bool, list[str]]:
    """``(reused, lines)``: whether a flow would reuse the job, and the lines saying so or why not.

    The first line starts with ``would be reused`` or ``would rerun``; ``note:`` lines follow.
    """
    given = parse_assignments(assignments)
    reasons: list[str] = []
    problem = result_problem(ref)
    if problem is not None:
        reasons.append(problem)
    own = own_inputs(info)
    known = recursive_inputs(ref) if given else {}
    for name, text in given.items():
        if name not in known:
            raise InvalidInputError(
                f"input {name!r} is not an input of {ref.display} or its dependencies; "
                f"known: {', '.join(known) or 'none'}"
            )
        recorded = known[name]
        value = coerce_like(text, recorded)
        if _value_digest(value) != _value_digest(recorded):
            where = "" if name in own else " (an input of a dependency)"
            reasons.append(
                f"input {name!r} changed{where}: recorded {fingerprint(recorded)}, given {fingerprint(value)}"
            )
    memo: dict[str, Verdict] = {}
    stored = sig.stored_signature(info)
    pending: list[JobRef] = []
    if stored is not None:
        bad_version = _signature_problem(ref, info, stored)
        if bad_version:
            reasons.append(bad_version)
        else:
            digests = got if isinstance(got := stored.get("inputs"), dict) else {}
            changed = [
                n for n in given if n in digests and _value_digest(coerce_like(given[n], known[n])) != digests[n]
            ]
            if changed:
                reasons.append(f"signature component 'inputs' changes with the given inputs ({', '.join(changed)})")
            pending = [d for d in dependency_refs(ref, info) if dependency_verdict(d, memo).state != "reused"]
            if not pending and "dependencies" in stored and signature_dependencies(ref, info) != stored["dependencies"]:
                reasons.append("signature component 'dependencies' changed: a dependency was recomputed to other bytes")
            if version is not None and str(stored.get("version", "")) != version:
                reasons.append(
                    f"signature component 'version' changed: recorded {stored.get('version')!r}, given {version!r}"
                )
    notes = _ruby_freshness(ref, info, memo)
    previous = (info.get("prefect") or {}).get("recomputed_because")
    if previous:
        notes.append(f"note: the last run recomputed this job because of what changed: {'; '.join(map(str, previous))}")
    if reasons:
        return False, [f"{RERUN}: {r}" for r in reasons] + notes
    if pending:
        names = ", ".join(d.display for d in pending)
        return False, [
            f"{RERUN} unless the dependencies that run again first ({names}) give the same bytes as "
            "before: its signature holds the checksums of their earlier results",
            *notes,
        ]
    if stored is None:
        what = f"readable as {info.get('type') or 'binary'!r}"
        first = f"{REUSED}: status done, result {what} (a job written by Ruby Scout: no signature to compare)"
    else:
        first = (
            f"{REUSED}: status done, result verified, signature unchanged (inputs, dependencies, version; "
            "the task's code is compared by the plug-in)"
        )
    return True, [first, *notes]
