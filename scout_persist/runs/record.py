"""A run record's format: where it lives (``var/runs/<Workflow>/<run id>/...``), its JSON, the parameters and code
hash it keeps, and its writes (the record replaced atomically, parts and markers one object each)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from .. import settings
from ..errors import InvalidInputError, ScoutPersistError, UnsafePathError
from ..signature import value_digest
from ..store import Store, check_key

RUNS_DIR = "var/runs"
RECORD = "run.json"
PARTS_DIR = "parts"
RESUMED_BY = "resumed_by"
REUSED_BY = "reused_by"
RESUME_LOCK = "resume.lock"
FORMAT = "scout-persist-run/1"
RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED = "running", "completed", "failed", "cancelled", "crashed"
STATUSES = (RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED)
LEASE_ENV = "SCOUT_PERSIST_RUN_LEASE"
FLUSH_ENV = "SCOUT_PERSIST_RUN_FLUSH"
DEFAULT_LEASE = 60.0  # seconds a run may go without renewing its record before it counts as crashed
DEFAULT_FLUSH = 1.0  # at most one record write per this many seconds for finished jobs (batching)
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def lease_seconds() -> float:
    """The run lease: ``$SCOUT_PERSIST_RUN_LEASE`` seconds (default 60); the record is renewed every third of it."""
    return settings.run_lease()


def flush_seconds() -> float:
    """Least time between two record writes for finished jobs: ``$SCOUT_PERSIST_RUN_FLUSH`` (default 1; 0 writes at
    every finished job)."""
    return settings.run_flush()


def check_run_id(run_id: Any) -> str:
    """``run_id`` if it can name a run folder (Prefect's ids: letters, digits, '-', '.', '_'), else an error."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise UnsafePathError(
            f"run id {run_id!r} is not a run id: run ids are Prefect flow run ids such as "
            "'0f8c2d3e-5a7b-4c1d-9e2f-3a4b5c6d7e8f' (letters, digits, '-', '.', '_')"
        )
    return run_id


def check_workflow(workflow: Any) -> str:
    if not isinstance(workflow, str) or not workflow or "/" in workflow or workflow in (".", ".."):
        raise UnsafePathError(
            f"workflow {workflow!r} cannot name a run folder: it is one path segment, the flow's name"
        )
    return check_key(workflow)


def run_dir(workflow: str, run_id: str) -> str:
    """``var/runs/<Workflow>/<run id>``."""
    return f"{RUNS_DIR}/{check_workflow(workflow)}/{check_run_id(run_id)}"


def record_key(workflow: str, run_id: str) -> str:
    return f"{run_dir(workflow, run_id)}/{RECORD}"


def part_key(workflow: str, run_id: str, task_run_id: str) -> str:
    return f"{run_dir(workflow, run_id)}/{PARTS_DIR}/{check_run_id(task_run_id)}.json"


def marker_key(workflow: str, run_id: str, kind: str, other_run: str) -> str:
    return f"{run_dir(workflow, run_id)}/{kind}/{check_run_id(other_run)}.json"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def decode(raw: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(
            f"run record {where!r} is not JSON ({exc}); it was not written by scout-persist or was cut short"
        ) from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise InvalidInputError(f"run record {where!r} is not a {FORMAT} record")
    return value


def decode_head(raw: bytes, where: str) -> tuple[dict[str, Any], bool]:
    """``(record, whole)``: what precedes ``jobs`` when the record puts its jobs last and carries ``counts`` (as the
    plug-in writes it; a listing then parses a few hundred bytes instead of every job), else the whole record."""
    i = raw.rfind(b',"jobs":[')
    if i > 0:
        try:
            head = json.loads(raw[:i] + b"}")
        except ValueError:
            head = None
        if isinstance(head, dict) and head.get("format") == FORMAT and isinstance(head.get("counts"), dict):
            return head, False
    return decode(raw, where), True


def job_counts_of(jobs: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[str(job.get("status"))] = counts.get(str(job.get("status")), 0) + 1
    return dict(sorted(counts.items()))


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an ISO time in a record (None when missing or unreadable)."""
    if not isinstance(value, str):
        return None
    try:
        return _dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` comes back from JSON as itself: dict (str keys), list, str, int, finite float, bool, None."""
    if depth > 64:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return type(value) is int
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if type(value) is list:
        return all(is_plain_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and is_plain_json(v, depth + 1) for k, v in value.items())
    return False


def record_parameters(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """``(JSON parameters, digests of the others, why the run cannot be resumed or None)``.

    A parameter that is not plain JSON is kept by the digest of its value only (its type named), so a resume could
    not pass it again: the run is marked not resumable, and the reason says which parameter and what to do."""
    plain: dict[str, Any] = {}
    digests: dict[str, str] = {}
    for name, value in parameters.items():
        if is_plain_json(value):
            plain[name] = value
            continue
        kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
        try:
            digests[name] = f"{kind}:{value_digest(value, f'flow parameter {name!r}')}"
        except ScoutPersistError:
            digests[name] = f"{kind}:<no digest>"
    why = None
    if digests:
        names = ", ".join(f"{n!r} ({d.split(':', 1)[0]})" for n, d in digests.items())
        why = (
            f"parameter {names} {'is' if len(digests) == 1 else 'are'} not plain JSON, so only "
            f"{'its' if len(digests) == 1 else 'their'} digest is recorded and a resume could not pass "
            f"{'it' if len(digests) == 1 else 'them'} again; pass JSON values (str, numbers, bools, lists, dicts) "
            "as flow parameters to make runs resumable"
        )
    return plain, digests, why


def code_hash(flow_code: str, tasks: dict[str, str]) -> str:
    """One hash over the flow's code identity and its scout tasks' (name -> code identity)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(b"flow:" + flow_code.encode() + b"\n")
    for name in sorted(tasks):
        h.update(f"task:{name}:{tasks[name]}\n".encode())
    return h.hexdigest()


def write_record(store: Store, record: dict[str, Any]) -> None:
    """Replace the run's record atomically (temp + rename locally, one PUT on object stores)."""
    store.put(record_key(record["workflow"], record["run_id"]), encode(record))


def write_part(store: Store, workflow: str, run_id: str, task_run_id: str, entry: dict[str, Any]) -> None:
    store.put(part_key(workflow, run_id, task_run_id), encode(entry))


def write_marker(store: Store, workflow: str, run_id: str, kind: str, other_run: str, data: dict[str, Any]) -> None:
    store.put(marker_key(workflow, run_id, kind, other_run), encode(data))
