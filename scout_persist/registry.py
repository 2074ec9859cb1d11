"""A W&B-style artifact registry on any store: named artifacts, immutable versions, movable aliases.

Layout under the registry prefix (default ``artifacts/`` of the store root)::

    _blobs/sha256/<ab>/<sha256>             file contents, content-addressed (shared, deduplicated)
    <name>/versions/v<N>.json               the manifest of version N: files (name, size, sha256), metadata
    <name>/aliases/<alias>.json             a movable pointer to a version (``latest`` is never stored)
    <name>/used_by/v<N>/<run id>.json       lineage: a recorded flow run read version N (``use_artifact``)

Logging uploads the blobs first, then publishes the manifest with an exclusive create of ``v<N>.json``: the
create both allocates the number and commits the version, so concurrent loggers never share a number and
a reader never sees a version whose files are missing. ``latest`` is always the highest version.

Publishing is idempotent: each manifest carries a fresh random ``token``; when a create reports "already exists"
(or fails ambiguously, e.g. S3 applied the PUT but the reply was a 500 or a dropped connection), the entry is read
and a manifest holding our own token is our success, so a retried publish yields one version, not two. Content
identical to the latest version (same files, type and metadata) returns that version instead of a new one, unless
``force=True``. A removed version leaves a ``v<N>.removed`` marker so its number is never given again.

Lineage: a version logged inside a recorded flow run (:mod:`scout_persist.runs`) names that run in its manifest
(``run``), and :meth:`Registry.use_artifact` inside one records the consuming run under ``used_by``; both runs' records
list the versions too.

File names in a manifest are clean relative '/'-paths; one that could escape (``../x``, absolute, NUL, ``\\``)
fails :meth:`Registry.verify`, and :meth:`ArtifactVersion.download` refuses it, and any symlink inside the
destination that leads out of it, before writing anything there.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import random
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

from .errors import (
    CorruptPayloadError,
    InvalidInputError,
    KeyNotFound,
    ScoutPersistError,
    StorageError,
    UnsafePathError,
)
from .job import Job
from .run_context import current_run
from .store import RETRIES, RETRY_BASE_DELAY, Store, check_key, is_transient

MANIFEST_FORMAT = "scout-persist-artifact/1"
BLOB_DIR = "_blobs/sha256"
CHUNK = 1 << 20
LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")
_VERSION_FILE = re.compile(r"^v(0|[1-9][0-9]*)\.json$")
_REMOVED_FILE = re.compile(r"^v(0|[1-9][0-9]*)\.removed$")
USED_BY = "used_by"  # <name>/used_by/<version>/<run id>.json: a recorded flow run read that version


# -- names ------------------------------------------------------------------------------------------------------
def check_artifact_name(name: Any) -> str:
    """Return ``name`` if it can name an artifact, else raise a ScoutPersistError saying why and what to use."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"artifact name {name!r} must be a non-empty str such as 'baked-muffins'")
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        raise UnsafePathError(
            f"artifact name {name!r} could leave the registry folder: names are one path segment without '/', "
            "'\\\\' or '..'; use '-' or '_' instead (e.g. 'baking-muffins')"
        )
    if ":" in name:
        raise InvalidInputError(
            f"artifact name {name!r} contains ':', which separates a name from its version or alias "
            "('name:v3', 'name:latest'); drop the ':' from the name"
        )
    if not _NAME.match(name):
        raise InvalidInputError(
            f"artifact name {name!r} is not allowed: start with a letter or digit, then letters, digits, "
            "'_', '-' or '.', at most 128 characters"
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or _VERSION.match(alias) or ".." in alias:
        raise InvalidInputError(
            f"alias {alias!r} is not allowed: start with a letter, then letters, digits, '_', '-' or '.', "
            "no ':' or '/', and not a version number like 'v3' (e.g. 'production')"
        )
    return alias


def parse_ref(spec: str) -> tuple[str, str]:
    """``"name:v3"`` → ``("name", "v3")``; ``"name:production"``; ``"name"`` means ``name:latest``."""
    if not isinstance(spec, str):
        raise InvalidInputError(f"artifact reference {spec!r} must be a str such as 'name:v3' or 'name:latest'")
    name, sep, ref = spec.partition(":")
    if sep and (not ref or ":" in ref):
        raise InvalidInputError(
            f"artifact reference {spec!r} is malformed: write 'name', 'name:v<N>' or 'name:<alias>' (one ':')"
        )
    ref = ref or LATEST
    try:
        check_artifact_name(name)
        if not _VERSION.match(ref) and ref != LATEST:
            if re.match(r"^v\d+$", ref):
                raise InvalidInputError(f"version {ref!r} has leading zeros; write 'v{int(ref[1:])}'")
            check_alias(ref)
    except (InvalidInputError, UnsafePathError) as exc:
        raise type(exc)(f"artifact reference {spec!r}: {exc}") from exc
    return name, ref


def _file_name_problem(name: Any) -> tuple[type[ScoutPersistError], str] | None:
    """Why ``name`` cannot name a file of an artifact (error class, reason); None for a clean relative path."""
    if not isinstance(name, str) or not name:
        return InvalidInputError, "it is not a non-empty str"
    if "\x00" in name:
        return UnsafePathError, "it contains a NUL byte"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return UnsafePathError, "it is absolute; file names are relative to the artifact"
    if "\\" in name:
        return UnsafePathError, "it contains '\\', a path separator on Windows; use '/' between folders"
    parts = name.split("/")
    if ".." in parts:
        return UnsafePathError, "it has '..' segments and would escape the download folder"
    if any(p in ("", ".") for p in parts):
        return InvalidInputError, "it has empty or '.' segments; write a clean relative path such as 'data/x.csv'"
    return None


def check_file_name(name: Any, where: str = "") -> str:
    """Return ``name`` if it is a clean relative '/'-path inside an artifact, else raise saying why and what to use."""
    problem = _file_name_problem(name)
    if problem is not None:
        cls, reason = problem
        raise cls(f"artifact file name {name!r}{' ' + where if where else ''} is refused: {reason}")
    clean: str = name  # a str: _file_name_problem checked it
    return clean


# -- sources ------------------------------------------------------------------------------------------------------
@dataclass
class Source:
    """One file to log: its name inside the artifact and how to open its bytes."""

    name: str
    open: Callable[[], IO[bytes]]
    where: str


def _opener(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def _file_sources(path: str, prefix: str = "") -> list[Source]:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
        return [Source(prefix + os.path.basename(path), _opener(path), path)]
    if not os.path.isdir(path):
        raise InvalidInputError(f"artifact source {path!r} does not exist; give existing files or folders")
    out: list[Source] = []
    seen_dirs = {os.path.realpath(path)}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
        for d in list(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen_dirs or not (real + "/").startswith(os.path.realpath(path) + "/"):
                dirnames.remove(d)  # loops and links leaving the folder are not followed
            else:
                seen_dirs.add(real)
        for f in filenames:
            full = os.path.join(dirpath, f)
            if not os.path.isfile(full):
                raise UnsafePathError(f"{full!r} is a broken symlink; fix or remove it before logging {path!r}")
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            out.append(Source(prefix + rel, _opener(full), full))
    return out


def _bytes_source(name: str, data: bytes) -> Source:

    return Source(name, lambda: io.BytesIO(data), f"<{len(data)} bytes for {name}>")


def _job_sources(job: Any) -> list[Source]:
    base = job.key.rsplit("/", 1)[-1]
    store = job.store
    out: list[Source] = []
    for suffix in ("", ".gz", ".bgz", ".zip"):
        key = job.key + suffix
        if store.exists(key) and not store.isdir(key):
            out.append(Source(base + suffix, partial(store.open, key), job.location(key)))
            break
    if store.exists(job.info_key):
        out.append(Source(base + ".info", lambda: store.open(job.info_key), job.location(job.info_key)))
    for rel in job.files():
        key = f"{job.files_key}/{rel}"
        out.append(Source(f"{base}.files/{rel}", partial(store.open, key), job.location(key)))
    return out


def _is_job(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("store", "key", "info_key", "files_key", "files", "info"))


def collect_sources(files: Any) -> list[Source]:
    """Normalise what log_artifact accepts: a path, a list of paths, ``{name: path | bytes}``, or a Job."""
    if _is_job(files):
        sources = _job_sources(files)
    elif isinstance(files, (str, os.PathLike)):
        sources = _file_sources(os.fspath(files))
    elif isinstance(files, Mapping):
        sources = []
        for name, value in files.items():
            if isinstance(value, (bytes, bytearray, memoryview)):
                sources.append(_bytes_source(str(name), bytes(value)))
            elif isinstance(value, (str, os.PathLike)):
                found = _file_sources(os.fspath(value), prefix=str(name).rstrip("/") + "/")
                if os.path.isfile(os.fspath(value)):
                    found = [Source(str(name), found[0].open, found[0].where)]
                sources.extend(found)
            else:
                raise InvalidInputError(
                    f"artifact file {name!r} has a {type(value).__name__} value; give bytes or a path"
                )
    elif isinstance(files, (list, tuple)):
        sources = [s for item in files for s in collect_sources(item)]
    else:
        raise InvalidInputError(
            f"cannot log a {type(files).__name__} as an artifact: give a path, a list of paths, "
            "a dict of name -> bytes/path, or a scout_persist.Job"
        )
    names: set[str] = set()
    for s in sources:
        check_file_name(s.name, f"(from {s.where!r})")
        if s.name in names:
            raise InvalidInputError(f"artifact file name {s.name!r} appears twice; rename one of the sources")
        names.add(s.name)
    return sources


def _hash_stream(fh: IO[bytes]) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    while chunk := fh.read(CHUNK):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def files_digest(files: Iterable[Mapping[str, Any]]) -> str:
    """The digest of a version's content: sha256 over sorted ``name NUL sha256`` lines."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f["name"]):
        h.update(f"{f['name']}\0{f['sha256']}\n".encode())
    return h.hexdigest()


# -- reading ------------------------------------------------------------------------------------------------------
@dataclass
class Verification:
    """The outcome of checking one version against its manifest."""

    ref: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> Verification:
        if self.problems:
            raise CorruptPayloadError(f"artifact {self.ref} fails verification: " + "; ".join(self.problems))
        return self


class ArtifactVersion:
    """One immutable version: ``.name``, ``.version``, ``.manifest``, ``.metadata``, ``.files()``, ``.read()``..."""

    def __init__(self, registry: Registry, name: str, version: str, manifest: dict[str, Any]) -> None:
        self.registry, self.name, self.version, self.manifest = registry, name, version, manifest

    def __repr__(self) -> str:
        return f"ArtifactVersion({self.name}:{self.version}, {len(self.manifest['files'])} files)"

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def number(self) -> int:
        return int(self.version[1:])

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.manifest.get("metadata") or {}
        return metadata

    @property
    def digest(self) -> str:
        digest: str = self.manifest["digest"]
        return digest

    def files(self) -> list[str]:
        return [f["name"] for f in self.manifest["files"]]

    def entry(self, name: str) -> dict[str, Any]:
        for f in self.manifest["files"]:
            if f["name"] == name:
                found: dict[str, Any] = f
                return found
        raise KeyNotFound(f"artifact {self.ref} has no file {name!r}; its files: {', '.join(self.files()) or 'none'}")

    def open(self, name: str) -> IO[bytes]:
        """A streaming reader of file ``name`` (not verified: use :meth:`read` or :meth:`download` for that)."""
        return self.registry.store.open(self.registry.blob_key(self.entry(name)["sha256"]))

    def read(self, name: str) -> bytes:
        """The bytes of file ``name``, checked against the manifest's size and sha256."""
        e = self.entry(name)
        data = self.registry.store.get(self.registry.blob_key(e["sha256"]))
        if len(data) != e["size"] or hashlib.sha256(data).hexdigest() != e["sha256"]:
            raise CorruptPayloadError(
                f"file {name!r} of artifact {self.ref} does not match its manifest (size/sha256); not returned"
            )
        return data

    def download(self, dest: str | os.PathLike[str]) -> str:
        """Write every file under ``dest`` with its artifact name, verifying each; returns ``dest``.

        Nothing lands outside ``dest``: every name is checked before the first write (UnsafePathError for
        ``../x``, absolute names, NUL), and a folder that resolves through a symlink inside ``dest`` to somewhere
        else is refused. ``dest`` itself may be a link (it is the caller's choice). Each file is written under a
        fresh temporary name and renamed, so a link planted at a file's name is replaced, never written through."""

        dest = os.path.abspath(os.fspath(dest))
        entries = self.manifest["files"]
        for e in entries:
            check_file_name(e.get("name") if isinstance(e, dict) else e, f"in the manifest of artifact {self.ref}")
        real_dest = os.path.realpath(dest)

        def folder_of(e: dict[str, Any]) -> str:
            folder = os.path.join(dest, *e["name"].split("/")[:-1])
            real = os.path.realpath(folder)  # folders still missing resolve as far as they exist
            if real != real_dest and not real.startswith(real_dest.rstrip(os.sep) + os.sep):
                raise UnsafePathError(
                    f"downloading {e['name']!r} of artifact {self.ref} refused: {folder!r} resolves through a "
                    f"symlink to {real!r}, outside the destination {real_dest!r}; links inside the destination may "
                    "not lead out of it: remove the link or download into an empty folder"
                )
            return folder

        for e in entries:  # all before the first write; again just before each (the folder may have changed)
            folder_of(e)
        os.makedirs(dest, exist_ok=True)
        for e in entries:
            folder = folder_of(e)
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, e["name"].split("/")[-1])
            h, n = hashlib.sha256(), 0
            fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
            try:
                with self.registry.store.open(self.registry.blob_key(e["sha256"])) as src, os.fdopen(fd, "wb") as out:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        n += len(chunk)
                        out.write(chunk)
                if n != e["size"] or h.hexdigest() != e["sha256"]:
                    raise CorruptPayloadError(
                        f"file {e['name']!r} of artifact {self.ref} does not match its manifest; not written"
                    )
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
        return dest

    def verify(self) -> Verification:
        return self.registry.verify(self.ref)


# -- the registry -----------------------------------------------------------------------------------------------------
class Registry:
    """Artifacts under ``prefix`` of a store (any fsspec URL); no service needed."""

    def __init__(self, store: Store | str | None = None, prefix: str = "artifacts") -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.prefix = check_key(prefix, self.store.url)

    def __repr__(self) -> str:
        return f"Registry({self.store.url!r}, prefix={self.prefix!r})"

    # keys
    def blob_key(self, sha: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", str(sha)):
            raise CorruptPayloadError(f"manifest names a blob {sha!r} that is not a sha256 hex digest")
        return f"{self.prefix}/{BLOB_DIR}/{sha[:2]}/{sha}"

    def _dir(self, name: str) -> str:
        return f"{self.prefix}/{check_artifact_name(name)}"

    def _manifest_key(self, name: str, version: str) -> str:
        return f"{self._dir(name)}/versions/{version}.json"

    def _alias_key(self, name: str, alias: str) -> str:
        return f"{self._dir(name)}/aliases/{alias}.json"

    def _ls(self, key: str) -> list[str]:
        try:
            self.store.forget(key)  # object-store listings may be cached
        except Exception:  # noqa: BLE001 - a backend without a cache has nothing to invalidate
            pass
        return self.store.ls(key)

    # listing
    def artifacts(self) -> list[str]:
        """Names of every artifact with at least one version."""
        return [n for n in self._ls(self.prefix) if _NAME.match(n) and self.versions(n)]

    def versions(self, name: str) -> list[str]:
        """``["v0", "v1", ...]`` in numeric order."""
        return self._listing(name)[0]

    def aliases(self, name: str) -> dict[str, str]:
        """Alias → version, including ``latest`` (the highest version) when there is one."""
        out: dict[str, str] = {}
        for n in self._ls(f"{self._dir(name)}/aliases"):
            if n.endswith(".json") and _ALIAS.match(n[:-5]):
                try:
                    out[n[:-5]] = self._read_json(f"{self._dir(name)}/aliases/{n}")["version"]
                except (KeyNotFound, KeyError):
                    continue
        versions = self.versions(name)
        if versions:
            out[LATEST] = versions[-1]
        return dict(sorted(out.items()))

    # writing
    def log_artifact(
        self,
        name: str,
        files_or_job: Any,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        type: str | None = None,
        *,
        force: bool = False,
    ) -> ArtifactVersion:
        """Publish a new version of ``name`` holding ``files_or_job``; returns it (``.version`` is ``v<N>``).

        When the files (names and bytes), ``type`` and ``metadata`` equal those of the latest version, that version
        is returned (with ``aliases`` applied to it) and nothing new is published, unless ``force=True``."""
        check_artifact_name(name)
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        for a in aliases:
            if a != LATEST:
                check_alias(a)
        meta = dict(metadata or {})
        if _is_job(files_or_job):
            meta.setdefault("scout_job", job_metadata(files_or_job))
            type = type or "scout-job"
        try:
            meta = json.loads(json.dumps(meta))  # as a reader will see it (tuples become lists...)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"artifact metadata for {name!r} must be JSON-serialisable: {exc}") from exc
        run = current_run()  # lineage: the flow run logging this version (None outside a recorded run)
        sources = collect_sources(files_or_job)
        hashed = [(s, *self._hash(s)) for s in sources]
        entries: list[dict[str, Any]] = sorted(
            ({"name": s.name, "size": size, "sha256": sha} for s, sha, size in hashed), key=lambda e: e["name"]
        )
        digest = files_digest(entries)
        for s, sha, size in hashed:
            self._store_blob(s, sha, size)  # a HEAD each when the content is already there
        token = uuid.uuid4().hex
        # One listing gives both the latest (to compare with) and the number to create: any version published
        # after it makes our create meet that version, which is then compared in turn.
        versions, number = self._listing(name)
        if not force and versions:
            same = self._same_as(name, versions[-1], digest, type, meta)
            if same is not None:
                self._apply_aliases(name, aliases, same.version)
                _note_logged(run, same, new=False)
                return same
        while True:
            version = f"v{number}"
            manifest = {
                "format": MANIFEST_FORMAT,
                "artifact": name,
                "version": version,
                "type": type,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "created_by": {"host": socket.gethostname(), "pid": os.getpid()},
                "token": token,  # tells our own publish from another logger's when a reply was lost
                **({"run": {"run_id": run.run_id, "workflow": run.workflow}} if run is not None else {}),
                "metadata": meta,
                "files": entries,
                "digest": digest,
            }
            data = json.dumps(manifest, indent=1, sort_keys=False).encode("utf-8")
            try:
                seen = self._publish(self._manifest_key(name, version), data, token)
            except OSError as exc:
                raise StorageError(
                    f"publishing artifact {name}:{version} failed ({exc}); it may or may not have landed: log it "
                    "again (the same content then returns the version if it did)"
                ) from exc
            if seen is None:
                break
            if not force and _same_content(seen, digest, type, meta):
                # another logger published the same content at this number meanwhile: that is our version too
                self._apply_aliases(name, aliases, version)
                _note_logged(run, ArtifactVersion(self, name, version, seen), new=False)
                return ArtifactVersion(self, name, version, seen)
            versions, after = self._listing(name)
            if not force and after > number + 1 and versions:
                same = self._same_as(name, versions[-1], digest, type, meta)  # more were published: the newest
                if same is not None:
                    self._apply_aliases(name, aliases, same.version)
                    _note_logged(run, same, new=False)
                    return same
            number = max(number + 1, after)
        self._apply_aliases(name, aliases, version)
        published = ArtifactVersion(self, name, version, manifest)
        _note_logged(run, published, new=True)
        return published

    def _publish(self, key: str, data: bytes, token: str) -> dict[str, Any] | None:
        """Create manifest ``key`` exclusively; None when it is ours (created now, or earlier by this very publish
        whose reply was lost), else the manifest another logger holds there."""
        for attempt in range(RETRIES):
            try:
                created = self.store.create(key, data)
            except OSError as exc:
                # ambiguous: the write may have been applied. The next attempt's create, or the read of what it
                # finds, decides; the token makes that safe.
                if attempt == RETRIES - 1 or not is_transient(exc):
                    raise
                time.sleep(RETRY_BASE_DELAY * (2**attempt) * (0.5 + random.random()))
                continue
            if created:
                return None
            try:
                seen = self._read_json(key)
            except (KeyNotFound, CorruptPayloadError):
                return {}  # removed since, or unreadable: not a version we can call ours; take the next number
            return None if seen.get("token") == token else seen
        raise AssertionError("unreachable")  # pragma: no cover

    def _same_as(
        self, name: str, version: str, digest: str, type: str | None, meta: dict[str, Any]
    ) -> ArtifactVersion | None:
        """Version ``version`` when it holds this content, else None."""
        try:
            found = self.resolve(f"{name}:{version}")
        except (KeyNotFound, CorruptPayloadError):
            return None  # removed or unreadable meanwhile: publish anew
        return found if _same_content(found.manifest, digest, type, meta) else None

    def _apply_aliases(self, name: str, aliases: Iterable[str], version: str) -> None:
        for a in aliases:
            if a != LATEST:
                self.set_alias(name, a, version)

    def log_job(
        self,
        name: str,
        job: Any,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> ArtifactVersion:
        """Publish a done Scout job (result, ``.info``, ``.files/``; a Job, a JobWriter or a job path) whose metadata
        records its path and signature. Logging the same job again returns its version unless ``force=True``."""
        if not _is_job(job):
            job = Job.at(job.store, job.key) if hasattr(job, "store") and hasattr(job, "key") else Job(job)
        if job.recorded_status != "done":
            raise InvalidInputError(
                f"job {job.path!r} has status {job.status!r}; only done jobs can be published as artifacts "
                "(run it to completion first)"
            )
        return self.log_artifact(name, job, aliases=aliases, metadata=metadata, force=force)

    def _listing(self, name: str) -> tuple[list[str], int]:
        """(versions in numeric order, the next free number): removed numbers are never given again."""
        names = self._ls(f"{self._dir(name)}/versions")
        live = sorted(int(m.group(1)) for n in names if (m := _VERSION_FILE.match(n)))
        removed = [int(m.group(1)) for n in names if (m := _REMOVED_FILE.match(n))]
        return [f"v{n}" for n in live], max(live + removed, default=-1) + 1

    def _hash(self, source: Source) -> tuple[str, int]:
        with source.open() as fh:
            return _hash_stream(fh)

    def _store_blob(self, source: Source, sha: str, size: int) -> None:
        key = self.blob_key(sha)
        if self.store.exists(key) and self.store.size(key) == size:
            return  # content-addressed: already there
        h = hashlib.sha256()
        with source.open() as fh, self.store.writer(key) as out:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha:
            self.store.delete(key)
            raise InvalidInputError(
                f"{source.where!r} changed while it was being logged; log it again once it is stable"
            )

    def remove_version(self, name: str, version: str, *, delete_aliases: bool = False, dry_run: bool = False) -> None:
        """Remove version ``vN`` of ``name``; its number is never given again. Refused while user aliases point at
        it unless ``delete_aliases=True``. Content blobs stay (shared with other versions, content-addressed).
        ``dry_run``: every check, nothing removed."""
        if not isinstance(version, str) or not _VERSION.match(version):
            raise InvalidInputError(
                f"artifact version {version!r} is not a version number; remove one version at a time: 'v3' "
                "(resolve an alias first, e.g. with 'scout-persist artifacts show NAME:ALIAS')"
            )
        av = self.resolve(f"{name}:{version}")
        pointing = sorted(a for a, v in self.aliases(name).items() if v == version and a != LATEST)
        if pointing and not delete_aliases:
            raise InvalidInputError(
                f"artifact {av.ref} still has the aliases {', '.join(pointing)}; move them to another version "
                f"first (scout-persist artifacts alias {name}:vN ALIAS) or remove them with the version "
                "(delete_aliases=True, --delete-aliases)"
            )
        if dry_run:
            return
        # The marker first: a logger that no longer sees vN.json must already see vN.removed, or it could reuse N.
        marker = {
            "version": version,
            "removed": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "by": {"host": socket.gethostname(), "pid": os.getpid()},
            "digest": av.digest,
        }
        self.store.put(f"{self._dir(name)}/versions/{version}.removed", json.dumps(marker).encode("utf-8"))
        self.store.delete(self._manifest_key(name, version))
        for a in pointing:
            self.remove_alias(name, a)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        check_alias(alias)
        if alias == LATEST:
            raise InvalidInputError("alias 'latest' always follows the newest version; it cannot be set")
        version = self.resolve(f"{name}:{version}").version
        record = {"alias": alias, "version": version, "time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        self.store.put(self._alias_key(name, alias), json.dumps(record).encode("utf-8"))

    def remove_alias(self, name: str, alias: str) -> None:
        check_alias(alias)
        self.store.delete(self._alias_key(name, alias))

    # reading
    def _read_json(self, key: str) -> dict[str, Any]:
        raw = self.store.get(key)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise CorruptPayloadError(f"{self.store.url}/{key} is not valid JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise CorruptPayloadError(f"{self.store.url}/{key} does not hold a JSON object")
        return value

    def resolve(self, spec: str) -> ArtifactVersion:
        """The version that ``"name"``, ``"name:v3"``, ``"name:latest"`` or ``"name:<alias>"`` names."""
        name, ref = parse_ref(spec)
        if ref == LATEST:
            versions = self.versions(name)
            if not versions:
                raise KeyNotFound(f"artifact {name!r} has no versions in {self.store.url}/{self.prefix}")
            version = versions[-1]
        elif _VERSION.match(ref):
            version = ref
        else:
            try:
                version = self._read_json(self._alias_key(name, ref))["version"]
            except KeyNotFound as exc:
                known = ", ".join(self.aliases(name)) or "none"
                raise KeyNotFound(f"artifact {name!r} has no alias {ref!r}; its aliases: {known}") from exc
        try:
            manifest = self._read_json(self._manifest_key(name, version))
        except KeyNotFound as exc:
            known = ", ".join(self.versions(name)) or "none"
            gone = " (it was removed)" if self.store.exists(f"{self._dir(name)}/versions/{version}.removed") else ""
            raise KeyNotFound(f"artifact {name!r} has no version {version!r}{gone}; its versions: {known}") from exc
        for k in ("files", "digest", "version"):
            if k not in manifest:
                raise CorruptPayloadError(
                    f"manifest of {name}:{version} lacks {k!r}; it was not written by this registry"
                )
        return ArtifactVersion(self, name, version, manifest)

    def use_artifact(self, spec: str) -> ArtifactVersion:
        """:meth:`resolve` for a consumer: inside a recorded flow run, the run and the version record each other."""
        found = self.resolve(spec)
        run = current_run()
        if run is not None:
            self._record_use(found, run)
        return found

    def _used_by_key(self, name: str, version: str, run_id: str) -> str:
        return f"{self._dir(name)}/{USED_BY}/{version}/{run_id}.json"

    def _record_use(self, found: ArtifactVersion, run: Any) -> None:
        try:
            run.note("artifact_used", {"ref": found.ref, "digest": found.digest})
            record = {
                "run_id": run.run_id,
                "workflow": run.workflow,
                "ref": found.ref,
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
            self.store.put(self._used_by_key(found.name, found.version, run.run_id), json.dumps(record).encode("utf-8"))
        except Exception as exc:  # noqa: BLE001 - lineage is best effort: the read itself succeeded
            logging.getLogger(__name__).warning(
                "artifact %s: its use by run %s was not recorded (%s)", found.ref, run.run_id, exc
            )

    def used_by(self, spec: str) -> list[dict[str, Any]]:
        """The recorded flow runs that used the version ``spec`` (``run_id``, ``workflow``, ``time``)."""
        found = self.resolve(spec)
        folder = f"{self._dir(found.name)}/{USED_BY}/{found.version}"
        out = []
        for n in self._ls(folder):
            if n.endswith(".json"):
                try:
                    out.append(self._read_json(f"{folder}/{n}"))
                except (KeyNotFound, CorruptPayloadError):
                    continue
        return sorted(out, key=lambda r: str(r.get("time")))

    def verify(self, spec: str) -> Verification:
        """Check a version: manifest coherent, every file present with its size and sha256."""
        av = self.resolve(spec)
        result = Verification(av.ref)
        m = av.manifest
        if m.get("version") != av.version or m.get("artifact") != av.name:
            result.problems.append(f"manifest says {m.get('artifact')}:{m.get('version')}")
        entries = m["files"] if isinstance(m["files"], list) else []
        if not isinstance(m["files"], list):
            result.problems.append("manifest 'files' is not a list")
        names: set[str] = set()
        usable = []
        for e in entries:
            if not isinstance(e, dict) or not isinstance(e.get("size"), int) or "sha256" not in e:
                result.problems.append(f"malformed file entry {e!r}: needs name, size and sha256")
                continue
            problem = _file_name_problem(e.get("name"))
            if problem is not None:
                result.problems.append(f"file name {e.get('name')!r} is unsafe: {problem[1]}")
            elif e["name"] in names:
                result.problems.append(f"file name {e['name']!r} appears twice")
            names.add(str(e.get("name")))
            usable.append(e)
        if len(usable) == len(entries) and files_digest(entries) != m["digest"]:
            result.problems.append("manifest digest does not match its file list")
        for e in usable:
            result.checked += 1
            try:
                with self.store.open(self.blob_key(e["sha256"])) as fh:
                    sha, size = _hash_stream(fh)
            except KeyNotFound:
                result.problems.append(f"{e['name']}: content missing")
                continue
            except CorruptPayloadError as exc:  # a sha256 that is not a digest
                result.problems.append(f"{e['name']!r}: {exc}")
                continue
            if size != e["size"]:
                result.problems.append(f"{e['name']}: {size} bytes, manifest says {e['size']}")
            elif sha != e["sha256"]:
                result.problems.append(f"{e['name']}: sha256 differs from the manifest")
        return result


def _note_logged(run: Any, version: ArtifactVersion, new: bool) -> None:
    if run is None:
        return
    try:
        run.note("artifact_logged", {"ref": version.ref, "digest": version.digest, "new": new})
    except Exception as exc:  # noqa: BLE001 - lineage is best effort: the version is published
        logging.getLogger(__name__).warning(
            "artifact %s: run %s could not record that it logged it (%s)", version.ref, run.run_id, exc
        )


def _same_content(manifest: Mapping[str, Any], digest: str, type: str | None, meta: dict[str, Any]) -> bool:
    """Whether a published manifest holds the same files, type and metadata (creation time and token aside)."""
    return (
        manifest.get("digest") == digest and manifest.get("type") == type and (manifest.get("metadata") or {}) == meta
    )


def job_metadata(job: Any) -> dict[str, Any]:
    """What a published job records: where it came from, what it is, and its signature."""
    info = job.info
    try:
        info_sha = hashlib.sha256(job.store.get(job.info_key)).hexdigest()
    except KeyNotFound:
        info_sha = None
    prefect = got if isinstance(got := info.get("prefect"), dict) else {}
    return {
        "path": job.path,
        "key": job.key,
        "workflow": job.workflow,
        "task": job.task_name,
        "name": job.name,
        "status": info.get("status"),
        "type": info.get("type"),
        # the strong signature the Prefect plug-in records; Ruby jobs have none, their path hash is their identity
        "signature": info.get("signature") or prefect.get("signature"),  # (.info's own key; the plug-in's before)
        "info_sha256": info_sha,
    }


# -- module-level helpers over the default store -------------------------------------------------------------------
def _registry(store: Store | str | None, prefix: str) -> Registry:
    return Registry(store, prefix)


def log_artifact(
    name: str,
    files_or_job: Any,
    aliases: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    type: str | None = None,
    *,
    force: bool = False,
    store: Store | str | None = None,
    prefix: str = "artifacts",
) -> ArtifactVersion:
    """:meth:`Registry.log_artifact` on ``store`` (default ``$SCOUT_PERSIST_URL``)."""
    return _registry(store, prefix).log_artifact(
        name, files_or_job, aliases=aliases, metadata=metadata, type=type, force=force
    )


def log_job(
    name: str,
    job: Any,
    aliases: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
    store: Store | str | None = None,
    prefix: str = "artifacts",
) -> ArtifactVersion:
    """Publish a done job (a Job, a JobWriter or a job path) as a version of ``name``, in one call.

    The registry is the job's own store unless ``store`` is given; logging the same job again returns its version."""
    if not _is_job(job):
        job = Job.at(job.store, job.key) if hasattr(job, "store") and hasattr(job, "key") else Job(job)
    return _registry(store if store is not None else job.store, prefix).log_job(
        name, job, aliases=aliases, metadata=metadata, force=force
    )


def use_artifact(spec: str, *, store: Store | str | None = None, prefix: str = "artifacts") -> ArtifactVersion:
    """:meth:`Registry.use_artifact` on ``store``: ``use_artifact("model:production").download("out/")``."""
    return _registry(store, prefix).use_artifact(spec)


def verify(spec: str, *, store: Store | str | None = None, prefix: str = "artifacts") -> Verification:
    return _registry(store, prefix).verify(spec)


def iter_versions(
    name: str, *, store: Store | str | None = None, prefix: str = "artifacts"
) -> Iterator[ArtifactVersion]:
    reg = _registry(store, prefix)
    for v in reg.versions(name):
        yield reg.resolve(f"{name}:{v}")
