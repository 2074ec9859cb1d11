"""Run records: every flow run that ran a scout task, kept in the store beside its jobs.

Layout under the store root::

    var/runs/<Workflow>/<run id>/run.json               the record (one JSON object, replaced atomically)
    var/runs/<Workflow>/<run id>/parts/<id>.json        a job (or lineage note) recorded by another process
    var/runs/<Workflow>/<run id>/resumed_by/<run>.json  a later run resumed this one
    var/runs/<Workflow>/<run id>/reused_by/<run>.json   a later run reused a job of this one
    var/runs/<Workflow>/<run id>/resume.lock            held while a restorer resumes it

``<Workflow>`` is the flow's name, ``<run id>`` Prefect's flow run id.  The record says what ran (flow, entrypoint,
code hashes, parameters), where (host, pid), when (start, end), how it ended (``status``) and which jobs it had
(``jobs``: key, task, status, reused or computed, times, dependencies, and for each job done its ``content``: what
it held, so a later ``reuse`` can tell whether it still does).  Its writer (the flow's process) rewrites it
when jobs finish (batched) and at least every ``lease / 3`` seconds while it runs: that renewal is the run's lease.

Status: ``completed``, ``failed`` and ``cancelled`` are written by the run; ``running`` is what a live run writes,
and a ``running`` record whose lease lapsed is shown ``crashed`` (its process died without a word).  The lapse is
judged by the store's clock -- S3's ``Date`` minus ``Last-Modified``, the mtime of a probe file locally -- or by the
observer's own monotonic clock, never by comparing the wall clock of the host that wrote the record.

Nothing here needs Prefect: listing, showing, pruning and finding incomplete runs read the store alone.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import settings
from .errors import InvalidInputError, KeyNotFound, ScoutPersistError, UnsafePathError
from .info import hostname, read_info
from .job import Job
from .locks import holder_state
from .process import Identity
from .registry import Registry
from .run_context import CurrentRun, current_run, set_current_run_provider
from .signature import PARTS, value_digest
from .store import Store, Versioned, check_key

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
READ_THREADS = 16  # concurrent record reads on object stores

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# ------------------------------------------------------------------------------------------------ settings
def lease_seconds() -> float:
    """The run lease: ``$SCOUT_PERSIST_RUN_LEASE`` seconds (default 60); the record is renewed every third of it."""
    return settings.run_lease()


def flush_seconds() -> float:
    """Least time between two record writes for finished jobs: ``$SCOUT_PERSIST_RUN_FLUSH`` (default 1; 0 writes at
    every finished job)."""
    return settings.run_flush()


# ------------------------------------------------------------------------------------------------- keys
def check_run_id(run_id: Any) -> str:
    """``run_id`` if it can name a run folder (Prefect's ids: letters, digits, '-', '.', '_'), else an error."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
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


# ------------------------------------------------------------------------------------------------ encoding
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


# ----------------------------------------------------------------------------------------------- parameters
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


# --------------------------------------------------------------------------------------------- judging
def judge(record: dict[str, Any], age: float | None, unchanged_for: float | None = None) -> tuple[str, str]:
    """``(status, reason)`` of a record whose last write is ``age`` seconds old by the store's clock (None when the
    store does not say) or that the caller watched unchanged for ``unchanged_for`` seconds (its monotonic clock).

    A ``running`` record past its lease is ``crashed``; one whose writer this machine sees running is never crashed.
    """
    status = record.get("status")
    if status != RUNNING:
        return (status if status in STATUSES else "unknown"), ""
    lease_rec = got if isinstance(got := record.get("lease"), dict) else {}
    try:
        lease = float(lease_rec.get("seconds") or DEFAULT_LEASE)
    except (TypeError, ValueError):
        lease = DEFAULT_LEASE
    who = f"host {record.get('host', '?')} pid {record.get('pid', '?')}"
    if _writer_alive_here(record):
        return RUNNING, f"its process ({who}) is running on this machine"
    if age is not None and age > lease:
        return CRASHED, (
            f"its record was last renewed {age:.1f}s ago by the store's clock, past its lease of "
            f"{lease:g}s: its process ({who}) stopped without recording an end"
        )
    if unchanged_for is not None and unchanged_for > lease:
        return CRASHED, (
            f"its record has not been renewed for {unchanged_for:.1f}s (watched here), past its lease "
            f"of {lease:g}s: its process ({who}) stopped without recording an end"
        )
    if age is None and unchanged_for is None:
        return RUNNING, f"its lease of {lease:g}s cannot be judged: this store does not tell the age of its record"
    seen = age if age is not None else unchanged_for
    return RUNNING, f"its lease ({lease:g}s) was renewed {seen:.1f}s ago by {who}"


def lease_left(record: dict[str, Any], age: float | None) -> float | None:
    lease_rec = got if isinstance(got := record.get("lease"), dict) else {}
    try:
        lease = float(lease_rec.get("seconds") or DEFAULT_LEASE)
    except (TypeError, ValueError):
        return None
    return None if age is None else max(lease - age, 0.0)


def writer_fields() -> dict[str, Any]:
    """Who writes a record: this process, as :func:`writer_gone_here` judges it (``host``, ``pid_hostname``,
    ``pid``, ``identity``)."""
    me = Identity.current()
    return {
        "host": me.host,
        "pid_hostname": hostname(),
        "pid": me.pid,
        "identity": {"boot_id": me.boot_id, "pidns": me.pidns, "start": me.start},
    }


def _writer_alive_here(record: dict[str, Any]) -> bool:
    ident = got if isinstance(got := record.get("identity"), dict) else {}
    lines = {"host": str(record.get("host") or ""), "pid": str(record.get("pid") or "")}
    for name in ("boot_id", "pidns", "start"):
        if ident.get(name):
            lines[name] = str(ident[name])
    if not ident:
        return False  # no full identity: a pid alone could be a reused one
    return holder_state(lines, Identity.current()) == "alive"


def writer_gone_here(record: dict[str, Any]) -> bool:
    """Whether the record's writer ran on this machine and its process is gone (for messages only: the status still
    waits for the lease)."""
    ident = got if isinstance(got := record.get("identity"), dict) else {}
    lines = {"host": str(record.get("host") or ""), "pid": str(record.get("pid") or "")}
    for name in ("boot_id", "pidns", "start"):
        if ident.get(name):
            lines[name] = str(ident[name])
    return bool(ident) and holder_state(lines, Identity.current()) == "dead"


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class Run:
    """One run record as read: the ``record``, where it is, its ``status`` as judged now and why.

    From a listing, ``record`` may hold only what precedes the jobs (``whole`` False): read jobs through
    :meth:`jobs`, :meth:`job_counts` and :meth:`summary`, which read the rest when needed."""

    store: Store
    workflow: str
    run_id: str
    record: dict[str, Any]
    age: float | None = None
    status: str = ""
    reason: str = ""
    parts: list[dict[str, Any]] | None = None  # jobs recorded by other processes (read on demand)
    whole: bool = True  # False: ``record`` holds what precedes its jobs (a listing); read whole on demand

    @property
    def key(self) -> str:
        return record_key(self.workflow, self.run_id)

    @property
    def dir(self) -> str:
        return run_dir(self.workflow, self.run_id)

    @property
    def flow(self) -> str:
        return str(self.record.get("flow") or self.workflow)

    @property
    def started(self) -> float | None:
        return parse_time(self.record.get("start"))

    @property
    def ended(self) -> float | None:
        return parse_time(self.record.get("end"))

    @property
    def seconds(self) -> float | None:
        start, end = self.started, self.ended
        if start is None:
            return None
        if end is None:
            return None
        return max(end - start, 0.0)

    def _whole(self) -> dict[str, Any]:
        if not self.whole:
            self.record = decode(self.store.get(self.key), self.store.where(self.key))
            self.whole = True
        return self.record

    def jobs(self) -> list[dict[str, Any]]:
        """The run's jobs: those its record lists, then those other processes recorded (newest entry per key)."""
        self._whole()
        merged: dict[str, dict[str, Any]] = {}
        for entry in list(self.record.get("jobs") or []) + list(self.parts or []):
            if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get("kind", "job") == "job":
                old = merged.get(entry["key"])
                merged[entry["key"]] = entry if old is None or _rank(entry) >= _rank(old) else old
        return list(merged.values())

    def notes(self, kind: str) -> list[dict[str, Any]]:
        """Lineage entries of ``kind`` recorded by other processes."""
        return [
            {k: v for k, v in p.items() if k != "kind"}
            for p in self.parts or []
            if isinstance(p, dict) and p.get("kind") == kind
        ]

    def artifacts(self) -> dict[str, list[Any]]:
        """Registry versions this run logged and used: ``{"logged": [...], "used": [...]}``."""
        recorded = got if isinstance(got := self.record.get("artifacts"), dict) else {}
        out = {}
        for bucket, kind in (("logged", "artifact_logged"), ("used", "artifact_used")):
            items = list(recorded.get(bucket) or [])
            items += [n for n in self.notes(kind) if n not in items]
            out[bucket] = items
        return out

    def reused(self) -> list[dict[str, Any]]:
        """Jobs of other runs this run reused: ``[{"run_id", "workflow", "task", "job"}]``."""
        return list(self.record.get("reused") or []) + self.notes("reused")

    def job_counts(self) -> dict[str, int]:
        """How many jobs of the run are in each status."""
        if not self.whole and not self.parts:
            return dict(self.record["counts"])
        return job_counts_of(self.jobs())

    def summary(self) -> dict[str, Any]:
        """The record with the judged status (``status``), the recorded one (``recorded_status``) and the jobs."""
        out = dict(self._whole())
        out["recorded_status"] = self.record.get("status")
        out["status"] = self.status
        if self.reason:
            out["status_reason"] = self.reason
        out["jobs"] = self.jobs()
        out["artifacts"] = self.artifacts()
        out["reused"] = self.reused()
        out["record"] = self.store.where(self.key)
        return out


_ORDER = {"start": 0, "error": 1, "done": 2}


def _rank(entry: dict[str, Any]) -> tuple[int, str]:
    return _ORDER.get(str(entry.get("status")), 0), str(entry.get("ended") or "")


def record_age(store: Store, key: str, seen: Versioned | None = None) -> float | None:
    """Seconds since the record at ``key`` was last written, by the store's clock: object stores tell it with the
    value (``seen``, or one more read), a local disk by the file's time; None when the store cannot tell."""
    if seen is None and not store.is_local:
        seen = store.get_versioned(key)
    if seen is not None and seen.age is not None:
        return seen.age
    return store.age(key)


def read_run(store: Store, workflow: str, run_id: str, *, parts: bool = True) -> Run:
    """The run ``workflow/run_id``, judged by the age of its record (one read; plus a listing for ``parts``)."""
    key = record_key(workflow, run_id)
    try:
        seen = store.get_versioned(key)
    except KeyNotFound as exc:
        raise KeyNotFound(f"no run record {store.where(key)!r}; list runs with: scout-persist runs") from exc
    run = Run(store, workflow, run_id, decode(seen.data, store.where(key)), age=record_age(store, key, seen))
    run.status, run.reason = judge(run.record, run.age)
    if parts:
        run.parts = read_parts(store, workflow, run_id)
    return run


def _json_entries(store: Store, folder: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """``(name without .json, its object)`` per JSON entry of ``folder``; None for one gone or unreadable."""
    for name in store.ls(folder):
        if not name.endswith(".json"):
            continue
        try:
            value = json.loads(store.get(f"{folder}/{name}"))
        except (KeyNotFound, ValueError):
            value = None
        yield name[: -len(".json")], value if isinstance(value, dict) else None


def read_parts(store: Store, workflow: str, run_id: str) -> list[dict[str, Any]]:
    """Job entries that processes other than the flow's wrote for the run (one listing, one read each)."""
    entries = _json_entries(store, f"{run_dir(workflow, run_id)}/{PARTS_DIR}")
    return [value for _, value in entries if value is not None]


def markers(store: Store, workflow: str, run_id: str, kind: str) -> list[dict[str, Any]]:
    """The ``resumed_by`` / ``reused_by`` entries of a run."""
    entries = _json_entries(store, f"{run_dir(workflow, run_id)}/{kind}")
    return [{"run_id": name, **(value or {})} for name, value in entries]


def workflows(store: Store) -> list[str]:
    return [w for w in store.ls(RUNS_DIR) if not w.startswith(".")]


def run_ids(store: Store, workflow: str) -> list[str]:
    return [r for r in store.ls(f"{RUNS_DIR}/{check_workflow(workflow)}") if _RUN_ID.match(r)]


def list_runs(
    store: Store,
    workflow: str | None = None,
    progress: Any = None,
    problems: list[str] | None = None,
    with_parts: Callable[[Run], bool] | None = None,
) -> list[Run]:
    """Every run of ``store`` (of one workflow), newest first, each judged now.

    Records are read whole (concurrently on object stores); only ``running`` ones are read a second time, for the
    age of their record.  Unreadable records are skipped and described in ``problems``.  ``with_parts(run)`` says
    for which runs to also read the jobs recorded by other processes.
    """
    names = [workflow] if workflow else workflows(store)
    keys: list[tuple[str, str]] = []
    for w in names:
        keys += [(w, r) for r in run_ids(store, w)]
    if progress is not None:
        progress.total = len(keys)

    def read(item: tuple[str, str]) -> Run | str:
        w, r = item
        key = record_key(w, r)
        try:
            raw = store.get(key)
            record, whole = (decode(raw, store.where(key)), True) if with_parts else decode_head(raw, store.where(key))
        except KeyNotFound:
            return f"{store.where(run_dir(w, r))}: no {RECORD} (not a run, or being created)"
        except InvalidInputError as exc:
            return str(exc)
        run = Run(store, w, r, record, whole=whole)
        if record.get("status") == RUNNING:
            try:
                run.age = record_age(store, key)
            except KeyNotFound:
                pass
        run.status, run.reason = judge(run.record, run.age)
        if with_parts is not None and with_parts(run):
            run.parts = read_parts(store, w, r)
        return run

    runs: list[Run] = []
    # local reads are cheap and parsing holds the GIL: one thread; object stores wait on the network: several
    workers = 1 if store.is_local or len(keys) < 8 else READ_THREADS
    with ThreadPoolExecutor(workers) as pool:
        results: Iterable[Run | str] = map(read, keys) if workers == 1 else pool.map(read, keys)
        for item in results:
            if isinstance(item, Run):
                runs.append(item)
            elif problems is not None:
                problems.append(item)
            if progress is not None:
                progress.advance()
    runs.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    return runs


def find_run(store: Store, ref: str, workflow: str | None = None) -> tuple[str, str]:
    """``(workflow, run id)`` of the run named by ``ref``: a whole run id or a unique start of one (listings only)."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInputError("empty run id; give a run id as printed by: scout-persist runs")
    ref = ref.strip()
    if "/" in ref:  # Workflow/run-id, as printed in paths
        workflow, ref = ref.rsplit("/", 1)
    names = [workflow] if workflow else workflows(store)
    found = []
    for w in names:
        try:
            ids = run_ids(store, w)
        except UnsafePathError:
            raise
        if ref in ids:
            found.append((w, ref))
            continue
        found += [(w, r) for r in ids if r.startswith(ref)]
    exact = [(w, r) for w, r in found if r == ref]
    if len(exact) == 1:
        return exact[0]
    if not found:
        where = f"{store.where(RUNS_DIR)}" + (f"/{workflow}" if workflow else "")
        known = ", ".join(names) if names else "none"
        raise KeyNotFound(
            f"no run {ref!r} in {where} (workflows with runs: {known}); list runs with: scout-persist runs"
            + (f" --workflow {workflow}" if workflow else "")
        )
    if len(found) > 1:
        shown = ", ".join(f"{w}/{r}" for w, r in found[:6]) + (" ..." if len(found) > 6 else "")
        raise InvalidInputError(
            f"run id {ref!r} matches {len(found)} runs ({shown}); give more of the id (or --workflow)"
        )
    return found[0]


def load_run(store: Store, ref: str, workflow: str | None = None) -> Run:
    """The run named by ``ref`` (whole or unique start of an id), judged now, with its jobs."""
    w, r = find_run(store, ref, workflow)
    return read_run(store, w, r)


def job_of(run: Run, task: str, name: str | None = None) -> dict[str, Any]:
    """The job entry of ``task`` (Scout task name, or ``Workflow#task``) in ``run``; clear errors otherwise."""
    jobs = run.jobs()
    wf, _, plain = task.rpartition("#")
    matches = [j for j in jobs if j.get("task") == plain and (not wf or j.get("workflow") == wf)]
    if name is not None:
        matches = [j for j in matches if str(j.get("key", "")).rsplit("/", 1)[-1] == name]
    if not matches:
        tasks = sorted({f"{j.get('task')}" for j in jobs})
        raise KeyNotFound(
            f"run {run.run_id} (flow {run.flow}) has no job of task {task!r}"
            + (f" named {name!r}" if name is not None else "")
            + f"; its tasks: {', '.join(tasks) or 'none'} (scout-persist runs show {run.run_id})"
        )
    if len(matches) > 1:
        names = ", ".join(str(j.get("key", "")).rsplit("/", 1)[-1] for j in matches[:6])
        raise InvalidInputError(
            f"run {run.run_id} has {len(matches)} jobs of task {task!r} ({names}); choose one with name='...'"
        )
    return matches[0]


# ------------------------------------------------------------------------------------------- job content
CONTENT = "content"  # a job entry's record of what the job held when the run computed or reused it
SIGNATURE_PARTS = ("signature_version", *PARTS)


def job_content(token: str, key: str, signature: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a run records of a job it computed or reused: ``result``, the job's dependency token
    (:func:`scout_persist.signature.dependency_token`) without its key -- the checksum recorded for its payload, or
    ``legacy:<end>`` for a job Ruby wrote -- and, when the job has a signature, ``signature``: a short digest of each
    of its parts, enough to name the part that changed."""
    prefix = key + "="
    content: dict[str, Any] = {"result": token[len(prefix) :] if token.startswith(prefix) else token}
    if isinstance(signature, Mapping):
        content["signature"] = {part: _part_digest(signature.get(part)) for part in SIGNATURE_PARTS}
    return content


def _part_digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def content_changes(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between a job's content as a run recorded it and as it is now (both from :func:`job_content`):
    ``result`` and the signature parts (compared where both carry a signature).  Empty: the same job."""
    changes = []
    if recorded.get("result") != now.get("result"):
        changes.append(f"result (checksum {recorded.get('result')} then, {now.get('result')} now)")
    then, current = recorded.get("signature"), now.get("signature")
    if isinstance(then, Mapping) and isinstance(current, Mapping):
        changes += [f"signature {part}" for part in SIGNATURE_PARTS if then.get(part) != current.get(part)]
    return changes


def writer_run_of(info: Mapping[str, Any]) -> str | None:
    """The flow run that wrote a job, as its ``.info`` records it (None: no recorded run wrote it)."""
    record = got if isinstance(got := info.get("prefect"), Mapping) else {}
    run = record.get("flow_run_id")
    return str(run) if run else None


def still_holds(run: Run, entry: Mapping[str, Any], info: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """None when the job of ``entry`` (a job of ``run``) still holds the value the run recorded, judged by its
    ``info`` now and ``now`` (its :func:`job_content`); else why not, naming what changed.

    A record written before contents were recorded (no ``content``) proves nothing by itself: the job counts as
    the run's only when its ``.info`` names the run as its writer (a later run that rewrote it names itself)."""
    recorded = entry.get(CONTENT)
    key = str(entry.get("key"))
    how = "reused" if entry.get("reused") else "computed"
    if isinstance(recorded, Mapping):
        changes = content_changes(recorded, now)
        if not changes:
            return None
        return f"job {key!r} changed since run {run.run_id} {how} it: its {', '.join(changes)}"
    writer = writer_run_of(info)
    if writer == run.run_id:
        return None
    return (
        f"the record of run {run.run_id} predates job checksums (it was written by an older scout-persist), and job "
        f"{key!r} cannot be shown to still hold that run's value: its .info names "
        + (f"run {writer}" if writer else "no recorded run")
        + " as its writer"
    )


# --------------------------------------------------------------------------------------------- writing
def write_record(store: Store, record: dict[str, Any]) -> None:
    """Replace the run's record atomically (temp + rename locally, one PUT on object stores)."""
    store.put(record_key(record["workflow"], record["run_id"]), encode(record))


def write_part(store: Store, workflow: str, run_id: str, task_run_id: str, entry: dict[str, Any]) -> None:
    store.put(part_key(workflow, run_id, task_run_id), encode(entry))


def write_marker(store: Store, workflow: str, run_id: str, kind: str, other_run: str, data: dict[str, Any]) -> None:
    store.put(marker_key(workflow, run_id, kind, other_run), encode(data))


def delete_run(store: Store, run: Run) -> None:
    """Remove a run's folder: the record first (the run is then gone from listings), then the rest."""
    store.delete(run.key)
    store.delete(run.dir, recursive=True)


# ------------------------------------------------------------------------------------------------ pruning
@dataclass
class PrunePlan:
    """What ``runs prune`` removes and keeps, and why."""

    remove_runs: list[Run]
    keep_runs: list[Run]
    remove_jobs: list[str]  # job keys written by removed runs and reachable from nothing kept
    kept_jobs: dict[str, str]  # job key of a removed run -> why it stays


def _reachable(store: Store, keys: Iterable[str], limit: int = 1_000_000) -> set[str]:
    """``keys`` and every job of ``store`` they depend on, through their ``.info`` dependencies."""
    seen: set[str] = set()
    todo = [k for k in keys if isinstance(k, str)]
    while todo and len(seen) < limit:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        try:
            deps = Job.at(store, key).dependencies
        except (ScoutPersistError, OSError, ValueError):
            continue
        for dep in deps:
            if getattr(dep, "store", None) is not None and dep.store.url == store.url:
                todo.append(dep.key)
    return seen


def registry_jobs(store: Store) -> set[str]:
    """Job keys published in the artifact registry of ``store`` (every live version, aliased or not)."""
    registry = Registry(store)
    if not store.isdir(registry.prefix):
        return set()
    keys = set()
    for name in registry.artifacts():
        for version in registry.versions(name):
            try:
                job = (registry.resolve(f"{name}:{version}").metadata or {}).get("scout_job") or {}
            except (KeyNotFound, ScoutPersistError):
                continue
            if isinstance(job.get("key"), str):
                keys.add(job["key"])
    return keys


def plan_prune(
    store: Store,
    *,
    keep_last: int | None = None,
    older_than_days: float | None = None,
    workflow: str | None = None,
    now: float | None = None,
    progress: Any = None,
) -> PrunePlan:
    """Choose the runs to remove (``keep_last`` newest of each workflow kept, or those started more than
    ``older_than_days`` ago) and the jobs only they reach.

    Never removed: a live run; a job reachable from a kept run (its jobs, the jobs it reused, their dependencies);
    a job reachable from a registry version; a job whose ``.info`` does not name a removed run as its writer (jobs
    of runs not recorded, legacy Ruby jobs, jobs rewritten by a later run).
    """
    if (keep_last is None) == (older_than_days is None):
        raise InvalidInputError("runs prune needs exactly one of --keep-last N or --older-than DAYS")
    if keep_last is not None and keep_last < 0:
        raise InvalidInputError(f"--keep-last {keep_last}: keep a number of runs >= 0")
    if older_than_days is not None and not (older_than_days >= 0):
        raise InvalidInputError(f"--older-than {older_than_days}: give a number of days >= 0")
    now = time.time() if now is None else now
    runs = list_runs(store, workflow, progress=progress, with_parts=lambda r: True)
    remove: list[Run] = []
    keep: list[Run] = []
    by_workflow: dict[str, list[Run]] = {}
    for run in runs:  # newest first
        by_workflow.setdefault(run.workflow, []).append(run)
    for group in by_workflow.values():
        for i, run in enumerate(group):
            live = run.status == RUNNING
            if keep_last is not None:
                old = i >= keep_last
            else:
                assert older_than_days is not None  # one of the two (checked above)
                started = run.started
                old = started is not None and now - started > older_than_days * 86400
            (remove if old and not live else keep).append(run)
    if workflow:  # runs of other workflows are kept: they may reach the same jobs
        keep += [r for r in list_runs(store, None, with_parts=lambda r: True) if r.workflow != workflow]
    removed_ids = {r.run_id for r in remove}
    kept_roots: set[str] = set()
    for run in keep:
        kept_roots.update(str(j.get("key")) for j in run.jobs())
        kept_roots.update(str(u.get("job")) for u in run.reused() if isinstance(u, dict))
    reach_kept = _reachable(store, kept_roots)
    reach_registry = _reachable(store, registry_jobs(store))
    candidates: dict[str, Run] = {}
    for run in remove:
        for job in run.jobs():
            key = job.get("key")
            if isinstance(key, str) and key.startswith("var/jobs/") and job.get("store") in (None, store.url):
                candidates.setdefault(key, run)
    remove_jobs: list[str] = []
    kept_jobs: dict[str, str] = {}
    for key, run in sorted(candidates.items()):
        if key in reach_kept:
            kept_jobs[key] = "reachable from a kept run"
            continue
        if key in reach_registry:
            kept_jobs[key] = "reachable from a registry version"
            continue
        writer = _writer_run(store, key, run)
        if writer is None:
            continue  # gone already
        if writer not in removed_ids:
            kept_jobs[key] = (
                "not written by a recorded run (its .info names none)"
                if writer == "?"
                else f"written by run {writer}, which is kept"
            )
            continue
        remove_jobs.append(key)
    return PrunePlan(remove, keep, remove_jobs, kept_jobs)


def _writer_run(store: Store, key: str, listed_by: Run) -> str | None:
    """The run that wrote job ``key``: the flow run id its ``.info`` records at ``done``; for a job that never got
    there (error, aborted), ``listed_by`` when the ``.info`` names that run's process.  ``"?"``: no recorded run
    wrote it (a legacy Ruby job, a job of a run without record); None: the job is gone."""
    try:
        info = read_info(store, key + ".info")
    except ScoutPersistError:
        return "?"
    if not info:
        return None
    run = writer_run_of(info)
    if run:
        return run
    if (
        info.get("status") in ("error", "aborted", "start", "setup")
        and str(info.get("pid")) == str(listed_by.record.get("pid"))
        and info.get("pid_hostname") == listed_by.record.get("pid_hostname")
    ):
        return listed_by.run_id
    return "?"


__all__ = [
    "COMPLETED",
    "CONTENT",
    "CANCELLED",
    "CRASHED",
    "FAILED",
    "RUNNING",
    "STATUSES",
    "CurrentRun",
    "PrunePlan",
    "Run",
    "check_run_id",
    "code_hash",
    "content_changes",
    "current_run",
    "decode",
    "decode_head",
    "delete_run",
    "encode",
    "find_run",
    "flush_seconds",
    "job_counts_of",
    "is_plain_json",
    "job_content",
    "job_of",
    "judge",
    "lease_seconds",
    "list_runs",
    "load_run",
    "markers",
    "plan_prune",
    "read_parts",
    "read_run",
    "record_key",
    "record_parameters",
    "registry_jobs",
    "run_dir",
    "run_ids",
    "set_current_run_provider",
    "still_holds",
    "workflows",
    "write_marker",
    "write_part",
    "write_record",
    "writer_fields",
    "writer_run_of",
]
