"""Child process for the kill -9 tests: writes jobs ``first..first+count-1`` forever-looping over them.

Each job's value is a pure function of its index (:func:`expected`), so a reader can tell a correct
result from a partial or mixed-up one. Even indices are Python values (pickle + zstd), odd ones Scout
``text`` (plain bytes Ruby reads). Run as ``python crash_writer.py URL FIRST COUNT``.
"""

from __future__ import annotations

import random
import sys

JOB_TASK = "var/jobs/Soak/write"


def expected(i: int):
    rng = random.Random(i)
    if i % 2 == 0:
        return {"i": i, "blob": rng.randbytes(rng.randint(1, 300_000))}
    return "".join(rng.choice("ACGT\n") for _ in range(rng.randint(1, 50_000)))


def job_key(i: int) -> str:
    return f"{JOB_TASK}/job{i}"


def main(url: str, first: int, count: int) -> None:
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    store = Store(url)
    while True:  # rewrite the same jobs again and again until killed
        for i in range(first, first + count):
            writer = JobWriter(store, job_key(i), type="binary" if i % 2 == 0 else "text")
            writer.setup(inputs=[i], input_names=["i"])
            writer.start()
            writer.save(expected(i), "pickle" if i % 2 == 0 else "text")
            writer.done()
            print(i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
