"""Count the file-system operations scout_persist makes: every call by name of a file (open, stat, rename, link, unlink,
listing, ...) and every fsync, in order, as ``(operation, path)``.

:func:`counting` swaps the ``os`` and ``open`` names of every loaded ``scout_persist`` module for counting shims (the
calls still happen); calls on an open descriptor (read, write, fstat, close) are not operations on a name and are
not listed, fsync aside.  Test machinery only: production code has no hook for it.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

# os (and os.path) functions that look a name up, or reach the disk
COUNTED = frozenset(
    {
        "open", "stat", "lstat", "access", "listdir", "scandir", "utime", "rename", "replace", "link", "symlink",
        "unlink", "remove", "mkdir", "makedirs", "rmdir", "getcwd", "readlink", "chmod", "fsync",
        "exists", "lexists", "isdir", "isfile", "islink", "realpath", "getsize", "getmtime",
    }
)  # fmt: skip


class _Counting:
    """A module (``os`` or ``os.path``) whose counted functions append ``(name, first argument)`` to ``ops``."""

    def __init__(self, real: Any, ops: list[tuple[str, Any]], prefix: str = "") -> None:
        self._real, self._ops, self._prefix = real, ops, prefix

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name == "path" and not self._prefix:
            return _Counting(attr, self._ops, "path.")
        if name not in COUNTED or not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._ops.append((self._prefix + name, args[0] if args else None))
            return attr(*args, **kwargs)

        return counted


def _counting_open(ops: list[tuple[str, Any]]) -> Callable[..., Any]:
    def counted(file: Any, *args: Any, **kwargs: Any) -> Any:
        ops.append(("open", file))
        return builtins.open(file, *args, **kwargs)

    return counted


@contextlib.contextmanager
def counting() -> Iterator[list[tuple[str, Any]]]:
    """The operations made inside the block, in order."""
    ops: list[tuple[str, Any]] = []
    shims = {"os": _Counting(os, ops), "open": _counting_open(ops)}
    saved: list[tuple[Any, str, Any]] = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("scout_persist") or module is None:
            continue
        for attr, shim in shims.items():
            if attr == "os" and module.__dict__.get("os") is not os:
                continue
            saved.append((module, attr, module.__dict__.get(attr, _ABSENT)))
            setattr(module, attr, shim)
    try:
        yield ops
    finally:
        for module, attr, old in reversed(saved):
            if old is _ABSENT:
                delattr(module, attr)
            else:
                setattr(module, attr, old)


_ABSENT = object()
