"""Where Ruby Scout takes its job locks, so that a Python process sharing its jobs locks where Ruby does.

Ruby resolves its lock folder once per process, as ``Path.setup("tmp/persist_locks").find``: the first of its path
maps under which that folder exists -- ``$PWD/tmp/persist_locks`` first, then ``~/.scout/tmp/persist_locks``,
``~/tmp/scout/persist_locks``, ``/usr/local/tmp/scout/persist_locks``, ``/tmp/scout/persist_locks``, ... -- else
``~/.scout/tmp/persist_locks``.  Python locks a store's jobs in ``<root>/tmp/persist_locks``, where every Python
process of every host sharing the root finds them.  The two agree for the usual tree (root ``~/.scout``, started
from a folder without ``tmp/persist_locks``), not always: started from a folder that has ``./tmp/persist_locks``,
Ruby locks there.

:func:`ruby_lock_folder` is Ruby's resolution for a working directory and ``$HOME``.  :func:`extra_lock_folder`
says when a Python process must lock there too: when Ruby shares the store's jobs (the root is ``~/.scout``, the
working directory, or ``/tmp/scout``: the roots of Ruby's job maps) and a Ruby process started with this process's
working directory and ``$HOME`` now would lock elsewhere than ``<root>/tmp/persist_locks``.  The job lease then holds
both locks (:class:`scout_persist.lease.LockFileLease`), so it excludes Python processes through the root's and
that Ruby through its own.  A Ruby process started from another folder that has ``./tmp/persist_locks`` cannot be
seen from here: docs/reliability.md, "Ruby and Python at the same time".
"""

from __future__ import annotations

import logging
import os
import threading

from . import settings
from .layout import LOCK_DIR
from .resource import find

log = logging.getLogger(__name__)

# The roots whose var/jobs Ruby's job path maps reach ({PWD}, {HOME}/.scout, and the `tmp` map's /tmp/scout).
_TMP_ROOT = "/tmp/scout"


def ruby_lock_folder(cwd: str | None = None, home: str | None = None) -> str:
    """Ruby's ``Persist.lock_dir`` for a process started in ``cwd`` (default: ours) with ``$HOME`` ``home``.

    The install-specific library maps (``<scout-essentials>/tmp/persist_locks``, the calling script's
    ``<lib dir>/tmp/persist_locks``) are not searched."""
    cwd = os.getcwd() if cwd is None else cwd
    home = settings.home() if home is None else home
    return os.path.normpath(find(LOCK_DIR, cwd=cwd, home=home))


def extra_lock_folder(root: str, cwd: str | None = None, home: str | None = None) -> str | None:
    """The folder where a Ruby process started here would lock the jobs of the local store ``root``, when that is
    not ``<root>/tmp/persist_locks`` and Ruby shares those jobs; None when the root's own folder is the one.

    Where Ruby shares the jobs, resolved at each call (a few ``stat`` calls), as a Ruby process started now would
    resolve it: Ruby resolves it once per process, so a folder created later changes what later processes of either
    side use.  Whether Ruby shares them at all (the root is one of its roots) is decided once per root, working
    directory and ``$HOME`` in a process: a job lease asks for every job."""
    cwd = os.getcwd() if cwd is None else cwd
    home = settings.home() if home is None else home
    asked = (root, cwd, home)
    shared = _shared.get(asked)
    if shared is None:
        shared = _shared[asked] = _ruby_shares(root, cwd, home)
    if not shared:
        return None
    cwd, root = os.path.realpath(cwd), os.path.realpath(root)
    ruby = os.path.realpath(ruby_lock_folder(cwd, home))
    ours = os.path.realpath(os.path.join(root, LOCK_DIR))
    if ruby == ours:
        return None
    with _guard:
        first = (root, cwd, ruby) not in _warned
        _warned.add((root, cwd, ruby))
    if first:
        log.warning(
            "Ruby Scout started from %s (HOME %s) locks jobs in %s, not in %s: this process takes both locks of "
            "each job, so that it excludes that Ruby as well as the other Python processes (docs/reliability.md)",
            cwd,
            home,
            ruby,
            ours,
        )
    return ruby


def _ruby_shares(root: str, cwd: str, home: str) -> bool:
    """Whether the store ``root`` is one of the roots of Ruby's job maps for a process in ``cwd`` with ``home``."""
    shared = {os.path.realpath(cwd), os.path.realpath(os.path.join(home, ".scout")) if home else "", _TMP_ROOT}
    return os.path.realpath(root) in shared


_warned: set[tuple[str, str, str]] = set()
_guard = threading.Lock()
_shared: dict[tuple[str, str, str], bool] = {}  # (root, working directory, $HOME) -> whether Ruby shares the root


__all__ = ["extra_lock_folder", "ruby_lock_folder"]
