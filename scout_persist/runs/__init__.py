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

Nothing here needs Prefect: listing, showing, pruning and finding incomplete runs read the store alone.  One module
per job: :mod:`.record` (format, keys, writes), :mod:`.status` (the lease judged), :mod:`.listing` (reading),
:mod:`.content` (what a run recorded of a job), :mod:`.pruning`; the run in progress is
:mod:`scout_persist.run_context`.
"""

from __future__ import annotations

from ..run_context import CurrentRun, current_run, set_current_run_provider  # the run in progress, for lineage
from .content import CONTENT, SIGNATURE_PARTS, content_changes, job_content, still_holds, writer_run_of
from .listing import (
    READ_THREADS,
    Run,
    delete_run,
    find_run,
    job_of,
    list_runs,
    load_run,
    markers,
    read_parts,
    read_run,
    record_age,
    run_ids,
    workflows,
)
from .pruning import PrunePlan, plan_prune, registry_jobs
from .record import (
    CANCELLED,
    COMPLETED,
    CRASHED,
    DEFAULT_FLUSH,
    DEFAULT_LEASE,
    FAILED,
    FLUSH_ENV,
    FORMAT,
    LEASE_ENV,
    PARTS_DIR,
    RECORD,
    RESUME_LOCK,
    RESUMED_BY,
    REUSED_BY,
    RUN_ID_PATTERN,
    RUNNING,
    RUNS_DIR,
    STATUSES,
    check_run_id,
    check_workflow,
    code_hash,
    decode,
    decode_head,
    encode,
    flush_seconds,
    is_plain_json,
    job_counts_of,
    lease_seconds,
    marker_key,
    now_iso,
    parse_time,
    part_key,
    record_key,
    record_parameters,
    run_dir,
    write_marker,
    write_part,
    write_record,
)
from .status import judge, lease_left, writer_fields, writer_gone_here

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "CONTENT",
    "CRASHED",
    "CurrentRun",
    "DEFAULT_FLUSH",
    "DEFAULT_LEASE",
    "FAILED",
    "FLUSH_ENV",
    "FORMAT",
    "LEASE_ENV",
    "PARTS_DIR",
    "PrunePlan",
    "READ_THREADS",
    "RECORD",
    "RESUMED_BY",
    "RESUME_LOCK",
    "REUSED_BY",
    "RUNNING",
    "RUNS_DIR",
    "RUN_ID_PATTERN",
    "Run",
    "SIGNATURE_PARTS",
    "STATUSES",
    "check_run_id",
    "check_workflow",
    "code_hash",
    "content_changes",
    "current_run",
    "decode",
    "decode_head",
    "delete_run",
    "encode",
    "find_run",
    "flush_seconds",
    "is_plain_json",
    "job_content",
    "job_counts_of",
    "job_of",
    "judge",
    "lease_left",
    "lease_seconds",
    "list_runs",
    "load_run",
    "marker_key",
    "markers",
    "now_iso",
    "parse_time",
    "part_key",
    "plan_prune",
    "read_parts",
    "read_run",
    "record_age",
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
    "writer_gone_here",
    "writer_run_of",
]
