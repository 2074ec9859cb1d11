"""``scout-persist clean``: remove failed or old jobs, or one job (and its dependencies or dependants); and what it
shares with ``gc`` (:mod:`scout_persist.cli.budget`): the protection of pinned jobs and the removal of one job.

Both keep every job reachable from a pinned job (``--pin JOB``, repeatable) or from a registry alias, never touch a
job that is still running, and print what they remove; ``--dry-run`` prints without removing. A job is removed as
a whole, under the lock its writers take (skipped when held): ``.info`` first (so no reader sees a done job without
its result), then the result and ``.files/``. Nothing outside the store root of the jobs is ever removed.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, JobNotFound
from ..layout import JOBS_DIR, JOBS_MARK, lock_key_for
from ..liveness import job_liveness, lock_liveness
from ..locks import Lock, describe_holder
from ..registry import Registry
from ..sizes import human_size
from . import SUMMARIES
from .jobs import dependency_refs, load_info, recursive_dependencies
from .output import emit, warn
from .scan import JobEntry, job_entry, scan
from .selection import add_selection_options, select
from .target import JobRef, resolve_job

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..locks import Lock
    from ..store import Store

# statuses of jobs that may still be written to: never removed
RUNNING = frozenset({"waiting", "queue", "setup", "start", "streaming", "dependencies"})


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("clean", help=SUMMARIES["clean"])
    add_selection_options(
        p,
        root_help="a Scout root (default $SCOUT_PERSIST_URL or ~/.scout), or one JOB to "
        "remove: a job path, URL, or W/task/name under $SCOUT_PERSIST_URL",
    )
    p.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="with JOB: also remove the jobs it depends on, recursively (Ruby's recursive_clean)",
    )
    p.add_argument(
        "--downstream",
        action="store_true",
        help="with JOB: also remove the jobs that depend on it, recursively (reads every .info)",
    )
    add_common_options(p)
    p.set_defaults(run=run_clean)


def add_common_options(p: argparse.ArgumentParser) -> None:
    """--dry-run, --pin, --no-registry: what clean and gc share."""
    p.add_argument("-n", "--dry-run", dest="dry_run", action="store_true", help="print what would go, remove nothing")
    p.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="JOB",
        help="keep this job and everything it depends on (repeatable)",
    )
    p.add_argument(
        "--no-registry",
        dest="no_registry",
        action="store_true",
        help="do not protect jobs published in the artifact registry",
    )


def reachable(refs: Iterable[JobRef]) -> set[str]:
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


def registry_refs(store: Store) -> list[JobRef]:
    """Jobs published in the artifact registry of ``store`` (``artifacts/``) under any alias, ``latest`` included.

    A version records its job in ``metadata["scout_job"]`` (``key``, ``path``); the job is looked up in this store
    by its key, else at its recorded path.
    """

    registry = Registry(store)
    if not store.isdir(registry.prefix):
        return []
    refs: list[JobRef] = []
    for name in registry.artifacts():
        for version in sorted(set(registry.aliases(name).values())):
            job = (registry.resolve(f"{name}:{version}").metadata or {}).get("scout_job") or {}
            key, path = job.get("key"), job.get("path")
            if key and (store.exists(key) or store.exists(key + ".info")):
                refs.append(JobRef(store, key))
            elif path:
                refs.append(resolve_job(path))
    return refs


def protected(args: argparse.Namespace, store: Store) -> set[str]:
    pins = [resolve_job(p, args.root) for p in args.pin]
    for ref in pins:
        if not (ref.store.exists(ref.info_key) or ref.store.exists(ref.key)):
            raise InvalidInputError(f"pinned job {ref.display!r} does not exist; give an existing job path to --pin")
    if not args.no_registry:
        pins += registry_refs(store)
    return reachable(pins)


def job_lock(job: JobEntry) -> Lock:
    """The lock a writer of this job holds (the Prefect plug-in's and Ruby's key for the job's path)."""

    return Lock(job.store, lock_key_for(job.store.path(job.key)))


def remove(job: JobEntry) -> bool:
    """Remove the job unless a writer holds its lock or it started running since the scan; True when removed."""

    lock = job_lock(job)
    if not lock.acquire(timeout=0):
        warn(f"skipped {job.workflow}/{job.task}/{job.name}: locked by {describe_holder(lock.last_holder)}")
        return False
    try:
        info = load_info(job.ref) if job.info_entry is not None else None
        if info is not None and str(info.get("status")) in RUNNING and not _writer_gone(job, info):
            warn(f"skipped {job.workflow}/{job.task}/{job.name}: it is running now (status {info.get('status')!r})")
            return False
        store = job.store
        store.delete(job.key + ".info")
        if job.result is not None:
            store.delete(job.key, recursive=job.result_is_dir)
        if job.files is not None:
            store.delete(job.key + ".files", recursive=True)
        return True
    finally:
        lock.release()


def _writer_gone(job: JobEntry, info: dict[str, Any]) -> bool:
    """Whether the writer of a job in a running status is gone, judged while we hold the job's lock."""

    return job_liveness(job.store, job.key, info, holding_lock=True).dead


def _apply(args: argparse.Namespace, victims: list[JobEntry], verb: str) -> int:
    """Remove (or with --dry-run list) ``victims``; returns how many were skipped (locked or running)."""
    freed = count = skipped = 0
    for job in victims:
        size = job.size
        if not args.dry_run and not remove(job):
            skipped += 1
            continue
        freed += size
        count += 1
        emit(
            f"{'would remove' if args.dry_run else 'removed'}  {job.status:<8} {human_size(size):>7}  "
            f"{job.workflow}/{job.task}/{job.name}"
        )
    warn(f"{verb}: {count} jobs, {human_size(freed)}{' (dry run: nothing removed)' if args.dry_run else ''}")
    return skipped


def run_clean(args: argparse.Namespace) -> int:
    job = named_job(args.root)
    if job is not None:
        return clean_job(args, job)
    if args.recursive or args.downstream:
        raise InvalidInputError(
            f"--recursive and --downstream remove the dependencies or dependants of one JOB, and "
            f"{args.root or '$SCOUT_PERSIST_URL'!r} is a Scout root; give a job path such as "
            "~/.scout/var/jobs/Baking/bake_muffin_tray/Default"
        )
    if args.status is None and not args.older_than:
        args.status = "error,aborted"
    store, jobs = select(args, "clean")
    keep = protected(args, store)
    victims = [j for j in jobs if j.ref.display not in keep and j.status not in RUNNING]
    _apply(args, victims, "clean")
    return 0


# -- one job ------------------------------------------------------------------------------------------
def named_job(arg: str | None) -> JobRef | None:
    """The job named by clean's positional argument, or None when it names a Scout root."""

    if not arg:
        return None
    if "://" in arg:
        return resolve_job(arg) if JOBS_MARK in arg else None
    path = os.path.abspath(os.path.expanduser(arg))
    if JOBS_MARK in path + "/":
        return resolve_job(arg)
    if os.path.lexists(path) or arg.count("/") < 2:
        return None  # a root (checked by the root code), or a typo it reports
    return resolve_job(arg)  # W/task/name under $SCOUT_PERSIST_URL


def clean_job(args: argparse.Namespace, ref: JobRef) -> int:
    """``clean JOB [--recursive] [--downstream]``: remove one job, its dependencies, its dependants."""

    given = [
        flag
        for flag, on in (
            ("-w", args.workflow != "*"),
            ("-t", args.task != "*"),
            ("-s", args.status),
            ("--older-than", args.older_than),
            ("--newer-than", args.newer_than),
        )
        if on
    ]
    if given:
        raise InvalidInputError(
            f"clean JOB removes that one job; {', '.join(given)} select the jobs of a Scout root and do not combine "
            f"with a JOB: give a root instead of {ref.display!r}, or drop {', '.join(given)}"
        )
    if len(ref.key.split("/")) < 5 or not ref.key.startswith("var/jobs/"):
        raise InvalidInputError(
            f"{ref.display!r} is not a job: jobs are <root>/var/jobs/<Workflow>/<task>/<name>; to clean a whole "
            "workflow or task give the root with -w/-t (e.g. scout-persist clean ~/.scout -w Baking -t whisk_eggs)"
        )
    target = job_entry(ref.store, ref.key)
    if target is None:
        raise JobNotFound(
            f"no job at {ref.display!r}: neither its result, its .info nor its .files exists; give the path of a "
            "job (scout-persist ls lists them)"
        )
    if target.info_entry is None and target.files is None and target.result_is_dir:
        raise InvalidInputError(
            f"{ref.display!r} is a folder of jobs, not a job; give one job inside it (scout-persist ls lists them)"
        )
    victims = [target]
    if args.downstream:
        victims = dependants(ref.store, ref.key) + victims
    if args.recursive:
        victims += dependencies_in_store(ref)
    keep = protected(args, ref.store)
    if target.ref.display in keep:
        raise InvalidInputError(
            f"job {ref.display!r} is kept: it is pinned or published in the artifact registry (or a dependency of "
            "such a job); pass --no-registry (and drop --pin) to remove it anyway"
        )
    kept = [j for j in victims if j.ref.display in keep]
    for j in kept:
        warn(f"kept {j.workflow}/{j.task}/{j.name}: pinned or published in the artifact registry")
    victims = [j for j in victims if j.ref.display not in keep]
    running = [(j, why) for j in victims if (why := _running(j))]
    if running:
        for j, why in running:
            warn(
                f"refusing to clean {j.ref.display!r}: it is running ({why}); wait for it to finish or stop it, "
                "then clean again"
            )
        warn("clean: nothing removed")
        return 1
    skipped = _apply(args, victims, "clean")
    return 1 if skipped else 0


def _running(job: JobEntry) -> str | None:
    """Why ``job`` counts as running (a live writer per its .info, or its lock held), else None."""

    info = job.info if job.info_entry is not None else {}
    status = str(info.get("status") or "")
    if status in RUNNING:
        live = job_liveness(job.store, job.key, info)
        if not live.dead:
            return f"status {status!r}: {live.reason}"
    live = lock_liveness(job.store, job.key)
    return None if live.dead else live.reason


def dependencies_in_store(ref: JobRef) -> list[JobEntry]:
    """Every job ``ref`` depends on, recursively, that lives in its store (others are named and kept)."""

    def in_store(dep: JobRef) -> bool:
        if dep.store.url == ref.store.url and dep.key.startswith(JOBS_DIR + "/"):
            return True
        warn(f"kept {dep.display}: not a job of the store {ref.store.url!r}")
        return False

    entries = (job_entry(ref.store, dep.key) for dep in recursive_dependencies(ref, follow=in_store))
    return [entry for entry in entries if entry is not None]


def dependants(store: Store, key: str) -> list[JobEntry]:
    """Every job of ``store`` that depends on ``key``, directly or not; the farthest first."""

    depends_on: dict[str, list[JobEntry]] = {}  # dependency key -> jobs that list it
    for job in scan(store):
        if job.info_entry is None:
            continue
        for dep in dependency_refs(job.ref, job.info):
            if dep.store.url == store.url:
                depends_on.setdefault(dep.key, []).append(job)
    out: list[JobEntry] = []
    seen = {key}
    todo = [key]
    while todo:
        for job in depends_on.get(todo.pop(0), []):
            if job.key not in seen:
                seen.add(job.key)
                out.append(job)
                todo.append(job.key)
    return out[::-1]
