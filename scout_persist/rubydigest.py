"""Ruby Scout's ``Misc.digest_str`` / ``Misc.digest`` on Python values (SCOUT_FORMAT.md §2, §4.1-4.3).

Python values stand for Ruby values: ``str`` is a Ruby String, :class:`Symbol` a Ruby Symbol, ``None`` nil,
``list``/``tuple`` an Array, ``dict`` a Hash, :class:`pathlib.PurePath` a Scout Path, and anything with a
``scout_step_path`` attribute (e.g. :class:`Step`) a Step.  Ruby tasks take dates and times as Strings, so a
``datetime.date`` / ``datetime`` / ``time`` digests as its ISO 8601 string (``2026-03-04``: the job Ruby runs for
``--when 2026-03-04``) and a ``timedelta`` as its number of seconds, a Float.  Relative file names are resolved
against ``cwd`` (default: the current directory) and Step paths are identified with ``home`` (default ``$HOME``).
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Any

from .errors import UnsupportedValueError
from .resource import identify
from .rubyvalues import ScoutPath, Symbol

MAX_ARRAY_DIGEST_LENGTH = 100_000
LARGE_FILE = 10_000_000
SAMPLE = 3_000_000
SUPPORTED = (
    "str, Symbol, int, float, bool, None, list/tuple, dict, pathlib.Path, datetime date/datetime/time/timedelta, "
    "a Step (anything with a 'scout_step_path' attribute)"
)

# Workflow names that count as "loadable" for the `Step file:` rule (§4.3 rule 1); Workflow() registers here.
_KNOWN_WORKFLOWS: set[str] = set()


def register_workflow_name(name: str) -> None:
    """Mark a workflow name as loadable, so files inside its jobs' ``.files`` dirs digest as ``Step file:``."""
    _KNOWN_WORKFLOWS.add(name)


def md5_hex(s: str | bytes) -> str:
    return hashlib.md5(s.encode("utf-8") if isinstance(s, str) else s).hexdigest()


def ruby_join(parts: Iterable[str]) -> str:
    """Ruby's inject join: ``acc = d if acc == ""`` so leading empty digests vanish (§4.1 ``J``)."""
    acc = ""
    for d in parts:
        acc = d if acc == "" else acc + ", " + d
    return acc


def float_digest(x: float) -> str:
    """§4.2: integral -> exact integer, then %.1f / %.3f / %.6f by magnitude; Inf, -Inf, NaN as Ruby."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x % 1 == 0:
        return str(int(x))
    if abs(x) > 10:
        return "%.1f" % x
    if abs(x) > 1:
        return "%.3f" % x
    return "%.6f" % x


def file_digest(path: str | os.PathLike[str]) -> str:
    """Scout's ``Misc.digest_file``: a ``.md5`` side file, else a sampled md5 over 10 MB, else the content md5."""
    p = os.fspath(path)
    side = p + ".md5"
    if os.path.exists(side):
        with open(side, "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip(" \t\r\n\f\v\0")
    size = os.path.getsize(p)
    h = hashlib.md5()
    with open(p, "rb") as fh:
        if size > LARGE_FILE:
            # size ":" + first 3 MB + 3 MB from the middle + 3 MB from size - 3 MB - 1 (Ruby's fast_file_md5)
            h.update(f"{size}:".encode())
            h.update(fh.read(SAMPLE))
            fh.seek(size // 2)
            h.update(fh.read(SAMPLE))
            fh.seek(size - SAMPLE - 1)
            h.update(fh.read(SAMPLE))
        else:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def is_located(p: str) -> bool:
    return p.startswith(("/", "~/", "./"))


def _abs(p: str, cwd: str | None) -> str:
    return p if p.startswith("/") else os.path.join(cwd or os.getcwd(), p)


def looks_like_filename(s: str) -> bool:
    """Ruby ``Path.is_filename?`` minus the existence test: no newline, not overlong."""
    return "\n" not in s and (len(s) < 265 or all(len(seg) <= 265 for seg in s.split("/")))


def names_existing_path(s: str, cwd: str | None = None) -> bool:
    return s != "" and looks_like_filename(s) and os.path.exists(_abs(s, cwd))


def _step_file(p: str) -> str | None:
    if not re.search(r"\.files(?:/|$)", p):
        return None
    parts = p.split("/")
    for i, seg in enumerate(parts):
        if seg.endswith(".files"):
            if i >= 2 and parts[i - 2] in _KNOWN_WORKFLOWS:
                return "/".join(parts[i - 2 :])
            return None
    return None


def path_digest(p: str, cwd: str | None = None, home: str | None = None) -> str:
    """``pd(p)`` of §4.3: Step file, directory, located existing file, else ``'p'``."""
    step_file = _step_file(p)
    if step_file is not None:
        return "Step file: " + step_file
    full = _abs(p, cwd)
    if os.path.isdir(full):
        # Scout globs the directory found through the maps; for a relative name that is $PWD/<name>
        base = full.rstrip("/") if not p.startswith("/") else p.rstrip("/") or "/"
        entries = sorted(e.encode("utf-8", "surrogateescape") for e in os.listdir(full) if not e.startswith("."))
        files = [
            base + "/" + e.decode("utf-8", "surrogateescape")
            for e in entries
            if not os.path.isdir(os.path.join(full, e.decode("utf-8", "surrogateescape")))
        ]
        if len(files) > 10:
            return f"Directory MD5: {len(files)} " + "\n".join(files)
        return "Directory MD5: [" + ruby_join(path_digest(f, cwd, home) for f in files) + "]"
    if is_located(p) and os.path.exists(full):
        return "File MD5: " + file_digest(full)
    return "'" + p + "'"


def digest_str(obj: Any, *, cwd: str | None = None, home: str | None = None, str_paths: bool = True) -> str:
    """The exact string Ruby Scout's ``Misc.digest_str`` builds for ``obj`` (SCOUT_FORMAT.md §4.1).

    ``str_paths=False`` leaves out Ruby's rule that a String naming an existing file or folder digests as that path
    (§4.3 case 2), at every level: a ``str`` is then its text, wherever the process runs.  Path objects
    (:class:`ScoutPath`, :class:`pathlib.PurePath`) digest as paths either way.
    """
    step_path = getattr(obj, "scout_step_path", None)
    if step_path is not None:
        return "Step: " + identify(os.fspath(step_path), home=home)
    if isinstance(obj, Symbol):
        return str(obj)
    if isinstance(obj, ScoutPath):
        return path_digest(str(obj), cwd, home)
    if isinstance(obj, str):
        if str_paths and names_existing_path(obj, cwd):
            return path_digest(obj, cwd, home)
        return str(obj)
    if isinstance(obj, bool):  # before int: True is an int in Python
        return "true" if obj else "false"
    if obj is None:
        return "nil"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        return float_digest(obj)
    if isinstance(obj, pathlib.PurePath):
        return path_digest(str(obj), cwd, home)
    if isinstance(obj, (datetime.date, datetime.time)):  # (datetime is a date) as Ruby's String of it
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return float_digest(obj.total_seconds())
    if isinstance(obj, (list, tuple)):
        n = len(obj)
        if n > MAX_ARRAY_DIGEST_LENGTH:
            sample = [obj[i] for i in (1, 2, n // 2, n - 2, n - 1)]
            return f"[{n}:" + ruby_join(digest_str(o, cwd=cwd, home=home, str_paths=str_paths) for o in sample) + "]"
        return "[" + ruby_join(digest_str(o, cwd=cwd, home=home, str_paths=str_paths) for o in obj) + "]"
    if isinstance(obj, dict):
        pairs = (
            digest_str(k, cwd=cwd, home=home, str_paths=str_paths)
            + "="
            + digest_str(v, cwd=cwd, home=home, str_paths=str_paths)
            for k, v in obj.items()
        )
        return "{" + ruby_join(pairs) + "}"
    raise UnsupportedValueError(
        f"cannot digest {obj!r} of type {type(obj).__name__}: Scout digests only {SUPPORTED}; "
        "convert the value to one of these (e.g. a list for a set, str for bytes) before using it as an input"
    )


def digest(obj: Any, *, cwd: str | None = None, home: str | None = None) -> str:
    """Ruby ``Misc.digest``: md5 hex of a String as is, of anything else of its :func:`digest_str`."""
    if isinstance(obj, str) and not isinstance(obj, Symbol):
        return md5_hex(obj)
    return md5_hex(digest_str(obj, cwd=cwd, home=home))


_EXT_RE = re.compile(r"(\.[^\n]{2,9})$", re.M)


def sanitize_filename(name: str, length: int = 150) -> str:
    """Ruby ``Path.sanitize_filename``: ids over ``length`` characters become ``head--<len>--<md5[:5]><ext>``."""
    if len(name) <= length:
        return name
    m = _EXT_RE.search(name)
    ext = m.group(1) if m else ""
    postfix = f"--{len(name)}--{md5_hex(name)[:5]}{ext}"
    return name[: max(length - len(postfix), 0)] + postfix
