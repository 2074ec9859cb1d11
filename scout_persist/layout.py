"""Where Scout puts things, the one home of its key rules: job keys, the split of a job path into root and key, lock
keys, extensions, persist cache names (§9), clean names (§10.3).  (Ruby's ``identify`` and ``find`` of paths are in
:mod:`scout_persist.resource`.)

Two keys name a job: its *job key*, the store key of its result file (``var/jobs/<Workflow>/<task>/<name>[.ext]``,
built by :func:`job_key_for`), and its *cache key*, the part below ``var/jobs`` that the Prefect plug-in gives Prefect
(:func:`cache_key_of`, and back: :func:`job_key_of`)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from .errors import JobNotFound, UnsafePathError
from .rubydigest import digest, md5_hex
from .store import check_key

JOBS_DIR = "var/jobs"
JOBS_MARK = "/" + JOBS_DIR + "/"  # what separates a root from a job key in a path or URL
SCOUT_ROOT_MARK = "/.scout/"
PERSIST_DIR = "var/cache/persistence"
LOCK_DIR = "tmp/persist_locks"
MAX_NAME_BYTES = 255

_TYPE_EXTENSIONS = {"tsv", "yaml", "marshal", "json"}
_RUBY_SPACE = re.compile(r"[ \t\n\v\f\r]")
SLASH_REPLACE = "\u00b7"
MAX_FILE_LENGTH = 150


def extension_for(type: str | None, extension: str | None = None, dep_basename: str | None = None) -> str | None:
    """§1.3: a declared extension wins; json/yaml/marshal/tsv name themselves; ``dep_task`` aliases copy their dep's."""
    if extension == "dep_task":
        return alias_extension(dep_basename) if dep_basename is not None else None
    if extension:
        return str(extension)
    t = str(type) if type is not None else "binary"
    return t if t in _TYPE_EXTENSIONS else None


def alias_extension(dep_basename: str) -> str | None:
    """The extension an alias task takes from its last dependency's basename (Ruby's crash when parts run out fixed)."""
    if "." not in dep_basename:
        return None
    parts = dep_basename.split(".")
    while parts and parts[-1] == "":  # Ruby's split drops trailing empty fields
        parts.pop()
    if not parts:
        return None
    ext = [parts.pop()]
    while parts and len(parts[-1]) <= 4:
        ext.append(parts.pop())
    return ".".join(reversed(ext))


def job_key_for(workflow: str, task: str, name: str, extension: str | None = None) -> str:
    """The job key (the store key of the job's result file) of a job: ``var/jobs/<Workflow>/<task>/<name>[.<ext>]``."""
    key = f"{JOBS_DIR}/{workflow}/{task}/{name}"
    return f"{key}.{extension}" if extension else key


def check_job_name(name: str, root: str = JOBS_DIR) -> str:
    """Refuse a job name that would leave its task directory; return it unchanged otherwise.

    Ruby accepts ``..`` segments; we refuse them on purpose (docs/identity.md).
    """
    problem = None
    if name == "":
        problem = "job names may not be empty"
    elif "\0" in name:
        problem = "job names may not contain NUL characters"
    elif name.startswith("/"):
        problem = "job names may not be absolute paths"
    elif ".." in name.split("/"):
        problem = "job names may not contain '..' path segments"
    if problem:
        raise UnsafePathError(
            f"job name {name!r} escapes the jobs root {root!r}; {problem}; "
            "pick an id without them (e.g. replace '..' by '__' and drop a leading '/')"
        )
    return name


def _shorten(f: str) -> str:
    if len(f) > MAX_FILE_LENGTH + 10:
        f = f[: MAX_FILE_LENGTH + 1] + md5_hex(f[MAX_FILE_LENGTH + 1 :])
    return f


def mangle(s: str) -> str:
    """§9.3: drop ``.gz``/``.bgz``, whitespace to ``_``, ``/`` to ``·``, cut over 160 characters."""
    base = re.sub(r"\.b?gz$", "", s)
    return _shorten(_RUBY_SPACE.sub("_", base).replace("/", SLASH_REPLACE))


def lock_key_for(path: str, suffix: str = ".persist") -> str:
    """Scout's lock key for a job or persist target: ``tmp/persist_locks/<mangle(path + suffix)>.lock``.

    ``path`` is what Ruby locks: a job's absolute path, or a persist entry's logical path
    (``var/cache/persistence/fixture_json`` → ``tmp/persist_locks/var·cache·persistence·fixture_json.persist.lock``).
    Names Ruby would make longer than 255 bytes (multi-byte characters) are cut by bytes here and end
    with an md5, where Ruby fails with "File name too long".
    """
    name = mangle(str(path) + suffix)
    if len((name + ".lock").encode("utf-8")) > MAX_NAME_BYTES:
        tail = md5_hex(name)
        budget = MAX_NAME_BYTES - len(".lock") - len(tail)
        head = name.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
        name = head + tail
    return f"{LOCK_DIR}/{name}.lock"


def cache_key_of(key: str) -> str:
    """The cache key of job key ``key`` (``var/jobs/<Workflow>/<task>/<name>``): the part below ``var/jobs``, the key
    the Prefect plug-in gives Prefect (its cache, storage and lock key)."""
    if not key.startswith(JOBS_DIR + "/"):
        raise UnsafePathError(f"{key!r} is not a job key: job keys start with '{JOBS_DIR}/'")
    return key[len(JOBS_DIR) + 1 :]


def job_key_of(cache_key: str) -> str | None:
    """The job key ``var/jobs/<cache_key>`` when ``cache_key`` is ``<Workflow>/<task>/<name>`` inside the root, else
    None (the reverse of :func:`cache_key_of`)."""
    try:
        relative = check_key(str(cache_key))
    except UnsafePathError:
        return None
    return f"{JOBS_DIR}/{relative}" if relative.count("/") >= 2 else None


def split_location(location: str, *, strict: bool = False) -> tuple[str, str]:
    """``(root, key)`` of an absolute path or URL: the root is what precedes ``/var/jobs/`` (a URL keeps its protocol:
    ``memory://var/jobs/W/t/n`` is ``("memory://", "var/jobs/W/t/n")``; a relative ``var/jobs/...`` has root ``""``).
    Elsewhere (a persist entry, a file named on the command line) the root is the parent folder, or, with ``strict``,
    JobNotFound: the one (root, key) rule of job paths."""
    protocol, sep, rest = location.partition("://")
    if not sep:
        protocol, rest = "", location
    prefix = protocol + sep
    if rest.startswith(JOBS_DIR + "/"):
        return prefix, rest
    i = rest.rfind(JOBS_MARK)
    if i >= 0:
        return prefix + (rest[:i] or "/"), rest[i + 1 :]
    if strict:
        raise JobNotFound(
            f"{location!r} is not under a Scout jobs directory (no '/{JOBS_DIR}/' segment); open jobs as "
            "<root>/var/jobs/<Workflow>/<task>/<name>, or use Job.at(store, key)"
        )
    parent = posixpath.dirname(rest)
    return (prefix + parent) if parent else (prefix or "/"), posixpath.basename(rest)


def persistence_path(
    name: str,
    prefix: str | None = None,
    key: str | None = None,
    filters: Mapping[Any, Any] | None = None,
    other: Any = None,
    other_options: Mapping[Any, Any] | None = None,
    dir: str | None = PERSIST_DIR,
    **options: Any,
) -> str:
    """Ruby ``Persist.persistence_path`` (§9.1): ``<dir>/<file name>``, or the bare file name when ``dir`` is None.

    ``filters`` counts as Ruby's ``other_filters`` (it is hashed into the name and into the ``:md5`` tail);
    ``other_X=`` keywords become key ``X`` of the other options; ``other=`` stays key ``other``; ``unnamed`` and
    every other option (type, persist flags...) leave the name alone.
    """
    collected: dict[Any, Any] = dict(other_options or {})
    if filters is not None:
        collected["filters"] = filters
    if other is not None:
        collected["other"] = other
    for k, v in options.items():
        m = re.search(r"other_(.*)", k)
        if m:
            collected[m.group(1)] = v
    collected.pop("unnamed", None)

    base = re.sub(r"\.b?gz$", "", str(name))
    if prefix is not None:
        base = f"{prefix}:{base}"
    if key is not None:
        base += f"[{key}]"
    for k, v in (collected.get("filters") or {}).items():
        base += f"&F[{k}={digest(v)}]"
    f = _shorten(_RUBY_SPACE.sub("_", base).replace("/", SLASH_REPLACE))
    if collected:
        f += ":" + digest(collected)
    return f if dir is None else f"{dir.rstrip('/')}/{f}"


_CLEAN_RE = re.compile(r"(.+?)(?:_[a-z0-9]{32})?(?:\..*)?$")


def clean_name(basename: str) -> str:
    """§10.3: the id of a re-read job, cut at the hash and at the first dot after the first character."""
    m = _CLEAN_RE.match(basename)
    return m.group(1) if m else basename
