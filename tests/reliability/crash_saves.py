"""The saves the crash-state test records, one per kind of write a local store holds.

Each workload prepares its store untraced (the previous value, on the disk before the save begins), then makes one
save under the tracer (fs_trace.py), in a child process of its own so that its pid is gone when the states are read
back (a crash kills the writer): ``python crash_saves.py NAME ROOT OUT`` writes the trace and the tree it left to
OUT (a pickle).  tests/reliability/test_crash_states.py reads every crash state of the trace back.
"""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any

JOB = "var/jobs/Crash/task/Default"
RUN = ("Crash", "0b3c8a52-5f57-4a64-9a4e-1b2a3c4d5e6f")
ARTIFACT = "model"
ENTRY = "crash_entry"


@dataclass(frozen=True)
class Workload:
    """One save: ``kind`` says which readers apply; ``old`` is the value on the disk before it (None: none), ``new``
    the value it saves; ``ruby_reads``: Ruby reads the job's result bytes as they are (a Scout type: no checksum);
    ``durable``: once the save returned, the new value must survive any crash (it cannot be recomputed)."""

    name: str
    kind: str  # job | persist | registry | run
    old: Any
    new: Any
    type: str | None = None
    ruby_reads: bool = False
    durable: bool = False
    old_files: dict[str, bytes] = field(default_factory=dict)
    new_files: dict[str, bytes] = field(default_factory=dict)


TEXT_OLD = "".join(f"old line {i}\n" for i in range(40))
TEXT_NEW = "".join(f"the new value, line {i}\n" for i in range(60))
VALUE_OLD = {"value": "old", "items": list(range(40))}
VALUE_NEW = {"value": "new", "items": list(range(90)), "nested": {"k": [1.5, "x"]}}

WORKLOADS = {
    w.name: w
    for w in (
        # a scout task's first run, result of a Scout type (Ruby reads the result file as it is)
        Workload("job_text_first", "job", None, TEXT_NEW, type="text", ruby_reads=True),
        # a scout task recomputed over its done job, Scout type
        Workload("job_text_rewrite", "job", TEXT_OLD, TEXT_NEW, type="text", ruby_reads=True),
        # the plug-in's default: any Python value, pickled (checksum and HMAC in .info; Ruby sees opaque bytes)
        Workload("job_pickle_first", "job", None, VALUE_NEW),
        Workload("job_pickle_rewrite", "job", VALUE_OLD, VALUE_NEW),
        # a job with file outputs (<job>.files/, listed with checksums in .info), rewritten
        Workload(
            "job_files_rewrite",
            "job",
            VALUE_OLD,
            VALUE_NEW,
            old_files={"table.tsv": b"a\tb\n" * 30},
            new_files={"table.tsv": b"x\ty\tz\n" * 50, "plot/fig.svg": b"<svg/>" * 20},
        ),
        # persist() of a Scout type: no sidecar, no checksum; recomputed with update=True
        Workload("persist_text_rewrite", "persist", TEXT_OLD, TEXT_NEW, type="text"),
        # a new version of a registered artifact (not recomputable: once logged it must stay)
        Workload("registry_version", "registry", b"old weights " * 50, b"new weights!" * 70, type="blob", durable=True),
        # a run record updated (running -> completed): the store's own history of a flow run
        Workload("run_record", "run", "running", "completed", durable=True),
    )
}


def save_job(store: Any, value: Any, type: str | None, files: dict[str, bytes], timeout: float = 5.0) -> None:
    """A scout task run in core terms, as the plug-in makes it: lease, ``.info`` start, result, files, done."""
    from scout_persist.job import JobWriter
    from scout_persist.lease import job_lease

    lease = job_lease(store, JOB, lease=30.0)
    if not lease.acquire(timeout=timeout):
        raise RuntimeError(f"the lease of {JOB} was not acquired within {timeout}s: held by {lease.lock.last_holder}")
    try:
        writer = JobWriter(store, JOB, workflow="Crash", task="task", type=type or "binary", lease=lease)
        writer.begin(inputs=[3], input_names=["n"])
        for name, data in files.items():
            writer.files.put(name, data)
        writer.save(value, type or "pickle")
        writer.done()
    finally:
        lease.release()


def run_record(status: str) -> dict[str, Any]:
    from scout_persist import runs

    workflow, run_id = RUN
    return {
        "format": "scout-persist-run/1",
        "run_id": run_id,
        "workflow": workflow,
        "flow": workflow,
        "start": "2026-12-01T10:00:00+00:00",
        "end": None if status == "running" else "2026-12-01T10:05:00+00:00",
        "status": status,
        "lease": {"seconds": 60.0, "refresh": 20.0, "seq": 1},
        "counts": {"done": 1},
        "jobs": [{"key": JOB, "workflow": workflow, "task": "task", "status": "done", "started": runs.now_iso()}],
    }


def save(workload: Workload, root: str, value: Any, files: dict[str, bytes]) -> None:
    """Write ``value`` the way the workload's kind is written."""
    from scout_persist import persist, runs
    from scout_persist.registry import Registry
    from scout_persist.store import Store

    store = Store(root)
    if workload.kind == "job":
        save_job(store, value, workload.type, files)
    elif workload.kind == "persist":
        persist(ENTRY, workload.type, lambda: value, store=root, update=True)
    elif workload.kind == "registry":
        Registry(store).log_artifact(ARTIFACT, {"weights.bin": value})
    elif workload.kind == "run":
        runs.write_record(store, run_record(value))
    else:
        raise ValueError(f"unknown workload kind {workload.kind!r}")


def record(name: str, root: str) -> dict[str, Any]:
    """Prepare ``root`` (untraced), trace the save; the trace and the tree it left."""
    from fs_trace import snapshot, tracing

    workload = WORKLOADS[name]
    os.makedirs(root, exist_ok=True)
    if workload.old is not None:
        save(workload, root, workload.old, workload.old_files)
    with tracing(root) as rec:
        save(workload, root, workload.new, workload.new_files)
    return {
        "initial_files": rec.initial_files,
        "initial_ids": rec.initial_ids,
        "initial_dirs": rec.initial_dirs,
        "ops": rec.ops,
        "left": snapshot(root),
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    name, root, out = sys.argv[1:4]
    data = record(name, root)
    with open(out, "wb") as fh:
        pickle.dump(data, fh)
