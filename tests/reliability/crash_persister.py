"""Child process for the kill -9 persist test: rewrites persist entries ``soak_0..soak_{N-1}`` until killed.

Each entry's text is a pure function of its index (:func:`expected_text`), a few MB long so that a kill
often lands in the middle of a write. Run as ``python crash_persister.py URL N``.
"""

from __future__ import annotations

import random
import sys


def expected_text(i: int) -> str:
    rng = random.Random(i)
    line = "".join(rng.choice("ACGT") for _ in range(1000)) + "\n"
    return f"entry {i}\n" + line * (1000 + 500 * i)


def main(url: str, n: int) -> None:
    from scout_persist.persist_cache import persist

    texts = [expected_text(i) for i in range(n)]
    print("ready", flush=True)
    while True:
        for i in range(n):
            persist(f"soak_{i}", "text", lambda: texts[i], store=url, update=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
