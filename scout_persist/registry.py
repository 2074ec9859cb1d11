"""A W&B-style artifact registry on any store: named artifacts, immutable versions, movable aliases.

Layout under the registry prefix (default ``artifacts/`` of the store root)::

    _blobs/sha256/<ab>/<sha256>             file contents, content-addressed (shared, deduplicated)
    <name>/versions/v<N>.json               the manifest of version N: files (name, size, sha256), metadata
    <name>/aliases/<alias>.json             a movable pointer to a version (``latest`` is never stored)

Logging uploads the blobs first, then publishes the manifest with an exclusive create of ``v<N>.json``: the
create both allocates the number and commits the version, so concurrent loggers never share a number and
a reader never sees a version whose files are missing. ``latest`` is always the highest version.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

from .errors import CorruptPayloadError, InvalidInputError, KeyNotFound, UnsafePathError
from .locks import create_exclusive
from .store import Store, check_key

MANIFEST_FORMAT = "scout-persist-artifact/1"
BLOB_DIR = "_blobs/sha256"
CHUNK = 1 << 20
LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")
_VERSION_FILE = re.compile(r"^v(0|[1-9][0-9]*)\.json$")


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


# -- sources ------------------------------------------------------------------------------------------------------
@dataclass
class Source:
    """One file to log: its name inside the artifact and how to open its bytes."""

    name: str
    open: Callable[[], IO[bytes]]
    where: str


def _file_sources(path: str, prefix: str = "") -> list[Source]:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isfile(path):
        return [Source(prefix + os.path.basename(path), lambda p=path: open(p, "rb"), path)]
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
            out.append(Source(prefix + rel, lambda p=full: open(p, "rb"), full))
    return out


def _bytes_source(name: str, data: bytes) -> Source:
    import io

    return Source(name, lambda: io.BytesIO(data), f"<{len(data)} bytes for {name}>")


def _job_sources(job: Any) -> list[Source]:
    base = job.key.rsplit("/", 1)[-1]
    store = job.store
    out: list[Source] = []
    for suffix in ("", ".gz", ".bgz", ".zip"):
        key = job.key + suffix
        if store.exists(key) and not store.isdir(key):
            out.append(Source(base + suffix, lambda k=key: store.open(k), job.location(key)))
            break
    if store.exists(job.info_key):
        out.append(Source(base + ".info", lambda: store.open(job.info_key), job.location(job.info_key)))
    for rel in job.files():
        key = f"{job.files_key}/{rel}"
        out.append(Source(f"{base}.files/{rel}", lambda k=key: store.open(k), job.location(key)))
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
        try:
            ok = check_key(s.name) == s.name and s.name != ""
        except UnsafePathError as exc:
            raise UnsafePathError(f"artifact file name {s.name!r} from {s.where!r}: {exc}") from exc
        if not ok:
            raise InvalidInputError(f"artifact file name {s.name!r} is not a clean relative path (e.g. 'data/x.csv')")
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
        h.update(f"{f['name']}\0{f['sha256']}\n".encode("utf-8"))
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

    def raise_for_problems(self) -> "Verification":
        if self.problems:
            raise CorruptPayloadError(f"artifact {self.ref} fails verification: " + "; ".join(self.problems))
        return self


class ArtifactVersion:
    """One immutable version: ``.name``, ``.version``, ``.manifest``, ``.metadata``, ``.files()``, ``.read()``..."""

    def __init__(self, registry: "Registry", name: str, version: str, manifest: dict) -> None:
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
    def metadata(self) -> dict:
        return self.manifest.get("metadata") or {}

    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    def files(self) -> list[str]:
        return [f["name"] for f in self.manifest["files"]]

    def entry(self, name: str) -> dict:
        for f in self.manifest["files"]:
            if f["name"] == name:
                return f
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

    def download(self, dest: str | os.PathLike) -> str:
        """Write every file under ``dest`` with its artifact name, verifying each; returns ``dest``."""
        dest = os.path.abspath(os.fspath(dest))
        for e in self.manifest["files"]:
            target = os.path.join(dest, *e["name"].split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            h, n = hashlib.sha256(), 0
            tmp = target + ".download-tmp"
            with self.registry.store.open(self.registry.blob_key(e["sha256"])) as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    n += len(chunk)
                    out.write(chunk)
            if n != e["size"] or h.hexdigest() != e["sha256"]:
                os.unlink(tmp)
                raise CorruptPayloadError(f"file {e['name']!r} of artifact {self.ref} does not match its manifest")
            os.replace(tmp, target)
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
            self.store.fs.invalidate_cache(self.store.path(key))  # object-store listings are cached by fsspec
        except Exception:  # noqa: BLE001 - a backend without a cache has nothing to invalidate
            pass
        return self.store.ls(key)

    # listing
    def artifacts(self) -> list[str]:
        """Names of every artifact with at least one version."""
        return [n for n in self._ls(self.prefix) if _NAME.match(n) and self.versions(n)]

    def versions(self, name: str) -> list[str]:
        """``["v0", "v1", ...]`` in numeric order."""
        found = [m.group(1) for n in self._ls(f"{self._dir(name)}/versions") if (m := _VERSION_FILE.match(n))]
        return [f"v{n}" for n in sorted(int(x) for x in found)]

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
    ) -> ArtifactVersion:
        """Publish a new version of ``name`` holding ``files_or_job``; returns it (``.version`` is ``v<N>``)."""
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
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"artifact metadata for {name!r} must be JSON-serialisable: {exc}") from exc
        entries = [self._upload(s) for s in collect_sources(files_or_job)]
        entries.sort(key=lambda e: e["name"])
        number = self._next_number(name)
        while True:
            version = f"v{number}"
            manifest = {
                "format": MANIFEST_FORMAT,
                "artifact": name,
                "version": version,
                "type": type,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "created_by": {"host": socket.gethostname(), "pid": os.getpid()},
                "metadata": meta,
                "files": entries,
                "digest": files_digest(entries),
            }
            data = json.dumps(manifest, indent=1, sort_keys=False).encode("utf-8")
            if create_exclusive(self.store, self._manifest_key(name, version), data):
                break
            number = max(number + 1, self._next_number(name))
        for a in aliases:
            if a != LATEST:
                self.set_alias(name, a, version)
        return ArtifactVersion(self, name, version, manifest)

    def log_job(self, name: str, job: Any, aliases: Iterable[str] = (), metadata: Mapping[str, Any] | None = None):
        """Publish a Scout job (result, ``.info``, ``.files/``) whose metadata records its path and signature."""
        from .job import Job

        if not _is_job(job):
            job = Job(job)
        if job.status != "done":
            raise InvalidInputError(
                f"job {job.path!r} has status {job.status!r}; only done jobs can be published as artifacts "
                "(run it to completion first)"
            )
        return self.log_artifact(name, job, aliases=aliases, metadata=metadata)

    def _next_number(self, name: str) -> int:
        versions = self.versions(name)
        return int(versions[-1][1:]) + 1 if versions else 0

    def _upload(self, source: Source) -> dict:
        with source.open() as fh:
            sha, size = _hash_stream(fh)
        key = self.blob_key(sha)
        if not (self.store.exists(key) and self.store.size(key) == size):
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
        return {"name": source.name, "size": size, "sha256": sha}

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        check_alias(alias)
        if alias == LATEST:
            raise InvalidInputError("alias 'latest' always follows the newest version; it cannot be set")
        version = self.resolve(f"{name}:{version}").version
        record = {"alias": alias, "version": version,
                  "time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        self.store.put(self._alias_key(name, alias), json.dumps(record).encode("utf-8"))

    def remove_alias(self, name: str, alias: str) -> None:
        check_alias(alias)
        self.store.delete(self._alias_key(name, alias))

    # reading
    def _read_json(self, key: str) -> dict:
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
            raise KeyNotFound(f"artifact {name!r} has no version {version!r}; its versions: {known}") from exc
        for k in ("files", "digest", "version"):
            if k not in manifest:
                raise CorruptPayloadError(f"manifest of {name}:{version} lacks {k!r}; it was not written by this registry")
        return ArtifactVersion(self, name, version, manifest)

    use_artifact = resolve

    def verify(self, spec: str) -> Verification:
        """Check a version: manifest coherent, every file present with its size and sha256."""
        av = self.resolve(spec)
        result = Verification(av.ref)
        m = av.manifest
        if m.get("version") != av.version or m.get("artifact") != av.name:
            result.problems.append(f"manifest says {m.get('artifact')}:{m.get('version')}")
        if files_digest(m["files"]) != m["digest"]:
            result.problems.append("manifest digest does not match its file list")
        for e in m["files"]:
            result.checked += 1
            try:
                with self.store.open(self.blob_key(e["sha256"])) as fh:
                    sha, size = _hash_stream(fh)
            except KeyNotFound:
                result.problems.append(f"{e['name']}: content missing")
                continue
            if size != e["size"]:
                result.problems.append(f"{e['name']}: {size} bytes, manifest says {e['size']}")
            elif sha != e["sha256"]:
                result.problems.append(f"{e['name']}: sha256 differs from the manifest")
        return result


def job_metadata(job: Any) -> dict:
    """What a published job records: where it came from, what it is, and its signature."""
    info = job.info
    try:
        info_sha = hashlib.sha256(job.store.get(job.info_key)).hexdigest()
    except KeyNotFound:
        info_sha = None
    prefect = info.get("prefect") if isinstance(info.get("prefect"), dict) else {}
    return {
        "path": job.path,
        "key": job.key,
        "workflow": job.workflow,
        "task": job.task_name,
        "name": job.name,
        "status": info.get("status"),
        "type": info.get("type"),
        # the strong signature the Prefect plug-in records; Ruby jobs have none, their path hash is their identity
        "signature": prefect.get("signature"),
        "info_sha256": info_sha,
    }


# -- module-level helpers over the default store -------------------------------------------------------------------
def _registry(store: Store | str | None, prefix: str) -> Registry:
    return Registry(store, prefix)


def log_artifact(name: str, files_or_job: Any, aliases: Iterable[str] = (), metadata: Mapping[str, Any] | None = None,
                 type: str | None = None, *, store: Store | str | None = None, prefix: str = "artifacts") -> ArtifactVersion:
    """:meth:`Registry.log_artifact` on ``store`` (default ``$SCOUT_PERSIST_URL``)."""
    return _registry(store, prefix).log_artifact(name, files_or_job, aliases=aliases, metadata=metadata, type=type)


def use_artifact(spec: str, *, store: Store | str | None = None, prefix: str = "artifacts") -> ArtifactVersion:
    """:meth:`Registry.resolve` on ``store``: ``use_artifact("model:production").download("out/")``."""
    return _registry(store, prefix).resolve(spec)


def verify(spec: str, *, store: Store | str | None = None, prefix: str = "artifacts") -> Verification:
    return _registry(store, prefix).verify(spec)


def iter_versions(name: str, *, store: Store | str | None = None, prefix: str = "artifacts") -> Iterator[ArtifactVersion]:
    reg = _registry(store, prefix)
    for v in reg.versions(name):
        yield reg.resolve(f"{name}:{v}")
