"""Run records as read: one run (:func:`read_run`), every run of a store (:func:`list_runs`, concurrent on object
stores), a run named by a unique start of its id (:func:`find_run`), a job of a run (:func:`job_of`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, KeyNotFound, UnsafePathError
from ..store import Store, Versioned
from .record import (
    PARTS_DIR,
    RECORD,
    RUN_ID_PATTERN,
    RUNNING,
    RUNS_DIR,
    check_workflow,
    decode,
    decode_head,
    job_counts_of,
    parse_time,
    record_key,
    run_dir,
)
from .status import judge

READ_THREADS = 16  # concurrent record reads on object stores


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
    return [r for r in store.ls(f"{RUNS_DIR}/{check_workflow(workflow)}") if RUN_ID_PATTERN.match(r)]


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


def delete_run(store: Store, run: Run) -> None:
    """Remove a run's folder: the record first (the run is then gone from listings), then the rest."""
    store.delete(run.key)
    store.delete(run.dir, recursive=True)
