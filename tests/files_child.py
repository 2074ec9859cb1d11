"""Child process for the kill -9 tests of file outputs: a job writes files into its stage, then waits to be killed.

``python files_child.py URL KEY`` writes ``a.txt`` (whole) and starts ``big.bin`` (1 MiB written, then it prints
``writing`` and sleeps with the file half written), so the parent kills it in the middle of a file write.
``python files_child.py URL KEY --finish`` commits instead: ``a.txt`` and ``big.bin`` (2 MiB) are published.
"""

from __future__ import annotations

import sys
import time


def main(url: str, key: str, finish: bool) -> None:
    from scout_persist.job import JobWriter
    from scout_persist.store import Store

    writer = JobWriter(Store(url), key, type="text")
    writer.setup()
    writer.start()
    writer.files.put("a.txt", b"first file, complete\n")
    with writer.files.open("big.bin", "wb") as fh:
        fh.write(b"\x01" * (1 << 20))
        fh.flush()
        if not finish:
            print("writing", flush=True)
            time.sleep(120)  # killed here, with big.bin half written
        fh.write(b"\x02" * (1 << 20))
    writer.save("done")
    writer.done()
    print("committed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--finish" in sys.argv[3:])
