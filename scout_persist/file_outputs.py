"""A job's file outputs: written by the task into a private stage, published into ``<job>.files/`` when the job
commits, listed with their checksums in the job's ``.info`` (``files``), read back (verified) from any store.

``files = writer.files`` (core) or ``files = prefect_scout.job_files()`` (inside a scout task)::

    files.path("plots/fig.png")      # a local path to write (folders made); the file is published on commit
    files.put("counts.json", data)   # bytes
    with files.open("table.tsv", "w") as fh: ...

Nothing reaches ``<job>.files/`` before the job commits (:meth:`JobWriter.done`), so a run that fails, or is
killed, leaves no partial ``.files/``: its stage is dropped (or, after a kill, left in the stage folder, see below).
What publishing guarantees, per backend:

* **local disk**: the stage is a folder under ``<root>/tmp/scout_persist/files/`` (the same file system as the jobs),
  fsynced, then renamed onto ``<job>.files`` in one ``rename(2)`` (a previous ``.files`` is first renamed away and
  removed after): Ruby's ``step.files_dir`` sees all the new files or none of them.  A kill between the two renames
  leaves the job without ``.files`` and with an ``.info`` that is not ``done`` (it is recomputed).
* **object stores (S3, ...)**: no atomic multi-object publish exists.  The stage is a local temporary folder; on
  commit each file is uploaded (one PUT, or a multipart upload that is completed only when the file is whole), then
  files of a previous run that this run did not write are deleted, then the ``.info`` says ``done`` with the
  manifest.  A kill during the uploads leaves some of the new objects next to old ones, under an ``.info`` that is
  not ``done``: readers of done jobs never see that state, and the next run replaces it.  ``Job.files()`` of a done
  job lists its manifest, not whatever the prefix holds.

Stages of killed local runs stay under ``<root>/tmp/scout_persist/files/<host>.<pid>.<random>``; :func:`clean_stages`
removes those whose process is gone (same host) or that are older than a week (``scout-persist gc`` calls it).
"""

from __future__ import annotations

import errno
import io
import mmap
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from typing import IO, Any

from .checksums import checksum, checksum_matches
from .errors import CorruptPayloadError, InvalidInputError, UnsafePathError
from .info import hostname
from .process import pid_alive
from .store import Store, check_key

STAGE_DIR = "tmp/scout_persist/files"
# the .info key listing the published files: {name: {"file": name, "size", "checksum"}} ("file": the convention of
# checksum records that describe a file of <job>.files/, read by scout-persist verify)
MANIFEST_KEY = "files"
STAGE_MAX_AGE = 7 * 86400.0  # a stage of another host is removed only when untouched this long


def _stage_prefix() -> str:

    return f"{hostname().replace('.', '_')}.{os.getpid()}."


def _file_checksum(path: str) -> tuple[int, str]:
    """``(size, checksum)`` of a local file, hashed through a memory map (no copy), after an fsync."""

    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return 0, checksum(b"")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return size, checksum(mapped)


class JobFiles:
    """The files a running job writes: a stage, published into ``<job>.files/`` by :meth:`commit`."""

    def __init__(self, store: Store, job_key: str) -> None:
        self.store = store
        self.job_key = check_key(job_key, store.url)
        self.files_key = self.job_key + ".files"
        self._stage: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"JobFiles({self.store.where(self.files_key)!r})"

    # -- where things go ---------------------------------------------------------------------
    @property
    def stage(self) -> str:
        """The local folder the files are written to until the job commits (made on first use)."""
        if self._closed:
            raise InvalidInputError(
                f"the files of job {self.store.where(self.job_key)!r} were already committed or discarded; write "
                "files while the task runs, before it returns"
            )
        if self._stage is None:
            if self.store.is_local:
                base = self.store.write_path(f"{STAGE_DIR}/x", "staging files in").rsplit("/", 1)[0]
                os.makedirs(base, exist_ok=True)
                self._stage = tempfile.mkdtemp(prefix=_stage_prefix(), dir=base)
            else:
                self._stage = tempfile.mkdtemp(prefix="scout-persist-files.")
        return self._stage

    def _rel(self, name: str | os.PathLike[str]) -> str:
        rel = check_key(os.fspath(name), self.store.where(self.files_key))
        if not rel:
            raise UnsafePathError(f"empty file name for the files of job {self.store.where(self.job_key)!r}")
        return rel

    def location(self, name: str) -> str:
        """Where ``name`` will be once the job is committed: ``<job>.files/<name>`` (a local path or a URL)."""
        return self.store.where(f"{self.files_key}/{self._rel(name)}")

    def path(self, name: str | os.PathLike[str]) -> str:
        """A local path to write ``name`` to (its folders made); published into ``<job>.files/`` on commit."""
        rel = self._rel(name)
        full = os.path.join(self.stage, *rel.split("/"))
        stage = os.path.realpath(self.stage)
        folder = os.path.realpath(os.path.dirname(full))
        if folder != stage and not folder.startswith(stage + os.sep):
            raise UnsafePathError(
                f"file name {name!r} leads outside the files of job {self.store.where(self.job_key)!r}"
            )
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if os.path.islink(full):
            os.unlink(full)  # never write through a link the task made
        return full

    def put(self, name: str, data: bytes | bytearray | memoryview) -> str:
        """Write ``data`` as ``name``; returns where it will be once committed."""
        with open(self.path(name), "wb") as fh:
            fh.write(data)
        return self.location(name)

    def open(self, name: str, mode: str = "wb", **kwargs: Any) -> IO[Any]:
        """Open ``name`` for writing (``"wb"``, ``"w"``, ``"ab"``, ``"xb"``, ...; text modes take ``encoding=``)."""
        if not any(c in mode for c in "wax+"):
            raise InvalidInputError(
                f"files.open({name!r}, {mode!r}): the files of a running job are for writing ('wb', 'w', 'ab'); read "
                "committed files with Job(path).open_file(name)"
            )
        return open(self.path(name), mode, **kwargs)

    def names(self) -> list[str]:
        """The files written so far, relative names, sorted."""
        if self._stage is None or not os.path.isdir(self._stage):
            return []
        out = []
        for dirpath, _dirs, filenames in os.walk(self._stage):
            for f in filenames:
                full = os.path.join(dirpath, f)
                if not os.path.islink(full):
                    out.append(os.path.relpath(full, self._stage).replace(os.sep, "/"))
        return sorted(out)

    @property
    def used(self) -> bool:
        return self._stage is not None

    def name_of(self, value: Any) -> str | None:
        """The relative name of a file of this job given as its staged path or its final location (None: not one)."""
        if not isinstance(value, (str, os.PathLike)):
            return None
        text = os.fspath(value)
        final = self.store.where(self.files_key) + "/"
        if text.startswith(final):
            return check_key(text[len(final) :]) or None
        if self._stage is not None:
            stage = os.path.realpath(self._stage) + os.sep
            real = os.path.realpath(text) if "://" not in text else text
            if real.startswith(stage):
                return real[len(stage) :].replace(os.sep, "/")
        return None

    # -- commit --------------------------------------------------------------------------------
    def manifest(self) -> dict[str, dict[str, Any]]:
        """``{name: {"file", "size", "checksum"}}`` of the staged files (fsynced as they are hashed)."""
        out = {}
        for name in self.names():
            size, digest = _file_checksum(os.path.join(self._stage or "", *name.split("/")))
            out[name] = {"file": name, "size": size, "checksum": digest}
        return out

    def commit(self) -> dict[str, dict[str, Any]] | None:
        """Publish the staged files into ``<job>.files/``; returns the manifest for ``.info`` (None: no stage)."""
        if self._stage is None:
            self._closed = True
            return None
        manifest = self.manifest()
        if self.store.is_local:
            self._publish_local()
        else:
            self._publish_objects(manifest)
        self._closed = True
        self._stage = None
        return manifest

    def _publish_local(self) -> None:
        stage = self._stage or ""
        final = self.store.write_path(self.files_key, "publishing the files of")
        os.makedirs(os.path.dirname(final), exist_ok=True)
        old = None
        if os.path.lexists(final):
            old = f"{os.path.dirname(stage)}/{_stage_prefix()}{uuid.uuid4().hex}.replaced"
            try:
                os.rename(final, old)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                old = f"{os.path.dirname(final)}/.tmp_mv.{uuid.uuid4().hex}.replaced"
                os.rename(final, old)
        try:
            os.rename(stage, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # the stage folder is on another file system (a linked tmp/): copy next to the job, then rename
            near = f"{os.path.dirname(final)}/.tmp_mv.{uuid.uuid4().hex}.files"
            shutil.copytree(stage, near, symlinks=True)
            os.rename(near, final)
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None:
            if os.path.islink(old) or not os.path.isdir(old):
                os.unlink(old)
            else:
                shutil.rmtree(old, ignore_errors=True)

    def _publish_objects(self, manifest: Mapping[str, Any]) -> None:
        stage = self._stage or ""
        before = set(self.store.list(self.files_key)) if self.store.exists(self.files_key) else set()
        for name in manifest:
            key = f"{self.files_key}/{name}"
            with open(os.path.join(stage, *name.split("/")), "rb") as src, self.store.writer(key) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            before.discard(key)
        for stale in sorted(before):
            self.store.delete(stale)
        shutil.rmtree(stage, ignore_errors=True)

    def remove_published(self) -> None:
        """Remove ``<job>.files/`` (a rerun that wrote no files replaces the files of the previous run)."""
        if self.store.exists(self.files_key):
            if self.store.is_local and os.path.islink(self.store.path(self.files_key)):
                self.store.delete(self.files_key)
            else:
                self.store.delete(self.files_key, recursive=True)

    def discard(self) -> None:
        """Drop the stage (the run failed): nothing is published."""
        stage, self._stage = self._stage, None
        self._closed = True
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


# -- reading -------------------------------------------------------------------------------------
def manifest_of(info: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The files manifest of a job's ``.info`` (None for jobs without one, such as Ruby's)."""
    found = info.get(MANIFEST_KEY) if isinstance(info, Mapping) else None
    return dict(found) if isinstance(found, Mapping) else None


def verified_open(store: Store, key: str, entry: Mapping[str, Any] | None, where: str) -> IO[bytes]:
    """A reader of the file at ``key``; with a manifest ``entry`` its size and checksum are checked first
    (CorruptPayloadError when they differ).  Local files are checked through a map of the very file returned."""
    if entry is None:
        return store.open(key)
    if store.is_local:
        fh = store.open(key)
        try:
            size = os.fstat(fh.fileno()).st_size
            _check(size, entry, where)
            if size:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    ok = checksum_matches(str(entry.get("checksum")), mapped)
            else:
                ok = checksum_matches(str(entry.get("checksum")), b"")
            if not ok:
                raise CorruptPayloadError(_mismatch(where, entry))
        except BaseException:
            fh.close()
            raise
        return fh
    data = store.get(key)
    _check(len(data), entry, where)
    if not checksum_matches(str(entry.get("checksum")), data):
        raise CorruptPayloadError(_mismatch(where, entry))
    return io.BytesIO(data)


def _check(size: int, entry: Mapping[str, Any], where: str) -> None:
    if entry.get("size") is not None and entry["size"] != size:
        raise CorruptPayloadError(
            f"{where} holds {size} bytes but the job's .info lists {entry['size']}: truncated, damaged or replaced"
        )


def _mismatch(where: str, entry: Mapping[str, Any]) -> str:
    return f"{where} does not match the checksum the job's .info lists ({entry.get('checksum')}): damaged or replaced"


def clean_stages(store: Store, older_than: float = STAGE_MAX_AGE) -> list[str]:
    """Remove file stages left by killed local runs: those of a process of this host that is gone, and any untouched
    for ``older_than`` seconds; returns their names."""
    if not store.is_local:
        return []

    base = store.path(STAGE_DIR)
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return []
    here, now, removed = hostname().replace(".", "_"), time.time(), []
    for e in entries:
        host, _, rest = e.name.partition(".")
        pid_text = rest.split(".", 1)[0]
        try:
            age = now - e.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        gone = host == here and pid_text.isdigit() and not pid_alive(int(pid_text))
        if not gone and age < older_than:
            continue
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)
        else:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                continue
        removed.append(e.name)
    return removed


__all__ = ["JobFiles", "MANIFEST_KEY", "clean_stages", "manifest_of", "verified_open"]
