"""The side log of the topology's task bodies: one line per body that ran, written where it ran.

``note(task, what, pause)`` sleeps ``pause`` seconds plus ``$TOPO_SLEEP``, then appends
``<task> <what> <$TOPO_WORKER> <pid>`` to ``$TOPO_BODY_LOG`` (one short ``O_APPEND`` write: lines written by many
processes never mix).  The line is written when the body is done, so a body killed midway leaves none.
"""

from __future__ import annotations

import os
import time


def note(task: str, what: str, pause: float = 0.0) -> None:
    time.sleep(pause + float(os.environ.get("TOPO_SLEEP", "0")))
    log = os.environ.get("TOPO_BODY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{task} {what} {os.environ.get('TOPO_WORKER', '-')} {os.getpid()}\n")
