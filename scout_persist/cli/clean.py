"""``scout-persist clean`` and ``gc``: remove failed or old jobs, keep a store under a size limit.

Both keep every job reachable from a pinned job (``--pin JOB``, repeatable) or from a registry alias, never touch a
job that is still running, and print what they remove; ``--dry-run`` prints without removing. A job is removed as
a whole, under the lock its writers take (skipped when held): ``.info`` first (so no reader sees a done job without
its result), then the result and ``.files/``.
"""

from __future__ import annotations

import argparse

from ..errors import InvalidInputError
from .jobs import dependency_refs, load_info
from .output import emit, warn
from .scan import JobEntry
from .selection import add_selection_options, human_size, select
from .target import JobRef, resolve_job
from .uploads import add_option as add_uploads_option, run_gc_uploads

# statuses of jobs that may still be written to: never removed
RUNNING = frozenset({"waiting", "queue", "setup", "start", "streaming", "dependencies"})


def add_parser(sub) -> None:
    p = sub.add_parser("clean", help="remove error/aborted jobs, or jobs older than N days (try --dry-run first)")
    add_selection_options(p)
    _common(p)
    p.set_defaults(run=run_clean)

    g = sub.add_parser("gc", help="remove the least recently used jobs and cache entries until the store fits a size "
                                  "limit")
    add_selection_options(g)
    g.add_argument("--max-size", dest="max_size", metavar="SIZE",
                   help="keep the selected jobs under SIZE in total (e.g. 500M, 20G); required unless --uploads")
    add_uploads_option(g)
    _common(g)
    g.set_defaults(run=run_gc)


def _common(p) -> None:
    p.add_argument("-n", "--dry-run", dest="dry_run", action="store_true", help="print what would go, remove nothing")
    p.add_argument("--pin", action="append", default=[], metavar="JOB",
                   help="keep this job and everything it depends on (repeatable)")
    p.add_argument("--no-registry", dest="no_registry", action="store_true",
                   help="do not protect jobs published in the artifact registry")


def reachable(refs) -> set[str]:
    """Display paths of ``refs`` and of every job they depend on."""
    keep: set[str] = set()
    todo = list(refs)
    while todo:
        ref = todo.pop()
        if ref.display in keep:
            continue
        keep.add(ref.display)
        todo.extend(dependency_refs(ref, load_info(ref)))
    return keep


def registry_refs(store) -> list:
    """Jobs published in the artifact registry of ``store`` (``artifacts/``) under any alias, ``latest`` included.

    A version records its job in ``metadata["scout_job"]`` (``key``, ``path``); the job is looked up in this store
    by its key, else at its recorded path.
    """
    from ..registry import Registry

    registry = Registry(store)
    if not store.isdir(registry.prefix):
        return []
    refs = []
    for name in registry.artifacts():
        for version in sorted(set(registry.aliases(name).values())):
            job = (registry.resolve(f"{name}:{version}").metadata or {}).get("scout_job") or {}
            key, path = job.get("key"), job.get("path")
            if key and (store.exists(key) or store.exists(key + ".info")):
                refs.append(JobRef(store, key))
            elif path:
                refs.append(resolve_job(path))
    return refs


def protected(args, store) -> set[str]:
    pins = [resolve_job(p, args.root) for p in args.pin]
    for ref in pins:
        if not (ref.store.exists(ref.info_key) or ref.store.exists(ref.key)):
            raise InvalidInputError(f"pinned job {ref.display!r} does not exist; give an existing job path to --pin")
    if not args.no_registry:
        pins += registry_refs(store)
    return reachable(pins)


def job_lock(job: JobEntry):
    """The lock a writer of this job holds (the Prefect plug-in's and Ruby's key for the job's path)."""
    from ..locks import Lock, lock_key_for

    return Lock(job.store, lock_key_for(job.store.path(job.key)))


def remove(job: JobEntry) -> bool:
    """Remove the job unless a writer holds its lock or it started running since the scan; True when removed."""
    from ..locks import describe_holder

    lock = job_lock(job)
    if not lock.acquire(timeout=0):
        warn(f"skipped {job.workflow}/{job.task}/{job.name}: locked by {describe_holder(lock.last_holder)}")
        return False
    try:
        info = load_info(job.ref) if job.info_entry is not None else None
        if info is not None and str(info.get("status")) in RUNNING:
            warn(f"skipped {job.workflow}/{job.task}/{job.name}: it is running now (status {info.get('status')!r})")
            return False
        store = job.store
        store.delete(job.key + ".info")
        if job.result is not None:
            store.delete(job.key, recursive=job.result.is_dir)
        if job.files is not None:
            store.delete(job.key + ".files", recursive=True)
        return True
    finally:
        lock.release()


def _apply(args, victims: list[JobEntry], verb: str) -> int:
    freed = count = 0
    for job in victims:
        size = job.size
        if not args.dry_run and not remove(job):
            continue
        freed += size
        count += 1
        emit(f"{'would remove' if args.dry_run else 'removed'}  {job.status:<8} {human_size(size):>7}  "
             f"{job.workflow}/{job.task}/{job.name}")
    warn(f"{verb}: {count} jobs, {human_size(freed)}{' (dry run: nothing removed)' if args.dry_run else ''}")
    return 0


def run_clean(args: argparse.Namespace) -> int:
    if args.status is None and not args.older_than:
        args.status = "error,aborted"
    store, jobs = select(args, "clean")
    keep = protected(args, store)
    victims = [j for j in jobs if j.ref.display not in keep and j.status not in RUNNING]
    return _apply(args, victims, "clean")


def run_gc(args: argparse.Namespace) -> int:
    if args.uploads:
        return run_gc_uploads(args)
    if not args.max_size:
        raise InvalidInputError("gc needs --max-size SIZE (e.g. 20G) to remove jobs, or --uploads to abort "
                                "incomplete multipart uploads")
    from .budget import run_gc_budget

    return run_gc_budget(args)  # least recently used first, jobs and persist-cache entries
