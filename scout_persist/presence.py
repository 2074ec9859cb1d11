"""Whether a job's ``.info`` is expected to exist, from what this process has seen: it picks the first request of a
lease acquisition where the ``.info`` is the lease (stores with conditional writes, S3).

A job expected absent is created outright: the conditional create of its ``start`` *is* the lookup, and a refused
create hands back the ``.info`` its store read (a new job costs 3 requests, no read before them).  A job expected to
exist is read first: a hit stays one ``.info`` read and one result read, and writes nothing.

Expected to exist: a job whose ``.info`` this process has seen or written; else what the last job looked up in the
same folder (one task's jobs) turned out to be, when this process knew nothing of it either: a cached run keeps
finding its jobs, a new one keeps missing.  The first such look in a folder is the probe, expecting absent; looks of
the same folder that come while the probe's answer is on its way (a mapped task's runs start together) wait for it,
up to :data:`PROBE_WAIT` seconds, rather than guess.

A hint only: a wrong guess costs one request (a refused create, or a read that finds nothing), never a wrong answer.
"""

from __future__ import annotations

import posixpath
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

MAX_KNOWN = 10_000  # jobs remembered per process (a long-lived worker must not grow without bound)
MAX_FOLDERS = 1_000
PROBE_WAIT = 5.0  # seconds a look waits for the answer to its folder's probe (one request, two after a refusal)


@dataclass
class _Folder:
    found: bool | None = None  # whether the last job looked up here, unknown before, had a .info (None: no answer yet)
    probe: threading.Event = field(default_factory=threading.Event)  # set when the probe's answer comes
    probing_since: float | None = None  # monotonic time the probe started (None: no probe on its way)


_guard = threading.Lock()
_known: OrderedDict[tuple[str, str], None] = OrderedDict()  # (store url, job key): its .info was seen or written
_folders: OrderedDict[tuple[str, str], _Folder] = OrderedDict()  # (store url, folder of the job key)


def expected(url: str, key: str, wait: float | None = None) -> bool:
    """Whether job ``key`` of the store at ``url`` is expected to have a ``.info``; may wait for the answer to the
    probe of its folder (see the module), at most ``wait`` seconds when given (the caller's own deadline)."""
    with _guard:
        if (url, key) in _known:
            return True
        folder = _folder(url, key)
        if folder.found is not None:
            return folder.found
        now = time.monotonic()
        if folder.probing_since is None or now - folder.probing_since > PROBE_WAIT:
            folder.probing_since = now  # this look is the probe (or replaces one that never answered)
            return False
        waited_for, left = folder.probe, PROBE_WAIT - (now - folder.probing_since)
    waited_for.wait(left if wait is None else min(left, wait))
    with _guard:
        return bool(folder.found)


def looked(url: str, key: str, found: bool) -> None:
    """A look at job ``key``'s ``.info`` (a read, or a conditional create's answer) found it, or found nothing."""
    with _guard:
        if (url, key) not in _known:
            folder = _folder(url, key)
            folder.found, folder.probing_since = found, None
            folder.probe.set()
        if found:
            _remember(url, key)
        else:
            _known.pop((url, key), None)


def wrote(url: str, key: str) -> None:
    """This process wrote job ``key``'s ``.info``: it exists."""
    with _guard:
        _remember(url, key)


def forget_all() -> None:
    """Forget everything seen: as a process new to every store (tests, benchmarks)."""
    with _guard:
        _known.clear()
        _folders.clear()


def _remember(url: str, key: str) -> None:
    _known[(url, key)] = None
    _known.move_to_end((url, key))
    while len(_known) > MAX_KNOWN:
        _known.popitem(last=False)


def _folder(url: str, key: str) -> _Folder:
    name = (url, posixpath.dirname(key))
    folder = _folders.get(name)
    if folder is None:
        folder = _folders[name] = _Folder()
        while len(_folders) > MAX_FOLDERS:
            _folders.popitem(last=False)
    _folders.move_to_end(name)
    return folder


__all__ = ["MAX_KNOWN", "PROBE_WAIT", "expected", "forget_all", "looked", "wrote"]
