"""Plays the real Ruby Scout's ``Step#run`` on one job, for tests that must run without Ruby.

``python ruby_like_holder.py ROOT KEY MODE LATE STAY``: takes the job lock (Ruby's protocol), resets ``.info`` to
``setup`` then ``start`` with this pid and no plug-in ``lease`` record (as Ruby writes it), prints ``running``, and
waits for a line on stdin (the body).  Then, as ``Persist.persist`` does: MODE ``done``/``silent``/``exit`` save the
result ``v:ruby``; ``error``/``silent-none`` save nothing.  It releases the lock, sleeps LATE seconds, and writes
what ``Step#run``'s ensure/rescue write without the lock: ``done`` (MODE done) or ``error`` (MODE error), nothing
for the others; prints ``finished``; MODE ``exit`` exits at once, the others stay alive STAY seconds.
"""

from __future__ import annotations

import os
import sys
import time

from scout_persist.info import InfoFile
from scout_persist.layout import lock_key_for
from scout_persist.locks import Lock
from scout_persist.store import Store


def main(root: str, key: str, mode: str, late: str, stay: str) -> None:
    store = Store(root)
    lock = Lock(store, lock_key_for(store.path(key)))
    assert lock.acquire(timeout=30)
    info = InfoFile(store, key + ".info")
    info.setup(task_name="work", workflow="Race", type="string", input_names=["id"])
    info.start()
    print("running", flush=True)
    sys.stdin.readline()
    if mode in ("done", "silent", "exit"):
        store.put(key, b"v:ruby")
    lock.release()
    time.sleep(float(late))
    if mode == "done":
        info.done()
    elif mode == "error":
        info.error(RuntimeError("planned failure"))
    print("finished", flush=True)
    if mode == "exit":
        os._exit(0)
    time.sleep(float(stay))


if __name__ == "__main__":
    main(*sys.argv[1:6])
