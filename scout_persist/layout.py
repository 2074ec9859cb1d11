"""Where Scout puts things, the one home of its key rules: job keys, the split of a job path into root and key, lock
keys, extensions, ``identify`` (§4.4), persist cache names (§9), clean names (§10.3)."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import settings
from .errors import JobNotFound, UnsafePathError
from .rubydigest import digest, md5_hex

JOBS_DIR = "var/jobs"
JOBS_MARK = "/" + JOBS_DIR + "/"  # what separates a root from a job key in a path or URL
SCOUT_ROOT_MARK = "/.scout/"
PERSIST_DIR = "var/cache/persistence"
LOCK_DIR = "tmp/persist_locks"
MAX_NAME_BYTES = 255
PKGDIR = "scout"

# Ruby's Path.map_order without `current` (identify skips it), `workflow` (unset) and the install-specific
# library maps; `default` is `user` again and changes nothing.
DEFAULT_MAPS: tuple[tuple[str, str], ...] = (
    ("user", "{HOME}/.{PKGDIR}/{TOPLEVEL}/{SUBPATH}"),
    ("home", "{HOME}/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("local", "/usr/local/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("global", "/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("usr", "/usr/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("fast", "/fast/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("cache", "/cache/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("bulk", "/bulk/{TOPLEVEL}/{PKGDIR}/{SUBPATH}"),
    ("tmp", "/tmp/{PKGDIR}/{TOPLEVEL}/{SUBPATH}"),
)

_TYPE_EXTENSIONS = {"tsv", "yaml", "marshal", "json"}
_RUBY_SPACE = re.compile(r"[ \t\n\v\f\r]")
SLASH_REPLACE = "\u00b7"
MAX_FILE_LENGTH = 150


def _map_regex(pattern: str) -> re.Pattern[str]:
    """Ruby identify's regex: {TOPLEVEL} a segment, .{PKGDIR} a dotted segment, other /{X} optional segments."""
    pieces: dict[str, str] = {}

    def mark(piece: str) -> str:
        key = f"\x00{len(pieces)}\x00"
        pieces[key] = piece
        return key

    pat = pattern.replace("{TOPLEVEL}", mark("(?P<TOPLEVEL>[^/]+)"))
    pat = re.sub(r"\.\{PKGDIR\}", lambda m: mark(r"\.(?P<PKGDIR>[^/]+)"), pat)
    pat = re.sub(r"/\{([^}]+)\}", lambda m: mark(f"(?:/(?P<{m.group(1)}>[^/]+))?"), pat)
    out = "".join(pieces.get(tok, re.escape(tok)) for tok in re.split(r"(\x00\d+\x00)", pat) if tok)
    return re.compile("^" + out + r"(?:/(?P<REST>.+))?/?$")


def identify(
    path: str | os.PathLike[str], home: str | None = None, maps: Iterable[tuple[str, str]] | None = None
) -> str:
    """Ruby ``Resource.identify``: the logical path of ``path`` (``var/jobs/W/t/name``), or the path itself.

    Unlocated paths come back unchanged; a path under no map keeps its absolute form with ``$HOME`` as ``~``.
    """
    p = os.fspath(path)
    if not p.startswith(("/", "~/", "./")):
        return p
    home = settings.home() if home is None else home
    home = home.rstrip("/") if home not in ("", "/") else home
    if p.startswith("/"):
        p = posixpath.normpath(p)
        if p.startswith("//"):
            p = "/" + p.lstrip("/")
    if os.path.isdir(p) and not p.endswith("/"):
        p += "/"
    choices: list[str] = []
    for _name, pattern in DEFAULT_MAPS if maps is None else maps:
        pattern = pattern.replace("{HOME}", home, 1)
        if "{" not in pattern:
            continue
        m = _map_regex(pattern).match(p)
        if not m:
            continue
        groups = m.groupdict()
        if "PKGDIR" in groups and groups["PKGDIR"] != PKGDIR:
            continue
        choices.append(
            "/".join(groups[g] for g in ("TOPLEVEL", "SUBPATH", "PATH", "REST") if groups.get(g) is not None)
        )
    identified = min(choices, key=len) if choices else p
    if home:
        identified = re.sub("^" + re.escape(home) + "(/|$)", lambda m: "~" + m.group(1), identified, count=1)
    return identified


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


def job_key(workflow: str, task: str, name: str, extension: str | None = None) -> str:
    """``var/jobs/<Workflow>/<task>/<name>[.<ext>]``, a store key."""
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


def split_job_path(path: str) -> tuple[str, str]:
    """``(root, key)`` of an absolute job path or URL path: the root is everything before ``/var/jobs/``."""
    i = path.rfind(JOBS_MARK)
    if i < 0:
        if path.startswith(JOBS_DIR + "/"):
            return "", path
        raise JobNotFound(
            f"{path!r} is not under a Scout jobs directory (no '/{JOBS_DIR}/' segment); open jobs as "
            "<root>/var/jobs/<Workflow>/<task>/<name>, or use Job.at(store, key)"
        )
    return path[:i] or "/", path[i + 1 :]


def below_jobs(key: str) -> str:
    """The part of job key ``var/jobs/<Workflow>/<task>/<name>`` below ``var/jobs`` (the Prefect plug-in's cache
    key)."""
    if not key.startswith(JOBS_DIR + "/"):
        raise UnsafePathError(f"{key!r} is not a job key: job keys start with '{JOBS_DIR}/'")
    return key[len(JOBS_DIR) + 1 :]


def job_key_below(relative: str) -> str | None:
    """``var/jobs/<relative>`` when ``relative`` is ``<Workflow>/<task>/<name>`` inside the root, else None (the
    reverse of :func:`below_jobs`)."""
    from .store import check_key

    try:
        relative = check_key(str(relative))
    except UnsafePathError:
        return None
    return f"{JOBS_DIR}/{relative}" if relative.count("/") >= 2 else None


def split_location(location: str) -> tuple[str, str]:
    """``(root, key)`` of an absolute path or URL: the root is what precedes ``/var/jobs/``, else the parent folder
    (a persist entry, a file named on the command line)."""
    i = location.rfind(JOBS_MARK)
    if i >= 0:
        return location[:i] or "/", location[i + 1 :]
    return posixpath.dirname(location) or "/", posixpath.basename(location)


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


_FIND_MAPS: tuple[str, ...] = (
    "{PWD}/{TOPLEVEL}/{SUBPATH}",
    "{HOME}/.{PKGDIR}/{TOPLEVEL}/{SUBPATH}",
    "{HOME}/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/usr/local/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/usr/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/fast/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/cache/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
    "/bulk/{TOPLEVEL}/{PKGDIR}/{SUBPATH}",
)


def _follow(pattern: str, path: str, cwd: str, home: str) -> str:
    toplevel, _, subpath = path.partition("/")
    out = (
        pattern.replace("{PKGDIR}", PKGDIR, 1)
        .replace("{HOME}", home, 1)
        .replace("{PWD}", cwd, 1)
        .replace("{TOPLEVEL}", toplevel, 1)
        .replace("{SUBPATH}", subpath, 1)
    )
    return out[:-1] if not subpath and out.endswith("/") else out


def find(path: str, cwd: str | None = None, home: str | None = None) -> str:
    """Ruby ``Path#find`` (§1.1): a located path as is; a logical one through the maps (current dir first).

    The first candidate that exists (or has a ``.gz``/``.bgz``/``.zip`` sibling) wins; else the ``user`` map.
    """
    if path.startswith(("/", "~/", "./")):
        return path
    cwd = cwd or os.getcwd()
    home = settings.home() if home is None else home.rstrip("/")
    candidates = [_follow(m, path, cwd, home) for m in _FIND_MAPS]
    for c in candidates:
        if any(os.path.exists(c + sfx) for sfx in ("", ".gz", ".bgz", ".zip")):
            return c
    return candidates[1]
