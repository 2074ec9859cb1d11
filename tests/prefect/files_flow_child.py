"""Child process for the kill -9 test of a scout task's file outputs: ``python files_flow_child.py MARKER``.

The task writes one file through ``job_files()``, half of a second one, touches MARKER and sleeps: the parent kills
the whole process group there (SIGKILL), in the middle of the task's file writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prefect import flow

from prefect_scout import job_files, scout_task


@scout_task(workflow="Killed", type="file")
def report(marker: str) -> str:
    files = job_files()
    files.put("a.txt", b"complete\n")
    with files.open("big.bin", "wb") as fh:
        fh.write(b"\x01" * (1 << 20))
        fh.flush()
        Path(marker).write_text("writing")
        time.sleep(300)
        fh.write(b"\x02" * (1 << 20))
    return files.path("big.bin")


@flow(name="Killed")
def killed_flow(marker: str) -> str:
    return report(marker)


if __name__ == "__main__":
    killed_flow(sys.argv[1])
