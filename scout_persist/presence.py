"""Whether a job's ``.info`` is expected to exist, from what this process has seen: it picks the first request of a
lease acquisition where the ``.info`` is the lease (stores with conditional writes, S3).

A job expected absent is created outright: the conditional create of its ``start`` *is* the lookup, and a refused
create hands back the ``.info`` its store read (a new job costs 3 requests, no read before them).  A job expected to
exist is read first: a hit stays one ``.info`` read and one result read, and writes nothing.  Expected to exist: a job
whose ``.info`` this process has seen or written; for a job it knows nothing of, what the last such job turned out to
be on the same store (a cached run keeps finding its jobs, a new one keeps missing); the first job of a store, absent.

A hint only: a wrong guess costs one request (a refused create, or a read that finds nothing), never a wrong answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MAX_KNOWN = 10_000  # jobs remembered per process (a long-lived worker must not grow without bound)

_guard = threading.Lock()
_known: OrderedDict[tuple[str, str], None] = OrderedDict()  # (store url, job key): its .info was seen or written
_unknown_found: dict[str, bool] = {}  # store url -> whether the last job looked up that was not known had a .info


def expected(url: str, key: str) -> bool:
    """Whether job ``key`` of the store at ``url`` is expected to have a ``.info``."""
    with _guard:
        return (url, key) in _known or _unknown_found.get(url, False)


def looked(url: str, key: str, found: bool) -> None:
    """A look at job ``key``'s ``.info`` (a read, or a conditional create's answer) found it, or found nothing."""
    with _guard:
        if (url, key) not in _known:
            _unknown_found[url] = found
        if found:
            _remember(url, key)
        else:
            _known.pop((url, key), None)


def wrote(url: str, key: str) -> None:
    """This process wrote job ``key``'s ``.info``: it exists."""
    with _guard:
        _remember(url, key)


def forget_all() -> None:
    """Forget everything seen: the next job of every store is expected absent (tests: a process new to the store)."""
    with _guard:
        _known.clear()
        _unknown_found.clear()


def _remember(url: str, key: str) -> None:
    _known[(url, key)] = None
    _known.move_to_end((url, key))
    while len(_known) > MAX_KNOWN:
        _known.popitem(last=False)


__all__ = ["MAX_KNOWN", "expected", "forget_all", "looked", "wrote"]
