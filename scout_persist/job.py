"""A Scout job on disk (legacy Ruby or ours): info, result, files, dependencies; and :class:`JobWriter` for new ones.

A job is addressed inside a :class:`~scout_persist.store.Store` by its key ``var/jobs/<W>/<task>/<name>[.ext]``.
``Job(path_or_url)`` finds the store root as the part of the path before ``/var/jobs/``.  Absolute paths stored in
``.info`` (dependencies, path inputs, ``file`` results) are *relocated*: their ``var/jobs/...`` tail (or the tail after
``/.scout/``) is mapped onto the root the job was opened from, so a tree copied to another machine or bucket still
resolves.  Nothing here writes outside the store root.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from . import payload
from .checksums import checksum_algorithm, new_checksum
from .errors import (
    CorruptPayloadError,
    InfoFormatError,
    InvalidInputError,
    JobFailed,
    JobNotFound,
    KeyNotFound,
    LeaseLost,
    ScoutPersistError,
    StorageError,
    UnsafePathError,
)
from .file_outputs import MANIFEST_KEY, JobFiles, manifest_of, verified_open
from .info import NOINFO, InfoFile, decode_exception, loads_info, read_info
from .job_status import job_status
from .layout import JOBS_DIR, JOBS_MARK, SCOUT_ROOT_MARK, clean_name as _clean_name, extension_for, split_location
from .lease import LEASE_KEY, lease_record, next_fence
from .payload import record_of
from .rubyvalues import RubyException
from .store import Store, Sync, check_key
from .tsv import as_pandas
from .verdict import MISSING_RESULT, Expiry, Served, judge, judge_bytes

if TYPE_CHECKING:
    from .file_outputs import JobFiles
    from .lease import JobLease
    from .payload import Encoded

log = logging.getLogger(__name__)

_HASHED = re.compile(r"^(.+?)_[0-9a-f]{32}(?:\..*)?$", re.S)
_COMPRESSED = (".gz", ".bgz")
READ_AT_SETUP = object()  # JobWriter(previous_info=...) default: read the previous .info at setup


class Job:
    """A job on disk.  ``Job("/home/u/.scout/var/jobs/W/t/name")``, ``Job("s3://b/root/var/jobs/W/t/n", anon=False)``.

    ``path_map`` adds prefix rewrites for absolute paths outside the Scout root (e.g. the input files of another
    machine: ``{"/home/scout/data": "/data"}``).  ``strict=True`` makes :attr:`info` raise on an unreadable
    ``.info`` instead of reporting status ``noinfo`` as Ruby does.
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str],
        *,
        path_map: Mapping[str, str] | None = None,
        strict: bool = False,
        **storage_options: Any,
    ) -> None:
        text = os.fspath(path_or_url)
        for suffix in (".info", ".files"):
            if text.endswith(suffix):
                text = text[: -len(suffix)]
        if "://" not in text:
            text = os.path.abspath(os.path.expanduser(text))
        root_url, key = split_location(text, strict=True)
        self._init(Store(root_url, **storage_options), key, path_map, strict)

    def _init(self, store: Store, key: str, path_map: Mapping[str, str] | None, strict: bool) -> None:
        raw = key.rstrip("/")
        if ".." in raw.split("/"):
            raise UnsafePathError(
                f"job path {raw!r} escapes the store root {store.url!r}; job paths may not contain '..' segments"
            )
        self.store = store
        self.key = check_key(raw, store.url)
        if not self.key:
            raise UnsafePathError(f"empty job key in store {store.url!r}; give var/jobs/<Workflow>/<task>/<name>")
        self.path_map = dict(path_map or {})
        self.strict = strict
        self.external = False
        self._info: dict[str, Any] | None = None

    @classmethod
    def at(
        cls,
        store: Store,
        key: str,
        *,
        path_map: Mapping[str, str] | None = None,
        strict: bool = False,
        info: dict[str, Any] | None = None,
    ) -> Job:
        """The job stored under ``key`` (``var/jobs/W/t/name``) in ``store``; ``info``: its ``.info`` when the caller
        has already read it (not read again)."""
        job = cls.__new__(cls)
        job._init(store, key, path_map, strict)
        job._info = info
        return job

    @classmethod
    def _external(cls, path: str, parent: Job) -> Job:
        """A dependency outside the Scout root (a plain file overriding a dependency): read-only, no info."""
        job = cls.__new__(cls)
        d, base = os.path.split(path)
        job._init(Store(d or "."), base, parent.path_map, parent.strict)
        job.external = True
        return job

    def __repr__(self) -> str:
        return f"Job({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- addressing -------------------------------------------------------------------------
    def location(self, key: str) -> str:
        """Where ``key`` of this job's store is: an absolute local path or a URL."""
        key = check_key(key, self.store.url)
        return f"{self.store.url.rstrip('/')}/{key}" if key else self.store.url

    @property
    def path(self) -> str:
        return self.location(self.key)

    @property
    def info_key(self) -> str:
        return self.key + ".info"

    @property
    def files_key(self) -> str:
        return self.key + ".files"

    @property
    def name(self) -> str:
        """The job name: the key after ``var/jobs/<W>/<task>/`` (an id with '/' spans folders), else the basename."""
        info = self.info if not self.external else {}
        w, t = info.get("workflow"), info.get("task_name")
        head = f"{JOBS_DIR}/{w}/{t}/"
        if w and t and self.key.startswith(head):
            return self.key[len(head) :]
        return posixpath.basename(self.key)

    def _segment(self, i: int) -> str | None:
        parts = self.key.split("/")
        return parts[i] if len(parts) >= -i else None

    @property
    def workflow(self) -> str | None:
        return self.info.get("workflow") or (None if self.external else self._segment(-3))

    @property
    def task_name(self) -> str | None:
        return self.info.get("task_name") or (None if self.external else self._segment(-2))

    @property
    def clean_name(self) -> str:
        """The job id: info ``clean_name`` if present; else the name before its ``_<md5>`` hash; else the name
        without its type extension; else Ruby's re-read rule (cut at the first dot, §10.3 quirk 28)."""
        if self.info.get("clean_name"):
            return str(self.info["clean_name"])
        name = self.name
        m = _HASHED.match(name)
        if m:
            return m.group(1)
        ext = extension_for(self.info.get("type")) if self.info.get("type") else None
        if ext and name.endswith("." + ext) and len(name) > len(ext) + 1:
            return name[: -len(ext) - 1]
        return _clean_name(name)

    # -- info -------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """The ``.info`` as a dict (``{}`` when absent; ``{"status": "noinfo"}`` when unreadable, unless strict)."""
        if self._info is None:
            self._info = read_info(self.store, self.info_key, strict=self.strict)
        return self._info

    def read_info(self, strict: bool = True) -> dict[str, Any]:
        """Re-read the ``.info``; strictly by default (InfoFormatError naming the file when unreadable)."""
        self._info = read_info(self.store, self.info_key, strict=strict)
        return self._info

    @property
    def status(self) -> str:
        """The status as Ruby's ``prov`` shows it (:mod:`scout_persist.job_status`): the recorded one, or ``missing``
        (no ``.info``), ``noinfo`` / ``notfound`` (an unreadable or absent ``.info``, with / without a result),
        ``unsync`` (``done`` without a result), ``aborted`` (running, but its writer is gone)."""
        return job_status(self.store, self.key, self.info, self.store.exists(self.key))

    @property
    def recorded_status(self) -> str:
        """The status the ``.info`` records, as Ruby's ``Step#status`` reads it: ``""`` without an info file,
        ``noinfo`` when it cannot be read."""
        return str(self.info.get("status") or "")

    @property
    def type(self) -> str | None:
        return self.info.get("type")

    @property
    def done(self) -> bool:
        """Ruby's definition: the result file exists."""
        return self._result_key() is not None

    def _result_key(self) -> str | None:
        if self.store.exists(self.key) and not self.store.isdir(self.key):
            return self.key
        for suffix in _COMPRESSED:
            if self.store.exists(self.key + suffix):
                return self.key + suffix
        return None

    @property
    def inputs(self) -> dict[str, Any]:
        """The task's own inputs, name -> value as Ruby gives them; absolute paths relocated onto this root."""
        info = self.info
        names = info.get("input_names") or []
        values = info.get("inputs") or []
        if isinstance(values, dict):  # rbbt-era: already a map
            return {str(k): self._relocate_value(v) for k, v in values.items()}
        return {str(n): self._relocate_value(v) for n, v in zip(names, values)}

    @property
    def provided_inputs(self) -> dict[str, Any]:
        return {str(k): self._relocate_value(v) for k, v in (self.info.get("provided_inputs") or {}).items()}

    @property
    def dependencies(self) -> list[Job]:
        """The direct dependencies, relocated; a plain-file dependency outside the root is an ``external`` Job."""
        out = []
        for entry in self.info.get("dependencies") or []:
            if isinstance(entry, (list, tuple)):  # rbbt-era [task, name, path]
                entry = entry[-1]
            out.append(self._dependency(str(entry)))
        return out

    def _dependency(self, path: str) -> Job:
        key = self.relocate_key(path)
        if key is not None:
            here = Job.at(self.store, key, path_map=self.path_map, strict=self.strict)
            return self._where_it_still_is(path, here) or here
        mapped = self._mapped(path)
        if "://" in mapped:
            return Job(mapped)
        return Job._external(mapped, self)

    def _where_it_still_is(self, path: str, here: Job) -> Job | None:
        """The dependency at its recorded ``path`` when that is under another root, it is missing from this store,
        and it still exists there (a job that used a shared root keeps reading it); else None."""
        if path.startswith(self.store.url.rstrip("/") + "/") or _job_exists(here):
            return None
        if "://" in path:
            if path.partition("://")[0] != self.store.url.partition("://")[0]:
                return None  # another protocol: its options are not ours to guess
            there = Job(path, path_map=self.path_map, strict=self.strict, **self.store.storage_options)
        elif path.startswith("/") and JOBS_MARK in path:
            if not (os.path.lexists(path) or os.path.lexists(path + ".info")):
                return None
            there = Job(path, path_map=self.path_map, strict=self.strict)
        else:
            return None
        return there if _job_exists(there) else None

    # -- relocation -------------------------------------------------------------------------
    def relocate_key(self, path: str) -> str | None:
        """The key in this job's store that an absolute Scout path stands for, or None when it is not Scout's.

        Raises UnsafePathError when the tail would leave the root ('..' segments)."""
        if not isinstance(path, str) or not path:
            return None
        if path.startswith(JOBS_DIR + "/") or JOBS_MARK in path:
            tail = split_location(path, strict=True)[1]
        elif SCOUT_ROOT_MARK in path:
            tail = path[path.find(SCOUT_ROOT_MARK) + len(SCOUT_ROOT_MARK) :]
        else:
            return None
        if ".." in tail.split("/"):
            raise UnsafePathError(
                f"path {path!r} stored in {self.location(self.info_key)!r} escapes the Scout root "
                f"{self.store.url!r} ('..' segments); refusing to follow it"
            )
        return check_key(tail, self.store.url)

    def _mapped(self, path: str) -> str:
        for old in sorted(self.path_map, key=len, reverse=True):
            if path == old or path.startswith(old.rstrip("/") + "/"):
                return self.path_map[old].rstrip("/") + path[len(old.rstrip("/")) :]
        return path

    def relocate(self, path: str) -> str:
        """An absolute path from ``.info`` or a result, mapped onto this root (or ``path_map``); else unchanged."""
        mapped = self._mapped(path)
        if mapped != path:
            return mapped
        key = self.relocate_key(path)
        return self.location(key) if key is not None else path

    def _relocate_value(self, v: Any) -> Any:
        if isinstance(v, str) and v.startswith("/"):
            try:
                return self.relocate(v)
            except UnsafePathError:
                return v
        if isinstance(v, list):
            return [self._relocate_value(x) for x in v]
        if isinstance(v, dict):
            return {k: self._relocate_value(x) for k, x in v.items()}
        return v

    # -- files ------------------------------------------------------------------------------
    def files(self) -> list[str]:
        """Relative names of the job's files under ``<job>.files/``, sorted: for a done job of ours the files its
        ``.info`` lists (what its run committed), else every file there; UnsafePathError on a broken or looping
        symlink (links to folders are not followed: the listing stays inside the files directory)."""
        manifest = self.files_manifest()
        if manifest is not None:
            return sorted(manifest)
        prefix = self.files_key + "/"
        return [k[len(prefix) :] for k in self.store.list(self.files_key) if k.startswith(prefix)]

    def file(self, name: str) -> str:
        """The location of ``<job>.files/<name>`` (need not exist); never outside this job's files directory."""
        rel = check_key(name, self.location(self.files_key))
        if not rel:
            raise UnsafePathError(f"empty file name for the files directory of job {self.path!r}")
        key = f"{self.files_key}/{rel}"
        try:
            self.store.safe_path(key)
        except UnsafePathError as exc:
            raise UnsafePathError(f"{exc} (a file of job {self.path!r}: files of a job stay inside the root)") from None
        return self.location(key)

    def files_manifest(self) -> dict[str, dict[str, Any]] | None:
        """``{name: {"file", "size", "checksum"}}`` of the files a done job of ours committed (None: Ruby's jobs, or not
        done)."""

        return manifest_of(self.info) if self.recorded_status == "done" else None

    def open_file(self, name: str) -> IO[bytes]:
        """A binary reader of ``<job>.files/<name>``, from any store; a file listed in the job's ``.info`` is checked
        against its size and checksum first (CorruptPayloadError when it differs); KeyNotFound when absent."""

        where = self.file(name)
        rel = check_key(name)
        manifest = self.files_manifest()
        if manifest is not None and rel not in manifest:
            raise KeyNotFound(
                f"job {self.path!r} has no file {rel!r}; its files: {', '.join(sorted(manifest)) or 'none'}"
            )
        return verified_open(self.store, f"{self.files_key}/{rel}", (manifest or {}).get(rel), where)

    def read_file(self, name: str) -> bytes:
        """The bytes of ``<job>.files/<name>`` (checked like :meth:`open_file`)."""
        with self.open_file(name) as fh:
            return fh.read()

    # -- results ----------------------------------------------------------------------------
    @property
    def exception(self) -> RubyException | None:
        """The stored exception (class, message, backtrace), or None; CorruptPayloadError when it is not Scout's."""
        info = self.info
        blob = info.get("exception")
        if blob is None:
            return None
        where = self.location(self.info_key)
        if isinstance(blob, dict):  # rbbt-era: a map of class, message, backtrace
            return RubyException(
                str(blob.get("class") or "Exception"), str(blob.get("message") or ""), list(blob.get("backtrace") or [])
            )
        if not isinstance(blob, str):
            raise CorruptPayloadError(f"{where}: 'exception' is a {type(blob).__name__}, not Base64 text")
        exc = decode_exception(blob, where)
        if not exc.backtrace and info.get("backtrace"):
            exc.backtrace = list(info["backtrace"])
        return exc

    def payload_record(self) -> dict[str, Any] | None:
        """How the result was stored (format, codec, sizes, checksum), from ``.info``; None for Ruby's jobs."""

        return record_of(self.info)

    def load(self, type: str | None = None, _retrying: bool = False, *, as_: str | None = None) -> Any:
        """The result as a Python value by the job's record or type (or ``type``).

        Results we wrote are verified against the size and checksum in ``.info`` before they are decoded
        (CorruptPayloadError when they do not match); Ruby's results load by Ruby's rules.  A job that ended in
        error raises JobFailed; a job still running (or interrupted) raises JobNotFound; a ``done`` job without a
        result file (a task returning nothing) returns None; no info and no result raises JobNotFound.

        ``as_="pandas"``: the result as a pandas value: a Scout TSV (Ruby's or ours) as a DataFrame (index = key
        field, columns = fields), a DataFrame/Series as stored, a pyarrow Table or a 1-2 dimensional array as a
        DataFrame, a list of records (JSON) as a DataFrame; InvalidInputError for results pandas cannot hold.
        """
        if as_ is not None:
            if as_ != "pandas":
                raise InvalidInputError(f"load(as_={as_!r}): the only conversion is as_='pandas'")
            return as_pandas(self.load(type, _retrying), self.path)
        info = self.info
        status = self.recorded_status
        record = payload.record_of(info)
        if status == "done" and record is not None and record.get("format") == "none":
            return None
        result = self._result_key()
        if status in ("error", "aborted"):
            exc = None
            try:
                exc = self.exception
            except CorruptPayloadError:
                pass
            what = f"{exc.class_name}: {exc.message}" if exc else (info.get("messages") or ["no exception"])[-1]
            raise JobFailed(f"job {self.path!r} ended in status {status!r} ({what}); it has no result")
        if result is None:
            if status == "done" and record is None:
                return None  # Ruby's done without a result: the task returned nothing
            if status == "done" and record is not None:  # ours recorded the bytes it stored: lost, not None
                raise JobNotFound(
                    f"job {self.path!r} is done but its result file is missing (its .info records "
                    f"{record.get('stored_size', '?')} bytes of {record.get('format')!r}); rerun it"
                )
            raise JobNotFound(f"job {self.path!r} has no result file (status {status or 'missing'!r}); run it first")
        if status == NOINFO and type is None:
            raise InfoFormatError(
                f"the .info of job {self.path!r} is unreadable, so its result type is unknown; "
                "pass load(type=...) or rewrite the .info"
            )
        if type is None and not info:
            raise InfoFormatError(
                f"job {self.path!r} has a result but no .info, so its type is unknown; pass load(type=...)"
            )
        if info and status not in ("done", NOINFO):
            raise JobNotFound(
                f"job {self.path!r} is in status {status!r}, not 'done': its result file is from an earlier run or "
                "not complete; wait for the job to finish, or rerun it"
            )
        if status == "done":  # the hit rule, for a reader: no signature to compare, no expiry
            verdict = judge(
                self.store,
                self.key,
                info,
                expiration=Expiry.IGNORED,
                scout_type=type,
                result_key=result,
                relocate=self.relocate,
            )
        else:  # no readable .info: the result read by the type asked for, as Ruby does
            verdict = judge_bytes(
                self.store, self.key, info, scout_type=type, result_key=result, relocate=self.relocate
            )
        if isinstance(verdict, Served):
            return verdict.value
        if verdict.has(MISSING_RESULT):
            raise JobNotFound(f"result of job {self.path!r} disappeared while loading")
        if isinstance(verdict.error, CorruptPayloadError) and not _retrying:
            # A writer may have replaced the result (and then its info) since our info was read: retry once
            # with the current info; a payload that fails its own, current record is corrupt.
            before = self._info
            if self.read_info(strict=self.strict) != before:
                return self.load(type, _retrying=True)
        if verdict.error is not None:
            raise verdict.error
        raise JobNotFound(f"job {self.path!r}: {verdict.message}")


def _sync_for(record: Mapping[str, Any]) -> Sync:
    """How much of a result of ``record`` is synced: a job is a cache entry (a crash that loses it means a recompute),
    so never its name; its bytes when Ruby reads them as they are (a Scout type or JSON: no checksum), so that no name
    leads to torn bytes; pickles and typed formats, opaque to Ruby and checked against their ``.info`` record by every
    reader of ours (torn = a miss), not at all.  docs/reliability.md, "Durability: what is fsynced and why"."""
    return Sync.DATA if payload.ruby_type(record) != "binary" else Sync.NONE


def _job_exists(job: Job) -> bool:
    """A result or a ``.info`` is stored under the job's key."""
    try:
        return job.store.exists(job.info_key) or job.store.exists(job.key)
    except (ScoutPersistError, OSError):
        return False


class JobWriter:
    """Writes a job Ruby can read: setup -> start -> save(payload) -> done, or error(exc).

    >>> w = JobWriter(store, "var/jobs/Wf/task/Default", workflow="Wf", task="task", type="json")
    >>> w.setup(inputs=[], input_names=[]); w.start(); w.save({"a": 1}); w.done()

    The payload is written atomically before ``done`` is recorded, so a ``done`` info always has its result.
    ``key_or_spec`` may be a :class:`~scout_persist.workflow.JobSpec`, which supplies workflow, task, type, inputs
    and dependencies.
    """

    def __init__(
        self,
        store: Store,
        key_or_spec: Any,
        *,
        workflow: str | None = None,
        task: str | None = None,
        type: str | None = None,
        previous_info: bytes | object | None = READ_AT_SETUP,
        lease: JobLease | None = None,
    ) -> None:
        self.store = store
        self.spec = None if isinstance(key_or_spec, str) else key_or_spec
        key = key_or_spec if isinstance(key_or_spec, str) else key_or_spec.key
        if ".." in key.split("/"):
            raise UnsafePathError(f"job key {key!r} escapes the store root {store.url!r}; '..' segments are refused")
        self.key = check_key(key, store.url)
        parts = self.key.split("/")
        self.workflow = workflow or getattr(self.spec, "workflow", None) or (parts[-3] if len(parts) >= 3 else "")
        self.task = task or getattr(self.spec, "task", None) or (parts[-2] if len(parts) >= 2 else "")
        self.type = type or getattr(self.spec, "type", None) or "binary"
        # With a lease every write is fenced: refused once another holder has taken the job over.
        self.lease = lease
        self.info = InfoFile(store, self.key + ".info", put=lease.put_info if lease is not None else None)
        self.job = Job.at(store, self.key)
        self._encoded: Encoded | None = None
        self._files: JobFiles | None = None
        self._set_up = False
        self._restored = False
        # The .info bytes before this run (None: no job), read under the caller's lock; a failed rewrite puts the
        # committed job back as it was.  READ_AT_SETUP: read them at setup.
        self._previous = previous_info

    def __repr__(self) -> str:
        return f"JobWriter({self.store.url!r}, {self.key!r})"

    def location(self, key: str) -> str:
        return self.job.location(key)

    def _ruby_value(self, v: Any) -> Any:
        """Values as Ruby stores them in .info: Steps as absolute paths, Symbols and paths as strings."""
        if hasattr(v, "scout_step_path"):
            key = getattr(v, "key", None) or v.scout_step_path
            return self.location(key) if not str(key).startswith("/") and "://" not in str(key) else str(key)
        if isinstance(v, Job):
            return v.path
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if isinstance(v, (list, tuple)):
            return [self._ruby_value(x) for x in v]
        if isinstance(v, dict):
            return {str(k): self._ruby_value(x) for k, x in v.items()}
        return v

    def _dep_path(self, d: Any) -> str:
        if isinstance(d, Job):
            return d.path
        key = getattr(d, "key", None) or getattr(d, "scout_step_path", None) or os.fspath(d)
        key = str(key)
        return self.location(key) if key.startswith(JOBS_DIR + "/") else key

    def setup(
        self,
        *,
        inputs: Iterable[Any] | None = None,
        input_names: Iterable[str] | None = None,
        provided_inputs: Mapping[str, Any] | None = None,
        non_default_inputs: Iterable[str] | None = None,
        dependencies: Iterable[Any] | None = None,
        type: str | None = None,
        save: bool = True,
        **info: Any,
    ) -> JobWriter:
        """Reset the ``.info`` (status ``setup``); values default to those of the JobSpec, if one was given.

        ``save=False`` leaves the write to :meth:`start` (one write of the same final content, see :meth:`begin`).
        """
        spec = self.spec
        if self._previous is READ_AT_SETUP:
            try:
                self._previous = self.store.get(self.info.key)
            except KeyNotFound:
                self._previous = None

        if type:
            self.type = type
        if inputs is None:
            inputs = getattr(spec, "inputs", None) or []
        if input_names is None:
            input_names = getattr(spec, "input_names", None) or []
        if provided_inputs is None:
            provided_inputs = getattr(spec, "provided_inputs", None) or {}
        if non_default_inputs is None:
            non_default_inputs = getattr(spec, "non_default_inputs", None) or []
        if dependencies is None:
            dependencies = getattr(spec, "dependencies", None) or []
        self.info.setup(
            task_name=self.task,
            workflow=self.workflow,
            type=self.type,
            inputs=self._ruby_value(list(inputs)),
            input_names=list(input_names),
            provided_inputs=self._ruby_value(dict(provided_inputs)),
            non_default_inputs=list(non_default_inputs),
            dependencies=[self._dep_path(d) for d in dependencies],
            save=save,
            **info,
        )
        # A rerun keeps the previous result file until save() replaces it atomically; a failed save puts the
        # previous .info back, so a committed job is never lost to a failed rewrite.
        self._set_up = True
        return self

    def start(self) -> JobWriter:
        """Status ``start``; with a lease, the holder and its fence go with it (after Ruby's keys)."""
        extra = {}
        if self.lease is not None:
            self.lease.fence = next_fence(self._previous_info())
            extra[LEASE_KEY] = lease_record(self.lease.token, self.lease.fence, self.lease.lease)
        self.info.start(**extra)
        return self

    def begin(self, **setup: Any) -> JobWriter:
        """:meth:`setup` then :meth:`start` in one ``.info`` write (only the final status matters to readers)."""
        self.setup(save=False, **setup)
        return self.start()

    def message(self, msg: str) -> None:
        self.info.message(msg)

    def log(self, status: str, msg: str | None = None) -> None:
        self.info.log(status, msg)

    def set_info(self, key: str, value: Any) -> None:
        """A custom info key (appended the first time, Ruby's ``set_info``)."""
        self.info.merge(key, self._ruby_value(value))

    def save(
        self,
        value: Any,
        type: str | None = None,
        *,
        compression: str | None = None,
        hmac_key: bytes | str | None = None,
        format: str | None = None,
    ) -> dict[str, Any]:
        """Write the result atomically (see :mod:`scout_persist.payload`) and return its record.

        Scout types give Ruby's bytes; ``type="pickle"``, or a value other than bytes/str for a ``binary`` (default)
        job, is any Python value: stored in ``format`` (None: by the value's type, e.g. a numpy array as NPY, a
        DataFrame as Parquet; else a pickle; see :mod:`scout_persist.formats`), ``.info`` type ``binary``.  A
        DataFrame saved as ``tsv`` gets Ruby's TSV bytes.  A ``file``/``file_array`` result naming files written
        through :attr:`files` points into ``<job>.files/``.  A readable stream is stored raw.  None stores no
        result file (Ruby's ``done`` without a result).  The record goes into ``.info`` on :meth:`done`; the value a
        later load gives back is :attr:`value`.  A value the type cannot hold raises UnsupportedValueError before
        anything is written; a failed write keeps the previous result and puts its ``.info`` back.
        """

        t = type or self.type
        if hasattr(value, "read") and not isinstance(value, (bytes, str)):
            self._encoded = self._save_stream(value, t)
            return dict(self._encoded.record)
        # binary (the default type) holds bytes and text the Ruby way; any other value needs the Python serializer
        if t == "binary" and not isinstance(value, (bytes, bytearray, memoryview, str)) and value is not None:
            t = payload.PICKLE
        in_files = self._in_files(value) if t in ("file", "file_array") else None
        encoded = payload.encode(
            value,
            None if payload.is_pickled(t) else t,
            key=self.key,
            compression=compression,
            hmac_key=hmac_key,
            location=self.location(self.key),
            format=format,
            in_files=in_files,
        )
        if encoded.data is not None:
            with self._writing():
                self._put_result(encoded.data, _sync_for(encoded.record))
        self._encoded = encoded
        return dict(encoded.record)

    @property
    def files(self) -> JobFiles:
        """The job's file outputs (:class:`scout_persist.file_outputs.JobFiles`): staged while the job runs, published
        into ``<job>.files/`` by :meth:`done`, dropped by :meth:`error`."""
        if self._files is None:
            self._files = JobFiles(self.store, self.key)
        return self._files

    def _in_files(self, value: Any) -> str | list[str] | None:
        """Relative names when a ``file``/``file_array`` result names files of this job's ``.files/``."""
        files = self._files
        if files is None or value is None:
            return None
        if isinstance(value, (list, tuple)):
            names = [files.name_of(v) for v in value]
            return names if names and all(n is not None for n in names) else None  # type: ignore[return-value]  # no None
        return files.name_of(value)

    @property
    def value(self) -> Any:
        """The saved value as a load of the stored bytes returns it (hand this on, not the original)."""
        return None if self._encoded is None else self._encoded.value

    def _save_stream(self, stream: Any, scout_type: str) -> Encoded:
        """A returned stream is stored raw, whatever the type (Ruby §7.3); checksummed while it is written."""

        hasher, size = new_checksum(), 0
        with self._writing():
            with self.store.writer(self.key, durable=Sync.DATA) as fh:  # raw bytes Ruby reads (see _sync_for)
                while chunk := stream.read(1 << 20):
                    chunk = chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")
                    hasher.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
                if self.lease is not None:
                    self.lease.check()  # fenced before the streamed result is published
        record = {
            "format": "scout",
            "type": payload.info_type(scout_type),
            "stored_size": size,
            "checksum": f"{checksum_algorithm()}:{hasher.hexdigest()}",
        }
        return payload.Encoded(b"", record, None)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (disk full, quota, network) names the job and keeps the committed job as it was."""
        try:
            yield
        except LeaseLost:
            raise  # another holder took the job over: its job stands, nothing of ours to put back
        except OSError as exc:  # the store's StorageError too
            kept = self._put_back()
            raise StorageError(
                f"writing the result of job {self.location(self.key)!r} failed ({exc}); nothing was published; "
                f"{kept}; free space or fix the store, then rerun"
            ) from exc

    def _previous_info(self) -> dict[str, Any]:
        previous = self._previous if isinstance(self._previous, bytes) else None
        return loads_info(previous, self.info.key) if previous else {}

    def _put_back(self) -> str:
        """Restore the ``.info`` of the job committed before this run; say truthfully what remains."""
        previous = self._previous if isinstance(self._previous, bytes) else None
        if previous is None or self._previous_info().get("status") != "done":
            return "no previous result existed" if previous is None else "the previous (unfinished) job is gone"
        try:
            if self.lease is not None:
                self.lease.put_info(previous)
            else:
                self.store.put(self.info.key, previous)
        except (OSError, LeaseLost) as exc:
            return f"the previous result file is kept, but restoring its .info failed too ({exc})"
        self._restored = True
        return "the previous result and its .info were kept"

    def _put_result(self, data: Any, durable: Sync = Sync.DATA) -> None:
        """Write the result bytes (or parts); with a lease, fenced: refused once another holder took the job.
        ``durable``: what of it is synced (see :func:`_sync_for`)."""

        if payload.streams(data):
            with self.store.writer(self.key, durable=durable) as fh:  # too large to join: a multipart upload is
                for part in data:  # not conditional, so the lease is checked right before it completes
                    fh.write(part)
                if self.lease is not None:
                    self.lease.check()
        elif self.lease is None:
            self.store.put(self.key, payload.joined(data), durable=durable)
        else:
            self.lease.put_result(self.key, payload.joined(data), durable=durable)

    def write_file(self, name: str, data: bytes) -> str:
        """Write ``<job>.files/<name>`` atomically; returns its location.

        The reader's rule holds: UnsafePathError when the name, or a symlinked folder on its way, leads outside the
        store root (the store checks the folder; a link at the name itself is replaced, never written through)."""
        rel = check_key(name, self.location(self.key + ".files"))
        if not rel:
            raise UnsafePathError(f"empty file name for the files directory of job {self.key!r}")
        self.store.put(f"{self.key}.files/{rel}", bytes(data), durable=Sync.DATA)  # Ruby reads them as they are
        return self.location(f"{self.key}.files/{rel}")

    def file(self, name: str) -> str:
        """The location of ``<job>.files/<name>`` (for a task that writes it itself); folders are created.

        UnsafePathError, before any folder is made, when it resolves outside the store root: the reader's rule
        (:meth:`Job.file`), applied to the whole path since the task will open it, a link at the name included
        (also a dangling one: the task would create its target)."""
        rel = check_key(name, self.location(self.key + ".files"))
        if not rel:
            raise UnsafePathError(f"empty file name for the files directory of job {self.key!r}")
        key = f"{self.key}.files/{rel}"
        loc = self.location(key)
        if self.store.capabilities.local_paths:
            full = self.store.safe_path(key, writing=True)  # a dangling link resolves to the file it would create
            os.makedirs(os.path.dirname(full), exist_ok=True)
        return loc

    def done(self, **extra: Any) -> Job:
        """Record success (after :meth:`save`): the payload record goes into ``.info`` with ``status=done``.

        Without a saved result (None, or nothing saved) a stale result file of an earlier run is removed first.
        """

        encoded = self._encoded
        if encoded is None or encoded.data is None:
            self.store.delete(self.key)
        fields: dict[str, Any] = {}
        if encoded is not None:
            fields[payload.RECORD_KEY] = dict(encoded.record)
            ruby = payload.ruby_type(encoded.record)
            if ruby is not None and self.info.get("type") != ruby:
                # Ruby must see how to read the bytes (opaque for pickles and typed formats): same write as done
                self.info.data["type"] = ruby
        manifest = self._commit_files()
        if manifest is not None:
            fields[MANIFEST_KEY] = manifest
        self.info.done(**fields, **{k: self._ruby_value(v) for k, v in extra.items()})
        return Job.at(self.store, self.key)

    def _commit_files(self) -> dict[str, Any] | None:
        """Publish the staged file outputs into ``<job>.files/`` (before ``done``); the manifest for ``.info``.
        A rerun that wrote no files removes the files a previous run of ours published (listed in its ``.info``)."""
        files = self._files
        if files is not None and files.used:
            return files.commit()
        previous = self._previous if isinstance(self._previous, bytes) else None
        if previous is not None and MANIFEST_KEY in loads_info(previous, self.info.key):
            self.files.remove_published()
        return None

    def error(self, exc: BaseException, *, recoverable: bool = True) -> None:
        """Record failure: any result is removed, only ``.info`` remains (Ruby's behaviour); staged file outputs are
        dropped.  After a failed save that put the previous job back, nothing changes (that job stays as it was)."""
        if self._files is not None:
            self._files.discard()
        if self._restored:
            return
        try:
            if self.lease is not None:
                self.lease.check()
            self.store.delete(self.key)
            self.info.error(exc, recoverable=recoverable)
        except LeaseLost as lost:
            # Another holder took the job over: its work stands; this run's failure is the caller's to report.
            log.error("%s; not recording this run's error over it", lost)

    def run(self, fn: Callable[..., Any], *args: Any, type: str | None = None, **kwargs: Any) -> Any:
        """setup (if not done) -> start -> ``fn(*args, **kwargs)`` -> save -> done; error(exc) and re-raise on failure.

        A function returning None leaves no result file (Ruby's ``done`` without a result).  Returns the value as
        a load of the stored result gives it back."""
        if not self._set_up:
            self.setup()
        self.start()
        try:
            self.save(fn(*args, **kwargs), type)
            self.done()
        except BaseException as exc:
            self.error(exc)
            raise
        return self.value
